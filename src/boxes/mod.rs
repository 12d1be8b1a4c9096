//! The box store: one directory per box under `<root>/boxes/<id>`, holding its fixed
//! configuration (`config.json`), its changing state (`state.json`), its rootfs upper dir and
//! its log.
//!
//! By concern: [`record`] (the two files, read and written atomically), [`state`] (the box's
//! life as a state machine: the only way a recorded state changes), [`staging`] (making a box
//! crash-safely), [`name_table`] (reserving names), [`trash`] (removal's first half),
//! [`layout`] (the names of a box's files), [`lock`].
//!
//! Crash safety: a box is made in two steps. Staging makes its directory, holds an flock on
//! it and reserves its name (by creating the symlink `.names/NAME -> ID`, which only one of
//! twenty parallel creations can do); recording writes `config.json` atomically (temp file,
//! fsync, rename) and lets go of the lock. Until then the box is invisible (no record), and a
//! staged directory whose lock nobody holds was left by a crash: it is removed, its name
//! freed, when met. A foreground box is recorded once its fox runs, together with that state
//! (`Boxes::record` with [`Event::Start`]), so the fsync overlaps the fox. Every later write
//! is atomic too; `state.json` appears on the first change (before that the config records
//! the creating process, or the state it was recorded with). State that says "running" is
//! checked against the recorded process identities (pid + start time), so a crash never
//! leaves `ps` lying. Removal renames the directory to trash at once, then deletes it.

pub mod control;
pub mod execinfo;
pub mod exits;
pub mod layout;
pub mod lock;
pub mod log;
pub mod name_table;
pub mod names;
pub mod proc;
pub mod record;
pub mod staging;
pub mod state;
pub mod trash;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use layout::NAMES_DIR;

pub use layout::remove_box_tree;
pub use lock::Lock;
pub use proc::ProcId;
pub use record::{BoxConfig, BoxEntry};
pub use staging::Pending;
pub use state::{BoxState, Event, IllegalTransition, Phase, Status};

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
    #[error("box {id}: {source}")]
    Transition {
        id: String,
        source: IllegalTransition,
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

/// The box store under `<root>/boxes`.
#[derive(Debug, Clone)]
pub struct Boxes {
    dir: PathBuf,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str) -> BoxConfig {
        BoxConfig {
            name: name.to_string(),
            ..record::tests::config()
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
        let trash = b.retire(&e, std::process::id()).unwrap();
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
        b.record(&e, &Event::Record).unwrap();
        drop(pending.take_hold());
        assert!(!pending.is_pending());
        assert_eq!(b.list().unwrap().len(), 1);

        // A creator that dies between staging and recording lets go of its lock.
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
        b.record(
            &e,
            &Event::Start {
                fox: me,
                supervisor: None,
            },
        )
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
