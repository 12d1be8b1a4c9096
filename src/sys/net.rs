//! The little networking the executor does itself: bring up `lo` in a new network namespace.

use std::io;

use rustix::ioctl::{ioctl, Opcode, Updater};
use rustix::net::{socket, AddressFamily, SocketType};

const SIOCGIFFLAGS: Opcode = libc::SIOCGIFFLAGS as Opcode;
const SIOCSIFFLAGS: Opcode = libc::SIOCSIFFLAGS as Opcode;

/// Set IFF_UP on the loopback interface of this network namespace.
pub fn loopback_up() -> io::Result<()> {
    Ok(loopback_up_raw()?)
}

/// [`loopback_up`] in raw syscalls only (no allocation, errno untouched), so that a process
/// sharing another's memory may call it (see [`super::netns`]).
pub fn loopback_up_raw() -> rustix::io::Result<()> {
    let s = socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    // SAFETY: ifreq is plain data, all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: both ioctls take a `struct ifreq` naming the interface; SIOCGIFFLAGS fills in
    // its flags, SIOCSIFFLAGS reads them.
    unsafe {
        ioctl(&s, Updater::<SIOCGIFFLAGS, libc::ifreq>::new(&mut req))?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        ioctl(&s, Updater::<SIOCSIFFLAGS, libc::ifreq>::new(&mut req))?;
    }
    Ok(())
}
