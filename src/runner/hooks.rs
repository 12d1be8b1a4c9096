//! The executor's parent-side hooks for one box: its cgroup, its network helper, and the
//! moment its fox starts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::boxes::{Event, ProcId};
use crate::exec::{Helpers, StepError};
use crate::net::{self, NetGuard};
use crate::plan::Plan;

use super::lifecycle::FirstRecord;
use super::ReadyBox;

/// Writing the start record; a first record that failed gives back the hold on its box.
type Job = Box<dyn FnOnce() -> FirstRecord + Send>;

pub struct BoxHooks<'a> {
    ready: &'a ReadyBox,
    run_dir: PathBuf,
    /// Record the start in the box's state (a supervisor records its own pid beside it).
    record: bool,
    supervisor: Option<ProcId>,
    net: Option<NetGuard>,
    pub started_pid: Option<i32>,
    /// Record the start on a thread of its own (see [`BoxHooks::in_background`]).
    background: bool,
    /// That thread; if it could not write the box's first record, it gives back the hold on
    /// the box.
    recording: Option<std::thread::JoinHandle<FirstRecord>>,
    /// Fork a [`super::remove::Reaper`] for the box once it is recorded.
    reaper_for: Option<crate::store::paths::Paths>,
}

impl<'a> BoxHooks<'a> {
    pub fn new(ready: &'a ReadyBox, run_dir: PathBuf, record: bool) -> Self {
        BoxHooks {
            ready,
            run_dir,
            record,
            supervisor: None,
            net: None,
            started_pid: None,
            background: false,
            recording: None,
            reaper_for: None,
        }
    }

    /// The box is removed when it exits (`--rm`): fork a reaper for it (see
    /// [`super::remove::Reaper`]). Only for a caller that removes it with
    /// [`super::remove::remove_on_exit`].
    pub fn with_reaper(mut self, paths: &crate::store::paths::Paths) -> Self {
        self.reaper_for = Some(paths.clone());
        self
    }

    /// Write the start record on a thread while the fox runs: its fsync is the slowest part of
    /// a short box's start. Only for a caller that forks no more until [`BoxHooks::finish`]
    /// (a process with threads must not fork). The state says "running" only once the fox
    /// has been exec'd either way.
    ///
    /// A box not recorded yet (one that makes nothing outside its directory) is then recorded
    /// only there, together with its running state: one write instead of two, and none while
    /// the set-up process mounts the box's root on the same filesystem (their metadata writes
    /// would wait on each other).
    pub fn in_background(mut self) -> Self {
        self.background = true;
        self
    }

    /// Wait for the start record to be written (before the exit is recorded over it). A box
    /// whose record could not be written stays unrecorded: the caller removes it.
    pub fn finish(&mut self) {
        if let Some(h) = self.recording.take() {
            match h.join() {
                Ok(r) => self.first_record_done(r),
                Err(_) => tracing::warn!("recording box {} failed", self.ready.id()),
            }
        }
    }

    /// What writing the start record came to: a box whose first record could not be written
    /// is held (staged) again, for its caller to remove.
    fn first_record_done(&self, r: FirstRecord) {
        if let Err((e, hold)) = r {
            self.ready.life.hold_again(hold);
            tracing::warn!("could not record box {}: {e}", self.ready.id());
        }
    }

    /// Fork the box's reaper, if it has one and it is not forked yet.
    fn spawn_reaper(&self) {
        if let Some(paths) = &self.reaper_for {
            super::remove::Reaper::spawn(paths, self.ready.life.boxes(), self.ready.id());
        }
    }

    /// The record waits for the start (see [`BoxHooks::in_background`]).
    fn record_at_start(&self) -> bool {
        self.background && self.record && !self.ready.life.is_recorded()
    }

    /// Record `sup` as the box's supervisor when the fox starts.
    pub fn with_supervisor(mut self, sup: Option<ProcId>) -> Self {
        self.supervisor = sup;
        self
    }

    /// Hand over the network helper (a supervisor keeps it while the box lives, after
    /// dropping everything else the start needed).
    pub fn take_network(&mut self) -> Option<NetGuard> {
        self.net.take()
    }

    /// Stop the network helper (the box is gone).
    pub fn stop_network(&mut self) {
        if let Some(g) = self.net.take() {
            g.stop();
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

impl Helpers for BoxHooks<'_> {
    fn cgroup(&mut self, _plan: &Plan, pid: i32) -> Result<(), StepError> {
        match &self.ready.cgroup {
            Some(cg) => cg.place(pid).map_err(|e| {
                let err = StepError::new(e.errno().unwrap_or(0), e.to_string());
                match e.help() {
                    Some(h) => err.with_hint(h),
                    None => err,
                }
            }),
            // Limits that could not be enforced were refused, or warned about under
            // best-effort, before the box was made.
            None => Ok(()),
        }
    }

    fn network(&mut self, plan: &Plan, pid: i32) -> Result<(), StepError> {
        std::fs::create_dir_all(&self.run_dir).map_err(|e| {
            StepError::new(
                e.raw_os_error().unwrap_or(0),
                format!("cannot create {}: {e}", self.run_dir.display()),
            )
        })?;
        let guard = net::start(&plan.network, pid as u32, &self.run_dir)
            .map_err(|e| StepError::msg(e.to_string()))?;
        self.net = Some(guard);
        crate::store::fault::point("start.after-network");
        Ok(())
    }

    fn released(&mut self, _pid: i32) -> Result<(), StepError> {
        if !self.record_at_start() {
            self.ready
                .life
                .record()
                .map_err(|e| StepError::msg(e.to_string()))?;
            // Recorded: from here on a caller killed must not leave the box behind.
            self.spawn_reaper();
        }
        Ok(())
    }

    fn started(&mut self, pid: i32) {
        self.started_pid = Some(pid);
        // A box recorded only now gets its reaper now: still single-threaded here (the
        // record's thread comes next), and idle while the fox runs. Earlier, the fork would
        // take the CPU the set-up process's namespace maker runs on; a box whose caller dies
        // before this never ran, and is reaped as an abandoned staging.
        self.spawn_reaper();
        if !self.record {
            return;
        }
        // Read now, while the fox surely lives: a short one may be gone by the time the
        // record is written.
        let fox = ProcId::of(pid);
        let sup = self.supervisor;
        crate::store::fault::point("start.before-running");
        let start = Event::Start {
            fox,
            supervisor: sup,
        };
        let job: Job = if self.record_at_start() {
            let record = self.ready.life.first_record();
            Box::new(move || {
                let r = record(start);
                crate::store::fault::point("start.after-running");
                r
            })
        } else {
            let life = self.ready.life.handle();
            Box::new(move || {
                let _ = life.apply(&start);
                crate::store::fault::point("start.after-running");
                Ok(())
            })
        };
        if !self.background {
            let r = job();
            self.first_record_done(r);
            return;
        }
        // The job may own the hold on an unrecorded box: should no thread start, it runs
        // here rather than being dropped with it.
        let slot = Arc::new(Mutex::new(Some(job)));
        let theirs = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("record-start".into())
            // It reads and writes small files: a small stack is mapped faster.
            .stack_size(256 << 10)
            .spawn(
                move || match theirs.lock().ok().and_then(|mut j| j.take()) {
                    Some(job) => job(),
                    None => Ok(()),
                },
            );
        match spawned {
            Ok(h) => self.recording = Some(h),
            Err(_) => {
                if let Some(job) = slot.lock().ok().and_then(|mut j| j.take()) {
                    let r = job();
                    self.first_record_done(r);
                }
            }
        }
    }
}
