//! A box's life as a state machine: the phases it goes through (staged → created → running →
//! exited → removed) and the events that move it, with the failure paths (a start that
//! failed, a supervisor or CLI killed, a box found dead by a sweep). Every change of a box's
//! recorded state is one [`Event`] checked against [`Phase::after`] and applied by
//! [`BoxState::apply`]: an event that does not fit the phase is an [`IllegalTransition`],
//! never a silent write. `Boxes::transition` is the one place a recorded state is
//! rewritten; `runner::lifecycle` is its one caller.

use serde::{Deserialize, Serialize};

use super::{now_ms, BoxError, Boxes, ProcId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, not (yet) started.
    Created,
    Running,
    Exited,
}

/// Where a box is in its life: its recorded [`Status`], and the phases around the record
/// (staged: a directory and a name, no record yet; removed: gone from the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Staged,
    Created,
    Running,
    Exited,
    Removed,
}

impl From<Status> for Phase {
    fn from(s: Status) -> Phase {
        match s {
            Status::Created => Phase::Created,
            Status::Running => Phase::Running,
            Status::Exited => Phase::Exited,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Staged => "staged",
            Phase::Created => "created",
            Phase::Running => "running",
            Phase::Exited => "exited",
            Phase::Removed => "removed",
        })
    }
}

/// What happens to a box.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Its record is written: staged → created.
    Record,
    /// A supervisor takes it over before it starts (`run -d`): created → created.
    Supervise { supervisor: Option<ProcId> },
    /// Its fox was exec'd: staged | created → running (a box recorded only once it runs is
    /// recorded with this).
    Start {
        fox: Option<ProcId>,
        supervisor: Option<ProcId>,
    },
    /// Its fox ended and foxbox saw how: created | running → exited (created: the start was
    /// never recorded, its record write failed).
    Exit {
        code: i32,
        oom_killed: bool,
        timed_out: bool,
        /// What went wrong on foxbox's side meanwhile (a supervisor that lost track of it).
        error: Option<String>,
    },
    /// foxbox failed it: its start, or following it (`exit` is foxbox's code, 125/126/127):
    /// staged | created | running → exited. Kept with the reason, as podman keeps a box that
    /// failed to start.
    Fail { exit: i32, reason: Option<String> },
    /// Found with no process left and no end recorded (its supervisor or creating CLI was
    /// killed): created | running → exited, its code unknown.
    Died,
    /// Taken out of the store: from any phase but removed (`rm -f` kills a running box
    /// first; a staged one is abandoned).
    Remove,
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Record => "record",
            Event::Supervise { .. } => "supervise",
            Event::Start { .. } => "start",
            Event::Exit { .. } => "exit",
            Event::Fail { .. } => "fail",
            Event::Died => "die",
            Event::Remove => "remove",
        }
    }
}

/// An event that does not fit the box's phase: nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a box that is {from} cannot {event}")]
pub struct IllegalTransition {
    pub from: Phase,
    pub event: &'static str,
}

impl Phase {
    /// The transition table: the phase `event` leads to from this one.
    pub fn after(self, event: &Event) -> Result<Phase, IllegalTransition> {
        use Phase::*;
        let to = match (self, event) {
            (Staged, Event::Record) => Some(Created),
            (Created, Event::Supervise { .. }) => Some(Created),
            (Staged | Created, Event::Start { .. }) => Some(Running),
            (Created | Running, Event::Exit { .. }) => Some(Exited),
            (Staged | Created | Running, Event::Fail { .. }) => Some(Exited),
            (Created | Running, Event::Died) => Some(Exited),
            (Staged | Created | Running | Exited, Event::Remove) => Some(Removed),
            _ => None,
        };
        to.ok_or(IllegalTransition {
            from: self,
            event: event.name(),
        })
    }
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

/// The reason recorded for a box whose creator and supervisor died before its fox started.
const DIED_BEFORE_START: &str = "foxbox died before the box started";

impl BoxState {
    /// A box just staged by `creator` (its state until something happens to it).
    pub(crate) fn created(creator: Option<ProcId>) -> BoxState {
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

    /// The state `event` leaves a box in that was in this state, in phase `from` (the
    /// recorded status, or staged for a box not recorded yet). Checked against the table
    /// first: an illegal event changes nothing.
    pub fn apply(&mut self, from: Phase, event: &Event) -> Result<Phase, IllegalTransition> {
        let to = from.after(event)?;
        match event {
            Event::Record | Event::Remove => {}
            Event::Supervise { supervisor } => self.supervisor = *supervisor,
            Event::Start { fox, supervisor } => {
                self.status = Status::Running;
                self.fox = *fox;
                self.started = Some(now_ms());
                if supervisor.is_some() {
                    self.supervisor = *supervisor;
                }
            }
            Event::Exit {
                code,
                oom_killed,
                timed_out,
                error,
            } => {
                self.status = Status::Exited;
                self.creator = None;
                self.finished = Some(now_ms());
                self.exit_code = Some(*code);
                self.oom_killed = *oom_killed;
                self.timed_out = *timed_out;
                if error.is_some() {
                    self.error.clone_from(error);
                }
            }
            Event::Fail { exit, reason } => {
                self.status = Status::Exited;
                self.creator = None;
                self.finished = Some(now_ms());
                self.exit_code = Some(*exit);
                self.error.clone_from(reason);
            }
            Event::Died => {
                self.mark_dead();
                self.creator = None;
            }
        }
        Ok(to)
    }

    /// Exited as a box whose every process is gone reads (its code unknown).
    fn mark_dead(&mut self) {
        if self.status == Status::Created {
            self.error
                .get_or_insert_with(|| DIED_BEFORE_START.to_string());
        }
        self.status = Status::Exited;
    }

    /// The state as it really is: a box recorded as created or running whose processes are
    /// all gone has exited (with an unknown code unless one was recorded): what
    /// [`Event::Died`] records.
    pub fn observed(&self) -> BoxState {
        let mut s = self.clone();
        let alive = |p: Option<ProcId>| p.is_some_and(|p| p.alive());
        let dead = match s.status {
            // A box whose creator and supervisor died before its fox started never will.
            Status::Created => !alive(s.creator) && !alive(s.supervisor),
            Status::Running => !alive(s.fox) && !alive(s.supervisor) && !alive(s.creator),
            Status::Exited => false,
        };
        if dead {
            s.mark_dead();
        }
        s
    }

    /// True while some process of the box may still run.
    pub fn is_running(&self) -> bool {
        self.observed().status == Status::Running
    }
}

impl Boxes {
    /// Move recorded box `id` on by `event`, under its lock: read, check against the table,
    /// write. An illegal event leaves the record as it was and is an error.
    pub(crate) fn transition(&self, id: &str, event: &Event) -> Result<BoxState, BoxError> {
        let _lock = self.lock(id)?;
        let config = self.read_config(id)?;
        let mut state = self.read_state(id, &config)?;
        state
            .apply(state.status.into(), event)
            .map_err(|e| BoxError::Transition {
                id: id.to_string(),
                source: e,
            })?;
        self.write_state(id, &state)?;
        Ok(state)
    }

    /// Record the end of a box that died without recording it (its supervisor or creating CLI
    /// was killed), as its state is observed: [`Event::Died`]. Returns the box when it had
    /// died, for its caller to release what it held (cgroup, runtime files); `None` when it
    /// had not (settled meanwhile by another process).
    pub(crate) fn record_death(&self, id: &str) -> Result<Option<super::BoxEntry>, BoxError> {
        let _lock = self.lock(id)?;
        let entry = match self.load(id)? {
            e if e.died => e,
            _ => return Ok(None),
        };
        let mut state = self.read_state(id, &entry.config)?;
        state
            .apply(state.status.into(), &Event::Died)
            .map_err(|e| BoxError::Transition {
                id: id.to_string(),
                source: e,
            })?;
        self.write_state(id, &state)?;
        Ok(Some(super::BoxEntry {
            died: false,
            state,
            ..entry
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_event() -> Vec<Event> {
        let p = ProcId::of(std::process::id() as i32);
        vec![
            Event::Record,
            Event::Supervise { supervisor: p },
            Event::Start {
                fox: p,
                supervisor: None,
            },
            Event::Exit {
                code: 3,
                oom_killed: false,
                timed_out: false,
                error: None,
            },
            Event::Fail {
                exit: 125,
                reason: Some("no".into()),
            },
            Event::Died,
            Event::Remove,
        ]
    }

    const ALL: [Phase; 5] = [
        Phase::Staged,
        Phase::Created,
        Phase::Running,
        Phase::Exited,
        Phase::Removed,
    ];

    /// The table, written out: (from, event name, to).
    const LEGAL: &[(Phase, &str, Phase)] = &[
        (Phase::Staged, "record", Phase::Created),
        (Phase::Staged, "start", Phase::Running),
        (Phase::Staged, "fail", Phase::Exited),
        (Phase::Staged, "remove", Phase::Removed),
        (Phase::Created, "supervise", Phase::Created),
        (Phase::Created, "start", Phase::Running),
        (Phase::Created, "exit", Phase::Exited),
        (Phase::Created, "fail", Phase::Exited),
        (Phase::Created, "die", Phase::Exited),
        (Phase::Created, "remove", Phase::Removed),
        (Phase::Running, "exit", Phase::Exited),
        (Phase::Running, "fail", Phase::Exited),
        (Phase::Running, "die", Phase::Exited),
        (Phase::Running, "remove", Phase::Removed),
        (Phase::Exited, "remove", Phase::Removed),
    ];

    #[test]
    fn the_transition_table_is_exactly_the_legal_list() {
        let mut legal = 0;
        for from in ALL {
            for ev in every_event() {
                let want = LEGAL
                    .iter()
                    .find(|(f, n, _)| *f == from && *n == ev.name())
                    .map(|(_, _, to)| *to);
                match (from.after(&ev), want) {
                    (Ok(to), Some(w)) => {
                        assert_eq!(to, w, "{from} + {}", ev.name());
                        legal += 1;
                    }
                    (Err(e), None) => {
                        assert_eq!(e.from, from);
                        assert_eq!(e.event, ev.name());
                    }
                    (got, w) => panic!("{from} + {}: got {got:?}, want {w:?}", ev.name()),
                }
            }
        }
        assert_eq!(legal, LEGAL.len());
    }

    #[test]
    fn nothing_leaves_removed_and_an_exited_box_never_runs_again() {
        for ev in every_event() {
            assert!(Phase::Removed.after(&ev).is_err(), "{}", ev.name());
        }
        let p = ProcId::of(std::process::id() as i32);
        for ev in [
            Event::Record,
            Event::Supervise { supervisor: p },
            Event::Start {
                fox: p,
                supervisor: p,
            },
            Event::Died,
        ] {
            assert!(Phase::Exited.after(&ev).is_err(), "{}", ev.name());
        }
    }

    #[test]
    fn an_illegal_event_changes_nothing() {
        let me = ProcId::of(std::process::id() as i32);
        let mut s = BoxState::created(me);
        s.apply(
            Phase::Created,
            &Event::Exit {
                code: 1,
                oom_killed: true,
                timed_out: false,
                error: None,
            },
        )
        .unwrap();
        let before = s.clone();
        let err = s
            .apply(
                Phase::Exited,
                &Event::Start {
                    fox: me,
                    supervisor: None,
                },
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "a box that is exited cannot start");
        assert_eq!(s, before);
    }

    #[test]
    fn each_event_writes_what_it_says() {
        let me = ProcId::of(std::process::id() as i32);
        let mut s = BoxState::created(me);
        s.apply(
            Phase::Staged,
            &Event::Start {
                fox: me,
                supervisor: None,
            },
        )
        .unwrap();
        assert_eq!((s.status, s.fox, s.creator), (Status::Running, me, me));
        assert!(s.started.is_some());
        s.apply(
            Phase::Running,
            &Event::Exit {
                code: 137,
                oom_killed: true,
                timed_out: false,
                error: Some("lost".into()),
            },
        )
        .unwrap();
        assert_eq!(s.status, Status::Exited);
        assert_eq!(
            (s.exit_code, s.oom_killed, s.creator),
            (Some(137), true, None)
        );
        assert_eq!(s.error.as_deref(), Some("lost"));
        assert!(s.finished.is_some());

        let mut f = BoxState::created(me);
        f.apply(
            Phase::Created,
            &Event::Fail {
                exit: 127,
                reason: Some("not found".into()),
            },
        )
        .unwrap();
        assert_eq!((f.status, f.exit_code), (Status::Exited, Some(127)));
        assert_eq!(f.error.as_deref(), Some("not found"));

        let mut d = BoxState::created(me);
        d.apply(Phase::Created, &Event::Died).unwrap();
        assert_eq!(
            (d.status, d.creator, d.exit_code),
            (Status::Exited, None, None)
        );
        assert_eq!(d.error.as_deref(), Some(DIED_BEFORE_START));
    }

    #[test]
    fn a_dead_box_is_recorded_dead_once_and_an_exited_one_never() {
        let t = tempfile::tempdir().unwrap();
        let b = Boxes::open(t.path().join("boxes")).unwrap();
        let mut cfg = crate::boxes::record::tests::config();
        cfg.name = "dead".into();
        let e = b.create(cfg).unwrap();
        let id = e.config.id.clone();
        let dead = Some(ProcId {
            pid: i32::MAX,
            start_time: 1,
        });
        b.update_state(&id, |s| {
            s.status = Status::Running;
            s.creator = None;
            s.fox = dead;
        })
        .unwrap();
        let died = b.record_death(&id).unwrap().expect("it had died");
        assert_eq!(
            (died.state.status, died.state.exit_code),
            (Status::Exited, None)
        );
        assert!(!died.died);
        assert!(b.record_death(&id).unwrap().is_none(), "settled once");
        // Exited is final: a late start or supervisor is refused and writes nothing.
        for ev in [
            Event::Start {
                fox: dead,
                supervisor: None,
            },
            Event::Supervise { supervisor: dead },
        ] {
            assert!(matches!(
                b.transition(&id, &ev),
                Err(BoxError::Transition { .. })
            ));
        }
        assert_eq!(b.load(&id).unwrap().state, died.state);
    }

    #[test]
    fn a_dead_box_is_observed_as_died_would_record_it() {
        let dead = Some(ProcId {
            pid: i32::MAX,
            start_time: 1,
        });
        let s = BoxState::created(dead);
        let mut d = s.clone();
        d.apply(Phase::Created, &Event::Died).unwrap();
        let o = s.observed();
        assert_eq!((o.status, &o.error), (d.status, &d.error));
    }
}
