//! cgroup v1: one directory per hierarchy, limits in `<controller>.*` files of that hierarchy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::files::{read_file, read_key, read_u64, write_file};
use super::node::{settle, CgroupNode, MemoryUsage};
use super::{CgroupError, Version};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Node {
    pub path: PathBuf,
}

impl CgroupNode for V1Node {
    fn path(&self) -> &Path {
        &self.path
    }

    fn version(&self) -> Version {
        Version::V1
    }

    fn set_memory(&self, limit: u64, swap_total: Option<u64>) -> Result<(), CgroupError> {
        // memsw may never be below the memory limit: in a new cgroup it is unlimited, so the
        // memory limit goes first.
        write_file(&self.path.join("memory.limit_in_bytes"), &limit.to_string())?;
        if let Some(total) = swap_total {
            let memsw = self.path.join("memory.memsw.limit_in_bytes");
            if !memsw.exists() {
                return Err(CgroupError::NoSwapAccounting { path: memsw });
            }
            write_file(&memsw, &total.max(limit).to_string())?;
        }
        Ok(())
    }

    fn set_cpu(&self, quota_us: u64, period_us: u64) -> Result<(), CgroupError> {
        write_file(&self.path.join("cpu.cfs_period_us"), &period_us.to_string())?;
        write_file(&self.path.join("cpu.cfs_quota_us"), &quota_us.to_string())
    }

    fn set_pids(&self, max: u64) -> Result<(), CgroupError> {
        write_file(&self.path.join("pids.max"), &max.to_string())
    }

    fn has_swap_limit(&self) -> bool {
        self.path.join("memory.memsw.limit_in_bytes").exists()
    }

    fn memory_usage(&self) -> Result<MemoryUsage, CgroupError> {
        Ok(MemoryUsage {
            current: read_u64(&self.path.join("memory.usage_in_bytes"))?,
            peak: Some(read_u64(&self.path.join("memory.max_usage_in_bytes"))?),
        })
    }

    fn cpu_usage(&self) -> Result<Duration, CgroupError> {
        Ok(Duration::from_nanos(read_u64(
            &self.path.join("cpuacct.usage"),
        )?))
    }

    fn pids_current(&self) -> Result<u64, CgroupError> {
        read_u64(&self.path.join("pids.current"))
    }

    /// memory.oom_control's `oom_kill` counter (Linux 4.13+) counts exactly the processes the
    /// memcg OOM killer killed; memory.failcnt also counts charges that reclaim satisfied, and
    /// with a memsw limit the failure lands in memory.memsw.failcnt instead, so neither tells.
    fn oom_kills(&self) -> Result<Option<u64>, CgroupError> {
        read_key(&self.path.join("memory.oom_control"), "oom_kill")
    }

    fn kill_native(&self) -> Result<bool, CgroupError> {
        Ok(false)
    }

    /// freezer.state goes FREEZING → FROZEN; a process forking meanwhile can leave it
    /// FREEZING, so the write is repeated until it takes (as runc does).
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let file = self.path.join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        settle(&file, Duration::from_secs(5), || {
            write_file(&file, want)?;
            Ok(read_file(&file)?.trim() == want)
        })
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(read_file(&self.path.join("freezer.state"))?.trim() == "FROZEN")
    }
}
