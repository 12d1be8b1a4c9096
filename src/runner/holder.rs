//! The id holder: a small process that keeps a user namespace with an unprivileged caller's
//! full id maps (its own id and its subordinate range) open, so that each box gets its maps
//! without running the setuid helpers newuidmap and newgidmap (two setuid execs, about 2 ms,
//! on every start). Podman keeps its pause process for the same reason.
//!
//! A box's user namespace is then made inside the holder's: a short-lived fork of the caller
//! joins the holder's namespace, clones the box's set-up process as the caller's own child
//! (`CLONE_PARENT`) and writes its maps, the identity over the holder's ids, which its
//! capabilities there allow. Seen from the host the box's ids are what the helpers would have
//! made them; from inside the box, /proc/self/uid_map names the holder's ids.
//!
//! The holder is started on first use (the helpers run once, for it), recorded in
//! `<runtime>/userns-holder` (pid and start time) and checked on each use: one that died, or
//! whose maps differ from the caller's, is replaced. It exits once its record names another
//! process or is gone (the runtime directory is removed at logout).
//!
//! This is the service (its record, lock and life); the open namespace and the clone into it
//! are [`crate::sys::holder`].

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use crate::boxes::ProcId;
use crate::store::lock::{Lock, Mode};
use crate::sys::holder::Holder;
use crate::sys::idmap::{IdMaps, IdRange};
use crate::sys::process as p;

/// The first argument that makes the foxbox binary a holder (see [`serve_if_asked`]).
const SERVE_ARG: &str = "__foxbox-userns-holder";
const RECORD: &str = "userns-holder";
const LOCK: &str = "userns-holder.lock";

/// The holder for this runtime directory and these maps, started when there is none.
/// `None` when one cannot be had (the caller then uses the helpers itself).
pub fn get(runtime: &Path, maps: &IdMaps) -> Option<Holder> {
    if !maps.via_helpers {
        return None;
    }
    let record = runtime.join(RECORD);
    if let Some(h) = open_recorded(&record, maps) {
        return Some(h);
    }
    fs::create_dir_all(runtime).ok()?;
    let _lock = Lock::acquire(&runtime.join(LOCK), Mode::Exclusive).ok()?;
    if let Some(h) = open_recorded(&record, maps) {
        return Some(h);
    }
    match start(&record, maps) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::debug!("no user-namespace holder: {e}");
            None
        }
    }
}

/// The recorded holder, if it lives and holds these maps.
fn open_recorded(record: &Path, maps: &IdMaps) -> Option<Holder> {
    let text = fs::read_to_string(record).ok()?;
    let mut f = text.split_whitespace();
    let pid: i32 = f.next()?.parse().ok()?;
    let start_time: u64 = f.next()?.parse().ok()?;
    if !(ProcId { pid, start_time }).alive() {
        return None;
    }
    let holds = |file: &str, want: &[IdRange]| {
        fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()
            .is_some_and(|t| parse_map(&t) == want)
    };
    if !holds("uid_map", &maps.uids) || !holds("gid_map", &maps.gids) {
        return None;
    }
    let userns = fs::File::open(format!("/proc/{pid}/ns/user")).ok()?;
    // The process may have died and its pid been reused between the checks and the open.
    if !(ProcId { pid, start_time }).alive() {
        return None;
    }
    Some(Holder::new(userns.into(), maps.clone()))
}

fn parse_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let mut n = l.split_whitespace().map(|x| x.parse::<u32>().ok());
            Some(IdRange {
                inside: n.next()??,
                outside: n.next()??,
                count: n.next()??,
            })
        })
        .collect()
}

/// Start a holder and record it (the caller holds the lock).
fn start(record: &Path, maps: &IdMaps) -> io::Result<Holder> {
    let (up_r, up_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let (down_r, down_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // Forked twice, so that the holder is never this process's child (a caller counting or
    // waiting for its children must not meet it).
    let Some(middle) = p::fork()? else {
        drop(up_r);
        drop(down_w);
        match p::fork() {
            Ok(None) => become_holder(record, up_w, down_r),
            _ => p::exit_now(0),
        }
    };
    drop(up_w);
    drop(down_r);
    let _ = p::wait_pid(middle);
    let mut text = String::new();
    let _ = fs::File::from(up_r).read_to_string(&mut text);
    let Some(pid) = text
        .strip_prefix('U')
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return Err(io::Error::other(
            "the holder could not make its user namespace",
        ));
    };
    if let Err(e) = maps.write(pid) {
        let _ = p::kill(pid, libc::SIGKILL);
        return Err(io::Error::other(e.to_string()));
    }
    let userns = fs::File::open(format!("/proc/{pid}/ns/user"))?;
    let me = ProcId::of(pid).ok_or_else(|| io::Error::other("the holder died"))?;
    let text = format!("{} {}\n", me.pid, me.start_time);
    crate::store::atomic::write_file_unsynced_dir(record, text.as_bytes())
        .map_err(io::Error::other)?;
    fs::File::from(down_w).write_all(b"G")?;
    Ok(Holder::new(userns.into(), maps.clone()))
}

/// The forked holder: make the namespace, wait for its maps, then become a small process of
/// its own (the foxbox binary again, see [`serve_if_asked`]), off the caller's session.
fn become_holder(record: &Path, up: OwnedFd, down: OwnedFd) -> ! {
    let mut up = fs::File::from(up);
    if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_err() {
        p::exit_now(1);
    }
    let _ = writeln!(up, "U{}", std::process::id());
    drop(up);
    let mut byte = [0u8; 1];
    if !matches!(fs::File::from(down).read(&mut byte), Ok(1)) {
        p::exit_now(1);
    }
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    p::stdio_to_null();
    let _ = p::close_fds_from(3, None);
    p::reset_signals();
    let exe = std::ffi::CString::new("/proc/self/exe").unwrap_or_default();
    let args = [
        std::ffi::CString::new("foxbox-userns-holder").unwrap_or_default(),
        std::ffi::CString::new(SERVE_ARG).unwrap_or_default(),
        std::ffi::CString::new(record.as_os_str().as_encoded_bytes()).unwrap_or_default(),
    ];
    let _ = nix::unistd::execv(&exe, &args);
    // Not the foxbox binary (a library caller): hold the namespace from here instead.
    serve(record)
}

/// How often the holder checks that it is still the recorded one.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// In `main`, before anything else: when this process was started as a holder, hold and
/// never return.
pub fn serve_if_asked() {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == SERVE_ARG) {
        if let Some(record) = args.next() {
            serve(Path::new(&record));
        }
    }
}

fn serve(record: &Path) -> ! {
    let me = std::process::id().to_string();
    loop {
        std::thread::sleep(CHECK_EVERY);
        let ours = fs::read_to_string(record)
            .ok()
            .is_some_and(|t| t.split_whitespace().next() == Some(me.as_str()));
        if !ours {
            p::exit_now(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::holder::nested_text;

    #[test]
    fn maps_parse_as_the_kernel_prints_them() {
        let text = "         0       1001          1\n         1     100000      65536\n";
        assert_eq!(
            parse_map(text),
            vec![
                IdRange {
                    inside: 0,
                    outside: 1001,
                    count: 1
                },
                IdRange {
                    inside: 1,
                    outside: 100000,
                    count: 65536
                }
            ]
        );
        let m = parse_map(text);
        assert_eq!(nested_text(&m, &m), "0 0 1\n1 1 65536\n");
    }
}
