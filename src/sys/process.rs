//! Processes: a fork-like clone3 into new namespaces, pidfds, fd closing, prctl bits, signals.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Namespace flags for [`fork_into`].
pub mod ns {
    pub const USER: u64 = libc::CLONE_NEWUSER as u64;
    pub const MOUNT: u64 = libc::CLONE_NEWNS as u64;
    pub const PID: u64 = libc::CLONE_NEWPID as u64;
    pub const UTS: u64 = libc::CLONE_NEWUTS as u64;
    pub const IPC: u64 = libc::CLONE_NEWIPC as u64;
    pub const CGROUP: u64 = libc::CLONE_NEWCGROUP as u64;
    pub const NET: u64 = libc::CLONE_NEWNET as u64;
}

/// Which side of [`fork_into`] we are on.
pub enum Forked {
    /// In the parent: the child's pid and a pidfd for it.
    Parent {
        pid: i32,
        pidfd: OwnedFd,
    },
    Child,
}

/// Fork into new namespaces (clone3 with no new stack: the child continues on a copy of ours,
/// as with fork). The child gets SIGCHLD as its exit signal.
///
/// The caller must be single-threaded: the child holds a copy of every lock as it was, and a
/// multi-threaded process cannot enter a new user namespace anyway.
pub fn fork_into(namespaces: u64) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = libc::clone_args {
        flags: namespaces | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        child_tid: 0,
        parent_tid: 0,
        // clone3 refuses an exit signal with CLONE_PARENT: the child then takes the caller's
        // own (SIGCHLD, for a forked caller) and reports to the caller's parent.
        exit_signal: if namespaces & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    // SAFETY: clone3 with a zero stack behaves like fork: the child resumes here on a copy of
    // this stack. `args` and `pidfd` live across the call. No other thread exists (see above).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match r {
        0 => Ok(Forked::Child),
        n if n > 0 => Ok(Forked::Parent {
            pid: n as i32,
            // SAFETY: the kernel stored a new pidfd that nothing else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Plain fork(2) (glibc's, so its at-fork bookkeeping stays right).
pub fn fork() -> io::Result<Option<i32>> {
    // SAFETY: callers are single-threaded (the box's set-up process).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid)),
    }
}

/// A pidfd for process `pid` (race-free for a child not yet reaped).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
    }
}

/// Send `sig` through a pidfd (immune to pid reuse).
pub fn pidfd_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a valid pidfd, a null siginfo and no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// How a waited-for process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// podman's convention: the code, or 128+N for signal N.
    pub fn shell_code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// Move this process into the namespace(s) `fd` refers to (a namespace file or a pidfd).
pub fn setns(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: setns on a valid descriptor; it changes only this process's namespaces (for a
    // user namespace the kernel refuses a multi-threaded caller).
    if unsafe { libc::setns(fd.as_raw_fd(), flags) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// [`setns`] on a descriptor number inherited across a clone (a stale one is `EBADF`).
pub fn setns_raw(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: setns only reads the descriptor number; one that is not open (or not a
    // namespace) is refused with an error, nothing else is touched.
    if unsafe { libc::setns(fd, flags) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// setdomainname(2): the uts namespace's NIS domain name (its /proc/sys file is not writable
/// from a user namespace, the syscall is).
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: the kernel reads exactly `len` bytes from the pointer, which `name` holds.
    if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// waitpid(pid, 0), retried on EINTR.
pub fn wait_pid(pid: i32) -> io::Result<Exit> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        return Ok(decode_status(status));
    }
}

/// waitpid(-1, WNOHANG): a child that has ended, if any.
pub fn reap_any() -> Option<(i32, Exit)> {
    let mut status = 0;
    // SAFETY: status is a valid out pointer.
    let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (r > 0).then(|| (r, decode_status(status)))
}

fn decode_status(status: i32) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Close every descriptor from `from` up, except `keep`.
pub fn close_fds_from(from: u32, keep: Option<RawFd>) -> io::Result<()> {
    close_fds_except(from, keep.as_slice())
}

/// Close every descriptor from `from` up, except those in `keep`.
pub fn close_fds_except(from: u32, keep: &[RawFd]) -> io::Result<()> {
    let close = |lo: u32, hi: u32| -> io::Result<()> {
        if lo > hi {
            return Ok(());
        }
        // SAFETY: closing descriptors this process no longer uses; nothing borrows them (the
        // set-up process holds no OwnedFd above 2 but those in `keep` at this point).
        let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    let mut kept: Vec<u32> = keep
        .iter()
        .filter(|k| **k >= 0 && **k as u32 >= from)
        .map(|k| *k as u32)
        .collect();
    kept.sort_unstable();
    let mut lo = from;
    for k in kept {
        if k >= lo {
            close(lo, k - 1)?;
            lo = k + 1;
        }
    }
    close(lo, u32::MAX)
}

/// Block until one byte can be read from `fd` (a pipe or fifo the caller owns): `true` when
/// one was read, `false` at end of file.
pub fn wait_readable_byte(fd: RawFd) -> io::Result<bool> {
    let mut b = [0u8; 1];
    loop {
        // SAFETY: reads at most one byte into `b`, which outlives the call.
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
        if n >= 0 {
            return Ok(n == 1);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Signal this process gets when its parent dies.
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0).map(drop)
}

pub fn set_dumpable(on: bool) -> io::Result<()> {
    prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0).map(drop)
}

/// Become the reaper of orphaned descendants (they are reparented to this process).
pub fn set_child_subreaper() -> io::Result<()> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).map(drop)
}

/// Reap child `pid` if it has ended, without blocking; its status is not wanted.
pub fn try_reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid with a valid status pointer, without blocking.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
}

/// What `cmd`'s child does between fork and exec: with `die_with` (this process's pid), ask
/// for SIGKILL when its parent dies, and fail the spawn if that parent is already gone; and
/// keep the descriptors `keep` open across the exec.
pub fn before_exec(
    cmd: &mut std::process::Command,
    die_with: Option<libc::pid_t>,
    keep: Vec<RawFd>,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec; it only makes async-signal-safe
    // syscalls (prctl, getppid, fcntl) and does not allocate (`keep` is only iterated).
    unsafe {
        cmd.pre_exec(move || {
            if let Some(parent) = die_with {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl: then no signal will ever come.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Where this process's argument and environment strings are (the kernel copied them onto
/// its stack at exec), for [`retitle`]. Only [`ArgArea::of_self`] makes one, so it always
/// describes the address space of the process that read it, or of a fork of it (a copy).
#[derive(Debug, Clone, Copy)]
pub struct ArgArea {
    args: (usize, usize),
    env: (usize, usize),
}

impl ArgArea {
    /// Read from /proc/self/stat (fields 48 to 51).
    pub fn of_self() -> io::Result<ArgArea> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/self/stat");
        // Fields are counted from the last ')': the command name may hold anything.
        let rest = &stat[stat.rfind(')').ok_or_else(bad)? + 1..];
        let f: Vec<usize> = rest
            .split_whitespace()
            .skip(45)
            .take(4)
            .map(|v| v.parse().map_err(|_| bad()))
            .collect::<io::Result<_>>()?;
        let (args, env) = match f[..] {
            [a0, a1, e0, e1] if a0 < a1 && e0 <= e1 => ((a0, a1), (e0, e1)),
            _ => return Err(bad()),
        };
        Ok(ArgArea { args, env })
    }
}

/// Make /proc/self/cmdline read `name` alone, and blank the environment strings, in place (as
/// setproctitle does): nothing of the command line this process was started with stays
/// readable through /proc. The name is cut to fit the area.
pub fn retitle(area: ArgArea, name: &str) {
    let (start, end) = area.args;
    let len = end - start;
    let n = name.len().min(len.saturating_sub(2));
    // SAFETY: [start, end) and area.env are the argument and environment strings the kernel
    // placed on this process's stack at exec (or on the stack of the process it is a fork of:
    // the same addresses in a copy), mapped read-write for its whole life and never unmapped.
    // Nothing in Rust holds a reference into them (std keeps raw argv/environ pointers, which
    // then see shorter NUL-terminated strings); the process is single-threaded here.
    unsafe {
        let args = std::slice::from_raw_parts_mut(start as *mut u8, len);
        args.fill(0);
        args[..n].copy_from_slice(&name.as_bytes()[..n]);
        if len >= 2 {
            // A last byte that is not NUL tells the kernel the title was rewritten: it then
            // shows the area up to the first NUL only, not the NULs after the name.
            args[len - 1] = b' ';
        }
        let (e0, e1) = area.env;
        std::ptr::write_bytes(e0 as *mut u8, 0, e1 - e0);
    }
    let _ = set_name(name);
}

/// The thread's name (comm: /proc/self/comm, `ps`), cut to 15 bytes.
pub fn set_name(name: &str) -> io::Result<()> {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads at most 16 bytes from a NUL-terminated buffer that lives
    // across the call.
    let r = unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Block `sigs` in this thread; returns the previous mask.
pub fn block_signals(sigs: &[i32]) -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(old)
    }
}

/// Restore a signal mask.
pub fn set_signal_mask(mask: &libc::sigset_t) {
    // SAFETY: a valid, initialised mask.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
    }
}

/// SIGPIPE back to its default disposition (Rust's runtime ignores it before `main`): a write
/// to a pipe whose reader is gone then ends the process quietly.
pub fn default_sigpipe() {
    // SAFETY: installs the default disposition, no handler; nothing runs on another thread
    // that could be changing it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A signal set of a process from /proc/`pid`/status (`field`: `SigIgn`, `SigCgt`, ...): bit
/// N-1 for signal N.
pub fn signal_mask(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
    })
}

/// Ignored signals back to their default and an empty mask, as a fresh process expects
/// (ignored signals and the mask would otherwise outlive an exec; caught ones do not).
pub fn reset_signals() {
    // execve resets caught signals to their defaults by itself; only ignored ones survive it.
    // /proc tells which are ignored in one read, where asking sigaction costs a call a signal.
    let ignored = signal_mask("self", "SigIgn").unwrap_or(u64::MAX);
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || ignored & (1u64 << (sig - 1)) == 0 {
            continue;
        }
        // The raw call: libc's wrappers refuse the signals it reserves (32, 33), which a
        // caller may still have ignored. SAFETY: the kernel reads its own (smaller) struct
        // from the start of this zeroed buffer: SIG_DFL, no flags, no restorer, empty mask.
        unsafe {
            let act: libc::sigaction = std::mem::zeroed();
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &act as *const libc::sigaction,
                std::ptr::null_mut::<libc::sigaction>(),
                8usize,
            );
        }
    }
    // SAFETY: an empty mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// A signalfd for `sigs` (which the caller has blocked).
pub fn signalfd(sigs: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: a properly initialised mask; signalfd returns a new fd or -1.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Read one pending signal number from a signalfd, if any.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> Option<i32> {
    // SAFETY: signalfd_siginfo is plain data; we read at most its size into it.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let n = libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            std::mem::size_of::<libc::signalfd_siginfo>(),
        );
        (n == std::mem::size_of::<libc::signalfd_siginfo>() as isize)
            .then_some(info.ssi_signo as i32)
    }
}

/// Wait for one of `sigs` (blocked by the caller).
pub fn wait_signal(sigs: &[i32]) -> i32 {
    // SAFETY: a properly initialised mask; sigwaitinfo writes into `info`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::sigwaitinfo(&set, &mut info);
            if r > 0 {
                return r;
            }
        }
    }
}

/// kill(2).
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory effects.
    if unsafe { libc::kill(pid, sig) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Point stdin, stdout and stderr at /dev/null (a process that outlives its caller must not
/// hold the caller's terminal or pipes).
pub fn stdio_to_null() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for target in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors of this process; `null` stays open
            // until the calls are done.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
}

/// Yield the CPU to everything else (background work such as deleting a box's files).
pub fn lower_priority() {
    // SAFETY: setpriority on this process only; failure leaves the priority as it was.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
}

/// _exit(2): leave without running destructors or atexit handlers (the set-up child shares
/// them with the parent it was forked from).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// close(2) a descriptor this process holds without an owner (e.g. a copy inherited by fork).
pub fn close_raw(fd: RawFd) {
    // SAFETY: the caller guarantees no OwnedFd in this process refers to `fd` any more.
    unsafe { libc::close(fd) };
}

/// Eight random bytes from the kernel, if it has entropy ready.
pub fn random_u64() -> Option<u64> {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    (n == 8).then(|| u64::from_ne_bytes(b))
}

/// Set this process's limit `resource` (a `libc::RLIMIT_*`); children inherit it.
pub fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct it is given, which lives across the call.
    if unsafe { libc::setrlimit(resource, &lim) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
