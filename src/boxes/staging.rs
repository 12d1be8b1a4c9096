//! Making a box in two steps, so that a crash never leaves half a box on record: staging
//! makes its directory, holds an flock on it and reserves its name; recording writes its
//! `config.json` and lets go. A staged directory whose lock nobody holds was left by a crash
//! and is reaped when met.

use std::cell::Cell;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::layout::CONFIG;
use super::lock::lock_file;
use super::record::write_json;
use super::state::{Event, Phase};
use super::{
    io_err, names, now_ms, remove_box_tree, BoxConfig, BoxEntry, BoxError, BoxState, Boxes, Lock,
    ProcId,
};
use crate::store::lock::Mode;

/// The hold on a box that is staged but not yet recorded (see `Boxes::stage`).
pub struct Pending {
    /// Held until the record is written: a staged directory nobody holds was abandoned.
    lock: Cell<Option<Lock>>,
}

impl Pending {
    /// Hand the hold on the box to whoever writes its record (on another thread): it lets go
    /// once the record is written, or gives the hold back with [`Pending::hold_again`].
    pub(crate) fn take_hold(&self) -> Option<Lock> {
        self.lock.take()
    }

    /// The hold taken by [`Pending::take_hold`], back: the record was not written.
    pub(crate) fn hold_again(&self, lock: Lock) {
        self.lock.set(Some(lock));
    }

    /// True until the hold is let go (once `Boxes::record` wrote the record) or
    /// `Boxes::abandon`.
    pub fn is_pending(&self) -> bool {
        let l = self.lock.take();
        let pending = l.is_some();
        self.lock.set(l);
        pending
    }
}

/// getrandom(2) failed (box ids and generated names need it).
pub(super) fn no_random(e: io::Error) -> BoxError {
    io_err("cannot get random bytes from", Path::new("getrandom(2)"))(e)
}

impl Boxes {
    /// Create a box: stage it, then record it as created. A name already held by an
    /// existing box is an error and leaves nothing behind.
    pub fn create(&self, config: BoxConfig) -> Result<BoxEntry, BoxError> {
        let (entry, pending) = self.stage(config)?;
        self.record(&entry, &Event::Record)?;
        drop(pending.take_hold());
        Ok(entry)
    }

    /// Make the box's directory and reserve its name, without a record yet: the box is
    /// invisible until `Boxes::record`, and is removed as abandoned if this process dies
    /// first. A name held by an existing box is an error and leaves nothing behind.
    pub(crate) fn stage(&self, mut config: BoxConfig) -> Result<(BoxEntry, Pending), BoxError> {
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
                    lock: Cell::new(Some(lock)),
                },
            )),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                let _ = fs::remove_dir(&made);
                Err(e)
            }
        }
    }

    /// Write a staged box's record, with the state `event` leads it to (checked against
    /// the transition table from [`Phase::Staged`]): a box that already runs, or failed to
    /// start, is recorded so in one write where a record and a state change would be two.
    /// The caller holds the staging lock (taken with [`Pending::take_hold`] when this runs
    /// on another thread) and lets go of it once this returned Ok.
    pub(crate) fn record(&self, entry: &BoxEntry, event: &Event) -> Result<(), BoxError> {
        let mut state = BoxState::created(entry.config.creator);
        state
            .apply(Phase::Staged, event)
            .map_err(|e| BoxError::Transition {
                id: entry.config.id.clone(),
                source: e,
            })?;
        let mut config = entry.config.clone();
        // A box recorded as created reads as created by its creator: nothing more to say.
        config.initial = (*event != Event::Record).then_some(state);
        write_json(&entry.dir.join(CONFIG), &config)?;
        crate::store::fault::point("start.recorded");
        Ok(())
    }

    /// Undo a staging: the directory and the name go.
    pub(crate) fn abandon(&self, entry: &BoxEntry, pending: &Pending) {
        let _ = self.release_name(&entry.config.name, &entry.config.id);
        remove_box_tree(&entry.dir);
        pending.lock.take();
    }

    /// A staged box whose creator died before recording it: remove it (true) unless it is
    /// recorded or its creator still holds it.
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
}
