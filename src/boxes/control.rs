//! Acting on running boxes from outside: signals, stop with a grace period, waiting, and the
//! list of a box's processes.

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use super::{BoxEntry, BoxError, Boxes, Status};

/// Parse a signal as podman takes it: `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse_signal(s: &str) -> Option<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
}

/// Send a signal to the box's first process. The kernel delivers it from outside the box's pid
/// namespace; SIGKILL to it ends every process in the box.
pub fn signal(entry: &BoxEntry, sig: Signal) -> Result<bool, BoxError> {
    let Some(fox) = entry.state.fox.filter(|p| p.alive()) else {
        return Ok(false);
    };
    match kill(Pid::from_raw(fox.pid), sig) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ESRCH) => Ok(false),
        Err(e) => Err(BoxError::Io {
            what: "cannot signal the box's process",
            path: entry.dir.clone(),
            source: e.into(),
        }),
    }
}

/// Wait until the box is no longer running, or until `timeout`. Returns whether it stopped.
pub fn wait_stopped(boxes: &Boxes, id: &str, timeout: Option<Duration>) -> Result<bool, BoxError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let e = boxes.load(id)?;
        if e.state.status != Status::Running {
            return Ok(true);
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// SIGTERM, then SIGKILL after `grace` if the box is still running; returns when it stopped.
pub fn stop(boxes: &Boxes, id: &str, grace: Duration) -> Result<(), BoxError> {
    let e = boxes.load(id)?;
    if e.state.status != Status::Running {
        return Ok(());
    }
    signal(&e, Signal::SIGTERM)?;
    if wait_stopped(boxes, id, Some(grace))? {
        return Ok(());
    }
    let e = boxes.load(id)?;
    signal(&e, Signal::SIGKILL)?;
    wait_stopped(boxes, id, Some(Duration::from_secs(10)))?;
    Ok(())
}

/// Whether any process of the box lives: its fox, its supervisor, or the CLI still creating
/// or starting it.
pub fn has_live_process(entry: &BoxEntry) -> bool {
    let s = &entry.state;
    [s.fox, s.supervisor, s.creator]
        .iter()
        .flatten()
        .any(|p| p.alive())
}

/// End every process of a box for `rm -f`: its supervisor first (so it starts or records
/// nothing more), then its fox (which ends the rest of its pid namespace). A box still being
/// made by a live CLI is left to it. Returns once they are gone, or fails after `timeout`.
pub fn kill_all(entry: &BoxEntry, timeout: Duration) -> Result<(), BoxError> {
    let s = &entry.state;
    let busy = |what: String| BoxError::Io {
        what: "cannot remove the box",
        path: entry.dir.clone(),
        source: std::io::Error::other(what),
    };
    if let Some(c) = s.creator.filter(|c| c.alive() && s.supervisor.is_none()) {
        if c.pid != std::process::id() as i32 && s.status == Status::Created {
            return Err(busy(format!(
                "it is still being created by process {}",
                c.pid
            )));
        }
    }
    let procs: Vec<_> = [s.supervisor, s.fox].into_iter().flatten().collect();
    for p in &procs {
        if p.alive() {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
    }
    let start = Instant::now();
    while procs.iter().any(|p| p.alive()) {
        if start.elapsed() >= timeout {
            return Err(busy("its processes did not end after SIGKILL".to_string()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// One process in a box, as `foxbox top` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoxProcess {
    /// The pid inside the box.
    pub pid: i32,
    /// The pid on the host.
    pub host_pid: i32,
    /// The uid inside the box's user namespace is not visible from outside; this is the host
    /// uid, and `user` its name inside the box when the box's /etc/passwd knows it.
    pub host_uid: u32,
    pub command: String,
}

/// The processes that share the box's pid namespace.
pub fn processes(entry: &BoxEntry) -> Vec<BoxProcess> {
    let Some(fox) = entry.state.fox.filter(|p| p.alive()) else {
        return Vec::new();
    };
    let Ok(ns) = fs::read_link(format!("/proc/{}/ns/pid", fox.pid)) else {
        return Vec::new();
    };
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v: Vec<BoxProcess> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns))
        .filter_map(|host_pid| {
            let status = fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
            let field = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
            };
            let pid = field("NSpid:")?.split_whitespace().last()?.parse().ok()?;
            let host_uid = field("Uid:")?.split_whitespace().nth(1)?.parse().ok()?;
            let cmdline = fs::read(format!("/proc/{host_pid}/cmdline")).unwrap_or_default();
            let command = if cmdline.is_empty() {
                format!("[{}]", field("Name:").unwrap_or_default())
            } else {
                String::from_utf8_lossy(&cmdline)
                    .trim_end_matches('\0')
                    .replace('\0', " ")
            };
            Some(BoxProcess {
                pid,
                host_pid,
                host_uid,
                command,
            })
        })
        .collect();
    v.sort_by_key(|p| p.pid);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_the_ways_podman_takes_them() {
        assert_eq!(parse_signal("KILL"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("sigterm"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("hup"), Some(Signal::SIGHUP));
        assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("99"), None);
    }
}
