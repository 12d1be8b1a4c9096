use clap::Args;

use std::io::Write;

use foxbox::diag;
use foxbox::exec::{self, parent::Timing};
use foxbox::plan::Plan;
use foxbox::runner::{self, ReadyBox, RunError, RunOptions};
use foxbox::store::paths::Paths;

use super::{run_flags, CmdResult, Ctx, Failure};

/// podman's `run` flags. They build the same spec values a Foxbox.toml does (one code path).
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Name of the box.
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from the caller).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file: KEY=VALUE lines (or KEY to copy the caller's),
    /// `#` comments; `-e` wins over the file.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// podman's `keep-id[:uid=N,gid=N]`: your uid (or N) is the same in the box, your
    /// subordinate range around it, and the box runs as it unless -u says otherwise.
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// Run this program instead of the image's entrypoint (a JSON array for several words;
    /// '' clears it). As podman's, it drops the image's command: the command after the image
    /// gives its arguments.
    #[arg(long, value_name = "PROGRAM|JSON")]
    pub entrypoint: Option<String>,
    /// Working directory inside the box.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: uid[:gid] or a name from the box's /etc/passwd.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Hostname inside the box.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Bind mount or volume: SRC:DST[:OPTS] (SRC a host path or a volume name); OPTS: ro, rw,
    /// U (chown SRC to the box user), O (an overlay: writes stay in the box), z/Z (accepted).
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:OPTS]")]
    pub volume: Vec<String>,
    /// tmpfs mount: DST[:size=64m,mode=1777,exec]; noexec, nosuid, nodev unless `exec`, as podman's.
    #[arg(long, value_name = "DST[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit (at least --memory; default: no swap).
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// CPU limit in cores (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Limit on the number of processes.
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<String>,
    /// Wall-clock limit: seconds (30, as podman's) or a duration (30s, 1m30s).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Time between SIGTERM and SIGKILL when the box is stopped by its timeout or by `stop`:
    /// seconds (10, the default) or a duration (1m).
    #[arg(long = "stop-timeout", value_name = "TIME")]
    pub stop_timeout: Option<String>,
    /// Add a capability (a non-root user gets only the added ones).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (ALL for all).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Security options: seccomp=default|unconfined|PROFILE.json, no-new-privileges.
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Network mode: none, host, pasta, slirp4netns.
    #[arg(long)]
    pub network: Option<String>,
    /// Publish a port: [host_ip:][host_port:]box_port[/tcp|udp], ports or ranges (8000-8010:8000-8010);
    /// no host port: any free one. Without --network it uses pasta.
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,
    /// Make the root filesystem read-only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Remove the box when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the box id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run a tiny init as pid 1 that reaps zombies and forwards signals.
    #[arg(long)]
    pub init: bool,
    /// Print how long each executor step took.
    #[arg(long)]
    pub timings: bool,
    /// Run nothing: print the plan (`--format`: human, json, or toml, the Foxbox.toml that
    /// makes the same plan).
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: human, json or toml.
    #[arg(long, value_enum, default_value_t = DryRunFormat::Human, requires = "dry_run")]
    pub format: DryRunFormat,
    /// Run nothing: print the Foxbox.toml that makes the same plan (as --dry-run --format toml).
    #[arg(long)]
    pub emit_spec: bool,
    /// Parent cgroup for the box, relative to each hierarchy's root.
    #[arg(long, env = "FOXBOX_CGROUP_PARENT", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// When to pull the image: missing (when not stored), always, never, or newer (pull, but
    /// use the stored image when the pull fails).
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = super::Pull::Missing)]
    pub pull: super::Pull,
    /// Image: a stored name[:tag][@sha256:...] or a path to a .tar/.tar.gz rootfs.
    pub image: String,
    /// Command and arguments, after the image's entrypoint (default: the image's command).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `run --dry-run --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DryRunFormat {
    #[default]
    Human,
    Json,
    Toml,
}

impl RunArgs {
    /// Paths on the command line are relative to the caller's working directory.
    pub fn base_dir() -> std::path::PathBuf {
        std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("/"))
    }
}

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
        super::err(&diag::render(
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
            super::out(&format!("{id}\n"));
            Ok(0)
        }
        Ok(runner::Detached::Failed { exit, text }) => {
            super::err(&text);
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
