//! A network namespace made beside the box's set-up process.
//!
//! Making a network namespace is the slowest part of making a box's namespaces (about 0.4 ms
//! here: the kernel sets up a whole network stack, its sysctls and its loopback device). The
//! set-up process has other work to do before it needs one (the root filesystem, /proc, /dev),
//! so a maker does it meanwhile, on another CPU when there is one: a process sharing the set-up
//! process's memory and file table (`CLONE_VM | CLONE_FILES`), and so its user namespace, that
//! unshares a network namespace, brings `lo` up and opens the namespace into the shared file
//! table. The set-up process joins it when it needs it ([`NetNs::join`]).
//!
//! The maker runs at the same time as the set-up process and in the same memory, so it makes
//! only raw syscalls through rustix, which neither allocate nor touch errno (glibc keeps errno
//! in thread-local storage, which the maker shares), and writes only its own `Slot`.

use std::io;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::thread::UnshareFlags;

use super::net::loopback_up_raw;
use super::process as p;
use super::stack::Stack;

/// The maker's stack: it runs three syscall wrappers.
const STACK: usize = 64 << 10;

/// What the maker was doing when it failed, by index in [`Slot::stage`].
const STAGES: [&str; 3] = [
    "unshare a network namespace",
    "bring up lo",
    "open the new network namespace",
];

/// Written by the maker, read by the set-up process once it has reaped the maker.
struct Slot {
    fd: AtomicI32,
    errno: AtomicI32,
    stage: AtomicUsize,
}

/// A maker at work.
pub struct Maker {
    pid: libc::pid_t,
    slot: Box<Slot>,
    _stack: Stack,
    reaped: bool,
}

/// This process's network namespace: being made beside it, or made already.
pub enum NetNs {
    Making(Maker),
    Made,
}

/// Start making a network namespace for this process. The caller must be in the user
/// namespace that is to own it, with its capabilities there. Where no process can be started
/// for it (a box whose pids limit leaves room for its own process only), the namespace is made
/// here and now instead.
pub fn begin() -> Result<NetNs, (&'static str, io::Error)> {
    match start() {
        Ok(m) => Ok(NetNs::Making(m)),
        Err(_) => {
            // SAFETY: the caller is single-threaded; leaving its network namespace is the point.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }
                .map_err(|e| (STAGES[0], e.into()))?;
            loopback_up_raw().map_err(|e| (STAGES[1], e.into()))?;
            Ok(NetNs::Made)
        }
    }
}

impl NetNs {
    /// Be in the new namespace once this returns. Returns what failed and how.
    pub fn join(self) -> Result<(), (&'static str, io::Error)> {
        match self {
            NetNs::Making(m) => m.join(),
            NetNs::Made => Ok(()),
        }
    }
}

fn start() -> io::Result<Maker> {
    let stack = Stack::new(STACK)?;
    let slot = Box::new(Slot {
        fd: AtomicI32::new(-1),
        errno: AtomicI32::new(0),
        stage: AtomicUsize::new(0),
    });
    // SAFETY: the maker runs `make` on `stack` with a pointer to `slot`. Both stay alive until
    // it has been reaped: `Maker` owns them and waits for it before they are dropped (and a
    // set-up process that exits early takes the maker with it: it is pid 1 of the box's pid
    // namespace). `make` only writes `slot` and issues raw syscalls.
    let pid = unsafe {
        libc::clone(
            make,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_FILES | libc::SIGCHLD,
            &*slot as *const Slot as *mut libc::c_void,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    elsewhere(pid);
    Ok(Maker {
        pid,
        slot,
        _stack: stack,
        reaped: false,
    })
}

/// Keep `pid` off this CPU when there is another: the scheduler tends to queue a new process
/// behind its parent, which would then make the namespace only once the set-up process waits
/// for it.
fn elsewhere(pid: libc::pid_t) {
    // SAFETY: cpu_set_t is plain data; the calls read and write only the sets given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        // The getcpu syscall, not glibc's sched_getcpu: that reads the thread's rseq area,
        // which a set-up process cloned by the holder's joiner (CLONE_VM, so no rseq of its
        // own) inherits stale from foxbox's main thread.
        let mut me: libc::c_uint = 0;
        if libc::syscall(
            libc::SYS_getcpu,
            &mut me as *mut libc::c_uint,
            std::ptr::null_mut::<libc::c_uint>(),
            std::ptr::null_mut::<libc::c_void>(),
        ) != 0
        {
            return;
        }
        let me = me as i32;
        if me < 0 || !libc::CPU_ISSET(me as usize, &set) || libc::CPU_COUNT(&set) < 2 {
            return;
        }
        libc::CPU_CLR(me as usize, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

extern "C" fn make(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the Slot that `start` passed, alive until this process is reaped.
    let slot = unsafe { &*(arg as *const Slot) };
    let made = (|| {
        // SAFETY: this process is single-threaded and shares no filesystem information;
        // leaving the network namespace changes nothing the set-up process relies on.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }.map_err(|e| (0, e))?;
        loopback_up_raw().map_err(|e| (1, e))?;
        rustix::fs::open(
            c"/proc/self/ns/net",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| (2, e))
    })();
    match made {
        Ok(fd) => slot.fd.store(fd.into_raw_fd(), Ordering::Release),
        Err((stage, e)) => {
            slot.stage.store(stage, Ordering::Relaxed);
            slot.errno.store(e.raw_os_error(), Ordering::Release);
        }
    }
    0
}

impl Maker {
    /// Wait for the maker and move this process into the namespace it made.
    fn join(mut self) -> Result<(), (&'static str, io::Error)> {
        let ended = self.reap();
        let fd = self.slot.fd.load(Ordering::Acquire);
        if fd < 0 {
            let errno = self.slot.errno.load(Ordering::Acquire);
            if errno == 0 {
                // It never got to say: killed, say.
                let how = match ended {
                    Some(p::Exit::Signal(s)) => format!("killed by signal {s}"),
                    Some(p::Exit::Code(c)) => format!("exited with {c}"),
                    None => "lost".to_string(),
                };
                return Err((
                    "make a network namespace",
                    io::Error::other(format!("the maker {how}")),
                ));
            }
            let stage = STAGES[self
                .slot
                .stage
                .load(Ordering::Relaxed)
                .min(STAGES.len() - 1)];
            return Err((stage, io::Error::from_raw_os_error(errno)));
        }
        // SAFETY: the maker opened this descriptor in the file table it shared with this
        // process, and nothing else owns it.
        let ns = unsafe { OwnedFd::from_raw_fd(fd) };
        p::setns(ns.as_fd(), libc::CLONE_NEWNET).map_err(|e| ("join the new network namespace", e))
    }

    fn reap(&mut self) -> Option<p::Exit> {
        if self.reaped {
            return None;
        }
        self.reaped = true;
        p::wait_pid(self.pid).ok()
    }
}

impl Drop for Maker {
    fn drop(&mut self) {
        // Its stack must outlive it.
        let _ = self.reap();
    }
}
