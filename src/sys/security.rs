//! The raw system calls of capabilities, no_new_privs and seccomp (the security module's),
//! each wrapped once. None of them allocates, so they are safe to call in a child between fork
//! and exec.

use std::io;

use libc::{c_int, c_ulong};

use serde::Serialize;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// The kernel reads a program as `struct sock_filter[]`; `Insn` must be laid out the same.
const _: () = assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<libc::sock_filter>());
const _: () = assert!(std::mem::align_of::<Insn>() == std::mem::align_of::<libc::sock_filter>());

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// prctl(2) with integer arguments only.
pub(crate) fn prctl(
    op: c_int,
    a2: c_ulong,
    a3: c_ulong,
    a4: c_ulong,
    a5: c_ulong,
) -> io::Result<c_int> {
    // SAFETY: every option this module passes takes plain integers (no pointers), so the call
    // cannot touch our memory.
    let rc = unsafe { libc::prctl(op, a2, a3, a4, a5) };
    check(rc.into()).map(|r| r as c_int)
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct CapData {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// capget(2) for the calling thread: two words (capabilities 0-31, 32-63).
pub(crate) fn capget() -> io::Result<[CapData; 2]> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 makes the kernel write exactly two CapData structs, which `data` holds;
    // both pointers are valid for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    check(rc)?;
    Ok(data)
}

/// capset(2) for the calling thread.
pub(crate) fn capset(data: &[CapData; 2]) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: version 3 makes the kernel read two CapData structs, which `data` holds; the
    // header is valid and writable (the kernel may write the preferred version back).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    check(rc).map(|_| ())
}

const SECCOMP_SET_MODE_FILTER: c_ulong = 1;

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) for the calling thread.
pub(crate) fn seccomp_set_filter(flags: u32, insns: &[Insn]) -> io::Result<()> {
    let len = u16::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `len` instructions laid out as `struct sock_filter` (asserted
    // above); the kernel only reads them, and copies them before returning.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            c_ulong::from(flags),
            &prog as *const libc::sock_fprog,
        )
    };
    check(rc).map(|_| ())
}
