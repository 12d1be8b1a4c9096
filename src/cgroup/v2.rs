//! cgroup v2: one directory in the unified hierarchy, controllers enabled from the parent's
//! cgroup.subtree_control.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::files::{read_key, read_u64, write_file};
use super::node::{settle, CgroupNode, MemoryUsage};
use super::{CgroupError, Version};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Node {
    pub path: PathBuf,
}

impl CgroupNode for V2Node {
    fn path(&self) -> &Path {
        &self.path
    }

    fn version(&self) -> Version {
        Version::V2
    }

    fn set_memory(&self, limit: u64, swap_total: Option<u64>) -> Result<(), CgroupError> {
        write_file(&self.path.join("memory.max"), &limit.to_string())?;
        if let Some(total) = swap_total {
            // v2 limits swap on its own, not memory + swap.
            let swap = self.path.join("memory.swap.max");
            if !swap.exists() {
                return Err(CgroupError::NoSwapAccounting { path: swap });
            }
            write_file(&swap, &total.saturating_sub(limit).to_string())?;
        }
        Ok(())
    }

    fn set_cpu(&self, quota_us: u64, period_us: u64) -> Result<(), CgroupError> {
        write_file(
            &self.path.join("cpu.max"),
            &format!("{quota_us} {period_us}"),
        )
    }

    fn set_pids(&self, max: u64) -> Result<(), CgroupError> {
        write_file(&self.path.join("pids.max"), &max.to_string())
    }

    fn has_swap_limit(&self) -> bool {
        self.path.join("memory.swap.max").exists()
    }

    fn memory_usage(&self) -> Result<MemoryUsage, CgroupError> {
        let peak = self.path.join("memory.peak");
        Ok(MemoryUsage {
            current: read_u64(&self.path.join("memory.current"))?,
            peak: if peak.exists() {
                Some(read_u64(&peak)?)
            } else {
                None
            },
        })
    }

    fn cpu_usage(&self) -> Result<Duration, CgroupError> {
        let stat = self.path.join("cpu.stat");
        match read_key(&stat, "usage_usec")? {
            Some(us) => Ok(Duration::from_micros(us)),
            None => Err(CgroupError::Parse {
                path: stat,
                what: "no usage_usec line".into(),
            }),
        }
    }

    fn pids_current(&self) -> Result<u64, CgroupError> {
        read_u64(&self.path.join("pids.current"))
    }

    /// memory.events counts this cgroup and its descendants; `oom_kill` is there since 4.13.
    fn oom_kills(&self) -> Result<Option<u64>, CgroupError> {
        read_key(&self.path.join("memory.events"), "oom_kill")
    }

    /// cgroup.kill (Linux 5.14+) kills the whole subtree atomically, fork bombs included.
    fn kill_native(&self) -> Result<bool, CgroupError> {
        let f = self.path.join("cgroup.kill");
        if !f.exists() {
            return Ok(false);
        }
        write_file(&f, "1")?;
        Ok(true)
    }

    /// cgroup.freeze asks; cgroup.events' `frozen` says when it is done.
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        write_file(
            &self.path.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )?;
        settle(&self.path, Duration::from_secs(5), || {
            Ok(self.is_frozen()? == frozen)
        })
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(read_key(&self.path.join("cgroup.events"), "frozen")? == Some(1))
    }
}
