//! /proc and /sys of the box.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::resolve::{self, Kind};
use crate::step_error::{Context, StepError};
use crate::sys::mount::{self, attr, FsContext};

/// A new proc instance (it shows only the box's pid namespace) on /proc.
pub fn mount_proc(root: BorrowedFd<'_>) -> Result<(), StepError> {
    let target = resolve::ensure(root, Path::new("/proc"), Kind::Dir).ctx(|| "/proc".into())?;
    let fc = FsContext::open("proc").ctx(|| "create a proc instance".into())?;
    // The source /proc/self/mountinfo shows (runc's and podman's name it so too).
    fc.set("source", "proc").ctx(|| "proc source".into())?;
    let m = fc
        .mount(attr::NOSUID | attr::NODEV | attr::NOEXEC)
        .ctx(|| "mount proc".into())?;
    mount::move_to(m.as_fd(), target.as_fd()).ctx(|| "attach proc on /proc".into())
}

/// A read-only /sys: a sysfs of the box's own network namespace where the kernel allows it,
/// else the host's /sys bound recursively and made read-only.
pub fn mount_sys(root: BorrowedFd<'_>, own_netns: bool) -> Result<(), StepError> {
    let target = resolve::ensure(root, Path::new("/sys"), Kind::Dir).ctx(|| "/sys".into())?;
    let ro = attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC;
    if own_netns {
        let fresh = FsContext::open("sysfs").and_then(|fc| {
            fc.set("source", "sysfs")?;
            fc.mount(ro)
        });
        if let Ok(m) = fresh {
            return mount::move_to(m.as_fd(), target.as_fd()).ctx(|| "attach sysfs on /sys".into());
        }
    }
    let tree = mount::clone_tree(None, Path::new("/sys")).ctx(|| "bind the host's /sys".into())?;
    mount::set_attr_fd(tree.as_fd(), ro, 0, true).ctx(|| "make /sys read-only".into())?;
    mount::move_to(tree.as_fd(), target.as_fd()).ctx(|| "attach /sys".into())
}
