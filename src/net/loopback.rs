//! `lo` up inside a new network namespace (the `none` mode's only interface).
//!
//! Runs in the box's child after it has unshared its network namespace. The ioctls are
//! [`crate::sys::net::loopback_up`]'s, which allocates nothing.

use super::NetError;

/// Set `IFF_UP` on `lo` in the calling thread's network namespace.
pub fn bring_up_loopback() -> Result<(), NetError> {
    crate::sys::net::loopback_up().map_err(NetError::Loopback)
}
