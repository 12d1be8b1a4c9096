//! The overlayfs "opaque directory" mark, as an extended attribute (through rustix: nix has no xattr calls).
//!
//! Every box's overlay is mounted inside a user namespace with `userxattr` (as root too: the
//! executor always makes a user namespace), and such an overlay reads only
//! `user.overlay.opaque`: layers carry that mark for every user. `trusted.overlay.opaque` is
//! still recognised when reading (the copy fallback), for layers written before.

use std::os::fd::BorrowedFd;
use std::path::Path;

use nix::errno::Errno;
use rustix::fs::XattrFlags;

/// The mark a `userxattr` overlay reads.
pub const OPAQUE: &str = "user.overlay.opaque";
/// The mark an overlay mounted without `userxattr` reads.
const TRUSTED_OPAQUE: &str = "trusted.overlay.opaque";

/// Mark the open directory `dir` opaque (`user.overlay.opaque`).
pub fn set_opaque(dir: BorrowedFd<'_>) -> Result<(), Errno> {
    rustix::fs::fsetxattr(dir, OPAQUE, b"y", XattrFlags::empty())
        .map_err(|e| Errno::from_raw(e.raw_os_error()))
}

/// Whether the directory at `path` (not followed if a symlink) is marked opaque, in either
/// namespace.
pub fn is_opaque(path: &Path) -> bool {
    [OPAQUE, TRUSTED_OPAQUE].iter().any(|attr| {
        let mut buf = [0u8; 4];
        matches!(rustix::fs::lgetxattr(path, *attr, &mut buf[..]), Ok(1)) && buf[0] == b'y'
    })
}
