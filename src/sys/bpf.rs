//! bpf(2) for cgroup device programs: load one, attach it to a cgroup v2 directory, list the
//! programs attached there and detach one. libc has the syscall number but not `union
//! bpf_attr`: each command's part of it is a `#[repr(C)]` struct here, laid out as in
//! linux/bpf.h (the kernel reads `size` bytes and wants any bytes it knows beyond them zero,
//! so a prefix of the union is enough).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

/// `enum bpf_prog_type`'s BPF_PROG_TYPE_CGROUP_DEVICE.
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `enum bpf_attach_type`'s BPF_CGROUP_DEVICE.
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// Several programs on one cgroup, all of which must allow (runc and crun attach so).
pub const F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    /// Explicit, so that it is zero: the kernel refuses non-zero bytes past a command's fields.
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, size of attr).
///
/// SAFETY (for callers): `attr` is one of the structs above, filled so that every pointer in
/// it is valid for what the kernel does with it during the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    let r = libc::syscall(
        libc::SYS_bpf,
        cmd,
        attr as *mut T as *mut libc::c_void,
        std::mem::size_of::<T>() as libc::c_uint,
    );
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// Load a program of `prog_type` made of `insns` (each instruction's 8 bytes). The verifier's
/// log goes to `log` (when not empty), to be shown when the kernel refuses the program.
pub fn prog_load(
    prog_type: u32,
    insns: &[[u8; 8]],
    license: &std::ffi::CStr,
    log: &mut [u8],
) -> io::Result<OwnedFd> {
    let mut attr = ProgLoad {
        prog_type,
        insn_cnt: u32::try_from(insns.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoad::default()
    };
    if !log.is_empty() {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    // SAFETY: `insns` holds insn_cnt 8-byte instructions, `license` is NUL-terminated and
    // `log` is writable for log_size bytes; all three outlive the call. The kernel returns a
    // new descriptor, owned by nothing else.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
    // SAFETY: see above: a fresh descriptor of this process.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn attach_attr(target: BorrowedFd<'_>, prog: BorrowedFd<'_>, kind: u32, flags: u32) -> ProgAttach {
    ProgAttach {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: kind,
        attach_flags: flags,
    }
}

/// Attach `prog` to the cgroup directory open at `target`.
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    kind: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = attach_attr(target, prog, kind, flags);
    // SAFETY: the attr holds descriptors and numbers only, no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

/// Detach `prog` from the cgroup directory open at `target`.
pub fn prog_detach(target: BorrowedFd<'_>, prog: BorrowedFd<'_>, kind: u32) -> io::Result<()> {
    let mut attr = attach_attr(target, prog, kind, 0);
    // SAFETY: the attr holds descriptors and numbers only, no pointers.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// The ids of the programs attached to the cgroup open at `target` (itself, not its parents).
pub fn prog_query(target: BorrowedFd<'_>, kind: u32) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = ProgQuery {
            target_fd: target.as_raw_fd() as u32,
            attach_type: kind,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..ProgQuery::default()
        };
        // SAFETY: `ids` is writable for prog_cnt u32s and outlives the call.
        match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // More than there is room for: prog_cnt says how many.
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSPC) && attr.prog_cnt as usize > ids.len() =>
            {
                ids = vec![0u32; attr.prog_cnt as usize];
            }
            Err(e) => return Err(e),
        }
    }
}

/// A descriptor of the loaded program with this id.
pub fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdById {
        prog_id: id,
        ..GetFdById::default()
    };
    // SAFETY: the attr holds numbers only; the kernel returns a new descriptor.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
    // SAFETY: a fresh descriptor of this process, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_linux_bpf_h() {
        assert_eq!(std::mem::size_of::<ProgLoad>(), 48);
        assert_eq!(std::mem::offset_of!(ProgLoad, log_buf), 32);
        assert_eq!(std::mem::size_of::<ProgAttach>(), 16);
        assert_eq!(std::mem::offset_of!(ProgQuery, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(ProgQuery, prog_cnt), 24);
        assert_eq!(std::mem::size_of::<ProgQuery>(), 32);
        assert_eq!(std::mem::size_of::<GetFdById>(), 12);
    }
}
