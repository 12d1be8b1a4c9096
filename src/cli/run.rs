use std::io::Write;

use foxbox::diag;
use foxbox::exec::{self, parent::Timing};
use foxbox::plan::Plan;
use foxbox::runner::{self, ReadyBox, RunError, RunOptions};
use foxbox::store::paths::Paths;

use super::ctx::{CmdResult, Ctx};
use super::fail::Failure;
use super::run_flags::{self, RunArgs};

pub fn run(a: RunArgs, ctx: &Ctx) -> CmdResult {
    if a.dry_run || a.emit_spec {
        return run_flags::dry_run(&a, ctx);
    }
    let plan = run_flags::plan_from_args(&a, ctx)?;
    let opts = RunOptions {
        auto_remove: a.rm,
        cgroup_parent: a.cgroup_parent.clone(),
        tty: if a.tty { Some(true) } else { None },
        pull: a.pull.into(),
        volatile_upper: false,
    };
    let mode = if a.detach {
        Mode::Detached
    } else {
        Mode::Attached { timings: a.timings }
    };
    start(&plan, opts, mode, ctx)
}

/// How a box runs: attached to this terminal, or in the background under its supervisor.
pub(super) enum Mode {
    /// Wait for it and exit with its code; `timings`: print how long each step took.
    Attached { timings: bool },
    /// Print its id once its fox runs.
    Detached,
}

/// Prepare the box (its warnings shown once), then run it as `mode` says: the exit code of
/// the fox, or 125/126/127 with a diagnostic for foxbox's own failures. Shared by `run` and
/// `up`, attached, detached and `--rm`.
pub(super) fn start(plan: &Plan, mut opts: RunOptions, mode: Mode, ctx: &Ctx) -> CmdResult {
    if let Mode::Detached = mode {
        // A detached box's terminal is its own choice, never the caller's stdin.
        opts.tty = Some(opts.tty.or(plan.process.tty).unwrap_or(false));
    }
    let paths = ctx.paths()?;
    let ready = runner::prepare(&paths, plan, &opts).map_err(|e| report(plan, e))?;
    if !ready.warnings.is_empty() {
        super::ctx::err(&diag::render(
            &ready.warnings,
            &plan.origin,
            ctx.color_stderr(),
        ));
    }
    match mode {
        Mode::Detached => detached(&paths, plan, &opts, ready, ctx),
        Mode::Attached { timings } => attached(&paths, plan, &opts, &ready, timings),
    }
}

/// Start the box under its supervisor: print its id once the fox runs, or the diagnostics
/// (and their exit code) when it could not start.
fn detached(
    paths: &Paths,
    plan: &Plan,
    opts: &RunOptions,
    ready: ReadyBox,
    ctx: &Ctx,
) -> CmdResult {
    let id = ready.id().to_string();
    let color = ctx.color_stderr();
    let render = |e: &RunError| diag::render(&e.diagnostics, &plan.origin, color);
    match runner::detach(paths, plan, opts, ready, &render) {
        Ok(runner::Detached::Started { .. }) => {
            super::ctx::out(&format!("{id}\n"));
            Ok(0)
        }
        Ok(runner::Detached::Failed { exit, text }) => {
            super::ctx::err(&text);
            Ok(exit)
        }
        Err(e) => Err(report(plan, e)),
    }
}

/// Run the box in the foreground and say why it ended when its limits ended it.
fn attached(
    paths: &Paths,
    plan: &Plan,
    opts: &RunOptions,
    ready: &ReadyBox,
    timings: bool,
) -> CmdResult {
    let ran = runner::run_attached(paths, opts, ready);
    if let Some(e) = &ran.not_removed {
        eprintln!("warning: could not remove box {}: {e}", ready.name());
    }
    let (outcome, steps) = ran.result.map_err(|e| report(plan, e))?;
    if timings {
        print_timings(ready.image_took, &steps);
    }
    if outcome.oom_killed {
        let what = if outcome.code == 128 + libc::SIGKILL {
            "box"
        } else {
            "a process of box"
        };
        eprintln!(
            "foxbox: {what} {} was killed by its memory limit (OOM)",
            ready.name()
        );
    } else if outcome.timed_out {
        eprintln!("foxbox: box {} was stopped by its timeout", ready.name());
    }
    Ok(outcome.code.clamp(0, 255) as u8)
}

/// A run error: its diagnostics against the spec, and its exit code.
pub(super) fn report(plan: &Plan, e: RunError) -> Failure {
    Failure::against(e.diagnostics, &plan.origin, e.exit)
}

fn print_timings(image: std::time::Duration, steps: &[Timing]) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let mut out = std::io::stderr().lock();
    let _ = writeln!(out, "{:<16} {:<7} {:>9}", "step", "side", "ms");
    let _ = writeln!(out, "{:<16} {:<7} {:>9.3}", "image", "parent", ms(image));
    for t in steps {
        let side = match t.side {
            exec::steps::Side::Parent => "parent",
            exec::steps::Side::Child => "child",
        };
        let _ = writeln!(out, "{:<16} {side:<7} {:>9.3}", t.name, ms(t.took));
    }
}
