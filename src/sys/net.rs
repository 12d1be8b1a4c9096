//! The little networking the executor does itself: bring up `lo` in a new network namespace.

use std::io;

/// Set IFF_UP on the loopback interface of this network namespace.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: a datagram socket used only for the interface ioctls below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain data; the name fits (3 bytes + NUL) and the ioctls read/write it.
    let r = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut r = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req);
        if r == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
        }
        r
    };
    let err = io::Error::last_os_error();
    // SAFETY: closing the socket we opened.
    unsafe { libc::close(s) };
    if r < 0 {
        Err(err)
    } else {
        Ok(())
    }
}
