//! `foxbox exec`: run one more process in a running box, as the box runs its fox.
//!
//! The caller (single-threaded) moves itself into the box's cgroups (paths are the host's, so
//! before anything else), opens a pidfd for the box's pid 1 and joins every namespace of it
//! that differs from its own in one `setns` (the kernel enters the user namespace first, so
//! the rest is checked with the capabilities gained there). A pid namespace applies to
//! children only, so it then forks: the child runs the same steps as the box's set-up process
//! (console, user, workdir, capabilities, no_new_privs, seccomp, in the executor's order) and
//! execs; the parent relays signals and the pty exactly as `foxbox run` does, and returns how
//! the command ended.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::channel::{self, FromChild};
use super::error::{Context, ExecError, StepError};
use super::parent::{self, Deadline, Started, FORWARDED, TIMEOUT_GRACE};
use super::{security_glue, user};
use crate::boxes::execinfo::{ExecInfo, SeccompSource};
use crate::boxes::ProcId;
use crate::cgroup::BoxCgroup;
use crate::plan::User;
use crate::security::caps::CapSet;
use crate::security::seccomp::{self, Program};
use crate::sys::process::{self as p, ns, Exit, Forked};
use crate::sys::tty;

/// One process to run in a box.
#[derive(Debug, Clone)]
pub struct Request {
    pub args: Vec<String>,
    /// The box's variables with the caller's overrides applied; PATH, HOME, TERM, HOSTNAME
    /// and `container` are added under them as for the fox.
    pub env: Vec<(String, String)>,
    pub hostname: String,
    pub cwd: PathBuf,
    pub user: User,
    pub capabilities: CapSet,
    pub no_new_privs: bool,
    pub seccomp: Option<Program>,
    /// A pty from the box's devpts, relayed to the caller's terminal.
    pub tty: bool,
    /// Keep stdin attached (otherwise the command reads /dev/null).
    pub stdin: bool,
}

impl Request {
    /// The box's settings from its config, for `args` (`name`: the box's).
    pub fn from_info(info: &ExecInfo, name: &str, args: Vec<String>) -> Result<Request, ExecError> {
        Ok(Request {
            args,
            env: info.env.clone(),
            hostname: info.hostname.clone().unwrap_or_else(|| name.to_string()),
            cwd: info.cwd.clone(),
            user: (&info.user).into(),
            capabilities: info.caps(),
            no_new_privs: info.no_new_privs,
            seccomp: seccomp_program(info)?,
            tty: false,
            stdin: false,
        })
    }

    /// Set a variable, replacing one of the same name in place.
    pub fn set_env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.env.push((key.to_string(), value.to_string())),
        }
    }
}

fn refused(message: String, hint: &str) -> ExecError {
    ExecError::step("seccomp", None, StepError::msg(message).with_hint(hint))
}

/// The box's seccomp filter, compiled again from its source and checked against the one the
/// box got: a profile edited since would otherwise give `exec` a different filter.
pub fn seccomp_program(info: &ExecInfo) -> Result<Option<Program>, ExecError> {
    let caps = info.caps();
    let compiled = match &info.seccomp {
        SeccompSource::Unconfined => return Ok(None),
        SeccompSource::Default => seccomp::compile_native(seccomp::default_profile(), caps),
        SeccompSource::Profile { path } => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                refused(
                    format!(
                        "cannot read the box's seccomp profile {}: {e}",
                        path.display()
                    ),
                    "exec applies the box's own filter; restore the profile file",
                )
            })?;
            let profile = seccomp::parse_profile(&text).map_err(|errs| {
                let first = errs.first().map(|e| e.message.clone()).unwrap_or_default();
                refused(
                    format!(
                        "the box's seccomp profile {} no longer parses: {first}",
                        path.display()
                    ),
                    "exec applies the box's own filter; restore the profile file",
                )
            })?;
            seccomp::compile_native(&profile, caps)
        }
    };
    let program = compiled.map_err(|e| {
        refused(
            format!("cannot compile the seccomp profile: {e}"),
            "restore the box's profile",
        )
    })?;
    if info
        .seccomp_digest
        .as_ref()
        .is_some_and(|d| *d != program.digest())
    {
        return Err(refused(
            "the box's seccomp profile changed since the box started".to_string(),
            "exec applies exactly the box's filter; restore the profile or restart the box",
        ));
    }
    Ok(Some(program))
}

/// The steps of the joined child, in the executor's order (names for error reports).
const STEPS: &[&str] = &[
    "console",
    "seccomp",
    "user",
    "workdir",
    "env",
    "capabilities",
    "no-new-privs",
    "close-fds",
    "exec",
];

/// Run `req` in the box whose pid 1 is `target`; returns how the command ended.
pub fn run(target: ProcId, cgroup: Option<&BoxCgroup>, req: &Request) -> Result<Exit, ExecError> {
    let mut watched = FORWARDED.to_vec();
    watched.push(libc::SIGCHLD);
    let relay = |what: &str, e: std::io::Error| ExecError::Relay(format!("{what}: {e}"));
    let old = p::block_signals(&watched).map_err(|e| relay("block signals", e))?;
    let result = (|| {
        let sfd = p::signalfd(&watched).map_err(|e| relay("signalfd", e))?;
        let mut started = enter(target, cgroup, req)?;
        let mut deadline = Deadline::new(None, TIMEOUT_GRACE);
        parent::supervise(&mut started, sfd.as_fd(), &mut deadline).map_err(|e| relay("relay", e))
    })();
    p::set_signal_mask(&old);
    result
}

fn step_err(name: &'static str) -> impl Fn(StepError) -> ExecError {
    move |e| ExecError::step(name, None, e)
}

/// Join the box and start the command; the caller follows it.
fn enter(target: ProcId, cgroup: Option<&BoxCgroup>, req: &Request) -> Result<Started, ExecError> {
    let join = step_err("join");
    let pidfd = p::pidfd_open(target.pid).ctx(|| "pidfd_open on the box's pid 1".into());
    let pidfd = pidfd.map_err(&join)?;
    // The pidfd names the process it was opened for; checking after opening rules out a
    // recycled pid.
    if !target.alive() {
        return Err(join(StepError::new(
            libc::ESRCH,
            "the box is no longer running",
        )));
    }
    let flags = namespaces_to_join(target.pid).map_err(&join)?;
    if let Some(cg) = cgroup {
        cg.place(std::process::id() as i32).map_err(|e| {
            step_err("cgroup")(StepError::new(e.errno().unwrap_or(0), e.to_string()))
        })?;
    }
    p::setns(pidfd.as_fd(), flags)
        .ctx(|| "setns into the box's namespaces".into())
        .map_err(|e| {
            join(if e.errno == libc::EINVAL {
                e.with_hint("a multi-threaded process cannot join a user namespace")
            } else {
                e
            })
        })?;
    // From here on the mount namespace (and so every path) is the box's.
    let pty = if req.tty {
        Some(
            tty::open_pty(Path::new("/dev/ptmx"))
                .ctx(|| "open a pty in the box".into())
                .map_err(step_err("console"))?,
        )
    } else {
        None
    };
    let (pend, cend) = channel::pair()
        .ctx(|| "sync channel".into())
        .map_err(&join)?;
    let (pid, child_pidfd) = match p::fork_into(0).ctx(|| "fork into the box".into()) {
        Ok(Forked::Child) => {
            drop(pend);
            let slave = pty.map(|(m, s)| {
                drop(m);
                s
            });
            child(req, slave, cend)
        }
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => return Err(join(e)),
    };
    drop(cend);
    let master = pty.map(|(m, _s)| m);
    let mut ready = false;
    loop {
        match pend.recv() {
            Ok(Some((FromChild::Ready { .. }, _))) => ready = true,
            Ok(Some((FromChild::Failed { step, error }, _))) => {
                let _ = p::wait_pid(pid);
                let name = STEPS.get(step).copied().unwrap_or("unknown");
                return Err(ExecError::step(name, None, error));
            }
            Ok(Some((FromChild::Pty, _))) => {}
            Ok(None) if ready => break,
            Ok(None) => {
                let how = match p::wait_pid(pid) {
                    Ok(Exit::Code(c)) => format!("exit code {c}"),
                    Ok(Exit::Signal(s)) => format!("killed by signal {s}"),
                    Err(e) => e.to_string(),
                };
                return Err(ExecError::Vanished(how));
            }
            Err(e) => {
                let _ = p::pidfd_signal(child_pidfd.as_fd(), libc::SIGKILL);
                let _ = p::wait_pid(pid);
                return Err(ExecError::Vanished(format!("reading from it: {e}")));
            }
        }
    }
    Ok(Started {
        pid,
        pidfd: child_pidfd,
        pty: master,
        timings: Vec::new(),
    })
}

/// The forked child, inside the box's pid namespace. Never returns.
fn child(req: &Request, slave: Option<OwnedFd>, chan: channel::ChildEnd) -> ! {
    let fail = |step: &str, e: StepError, code: i32| -> ! {
        let i = STEPS.iter().position(|s| *s == step).unwrap_or(0);
        chan.failed(i, e);
        p::exit_now(code)
    };
    if let Err(e) = console(req, slave) {
        fail("console", e, 125);
    }
    if req.seccomp.is_some() && !req.no_new_privs {
        // Without no_new_privs the filter needs CAP_SYS_ADMIN: in before the user changes.
        if let Err(e) = security_glue::install_seccomp(req.seccomp.as_ref(), false) {
            fail("seccomp", e, 125);
        }
    }
    let identity = match set_user(&req.user) {
        Ok(id) => id,
        Err(e) => fail("user", e, 125),
    };
    if let Err(e) = nix::unistd::chdir(req.cwd.as_path())
        .map_err(std::io::Error::from)
        .ctx(|| format!("working directory {}", req.cwd.display()))
    {
        fail("workdir", e, 125);
    }
    let env = environment(req, &identity);
    if let Err(e) = security_glue::set_capabilities(req.capabilities) {
        fail("capabilities", e, 125);
    }
    if req.no_new_privs {
        if let Err(e) = security_glue::set_no_new_privs() {
            fail("no-new-privs", e, 125);
        }
        if let Err(e) = security_glue::install_seccomp(req.seccomp.as_ref(), true) {
            fail("seccomp", e, 125);
        }
    }
    if let Err(e) = p::close_fds_from(3, Some(chan.raw())).ctx(|| "close_range".into()) {
        fail("close-fds", e, 125);
    }
    let to_c = |s: &str| CString::new(s).map_err(|_| ());
    let argv: Result<Vec<CString>, ()> = req.args.iter().map(|a| to_c(a)).collect();
    let envp: Result<Vec<CString>, ()> =
        env.iter().map(|(k, v)| to_c(&format!("{k}={v}"))).collect();
    let (Ok(argv), Ok(envp)) = (argv, envp) else {
        fail(
            "exec",
            StepError::new(libc::EINVAL, "an argument or variable holds a NUL byte"),
            126,
        );
    };
    if argv.is_empty() {
        fail(
            "exec",
            StepError::new(libc::ENOENT, "no command given"),
            127,
        );
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    p::reset_signals();
    if chan.ready(Vec::new()).is_err() {
        // The caller is gone; nobody is left to run the command for.
        p::exit_now(125);
    }
    let e = super::child::exec_search(&argv, &envp, &path);
    let code = if e.errno == libc::ENOENT { 127 } else { 126 };
    fail("exec", e, code)
}

fn console(req: &Request, slave: Option<OwnedFd>) -> Result<(), StepError> {
    match slave {
        Some(s) => tty::become_session_leader_on(s).ctx(|| "take the pty as the terminal".into()),
        None => {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
                .ctx(|| "setsid".into())?;
            if !req.stdin {
                let null = std::fs::File::open("/dev/null").ctx(|| "open /dev/null".into())?;
                // SAFETY: dup2 onto stdin on purpose; nothing owns fd 0 as an OwnedFd.
                if unsafe { libc::dup2(null.as_raw_fd(), 0) } < 0 {
                    return Err(StepError::new(
                        std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                        "dup2 /dev/null onto stdin",
                    ));
                }
            }
            Ok(())
        }
    }
}

/// The user, as the box's set-up process sets it (names from the box's own /etc files).
fn set_user(u: &User) -> Result<user::Identity, StepError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let id = user::resolve(u, &passwd, &group)?;
    let caps_err = |e: crate::security::capset::CapError| {
        StepError::new(e.errno().unwrap_or(0), e.to_string())
    };
    crate::security::capset::set_keep_caps(true).map_err(caps_err)?;
    let allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(false);
    if allowed {
        let groups: Vec<nix::unistd::Gid> = id
            .groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        // A group the box does not map cannot be set; the fox goes without it too.
        if nix::unistd::setgroups(&groups).is_err() {
            nix::unistd::setgroups(&[])
                .map_err(std::io::Error::from)
                .ctx(|| "setgroups".into())?;
        }
    }
    let hint = |e: StepError| {
        if e.errno == libc::EINVAL {
            e.with_hint("the id is not mapped in the box's user namespace")
        } else {
            e
        }
    };
    let g = nix::unistd::Gid::from_raw(id.gid);
    nix::unistd::setresgid(g, g, g)
        .map_err(std::io::Error::from)
        .ctx(|| format!("setresgid {}", id.gid))
        .map_err(hint)?;
    let uid = nix::unistd::Uid::from_raw(id.uid);
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(std::io::Error::from)
        .ctx(|| format!("setresuid {}", id.uid))
        .map_err(hint)?;
    crate::security::capset::set_keep_caps(false).map_err(caps_err)?;
    Ok(id)
}

/// PATH, HOME, TERM, HOSTNAME and `container`, then the request's variables over them.
fn environment(req: &Request, id: &user::Identity) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), super::child::DEFAULT_PATH.into()),
        ("HOME".into(), id.home.clone()),
        ("TERM".into(), "xterm".into()),
        ("HOSTNAME".into(), req.hostname.clone()),
        ("container".into(), "foxbox".into()),
    ];
    for (k, v) in &req.env {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    env
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
