//! Run work as root of a user namespace that holds the caller's id maps.
//!
//! An unprivileged user's store holds files owned by the ids of their subordinate range (an
//! image's `daemon`, `nobody`, ...). Only root of a user namespace with that range mapped may
//! create them with those owners, or remove them afterwards. [`run_as_root`] forks a child that
//! unshares a user namespace; the parent installs the maps with [`IdMaps::write`] (through
//! newuidmap/newgidmap when there is a range); the child, now uid 0 inside with full
//! capabilities over every mapped id, runs the closure and sends its result back over a pipe.
//!
//! Why fork and not re-exec the binary: the closure runs with the caller's state at hand (no
//! argument encoding), and a library caller (the executor, tests) need not be the foxbox binary.
//! The price: the caller must be single-threaded when it calls this (the CLI is; a forked
//! child of a threaded process may find a lock held by a thread that did not come along). The
//! child may start threads of its own once it runs the closure.
//!
//! For root no namespace is needed: the closure runs in-process.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::idmap::{IdMapError, IdMaps};

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("cannot {what}: {errno}")]
    Sys {
        what: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("cannot create a user namespace: {0}")]
    Unshare(String),
    #[error("cannot map ids into the user namespace: {0}")]
    Maps(#[from] IdMapError),
    #[error("the user-namespace helper died: {0}")]
    Died(String),
    /// The closure's own error, as text.
    #[error("{0}")]
    Failed(String),
}

fn sys(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> UsernsError {
    move |errno| UsernsError::Sys { what, errno }
}

/// Run `f` as root: directly when the caller is root, else in a forked child that is root of a
/// new user namespace with `maps` installed. The child's stdin/stdout/stderr are the caller's.
///
/// The caller must be single-threaded (see the module docs).
pub fn run_as_root<T, E, F>(maps: &IdMaps, f: F) -> Result<T, UsernsError>
where
    T: Serialize + DeserializeOwned,
    E: std::fmt::Display,
    F: FnOnce() -> Result<T, E>,
{
    if nix::unistd::geteuid().is_root() {
        return f().map_err(|e| UsernsError::Failed(e.to_string()));
    }
    in_child(maps, f)
}

/// Run `f` in a forked child that is root: of a new user namespace with `maps` when the caller
/// is not root, plain root otherwise. For work that must not touch the caller's own process
/// state (a child that unshares a mount namespace to try a mount, for instance).
///
/// The caller must be single-threaded (see the module docs).
pub fn run_in_child_as_root<T, E, F>(maps: &IdMaps, f: F) -> Result<T, UsernsError>
where
    T: Serialize + DeserializeOwned,
    E: std::fmt::Display,
    F: FnOnce() -> Result<T, E>,
{
    in_child(maps, f)
}

/// Messages from the child: one status byte, then (after `DONE`) the JSON of the result.
const UNSHARED: u8 = b'U';
const UNSHARE_FAILED: u8 = b'E';
const GO: u8 = b'G';

fn in_child<T, E, F>(maps: &IdMaps, f: F) -> Result<T, UsernsError>
where
    T: Serialize + DeserializeOwned,
    E: std::fmt::Display,
    F: FnOnce() -> Result<T, E>,
{
    let (up_r, up_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
    let (down_r, down_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
    let parent = nix::unistd::getpid();
    // SAFETY: the child only runs Rust code of this process and leaves through `_exit`; the
    // caller guarantees it is single-threaded, so no lock is held by a thread that is not
    // copied into the child.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(up_r);
            drop(down_w);
            let code = child(parent, up_w, down_r, f);
            // SAFETY: _exit ends the child without running the parent's atexit handlers or
            // destructors (a TempDir of the parent's must not be removed by its child).
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(up_w);
            drop(down_r);
            parent_side(maps, child, up_r, down_w)
        }
    }
}

fn parent_side<T: DeserializeOwned>(
    maps: &IdMaps,
    child: Pid,
    up_r: OwnedFd,
    down_w: OwnedFd,
) -> Result<T, UsernsError> {
    let mut up = std::fs::File::from(up_r);
    let mut down = std::fs::File::from(down_w);
    let mut first = [0u8; 1];
    let got = read_full(&mut up, &mut first);
    let outcome = match got {
        Ok(1) if first[0] == UNSHARED => match write_maps(maps, child) {
            Ok(()) => {
                let _ = down.write_all(&[GO]);
                drop(down);
                let mut body = Vec::new();
                match up.read_to_end(&mut body) {
                    Ok(_) => decode::<T>(&body),
                    Err(e) => Err(UsernsError::Died(format!("reading its answer: {e}"))),
                }
            }
            Err(e) => {
                let _ = kill(child, Signal::SIGKILL);
                Err(UsernsError::Maps(e))
            }
        },
        Ok(1) if first[0] == UNSHARE_FAILED => {
            let mut msg = String::new();
            let _ = up.read_to_string(&mut msg);
            Err(UsernsError::Unshare(msg))
        }
        _ => Err(UsernsError::Died("it exited before unsharing".into())),
    };
    let status = loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    match (outcome, status) {
        (Ok(v), Ok(WaitStatus::Exited(_, 0))) => Ok(v),
        (Err(e), _) => Err(e),
        (Ok(_), Ok(WaitStatus::Signaled(_, sig, _))) => {
            Err(UsernsError::Died(format!("killed by {sig:?}")))
        }
        (Ok(_), s) => Err(UsernsError::Died(format!("{s:?}"))),
    }
}

fn write_maps(maps: &IdMaps, child: Pid) -> Result<(), IdMapError> {
    if nix::unistd::geteuid().is_root() {
        // Root's child stays in the initial user namespace: nothing to map.
        return Ok(());
    }
    maps.write(child.as_raw())
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[derive(Serialize, serde::Deserialize)]
enum Answer<T> {
    Ok(T),
    Err(String),
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, UsernsError> {
    match serde_json::from_slice::<Answer<T>>(body) {
        Ok(Answer::Ok(v)) => Ok(v),
        Ok(Answer::Err(e)) => Err(UsernsError::Failed(e)),
        Err(_) if body.is_empty() => Err(UsernsError::Died("it sent no answer".into())),
        Err(e) => Err(UsernsError::Died(format!("its answer does not parse: {e}"))),
    }
}

/// The child's side; returns its exit code.
fn child<T, E, F>(parent: Pid, up_w: OwnedFd, down_r: OwnedFd, f: F) -> i32
where
    T: Serialize,
    E: std::fmt::Display,
    F: FnOnce() -> Result<T, E>,
{
    let mut up = std::fs::File::from(up_w);
    let mut down = std::fs::File::from(down_r);
    // Die with the parent: an orphan must not go on writing into the store.
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if nix::unistd::getppid() != parent {
        return 1;
    }
    let unshared = if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        unshare(CloneFlags::CLONE_NEWUSER)
    };
    if let Err(e) = unshared {
        let _ = up.write_all(&[UNSHARE_FAILED]);
        let _ = up.write_all(e.desc().as_bytes());
        return 1;
    }
    if up.write_all(&[UNSHARED]).is_err() {
        return 1;
    }
    let mut go = [0u8; 1];
    if !matches!(read_full(&mut down, &mut go), Ok(1)) || go[0] != GO {
        return 1;
    }
    let answer = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Answer::Ok(v),
        Ok(Err(e)) => Answer::Err(e.to_string()),
        Err(_) => Answer::Err("internal error: the user-namespace helper panicked".into()),
    };
    let failed = matches!(answer, Answer::Err(_));
    match serde_json::to_vec(&answer) {
        Ok(body) if up.write_all(&body).is_ok() => i32::from(failed),
        _ => 1,
    }
}
