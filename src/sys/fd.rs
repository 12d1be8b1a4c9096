//! File descriptor odds and ends: poll, non-blocking mode, dup2, raw writes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// poll(2), retried on EINTR; `None` waits forever.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<std::time::Duration>) -> io::Result<()> {
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    loop {
        // SAFETY: fds is a valid, initialised slice of pollfd for the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let fl = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let fl = OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(fl))
        .map(drop)
        .map_err(io::Error::from)
}

/// dup2(2) `from` onto descriptor number `to` (stdio, on purpose): whatever `to` was is
/// closed. The caller makes sure no `OwnedFd` of its own owns `to`.
pub fn dup_onto(from: BorrowedFd<'_>, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 touches no memory of ours; replacing `to` is what the caller asked for.
    if unsafe { libc::dup2(from.as_raw_fd(), to) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One write(2) of `buf` to descriptor number `fd`, which the caller keeps open (a raw
/// number, for a descriptor held for the whole life of the process); returns the bytes
/// written. Allocates nothing.
pub fn write_raw(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes and only read; whatever `fd` is, the call
    // touches no other memory of ours.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
