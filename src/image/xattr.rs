//! The overlayfs "opaque directory" mark, as an extended attribute (nix has no xattr calls).
//!
//! Every box's overlay is mounted inside a user namespace with `userxattr` (as root too: the
//! executor always makes a user namespace), and such an overlay reads only
//! `user.overlay.opaque`: layers carry that mark for every user. `trusted.overlay.opaque` is
//! still recognised when reading (the copy fallback), for layers written before.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

/// The mark a `userxattr` overlay reads.
pub const OPAQUE: &str = "user.overlay.opaque";
/// The mark an overlay mounted without `userxattr` reads.
const TRUSTED_OPAQUE: &str = "trusted.overlay.opaque";

/// Mark the open directory `dir` opaque (`user.overlay.opaque`).
pub fn set_opaque(dir: BorrowedFd<'_>) -> Result<(), Errno> {
    let name = CString::new(OPAQUE).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `dir` is a live fd for the call's duration; name is NUL-terminated; the value
    // pointer and length describe a live one-byte buffer.
    let rc = unsafe { libc::fsetxattr(dir.as_raw_fd(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    Errno::result(rc).map(drop)
}

/// Whether the directory at `path` (not followed if a symlink) is marked opaque, in either
/// namespace.
pub fn is_opaque(path: &Path) -> bool {
    let Ok(p) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    [OPAQUE, TRUSTED_OPAQUE].iter().any(|attr| {
        let Ok(name) = CString::new(*attr) else {
            return false;
        };
        let mut buf = [0u8; 4];
        // SAFETY: both strings are NUL-terminated and live; buf is a live writable buffer of
        // the length passed.
        let n = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        n == 1 && buf[0] == b'y'
    })
}
