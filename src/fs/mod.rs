//! The box's filesystem: rootfs overlay, mounts, /dev, masked and read-only paths.
pub mod dev;
pub mod etc;
pub mod kernfs;
pub mod masks;
pub mod mounts;
pub mod pivot;
pub mod resolve;
pub mod rootfs;

pub(crate) use crate::sys::mount::at_cwd as cwd;
