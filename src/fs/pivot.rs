//! pivot_root into the new root and detach the old one (no chroot: nothing of the host's tree
//! stays reachable through `..` or /proc/1/root); chroot only for a box that shares the
//! caller's mount namespace, where there is no other root to detach.

use std::os::fd::BorrowedFd;
use std::path::Path;

use crate::step_error::{Context, StepError};
use crate::sys::mount;

pub fn pivot_into(root: BorrowedFd<'_>) -> Result<(), StepError> {
    nix::unistd::fchdir(root)
        .map_err(std::io::Error::from)
        .ctx(|| "enter the new root".into())?;
    // pivot_root(".", ".") stacks the old root on top of the new one at "/"; detaching "."
    // then removes it, with no temporary directory in the image.
    mount::pivot_root(Path::new("."), Path::new(".")).ctx(|| "pivot_root".into())?;
    mount::umount_detach(Path::new(".")).ctx(|| "detach the old root".into())?;
    nix::unistd::chdir("/")
        .map_err(std::io::Error::from)
        .ctx(|| "chdir /".into())
}

/// chroot into `root`, for a box whose mounts are in the caller's mount namespace (see
/// [`super::rootfs::bind_in_place`]): pivot_root would move the caller's own root.
pub fn chroot_into(root: BorrowedFd<'_>) -> Result<(), StepError> {
    nix::unistd::fchdir(root)
        .map_err(std::io::Error::from)
        .ctx(|| "enter the new root".into())?;
    nix::unistd::chroot(".")
        .map_err(std::io::Error::from)
        .ctx(|| "chroot".into())?;
    nix::unistd::chdir("/")
        .map_err(std::io::Error::from)
        .ctx(|| "chdir /".into())
}
