//! The container lifecycle as runc runs it: create, start, state, kill, delete, list, run.
//!
//! `ROOT/ID/` holds `state.json` (the record below), `exec.fifo` (present from `create` until
//! `start`), `start.report` (with startContainer hooks: a fifo on which the container's process
//! reports a failure between the gate and its exec, see [`crate::exec::Launch::start_report`])
//! and `mnt/` (the executor's scratch mountpoint, mounted only inside the container's mount
//! namespace). A container's status is never stored: it is `created` while
//! its process lives and the fifo exists, `running` while it lives without the fifo, and
//! `stopped` once the process recorded (pid and start time) is gone.
//!
//! `creating.json` (`Intent`) is `create`'s own record of what it makes outside the
//! directory (the cgroup, mounts in the runtime's namespace, the process), written before each
//! is made: a `create` killed partway (SIGKILL, a power cut) leaves a directory without
//! `state.json`, which `state`, `list` and `delete` read through it. Such a container is
//! `creating` while the `create` that wrote it lives, else `stopped` (its create will never
//! finish: runc's and the runtime-spec's name for a container that can only be deleted), and
//! `delete` removes what the record names.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};
use serde::{Deserialize, Serialize};

use super::translate::{self, Translation};
use super::{cgroups, config, hooks, host_mounts, OciError, OCI_VERSION};
use crate::boxes::proc::ProcId;
use crate::cgroup::PathCgroup;
use crate::exec::{self, BoxRootfs, ExecError, Helpers, InBox, Launch, Layers, StepError};
use crate::plan::Plan;
use crate::sys::process as p;

const STATE: &str = "state.json";
const FIFO: &str = "exec.fifo";
const REPORT: &str = "start.report";
const MNT: &str = "mnt";
const INTENT: &str = "creating.json";

/// What `create` is making, in `ROOT/ID/creating.json` until `state.json` is written: each
/// thing is named here before it is made, so that `delete` can undo a `create` that was killed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Intent {
    /// The `create` writing it: while it lives the container is `creating`.
    creator: Option<ProcId>,
    bundle: PathBuf,
    created: u64,
    owner: u32,
    /// The cgroup path while it is being made; `cgroup` once it is.
    cgroup_path: Option<String>,
    cgroup: Option<PathCgroup>,
    /// Mounts are about to be made below this root, in the runtime's mount namespace; those
    /// not in `mounts_before` are the container's (until `host_mounts` names its root mount).
    host_mounts_rootfs: Option<PathBuf>,
    mounts_before: Vec<u64>,
    host_mounts: Option<host_mounts::HostMounts>,
    /// The container's process, once cloned.
    process: Option<ProcId>,
}

impl Intent {
    fn write(&self, dir: &Path) -> Result<(), OciError> {
        crate::store::atomic::write_json(&dir.join(INTENT), self)
            .map_err(|e| OciError::io("write creating.json")(std::io::Error::other(e)))
    }

    /// The record `state`, `list` and `delete` use for a container whose `create` did not
    /// finish.
    fn record(self, id: &str) -> Record {
        let process = self.process.unwrap_or(ProcId {
            pid: 0,
            start_time: 0,
        });
        Record {
            id: id.to_string(),
            pid: process.pid,
            start_time: process.start_time,
            bundle: self.bundle,
            annotations: BTreeMap::new(),
            created: self.created,
            owner: self.owner,
            hooks: None,
            cgroup: self.cgroup,
            no_process: false,
            host_mounts: self.host_mounts,
            unfinished: Some(Unfinished {
                creator: self.creator,
                cgroup_path: self.cgroup_path,
                mounts: self
                    .host_mounts_rootfs
                    .map(|r| (r, self.mounts_before.into_iter().collect())),
            }),
        }
    }
}

/// What a record read from `creating.json` carries beside the usual.
#[derive(Debug, Clone)]
pub struct Unfinished {
    creator: Option<ProcId>,
    cgroup_path: Option<String>,
    mounts: Option<(PathBuf, std::collections::BTreeSet<u64>)>,
}

/// What `ROOT/ID/state.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// With `pid`: the process, not a later one given the same pid.
    pub start_time: u64,
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Seconds since the epoch.
    pub created: u64,
    pub owner: u32,
    /// The config's hooks still to run (`poststart`, `poststop`).
    #[serde(default)]
    pub hooks: Option<Hooks>,
    /// The container's cgroup (`None`: an unprivileged runtime could make none).
    #[serde(default)]
    pub cgroup: Option<PathCgroup>,
    /// The config has no `process`: `start` refuses it.
    #[serde(default)]
    pub no_process: bool,
    /// The container shares the runtime's mount namespace: its mounts there, which `delete`
    /// removes.
    #[serde(default)]
    pub host_mounts: Option<host_mounts::HostMounts>,
    /// Read from `creating.json`: a `create` that did not finish.
    #[serde(skip)]
    pub unfinished: Option<Unfinished>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being made by `create` (the createRuntime and createContainer hooks' state).
    Creating,
    Created,
    Running,
    /// Frozen by `pause`.
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The OCI state of a container (`state`'s output, and the hooks' stdin).
#[derive(Debug, Clone, Serialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Not in the OCI state: for `list`.
    #[serde(skip)]
    pub created: u64,
    #[serde(skip)]
    pub owner: u32,
}

impl State {
    /// The name of the user who created the container (`list`'s OWNER), empty when unknown.
    pub fn owner_name(&self) -> String {
        crate::sys::idmap::user_name(self.owner).unwrap_or_default()
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The runtime's state root, and the containers under it.
pub struct Runtime {
    pub root: PathBuf,
}

/// `create`'s options (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    /// `run` in the foreground without `--console-socket`: a process with a terminal gets a
    /// pty whose master the runtime keeps ([`Created::pty`]) and relays, as runc's `run` does.
    pub own_pty: bool,
}

/// A created container.
pub struct Created {
    pub pid: i32,
    pub warnings: Vec<String>,
    /// The pty master, with [`CreateOpts::own_pty`].
    pub pty: Option<std::os::fd::OwnedFd>,
}

/// A container's id as runc takes it: letters, digits and `_+-.`, not starting with `.`.
fn check_id(id: &str) -> Result<(), OciError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(OciError::Usage(format!(
            "invalid container id {id:?}: use letters, digits and _+-. (not starting with .)"
        )))
    }
}

/// Removes a half-made container's directory (and cgroup, and the mounts it made in the
/// runtime's mount namespace) unless disarmed.
struct Undo<'a> {
    dir: &'a Path,
    pid: Option<i32>,
    cgroup: Option<PathCgroup>,
    /// The container's root directory and the runtime's mounts before its set-up began.
    host_mounts: Option<(PathBuf, std::collections::BTreeSet<u64>)>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = p::kill(pid, libc::SIGKILL);
            let _ = p::wait_pid(pid);
        }
        if let Some((rootfs, before)) = &self.host_mounts {
            if let Err(e) = host_mounts::remove_new(before, rootfs) {
                tracing::warn!("{e}");
            }
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        let _ = fs::remove_dir_all(self.dir);
    }
}

impl Runtime {
    pub fn new(root: PathBuf) -> Runtime {
        Runtime { root }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Translate the bundle's config, without touching the state root (what `create` checks
    /// first: a bad config leaves nothing behind).
    pub fn prepare(&self, opts: &CreateOpts) -> Result<(Translation, PathBuf), OciError> {
        check_id(&opts.id)?;
        let bundle = fs::canonicalize(&opts.bundle)
            .map_err(OciError::io(format!("bundle {}", opts.bundle.display())))?;
        let cfg = config::load(&bundle)?;
        let t = translate::translate(
            &cfg.spec,
            &cfg.raw,
            &bundle,
            nix::unistd::geteuid().as_raw(),
        )?;
        if t.tty && opts.console_socket.is_none() && !opts.own_pty {
            return Err(OciError::Usage(
                "process.terminal is true: give --console-socket to receive the pty".into(),
            ));
        }
        Ok((t, bundle))
    }

    /// `create`: the container's process is set up and waits for `start`.
    pub fn create(&self, opts: &CreateOpts) -> Result<Created, OciError> {
        let (t, bundle) = self.prepare(opts)?;
        let hooks_of = config::load(&bundle)?.spec.hooks().clone();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(OciError::io(format!("state root {}", self.root.display())))?;
        let dir = self.dir(&opts.id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !dir.join(STATE).exists() {
                    return Err(OciError::State {
                        id: opts.id.clone(),
                        status: "stopped",
                        what: format!(
                            "an earlier create of it did not finish (killed?); remove what it \
                             left with `delete {}` before creating it again",
                            opts.id
                        ),
                    });
                }
                return Err(OciError::Exists(opts.id.clone()));
            }
            Err(e) => return Err(OciError::io(format!("create {}", dir.display()))(e)),
        }
        let mut undo = Undo {
            dir: &dir,
            pid: None,
            cgroup: None,
            host_mounts: None,
            armed: true,
        };
        let mut intent = Intent {
            creator: ProcId::of(std::process::id() as i32),
            bundle: bundle.clone(),
            created: crate::store::clock::now_secs(),
            owner: nix::unistd::geteuid().as_raw(),
            ..Intent::default()
        };
        intent.write(&dir)?;
        let fifo = make_fifo(&dir.join(FIFO), "exec")?;
        fs::create_dir(dir.join(MNT)).map_err(OciError::io("create the mount dir"))?;
        let no_hooks = Hooks::default();
        let h = hooks_of.as_ref().unwrap_or(&no_hooks);
        let create_runtime = h.create_runtime().as_deref().unwrap_or_default();
        let create_container = h.create_container().as_deref().unwrap_or_default();
        let start_container = h.start_container().as_deref().unwrap_or_default();
        // `start` sees end of file on it only once the container's process has exec'd or ended.
        let report = if start_container.is_empty() {
            None
        } else {
            Some(make_fifo(&dir.join(REPORT), "start report")?)
        };

        // What the clone inherits: namespaces joined by path, rlimits, the oom score, umask.
        for (path, flag) in &t.joins {
            let f = fs::File::open(path)
                .map_err(OciError::io(format!("namespace {}", path.display())))?;
            p::setns(f.as_fd(), *flag as libc::c_int)
                .map_err(OciError::io(format!("join namespace {}", path.display())))?;
        }
        let id_maps = if t.user_by_path {
            translate::joined_user_maps(&t.id_maps)?
        } else {
            t.id_maps.clone()
        };
        let join_mount = match &t.join_mount {
            Some(path) => Some(
                fs::File::open(path)
                    .map_err(OciError::io(format!("namespace {}", path.display())))?,
            ),
            None => None,
        };
        for (res, soft, hard) in &t.rlimits {
            p::set_rlimit(*res, *soft, *hard)
                .map_err(OciError::io(format!("set rlimit {res} to {soft}/{hard}")))?;
        }
        if let Some(v) = t.oom_score_adj {
            fs::write("/proc/self/oom_score_adj", v.to_string())
                .map_err(OciError::io("set oomScoreAdj"))?;
        }
        if let Some(m) = t.umask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
        }

        // As mountinfo shows it (`root.path` may be `.`), for a container whose mounts are
        // made in this mount namespace.
        let rootfs_dir = fs::canonicalize(&t.rootfs)
            .map_err(OciError::io(format!("root.path {}", t.rootfs.display())))?;
        let rootfs = BoxRootfs {
            layers: Layers::Dir(rootfs_dir.clone()),
            mountpoint: dir.join(MNT),
        };
        let hook_state = State {
            oci_version: OCI_VERSION,
            id: opts.id.clone(),
            status: Status::Creating,
            pid: 0,
            bundle: bundle.clone(),
            annotations: t.annotations.clone(),
            created: 0,
            owner: 0,
        };
        let in_container = InContainer {
            create_container,
            start_container,
            state: &hook_state,
            pid: Cell::new(0),
        };
        let mut launch = Launch::new(&t.plan, rootfs, &t.hostname);
        launch.tty = t.tty;
        launch.id_maps = id_maps;
        launch.join_mount = join_mount.as_ref().map(|f| f.as_raw_fd());
        launch.extras = false;
        launch.mount_propagation = t.mount_propagation.clone();
        launch.root_propagation = t.root_propagation;
        launch.sysctls = t.sysctls.clone();
        launch.devices = t.devices.clone();
        launch.start_gate = Some(fifo.as_raw_fd());
        launch.preserve_fds = opts.preserve_fds;
        launch.joined = t.joined;
        launch.masked_paths = t.masked_paths.clone();
        launch.readonly_paths = t.readonly_paths.clone();
        launch.mounts_in_order = true;
        launch.dev_mqueue = t.dev_mqueue;
        launch.additional_gids = t.additional_gids.clone();
        launch.before_pivot = !(create_runtime.is_empty()
            && create_container.is_empty()
            && start_container.is_empty());
        launch.in_box = Some(&in_container);
        launch.start_report = report.as_ref().map(|f| f.as_raw_fd());
        let mut warnings = t.warnings.clone();
        intent.cgroup_path = Some(
            t.cgroups
                .path
                .clone()
                .unwrap_or_else(|| cgroups::default_path(&self.root, &opts.id)),
        );
        intent.write(&dir)?;
        undo.cgroup = cgroups::make(
            &t.cgroups,
            &opts.id,
            &self.root,
            nix::unistd::geteuid().as_raw(),
            &mut warnings,
        )?;
        intent.cgroup = undo.cgroup.clone();
        // Made or none to make (an unprivileged runtime): nothing half-made to report.
        intent.cgroup_path = None;
        if launch.host_mounts() {
            let before = host_mounts::snapshot()?;
            intent.host_mounts_rootfs = Some(rootfs_dir.clone());
            intent.mounts_before = before.iter().copied().collect();
            undo.host_mounts = Some((rootfs_dir.clone(), before));
        }
        intent.write(&dir)?;
        crate::fault::point("oci-create.cgroup-made");
        let mut helpers = CreateHelpers {
            place: cgroups::Place(undo.cgroup.as_ref()),
            create_runtime,
            state: &hook_state,
            failed: None,
            intent: (&dir, &mut intent),
        };
        let mut started = match exec::start(&launch, &mut helpers) {
            Ok(s) => s,
            Err(e) => return Err(helpers.failed.take().unwrap_or(OciError::Exec(e))),
        };
        undo.pid = Some(started.pid);
        let host_mounts = match &undo.host_mounts {
            Some((rootfs, _)) => Some(host_mounts::root_of(started.pid, rootfs)?),
            None => None,
        };
        if host_mounts.is_some() {
            intent.host_mounts = host_mounts.clone();
            intent.write(&dir)?;
        }
        crate::fault::point("oci-create.host-mounted");
        drop(fifo);
        drop(report);
        let kept_pty = if opts.console_socket.is_none() {
            started.pty.take()
        } else {
            None
        };
        if let Some(pty) = &started.pty {
            let sock_path = opts.console_socket.as_deref().unwrap_or(Path::new(""));
            let sock = std::os::unix::net::UnixStream::connect(sock_path).map_err(OciError::io(
                format!("console socket {}", sock_path.display()),
            ))?;
            crate::sys::fd::send_msg(sock.as_fd(), b"console", Some(pty.as_fd()))
                .map_err(OciError::io("send the pty to the console socket"))?;
        }
        let start_time = ProcId::of(started.pid)
            .map(|p| p.start_time)
            .ok_or_else(|| OciError::State {
                id: opts.id.clone(),
                status: "stopped",
                what: "its process ended during create".into(),
            })?;
        let record = Record {
            id: opts.id.clone(),
            pid: started.pid,
            start_time,
            bundle: bundle.clone(),
            annotations: t.annotations.clone(),
            created: crate::store::clock::now_secs(),
            owner: nix::unistd::geteuid().as_raw(),
            hooks: hooks_of.clone(),
            cgroup: undo.cgroup.clone(),
            no_process: !t.has_process,
            host_mounts,
            unfinished: None,
        };
        crate::fault::point("oci-create.before-state");
        crate::store::atomic::write_json(&dir.join(STATE), &record)
            .map_err(|e| OciError::io("write state.json")(std::io::Error::other(e)))?;
        // state.json rules from here on; a creating.json left beside it is ignored.
        let _ = fs::remove_file(dir.join(INTENT));
        if let Some(f) = &opts.pid_file {
            let f = absolute(f);
            crate::store::atomic::write_file(&f, started.pid.to_string().as_bytes())
                .map_err(|e| OciError::io("write the pid file")(std::io::Error::other(e)))?;
        }
        undo.armed = false;
        Ok(Created {
            pid: started.pid,
            warnings,
            pty: kept_pty,
        })
    }

    fn load(&self, id: &str) -> Result<Record, OciError> {
        check_id(id)?;
        let path = self.dir(id).join(STATE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.load_unfinished(id),
            Err(e) => return Err(OciError::io(format!("read {}", path.display()))(e)),
        };
        serde_json::from_str(&text)
            .map_err(|e| OciError::io(format!("read {}", path.display()))(std::io::Error::other(e)))
    }

    /// A container without `state.json`: what its `creating.json` names.
    fn load_unfinished(&self, id: &str) -> Result<Record, OciError> {
        let path = self.dir(id).join(INTENT);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            // Killed between making the directory and writing creating.json: nothing else
            // was made yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.dir(id).is_dir() => {
                return Ok(Intent::default().record(id))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OciError::NotFound(id.to_string()))
            }
            Err(e) => return Err(OciError::io(format!("read {}", path.display()))(e)),
        };
        let intent: Intent = serde_json::from_str(&text).map_err(|e| {
            OciError::io(format!("read {}", path.display()))(std::io::Error::other(e))
        })?;
        Ok(intent.record(id))
    }

    fn status(&self, r: &Record) -> Status {
        if let Some(u) = &r.unfinished {
            return if u.creator.is_some_and(|c| c.alive()) {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        let proc_id = ProcId {
            pid: r.pid,
            start_time: r.start_time,
        };
        if !proc_id.alive() {
            Status::Stopped
        } else if r
            .cgroup
            .as_ref()
            .and_then(|c| c.is_frozen())
            .unwrap_or(false)
        {
            Status::Paused
        } else if self.dir(&r.id).join(FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    fn state_of(&self, r: &Record) -> State {
        let status = self.status(r);
        State {
            oci_version: OCI_VERSION,
            id: r.id.clone(),
            status,
            pid: if status == Status::Stopped { 0 } else { r.pid },
            bundle: r.bundle.clone(),
            annotations: r.annotations.clone(),
            created: r.created,
            owner: r.owner,
        }
    }

    pub fn state(&self, id: &str) -> Result<State, OciError> {
        let r = self.load(id)?;
        Ok(self.state_of(&r))
    }

    /// `start`: let the created container exec its command. Returns warnings (failed
    /// poststart hooks).
    pub fn start(&self, id: &str) -> Result<Vec<String>, OciError> {
        let r = self.load(id)?;
        let status = self.status(&r);
        if status != Status::Created {
            return Err(OciError::State {
                id: id.into(),
                status: status.as_str(),
                what: "only a created container can be started".into(),
            });
        }
        if r.no_process {
            return Err(OciError::Config(config::ConfigError::new(
                "process",
                "not set; start needs it",
            )));
        }
        if let Some(list) = r.hooks.as_ref().and_then(|h| h.prestart().clone()) {
            // The runtime-spec (and its conformance suite): after `start` is called, before
            // the command runs.
            // A failure stops the container and deletes it (lifecycle step 9), then errs.
            if let Err(e) = hooks::run("prestart", &list, &self.state_of(&r).json()) {
                let _ = self.delete(id, true);
                return Err(e);
            }
        }
        // Opened before the gate: the container's process may report on it at once.
        let report_path = self.dir(id).join(REPORT);
        let report = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&report_path)
        {
            Ok(f) => Some((
                f,
                p::pidfd_open(r.pid).map_err(OciError::io("open a pidfd for the container"))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(OciError::io("open the start report")(e)),
        };
        let fifo_path = self.dir(id).join(FIFO);
        let mut fifo = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&fifo_path)
            .map_err(OciError::io("open the exec fifo"))?;
        fifo.write_all(&[0])
            .map_err(OciError::io("write to the exec fifo"))?;
        let _ = fs::remove_file(&fifo_path);
        if let Some((report, pidfd)) = report {
            // The startContainer hooks run in the container now; it reports their failure
            // and ends (stopped: the runtime-spec's lifecycle goes on at `delete`).
            let failed = exec::channel::wait_after_gate(report.as_fd(), pidfd.as_fd())
                .map_err(OciError::io("read the start report"))?;
            let _ = fs::remove_file(&report_path);
            if let Some(e) = failed {
                p::try_reap(r.pid);
                return Err(OciError::Exec(ExecError::step("await-start", None, e)));
            }
        }
        wait_for_exec(&r);
        let mut warnings = Vec::new();
        if let Some(list) = r.hooks.as_ref().and_then(|h| h.poststart().clone()) {
            let mut st = self.state_of(&r);
            // As it was started, even when the command has already ended.
            st.status = Status::Running;
            st.pid = r.pid;
            warnings.extend(hooks::run_each("poststart", &list, &st.json()));
        }
        Ok(warnings)
    }

    /// `kill`: signal the container's process (with `all`, every process of its pid
    /// namespace, and no error when there is none).
    pub fn kill(&self, id: &str, sig: i32, all: bool) -> Result<(), OciError> {
        // runc's `kill --all` does not fail for a container that is gone or stopped (its man
        // page); without it, signalling a stopped container is an error, as runc's and crun's.
        let r = match self.load(id) {
            Err(OciError::NotFound(_)) if all => return Ok(()),
            other => other?,
        };
        let status = self.status(&r);
        if status == Status::Stopped && all {
            return Ok(());
        }
        if status == Status::Stopped {
            return Err(OciError::State {
                id: id.into(),
                status: status.as_str(),
                what: "cannot signal it".into(),
            });
        }
        if all {
            for pid in processes_of(&r) {
                let _ = p::kill(pid, sig);
            }
        }
        let sent = p::kill(r.pid, sig).map_err(OciError::io(format!("signal {sig} to {}", r.pid)));
        // A frozen process dies of SIGKILL only once thawed (runc thaws too).
        if status == Status::Paused && sig == libc::SIGKILL {
            if let Some(cg) = &r.cgroup {
                cg.set_frozen(false)?;
            }
        }
        sent
    }

    /// `delete`: remove a stopped container; `force` kills a created or running one first
    /// (the runtime-spec: deleting one that is not stopped is an error).
    /// Returns warnings (failed poststop hooks).
    pub fn delete(&self, id: &str, force: bool) -> Result<Vec<String>, OciError> {
        let r = match self.load(id) {
            Err(OciError::NotFound(_)) if force => return Ok(Vec::new()),
            other => other?,
        };
        let status = self.status(&r);
        if status == Status::Creating {
            return Err(OciError::State {
                id: id.into(),
                status: status.as_str(),
                what: "its create is still running (kill it, then delete)".into(),
            });
        }
        if status != Status::Stopped && !force {
            return Err(OciError::State {
                id: id.into(),
                status: status.as_str(),
                what: "stop it first, or delete with --force".into(),
            });
        }
        if let Some(u) = &r.unfinished {
            return self.delete_unfinished(id, &r, u);
        }
        if status != Status::Stopped {
            for pid in processes_of(&r) {
                let _ = p::kill(pid, libc::SIGKILL);
            }
            let _ = p::kill(r.pid, libc::SIGKILL);
            if status == Status::Paused {
                if let Some(cg) = &r.cgroup {
                    let _ = cg.set_frozen(false);
                }
            }
            let proc_id = ProcId {
                pid: r.pid,
                start_time: r.start_time,
            };
            let until = Instant::now() + Duration::from_secs(10);
            while proc_id.alive() && Instant::now() < until {
                p::try_reap(r.pid);
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let mut warnings = Vec::new();
        if let Some(list) = r.hooks.as_ref().and_then(|h| h.poststop().clone()) {
            let mut st = self.state_of(&r);
            st.status = Status::Stopped;
            warnings.extend(hooks::run_each("poststop", &list, &st.json()));
        }
        if let Some(h) = &r.host_mounts {
            host_mounts::remove(h)?;
        }
        if let Some(cg) = &r.cgroup {
            cg.destroy()?;
        }
        let dir = self.dir(id);
        fs::remove_dir_all(&dir).map_err(OciError::io(format!("remove {}", dir.display())))?;
        Ok(warnings)
    }

    /// `delete` of a container whose `create` was killed: its process (the very one recorded),
    /// the mounts it made in this mount namespace, its cgroup, its directory.
    fn delete_unfinished(
        &self,
        id: &str,
        r: &Record,
        u: &Unfinished,
    ) -> Result<Vec<String>, OciError> {
        let mut warnings = Vec::new();
        let proc_id = ProcId {
            pid: r.pid,
            start_time: r.start_time,
        };
        if r.pid > 0 && proc_id.alive() {
            let _ = p::kill(r.pid, libc::SIGKILL);
            let until = Instant::now() + Duration::from_secs(10);
            while proc_id.alive() && Instant::now() < until {
                p::try_reap(r.pid);
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if let Some(h) = &r.host_mounts {
            host_mounts::remove(h)?;
        } else if let Some((rootfs, before)) = &u.mounts {
            host_mounts::remove_new(before, rootfs)?;
        }
        if let Some(cg) = &r.cgroup {
            cg.destroy()?;
        } else if let Some(path) = &u.cgroup_path {
            // Killed while the cgroup was being made: which of its directories were new is
            // not known, so none is removed.
            warnings.push(format!(
                "cgroup {path}: create was killed while making it; remove it by hand if it \
                 is this container's"
            ));
        }
        let dir = self.dir(id);
        fs::remove_dir_all(&dir).map_err(OciError::io(format!("remove {}", dir.display())))?;
        Ok(warnings)
    }

    /// Every container under the root, by id.
    pub fn list(&self) -> Result<Vec<State>, OciError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(OciError::io(format!("read {}", self.root.display()))(e)),
        };
        for e in entries.flatten() {
            let Some(id) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if let Ok(r) = self.load(&id) {
                out.push(self.state_of(&r));
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// `run` without `--detach`: wait for the container (a child of this process) to end;
    /// its exit code (128+N for signal N).
    pub fn wait(&self, pid: i32) -> Result<i32, OciError> {
        match p::wait_pid(pid).map_err(OciError::io("wait for the container"))? {
            p::Exit::Code(c) => Ok(c),
            p::Exit::Signal(s) => Ok(128 + s),
        }
    }
}

/// `create`'s parent-side work: the cgroup ([`cgroups::Place`], to which the rest is passed
/// on) and, with the container's namespaces made and before its pivot_root, the config's
/// createRuntime hooks, in the runtime's namespaces.
struct CreateHelpers<'a> {
    place: cgroups::Place<'a>,
    create_runtime: &'a [Hook],
    state: &'a State,
    /// A hook's failure, returned as itself rather than as the executor's step error.
    failed: Option<OciError>,
    /// The state dir and its `creating.json`, which gets the process as soon as it runs.
    intent: (&'a Path, &'a mut Intent),
}

impl Helpers for CreateHelpers<'_> {
    fn cgroup(&mut self, plan: &Plan, pid: i32) -> Result<(), StepError> {
        self.place.cgroup(plan, pid)
    }

    fn places_cgroup(&self) -> bool {
        self.place.places_cgroup()
    }

    fn network(&mut self, plan: &Plan, pid: i32) -> Result<(), StepError> {
        self.place.network(plan, pid)
    }

    fn before_pivot(&mut self, pid: i32) -> Result<(), StepError> {
        let state = State {
            pid,
            ..self.state.clone()
        };
        hooks::run("createRuntime", self.create_runtime, &state.json()).map_err(|e| {
            let step = StepError::msg(e.to_string());
            self.failed = Some(e);
            step
        })
    }

    fn released(&mut self, pid: i32) -> Result<(), StepError> {
        let (dir, intent) = &mut self.intent;
        intent.process = ProcId::of(pid);
        intent
            .write(dir)
            .map_err(|e| StepError::msg(e.to_string()))?;
        crate::fault::point("oci-create.process-released");
        self.place.released(pid)
    }

    fn started(&mut self, pid: i32) {
        self.place.started(pid)
    }
}

/// The config's hooks that run in the container's set-up process: createContainer before its
/// pivot_root (host paths still resolve), startContainer once `start` opened its gate (inside
/// its root, as its command's user).
struct InContainer<'a> {
    create_container: &'a [Hook],
    start_container: &'a [Hook],
    state: &'a State,
    /// The process's pid as the runtime sees it, read before pivot_root (the createRuntime
    /// hooks' pid, which the runtime-spec's state means), for the startContainer hooks.
    pid: Cell<i32>,
}

impl InContainer<'_> {
    fn run(&self, kind: &'static str, list: &[Hook], status: Status) -> Result<(), StepError> {
        let state = State {
            status,
            pid: self.pid.get(),
            ..self.state.clone()
        };
        hooks::run(kind, list, &state.json()).map_err(|e| StepError::msg(e.to_string()))
    }
}

impl InBox for InContainer<'_> {
    fn before_pivot(&self) -> Result<(), StepError> {
        // /proc is still the runtime's: /proc/self is this process's pid in its pid namespace.
        let pid = fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str()?.parse().ok())
            .unwrap_or_else(|| std::process::id() as i32);
        self.pid.set(pid);
        self.run("createContainer", self.create_container, Status::Creating)
    }

    fn after_gate(&self) -> Result<(), StepError> {
        self.run("startContainer", self.start_container, Status::Created)
    }
}

/// `run`'s own pty (no console socket): the caller's terminal, raw, is the container's until
/// the pty's other side is closed by the container's last process; its window size is given.
pub fn relay_pty(master: &std::os::fd::OwnedFd) -> Result<(), OciError> {
    use std::io::Read;
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    if let Some(ws) = crate::sys::tty::window_size(stdout.as_fd())
        .or_else(|| crate::sys::tty::window_size(stdin.as_fd()))
    {
        crate::sys::tty::set_window_size(master.as_fd(), &ws);
    }
    let _raw = crate::sys::tty::is_terminal(stdin.as_fd())
        .then(|| crate::sys::tty::RawMode::enter(stdin.as_fd()).ok())
        .flatten();
    let mut from_box = fs::File::from(master.try_clone().map_err(OciError::io("the pty"))?);
    let mut to_box = from_box.try_clone().map_err(OciError::io("the pty"))?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdin_open = true;
    loop {
        let mut fds = vec![libc::pollfd {
            fd: from_box.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if stdin_open {
            fds.push(libc::pollfd {
                fd: stdin.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        crate::sys::fd::poll(&mut fds, None).map_err(OciError::io("poll the pty"))?;
        if fds[0].revents != 0 {
            // EIO (or 0): every process holding the other side has ended.
            match from_box.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    let mut out = stdout.lock();
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        return Ok(());
                    }
                }
            }
        }
        if fds.get(1).is_some_and(|f| f.revents != 0) {
            match stdin.lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if to_box.write_all(&buf[..n]).is_err() {
                        stdin_open = false;
                    }
                }
            }
        }
    }
}

/// Wait (a little) until the container's process has exec'd its command: poststart hooks run
/// after it (the runtime-spec), and the process is this binary until then.
fn wait_for_exec(r: &Record) {
    let proc_id = ProcId {
        pid: r.pid,
        start_time: r.start_time,
    };
    let me = fs::read_link("/proc/self/exe").ok();
    let until = Instant::now() + Duration::from_secs(2);
    while proc_id.alive() && Instant::now() < until {
        match fs::read_link(format!("/proc/{}/exe", r.pid)) {
            Ok(exe) if Some(&exe) != me.as_ref() => return,
            Err(_) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Make the fifo `path` (the exec gate or the start report) and open it read and write: the
/// open never blocks, and the container's copy never sees end of file while `create` holds it.
fn make_fifo(path: &Path, what: &str) -> Result<fs::File, OciError> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| OciError::io(format!("make the {what} fifo"))(e.into()))?;
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(OciError::io(format!("open the {what} fifo")))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

/// The container's processes: its cgroup's, else those of its pid namespace.
fn processes_of(r: &Record) -> Vec<i32> {
    if let Some(pids) = r.cgroup.as_ref().and_then(|c| c.cg.procs().ok()) {
        return pids;
    }
    pids_in_pidns_of(r.pid)
}

/// The processes in the pid namespace of `pid` (by the inode of /proc/PID/ns/pid); when that
/// is the runtime's own (a config without a pid namespace), `pid`'s descendants only.
fn pids_in_pidns_of(pid: i32) -> Vec<i32> {
    let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/pid")) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    if fs::read_link("/proc/self/ns/pid").is_ok_and(|own| own == ns) {
        return descendants_of(pid);
    }
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|q| *q != pid)
        .filter(|q| fs::read_link(format!("/proc/{q}/ns/pid")).is_ok_and(|l| l == ns))
        .collect()
}

/// The descendants of `pid`, through each thread's /proc/PID/task/TID/children.
fn descendants_of(pid: i32) -> Vec<i32> {
    let mut found = vec![pid];
    let mut i = 0;
    while let Some(&p) = found.get(i).filter(|_| i < 65536) {
        let tasks = fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten();
        for t in tasks.flatten() {
            let list = fs::read_to_string(t.path().join("children")).unwrap_or_default();
            found.extend(
                list.split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> Result<i32, OciError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| OciError::Usage(format!("unknown signal {s:?}")))
}

/// `exec`'s options (runc's flags): the process from `--process FILE` (a config.json
/// `process` object) or from `args` and the flags, over the container's own.
#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    pub id: String,
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// `uid[:gid]`.
    pub user: Option<String>,
    pub no_new_privs: bool,
}

impl Runtime {
    /// `exec`: run one more process in a running container, through the executor's join
    /// steps (as `foxbox exec` runs one in a box). Detached: returns 0 once it runs; else its
    /// exit code.
    pub fn exec(&self, o: &ExecOpts) -> Result<i32, OciError> {
        use crate::exec::join::{self, Filter, Request, Target};
        let r = self.load(&o.id)?;
        let status = self.status(&r);
        if status != Status::Running {
            return Err(OciError::State {
                id: o.id.clone(),
                status: status.as_str(),
                what: "exec needs a running container".into(),
            });
        }
        let cfg = config::load(&r.bundle)?;
        let t = translate::translate(
            &cfg.spec,
            &cfg.raw,
            &r.bundle,
            nix::unistd::geteuid().as_raw(),
        )?;
        let plan = &t.plan;
        let mut req = Request {
            args: o.args.clone(),
            env: plan.process.env.clone(),
            hostname: t.hostname.clone(),
            cwd: o
                .cwd
                .clone()
                .unwrap_or_else(|| plan.process.cwd.value.clone()),
            user: plan.process.user.value.clone(),
            capabilities: plan.capabilities.value,
            added_capabilities: plan.added_capabilities,
            no_new_privs: plan.no_new_privs || o.no_new_privs,
            seccomp: None,
            tty: o.tty,
            stdin: true,
        };
        if let Some(file) = &o.process {
            let text = fs::read_to_string(file)
                .map_err(OciError::io(format!("--process {}", file.display())))?;
            let proc_spec = process_from_json(&text)?;
            let one = translate::process_only(&proc_spec)?;
            req.args = one.args;
            req.env = one.env;
            req.cwd = one.cwd;
            req.user = one.user;
            req.tty = one.tty;
            if let Some((bounding, effective)) = one.capabilities {
                req.capabilities = bounding;
                req.added_capabilities = effective;
            }
            req.no_new_privs = one.no_new_privs;
        }
        for kv in &o.env {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| OciError::Usage(format!("--env {kv:?} is not KEY=VALUE")))?;
            req.set_env(k, v);
        }
        if let Some(u) = &o.user {
            let (uid, gid) = match u.split_once(':') {
                Some((a, b)) => (a.parse::<u32>().ok(), b.parse::<u32>().ok().map(Some)),
                None => (u.parse::<u32>().ok(), Some(None)),
            };
            match (uid, gid) {
                (Some(uid), Some(gid)) => req.user = crate::plan::User::Id { uid, gid },
                _ => return Err(OciError::Usage(format!("--user {u:?}: use UID[:GID]"))),
            }
        }
        if req.args.is_empty() {
            return Err(OciError::Usage(
                "exec needs a command (or --process)".into(),
            ));
        }
        if req.tty && o.console_socket.is_none() {
            return Err(OciError::Usage(
                "--tty needs --console-socket to receive the pty".into(),
            ));
        }
        let mut seccomp_plan = plan.clone();
        seccomp_plan.capabilities = crate::plan::Spanned::bare(req.capabilities);
        req.seccomp = crate::exec::security_steps::compile(&seccomp_plan)
            .map_err(|e| OciError::Exec(crate::exec::ExecError::step("seccomp", None, e)))?
            .map(|program| Filter {
                program,
                profile: Some(r.bundle.join("config.json")),
            });
        // Opened here: joining the container moves this process into its mount namespace.
        let sock = match &o.console_socket {
            Some(p) => Some(
                std::os::unix::net::UnixStream::connect(p)
                    .map_err(OciError::io(format!("console socket {}", p.display())))?,
            ),
            None => None,
        };
        let mut pid_file = match &o.pid_file {
            Some(p) => Some(
                fs::File::create(absolute(p))
                    .map_err(OciError::io(format!("pid file {}", p.display())))?,
            ),
            None => None,
        };
        let proc_id = ProcId {
            pid: r.pid,
            start_time: r.start_time,
        };
        let alive = || proc_id.alive();
        let started = join::start(
            Target {
                pid: r.pid,
                alive: &alive,
            },
            r.cgroup.as_ref().map(|c| &c.cg),
            &req,
        )?;
        if let (Some(pty), Some(sock)) = (&started.pty, &sock) {
            crate::sys::fd::send_msg(sock.as_fd(), b"console", Some(pty.as_fd()))
                .map_err(OciError::io("send the pty to the console socket"))?;
        }
        if let Some(f) = &mut pid_file {
            f.write_all(started.pid.to_string().as_bytes())
                .map_err(OciError::io("write the pid file"))?;
        }
        if o.detach {
            return Ok(0);
        }
        self.wait(started.pid)
    }
}

fn process_from_json(text: &str) -> Result<oci_spec::runtime::Process, OciError> {
    let raw: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| config::ConfigError::new("process", format!("not valid JSON: {e}")))?;
    serde_path_to_error::deserialize(&raw).map_err(|e| {
        OciError::Config(config::ConfigError::new(
            format!("process.{}", e.path()),
            e.into_inner().to_string(),
        ))
    })
}

impl Runtime {
    /// `ps`: the host pids of the container's processes (its pid namespace's), pid 1 first.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, OciError> {
        let r = self.load(id)?;
        let status = self.status(&r);
        if status == Status::Stopped {
            return Err(OciError::State {
                id: id.into(),
                status: status.as_str(),
                what: "it has no processes".into(),
            });
        }
        let mut v = vec![r.pid];
        let mut rest = processes_of(&r);
        rest.retain(|p| *p != r.pid);
        rest.sort_unstable();
        v.extend(rest);
        Ok(v)
    }
}

impl Runtime {
    /// `pause` (`frozen`) and `resume`: freeze or thaw every process of the container through
    /// its cgroup's freezer.
    pub fn freeze(&self, id: &str, frozen: bool) -> Result<(), OciError> {
        let r = self.load(id)?;
        let status = self.status(&r);
        let (ok, what) = if frozen {
            (
                matches!(status, Status::Running | Status::Created),
                "only a running or created container can be paused",
            )
        } else {
            (
                status == Status::Paused,
                "only a paused container can be resumed",
            )
        };
        if !ok {
            return Err(OciError::State {
                id: id.into(),
                status: status.as_str(),
                what: what.into(),
            });
        }
        no_cgroup(id, status, &r)?.set_frozen(frozen)?;
        Ok(())
    }

    /// `update`: set resources on the container's cgroup. A hierarchy added for a controller
    /// `create` did not use is recorded, so that `delete` removes it. Returns warnings.
    pub fn update(
        &self,
        id: &str,
        res: &crate::cgroup::Resources,
    ) -> Result<Vec<String>, OciError> {
        let mut r = self.load(id)?;
        let status = self.status(&r);
        if status == Status::Stopped {
            return Err(OciError::State {
                id: id.into(),
                status: status.as_str(),
                what: "a stopped container has nothing to update".into(),
            });
        }
        let mut cg = no_cgroup(id, status, &r)?.clone();
        let result = cgroups::update(&mut cg, res);
        if r.cgroup.as_ref() != Some(&cg) {
            r.cgroup = Some(cg);
            crate::store::atomic::write_json(&self.dir(id).join(STATE), &r)
                .map_err(|e| OciError::io("write state.json")(std::io::Error::other(e)))?;
        }
        result
    }
}

fn no_cgroup<'a>(id: &str, status: Status, r: &'a Record) -> Result<&'a PathCgroup, OciError> {
    r.cgroup.as_ref().ok_or_else(|| OciError::State {
        id: id.into(),
        status: status.as_str(),
        what: "it has no cgroup (the runtime could not write linux.cgroupsPath when it \
               created it)"
            .into(),
    })
}
