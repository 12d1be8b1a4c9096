//! The box's filesystem: rootfs overlay, mounts, /dev, masked and read-only paths.
pub mod dev;
pub mod etc;
pub mod kernfs;
pub mod masks;
pub mod mounts;
pub mod pivot;
pub mod resolve;
pub mod rootfs;

/// The current directory as a "descriptor" for the *at calls.
pub(crate) fn cwd() -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is valid for the *at calls for the whole life of the process.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}
