//! cgroups: one interface, v2 and v1 behind it, delegation detection.
//!
//! Each controller is found where this host has it (a v1 hierarchy of its own, or the unified
//! v2 hierarchy; a hybrid host mixes them), and a box gets one cgroup in each hierarchy it
//! uses. The flow the executor follows:
//!
//! ```text
//! let host = Host::detect()?;                        // layout + where we sit
//! let lp = cgroup::plan(&plan.limits, &host, parent); // what can be enforced, and where
//! if lp.refuses(plan.limits.enforce) { report lp.diagnostics(..) and stop }
//! warn lp.diagnostics(..) otherwise (best-effort)
//! let cg = BoxCgroup::create(&lp, box_id)?;         // mkdir + limits; store `cg` in the state
//! clone the child (it waits on the sync pipe); cg.place(child_pid)?; release the child,
//!   which then unshares its cgroup namespace so it sees its cgroup as the root
//! cg.stats()? / cg.oom_kills()?                     // `stats`, exit status 137 + "OOM killed"
//! cg.destroy()?                                      // on rm: kill what is left, rmdir
//! ```
//!
//! An OCI container's cgroup ([`PathCgroup`]) is made at the path its config names, with the
//! config's [`Resources`], and can be frozen (`pause`) and updated.

mod at_path;
mod boxcg;
mod delegate;
mod detect;
pub mod devices_bpf;
mod error;
mod files;
mod limits;
mod node;
mod resources;
mod stored;
mod v1;
mod v2;

pub use at_path::{parse_path, PathCgroup};
pub use boxcg::{cgroup_name, BoxCgroup, BoxNode, Stats, DEFAULT_WAIT};
pub use delegate::{locate, ParentSource, Site};
pub use detect::{parse_parent, Controller, Hierarchy, Host, Version};
pub use error::CgroupError;
pub use limits::{
    check_limits, plan, CpuSetting, LimitKind, LimitPlan, MemorySetting, Unenforced, CPU_PERIOD_US,
};
pub use node::{CgroupNode, MemoryUsage};
pub use resources::{Blkio, Cpu, DeviceRule, DeviceValue, Memory, Resources, Write, WriteKind};
pub use stored::Node;
pub use v1::V1Node;
pub use v2::V2Node;
