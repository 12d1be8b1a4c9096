//! The child side of the executor: the process that runs the child steps in order, each a
//! small function returning a Result, and reports the first failure (step, errno, message) to
//! the parent before it exits. It never prints.
//!
//! Two kinds of process run them: a box's set-up process, once the parent releases it ([`run`]:
//! every child step, from the mounts to the box's command), and a process `foxbox exec` forked
//! into a running box ([`run_joined`]: the process steps only, see
//! [`super::steps::join_steps`]). Both go through the same [`State`] and the same function per
//! step.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::Instant;

use super::channel::ChildEnd;
use super::error::{Context, StepError};
use super::steps::{Action, Side, Step};
use super::{init, security_steps, user, Launch};
use crate::fs::{dev, etc, kernfs, masks, mounts, pivot, rootfs};
use crate::plan::{MountKind, NetMode, User, DEFAULT_PATH};
use crate::security::caps::CapSet;
use crate::security::seccomp::Program;
use crate::sys::idmap::IdMaps;
use crate::sys::mount::{self, MsFlags};
use crate::sys::{fd, net, netns, process as p, tty};

/// Exit status of the set-up process when a step failed (the parent reads the reason from the
/// channel; this status is only seen if that message was lost).
const SETUP_FAILED: i32 = 125;

/// What the process steps need: the same for a box's command and for a process `foxbox exec`
/// starts in the box.
pub(crate) struct Proc<'a> {
    /// argv (empty: no command, an error at exec).
    pub args: &'a [String],
    /// The variables given (the plan's, with any overrides), over PATH, HOME, TERM, HOSTNAME
    /// and `container`.
    pub env: &'a [(String, String)],
    pub hostname: &'a str,
    pub cwd: &'a Path,
    pub user: &'a User,
    pub capabilities: CapSet,
    pub added_capabilities: CapSet,
    pub no_new_privs: bool,
    /// Compiled before the fork, so the child only installs it.
    pub seccomp: Option<&'a Program>,
    /// The box's user namespace maps (which ids the user step can take).
    pub id_maps: &'a IdMaps,
    /// A pty from the box's devpts, handed to the parent.
    pub tty: bool,
    /// Without a pty: read /dev/null rather than the caller's stdin.
    pub stdin_null: bool,
}

impl<'a> Proc<'a> {
    fn of_launch(launch: &'a Launch<'a>, seccomp: Option<&'a Program>) -> Proc<'a> {
        let plan = launch.plan;
        Proc {
            // The box's whole argv: the runner's plan has its image's joined in.
            args: &plan.process.args.value,
            env: &plan.process.env,
            hostname: &launch.hostname,
            cwd: &plan.process.cwd.value,
            user: &plan.process.user.value,
            capabilities: plan.capabilities.value,
            added_capabilities: plan.added_capabilities,
            no_new_privs: plan.no_new_privs,
            seccomp,
            id_maps: &launch.id_maps,
            tty: launch.tty,
            stdin_null: false,
        }
    }
}

/// Run in the freshly cloned set-up process of a box. Never returns.
pub(crate) fn run(
    launch: &Launch<'_>,
    steps: &[Step],
    chan: ChildEnd,
    seccomp: Option<&Program>,
    private_dev: Option<BorrowedFd<'_>>,
) -> ! {
    // The box must not outlive the process that started it (the CLI, or a supervisor), but
    // for an OCI container, which outlives `create` by design.
    if launch.start_gate.is_none() {
        let _ = p::set_parent_death_signal(libc::SIGKILL);
    }
    // Now in the box's cgroups (the parent's `cgroup` step): a cgroup namespace made here, not
    // at clone, shows them as the root. A box that shares the caller's keeps it.
    let own_cgroupns = launch.joined & p::ns::CGROUP == 0;
    if !chan.wait_for_release()
        || (own_cgroupns && nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).is_err())
    {
        p::exit_now(SETUP_FAILED);
    }
    // Before anything is mounted: the box's mounts go into the namespace it joins.
    if let Some(fd) = launch.join_mount {
        if let Err(e) = join_mount(fd) {
            let first = steps.iter().position(|s| s.side == Side::Child);
            chan.failed(first.unwrap_or(0), e);
            p::exit_now(SETUP_FAILED);
        }
    }
    // A `keep-id` box's set-up process starts as the box id the caller's is (not 0): it takes
    // the box's root, as a runtime's does, so that what it makes (/dev, a missing working
    // directory) is root's, and the user step starts from root as in any box.
    let maps = &launch.id_maps;
    let euid = nix::unistd::geteuid().as_raw();
    let became = if euid != 0 && maps.host_uid(0).is_some() {
        become_ids(0, 0)
    } else if maps.host_uid(euid).is_none() {
        // A namespace that maps no 0 (an OCI config's `1 100000 1000`): the set-up process is
        // an unmapped id there, which can create nothing (EOVERFLOW). It takes the id the
        // command runs as (else the first mapped), keeping its capabilities: only a change
        // from the namespace's uid 0, which does not exist, would clear them.
        let (uid, gid) = match &launch.plan.process.user.value {
            User::Id { uid, gid } if maps.host_uid(*uid).is_some() => {
                let gid = gid.unwrap_or(*uid);
                let first_gid = maps.gids.first().map(|r| r.inside).unwrap_or(0);
                (
                    *uid,
                    if maps.host_gid(gid).is_some() {
                        gid
                    } else {
                        first_gid
                    },
                )
            }
            _ => (
                maps.uids.first().map(|r| r.inside).unwrap_or(0),
                maps.gids.first().map(|r| r.inside).unwrap_or(0),
            ),
        };
        become_ids(uid, gid)
    } else {
        Ok(())
    };
    {
        if let Err(e) = became {
            let first = steps.iter().position(|s| s.side == Side::Child);
            chan.failed(first.unwrap_or(0), e);
            p::exit_now(SETUP_FAILED);
        }
    }
    let mut st = State::new(Some(launch), Proc::of_launch(launch, seccomp), &chan);
    st.private_dev = private_dev;
    st.run_all(steps)
}

fn join_mount(fd: std::os::fd::RawFd) -> Result<(), StepError> {
    p::setns_raw(fd, libc::CLONE_NEWNS)
        .ctx(|| "join the mount namespace given by path".into())
        .map_err(|e| {
            if e.errno == libc::EPERM {
                e.with_hint(
                    "a mount namespace can be joined only from the user namespace that owns \
                     it (or an ancestor): join that user namespace too",
                )
            } else {
                e
            }
        })
}

/// setresgid/setresuid to `uid`/`gid` of the box (0: its root), keeping the capabilities (a
/// change to uid 0 keeps them, and so does one from an id that is not the namespace's root).
fn become_ids(uid: u32, gid: u32) -> Result<(), StepError> {
    let g = nix::unistd::Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g)
        .map_err(std::io::Error::from)
        .ctx(|| format!("setresgid {gid} (the box's set-up id)"))?;
    let u = nix::unistd::Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u)
        .map_err(std::io::Error::from)
        .ctx(|| format!("setresuid {uid} (the box's set-up id)"))
}

/// Run in a process forked into a running box's namespaces (`foxbox exec`). Never returns.
pub(crate) fn run_joined(proc: Proc<'_>, steps: &[Step], chan: ChildEnd) -> ! {
    State::new(None, proc, &chan).run_all(steps)
}

fn netns_error((what, e): (&str, std::io::Error)) -> StepError {
    StepError::new(e.raw_os_error().unwrap_or(0), format!("{what}: {e}"))
}

struct State<'a> {
    /// The box being set up; `None` in a process that joins a running box.
    launch: Option<&'a Launch<'a>>,
    proc: Proc<'a>,
    chan: &'a ChildEnd,
    root: Option<rootfs::NewRoot>,
    identity: Option<user::Identity>,
    env: Vec<(String, String)>,
    /// The box's network namespace, being made (see [`netns`]).
    netns: Option<netns::NetNs>,
    /// The /dev tmpfs with nodes of the box's own, made by the parent (see [`dev::private`]).
    private_dev: Option<BorrowedFd<'a>>,
    /// The parent was told `Ready` at the start gate and no longer listens.
    parent_gone: bool,
}

impl<'a> State<'a> {
    fn new(launch: Option<&'a Launch<'a>>, proc: Proc<'a>, chan: &'a ChildEnd) -> State<'a> {
        State {
            launch,
            proc,
            chan,
            root: None,
            identity: None,
            env: Vec::new(),
            netns: None,
            private_dev: None,
            parent_gone: false,
        }
    }

    /// Run the child steps in order, up to the exec. Never returns.
    fn run_all(mut self, steps: &[Step]) -> ! {
        let chan = self.chan;
        let mut timings = Vec::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            if s.side != Side::Child {
                continue;
            }
            if s.action == Action::AwaitStart {
                if let Err(e) = self.await_start(std::mem::take(&mut timings)) {
                    chan.failed(i, e);
                    p::exit_now(SETUP_FAILED);
                }
                if let Err(e) = self.after_gate() {
                    if let Some(report) = self.launch.and_then(|l| l.start_report) {
                        super::channel::report_after_gate(report, &e);
                    }
                    p::exit_now(SETUP_FAILED);
                }
                continue;
            }
            if s.action == Action::Exec {
                let e = self.exec(timings);
                let code = if e.errno == libc::ENOENT { 127 } else { 126 };
                chan.failed(i, e);
                p::exit_now(code);
            }
            let t = Instant::now();
            if let Err(e) = self.run(s.action) {
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

    fn launch(&self) -> Result<&'a Launch<'a>, StepError> {
        self.launch
            .ok_or_else(|| StepError::msg("not a step of a process that joins a box"))
    }

    fn root(&self) -> Result<std::os::fd::BorrowedFd<'_>, StepError> {
        self.root
            .as_ref()
            .map(|r| r.root.as_fd())
            .ok_or_else(|| StepError::msg("the rootfs is not mounted yet"))
    }

    fn run(&mut self, action: Action) -> Result<(), StepError> {
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
                let launch = self.launch()?;
                let plan = launch.plan;
                let files = if launch.extras {
                    etc::contents(&launch.hostname, &plan.network).to_vec()
                } else {
                    Vec::new()
                };
                self.root = Some(rootfs::mount_rootfs(&launch.rootfs, &files)?);
                if plan.rootfs.readonly.value && launch.extras {
                    mounts::readonly_root_scratch(self.root()?, &plan.mounts)?;
                }
                Ok(())
            }
            Action::Proc => kernfs::mount_proc(self.root()?),
            Action::Dev => {
                let tty_gid = self.proc.id_maps.host_gid(5).map(|_| 5);
                let launch = self.launch()?;
                // A box whose mounts are made in order had no /dev made before the clone; in
                // the host's user namespace it can have nodes of its own made here (else the
                // host's are bound, which its root, the host's, could change).
                let made = match self.private_dev {
                    None if launch.mounts_in_order => dev::private()?,
                    _ => None,
                };
                let private = self.private_dev.or(made.as_ref().map(|d| d.as_fd()));
                dev::populate(self.root()?, tty_gid, private)?;
                if launch.dev_mqueue {
                    dev::mount_mqueue(self.root()?)?;
                }
                dev::make_nodes(self.root()?, &launch.devices)
            }
            Action::Sys => {
                let own_netns = self.launch()?.plan.network.mode.value != NetMode::Host;
                kernfs::mount_sys(self.root()?, own_netns)
            }
            Action::Mount(i) => {
                let launch = self.launch()?;
                let plan = launch.plan;
                let m = plan
                    .mounts
                    .get(i)
                    .ok_or_else(|| StepError::msg(format!("no mount #{i} in the plan")))?;
                let source = match &m.kind {
                    MountKind::Bind { source } => Some(source.as_path()),
                    MountKind::Volume { name } => launch.volumes.get(name).map(|p| p.as_path()),
                    MountKind::Tmpfs { .. } => None,
                };
                let scratch = self.root.as_ref().and_then(|r| r.scratch.as_ref());
                let overlay = scratch.map(|scratch| mounts::OverlayScratch {
                    mountpoint: &launch.rootfs.mountpoint,
                    scratch: scratch.as_fd(),
                    dir: format!("mount-{i}"),
                });
                mounts::apply(self.root()?, m, &plan.mounts[..i], source, overlay)
            }
            Action::ChownMounts => {
                let plan = self.launch()?.plan;
                let id = self.identity()?.clone();
                for m in plan.mounts.iter().filter(|m| m.chown) {
                    mounts::chown_mount(&m.target, m.readonly, id.uid, id.gid)?;
                }
                Ok(())
            }
            Action::BeforePivot => {
                if !self.chan.pause_before_pivot() {
                    return Err(StepError::msg("foxbox went away before pivot_root"));
                }
                match self.launch()?.in_box {
                    Some(work) => work.before_pivot(),
                    None => Ok(()),
                }
            }
            Action::PivotRoot => {
                pivot::pivot_into(self.root()?)?;
                self.root = None;
                self.after_pivot()
            }
            Action::BindRoot => {
                let launch = self.launch()?;
                let rootfs::Layers::Dir(dir) = &launch.rootfs.layers else {
                    return Err(StepError::msg(
                        "only a root directory can be bound in place (not image layers)",
                    ));
                };
                self.root = Some(rootfs::bind_in_place(dir)?);
                Ok(())
            }
            Action::Chroot => {
                pivot::chroot_into(self.root()?)?;
                self.root = None;
                self.after_pivot()
            }
            Action::MaskedPaths => match self.launch.and_then(|l| l.masked_paths.as_ref()) {
                Some(list) => masks::mask_paths_of(list),
                None => masks::mask_paths(),
            },
            Action::ReadonlyPaths => match self.launch.and_then(|l| l.readonly_paths.as_ref()) {
                Some(list) => masks::readonly_paths_of(list),
                None => masks::readonly_paths(),
            },
            Action::ReadonlyRoot => mounts::remount_root_readonly(),
            Action::Hostname => {
                let name = &self.launch()?.hostname;
                // None to set: a uts namespace the box shares keeps its name.
                if name.is_empty() {
                    return Ok(());
                }
                nix::unistd::sethostname(name)
                    .map_err(std::io::Error::from)
                    .ctx(|| format!("sethostname {name:?}"))
            }
            Action::Init => {
                let report = self.launch.and_then(|l| l.start_report);
                init::fork_init(self.chan.raw(), report)
            }
            Action::Console => self.console(),
            Action::CloseFds => {
                let (from, gate, report) = match self.launch {
                    Some(l) => (3 + l.preserve_fds, l.start_gate, l.start_report),
                    None => (3, None, None),
                };
                let keep: Vec<_> = [Some(self.chan.raw()), gate, report]
                    .into_iter()
                    .flatten()
                    .collect();
                p::close_fds_except(from, &keep).ctx(|| "close_range".into())
            }
            Action::User => self.user(),
            Action::MakeWorkdir => self.make_workdir(),
            Action::Workdir => {
                let cwd = self.proc.cwd;
                nix::unistd::chdir(cwd)
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
                self.env = environment(&self.proc, self.identity.as_ref());
                Ok(())
            }
            Action::Capabilities => {
                // podman's rule: uid 0 gets the whole set; any other uid only what was added
                // explicitly, with the whole set as its bounding set.
                let set = self.proc.capabilities;
                let granted = match &self.identity {
                    Some(id) if id.uid != 0 => CapSet(self.proc.added_capabilities.0 & set.0),
                    _ => set,
                };
                security_steps::set_capabilities(set, granted)
            }
            Action::NoNewPrivs => security_steps::set_no_new_privs(),
            Action::Seccomp => {
                security_steps::install_seccomp(self.proc.seccomp, self.proc.no_new_privs)
            }
            Action::Image
            | Action::Clone
            | Action::IdMaps
            | Action::Cgroup
            | Action::Network
            | Action::Join
            | Action::AwaitStart
            | Action::Exec => Err(StepError::msg("not a child step")),
        }
    }

    fn console(&mut self) -> Result<(), StepError> {
        if !self.proc.tty {
            // Its own session, without a controlling terminal: the caller's terminal stays
            // out of reach of TIOCSTI, and terminal signals go to foxbox, which forwards them.
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
                .ctx(|| "setsid".into())?;
            if self.proc.stdin_null {
                let null = std::fs::File::open("/dev/null").ctx(|| "open /dev/null".into())?;
                fd::dup_onto(null.as_fd(), 0).ctx(|| "dup2 /dev/null onto stdin".into())?;
            }
            return Ok(());
        }
        let (master, slave) = tty::open_pty(Path::new("/dev/ptmx")).ctx(|| "open a pty".into())?;
        self.chan
            .send_pty(&master)
            .ctx(|| "hand the pty to foxbox".into())?;
        drop(master);
        tty::become_session_leader_on(slave).ctx(|| "take the pty as the terminal".into())
    }

    /// The user's identity, from the box's own /etc files (read once).
    fn identity(&mut self) -> Result<&user::Identity, StepError> {
        if self.identity.is_none() {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
            self.identity = Some(user::resolve(self.proc.user, &passwd, &group)?);
        }
        self.identity
            .as_ref()
            .ok_or_else(|| StepError::msg("no identity"))
    }

    /// The propagation the launch gives its mounts and then the root (`/` last: it is set
    /// on the root alone, as runc does after its pivot_root); then its sysctls, in the box's
    /// /proc.
    fn after_pivot(&self) -> Result<(), StepError> {
        let Some(l) = self.launch else {
            return Ok(());
        };
        let root = l.root_propagation.map(|f| (Path::new("/"), f));
        let all = l.mount_propagation.iter().map(|(p, f)| (p.as_path(), *f));
        for (target, flags) in all.chain(root) {
            mount::mount(None, target, None, flags, None)
                .ctx(|| format!("set the propagation of {}", target.display()))?;
        }
        for (key, value) in &l.sysctls {
            // The uts names' files belong to the host's root, whom a user namespace does not
            // map; their syscalls need only the capability over the namespace.
            let set = match key.as_str() {
                "kernel.domainname" => p::set_domainname(value),
                "kernel.hostname" => nix::unistd::sethostname(value).map_err(Into::into),
                _ => std::fs::write(Path::new("/proc/sys").join(key.replace('.', "/")), value),
            };
            set.ctx(|| format!("sysctl {key}={value}"))?;
        }
        Ok(())
    }

    /// Create a missing working directory (and its missing parents) owned by the user, as
    /// podman does for `run -w`. Anything else about it (not a directory, not reachable) is
    /// left to the `workdir` step to report.
    fn make_workdir(&mut self) -> Result<(), StepError> {
        let cwd = self.proc.cwd;
        match std::fs::symlink_metadata(cwd) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => return Ok(()),
        }
        let maps = self.proc.id_maps;
        let id = self.identity()?;
        // An id the box does not map cannot own a file; the `user` step says why next.
        let owner = (maps.host_uid(id.uid).is_some() && maps.host_gid(id.gid).is_some())
            .then_some((id.uid, id.gid));
        let mut missing = Vec::new();
        let mut at = Some(cwd);
        while let Some(dir) = at {
            if std::fs::symlink_metadata(dir).is_ok() {
                break;
            }
            missing.push(dir);
            at = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            let made =
                std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o755)
                    .create(dir);
            match made {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).ctx(|| format!("create the working directory {}", dir.display()))
                }
            }
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                    .ctx(|| format!("chown the working directory {}", dir.display()))?;
            }
        }
        Ok(())
    }

    fn user(&mut self) -> Result<(), StepError> {
        let maps = self.proc.id_maps;
        let id = self.identity()?.clone();
        let unmapped = |what: &str, n: u32, have: &[crate::sys::idmap::IdRange]| {
            let err = StepError::new(
                libc::EINVAL,
                format!(
                    "{what} {n} is not mapped in the box's user namespace, whose {what}s are {}",
                    crate::sys::idmap::describe(have)
                ),
            );
            if maps.has_range() {
                err.with_hint(format!(
                    "use a {what} in that range, or give the user a larger subordinate range \
                     in /etc/sub{what} (then `foxbox` picks it up on the next start)"
                ))
            } else {
                err.with_hint(
                    "without a subordinate id range (/etc/subuid, /etc/subgid and newuidmap) a \
                     rootless box has only one id, 0",
                )
            }
        };
        if maps.host_uid(id.uid).is_none() {
            return Err(unmapped("uid", id.uid, &maps.uids));
        }
        if maps.host_gid(id.gid).is_none() {
            return Err(unmapped("gid", id.gid, &maps.gids));
        }
        crate::security::capset::set_keep_caps(true)
            .map_err(|e| StepError::new(e.errno().unwrap_or(0), e.to_string()))?;
        // An OCI config's additionalGids replace what /etc/group gives the user.
        let given = self.launch.and_then(|l| l.additional_gids.as_ref());
        let groups: Vec<nix::unistd::Gid> = given
            .unwrap_or(&id.groups)
            .iter()
            .filter(|g| maps.host_gid(**g).is_some())
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
        if self.launch.is_some_and(|l| l.start_gate.is_none()) {
            let _ = p::set_parent_death_signal(libc::SIGKILL);
        }
        Ok(())
    }

    /// The OCI create/start split: tell the parent (`create`) all is ready, close the channel
    /// so it returns, and block until `start` writes a byte to the gate (or it is closed).
    fn await_start(&mut self, timings: Vec<(usize, u64)>) -> Result<(), StepError> {
        let gate = self
            .launch
            .and_then(|l| l.start_gate)
            .ok_or_else(|| StepError::msg("no start gate"))?;
        self.chan
            .ready(timings)
            .ctx(|| "tell foxbox the container is created".into())?;
        p::close_raw(self.chan.raw());
        self.parent_gone = true;
        let opened = p::wait_readable_byte(gate);
        p::close_raw(gate);
        match opened {
            Ok(true) => Ok(()),
            // Nobody can hear an error now: the container just ends.
            _ => p::exit_now(SETUP_FAILED),
        }
    }

    /// The launch's work once the start gate has opened (see [`super::InBox::after_gate`]).
    fn after_gate(&self) -> Result<(), StepError> {
        match self.launch.and_then(|l| l.in_box) {
            Some(work) => work.after_gate(),
            None => Ok(()),
        }
    }

    /// Exec the fox (execvpe semantics with the box's PATH). Returns only on failure.
    fn exec(&mut self, timings: Vec<(usize, u64)>) -> StepError {
        let args = self.proc.args;
        if args.is_empty() {
            return StepError::new(libc::ENOENT, "no command: the plan and the image name none");
        }
        if self.env.is_empty() {
            self.env = environment(&self.proc, self.identity.as_ref());
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
        if self.parent_gone {
            return exec_search(&argv, &envp, &path);
        }
        if let Err(e) = self.chan.ready(timings) {
            return StepError::new(e.raw_os_error().unwrap_or(0), format!("tell foxbox: {e}"));
        }
        exec_search(&argv, &envp, &path)
    }
}

/// The process's environment: PATH, HOME, TERM, HOSTNAME and `container`, then the given
/// variables over them (one with the same name wins).
fn environment(proc: &Proc<'_>, id: Option<&user::Identity>) -> Vec<(String, String)> {
    let home = id.map(|i| i.home.clone()).unwrap_or_else(|| "/root".into());
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), home),
        ("TERM".into(), "xterm".into()),
        ("HOSTNAME".into(), proc.hostname.to_string()),
        ("container".into(), "foxbox".into()),
    ];
    for (k, v) in proc.env {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    env
}

fn exec_search(argv: &[CString], envp: &[CString], path: &str) -> StepError {
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
