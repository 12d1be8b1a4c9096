//! The supervisor of a detached box (`run -d`, `up -d`), like podman's conmon: a fork of the
//! CLI that outlives it in a session of its own, is the box's parent (and a subreaper for
//! anything the box's helpers leave behind), copies the box's stdout and stderr into the box
//! log, enforces the wall-clock limit, records the exit and removes the box when asked to.
//!
//! Protocol with the CLI: one JSON message on a close-on-exec pipe, `Report::Started` once
//! the fox has been exec'd or `Report::Failed` with the rendered diagnostics; end of file
//! without a message means the supervisor died before it could say.
//!
//! Memory: the fork shares the CLI's pages until they are written; everything the start
//! needed (image, plan-derived launch, seccomp program, hooks) is dropped and the heap trimmed
//! before the long wait, so what stays resident is the code it runs and a few buffers.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};

use super::lifecycle::{BoxLife, Outcome};
use super::{typed, BoxHooks, ReadyBox, RunError, RunOptions};
use crate::boxes::exits::Exits;
use crate::boxes::log::{LogWriter, Stream};
use crate::boxes::{BoxError, ProcId};
use crate::cgroup::BoxCgroup;
use crate::diag::codes;
use crate::exec::{self, Deadline};
use crate::net::NetGuard;
use crate::plan::Plan;
use crate::store::paths::Paths;
use crate::sys::fd;
use crate::sys::process::{self as p, Exit};

/// What the supervisor tells the CLI.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    Started,
    Failed { exit: u8, text: String },
}

/// How a detached start went.
#[derive(Debug)]
pub enum Detached {
    /// The fox runs; the supervisor's pid.
    Started { supervisor: i32 },
    /// It did not start; the box is gone, or kept with the reason (see `start`). `text`:
    /// the diagnostics, rendered for stderr.
    Failed { exit: u8, text: String },
}

/// Signals the supervisor handles itself (SIGCHLD), or passes on to the box.
const WATCHED: &[i32] = &[
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
];

/// How long output may still arrive after the box's pid 1 ended (every process of the box is
/// killed with it, so the pipes close within moments).
const DRAIN: Duration = Duration::from_secs(2);

/// Start a prepared box under a supervisor and return once its fox was exec'd (or failed to
/// be). The caller must be single-threaded. `render` turns a start failure into the text the
/// CLI prints (it runs in the supervisor, which has the plan's diagnostics at hand).
pub fn detach(
    paths: &Paths,
    plan: &Plan,
    opts: &RunOptions,
    ready: ReadyBox,
    render: &dyn Fn(&RunError) -> String,
) -> Result<Detached, RunError> {
    // The supervisor records state from its first moment: the box must be on record.
    if let Err(e) = ready.life.record() {
        ready.discard(paths);
        return Err(typed(codes::boxes::CREATE)(e));
    }
    let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| {
        let _ = ready.life.remove(paths);
        RunError::new(codes::supervisor::PIPE, format!("cannot make a pipe: {e}"))
    })?;
    match p::fork() {
        Err(e) => {
            let _ = ready.life.remove(paths);
            Err(RunError::new(
                codes::supervisor::FORK,
                format!("cannot fork the box's supervisor: {e}"),
            ))
        }
        Ok(None) => {
            drop(report_r);
            supervisor(paths, plan, opts, ready, report_w, render)
        }
        Ok(Some(pid)) => {
            drop(report_w);
            let mut text = Vec::new();
            let read = File::from(report_r).read_to_end(&mut text);
            match serde_json::from_slice::<Report>(&text) {
                Ok(Report::Started) if read.is_ok() => Ok(Detached::Started { supervisor: pid }),
                Ok(Report::Failed { exit, text }) => {
                    let _ = p::wait_pid(pid);
                    Ok(Detached::Failed { exit, text })
                }
                _ => {
                    // It died without a word: its box (killed with it) is cleaned up here.
                    let how = match p::wait_pid(pid) {
                        Ok(Exit::Code(c)) => format!("exit code {c}"),
                        Ok(Exit::Signal(s)) => format!("killed by signal {s}"),
                        Err(e) => e.to_string(),
                    };
                    if let Ok(e) = ready.life.boxes().load(ready.id()) {
                        if !e.state.is_running() {
                            let _ = ready.life.remove(paths);
                        }
                    }
                    Err(RunError::new(
                        codes::supervisor::DIED,
                        format!("the box's supervisor ended before the box started ({how})"),
                    ))
                }
            }
        }
    }
}

/// What the supervisor keeps once the box runs.
struct Running {
    life: BoxLife,
    cgroup: Option<BoxCgroup>,
    auto_remove: bool,
    run_dir: PathBuf,
    net: Option<NetGuard>,
    timeout: Option<Duration>,
    /// The plan's stop timeout, for the wall-clock limit's SIGKILL.
    grace: Duration,
    /// The box's pid 1 is foxbox's init.
    init: bool,
    pid: i32,
    pidfd: OwnedFd,
    /// The box's output: (descriptor, the stream it is logged as).
    sources: Vec<(OwnedFd, Stream)>,
}

/// The supervisor process. Never returns.
fn supervisor(
    paths: &Paths,
    plan: &Plan,
    opts: &RunOptions,
    ready: ReadyBox,
    report: OwnedFd,
    render: &dyn Fn(&RunError) -> String,
) -> ! {
    // Out of the CLI's session and process group: the caller's terminal and its job control
    // no longer reach the box.
    let _ = nix::unistd::setsid();
    let _ = p::set_child_subreaper();
    let _ = std::env::set_current_dir("/");
    // Whatever the CLI inherited (a caller's pipes) must not stay open for the box's life.
    let _ = p::close_fds_from(3, Some(report.as_raw_fd()));
    let mut report = Some(File::from(report));
    let mut tell = |r: Report| {
        if let Some(mut f) = report.take() {
            let _ = f.write_all(&serde_json::to_vec(&r).unwrap_or_default());
        }
    };

    let running = match start(paths, plan, opts, ready) {
        Ok(r) => r,
        Err(e) => {
            tell(Report::Failed {
                exit: e.exit,
                text: render(&e),
            });
            p::exit_now(0);
        }
    };
    tell(Report::Started);
    crate::sys::memory::shed();
    finish(paths, running);
    p::exit_now(0)
}

/// Stdio, the log, the start itself. On failure the box is removed; when the start itself
/// failed and the box is not `--rm`, it is kept with the reason instead.
fn start(
    paths: &Paths,
    plan: &Plan,
    opts: &RunOptions,
    ready: ReadyBox,
) -> Result<Running, RunError> {
    let fail = |e: RunError| {
        let _ = ready.life.remove(paths);
        e
    };
    let io_fail = |what: &str, e: io::Error| {
        fail(RunError::new(
            codes::supervisor::FAILED,
            format!("supervisor: {what}: {e}"),
        ))
    };
    let me = ProcId::of(std::process::id() as i32);
    // Recorded before anything can fail or hang, so a crash from here on reads as one. A box
    // that is gone, or was found dead (its creator killed before this was recorded), is not
    // started: a sweep has finished it.
    if let Err(BoxError::Transition { .. } | BoxError::NotFound(_)) = ready.life.supervised(me) {
        return Err(RunError::new(
            codes::supervisor::FAILED,
            "the box was removed or ended while its supervisor started",
        ));
    }

    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| io_fail("open /dev/null", e))?;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| io_fail("make the stdout pipe", e.into()))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| io_fail("make the stderr pipe", e.into()))?;
    // The box inherits 0, 1 and 2.
    for (from, to) in [(null.as_fd(), 0), (out_w.as_fd(), 1), (err_w.as_fd(), 2)] {
        fd::dup_onto(from, to).map_err(|e| io_fail("set up stdio", e))?;
    }
    drop((out_w, err_w));
    let log_path = ready.life.entry().log_path();
    // Made before the start, so `logs -f` finds it at once.
    LogWriter::open(&log_path).map_err(|e| io_fail("open the log", e))?;
    p::block_signals(WATCHED).map_err(|e| io_fail("block signals", e))?;

    let mut launch = ready.launch(paths, opts);
    // Never decided by the supervisor's stdin (/dev/null by now).
    launch.tty = opts.tty.or(plan.process.tty).unwrap_or(false);
    let run_dir = ready.run_dir(paths);
    let mut hooks = BoxHooks::new(&ready, run_dir.clone(), true).with_supervisor(me);
    let started = match exec::start(&launch, &mut hooks) {
        Ok(s) => s,
        Err(e) => {
            hooks.stop_network();
            let e = RunError::from_exec(e);
            if ready.life.entry().config.auto_remove {
                return Err(fail(e));
            }
            // Kept with the reason, as a foreground box and podman's are; its cgroup and
            // runtime files go, as an exited box's do.
            drop(hooks);
            ready.life.failed(&e, true);
            if let Some(cg) = &ready.cgroup {
                let _ = cg.destroy();
            }
            let _ = std::fs::remove_dir_all(&run_dir);
            return Err(e);
        }
    };
    exec::Helpers::started(&mut hooks, started.pid);
    let net = hooks.take_network();
    drop(hooks);
    // Only the box holds the write ends now: end of file means all of it has gone.
    for to in [1, 2] {
        let _ = fd::dup_onto(null.as_fd(), to);
    }
    let mut sources = vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)];
    if let Some(m) = started.pty {
        sources.push((m, Stream::Stdout));
    }
    let (pid, pidfd) = (started.pid, started.pidfd);
    drop(launch);
    let ReadyBox { life, cgroup, .. } = ready;
    Ok(Running {
        auto_remove: life.entry().config.auto_remove,
        life,
        cgroup,
        run_dir,
        net,
        timeout: plan.limits.timeout().map(|t| t.value),
        grace: plan.limits.stop_grace(),
        init: plan.process.init,
        pid,
        pidfd,
        sources,
    })
}

/// Follow the box until it ends, then record how, stop its network and remove it if asked.
fn finish(paths: &Paths, mut r: Running) {
    let sfd = p::signalfd(WATCHED).ok();
    let mut log = LogWriter::open(&r.life.entry().log_path()).ok();
    let mut deadline = Deadline::new(r.timeout, r.grace).with_init(r.init);
    let helper = r
        .net
        .as_ref()
        .and_then(|n| n.helper_pid())
        .map(|p| p as i32);
    let exit = follow(&mut r, sfd.as_ref(), log.as_mut(), &mut deadline, helper);
    let timed_out = exit.as_ref().is_ok_and(|e| deadline.ended(*e));
    let (code, lost) = match exit {
        Ok(e) => (e.shell_code(), None),
        Err(e) => {
            // Lost track of it: end it rather than leave it unsupervised.
            let _ = p::pidfd_signal(r.pidfd.as_fd(), libc::SIGKILL);
            let _ = p::wait_pid(r.pid);
            (
                128 + libc::SIGKILL,
                Some(format!("the supervisor lost track of the box: {e}")),
            )
        }
    };
    if let Some(l) = log.as_mut() {
        let _ = l.flush_partial(Stream::Stdout);
        let _ = l.flush_partial(Stream::Stderr);
    }
    let outcome = Outcome::collect(r.cgroup.as_ref(), code, timed_out);
    let _ = r.life.exited(&outcome, lost);
    if let Some(n) = r.net.take() {
        n.stop();
    }
    let _ = std::fs::remove_dir_all(&r.run_dir);
    if r.auto_remove {
        let exits = Exits::new(&paths.runtime);
        let _ = exits.record(r.life.id(), code);
        exits.sweep_now_and_then();
        let _ = r.life.remove(paths);
    }
}

/// Copy the box's output into its log and pass signals on until its pid 1 has exited and its
/// output ended; returns how pid 1 ended.
fn follow(
    r: &mut Running,
    sfd: Option<&OwnedFd>,
    mut log: Option<&mut LogWriter>,
    deadline: &mut Deadline,
    helper: Option<i32>,
) -> io::Result<Exit> {
    for (f, _) in &r.sources {
        fd::set_nonblocking(f.as_fd())?;
    }
    let mut buf = vec![0u8; 32 * 1024];
    let mut exit: Option<(Exit, Instant)> = None;
    loop {
        if let Some((e, at)) = exit {
            if r.sources.is_empty() || at.elapsed() >= DRAIN {
                return Ok(e);
            }
        }
        let mut fds = Vec::with_capacity(2 + r.sources.len());
        let watch = |fd: BorrowedFd<'_>| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // Indices: 0 the signalfd (or a placeholder), 1 the pidfd (until it fired), then sources.
        fds.push(libc::pollfd {
            fd: sfd.map_or(-1, |s| s.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        });
        fds.push(libc::pollfd {
            fd: if exit.is_none() {
                r.pidfd.as_raw_fd()
            } else {
                -1
            },
            events: libc::POLLIN,
            revents: 0,
        });
        fds.extend(r.sources.iter().map(|(f, _)| watch(f.as_fd())));
        let timeout = match exit {
            Some((_, at)) => Some(DRAIN.saturating_sub(at.elapsed())),
            None => deadline.poll_timeout(),
        };
        fd::poll(&mut fds, timeout)?;
        if exit.is_none() {
            deadline.enforce(r.pid, r.pidfd.as_fd());
        }
        if fds[0].revents != 0 {
            if let Some(s) = sfd {
                while let Some(sig) = p::read_signalfd(s.as_fd()) {
                    if sig == libc::SIGCHLD {
                        reap_orphans(r.pid, helper);
                    } else if exit.is_none() {
                        let _ = p::pidfd_signal(r.pidfd.as_fd(), sig);
                    }
                }
            }
        }
        if fds[1].revents != 0 && exit.is_none() {
            exit = Some((p::wait_pid(r.pid)?, Instant::now()));
        }
        let mut closed = Vec::new();
        for (i, (f, stream)) in r.sources.iter().enumerate() {
            if fds[2 + i].revents == 0 {
                continue;
            }
            loop {
                match nix::unistd::read(f.as_fd(), &mut buf) {
                    Ok(0) => {
                        closed.push(i);
                        break;
                    }
                    Ok(n) => {
                        if let Some(l) = log.as_deref_mut() {
                            // A full disk loses log lines, never the box.
                            let _ = l.write(*stream, &buf[..n]);
                        }
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(nix::errno::Errno::EAGAIN) => break,
                    // EIO: a pty whose every slave is closed.
                    Err(_) => {
                        closed.push(i);
                        break;
                    }
                }
            }
        }
        for i in closed.into_iter().rev() {
            let (_, stream) = r.sources.remove(i);
            if let Some(l) = log.as_deref_mut() {
                let _ = l.flush_partial(stream);
            }
        }
    }
}

/// Reap children that are neither the box's pid 1 (waited for through its pidfd) nor the
/// network helper (its guard waits for it): processes orphaned onto this subreaper.
fn reap_orphans(box_pid: i32, helper: Option<i32>) {
    let me = std::process::id();
    let Ok(list) = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) else {
        return;
    };
    for pid in list
        .split_whitespace()
        .filter_map(|s| s.parse::<i32>().ok())
    {
        if pid != box_pid && Some(pid) != helper {
            p::try_reap(pid);
        }
    }
}
