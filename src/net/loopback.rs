//! `lo` up inside a new network namespace (the `none` mode's only interface).
//!
//! Runs in the box's child after it has unshared its network namespace. It allocates nothing on
//! the success path, so it is safe between fork and exec of a multi-threaded parent.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::NetError;

/// Set `IFF_UP` on `lo` in the calling thread's network namespace.
pub fn bring_up_loopback() -> Result<(), NetError> {
    set_up(b"lo").map_err(NetError::Loopback)
}

fn set_up(name: &[u8]) -> io::Result<()> {
    let sock = dgram_socket()?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value (empty name, zero flags).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= ifr.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    ifreq_ioctl(&sock, libc::SIOCGIFFLAGS, &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ifreq_ioctl(&sock, libc::SIOCSIFFLAGS, &mut ifr)
}

fn dgram_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) has no memory preconditions; a non-negative result is a new descriptor
    // that nothing else owns.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq_ioctl(sock: &OwnedFd, req: libc::c_ulong, ifr: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: both requests read and write exactly one `struct ifreq`, which `ifr` points to
    // for the duration of the call; `sock` is an open socket.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), req, ifr as *mut libc::ifreq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
