//! One box's life, from its staging to its removal: the runner's one handle on a box's
//! record. Every change goes through a transition method here, which moves the box by an
//! [`Event`] of the box store's transition table ([`crate::boxes::state`]): staged → created
//! → running → exited → removed, and the failure paths (a start that failed, a supervisor or
//! CLI killed, a box a sweep found dead). An event that does not fit the box's phase is an
//! error and writes nothing. Attached (`run`, `up`, a build step), detached (`run -d`, under
//! its supervisor) and `--rm` boxes all go through the same methods.

use crate::boxes::{BoxConfig, BoxEntry, BoxError, BoxState, Boxes, Event, Lock, Pending, ProcId};
use crate::cgroup::BoxCgroup;
use crate::image::Store;
use crate::store::paths::Paths;
use crate::volume::Volumes;

use super::{box_run_dir, remove, RunError};

/// How a box ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The shell-style code: the fox's own, 128+N for signal N.
    pub code: i32,
    pub oom_killed: bool,
    pub timed_out: bool,
}

impl Outcome {
    /// How the box ended, its cgroup asked about an OOM kill and then destroyed (an exited
    /// box holds no cgroup).
    pub fn collect(cgroup: Option<&BoxCgroup>, code: i32, timed_out: bool) -> Outcome {
        // Any of its processes, as podman reports it: a shell whose child the limit killed
        // ends with a code of its own.
        let oom_killed = cgroup.is_some_and(|cg| cg.oom_kills().ok().flatten().unwrap_or(0) > 0);
        if let Some(cg) = cgroup {
            let _ = cg.destroy();
        }
        Outcome {
            code,
            oom_killed,
            timed_out,
        }
    }

    fn event(&self, error: Option<String>) -> Event {
        Event::Exit {
            code: self.code,
            oom_killed: self.oom_killed,
            timed_out: self.timed_out,
            error,
        }
    }
}

/// What a start that failed records: foxbox's exit code for it and its first diagnostic.
fn failure(e: &RunError) -> Event {
    Event::Fail {
        exit: e.exit as i32,
        reason: e.diagnostics.first().map(|d| d.message.clone()),
    }
}

/// How writing a box's first record went on another thread: on failure, the hold on the
/// box, to give back with [`BoxLife::hold_again`].
pub type FirstRecord = Result<(), (BoxError, Option<Lock>)>;

/// A box from its staging on: its record, and the hold on it while it is not recorded yet.
pub struct BoxLife {
    boxes: Boxes,
    entry: BoxEntry,
    /// Held until the box is recorded: a staged box nobody holds was abandoned.
    pending: Pending,
}

impl BoxLife {
    /// Stage a box: its directory and name, no record yet. Invisible until recorded, and
    /// reaped as abandoned should this process die first.
    pub fn stage(boxes: Boxes, config: BoxConfig) -> Result<BoxLife, BoxError> {
        let (entry, pending) = boxes.stage(config)?;
        Ok(BoxLife {
            boxes,
            entry,
            pending,
        })
    }

    pub fn id(&self) -> &str {
        &self.entry.config.id
    }

    /// The box as staged (its config is fixed; its state is the one it was staged with).
    pub fn entry(&self) -> &BoxEntry {
        &self.entry
    }

    pub fn boxes(&self) -> &Boxes {
        &self.boxes
    }

    /// True once the box is on record.
    pub fn is_recorded(&self) -> bool {
        !self.pending.is_pending()
    }

    /// Staged → created: write the box's record, if that is still to do.
    pub fn record(&self) -> Result<(), BoxError> {
        if self.is_recorded() {
            return Ok(());
        }
        self.boxes.record(&self.entry, &Event::Record)?;
        drop(self.pending.take_hold());
        Ok(())
    }

    /// The first record of a box not recorded yet, with the event it has reached (it runs:
    /// staged → running; or it failed to start: staged → exited), in one write, then let go
    /// of the box. What this returns may run on another thread; on failure it gives back the
    /// hold on the box, for [`BoxLife::hold_again`].
    pub fn first_record(&self) -> impl FnOnce(Event) -> FirstRecord + Send {
        let boxes = self.boxes.clone();
        let entry = self.entry.clone();
        let hold = self.pending.take_hold();
        move |event| match boxes.record(&entry, &event) {
            Ok(()) => Ok(()),
            Err(e) => Err((e, hold)),
        }
    }

    /// The first record was not written: the box is held (staged) again.
    pub fn hold_again(&self, hold: Option<Lock>) {
        if let Some(l) = hold {
            self.pending.hold_again(l);
        }
    }

    /// A handle that moves this (recorded) box on from another thread.
    pub fn handle(&self) -> LifeHandle {
        LifeHandle::of(self.boxes.clone(), self.id())
    }

    /// Created → created: a supervisor takes the box over. An error when the box is gone or
    /// ended meanwhile (a sweep found its creator dead): it must not start then.
    pub fn supervised(&self, supervisor: Option<ProcId>) -> Result<BoxState, BoxError> {
        self.handle().apply(&Event::Supervise { supervisor })
    }

    /// Created → running: its fox was exec'd.
    pub fn started(
        &self,
        fox: Option<ProcId>,
        supervisor: Option<ProcId>,
    ) -> Result<BoxState, BoxError> {
        self.handle().apply(&Event::Start { fox, supervisor })
    }

    /// Running (or created, its start never recorded) → exited, as `outcome` says (`error`: what went wrong on foxbox's side).
    pub fn exited(&self, outcome: &Outcome, error: Option<String>) -> Result<BoxState, BoxError> {
        self.handle().apply(&outcome.event(error))
    }

    /// The box failed to start (or foxbox lost it): recorded as exited with the reason, as
    /// podman keeps such a box. A box not recorded yet is recorded so, unless `keep` is false
    /// (`--rm`: it is discarded instead).
    pub fn failed(&self, e: &RunError, keep: bool) {
        if self.is_recorded() {
            let _ = self.handle().apply(&failure(e));
        } else if keep {
            if let Err((_, hold)) = self.first_record()(failure(e)) {
                self.hold_again(hold);
            }
        }
    }

    /// Remove the box after a failed start: all of it once recorded, else what was staged
    /// (staged → removed).
    pub fn discard(&self, paths: &Paths) {
        if self.is_recorded() {
            let _ = self.remove(paths);
            return;
        }
        let id = self.id();
        let store = Store::open_for_boxes(paths).ok();
        if let (Some(store), Some(image)) = (&store, &self.entry.config.image_id) {
            store.remove_user(image, id);
        }
        if !self.entry.config.volumes.is_empty() {
            if let Ok(vols) = Volumes::open(paths.volumes(), paths.boxes()) {
                for v in &self.entry.config.volumes {
                    vols.remove_user(v, id);
                }
            }
        }
        self.boxes.abandon(&self.entry, &self.pending);
        if let (true, Some(store)) = (self.entry.dir.exists(), &store) {
            // Files of the box's subordinate ids (its fox ran, then its record failed).
            let _ = store.remove_tree(&self.entry.dir);
        }
    }

    /// → removed: the box and all it holds, its files deleted before this returns.
    pub fn remove(&self, paths: &Paths) -> Result<(), BoxError> {
        remove::remove(paths, &self.boxes, &self.entry)
    }

    /// → removed, as `run --rm` removes a box that exited: gone for everyone at once, its
    /// files deleted in the background ([`remove::remove_on_exit`]). Its record is the one
    /// written at the start (a box's config never changes): nothing is read back. Should
    /// the removal fail, the box stays, recorded with how it ended, and this says why.
    pub fn remove_on_exit(&self, paths: &Paths, outcome: Option<&Outcome>) -> Result<(), BoxError> {
        if let Some(o) = outcome {
            remove::keep_exit_code(paths, self.id(), o.code);
        }
        remove::remove_on_exit(paths, &self.boxes, &self.entry).inspect_err(|_| {
            if let Some(o) = outcome {
                let _ = self.exited(o, None);
            }
        })
    }
}

/// A recorded box, moved on from a thread or process that does not own its [`BoxLife`].
#[derive(Debug, Clone)]
pub struct LifeHandle {
    boxes: Boxes,
    id: String,
}

impl LifeHandle {
    /// The handle of recorded box `id`.
    pub fn of(boxes: Boxes, id: &str) -> LifeHandle {
        LifeHandle {
            boxes,
            id: id.to_string(),
        }
    }

    /// Move the box on by `event` (checked against the transition table).
    pub fn apply(&self, event: &Event) -> Result<BoxState, BoxError> {
        self.boxes.transition(&self.id, event)
    }
}

/// Finish what a box that died without recording it (its supervisor or creating CLI killed)
/// would have done: record its end (created | running → exited) and let go of what it held,
/// or remove it if it was to be removed on exit. Returns the box as it is then, `None` once
/// this removed it (a box another process removed meanwhile is not found).
pub fn settle_dead(
    paths: &Paths,
    boxes: &Boxes,
    e: &BoxEntry,
) -> Result<Option<BoxEntry>, BoxError> {
    match boxes.record_death(&e.config.id)? {
        Some(e) if e.config.auto_remove => {
            remove::remove(paths, boxes, &e)?;
            Ok(None)
        }
        Some(e) => {
            free_leftovers(paths, boxes, &e);
            Ok(Some(e))
        }
        // Settled meanwhile by another process.
        None => boxes.load(&e.config.id).map(Some),
    }
}

/// Let go of what a box that does not run still holds: its cgroup, runtime files and the
/// temporary files of record writes that were interrupted.
pub fn free_leftovers(paths: &Paths, boxes: &Boxes, e: &BoxEntry) {
    if let Ok(Some(cg)) = super::cgroup_record::recorded(e) {
        let _ = cg.destroy();
    }
    let _ = std::fs::remove_dir_all(box_run_dir(paths, &e.config.id));
    boxes.sweep_temp_files(&e.config.id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::{Phase, Status};

    fn staged() -> (tempfile::TempDir, BoxLife) {
        let t = tempfile::tempdir().unwrap();
        let boxes = Boxes::open(t.path().join("boxes")).unwrap();
        let life = BoxLife::stage(boxes, crate::boxes::record::tests::config()).unwrap();
        (t, life)
    }

    fn status(life: &BoxLife) -> Status {
        life.boxes().load(life.id()).unwrap().state.status
    }

    fn outcome(code: i32) -> Outcome {
        Outcome {
            code,
            oom_killed: false,
            timed_out: false,
        }
    }

    #[test]
    fn created_running_exited_then_nothing_more_is_written() {
        let (_t, life) = staged();
        assert!(!life.is_recorded());
        assert!(
            matches!(life.boxes().load(life.id()), Err(BoxError::NotFound(_))),
            "a staged box has no record"
        );
        life.record().unwrap();
        assert!(life.is_recorded());
        assert_eq!(status(&life), Status::Created);
        let me = ProcId::of(std::process::id() as i32);
        life.started(me, None).unwrap();
        assert_eq!(status(&life), Status::Running);
        life.exited(&outcome(7), None).unwrap();
        let e = life.boxes().load(life.id()).unwrap();
        assert_eq!(
            (e.state.status, e.state.exit_code),
            (Status::Exited, Some(7))
        );

        // An exited box neither starts again nor exits twice nor gets a supervisor: the
        // record stays as it was.
        let record = std::fs::read(e.dir.join("state.json")).unwrap();
        for err in [
            life.started(me, None).unwrap_err(),
            life.exited(&outcome(0), None).unwrap_err(),
            life.supervised(me).unwrap_err(),
        ] {
            assert!(
                matches!(
                    err,
                    BoxError::Transition {
                        source: crate::boxes::IllegalTransition {
                            from: Phase::Exited,
                            ..
                        },
                        ..
                    }
                ),
                "{err}"
            );
        }
        assert_eq!(std::fs::read(e.dir.join("state.json")).unwrap(), record);
    }

    #[test]
    fn a_box_first_recorded_running_or_failed_is_recorded_once_in_that_state() {
        let (_t, life) = staged();
        let me = ProcId::of(std::process::id() as i32);
        life.first_record()(Event::Start {
            fox: me,
            supervisor: None,
        })
        .unwrap();
        assert_eq!(status(&life), Status::Running);

        let (_t2, failed) = staged();
        let e = RunError::new("foxbox::test", "cannot start");
        failed.failed(&e, true);
        let got = failed.boxes().load(failed.id()).unwrap().state;
        assert_eq!(got.status, Status::Exited);
        assert_eq!(got.exit_code, Some(125));
        assert_eq!(got.error.as_deref(), Some("cannot start"));

        // `--rm`: a failed start is not kept.
        let (_t3, gone) = staged();
        gone.failed(&e, false);
        assert!(matches!(
            gone.boxes().load(gone.id()),
            Err(BoxError::NotFound(_))
        ));
    }

    #[test]
    fn a_staged_box_cannot_exit_and_its_hold_comes_back() {
        let (_t, life) = staged();
        let r = life.first_record()(outcome(0).event(None));
        let Err((BoxError::Transition { source, .. }, hold)) = r else {
            panic!("a staged box exited: {r:?}");
        };
        assert_eq!(source.from, Phase::Staged);
        life.hold_again(hold);
        assert!(!life.is_recorded(), "still held: not reaped as abandoned");
        assert!(life.boxes().abandoned().is_empty());
    }
}
