//! `foxbox exec`: run one more process in a running box, as the box runs its command.
//!
//! The caller (single-threaded) opens a pidfd for the box's pid 1, moves itself into the box's
//! cgroups (paths are the host's, so before anything else) and joins every namespace of pid 1
//! that differs from its own in one `setns` (the kernel enters the user namespace first, so
//! the rest is checked with the capabilities gained there). A pid namespace applies to
//! children only, so it then forks. The child runs the box's own process steps
//! ([`steps::join_steps`]: console, close-fds, seccomp, user, workdir, env, capabilities,
//! no_new_privs, exec), through the same code as the box's set-up process; the parent follows
//! it over the same sync channel, then relays signals and the pty exactly as `foxbox run`
//! does, and returns how the command ended.
//!
//! The executor reads no box record: the caller hands it the box's pid, its cgroup and a
//! [`Request`] built from what the box recorded.

use std::os::fd::AsFd;
use std::path::PathBuf;

use super::channel;
use super::child::{self, Proc};
use super::error::{Context, ExecError, StepError};
use super::parent::{self, Deadline, Started, FORWARDED, TIMEOUT_GRACE};
use super::steps::{self, Action, ProcessShape, Step};
use crate::cgroup::BoxCgroup;
use crate::plan::User;
use crate::security::caps::CapSet;
use crate::security::seccomp::Program;
use crate::sys::idmap::IdMaps;
use crate::sys::process::{self as p, ns, Exit, Forked};

/// What /proc shows of the process `exec` forks into a box, until it execs.
pub const TITLE: &str = "foxbox-exec";

/// One process to run in a box.
#[derive(Debug, Clone)]
pub struct Request {
    pub args: Vec<String>,
    /// The box's variables with the caller's overrides applied; PATH, HOME, TERM, HOSTNAME
    /// and `container` are added under them as for the box's command.
    pub env: Vec<(String, String)>,
    pub hostname: String,
    pub cwd: PathBuf,
    pub user: User,
    /// The box's set (see [`crate::plan::Plan::capabilities`]).
    pub capabilities: CapSet,
    /// What a non-root user gets (see [`crate::plan::Plan::added_capabilities`]).
    pub added_capabilities: CapSet,
    pub no_new_privs: bool,
    /// The box's seccomp filter (`None`: unconfined).
    pub seccomp: Option<Filter>,
    /// A pty from the box's devpts, relayed to the caller's terminal.
    pub tty: bool,
    /// Keep stdin attached (otherwise the command reads /dev/null).
    pub stdin: bool,
}

/// A compiled seccomp filter and the profile it came from.
#[derive(Debug, Clone)]
pub struct Filter {
    pub program: Program,
    /// `None`: the built-in default profile.
    pub profile: Option<PathBuf>,
}

impl Request {
    /// Set a variable, replacing one of the same name in place.
    pub fn set_env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.env.push((key.to_string(), value.to_string())),
        }
    }

    fn shape(&self) -> ProcessShape<'_> {
        ProcessShape {
            args: &self.args,
            args_span: None,
            user_span: None,
            cwd: &self.cwd,
            cwd_span: None,
            capabilities: self.capabilities,
            added_capabilities: self.added_capabilities,
            capabilities_span: None,
            no_new_privs: self.no_new_privs,
            seccomp: self.seccomp.as_ref().map(|f| f.profile.as_deref()),
            seccomp_span: None,
            tty: Some(self.tty),
            await_start: false,
        }
    }

    /// The steps that run this request (`cgroup`: whether the box has a cgroup to move into).
    pub fn steps(&self, cgroup: bool) -> Vec<Step> {
        steps::join_steps(&self.shape(), cgroup)
    }
}

/// The box to join: the host pid of its pid 1, and a check that this pid still names the
/// process the box started (pids are reused).
pub struct Target<'a> {
    pub pid: i32,
    pub alive: &'a dyn Fn() -> bool,
}

/// Run `req` in the box whose pid 1 is `target`; returns how the command ended.
pub fn run(
    target: Target<'_>,
    cgroup: Option<&BoxCgroup>,
    req: &Request,
) -> Result<Exit, ExecError> {
    let mut watched = FORWARDED.to_vec();
    watched.push(libc::SIGCHLD);
    let relay = |what: &str, e: std::io::Error| ExecError::Relay(format!("{what}: {e}"));
    let old = p::block_signals(&watched).map_err(|e| relay("block signals", e))?;
    let result = (|| {
        let sfd = p::signalfd(&watched).map_err(|e| relay("signalfd", e))?;
        let mut started = enter(&target, cgroup, req)?;
        let mut deadline = Deadline::new(None, TIMEOUT_GRACE);
        parent::supervise(&mut started, sfd.as_fd(), &mut deadline).map_err(|e| relay("relay", e))
    })();
    p::set_signal_mask(&old);
    result
}

/// Join the box and start the command without following it (the OCI runtime's `exec
/// --detach`): the command's host pid and its pty master, if any. The caller is left in the
/// box's namespaces.
pub fn start(
    target: Target<'_>,
    cgroup: Option<&BoxCgroup>,
    req: &Request,
) -> Result<Started, ExecError> {
    enter(&target, cgroup, req)
}

/// Join the box and start the command; the caller follows it.
fn enter(
    target: &Target<'_>,
    cgroup: Option<&BoxCgroup>,
    req: &Request,
) -> Result<Started, ExecError> {
    let list = req.steps(cgroup.is_some());
    let fail = |a: Action, e: StepError| {
        let name = list
            .iter()
            .find(|s| s.action == a)
            .map_or("join", |s| s.name);
        ExecError::step(name, None, e)
    };
    let join = |e| fail(Action::Join, e);
    let pidfd = p::pidfd_open(target.pid).ctx(|| "pidfd_open on the box's pid 1".into());
    let pidfd = pidfd.map_err(join)?;
    // The pidfd names the process it was opened for; checking after opening rules out a
    // recycled pid.
    if !(target.alive)() {
        return Err(join(StepError::new(
            libc::ESRCH,
            "the box is no longer running",
        )));
    }
    let flags = namespaces_to_join(target.pid).map_err(join)?;
    // The child is this program, with the caller's command line, until it execs: read here
    // (the host's /proc) where its argument strings are, for it to rewrite them.
    let title = p::ArgArea::of_self()
        .ctx(|| "read /proc/self/stat".into())
        .map_err(join)?;
    // Read from here (the host's /proc): which ids the box maps, for the user step.
    let id_maps = IdMaps::of_process(target.pid)
        .ctx(|| "the box's uid and gid maps".into())
        .map_err(join)?;
    if let Some(cg) = cgroup {
        cg.place(std::process::id() as i32).map_err(|e| {
            fail(
                Action::Cgroup,
                StepError::new(e.errno().unwrap_or(0), e.to_string()),
            )
        })?;
    }
    // None differs (a box that shares all of ours): setns would refuse an empty set.
    if flags != 0 {
        p::setns(pidfd.as_fd(), flags)
            .ctx(|| "setns into the box's namespaces".into())
            .map_err(|e| {
                join(if e.errno == libc::EINVAL {
                    e.with_hint("a multi-threaded process cannot join a user namespace")
                } else {
                    e
                })
            })?;
    }
    // A box that shares our mount namespace (an OCI container without one) is in a chroot:
    // so is the process joining it.
    if flags & ns::MOUNT as libc::c_int == 0 {
        enter_root(target.pid).map_err(join)?;
    }
    // From here on the mount namespace (and so every path) is the box's.
    let (pend, cend) = channel::pair()
        .ctx(|| "sync channel".into())
        .map_err(join)?;
    let (pid, child_pidfd) = match p::fork_into(0).ctx(|| "fork into the box".into()) {
        Ok(Forked::Child) => {
            drop(pend);
            // Box processes see this one: nothing of the caller's command line for them.
            p::retitle(title, TITLE);
            let seccomp = req.seccomp.as_ref().map(|f| &f.program);
            child::run_joined(proc_of(req, seccomp, &id_maps), &list, cend)
        }
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => return Err(join(e)),
    };
    drop(cend);
    let mut timings = Vec::new();
    let pty = parent::follow(&pend, pid, child_pidfd.as_fd(), &list, &mut timings, None)?;
    Ok(Started {
        pid,
        pidfd: child_pidfd,
        pty,
        timings,
    })
}

fn proc_of<'a>(req: &'a Request, seccomp: Option<&'a Program>, id_maps: &'a IdMaps) -> Proc<'a> {
    Proc {
        args: &req.args,
        env: &req.env,
        hostname: &req.hostname,
        cwd: &req.cwd,
        user: &req.user,
        capabilities: req.capabilities,
        added_capabilities: req.added_capabilities,
        no_new_privs: req.no_new_privs,
        seccomp,
        id_maps,
        tty: req.tty,
        stdin_null: !req.stdin,
    }
}

/// chroot into the root directory of `pid` when it is not ours.
fn enter_root(pid: i32) -> Result<(), StepError> {
    use std::os::unix::fs::MetadataExt;
    let theirs = format!("/proc/{pid}/root");
    let a = std::fs::metadata(&theirs).ctx(|| "the box's root".into())?;
    let b = std::fs::metadata("/").ctx(|| "our root".into())?;
    if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
        return Ok(());
    }
    nix::unistd::chroot(theirs.as_str())
        .map_err(std::io::Error::from)
        .ctx(|| format!("chroot into {theirs}"))?;
    nix::unistd::chdir("/")
        .map_err(std::io::Error::from)
        .ctx(|| "chdir /".into())
}

/// The namespace kinds whose instance for `pid` differs from ours.
fn namespaces_to_join(pid: i32) -> Result<libc::c_int, StepError> {
    use std::os::unix::fs::MetadataExt;
    let kinds: [(&str, u64); 7] = [
        ("user", ns::USER),
        ("mnt", ns::MOUNT),
        ("pid", ns::PID),
        ("uts", ns::UTS),
        ("ipc", ns::IPC),
        ("cgroup", ns::CGROUP),
        ("net", ns::NET),
    ];
    let mut flags = 0;
    for (name, flag) in kinds {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"))
            .ctx(|| format!("the box's {name} namespace"))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .ctx(|| format!("our {name} namespace"))?;
        if (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()) {
            flags |= flag as libc::c_int;
        }
    }
    Ok(flags)
}
