//! logs, stop, kill, rm, wait: commands that act on stored boxes (and how the others find
//! them).

use std::time::Duration;

use clap::Args;
use foxbox::boxes::exits::Exits;
use foxbox::boxes::{control, log, BoxEntry, BoxError, Boxes, Status};
use foxbox::diag::codes;

use super::ctx::{CmdResult, Ctx};
use super::fail::{Failure, OrFail};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow until the box exits.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines newer than this: a duration (10m) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    pub r#box: String,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Time to wait before SIGKILL: seconds or a duration (10s, 1m). Default: the box's stop
    /// timeout (`--stop-timeout`, `limits.stop_timeout`), else 10 seconds.
    #[arg(short, long)]
    pub time: Option<String>,
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove running boxes too.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

pub fn open(ctx: &Ctx) -> Result<Boxes, Failure> {
    let paths = ctx.paths()?;
    let boxes = Boxes::open(paths.boxes()).or_fail(codes::boxes::LOOKUP)?;
    // Trash the box store's own sweep could not delete (rootless: files of the box's ids).
    foxbox::runner::remove::sweep_trash(&paths, &boxes);
    Ok(boxes)
}

/// The box a user named, finished first if it died without recording it (its supervisor was
/// killed): a `--rm` one is then gone.
pub(super) fn find(ctx: &Ctx, boxes: &Boxes, what: &str) -> Result<BoxEntry, Failure> {
    find_settled(ctx, boxes, what)?
        .ok_or_else(|| BoxError::NotFound(what.to_string()))
        .or_fail(codes::boxes::LOOKUP)
}

/// [`find`]; `None` when the box was a `--rm` one that died, and is now removed.
fn find_settled(ctx: &Ctx, boxes: &Boxes, what: &str) -> Result<Option<BoxEntry>, Failure> {
    let id = boxes.resolve(what).or_fail(codes::boxes::LOOKUP)?;
    let e = boxes.load(&id).or_fail(codes::boxes::LOOKUP)?;
    if !e.died {
        return Ok(Some(e));
    }
    foxbox::runner::lifecycle::settle_dead(&ctx.paths()?, boxes, &e)
        .map_err(|e| match e {
            // Removed by another process meanwhile: named as the user named it.
            BoxError::NotFound(_) => BoxError::NotFound(what.to_string()),
            e => e,
        })
        .or_fail(codes::boxes::LOOKUP)
}

/// Run `f` for each named box; report failures as podman does (go on, exit 125 at the end).
fn each(ctx: &Ctx, names: &[String], mut f: impl FnMut(&str) -> Result<(), Failure>) -> CmdResult {
    let mut failed = false;
    for n in names {
        if let Err(e) = f(n) {
            super::ctx::err(&e.render(ctx.color_stderr()));
            failed = true;
        }
    }
    Ok(if failed { 125 } else { 0 })
}

pub fn logs(a: LogsArgs, ctx: &Ctx) -> CmdResult {
    let boxes = open(ctx)?;
    let e = find(ctx, &boxes, &a.r#box)?;
    let q = log::Query {
        since: a
            .since
            .as_deref()
            .map(|s| {
                log::parse_since(s, std::time::SystemTime::now())
                    .map_err(|e| failure!(codes::cli::USAGE, "{e}"))
            })
            .transpose()?,
        tail: a.tail,
        timestamps: a.timestamps,
    };
    let id = e.config.id.clone();
    let done = || {
        boxes
            .load(&id)
            .map(|b| b.state.status != Status::Running)
            .unwrap_or(true)
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    log::show(&e.log_path(), &q, a.follow, done, &mut out, &mut err).or_fail(codes::boxes::LOG)?;
    Ok(0)
}

fn parse_grace(s: &str) -> Result<Duration, Failure> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    humantime::parse_duration(s).map_err(|_| {
        failure!(
            codes::cli::USAGE,
            "--time {s:?}: expected seconds (10) or a duration (10s, 1m)"
        )
    })
}

pub fn stop(a: StopArgs, ctx: &Ctx) -> CmdResult {
    let boxes = open(ctx)?;
    let grace = a.time.as_deref().map(parse_grace).transpose()?;
    each(ctx, &a.boxes, |b| {
        let e = find(ctx, &boxes, b)?;
        let grace = grace.unwrap_or_else(|| e.config.stop_timeout());
        control::stop(&boxes, &e.config.id, grace).or_fail(codes::boxes::CONTROL)?;
        println!("{b}");
        Ok(())
    })
}

pub fn kill(a: KillArgs, ctx: &Ctx) -> CmdResult {
    let boxes = open(ctx)?;
    let sig = control::parse_signal(&a.signal).ok_or_else(|| {
        failure!(
            codes::cli::USAGE,
            help = "give a name (TERM, SIGHUP, SIGRTMIN+1) or a number (15)",
            "unknown signal {:?}",
            a.signal
        )
    })?;
    each(ctx, &a.boxes, |b| {
        let e = find(ctx, &boxes, b)?;
        if !control::signal(&e, sig).or_fail(codes::boxes::CONTROL)? {
            return Err(failure!(
                codes::boxes::NOT_RUNNING,
                "box {} is not running",
                e.config.name
            ));
        }
        println!("{b}");
        Ok(())
    })
}

pub fn rm(a: RmArgs, ctx: &Ctx) -> CmdResult {
    let boxes = open(ctx)?;
    let paths = ctx.paths()?;
    each(ctx, &a.boxes, |b| {
        let Some(e) = find_settled(ctx, &boxes, b)? else {
            // A dead `--rm` box, removed on the way as its supervisor would have.
            println!("{b}");
            return Ok(());
        };
        // Running, or still starting (a supervisor that has not exec'd the fox yet).
        if e.state.status == Status::Running || control::has_live_process(&e) {
            if !a.force {
                return Err(failure!(
                    codes::boxes::CONTROL,
                    help = "stop it first (foxbox stop), or use rm -f to kill it",
                    "box {} is running",
                    e.config.name
                ));
            }
            control::kill_all(&e, Duration::from_secs(10)).or_fail(codes::boxes::CONTROL)?;
        }
        foxbox::runner::remove::remove(&paths, &boxes, &e)
            .map_err(|e| match e {
                // Removed by another process meanwhile: named as the user named it.
                BoxError::NotFound(_) => BoxError::NotFound(b.to_string()),
                e => e,
            })
            .or_fail(codes::boxes::CONTROL)?;
        println!("{b}");
        Ok(())
    })
}

/// How long `wait` looks for the exit code of a `--rm` box that is gone: its caller's reaper
/// writes it once woken, moments after the box's record went.
const EXIT_PATIENCE: Duration = Duration::from_secs(3);

/// The exit code of box `id`, removed while `wait` waited on it. A supervisor keeps the code
/// before it removes a `--rm` box; a foreground run's reaper keeps it just after its caller
/// has exited, so for a `--rm` box it may take a moment to appear.
fn kept_exit(exits: &Exits, id: &str, auto_remove: bool) -> Option<i32> {
    let start = std::time::Instant::now();
    loop {
        if let Some(code) = exits.get(id) {
            return Some(code);
        }
        if !auto_remove || start.elapsed() >= EXIT_PATIENCE {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn looks_like_id(s: &str) -> bool {
    s.len() >= 12 && s.chars().all(|c| c.is_ascii_hexdigit())
}

pub fn wait(a: WaitArgs, ctx: &Ctx) -> CmdResult {
    let boxes = open(ctx)?;
    let exits = Exits::new(&ctx.paths()?.runtime);
    each(ctx, &a.boxes, |b| {
        let id = match boxes.resolve(b) {
            Ok(id) => id,
            // A `--rm` box already gone: its exit code, if it ended lately, by id (12 hex
            // digits at least, as `ps` shows them; a shorter word may be a name).
            Err(e @ BoxError::NotFound(_)) => {
                match looks_like_id(b).then(|| exits.get(b)).flatten() {
                    Some(code) => {
                        println!("{code}");
                        return Ok(());
                    }
                    None => return Err(e).or_fail(codes::boxes::CONTROL),
                }
            }
            Err(e) => return Err(e).or_fail(codes::boxes::CONTROL),
        };
        let auto_remove = boxes.load(&id).is_ok_and(|e| e.config.auto_remove);
        if auto_remove {
            // A foreground `run --rm` keeps its code only when asked.
            let _ = exits.want(&id);
        }
        let code = match control::wait_stopped(&boxes, &id, None).and_then(|_| boxes.load(&id)) {
            Ok(e) => e.state.exit_code.unwrap_or(-1),
            Err(BoxError::NotFound(_)) => kept_exit(&exits, &id, auto_remove).ok_or_else(|| {
                failure!(
                    codes::boxes::CONTROL,
                    "box {b} was removed before its exit code could be read"
                )
            })?,
            Err(e) => return Err(e).or_fail(codes::boxes::CONTROL),
        };
        println!("{code}");
        Ok(())
    })
}
