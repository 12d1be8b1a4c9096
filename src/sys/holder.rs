//! A user namespace held open by another process (the id holder, see `runner::holder`), and
//! starting a process inside it: the clone has to come from a process that joined the held
//! namespace, and the new process has to be the caller's own child, with its maps written.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::idmap::{nested, IdMaps, IdRange};
use super::process as p;
use super::stack::Stack;

/// A holder's user namespace, open.
#[derive(Debug)]
pub struct Holder {
    userns: OwnedFd,
    /// The holder's maps (the caller's full id maps).
    maps: IdMaps,
}

impl Holder {
    /// The user namespace `userns` (an open `/proc/<pid>/ns/user`), whose maps are `maps`,
    /// the caller's full id maps.
    pub fn new(userns: OwnedFd, maps: IdMaps) -> Holder {
        Holder { userns, maps }
    }

    /// Start a process in new namespaces (`flags`, which include a new user namespace): its
    /// user namespace made inside the holder's, its maps (`maps` as the holder's ids: the
    /// identity for the caller's own maps, a reordering for `keep-id`) written, and it the caller's own child. It runs `child` (which must not return;
    /// if it does, the process exits) on a copy of the caller's memory, as after a fork.
    /// Returns its pid and a pidfd. The caller must be single-threaded.
    ///
    /// The clone has to come from inside the holder's namespace, which the caller must not
    /// join itself: a joiner does it, sharing the caller's memory while the caller waits
    /// (`CLONE_VM | CLONE_VFORK`, as posix_spawn does), so that no page tables are copied
    /// for it. It calls only syscalls.
    pub fn spawn<F: FnOnce()>(
        &self,
        flags: u64,
        maps: &IdMaps,
        child: F,
    ) -> io::Result<(i32, OwnedFd)> {
        let mut uid_map = nested_text(&maps.uids, &self.maps.uids).into_bytes();
        let mut gid_map = nested_text(&maps.gids, &self.maps.gids).into_bytes();
        uid_map.push(0);
        gid_map.push(0);
        let stack = Stack::new(JOINER_STACK)?;
        let mut args = JoinArgs {
            userns: self.userns.as_raw_fd(),
            flags: flags | libc::CLONE_PARENT as u64,
            uid_map: &uid_map[..uid_map.len() - 1],
            gid_map: &gid_map[..gid_map.len() - 1],
            child: Some(child),
            pid: -1,
            errno: 0,
            failed: "",
        };
        // SAFETY: the joiner runs `joiner::<F>` on `stack` (its top, which grows down) with a
        // pointer to `args`, which outlives it: with CLONE_VFORK this call returns only once
        // the joiner has exited. It shares this process's memory (CLONE_VM) and so only
        // issues syscalls and writes its results into `args`.
        let tid = unsafe {
            libc::clone(
                joiner::<F>,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                &mut args as *mut JoinArgs<'_, F> as *mut libc::c_void,
            )
        };
        if tid < 0 {
            return Err(io::Error::last_os_error());
        }
        let _ = p::wait_pid(tid);
        if args.pid <= 0 {
            return Err(io::Error::other(format!(
                "{}: {}",
                args.failed,
                io::Error::from_raw_os_error(args.errno)
            )));
        }
        // The new process is this process's child (CLONE_PARENT): its pid cannot be reused
        // before this process reaps it.
        let pidfd = p::pidfd_open(args.pid)?;
        Ok((args.pid, pidfd))
    }
}

/// The joiner's stack: it also becomes the stack the new process starts on (a copy of it).
const JOINER_STACK: usize = 8 << 20;

/// Shared between the caller and the joiner.
struct JoinArgs<'a, F> {
    userns: RawFd,
    flags: u64,
    uid_map: &'a [u8],
    gid_map: &'a [u8],
    child: Option<F>,
    pid: i32,
    errno: i32,
    failed: &'static str,
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The joiner: join the holder's user namespace, clone the new process, write its maps.
extern "C" fn joiner<F: FnOnce()>(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the caller's `JoinArgs`, alive and not touched by the caller until
    // this function has returned and the joiner exited (CLONE_VFORK).
    let a = unsafe { &mut *(arg as *mut JoinArgs<'_, F>) };
    // SAFETY: setns on a descriptor of the caller's; affects only the joiner.
    if unsafe { libc::setns(a.userns, libc::CLONE_NEWUSER) } != 0 {
        a.errno = errno();
        a.failed = "join the holder's user namespace";
        return 0;
    }
    // SAFETY: zeroed clone_args are valid; the fields set are flags and (none) exit signal:
    // with CLONE_PARENT the new process reports to the caller with the joiner's SIGCHLD.
    let r = unsafe {
        let mut ca: libc::clone_args = std::mem::zeroed();
        ca.flags = a.flags;
        libc::syscall(
            libc::SYS_clone3,
            &mut ca as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if r == 0 {
        // The new process, on its own copy of the memory: run the caller's child code.
        if let Some(f) = a.child.take() {
            f();
        }
        p::exit_now(125);
    }
    if r < 0 {
        a.errno = errno();
        a.failed = "clone into the holder's user namespace";
        return 0;
    }
    let pid = r as i32;
    for (file, map) in [(&b"uid_map"[..], a.uid_map), (&b"gid_map"[..], a.gid_map)] {
        if let Err(e) = write_proc_file(pid, file, map) {
            a.errno = e;
            a.failed = "write the new process's id maps";
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return 0;
        }
    }
    a.pid = pid;
    0
}

/// Write `/proc/<pid>/<file>` with syscalls only (the joiner must not allocate).
fn write_proc_file(pid: i32, file: &[u8], data: &[u8]) -> Result<(), i32> {
    let mut path = [0u8; 64];
    let mut n = 0;
    for b in b"/proc/" {
        path[n] = *b;
        n += 1;
    }
    let mut digits = [0u8; 12];
    let mut d = 0;
    let mut v = pid as u32;
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        path[n] = digits[d];
        n += 1;
    }
    path[n] = b'/';
    n += 1;
    for b in file {
        path[n] = *b;
        n += 1;
    }
    path[n] = 0;
    // SAFETY: a NUL-terminated path in a local buffer; the descriptor is closed here.
    unsafe {
        let fd = libc::open(
            path.as_ptr() as *const libc::c_char,
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(errno());
        }
        let w = libc::write(fd, data.as_ptr() as *const libc::c_void, data.len());
        let e = errno();
        libc::close(fd);
        if w != data.len() as isize {
            return Err(e);
        }
    }
    Ok(())
}

/// A box's maps (box ids to host ids) as the lines a process in the holder's namespace
/// (whose maps are `holder`) writes.
pub(crate) fn nested_text(ranges: &[IdRange], holder: &[IdRange]) -> String {
    nested(ranges, holder)
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}
