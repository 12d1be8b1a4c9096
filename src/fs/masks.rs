//! Paths podman masks or makes read-only, applied after pivot_root (so they name the box's own
//! /proc and /sys).

use std::os::fd::AsFd;
use std::path::Path;

use super::dev::tmpfs;
use crate::step_error::{Context, StepError};
use crate::sys::mount::{self, attr};

/// Masked: /dev/null over files, an empty read-only tmpfs over directories.
pub const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/interrupts",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
    "/sys/devices/virtual/powercap",
];

/// Read-only.
pub const READONLY: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn open_existing(p: &str) -> Result<Option<std::os::fd::OwnedFd>, StepError> {
    let cwd = crate::fs::cwd();
    match mount::openat2(cwd, Path::new(p), libc::O_PATH | libc::O_NOFOLLOW, 0, 0) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e).ctx(|| format!("open {p}")),
    }
}

pub fn mask_paths() -> Result<(), StepError> {
    mask_paths_of(MASKED)
}

/// Mask the paths of `list` (an OCI config's `maskedPaths`) as [`mask_paths`] does podman's.
pub fn mask_paths_of<S: AsRef<str>>(list: &[S]) -> Result<(), StepError> {
    // Directories are covered by one empty read-only tmpfs, bound again over each after the
    // first: one superblock instead of one per directory.
    let mut first_dir: Option<&str> = None;
    for p in list {
        let p = p.as_ref();
        let Some(target) = open_existing(p)? else {
            continue;
        };
        let cover = if super::resolve::is_dir(target.as_fd()).ctx(|| format!("stat {p}"))? {
            match first_dir {
                Some(first) => mount::clone_tree(None, Path::new(first))
                    .ctx(|| format!("bind the mask of {first}"))?,
                None => {
                    first_dir = Some(p);
                    tmpfs(
                        "size=0",
                        attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
                    )?
                }
            }
        } else {
            // A clone of /dev/null per file: a mount can be attached only once, and kernels
            // before 6.15 refuse to clone a detached one (EINVAL), so each comes from the path.
            mount::clone_tree(None, Path::new("/dev/null")).ctx(|| "bind /dev/null".into())?
        };
        mount::move_to(cover.as_fd(), target.as_fd()).ctx(|| format!("mask {p}"))?;
    }
    Ok(())
}

pub fn readonly_paths() -> Result<(), StepError> {
    readonly_paths_of(READONLY)
}

/// Make the paths of `list` (an OCI config's `readonlyPaths`) read-only.
pub fn readonly_paths_of<S: AsRef<str>>(list: &[S]) -> Result<(), StepError> {
    for p in list {
        let p = p.as_ref();
        let Some(target) = open_existing(p)? else {
            continue;
        };
        let tree = mount::clone_tree(None, Path::new(p)).ctx(|| format!("bind {p}"))?;
        mount::set_attr_fd(
            tree.as_fd(),
            attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
            0,
            true,
        )
        .ctx(|| format!("make {p} read-only"))?;
        mount::move_to(tree.as_fd(), target.as_fd()).ctx(|| format!("attach {p}"))?;
    }
    Ok(())
}
