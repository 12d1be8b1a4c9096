//! Acting on running boxes from outside: signals, stop with a grace period, waiting, and the
//! list of a box's processes.

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use super::{BoxEntry, BoxError, Boxes, ProcId, Status};

/// Parse a signal as podman takes it: `KILL`, `SIGKILL`, `kill`, `9`, and the real-time ones
/// `SIGRTMIN+N`, `RTMAX-N` (which nix's `Signal` cannot name, hence a number).
pub fn parse_signal(s: &str) -> Option<i32> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if let Ok(n) = s.parse::<i32>() {
        return (Signal::try_from(n).is_ok() || (min..=max).contains(&n)).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    let rt = |base: i32, rest: &str| -> Option<i32> {
        let n = match rest.as_bytes().first() {
            None => base,
            Some(b'+') => base.checked_add(rest[1..].parse::<u8>().ok()?.into())?,
            Some(b'-') => base.checked_sub(rest[1..].parse::<u8>().ok()?.into())?,
            Some(_) => return None,
        };
        (min..=max).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        return rt(min, rest);
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        return rt(max, rest);
    }
    name.parse::<Signal>().ok().map(|s| s as i32)
}

/// Send a signal to the box's first process. The kernel delivers it from outside the box's pid
/// namespace; SIGKILL to it ends every process in the box.
pub fn signal(entry: &BoxEntry, sig: i32) -> Result<bool, BoxError> {
    let Some(fox) = entry.state.fox.filter(|p| p.alive()) else {
        return Ok(false);
    };
    match crate::sys::process::kill(fox.pid, sig) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(BoxError::Io {
            what: "cannot signal the box's process",
            path: entry.dir.clone(),
            source: e,
        }),
    }
}

/// How long a box's processes get to be gone once it is recorded as ended (its supervisor
/// stops the network helper and removes a `--rm` box first) or killed.
const GONE_PATIENCE: Duration = Duration::from_secs(10);

/// Every process of a box as it is when taken, to wait for: its supervisor and all the
/// supervisor started (the network helper), and its fox's pid namespace (the fox, what it
/// started, processes `exec` put there; looked for again on every check).
#[derive(Debug, Default)]
pub struct Processes {
    known: Vec<ProcId>,
    /// The box's pid namespace, as /proc/PID/ns/pid names it.
    pid_ns: Option<std::path::PathBuf>,
}

impl Processes {
    pub fn of(entry: &BoxEntry) -> Processes {
        let s = &entry.state;
        let mut pids: Vec<i32> = s
            .supervisor
            .filter(|p| p.exists())
            .map(|p| p.pid)
            .into_iter()
            .collect();
        // What the supervisor started stays in its session; a process that left it is not the
        // box's (the user-namespace holder, orphaned onto the supervisor, a subreaper, when
        // its start came from there, serves every box).
        let session = pids.first().and_then(|p| session_of(*p));
        let mut i = 0;
        while i < pids.len() {
            let more = children(pids[i]);
            pids.extend(more.into_iter().filter(|c| session_of(*c) == session));
            i += 1;
        }
        let fox = s.fox.filter(|p| p.exists());
        pids.extend(fox.map(|p| p.pid));
        let pid_ns = fox.and_then(|p| fs::read_link(format!("/proc/{}/ns/pid", p.pid)).ok());
        let mut p = Processes {
            known: Vec::new(),
            pid_ns,
        };
        pids.extend(p.in_pid_ns());
        pids.sort_unstable();
        pids.dedup();
        p.known = pids.into_iter().filter_map(ProcId::of).collect();
        p
    }

    /// The host pids of the processes in the box's pid namespace now, zombies left out.
    fn in_pid_ns(&self) -> Vec<i32> {
        let Some(ns) = &self.pid_ns else {
            return Vec::new();
        };
        let Ok(rd) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| &n == ns))
            .filter(|pid| ProcId::of(*pid).is_some_and(|p| p.alive()))
            .collect()
    }

    /// Whether any is left. A zombie is not: it has let go of everything (memory, files,
    /// namespaces, mounts) and waits only for its parent, which for the orphans of a killed
    /// supervisor is init, to reap it; how soon that happens is init's affair.
    fn any_left(&self) -> bool {
        self.known.iter().any(|p| p.alive()) || !self.in_pid_ns().is_empty()
    }

    /// Wait until none is left, or `timeout`; whether none is.
    pub fn wait_gone(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        while self.any_left() {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        true
    }
}

/// The session of process `pid` (field 6 of /proc/PID/stat, counted after the name).
fn session_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// The children of every thread of process `pid`.
fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|s| s.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Wait until the box is no longer running, or until `timeout`. Returns whether it stopped;
/// then its processes (those it had when this began) are gone too, as far as
/// `GONE_PATIENCE` allows.
pub fn wait_stopped(boxes: &Boxes, id: &str, timeout: Option<Duration>) -> Result<bool, BoxError> {
    let procs = boxes
        .load(id)
        .map(|e| Processes::of(&e))
        .unwrap_or_default();
    wait_ended(boxes, id, timeout, &procs)
}

fn wait_ended(
    boxes: &Boxes,
    id: &str,
    timeout: Option<Duration>,
    procs: &Processes,
) -> Result<bool, BoxError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match boxes.load(id) {
            Ok(e) if e.state.status == Status::Running => {}
            Ok(_) => {
                procs.wait_gone(GONE_PATIENCE);
                return Ok(true);
            }
            // A `--rm` box, removed by its supervisor.
            Err(e @ BoxError::NotFound(_)) => {
                procs.wait_gone(GONE_PATIENCE);
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// SIGTERM, then SIGKILL after `grace` if the box is still running; returns when it stopped
/// and its processes and helpers are gone.
pub fn stop(boxes: &Boxes, id: &str, grace: Duration) -> Result<(), BoxError> {
    let e = boxes.load(id)?;
    if e.state.status != Status::Running {
        return Ok(());
    }
    let procs = Processes::of(&e);
    signal(&e, libc::SIGTERM)?;
    if wait_ended(boxes, id, Some(grace), &procs)? {
        return Ok(());
    }
    let e = boxes.load(id)?;
    signal(&e, libc::SIGKILL)?;
    wait_ended(boxes, id, Some(Duration::from_secs(10)), &procs)?;
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
/// nothing more), then its fox (which ends the rest of its pid namespace), then what the
/// supervisor started (the network helper). A box still being made by a live CLI is left to
/// it. Returns once they are gone, or fails after `timeout`.
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
    let all = Processes::of(entry);
    let first: Vec<_> = [s.supervisor, s.fox].into_iter().flatten().collect();
    for p in first.iter().chain(&all.known) {
        if p.alive() {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
    }
    let start = Instant::now();
    while first.iter().chain(&all.known).any(|p| p.alive()) {
        if start.elapsed() >= timeout {
            return Err(busy("its processes did not end after SIGKILL".to_string()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The box's pid namespace, which may have gained processes since it was looked at.
    all.wait_gone(GONE_PATIENCE);
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
    /// The parent's pid inside the box (0: outside it, as for the first process).
    pub ppid: i32,
    /// The uid inside the box, when the box's map has the host uid.
    pub uid: Option<u32>,
    /// The box's name for `uid` (its /etc/passwd), else the number.
    pub user: String,
    /// /proc/PID/stat's view: state letter, terminal, nice, cpu time used, time since it
    /// started, virtual size (bytes), and the executable's name.
    pub state: char,
    pub tty_nr: u32,
    pub nice: i64,
    pub cpu_time: Duration,
    pub elapsed: Duration,
    pub vsz: u64,
    pub comm: String,
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
    let maps = crate::sys::idmap::IdMaps::of_process(fox.pid).ok();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)
        .unwrap_or(100) as u64;
    let ticks = |t: u64| Duration::from_millis(t.saturating_mul(1000) / hz);
    let uptime = fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs_f64);
    let passwd =
        fs::read_to_string(format!("/proc/{}/root/etc/passwd", fox.pid)).unwrap_or_default();
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
            let stat = fs::read_to_string(format!("/proc/{host_pid}/stat")).ok()?;
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Field N of proc(5)'s stat is f[N - 3] here (after the name).
            let num = |n: usize| {
                f.get(n - 3)
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            Some(BoxProcess {
                pid,
                host_pid,
                host_uid,
                command,
                ppid: num(4) as i32,
                uid: maps.as_ref().and_then(|m| {
                    m.uids.iter().find_map(|r| {
                        let off = host_uid.checked_sub(r.outside)?;
                        (off < r.count).then(|| r.inside + off)
                    })
                }),
                state: f.first().and_then(|s| s.chars().next()).unwrap_or('?'),
                tty_nr: num(7) as u32,
                nice: num(19),
                user: String::new(),
                cpu_time: ticks((num(14) + num(15)) as u64),
                elapsed: uptime.saturating_sub(ticks(num(22) as u64)),
                vsz: num(23) as u64,
                comm: comm.to_string(),
            })
        })
        .collect();
    // The parent as the box numbers it: host pids of the box's processes → their box pids.
    let in_box: std::collections::HashMap<i32, i32> =
        v.iter().map(|p| (p.host_pid, p.pid)).collect();
    for p in &mut v {
        p.ppid = in_box.get(&p.ppid).copied().unwrap_or(0);
        p.user = match p.uid {
            Some(uid) => passwd
                .lines()
                .find_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
                })
                .unwrap_or_else(|| uid.to_string()),
            None => format!("host:{}", p.host_uid),
        };
    }
    v.sort_by_key(|p| p.pid);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_the_ways_podman_takes_them() {
        assert_eq!(parse_signal("KILL"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("sigterm"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("hup"), Some(libc::SIGHUP));
        assert_eq!(parse_signal("9"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("99"), None);
        let min = libc::SIGRTMIN();
        assert_eq!(parse_signal("SIGRTMIN+1"), Some(min + 1));
        assert_eq!(parse_signal("rtmin"), Some(min));
        assert_eq!(parse_signal("RTMAX-2"), Some(libc::SIGRTMAX() - 2));
        assert_eq!(parse_signal(&(min + 3).to_string()), Some(min + 3));
        assert_eq!(parse_signal("SIGRTMIN+99"), None);
        assert_eq!(parse_signal("SIGRTMIN+x"), None);
        assert_eq!(parse_signal("SIGRTMINX"), None);
    }
}
