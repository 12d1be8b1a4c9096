//! A profile resolved for one architecture, capability set and kernel: which rules apply to
//! which syscall numbers. This is also the reference meaning the BPF program must implement.

use super::arch::{Arch, X32_SYSCALL_BIT};
use crate::plan::caps::CapSet;
use crate::plan::seccomp_profile::{Action, ArgCond, Condition, KernelVersion, Profile};

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
/// the first rule for `nr` whose conditions all hold decides (rules are kept most restrictive
/// first, so when several rules match, the most restrictive wins, as the kernel does between
/// filters); when none holds, `default`; a number above `enosys_above` that the profile never
/// names returns ENOSYS. Calls through any other ABI are killed.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruleset {
    pub arch: Arch,
    pub default: Action,
    pub enosys_above: Option<u32>,
    /// `SECCOMP_FILTER_FLAG_*` bits.
    pub flags: u32,
    /// Sorted by number: each syscall with the span of its rules in `rules`. Flat vectors, not
    /// a map of vectors: resolving runs before every box start and allocations dominated it.
    syscalls: Vec<(u32, std::ops::Range<usize>)>,
    rules: Vec<Rule>,
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
        match self.rules_for(nr) {
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

    /// The rules for one syscall number, most restrictive first.
    pub fn rules_for(&self, nr: u32) -> Option<&[Rule]> {
        let i = self.syscalls.binary_search_by_key(&nr, |(n, _)| *n).ok()?;
        Some(&self.rules[self.syscalls[i].1.clone()])
    }

    /// Every syscall number with rules, ascending, with its rules.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[Rule])> + '_ {
        self.syscalls
            .iter()
            .map(|(nr, r)| (*nr, &self.rules[r.clone()]))
    }

    pub fn is_empty(&self) -> bool {
        self.syscalls.is_empty()
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
    // (number, precedence, index of the profile rule): sorting these orders each syscall's
    // rules most restrictive first, the profile's order breaking ties.
    let mut entries: Vec<(u32, i32, usize)> = Vec::with_capacity(512);
    let mut highest_named: Option<u32> = None;
    for (i, rule) in profile.syscalls.iter().enumerate() {
        let applies =
            includes_hold(&rule.includes, target) && !excludes_hold(&rule.excludes, target);
        for nr in rule.names.iter().filter_map(|n| arch.syscall(n)) {
            highest_named = highest_named.max(Some(nr));
            if applies {
                entries.push((nr, rule.action.precedence(), i));
            }
        }
    }
    entries.sort_unstable();
    let mut syscalls = Vec::with_capacity(entries.len());
    let mut rules: Vec<Rule> = Vec::with_capacity(entries.len());
    let mut k = 0;
    while k < entries.len() {
        let nr = entries[k].0;
        let start = rules.len();
        let mut closed = false;
        while k < entries.len() && entries[k].0 == nr {
            let src = &profile.syscalls[entries[k].2];
            k += 1;
            // Rules after an unconditional one can never decide anything.
            if closed {
                continue;
            }
            let dup = rules[start..]
                .iter()
                .any(|r| r.action == src.action && r.conds == src.args);
            if !dup {
                rules.push(Rule {
                    action: src.action,
                    conds: src.args.clone(),
                });
            }
            closed = src.args.is_empty();
        }
        syscalls.push((nr, start..rules.len()));
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
        enosys_above,
        flags,
        syscalls,
        rules,
    }
}
