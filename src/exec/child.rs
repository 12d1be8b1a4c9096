//! The box's set-up process: after the parent releases it, it runs the child steps in order,
//! each a small function returning a Result, and reports the first failure (step, errno,
//! message) to the parent before it exits. It never prints.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::Instant;

use super::channel::ChildEnd;
use super::error::{Context, StepError};
use super::steps::{Action, Side, Step};
use super::{init, security_glue, user, Launch};
use crate::fs::{dev, etc, kernfs, masks, mounts, pivot, rootfs};
use crate::plan::{MountKind, NetMode};
use crate::security::seccomp::Program;
use crate::sys::mount::{self, MsFlags};
use crate::sys::{net, netns, process as p, tty};

/// The default PATH (podman's).
pub use crate::spec::resolve::DEFAULT_PATH;

/// Exit status of the set-up process when a step failed (the parent reads the reason from the
/// channel; this status is only seen if that message was lost).
const SETUP_FAILED: i32 = 125;

/// Run in the freshly cloned child. Never returns.
pub(crate) fn run(
    launch: &Launch<'_>,
    steps: &[Step],
    chan: ChildEnd,
    seccomp: Option<&Program>,
    private_dev: Option<BorrowedFd<'_>>,
) -> ! {
    // The box must not outlive the process that started it (the CLI, or a supervisor).
    let _ = p::set_parent_death_signal(libc::SIGKILL);
    // Now in the box's cgroups (the parent's `cgroup` step): a cgroup namespace made here, not
    // at clone, shows them as the root.
    if !chan.wait_for_release()
        || nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).is_err()
    {
        p::exit_now(SETUP_FAILED);
    }
    let mut st = State {
        launch,
        chan: &chan,
        root: None,
        identity: None,
        env: Vec::new(),
        netns: None,
        seccomp,
        private_dev,
    };
    let mut timings = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        if s.side != Side::Child {
            continue;
        }
        if s.action == Action::Exec {
            let e = st.exec(timings);
            let code = if e.errno == libc::ENOENT { 127 } else { 126 };
            chan.failed(i, e);
            p::exit_now(code);
        }
        let t = Instant::now();
        if let Err(e) = st.run(s.action) {
            chan.failed(i, e);
            p::exit_now(SETUP_FAILED);
        }
        timings.push((i, t.elapsed().as_nanos() as u64));
    }
    chan.failed(
        steps.len().saturating_sub(1),
        StepError::msg("the step list has no exec step"),
    );
    p::exit_now(SETUP_FAILED)
}

fn netns_error((what, e): (&str, std::io::Error)) -> StepError {
    StepError::new(e.raw_os_error().unwrap_or(0), format!("{what}: {e}"))
}

struct State<'a> {
    launch: &'a Launch<'a>,
    chan: &'a ChildEnd,
    root: Option<rootfs::NewRoot>,
    identity: Option<user::Identity>,
    env: Vec<(String, String)>,
    /// The box's network namespace, being made (see [`netns`]).
    netns: Option<netns::NetNs>,
    /// Compiled by the parent before the clone, so the child only installs it.
    seccomp: Option<&'a Program>,
    /// The /dev tmpfs with nodes of the box's own, made by the parent (see [`dev::private`]).
    private_dev: Option<BorrowedFd<'a>>,
}

impl State<'_> {
    fn root(&self) -> Result<std::os::fd::BorrowedFd<'_>, StepError> {
        self.root
            .as_ref()
            .map(|r| r.root.as_fd())
            .ok_or_else(|| StepError::msg("the rootfs is not mounted yet"))
    }

    fn run(&mut self, action: Action) -> Result<(), StepError> {
        let plan = self.launch.plan;
        match action {
            Action::Loopback => net::loopback_up().ctx(|| "bring up lo".into()),
            Action::NetNs => {
                self.netns = Some(netns::begin().map_err(netns_error)?);
                Ok(())
            }
            Action::JoinNetNs => match self.netns.take() {
                Some(ns) => ns.join().map_err(netns_error),
                None => Err(StepError::msg("no network namespace is being made")),
            },
            Action::Propagation => mount::mount(
                None,
                Path::new("/"),
                None,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None,
            )
            .ctx(|| "make / rprivate".into()),
            Action::Rootfs => {
                let files = etc::contents(&self.launch.hostname, &plan.network);
                self.root = Some(rootfs::mount_rootfs(&self.launch.rootfs, &files)?);
                if plan.rootfs.readonly.value {
                    mounts::readonly_root_scratch(self.root()?, &plan.mounts)?;
                }
                Ok(())
            }
            Action::Proc => kernfs::mount_proc(self.root()?),
            Action::Dev => {
                let tty_gid = self.launch.id_maps.host_gid(5).map(|_| 5);
                dev::populate(self.root()?, tty_gid, self.private_dev)
            }
            Action::Sys => {
                let own_netns = plan.network.mode.value != NetMode::Host;
                kernfs::mount_sys(self.root()?, own_netns)
            }
            Action::Mount(i) => {
                let m = plan
                    .mounts
                    .get(i)
                    .ok_or_else(|| StepError::msg(format!("no mount #{i} in the plan")))?;
                let source = match &m.kind {
                    MountKind::Bind { source } => Some(source.as_path()),
                    MountKind::Volume { name } => {
                        self.launch.volumes.get(name).map(|p| p.as_path())
                    }
                    MountKind::Tmpfs { .. } => None,
                };
                mounts::apply(self.root()?, m, &plan.mounts[..i], source)
            }
            Action::PivotRoot => {
                pivot::pivot_into(self.root()?)?;
                self.root = None;
                Ok(())
            }
            Action::MaskedPaths => masks::mask_paths(),
            Action::ReadonlyPaths => masks::readonly_paths(),
            Action::ReadonlyRoot => mounts::remount_root_readonly(),
            Action::Console => self.console(),
            Action::Hostname => nix::unistd::sethostname(&self.launch.hostname)
                .map_err(std::io::Error::from)
                .ctx(|| format!("sethostname {:?}", self.launch.hostname)),
            Action::CloseFds => {
                p::close_fds_from(3, Some(self.chan.raw())).ctx(|| "close_range".into())
            }
            Action::User => self.user(),
            Action::Workdir => {
                let cwd = &plan.process.cwd.value;
                nix::unistd::chdir(cwd.as_path())
                    .map_err(std::io::Error::from)
                    .ctx(|| format!("working directory {}", cwd.display()))
                    .map_err(|e| {
                        if e.errno == libc::ENOENT {
                            e.with_hint("create it in the image, or choose an existing directory")
                        } else {
                            e
                        }
                    })
            }
            Action::Env => {
                self.env = environment(self.launch, self.identity.as_ref());
                Ok(())
            }
            Action::Capabilities => security_glue::set_capabilities(plan.capabilities.value),
            Action::NoNewPrivs => security_glue::set_no_new_privs(),
            Action::Seccomp => security_glue::install_seccomp(self.seccomp, plan.no_new_privs),
            Action::Init => init::fork_init(self.chan.raw()),
            Action::Image
            | Action::Clone
            | Action::IdMaps
            | Action::Cgroup
            | Action::Network
            | Action::Exec => Err(StepError::msg("not a step of the box's set-up process")),
        }
    }

    fn console(&mut self) -> Result<(), StepError> {
        if !self.launch.tty {
            // Its own session, without a controlling terminal: the caller's terminal stays
            // out of reach of TIOCSTI, and terminal signals go to foxbox, which forwards them.
            return nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
                .ctx(|| "setsid".into());
        }
        let (master, slave) = tty::open_pty(Path::new("/dev/ptmx")).ctx(|| "open a pty".into())?;
        self.chan
            .send_pty(&master)
            .ctx(|| "hand the pty to foxbox".into())?;
        drop(master);
        tty::become_session_leader_on(slave).ctx(|| "take the pty as the terminal".into())
    }

    fn user(&mut self) -> Result<(), StepError> {
        let plan = self.launch.plan;
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        let id = user::resolve(&plan.process.user.value, &passwd, &group)?;
        let unmapped = |what: &str, n: u32| {
            StepError::new(
                libc::EINVAL,
                format!("{what} {n} is not mapped in the box's user namespace"),
            )
            .with_hint(
                "without a subordinate id range (/etc/subuid, /etc/subgid and newuidmap) a \
                 rootless box has only one id, 0",
            )
        };
        if self.launch.id_maps.host_uid(id.uid).is_none() {
            return Err(unmapped("uid", id.uid));
        }
        if self.launch.id_maps.host_gid(id.gid).is_none() {
            return Err(unmapped("gid", id.gid));
        }
        crate::security::capset::set_keep_caps(true)
            .map_err(|e| StepError::new(e.errno().unwrap_or(0), e.to_string()))?;
        let groups: Vec<nix::unistd::Gid> = id
            .groups
            .iter()
            .filter(|g| self.launch.id_maps.host_gid(**g).is_some())
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        // setgroups is denied in a user namespace mapped without the helpers.
        let allowed = std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() == "allow")
            .unwrap_or(false);
        if allowed {
            nix::unistd::setgroups(&groups)
                .map_err(std::io::Error::from)
                .ctx(|| "setgroups".into())?;
        }
        let g = nix::unistd::Gid::from_raw(id.gid);
        nix::unistd::setresgid(g, g, g)
            .map_err(std::io::Error::from)
            .ctx(|| format!("setresgid {}", id.gid))?;
        let u = nix::unistd::Uid::from_raw(id.uid);
        nix::unistd::setresuid(u, u, u)
            .map_err(std::io::Error::from)
            .ctx(|| format!("setresuid {}", id.uid))?;
        crate::security::capset::set_keep_caps(false)
            .map_err(|e| StepError::new(e.errno().unwrap_or(0), e.to_string()))?;
        // A credential change clears the parent-death signal.
        let _ = p::set_parent_death_signal(libc::SIGKILL);
        self.identity = Some(id);
        Ok(())
    }

    /// Exec the fox (execvpe semantics with the box's PATH). Returns only on failure.
    fn exec(&mut self, timings: Vec<(usize, u64)>) -> StepError {
        let plan = self.launch.plan;
        let args: &[String] = if !plan.process.args.value.is_empty() {
            &plan.process.args.value
        } else if !self.launch.default_args.is_empty() {
            &self.launch.default_args
        } else {
            return StepError::new(libc::ENOENT, "no command: the plan and the image name none");
        };
        if self.env.is_empty() {
            self.env = environment(self.launch, self.identity.as_ref());
        }
        let to_c = |s: &str| CString::new(s).map_err(|_| ());
        let argv: Result<Vec<CString>, ()> = args.iter().map(|a| to_c(a)).collect();
        let envp: Result<Vec<CString>, ()> = self
            .env
            .iter()
            .map(|(k, v)| to_c(&format!("{k}={v}")))
            .collect();
        let (Ok(argv), Ok(envp)) = (argv, envp) else {
            return StepError::new(libc::EINVAL, "an argument or variable holds a NUL byte");
        };
        let path = self
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        p::reset_signals();
        if let Err(e) = self.chan.ready(timings) {
            return StepError::new(e.raw_os_error().unwrap_or(0), format!("tell foxbox: {e}"));
        }
        exec_search(&argv, &envp, &path)
    }
}

/// The fox's environment: PATH, HOME, TERM, HOSTNAME and `container`, then the plan's
/// variables over them (a plan variable with the same name wins).
fn environment(launch: &Launch<'_>, id: Option<&user::Identity>) -> Vec<(String, String)> {
    let home = id.map(|i| i.home.clone()).unwrap_or_else(|| "/root".into());
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), home),
        ("TERM".into(), "xterm".into()),
        ("HOSTNAME".into(), launch.hostname.clone()),
        ("container".into(), "foxbox".into()),
    ];
    for (k, v) in &launch.plan.process.env {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    env
}

pub(crate) fn exec_search(argv: &[CString], envp: &[CString], path: &str) -> StepError {
    let prog = argv[0].to_string_lossy().into_owned();
    let try_exec = |file: &std::ffi::CStr| -> nix::errno::Errno {
        match nix::unistd::execve(file, argv, envp) {
            Err(e) => e,
            Ok(never) => match never {},
        }
    };
    let errno = if prog.contains('/') {
        try_exec(&argv[0])
    } else {
        let mut seen_eacces = false;
        let mut last = nix::errno::Errno::ENOENT;
        for dir in path.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let Ok(cand) = CString::new(format!("{dir}/{prog}")) else {
                continue;
            };
            match try_exec(&cand) {
                nix::errno::Errno::EACCES => seen_eacces = true,
                nix::errno::Errno::ENOENT
                | nix::errno::Errno::ENOTDIR
                | nix::errno::Errno::ENAMETOOLONG => {}
                other => {
                    last = other;
                    break;
                }
            }
        }
        if last == nix::errno::Errno::ENOENT && seen_eacces {
            nix::errno::Errno::EACCES
        } else {
            last
        }
    };
    let e = StepError::new(errno as i32, format!("{prog}: {}", errno.desc()));
    match errno {
        nix::errno::Errno::ENOENT => StepError {
            message: format!("{prog}: command not found in the box"),
            ..e
        }
        .with_hint(format!(
            "the box's PATH is {path}; a missing ELF or #! interpreter also reads as not found"
        )),
        nix::errno::Errno::EACCES => StepError {
            message: format!("{prog}: permission denied (not an executable file?)"),
            ..e
        },
        _ => e,
    }
}
