//! The parent side: clone the box's set-up process into its namespaces, install the id maps,
//! run the parent's steps, release the child and follow it over the sync channel until the fox
//! is exec'd (or a step failed). [`start`] is all a supervisor needs; [`run_foreground`] adds
//! the attached session of `foxbox run`/`up` (signal forwarding, the pty, the exit code).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use super::channel::{self, FromChild, ParentEnd};
use super::error::{ExecError, StepError};
use super::steps::{self, Action, Side, StartChoices, Step};
use super::{child, Helpers, Launch};
use crate::fs::dev;
use crate::sys::process::{self as p, ns, Exit, Forked};
use crate::sys::{fd, tty};

/// How long one step took.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub name: &'static str,
    pub side: Side,
    pub took: Duration,
}

/// A box whose fox has been exec'd.
pub struct Started {
    /// The host pid of the box's pid 1 (the fox, or the init).
    pub pid: i32,
    /// A pidfd for it: signal it with [`p::pidfd_signal`], poll it for its exit.
    pub pidfd: OwnedFd,
    /// The pty master, when the box has a terminal.
    pub pty: Option<OwnedFd>,
    pub timings: Vec<Timing>,
}

/// The signals foxbox forwards to the box.
pub const FORWARDED: &[i32] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGWINCH,
];

/// Start the box: clone, id maps, the parent's helper steps, then the child's steps up to and
/// including exec. The calling process must be single-threaded. On error the child is gone.
pub fn start(launch: &Launch<'_>, helpers: &mut dyn Helpers) -> Result<Started, ExecError> {
    let plan = launch.plan;
    let list = steps::steps(
        plan,
        StartChoices {
            tty: Some(launch.tty),
            await_start: launch.start_gate.is_some(),
            cgroup: helpers.places_cgroup(),
            before_pivot: launch.before_pivot,
            host_mounts: launch.host_mounts(),
            joined: launch.joined,
        },
    );
    let span_of = |a: Action| list.iter().find(|s| s.action == a).and_then(|s| s.span);
    let fail = |a: Action, name: &'static str, e: StepError| ExecError::step(name, span_of(a), e);
    let mut timings = Vec::new();

    // Compiled here, before the clone: the child only installs it.
    let compiled;
    let seccomp = match launch.seccomp {
        Some(p) => Some(p),
        None => {
            compiled = super::security_steps::compile(plan)
                .map_err(|e| fail(Action::Seccomp, "seccomp", e))?;
            compiled.as_ref()
        }
    };
    // Made here, in the host's user namespace, where mknod may make a device.
    let private_dev = if dev::wants_private_nodes(&launch.id_maps) && !launch.mounts_in_order {
        dev::private().map_err(|e| fail(Action::Dev, "dev", e))?
    } else {
        None
    };
    let private_dev = private_dev.as_ref().map(|d| d.as_fd());
    let (pend, cend) =
        channel::pair().map_err(|e| fail(Action::Clone, "clone", io_step("sync channel", e)))?;
    let flags = steps::clone_namespaces(plan.network.mode.value, launch.joined);
    let t = Instant::now();
    let mut mapped = false;
    // The child end goes to the set-up process; it stays here too (for a fallback) until the
    // clone is done.
    let mut child_end = Some(cend);
    let forked = match &launch.holder {
        Some(h) => {
            let parent_end = pend.raw();
            let list = &list;
            let child_end = &mut child_end;
            let spawned = h.spawn(flags, &launch.id_maps, move || {
                p::close_raw(parent_end);
                if let Some(c) = child_end.take() {
                    child::run(launch, list, c, seccomp, private_dev)
                }
            });
            match spawned {
                Ok((pid, pidfd)) => {
                    mapped = true;
                    Ok(Forked::Parent { pid, pidfd })
                }
                Err(e) => {
                    tracing::debug!("the user-namespace holder failed ({e}); using helpers");
                    p::fork_into(flags)
                }
            }
        }
        None => p::fork_into(flags),
    };
    let Some(cend) = child_end else {
        return Err(ExecError::Vanished("the set-up channel was lost".into()));
    };
    let (pid, pidfd) = match forked {
        Ok(Forked::Child) => {
            drop(pend);
            child::run(launch, &list, cend, seccomp, private_dev)
        }
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => {
            let mut err = io_step("clone3", e);
            if err.errno == libc::EINVAL {
                err = err.with_hint("a multi-threaded process cannot enter a new user namespace");
            } else if err.errno == libc::ENOSPC || err.errno == libc::EPERM {
                err = err.with_hint(
                    "unprivileged user namespaces may be disabled \
                     (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)",
                );
            }
            return Err(fail(Action::Clone, "clone", err));
        }
    };
    drop(cend);
    crate::fault::point("start.after-clone");
    let kill = |pidfd: &OwnedFd| {
        let _ = p::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = p::wait_pid(pid);
    };
    timings.push(timing(&list, Action::Clone, t));

    let t = Instant::now();
    // A user namespace the box shares (the caller's, or one joined) has its maps already.
    if let Err(e) = if mapped || launch.joined & ns::USER != 0 {
        Ok(())
    } else {
        launch.id_maps.write(pid)
    } {
        kill(&pidfd);
        let err = StepError::msg(e.to_string())
            .with_hint("check /etc/subuid, /etc/subgid and that newuidmap/newgidmap are setuid");
        return Err(fail(Action::IdMaps, "id-maps", err));
    }
    timings.push(timing(&list, Action::IdMaps, t));

    for step in list.iter().filter(|s| s.side == Side::Parent) {
        let t = Instant::now();
        let r = match step.action {
            Action::Cgroup => helpers.cgroup(plan, pid),
            Action::Network => helpers.network(plan, pid),
            _ => continue,
        };
        if let Err(e) = r {
            kill(&pidfd);
            return Err(ExecError::step(step.name, step.span, e));
        }
        timings.push(timing(&list, step.action, t));
    }

    let t = Instant::now();
    if let Err(e) = pend.release_child() {
        kill(&pidfd);
        return Err(ExecError::Vanished(format!("could not release it: {e}")));
    }
    if let Err(e) = helpers.released(pid) {
        kill(&pidfd);
        return Err(ExecError::step("record", None, e));
    }
    let mut before_pivot = || helpers.before_pivot(pid);
    let pty = follow(
        &pend,
        pid,
        pidfd.as_fd(),
        &list,
        &mut timings,
        Some(&mut before_pivot),
    )?;
    // From release to the fox's exec, as the parent saw it.
    timings.push(Timing {
        name: "child-total",
        side: Side::Parent,
        took: t.elapsed(),
    });
    Ok(Started {
        pid,
        pidfd,
        pty,
        timings,
    })
}

/// Follow a process that runs child steps (a box's set-up process, or one that `exec` forked
/// into a box) over the sync channel until its command is exec'd (end of file after `Ready`)
/// or a step fails. Adds its step timings to `timings`; returns the pty master it handed over.
/// `before_pivot` runs when the process pauses before pivot_root; it continues once that is
/// done. On error the process is gone (reaped).
pub(crate) fn follow(
    pend: &ParentEnd,
    pid: i32,
    pidfd: BorrowedFd<'_>,
    list: &[Step],
    timings: &mut Vec<Timing>,
    mut before_pivot: Option<&mut dyn FnMut() -> Result<(), StepError>>,
) -> Result<Option<OwnedFd>, ExecError> {
    let mut pty = None;
    let mut ready = false;
    loop {
        match pend.recv() {
            Ok(Some((FromChild::Pty, fd))) => pty = fd,
            Ok(Some((FromChild::BeforePivot, _))) => {
                let done = match before_pivot.as_mut() {
                    Some(f) => f(),
                    None => Err(StepError::msg("nothing waits for it before pivot_root")),
                };
                if let Err(e) =
                    done.and_then(|()| pend.continue_child().map_err(|e| io_step("continue", e)))
                {
                    let _ = p::pidfd_signal(pidfd, libc::SIGKILL);
                    let _ = p::wait_pid(pid);
                    let span = list
                        .iter()
                        .find(|s| s.action == Action::BeforePivot)
                        .and_then(|s| s.span);
                    return Err(ExecError::step("before-pivot", span, e));
                }
            }
            Ok(Some((FromChild::Ready { timings: child }, _))) => {
                ready = true;
                for (i, nanos) in child {
                    if let Some(s) = list.get(i) {
                        timings.push(Timing {
                            name: s.name,
                            side: s.side,
                            took: Duration::from_nanos(nanos),
                        });
                    }
                }
            }
            Ok(Some((FromChild::Failed { step, error }, _))) => {
                // It exits by itself right after reporting.
                let _ = p::wait_pid(pid);
                let (name, span) = list
                    .get(step)
                    .map(|s| (s.name, s.span))
                    .unwrap_or(("unknown", None));
                return Err(ExecError::step(name, span, error));
            }
            Ok(None) if ready => return Ok(pty),
            Ok(None) => {
                let how = match p::wait_pid(pid) {
                    Ok(Exit::Code(c)) => format!("exit code {c}"),
                    Ok(Exit::Signal(s)) => format!("killed by signal {s}"),
                    Err(e) => e.to_string(),
                };
                return Err(ExecError::Vanished(how));
            }
            Err(e) => {
                let _ = p::pidfd_signal(pidfd, libc::SIGKILL);
                let _ = p::wait_pid(pid);
                return Err(ExecError::Vanished(format!("reading from it: {e}")));
            }
        }
    }
}

fn timing(list: &[Step], a: Action, t: Instant) -> Timing {
    let (name, side) = list
        .iter()
        .find(|s| s.action == a)
        .map(|s| (s.name, s.side))
        .unwrap_or(("?", Side::Parent));
    Timing {
        name,
        side,
        took: t.elapsed(),
    }
}

fn io_step(what: &str, e: io::Error) -> StepError {
    StepError::new(e.raw_os_error().unwrap_or(0), format!("{what}: {e}"))
}

/// The outcome of a foreground run.
#[derive(Debug)]
pub struct Finished {
    pub exit: Exit,
    pub timings: Vec<Timing>,
    /// The plan's wall-clock limit ran out and foxbox ended the box.
    pub timed_out: bool,
}

/// The grace period a plan without `stop_timeout` gives between SIGTERM and SIGKILL.
pub const TIMEOUT_GRACE: Duration = crate::plan::DEFAULT_STOP_TIMEOUT;

/// The plan's wall-clock limit, as a deadline and the state of its enforcement.
pub struct Deadline {
    at: Option<Instant>,
    grace: Duration,
    termed: Option<Instant>,
    /// The box's pid 1 hears SIGTERM (it has a handler, or it is foxbox's init, which waits
    /// for it and passes it on): how the box ends next is its answer to it.
    term_caught: bool,
    killed: bool,
}

impl Deadline {
    /// `grace`: the plan's stop timeout ([`crate::plan::Limits::stop_grace`]).
    pub fn new(timeout: Option<Duration>, grace: Duration) -> Deadline {
        Deadline {
            at: timeout.map(|t| Instant::now() + t),
            grace,
            termed: None,
            term_caught: false,
            killed: false,
        }
    }

    /// The box's pid 1 is foxbox's init (`init = true`), which hears every signal.
    pub fn with_init(mut self, init: bool) -> Deadline {
        self.term_caught = init;
        self
    }

    /// How long poll may sleep before the deadline needs attention.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        match (self.at, self.termed) {
            _ if self.killed => None,
            (_, Some(t)) => Some((t + self.grace).saturating_duration_since(now)),
            (Some(at), None) => Some(at.saturating_duration_since(now)),
            (None, None) => None,
        }
    }

    /// SIGTERM to the box's pid 1 (`pid`, `pidfd`) when the time is up, SIGKILL after the
    /// grace period.
    pub fn enforce(&mut self, pid: i32, pidfd: BorrowedFd<'_>) {
        let now = Instant::now();
        match (self.at, self.termed) {
            (Some(at), None) if now >= at => {
                // A pid 1 without a handler never sees SIGTERM (the kernel drops it).
                self.term_caught = self.term_caught
                    || p::signal_mask(&pid.to_string(), "SigCgt")
                        .is_some_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0);
                let _ = p::pidfd_signal(pidfd, libc::SIGTERM);
                self.termed = Some(now);
            }
            (_, Some(t)) if now >= t + self.grace && !self.killed => {
                let _ = p::pidfd_signal(pidfd, libc::SIGKILL);
                self.killed = true;
            }
            _ => {}
        }
    }

    /// Whether the timeout ended the box, which ended as `exit`: killed by the SIGTERM or the
    /// SIGKILL sent for it, or after it handled the SIGTERM. A box that ran to its own end
    /// during the grace period (its pid 1 ignoring SIGTERM) was not ended by it.
    pub fn ended(&self, exit: Exit) -> bool {
        self.termed.is_some()
            && match exit {
                Exit::Signal(libc::SIGTERM) => true,
                Exit::Signal(libc::SIGKILL) if self.killed => true,
                _ => self.term_caught,
            }
    }
}

/// Start the box attached to this terminal, forward signals, relay the pty, and wait for the
/// box's pid 1 to exit.
pub fn run_foreground(
    launch: &Launch<'_>,
    helpers: &mut dyn Helpers,
) -> Result<Finished, ExecError> {
    let mut watched = FORWARDED.to_vec();
    watched.push(libc::SIGCHLD);
    // Blocked before the clone so none is lost or kills foxbox mid-start; the child restores
    // a clean mask before exec.
    let relay = |what: &str, e: io::Error| ExecError::Relay(format!("{what}: {e}"));
    let old = p::block_signals(&watched).map_err(|e| relay("block signals", e))?;
    let result = (|| {
        let sfd = p::signalfd(&watched).map_err(|e| relay("signalfd", e))?;
        let mut started = start(launch, helpers)?;
        helpers.started(started.pid);
        let timeout = launch.plan.limits.timeout().map(|t| t.value);
        let mut deadline = Deadline::new(timeout, launch.plan.limits.stop_grace())
            .with_init(launch.plan.process.init);
        let exit =
            supervise(&mut started, sfd.as_fd(), &mut deadline).map_err(|e| relay("relay", e))?;
        Ok(Finished {
            exit,
            timings: started.timings,
            timed_out: deadline.ended(exit),
        })
    })();
    p::set_signal_mask(&old);
    result
}

/// How long a box whose terminal hung up may take to end before it is killed.
const HANGUP_GRACE: Duration = Duration::from_secs(10);

/// Relay until the box's pid 1 exits; returns how it ended.
pub(crate) fn supervise(
    s: &mut Started,
    sfd: BorrowedFd<'_>,
    deadline: &mut Deadline,
) -> io::Result<Exit> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut pty = s.pty.take();
    let _raw = match &pty {
        Some(m) => {
            if let Some(ws) = tty::window_size(stdout.as_fd()).or(tty::window_size(stdin.as_fd())) {
                tty::set_window_size(m.as_fd(), &ws);
            }
            if tty::is_terminal(stdin.as_fd()) {
                tty::RawMode::enter(stdin.as_fd()).ok()
            } else {
                None
            }
        }
        None => None,
    };
    if let Some(m) = &pty {
        fd::set_nonblocking(m.as_fd())?;
    }
    let stdin_tty = tty::is_terminal(stdin.as_fd());
    let mut stdin_open = pty.is_some();
    let mut to_box: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    // Set when our terminal went away: the box's pty is hung up in turn (it reads EOF), and a
    // box that still does not end is killed after a grace period.
    let mut hung_up: Option<Instant> = None;
    loop {
        let mut fds = vec![
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: s.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if let Some(m) = &pty {
            let mut ev = libc::POLLIN;
            if !to_box.is_empty() {
                ev |= libc::POLLOUT;
            }
            fds.push(libc::pollfd {
                fd: m.as_raw_fd(),
                events: ev,
                revents: 0,
            });
            if stdin_open && to_box.is_empty() {
                fds.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        let hangup_wait = hung_up.map(|t| HANGUP_GRACE.saturating_sub(t.elapsed()));
        let timeout = match (hangup_wait, deadline.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        fd::poll(&mut fds, timeout)?;
        deadline.enforce(s.pid, s.pidfd.as_fd());
        if hung_up.is_some_and(|t| t.elapsed() >= HANGUP_GRACE) {
            let _ = p::pidfd_signal(s.pidfd.as_fd(), libc::SIGKILL);
        }
        let mut hangup = false;
        if fds[0].revents != 0 {
            while let Some(sig) = p::read_signalfd(sfd) {
                match (sig, &pty) {
                    (libc::SIGCHLD, _) => {}
                    // The box's terminal follows ours; the kernel signals its foreground group.
                    (libc::SIGWINCH, Some(m)) => {
                        if let Some(ws) = tty::window_size(stdout.as_fd()) {
                            tty::set_window_size(m.as_fd(), &ws);
                        }
                    }
                    (sig, _) => {
                        let _ = p::pidfd_signal(s.pidfd.as_fd(), sig);
                        hangup |= sig == libc::SIGHUP;
                    }
                }
            }
        }
        if fds[1].revents != 0 {
            break;
        }
        if let Some(m) = &pty {
            let mrev = fds[2].revents;
            if mrev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                drain(m.as_fd(), &mut buf, &mut stdout.lock())?;
            }
            if mrev & libc::POLLOUT != 0 && !to_box.is_empty() {
                match nix::unistd::write(m.as_fd(), &to_box) {
                    Ok(n) => {
                        to_box.drain(..n);
                    }
                    Err(nix::errno::Errno::EAGAIN) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if fds.get(3).is_some_and(|f| f.revents != 0) {
                match stdin.lock().read(&mut buf) {
                    Ok(n) if n > 0 => to_box.extend_from_slice(&buf[..n]),
                    // A terminal that reads EOF or fails has gone away.
                    Ok(_) | Err(_) if stdin_tty => hangup = true,
                    _ => stdin_open = false,
                }
            }
        }
        if hangup && hung_up.is_none() {
            stdin_open = false;
            if let Some(m) = pty.take() {
                let _ = drain(m.as_fd(), &mut buf, &mut stdout.lock());
            }
            hung_up = Some(Instant::now());
        }
    }
    if let Some(m) = &pty {
        // The box is gone; whatever it wrote is still in the pty.
        drain(m.as_fd(), &mut buf, &mut stdout.lock())?;
    }
    p::wait_pid(s.pid)
}

/// Copy everything readable from the pty master to `out`.
fn drain(m: BorrowedFd<'_>, buf: &mut [u8], out: &mut impl Write) -> io::Result<()> {
    loop {
        match nix::unistd::read(m, buf) {
            Ok(0) => break,
            Ok(n) => out.write_all(&buf[..n])?,
            // EIO: every slave fd is closed.
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EIO) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    out.flush()
}
