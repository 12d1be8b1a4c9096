//! The box store: one directory per box under `<root>/boxes/<id>`, holding its fixed
//! configuration (`config.json`), its changing state (`state.json`), its rootfs upper dir and
//! its log.
//!
//! Crash safety: a box is made in two steps. Staging makes its directory, holds an flock on
//! it and reserves its name (by creating the symlink `.names/NAME -> ID`, which only one of
//! twenty parallel creations can do); committing writes `config.json` atomically (temp file,
//! fsync, rename) and lets go of the lock. Until then the box is invisible (no record), and a
//! staged directory whose lock nobody holds was left by a crash: it is removed, its name
//! freed, when met. A foreground box is committed once its fox runs, together with that state
//! ([`Boxes::record_with_state`]), so the fsync overlaps the fox. Every later write is atomic too; `state.json` appears on the first change
//! (before that the config records the creating process). State that says "running" is
//! checked against the recorded process identities (pid + start time), so a crash never
//! leaves `ps` lying. Removal renames the directory to trash at once, then deletes it.

pub mod control;
pub mod execinfo;
pub mod exits;
pub mod log;
pub mod names;
pub mod proc;

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::atomic;
use crate::store::lock::Mode;

pub use proc::ProcId;

const TRASH_PREFIX: &str = ".trash-";
const NAMES_DIR: &str = ".names";
const NAMES_LOCK: &str = ".names.lock";
const CONFIG: &str = "config.json";
const STATE: &str = "state.json";
/// The box's output (see [`log`]).
const LOG: &str = "log";
/// The box's cgroup, recorded before it is made so that `rm` can remove it.
const CGROUP: &str = "cgroup.json";
/// In the boxes directory: the one directory every box mounts its root over.
const MOUNTPOINT: &str = ".mnt";

#[derive(Debug, thiserror::Error)]
pub enum BoxError {
    #[error("invalid box name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
    #[error("the name {name:?} is already in use by box {id}")]
    NameInUse { name: String, id: String },
    #[error("no such box: {0}")]
    NotFound(String),
    #[error("{prefix:?} names more than one box: {}", ids.join(", "))]
    Ambiguous { prefix: String, ids: Vec<String> },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::store::lock::LockError),
    #[error("box {id} has unreadable {file}: {source}")]
    Corrupt {
        id: String,
        file: &'static str,
        source: serde_json::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BoxError + 'a {
    move |source| BoxError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Milliseconds since the Unix epoch (the store's clock; here for the box store's callers).
pub use crate::store::clock::now_ms;

/// What a box is, fixed when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxConfig {
    pub id: String,
    pub name: String,
    /// Milliseconds since the epoch.
    pub created: u64,
    /// The image as the user named it.
    pub image: String,
    /// The image id it resolved to, when known.
    #[serde(default)]
    pub image_id: Option<String>,
    pub command: Vec<String>,
    /// The spec file it came from, if any.
    #[serde(default)]
    pub spec: Option<PathBuf>,
    /// Published ports as `host_ip:host_port->box_port/proto`.
    #[serde(default)]
    pub ports: Vec<String>,
    /// Named volumes it uses.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Remove the box when it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// The resolved plan, as `foxbox plan --format json` prints it.
    #[serde(default)]
    pub plan: serde_json::Value,
    /// How `foxbox exec` runs a process the way the fox runs.
    #[serde(default)]
    pub exec: Option<execinfo::ExecInfo>,
    /// The process that created the box: its state until `state.json` is first written.
    #[serde(default)]
    pub creator: Option<ProcId>,
    /// The state the box had when it was recorded, for a box recorded once it was running or
    /// had failed (see [`Boxes::record_with_state`]): its state until `state.json` is first
    /// written, instead of "created by `creator`".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<BoxState>,
}

impl BoxConfig {
    /// The grace period between SIGTERM and SIGKILL its plan set (`limits.stop_timeout`), for
    /// `foxbox stop` without `--time`.
    pub fn stop_timeout(&self) -> Duration {
        self.plan
            .pointer("/limits/stop_timeout")
            .and_then(|v| v.as_str())
            .and_then(|s| humantime::parse_duration(s).ok())
            .unwrap_or(crate::plan::DEFAULT_STOP_TIMEOUT)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, not (yet) started.
    Created,
    Running,
    Exited,
}

/// What a box is doing, rewritten atomically as it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxState {
    pub status: Status,
    /// The process creating or starting the box (the CLI), while it does.
    #[serde(default)]
    pub creator: Option<ProcId>,
    /// The box's first process as seen from the host.
    #[serde(default)]
    pub fox: Option<ProcId>,
    /// The supervisor of a detached box.
    #[serde(default)]
    pub supervisor: Option<ProcId>,
    #[serde(default)]
    pub started: Option<u64>,
    #[serde(default)]
    pub finished: Option<u64>,
    /// `None` after exit means foxbox never learned it (its supervisor died first).
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub timed_out: bool,
    /// Why the box failed to start, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

impl BoxState {
    /// Its fox started now, `creator` still at work.
    pub fn running(
        creator: Option<ProcId>,
        fox: Option<ProcId>,
        supervisor: Option<ProcId>,
    ) -> Self {
        BoxState {
            status: Status::Running,
            fox,
            supervisor,
            started: Some(now_ms()),
            ..BoxState::created(creator)
        }
    }

    fn created(creator: Option<ProcId>) -> BoxState {
        BoxState {
            status: Status::Created,
            creator,
            fox: None,
            supervisor: None,
            started: None,
            finished: None,
            exit_code: None,
            oom_killed: false,
            timed_out: false,
            error: None,
        }
    }

    /// The state as it really is: a box recorded as running whose processes are all gone has
    /// exited (with an unknown code unless one was recorded).
    pub fn observed(&self) -> BoxState {
        let mut s = self.clone();
        // A box whose creator and supervisor died before its fox started never will.
        if s.status == Status::Created {
            let creator_alive = s.creator.is_some_and(|p| p.alive());
            let sup_alive = s.supervisor.is_some_and(|p| p.alive());
            if !creator_alive && !sup_alive {
                s.status = Status::Exited;
                s.error
                    .get_or_insert_with(|| "foxbox died before the box started".to_string());
            }
        }
        if s.status == Status::Running {
            let fox_alive = s.fox.is_some_and(|p| p.alive());
            let sup_alive = s.supervisor.is_some_and(|p| p.alive());
            let creator_alive = s.creator.is_some_and(|p| p.alive());
            if !fox_alive && !sup_alive && !creator_alive {
                s.status = Status::Exited;
            }
        }
        s
    }

    /// True while some process of the box may still run.
    pub fn is_running(&self) -> bool {
        self.observed().status == Status::Running
    }
}

/// One box as listed.
#[derive(Debug, Clone)]
pub struct BoxEntry {
    pub config: BoxConfig,
    /// Already observed (see [`BoxState::observed`]).
    pub state: BoxState,
    pub dir: PathBuf,
    /// Recorded as created or running, but every process of it is gone: it died without
    /// recording its end (see [`Boxes::settle`]).
    pub died: bool,
}

/// The files of a box's directory: named here only.
impl BoxEntry {
    /// The box's output log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG)
    }

    /// The record of the box's cgroup (a box without limits has none).
    pub fn cgroup_path(&self) -> PathBuf {
        self.dir.join(CGROUP)
    }
}

/// The hold on a box that is staged but not yet recorded (see [`Boxes::stage`]).
pub struct Pending {
    /// Held until the commit: a staged directory nobody holds was abandoned.
    lock: std::cell::Cell<Option<Lock>>,
}

impl Pending {
    /// Hand the hold on the box to whoever writes its record (on another thread): it lets go
    /// once the record is written, or gives the hold back with [`Pending::hold_again`].
    pub fn take_hold(&self) -> Option<Lock> {
        self.lock.take()
    }

    /// The hold taken by [`Pending::take_hold`], back: the record was not written.
    pub fn hold_again(&self, lock: Lock) {
        self.lock.set(Some(lock));
    }

    /// True until [`Boxes::commit`] or [`Boxes::abandon`].
    pub fn is_pending(&self) -> bool {
        let l = self.lock.take();
        let pending = l.is_some();
        self.lock.set(l);
        pending
    }
}

/// Delete a box's directory as far as the caller can (overlayfs leaves its inner work dirs
/// with mode 000: they are the caller's, so they are opened up first).
pub fn remove_box_tree(dir: &Path) {
    if fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return;
    }
    // overlayfs leaves directories without any permission in its work dir (work/work, and for
    // a volatile mount work/work/incompat/volatile): open up every directory of ours, then
    // try again. What belongs to a box's subordinate ids needs its user namespace
    // (`Store::remove_tree`).
    open_up(dir, nix::unistd::geteuid().as_raw());
    let _ = fs::remove_dir_all(dir);
}

fn open_up(dir: &Path, me: u32) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() || meta.uid() != me {
        return;
    }
    if meta.mode() & 0o700 != 0o700 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                open_up(&e.path(), me);
            }
        }
    }
}

/// The box store under `<root>/boxes`.
#[derive(Debug, Clone)]
pub struct Boxes {
    dir: PathBuf,
}

/// An exclusive lock on one box (or on the name table), released on drop or process death.
pub use crate::store::lock::Lock;

fn flock(path: &Path) -> Result<Lock, BoxError> {
    Lock::acquire(path, Mode::Exclusive).map_err(BoxError::Lock)
}

fn lock_file(f: File, path: &Path) -> Result<Lock, BoxError> {
    Lock::acquire_open(f, path, Mode::Exclusive).map_err(BoxError::Lock)
}

/// getrandom(2) failed (box ids and generated names need it).
fn no_random(e: io::Error) -> BoxError {
    io_err("cannot get random bytes from", Path::new("getrandom(2)"))(e)
}

/// A box's record, written atomically; the directory is not fsynced (see
/// [`atomic::write_file_unsynced_dir`]).
fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), BoxError> {
    let bytes =
        serde_json::to_vec_pretty(v).map_err(|e| io_err("cannot encode", path)(e.into()))?;
    atomic::write_file_unsynced_dir(path, &bytes).map_err(|e| match e {
        atomic::AtomicError::Io { path, source } => BoxError::Io {
            what: "cannot write",
            path,
            source,
        },
        atomic::AtomicError::Encode { path, source } => {
            io_err("cannot encode", &path)(source.into())
        }
    })
}

impl Boxes {
    pub fn open(dir: PathBuf) -> Result<Boxes, BoxError> {
        let b = Boxes::open_unswept(dir)?;
        b.sweep();
        Ok(b)
    }

    /// [`Boxes::open`] without the sweep, for starting a box: reading every box's entry is
    /// not the start's business (`ps`, `rm` and the `--rm` reaper sweep).
    pub fn open_unswept(dir: PathBuf) -> Result<Boxes, BoxError> {
        crate::store::private::create_dir(&dir).map_err(io_err("cannot create", &dir))?;
        fs::create_dir_all(dir.join(NAMES_DIR)).map_err(io_err("cannot create", &dir))?;
        Ok(Boxes { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn box_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The directory every box mounts its root over, each inside its own mount namespace:
    /// nothing to make and delete per box.
    pub fn mountpoint(&self) -> PathBuf {
        self.dir.join(MOUNTPOINT)
    }

    /// The output log of box `id` (see [`BoxEntry::log_path`]).
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.box_dir(id).join(LOG)
    }

    /// Delete trash whose deleter died (trash that cannot be deleted, files owned by
    /// subordinate ids, is left for [`Boxes::trash`]'s caller).
    fn sweep(&self) {
        for t in self.trash() {
            let _ = fs::remove_dir_all(t);
        }
    }

    /// Name links whose box directory is gone: left by a crash between a box's staging and
    /// its record, once its half-made directory was swept.
    pub fn dangling_names(&self) -> Vec<PathBuf> {
        fs::read_dir(self.dir.join(NAMES_DIR))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| self.dangling(p))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn dangling(&self, link: &Path) -> bool {
        // A box's directory is made before its name is reserved, and its name released
        // before its directory goes: a name whose directory is missing holds nothing.
        Self::name_holder(link)
            .is_some_and(|id| !names::validate_id(&id) || !self.box_dir(&id).is_dir())
    }

    /// Remove [`Boxes::dangling_names`] under the name table's lock; returns what went.
    pub fn sweep_names(&self) -> Vec<PathBuf> {
        let found = self.dangling_names();
        if found.is_empty() {
            return found;
        }
        let Ok(_lock) = flock(&self.dir.join(NAMES_LOCK)) else {
            return Vec::new();
        };
        found
            .into_iter()
            .filter(|p| self.dangling(p) && fs::remove_file(p).is_ok())
            .collect()
    }

    /// Staged boxes nobody holds: half-made by a process that died before recording them
    /// (what [`Boxes::reap_abandoned`] removes).
    pub fn abandoned(&self) -> Vec<String> {
        self.ids()
            .unwrap_or_default()
            .into_iter()
            .filter(|id| {
                let dir = self.box_dir(id);
                !dir.join(CONFIG).exists()
                    && File::open(&dir).is_ok_and(|f| {
                        matches!(
                            Lock::try_acquire_open(f, &dir, Mode::Exclusive),
                            Ok(Some(_))
                        )
                    })
                    && !dir.join(CONFIG).exists()
            })
            .collect()
    }

    /// Temporary files of interrupted record writes in box `id`'s directory.
    pub fn temp_files(&self, id: &str) -> Vec<PathBuf> {
        crate::store::atomic::temp_files(&self.box_dir(id))
    }

    /// Remove [`Boxes::temp_files`] of a box that does not run, under its lock (its writers
    /// hold it).
    pub fn sweep_temp_files(&self, id: &str) {
        if let Ok(_lock) = self.lock(id) {
            crate::store::atomic::sweep_temp_files(&self.box_dir(id));
        }
    }

    /// Leftover trash directories whose deleter is gone (to delete with more privilege, e.g.
    /// in a user namespace).
    pub fn trash(&self) -> Vec<PathBuf> {
        let owner_gone = |name: &str| {
            name.strip_prefix(TRASH_PREFIX)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        };
        fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| owner_gone(&e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Create a box: stage it, then commit it. A name already held by an existing box is an
    /// error and leaves nothing behind.
    pub fn create(&self, config: BoxConfig) -> Result<BoxEntry, BoxError> {
        let (entry, pending) = self.stage(config)?;
        self.commit(&entry, &pending)?;
        Ok(entry)
    }

    /// Make the box's directory and reserve its name, without a record yet: the box is
    /// invisible until [`Boxes::commit`], and is removed as abandoned if this process dies
    /// first. A name held by an existing box is an error and leaves nothing behind.
    pub fn stage(&self, mut config: BoxConfig) -> Result<(BoxEntry, Pending), BoxError> {
        let generate = config.name.is_empty();
        if generate {
            config.name = names::generate_name().map_err(no_random)?;
        } else {
            names::validate_name(&config.name).map_err(|why| BoxError::BadName {
                name: config.name.clone(),
                why,
            })?;
        }
        config.id = names::new_id().map_err(no_random)?;
        config.created = now_ms();
        config.creator = ProcId::of(std::process::id() as i32);
        let dir = self.box_dir(&config.id);
        // Made under a trash name and locked before it takes its own: a sweep never meets it
        // without its lock (trash whose maker lives is left alone, and is swept once it died).
        let made = self.trash_path(std::process::id(), &config.id);
        fs::DirBuilder::new()
            .mode(crate::store::private::DIR_MODE)
            .create(&made)
            .map_err(io_err("cannot create", &made))?;
        let lock = File::open(&made)
            .map_err(io_err("cannot open", &made))
            .and_then(|f| lock_file(f, &made))
            .and_then(|lock| {
                fs::rename(&made, &dir).map_err(io_err("cannot create", &dir))?;
                Ok(lock)
            });
        let reserved = lock.and_then(|lock| {
            if generate {
                self.reserve_generated(&mut config)?;
            } else {
                self.reserve_name(&config.name, &config.id)?;
            }
            Ok(lock)
        });
        match reserved {
            Ok(lock) => Ok((
                BoxEntry {
                    state: BoxState::created(config.creator),
                    config,
                    dir,
                    died: false,
                },
                Pending {
                    lock: std::cell::Cell::new(Some(lock)),
                },
            )),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                let _ = fs::remove_dir(&made);
                Err(e)
            }
        }
    }

    /// Write a staged box's record: from here on it is a box like any other.
    pub fn commit(&self, entry: &BoxEntry, pending: &Pending) -> Result<(), BoxError> {
        write_json(&entry.dir.join(CONFIG), &entry.config)?;
        crate::store::fault::point("start.recorded");
        pending.lock.take();
        Ok(())
    }

    /// Write a staged box's record together with the state it has already reached: one write
    /// where [`Boxes::commit`] and a state change would be two. The caller holds the staging
    /// lock (taken with [`Pending::take_hold`], as this may run on another thread) and lets go
    /// of it once this returned Ok.
    pub fn record_with_state(&self, entry: &BoxEntry, state: BoxState) -> Result<(), BoxError> {
        let mut config = entry.config.clone();
        config.initial = Some(state);
        write_json(&entry.dir.join(CONFIG), &config)?;
        crate::store::fault::point("start.recorded");
        Ok(())
    }

    /// Undo a staging: the directory and the name go.
    pub fn abandon(&self, entry: &BoxEntry, pending: &Pending) {
        let _ = self.release_name(&entry.config.name, &entry.config.id);
        remove_box_tree(&entry.dir);
        pending.lock.take();
    }

    /// A staged box whose creator died before committing it: remove it (true) unless it is
    /// committed or its creator still holds it.
    pub fn reap_abandoned(&self, id: &str) -> bool {
        let dir = self.box_dir(id);
        if dir.join(CONFIG).exists() {
            return false;
        }
        let Ok(f) = File::open(&dir) else {
            return false;
        };
        let Ok(Some(_held)) = Lock::try_acquire_open(f, &dir, Mode::Exclusive) else {
            return false;
        };
        if dir.join(CONFIG).exists() {
            return false;
        }
        let trash = self.trash_path(std::process::id(), id);
        if fs::rename(&dir, &trash).is_ok() {
            remove_box_tree(&trash);
        }
        true
    }

    /// Reserve the generated name the config holds, or another one when it is taken.
    fn reserve_generated(&self, config: &mut BoxConfig) -> Result<(), BoxError> {
        let mut last = None;
        for attempt in 0..=64 {
            let name = match attempt {
                0 => config.name.clone(),
                64 => format!("fox-{}", &config.id[..12]),
                _ => names::generate_name().map_err(no_random)?,
            };
            match self.reserve_name(&name, &config.id) {
                Ok(()) => {
                    config.name = name;
                    return Ok(());
                }
                Err(e @ BoxError::NameInUse { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| BoxError::NotFound(config.name.clone())))
    }

    /// The box id a name file points at: a symlink to the id (or, as older stores wrote it, a
    /// file holding the id).
    fn name_holder(path: &Path) -> Option<String> {
        match fs::read_link(path) {
            Ok(t) => Some(t.to_string_lossy().into_owned()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                fs::read_to_string(path).ok().map(|s| s.trim().to_string())
            }
            Err(_) => None,
        }
    }

    fn reserve_name(&self, name: &str, id: &str) -> Result<(), BoxError> {
        let path = self.dir.join(NAMES_DIR).join(name);
        // The symlink's creation is the reservation: atomic, and exclusive among racers.
        match std::os::unix::fs::symlink(id, &path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("cannot reserve the name at", &path)(e)),
        }
        let _lock = flock(&self.dir.join(NAMES_LOCK))?;
        if let Some(holder) = Self::name_holder(&path) {
            // A name whose box directory is gone was left by a crash: it is free again.
            if holder == id {
                return Ok(());
            }
            if names::validate_id(&holder)
                && self.box_dir(&holder).is_dir()
                && !self.reap_abandoned(&holder)
            {
                return Err(BoxError::NameInUse {
                    name: name.to_string(),
                    id: holder,
                });
            }
        }
        let _ = fs::remove_file(&path);
        std::os::unix::fs::symlink(id, &path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                let holder = Self::name_holder(&path).unwrap_or_default();
                BoxError::NameInUse {
                    name: name.to_string(),
                    id: holder,
                }
            } else {
                io_err("cannot reserve the name at", &path)(e)
            }
        })
    }

    fn release_name(&self, name: &str, id: &str) -> Result<(), BoxError> {
        let _lock = flock(&self.dir.join(NAMES_LOCK))?;
        let path = self.dir.join(NAMES_DIR).join(name);
        if Self::name_holder(&path).is_some_and(|h| h == id) {
            fs::remove_file(&path).map_err(io_err("cannot remove", &path))?;
        }
        Ok(())
    }

    /// Lock one box against concurrent changes.
    pub fn lock(&self, id: &str) -> Result<Lock, BoxError> {
        // The directory itself is locked: no lock file to make and delete with every box.
        let dir = self.box_dir(id);
        let f = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BoxError::NotFound(id.to_string()))
            }
            Err(e) => return Err(io_err("cannot open", &dir)(e)),
        };
        lock_file(f, &dir)
    }

    /// The box a user named: an exact name, a full id, or a unique id prefix.
    pub fn resolve(&self, what: &str) -> Result<String, BoxError> {
        if names::validate_name(what).is_ok() {
            if let Some(id) = Self::name_holder(&self.dir.join(NAMES_DIR).join(what)) {
                if names::validate_id(&id) && self.box_dir(&id).is_dir() {
                    return Ok(id);
                }
            }
        }
        if what.is_empty() || !what.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(BoxError::NotFound(what.to_string()));
        }
        let mut ids: Vec<String> = self
            .ids()?
            .into_iter()
            .filter(|id| id.starts_with(what))
            .collect();
        match ids.len() {
            0 => Err(BoxError::NotFound(what.to_string())),
            1 => Ok(ids.remove(0)),
            _ => Err(BoxError::Ambiguous {
                prefix: what.to_string(),
                ids: ids.into_iter().map(|i| i[..12].to_string()).collect(),
            }),
        }
    }

    /// The ids of every box directory, recorded or not (hidden entries are the store's own).
    pub fn ids(&self) -> Result<Vec<String>, BoxError> {
        let rd = fs::read_dir(&self.dir).map_err(io_err("cannot read", &self.dir))?;
        Ok(rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect())
    }

    pub fn load(&self, id: &str) -> Result<BoxEntry, BoxError> {
        let dir = self.box_dir(id);
        let config = self.read_config(id)?;
        let state = self.read_state(id, &config)?;
        let observed = state.observed();
        Ok(BoxEntry {
            config,
            died: state.status != Status::Exited && observed.status == Status::Exited,
            state: observed,
            dir,
        })
    }

    /// Record the end of a box that died without recording it (its supervisor or creating CLI
    /// was killed), as its state is observed: exited, with an unknown code. Returns the box
    /// when it had died, for its caller to release what it held (cgroup, runtime files);
    /// `None` when it had not (settled meanwhile by another process).
    pub fn settle(&self, id: &str) -> Result<Option<BoxEntry>, BoxError> {
        let _lock = self.lock(id)?;
        let entry = match self.load(id)? {
            e if e.died => e,
            _ => return Ok(None),
        };
        let mut state = entry.state.clone();
        state.creator = None;
        self.write_state(id, &state)?;
        Ok(Some(BoxEntry {
            died: false,
            ..entry
        }))
    }

    fn read_config(&self, id: &str) -> Result<BoxConfig, BoxError> {
        let p = self.box_dir(id).join(CONFIG);
        let bytes = fs::read(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                BoxError::NotFound(id.to_string())
            } else {
                io_err("cannot read", &p)(e)
            }
        })?;
        serde_json::from_slice(&bytes).map_err(|source| BoxError::Corrupt {
            id: id.to_string(),
            file: CONFIG,
            source,
        })
    }

    /// The recorded state: `state.json`, or before that is first written, the state the config
    /// was recorded with, else "created" by the process the config names.
    fn read_state(&self, id: &str, config: &BoxConfig) -> Result<BoxState, BoxError> {
        let p = self.box_dir(id).join(STATE);
        match fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| BoxError::Corrupt {
                id: id.to_string(),
                file: STATE,
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(config
                .initial
                .clone()
                .unwrap_or_else(|| BoxState::created(config.creator))),
            Err(e) => Err(io_err("cannot read", &p)(e)),
        }
    }

    /// Every box, newest first. Boxes that vanish while listing are skipped.
    pub fn list(&self) -> Result<Vec<BoxEntry>, BoxError> {
        self.list_reaping().map(|(v, _)| v)
    }

    /// [`Boxes::list`], and whether it reaped a half-made box (whose image and volume
    /// markers, if it had made them, are left for the caller to sweep).
    pub fn list_reaping(&self) -> Result<(Vec<BoxEntry>, bool), BoxError> {
        let mut v = Vec::new();
        let mut reaped = false;
        for id in self.ids()? {
            match self.load(&id) {
                Ok(b) => v.push(b),
                // No record: being staged, or abandoned by a crash (then it goes).
                Err(BoxError::NotFound(_)) => {
                    reaped |= self.reap_abandoned(&id);
                }
                Err(e) => return Err(e),
            }
        }
        if reaped {
            // The names those boxes had reserved.
            self.sweep_names();
        }
        v.sort_by_key(|e| std::cmp::Reverse(e.config.created));
        Ok((v, reaped))
    }

    /// Replace a box's state (the caller holds the box's lock).
    pub fn write_state(&self, id: &str, state: &BoxState) -> Result<(), BoxError> {
        write_json(&self.box_dir(id).join(STATE), state)
    }

    /// Change a box's state under its lock: read, modify, write.
    pub fn update_state(
        &self,
        id: &str,
        f: impl FnOnce(&mut BoxState),
    ) -> Result<BoxState, BoxError> {
        let _lock = self.lock(id)?;
        let config = self.read_config(id)?;
        let mut state = self.read_state(id, &config)?;
        f(&mut state);
        self.write_state(id, &state)?;
        Ok(state)
    }

    /// Take a box out of the store in one step: its name is released and its directory is
    /// renamed to trash, which is returned for the caller to delete.
    pub fn retire(&self, id: &str) -> Result<PathBuf, BoxError> {
        let entry = self.load(id)?;
        self.retire_named(id, &entry.config.name)
    }

    /// [`Boxes::retire`] for a caller that knows the box's name (it never changes once the
    /// box is recorded): its record need not be read again.
    pub fn retire_named(&self, id: &str, name: &str) -> Result<PathBuf, BoxError> {
        let _lock = self.lock(id)?;
        self.release_name(name, id)?;
        let dir = self.box_dir(id);
        let trash = self.trash_path(std::process::id(), id);
        fs::rename(&dir, &trash).map_err(|e| {
            // A parallel removal moved it away while this one waited for the lock.
            if e.kind() == io::ErrorKind::NotFound {
                BoxError::NotFound(id.to_string())
            } else {
                io_err("cannot remove", &dir)(e)
            }
        })?;
        Ok(trash)
    }

    /// Where [`Boxes::retire`] run by process `owner` puts box `id`.
    pub fn trash_path(&self, owner: u32, id: &str) -> PathBuf {
        self.dir.join(format!("{TRASH_PREFIX}{owner}-{id}"))
    }

    /// Make this process the owner of trash another one retired (sweeps leave it alone while
    /// this process lives). Returns its new path.
    pub fn adopt_trash(&self, trash: &Path) -> PathBuf {
        let id = trash
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .and_then(|n| n.rsplit('-').next().map(str::to_string))
            .unwrap_or_default();
        let mine = self.trash_path(std::process::id(), &id);
        match fs::rename(trash, &mine) {
            Ok(()) => mine,
            Err(_) => trash.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str) -> BoxConfig {
        BoxConfig {
            id: String::new(),
            name: name.to_string(),
            created: 0,
            image: "busybox".into(),
            image_id: None,
            command: vec!["true".into()],
            spec: None,
            ports: vec![],
            volumes: vec![],
            auto_remove: false,
            plan: serde_json::Value::Null,
            exec: None,
            creator: None,
            initial: None,
        }
    }

    fn store() -> (tempfile::TempDir, Boxes) {
        let t = tempfile::tempdir().unwrap();
        let b = Boxes::open(t.path().join("boxes")).unwrap();
        (t, b)
    }

    #[test]
    fn create_resolve_by_name_and_prefix_then_remove() {
        let (_t, b) = store();
        let e = b.create(cfg("web")).unwrap();
        assert_eq!(b.resolve("web").unwrap(), e.config.id);
        assert_eq!(b.resolve(&e.config.id[..6]).unwrap(), e.config.id);
        assert!(matches!(
            b.create(cfg("web")),
            Err(BoxError::NameInUse { .. })
        ));
        assert_eq!(
            b.list().unwrap().len(),
            1,
            "a refused create leaves nothing"
        );
        let trash = b.retire(&e.config.id).unwrap();
        assert!(!b.box_dir(&e.config.id).exists() && trash.is_dir());
        assert!(matches!(b.resolve("web"), Err(BoxError::NotFound(_))));
        b.create(cfg("web")).unwrap();
    }

    #[test]
    fn generated_names_and_bad_names() {
        let (_t, b) = store();
        let e = b.create(cfg("")).unwrap();
        assert!(e.config.name.contains('-'));
        assert_eq!(b.load(&e.config.id).unwrap().config.name, e.config.name);
        assert!(matches!(
            b.create(cfg("a/b")),
            Err(BoxError::BadName { .. })
        ));
    }

    #[test]
    fn a_staged_box_is_invisible_until_committed_and_reaped_once_abandoned() {
        let (_t, b) = store();
        let (e, pending) = b.stage(cfg("st")).unwrap();
        assert!(pending.is_pending());
        assert!(b.list().unwrap().is_empty(), "no record yet");
        assert!(e.dir.is_dir(), "a box held by its creator is not reaped");
        assert!(matches!(
            b.create(cfg("st")),
            Err(BoxError::NameInUse { .. })
        ));
        b.commit(&e, &pending).unwrap();
        assert!(!pending.is_pending());
        assert_eq!(b.list().unwrap().len(), 1);

        // A creator that dies between staging and commit lets go of its lock.
        let (e2, pending2) = b.stage(cfg("gone")).unwrap();
        drop(pending2);
        assert_eq!(b.list().unwrap().len(), 1);
        assert!(!e2.dir.exists(), "the abandoned box is reaped");
        b.create(cfg("gone")).unwrap();
    }

    #[test]
    fn a_box_recorded_with_its_state_reads_as_that_state_until_state_json() {
        let (_t, b) = store();
        let (e, pending) = b.stage(cfg("late")).unwrap();
        let me = ProcId::of(std::process::id() as i32);
        b.record_with_state(&e, BoxState::running(me, me, None))
            .unwrap();
        // Written while still held: not reaped, and visible with that state.
        let got = b.load(&e.config.id).unwrap();
        assert_eq!(got.state.status, Status::Running);
        assert_eq!(got.state.fox, me);
        assert!(got.state.started.is_some());
        drop(pending.take_hold());
        assert!(!pending.is_pending());
        b.update_state(&e.config.id, |s| s.status = Status::Exited)
            .unwrap();
        assert_eq!(b.load(&e.config.id).unwrap().state.status, Status::Exited);
        // A record without that state still reads as created by its creator.
        let plain = b.create(cfg("plain")).unwrap();
        assert_eq!(b.load(&plain.config.id).unwrap().config.initial, None);
    }

    #[test]
    fn an_abandoned_box_frees_its_name_for_a_new_one() {
        let (_t, b) = store();
        let (e, pending) = b.stage(cfg("x")).unwrap();
        drop(pending);
        let again = b.create(cfg("x")).unwrap();
        assert!(!e.dir.exists());
        assert_eq!(b.resolve("x").unwrap(), again.config.id);
    }

    #[test]
    fn a_stale_name_is_free_again() {
        let (_t, b) = store();
        let e = b.create(cfg("x")).unwrap();
        // A crash between the directory's removal and the name's release.
        fs::remove_dir_all(b.box_dir(&e.config.id)).unwrap();
        b.create(cfg("x")).unwrap();
    }

    #[test]
    fn running_without_live_processes_is_observed_as_exited() {
        let (_t, b) = store();
        let e = b.create(cfg("r")).unwrap();
        let dead = ProcId {
            pid: i32::MAX,
            start_time: 1,
        };
        b.update_state(&e.config.id, |s| {
            s.status = Status::Running;
            s.creator = None;
            s.fox = Some(dead);
            s.supervisor = Some(dead);
        })
        .unwrap();
        let l = b.load(&e.config.id).unwrap();
        assert_eq!(l.state.status, Status::Exited);
        assert_eq!(l.state.exit_code, None);
        let me = ProcId::of(std::process::id() as i32).unwrap();
        b.update_state(&e.config.id, |s| s.fox = Some(me)).unwrap();
        assert_eq!(b.load(&e.config.id).unwrap().state.status, Status::Running);
    }

    #[test]
    fn twenty_parallel_creations_with_one_name_end_with_one_box() {
        let (_t, b) = store();
        let b = std::sync::Arc::new(b);
        let results: Vec<_> = (0..20)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || b.create(cfg("same")).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert_eq!(results.iter().filter(|ok| **ok).count(), 1);
        assert_eq!(b.list().unwrap().len(), 1);
    }

    #[test]
    fn ambiguous_prefix() {
        let (_t, b) = store();
        for _ in 0..40 {
            b.create(cfg("")).unwrap();
        }
        // 40 ids over 16 first digits: by pigeonhole some digit starts at least two.
        let ids: Vec<_> = b.list().unwrap().into_iter().map(|e| e.config.id).collect();
        let shared = (0..16u32)
            .map(|d| std::char::from_digit(d, 16).unwrap().to_string())
            .find(|d| ids.iter().filter(|i| i.starts_with(d.as_str())).count() > 1)
            .unwrap();
        assert!(matches!(
            b.resolve(&shared),
            Err(BoxError::Ambiguous { .. })
        ));
        assert!(matches!(b.resolve("zz"), Err(BoxError::NotFound(_))));
    }
}
