//! One cgroup directory of a box in one hierarchy: the interface both versions implement.

use std::fs;
use std::io;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use super::files::{read_file, subtree, write_file};
use super::{CgroupError, Version};

/// Memory usage of a cgroup, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct MemoryUsage {
    pub current: u64,
    /// The high-water mark; `None` where the kernel does not keep one (v2 before 5.19).
    pub peak: Option<u64>,
}

/// What a cgroup directory can do, whatever the version. Each method touches only the files of
/// its controller; calling one for a controller the node lacks gives a read/write error naming
/// the missing file.
pub trait CgroupNode {
    fn path(&self) -> &Path;
    fn version(&self) -> Version;
    /// `swap_total` is memory + swap in bytes (`Some(limit)`: no swap); `None` leaves swap alone.
    fn set_memory(&self, limit: u64, swap_total: Option<u64>) -> Result<(), CgroupError>;
    /// Bandwidth as quota per period, in microseconds.
    fn set_cpu(&self, quota_us: u64, period_us: u64) -> Result<(), CgroupError>;
    fn set_pids(&self, max: u64) -> Result<(), CgroupError>;
    /// Whether this kernel can limit memory + swap here.
    fn has_swap_limit(&self) -> bool;
    fn memory_usage(&self) -> Result<MemoryUsage, CgroupError>;
    fn cpu_usage(&self) -> Result<Duration, CgroupError>;
    fn pids_current(&self) -> Result<u64, CgroupError>;
    /// How many processes the memory controller's OOM killer killed here; `None` when this
    /// kernel does not count them.
    fn oom_kills(&self) -> Result<Option<u64>, CgroupError>;
    /// Ask the kernel to kill every process at once, where it can (v2's cgroup.kill); returns
    /// whether it did.
    fn kill_native(&self) -> Result<bool, CgroupError>;

    /// Freeze (or thaw) every process here; returns once the kernel says it is done.
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError>;
    /// Whether the processes here are frozen.
    fn is_frozen(&self) -> Result<bool, CgroupError>;

    /// Move a process (all its threads) into this cgroup.
    fn place(&self, pid: i32) -> Result<(), CgroupError> {
        write_file(&self.path().join("cgroup.procs"), &pid.to_string())
    }

    /// The processes in this cgroup and every cgroup below it.
    fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        for dir in subtree(self.path())? {
            let text = read_file(&dir.join("cgroup.procs"))?;
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
        Ok(out)
    }

    /// SIGKILL every process until none is left, for at most `wait`.
    fn kill_all(&self, wait: Duration) -> Result<(), CgroupError> {
        let start = Instant::now();
        let native = self.kill_native()?;
        loop {
            let pids = self.procs()?;
            if pids.is_empty() {
                return Ok(());
            }
            if start.elapsed() > wait {
                return Err(CgroupError::Busy {
                    path: self.path().to_path_buf(),
                    pids,
                    waited: wait,
                });
            }
            // Without cgroup.kill, a fork bomb races the kill loop; every round kills all it
            // sees, and a killed process forks no more, so the set shrinks round by round.
            if !native {
                for pid in pids {
                    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                        Err(e) => {
                            return Err(CgroupError::Kill {
                                pid,
                                path: self.path().to_path_buf(),
                                source: io::Error::from(e),
                            })
                        }
                    }
                }
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// Remove the directory and any cgroups the box made below it, deepest first, retrying
    /// while the kernel still reports it busy (exiting processes) for at most `wait`.
    fn remove(&self, wait: Duration) -> Result<(), CgroupError> {
        let start = Instant::now();
        let dirs = match subtree(self.path()) {
            Ok(d) => d,
            Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        for dir in dirs.iter().rev() {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < wait => {
                        sleep(Duration::from_millis(20));
                    }
                    Err(source) => {
                        return Err(CgroupError::Remove {
                            path: dir.clone(),
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

/// Poll `done` until it holds, for at most `wait` (freezing takes the kernel a moment).
pub(crate) fn settle(
    path: &Path,
    wait: Duration,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        if done()? {
            return Ok(());
        }
        if start.elapsed() > wait {
            return Err(CgroupError::Parse {
                path: path.to_path_buf(),
                what: format!("the freezer did not settle within {wait:?}"),
            });
        }
        sleep(Duration::from_millis(2));
    }
}
