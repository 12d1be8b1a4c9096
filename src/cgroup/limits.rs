//! Decide, per declared limit, whether this host can enforce it for this user: what to set,
//! where, and for anything that cannot be enforced, why. A declared limit is never dropped
//! without a diagnostic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::delegate::{locate, Site};
use super::detect::parse_parent;
use super::{CgroupError, Controller, Host, Version};
use crate::diag::{codes, Diagnostic};
use crate::plan::{Enforce, Limits, Span};

/// The scheduler period foxbox uses for cpu quotas (the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// A limit as the spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Memory,
    MemorySwap,
    Cpus,
    Pids,
}

impl LimitKind {
    pub fn key(self) -> &'static str {
        match self {
            LimitKind::Memory => "memory",
            LimitKind::MemorySwap => "memory_swap",
            LimitKind::Cpus => "cpus",
            LimitKind::Pids => "pids",
        }
    }

    fn controller(self) -> Controller {
        match self {
            LimitKind::Memory | LimitKind::MemorySwap => Controller::Memory,
            LimitKind::Cpus => Controller::Cpu,
            LimitKind::Pids => Controller::Pids,
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemorySetting {
    pub limit: u64,
    /// Memory + swap; `Some(limit)` means no swap; `None` leaves swap alone (the host cannot
    /// limit it and the spec did not ask).
    pub swap_total: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CpuSetting {
    pub quota_us: u64,
    pub period_us: u64,
}

/// A declared limit this host cannot enforce for this user, and why.
#[derive(Debug)]
pub struct Unenforced {
    pub limit: LimitKind,
    pub span: Option<Span>,
    /// Shared: one cause (an undelegated hierarchy) often explains several limits.
    pub error: Arc<CgroupError>,
}

impl Unenforced {
    /// An error under `Strict`, a warning under `BestEffort`, pointing at the limit's line.
    pub fn diagnostic(&self, enforce: Enforce) -> Diagnostic {
        let msg = format!(
            "the `{}` limit cannot be enforced: {}",
            self.limit, self.error
        );
        let d = match enforce {
            Enforce::Strict => Diagnostic::error(codes::limits::NOT_ENFORCEABLE, msg),
            Enforce::BestEffort => Diagnostic::warning(
                codes::limits::NOT_ENFORCED,
                format!("{msg}; running without it (enforce = \"best-effort\")"),
            ),
        };
        let d = d
            .with_span(self.span)
            .with_label("this limit cannot be enforced here");
        match self.error.help() {
            Some(h) => d.with_help(h),
            None => d,
        }
    }
}

/// What to set up for a box's limits on this host.
#[derive(Debug, Default)]
pub struct LimitPlan {
    pub memory: Option<MemorySetting>,
    pub cpu: Option<CpuSetting>,
    pub pids: Option<u64>,
    /// Declared limits that cannot be enforced here.
    pub unenforced: Vec<Unenforced>,
    /// One cgroup per hierarchy: where, and which controllers it serves (the limits' and,
    /// where delegated too, memory, pids and cpu time for `stats`).
    pub sites: Vec<(Site, BTreeSet<Controller>)>,
}

impl LimitPlan {
    /// Diagnostics for every declared limit that cannot be enforced.
    pub fn diagnostics(&self, enforce: Enforce) -> Vec<Diagnostic> {
        self.unenforced
            .iter()
            .map(|u| u.diagnostic(enforce))
            .collect()
    }

    /// True when the box must not start: a declared limit cannot be enforced under `Strict`.
    pub fn refuses(&self, enforce: Enforce) -> bool {
        enforce == Enforce::Strict && !self.unenforced.is_empty()
    }

    /// True when some limit will be set (the box then needs its cgroup).
    pub fn has_limits(&self) -> bool {
        self.memory.is_some() || self.cpu.is_some() || self.pids.is_some()
    }

    /// The hierarchy directories the box's cgroups will be made in.
    pub fn parents(&self) -> Vec<PathBuf> {
        self.sites.iter().map(|(s, _)| s.parent.clone()).collect()
    }
}

/// Plan the cgroup side of `limits` on `host`, under `parent` (`--cgroup-parent`; `None`:
/// find a place). Never fails: whatever cannot be done is in `unenforced`.
pub fn plan(limits: &Limits, host: &Host, parent: Option<&str>) -> LimitPlan {
    let mut out = LimitPlan::default();
    let mut declared: Vec<(LimitKind, Option<Span>)> = Vec::new();
    if let Some(m) = limits.memory() {
        declared.push((LimitKind::Memory, m.span));
    }
    if let Some(s) = limits.memory_swap() {
        declared.push((LimitKind::MemorySwap, s.span));
    }
    if let Some(c) = limits.cpus() {
        declared.push((LimitKind::Cpus, c.span));
    }
    if let Some(p) = limits.pids() {
        declared.push((LimitKind::Pids, p.span));
    }
    let parent = match parent.map(parse_parent).transpose() {
        Ok(p) => p,
        Err(e) => {
            let e = Arc::new(e);
            for (limit, span) in declared {
                out.unenforced.push(Unenforced {
                    limit,
                    span,
                    error: e.clone(),
                });
            }
            return out;
        }
    };

    // Which hierarchy each controller is on, and what each hierarchy must serve.
    let mut required: BTreeMap<usize, BTreeSet<Controller>> = BTreeMap::new();
    let mut missing: BTreeMap<Controller, ()> = BTreeMap::new();
    for (limit, _) in &declared {
        let c = limit.controller();
        match host.find(c) {
            Some(h) => {
                required.entry(h).or_default().insert(c);
            }
            None => {
                missing.insert(c, ());
            }
        }
    }
    let mut optional: BTreeMap<usize, BTreeSet<Controller>> = BTreeMap::new();
    for c in [Controller::Memory, Controller::Pids, Controller::Cpuacct] {
        if let Some(h) = host.find(c) {
            optional.entry(h).or_default().insert(c);
        }
    }
    let mut failed: BTreeMap<Controller, Arc<CgroupError>> = BTreeMap::new();
    let all: BTreeSet<usize> = required.keys().chain(optional.keys()).copied().collect();
    for h in all {
        let req = required.get(&h).cloned().unwrap_or_default();
        let mut both = req.clone();
        both.extend(optional.get(&h).into_iter().flatten().copied());
        let found = locate(host, h, parent.as_deref(), &both)
            .map(|s| (s, both))
            .or_else(|e| {
                if req.is_empty() {
                    Err(e)
                } else {
                    locate(host, h, parent.as_deref(), &req).map(|s| (s, req.clone()))
                }
            });
        match found {
            Ok(site) => out.sites.push(site),
            Err(e) => {
                let e = Arc::new(e);
                for c in req {
                    let own = e.for_controller(c).map(Arc::new);
                    failed.insert(c, own.unwrap_or_else(|| e.clone()));
                }
            }
        }
    }

    for (limit, span) in declared {
        let c = limit.controller();
        let err = if missing.contains_key(&c) {
            Some(Arc::new(CgroupError::NoController { controller: c }))
        } else {
            failed.get(&c).cloned()
        }
        .or_else(|| {
            (limit == LimitKind::MemorySwap)
                .then(|| swap_error(&out, host))
                .flatten()
                .map(Arc::new)
        });
        match err {
            Some(error) => out.unenforced.push(Unenforced { limit, span, error }),
            None => apply(&mut out, limit, limits, host),
        }
    }
    // A memory limit without a declared swap limit means "no swap", where the host can say so.
    if limits.memory_swap().is_none() && swap_error(&out, host).is_none() {
        if let Some(m) = &mut out.memory {
            m.swap_total = Some(m.limit);
        }
    }
    out
}

fn apply(out: &mut LimitPlan, limit: LimitKind, limits: &Limits, _host: &Host) {
    match limit {
        LimitKind::Memory => {
            if let Some(m) = limits.memory() {
                out.memory = Some(MemorySetting {
                    limit: m.value.bytes(),
                    swap_total: out.memory.and_then(|x| x.swap_total),
                });
            }
        }
        LimitKind::MemorySwap => {
            // A plan's swap limit is never below its memory limit.
            if let (Some(s), Some(m)) = (limits.memory_swap(), &mut out.memory) {
                m.swap_total = Some(s.value.bytes());
            }
        }
        LimitKind::Cpus => {
            if let Some(c) = limits.cpus() {
                let quota = (c.value.cores() * CPU_PERIOD_US as f64).round() as u64;
                out.cpu = Some(CpuSetting {
                    // The kernel's minimum quota is 1 ms.
                    quota_us: quota.max(1000),
                    period_us: CPU_PERIOD_US,
                });
            }
        }
        LimitKind::Pids => out.pids = limits.pids().map(|p| p.value.count()),
    }
}

/// Why swap cannot be limited where the memory cgroup goes, if it cannot.
fn swap_error(out: &LimitPlan, host: &Host) -> Option<CgroupError> {
    let (site, _) = out
        .sites
        .iter()
        .find(|(_, cs)| cs.contains(&Controller::Memory))?;
    let hi = host.hierarchies.get(site.hierarchy)?;
    let probe = match hi.version {
        // The v1 root has every file its children get.
        Version::V1 => hi.mount.join("memory.memsw.limit_in_bytes"),
        // The v2 root has no memory.* files: look at the parent when it is not the root.
        Version::V2 => {
            let p = site.parent.join("memory.swap.max");
            if site.parent == hi.mount || !site.parent.is_dir() {
                return None;
            }
            p
        }
    };
    (!probe.exists()).then_some(CgroupError::NoSwapAccounting { path: probe })
}

/// `check --host`: can each declared limit be enforced for this user here? One diagnostic
/// per limit that cannot (an error under `Strict`, a warning under `BestEffort`).
pub fn check_limits(limits: &Limits, parent: Option<&str>) -> Vec<Diagnostic> {
    if !limits.needs_cgroup() {
        return Vec::new();
    }
    match Host::detect() {
        Ok(host) => plan(limits, &host, parent).diagnostics(limits.enforce()),
        Err(e) => {
            let msg = format!("cannot read this host's cgroup layout: {e}");
            vec![match limits.enforce() {
                Enforce::Strict => Diagnostic::error(codes::limits::NO_CGROUPS, msg),
                Enforce::BestEffort => Diagnostic::warning(codes::limits::NO_CGROUPS, msg),
            }]
        }
    }
}
