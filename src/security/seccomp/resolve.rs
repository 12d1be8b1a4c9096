//! A profile resolved for one architecture, capability set and kernel: which rules apply to
//! which syscall numbers. This is also the reference meaning the BPF program must implement.

use std::collections::BTreeMap;

use super::arch::{Arch, X32_SYSCALL_BIT};
use super::profile::{Action, ArgCond, Condition, KernelVersion, Profile};
use crate::security::caps::CapSet;

/// What a profile is resolved against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub arch: Arch,
    /// The box's final capability set (its bounding set): `includes.caps` / `excludes.caps`
    /// are decided against it.
    pub caps: CapSet,
    /// For `minKernel`; `None` counts as a kernel new enough for every rule.
    pub kernel: Option<KernelVersion>,
}

impl Target {
    /// The native architecture and the running kernel.
    pub fn native(caps: CapSet) -> Option<Target> {
        Some(Target {
            arch: Arch::native()?,
            caps,
            kernel: KernelVersion::running(),
        })
    }
}

/// One rule for one syscall: all conditions hold → the action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub action: Action,
    pub conds: Vec<ArgCond>,
}

/// The resolved filter. For a call with number `nr` on `arch`:
/// the first rule of `syscalls[nr]` whose conditions all hold decides (rules are kept most
/// restrictive first, so when several rules match, the most restrictive wins, as the kernel
/// does between filters); when none holds, `default`; a number above `enosys_above` that the
/// profile never names returns ENOSYS. Calls through any other ABI are killed.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruleset {
    pub arch: Arch,
    pub default: Action,
    pub syscalls: BTreeMap<u32, Vec<Rule>>,
    pub enosys_above: Option<u32>,
    /// `SECCOMP_FILTER_FLAG_*` bits.
    pub flags: u32,
}

pub const ENOSYS: Action = Action::Errno {
    errno: libc::ENOSYS as u16,
};

impl Ruleset {
    /// The action for a call through the target ABI (the reference semantics).
    pub fn decide(&self, nr: u32, args: &[u64; 6]) -> Action {
        if self.arch == Arch::X86_64 && nr & X32_SYSCALL_BIT != 0 {
            return Action::KillProcess;
        }
        match self.syscalls.get(&nr) {
            Some(rules) => rules
                .iter()
                .find(|r| r.conds.iter().all(|c| c.matches(args)))
                .map_or(self.default, |r| r.action),
            None => self.fallback(nr),
        }
    }

    /// The action for a number no rule names.
    pub fn fallback(&self, nr: u32) -> Action {
        match self.enosys_above {
            Some(max) if nr > max => ENOSYS,
            _ => self.default,
        }
    }
}

fn includes_hold(c: &Condition, t: &Target) -> bool {
    (c.caps.0 & !t.caps.0) == 0
        && (c.arches.is_empty() || c.arches.iter().any(|a| a == t.arch.profile_name()))
        && match (c.min_kernel, t.kernel) {
            (Some(min), Some(k)) => k >= min,
            _ => true,
        }
}

fn excludes_hold(c: &Condition, t: &Target) -> bool {
    (c.caps.0 & t.caps.0) != 0
        || c.arches.iter().any(|a| a == t.arch.profile_name())
        || match (c.min_kernel, t.kernel) {
            (Some(min), Some(k)) => k >= min,
            (Some(_), None) => true,
            _ => false,
        }
}

/// Resolve a profile for a target. Names that are no syscall on the target architecture are
/// skipped, as libseccomp does (profiles list other architectures' calls on purpose).
pub fn resolve(profile: &Profile, target: &Target) -> Ruleset {
    let arch = target.arch;
    let mut syscalls: BTreeMap<u32, Vec<Rule>> = BTreeMap::new();
    let mut highest_named: Option<u32> = None;
    for rule in &profile.syscalls {
        let nrs: Vec<u32> = rule.names.iter().filter_map(|n| arch.syscall(n)).collect();
        if let Some(m) = nrs.iter().max() {
            highest_named = highest_named.max(Some(*m));
        }
        if !includes_hold(&rule.includes, target) || excludes_hold(&rule.excludes, target) {
            continue;
        }
        for nr in nrs {
            let r = Rule {
                action: rule.action,
                conds: rule.args.clone(),
            };
            let list = syscalls.entry(nr).or_default();
            if !list.contains(&r) {
                list.push(r);
            }
        }
    }
    for rules in syscalls.values_mut() {
        // Stable: among equally restrictive rules, the profile's order decides.
        rules.sort_by_key(|r| r.action.precedence());
        // Rules after an unconditional one can never decide anything.
        if let Some(i) = rules.iter().position(|r| r.conds.is_empty()) {
            rules.truncate(i + 1);
        }
    }
    // A syscall newer than every call the profile names cannot have been meant by its author:
    // answer ENOSYS so that libc falls back to an older call (runc does the same). Only when the
    // default is an errno already, so this never turns a kill into an error return.
    let enosys_above = match profile.default_action {
        Action::Errno { .. } => highest_named,
        _ => None,
    };
    let flags = profile.flags.iter().fold(0, |acc, f| acc | f.bits());
    Ruleset {
        arch,
        default: profile.default_action,
        syscalls,
        enosys_above,
        flags,
    }
}
