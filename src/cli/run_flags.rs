//! `foxbox run` flags ([`RunArgs`]) → the library's [`RunFlags`] → the same resolver a spec
//! goes through.
//!
//! The `run` command calls [`plan_from_args`] and gets the plan, or the failure to render.

use clap::Args;

use foxbox::diag::{self, codes, RenderOptions, Source};
use foxbox::plan::Plan;
use foxbox::spec::flags::{check_run_flags, parse_env_file, RunFlags};

use super::ctx::{CmdResult, Ctx};
use super::fail::Failure;

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
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = super::ctx::Pull::Missing)]
    pub pull: super::ctx::Pull,
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

impl From<&RunArgs> for RunFlags {
    fn from(a: &RunArgs) -> RunFlags {
        RunFlags {
            name: a.name.clone(),
            env: a.env.clone(),
            workdir: a.workdir.clone(),
            user: a.user.clone(),
            hostname: a.hostname.clone(),
            volume: a.volume.clone(),
            tmpfs: a.tmpfs.clone(),
            memory: a.memory.clone(),
            memory_swap: a.memory_swap.clone(),
            cpus: a.cpus.clone(),
            pids_limit: a.pids_limit.clone(),
            timeout: a.timeout.clone(),
            stop_timeout: a.stop_timeout.clone(),
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            security_opt: a.security_opt.clone(),
            network: a.network.clone(),
            publish: a.publish.clone(),
            read_only: a.read_only,
            tty: a.tty,
            init: a.init,
            entrypoint: a.entrypoint.clone(),
            userns: a.userns.clone(),
            image: a.image.clone(),
            command: a.command.clone(),
        }
    }
}

/// Resolve `run` flags into a plan; warnings are rendered on stderr against the command line.
/// `Err`: the diagnostics (warnings and errors) against it, exit 125 (podman's for foxbox's
/// own errors).
pub fn plan_from_args(a: &RunArgs, ctx: &Ctx) -> Result<Plan, Failure> {
    let checked = check_args(a)?;
    let Some(plan) = checked.plan else {
        return Err(Failure::in_text(
            checked.diagnostics,
            "command line",
            &checked.command_line,
            125,
        ));
    };
    let src = Source {
        name: "command line",
        text: Some(&checked.command_line),
    };
    let opts = RenderOptions {
        color: ctx.color_stderr(),
        ..RenderOptions::default()
    };
    super::ctx::err(&diag::render_source(&checked.diagnostics, src, opts));
    Ok(plan)
}

/// `run --dry-run` / `--emit-spec`: the plan, or the spec that makes it, and nothing run.
pub fn dry_run(a: &RunArgs, ctx: &Ctx) -> CmdResult {
    let format = if a.emit_spec {
        DryRunFormat::Toml
    } else {
        a.format
    };
    if format == DryRunFormat::Toml {
        let checked = check_args(a)?;
        if checked.plan.is_none() {
            return Err(Failure::in_text(
                checked.diagnostics,
                "command line",
                &checked.command_line,
                125,
            ));
        }
        super::ctx::out(&foxbox::spec::emit::to_toml(
            &checked.raw,
            &RunArgs::base_dir(),
        ));
        return Ok(0);
    }
    let plan = plan_from_args(a, ctx)?;
    // What `run` would start, as `foxbox plan` shows a spec's.
    let boxed = super::plan::preview(&plan, ctx)?;
    let plan = boxed.as_deref().unwrap_or(&plan);
    let steps = foxbox::exec::steps::describe(plan);
    match format {
        DryRunFormat::Json => {
            let v = serde_json::json!({ "plan": plan, "steps": &steps });
            let text = serde_json::to_string_pretty(&v)
                .map_err(|e| failure!(codes::cli::OUTPUT, "{e}"))?;
            super::ctx::out(&format!("{text}\n"));
        }
        _ => super::ctx::out(&super::plan::human(
            std::path::Path::new("the command line"),
            plan,
            &steps,
        )),
    }
    Ok(0)
}

/// The `run` flags (with their env files) through the resolver.
fn check_args(a: &RunArgs) -> Result<foxbox::spec::flags::FlagsChecked, Failure> {
    let mut flags = RunFlags::from(a);
    // podman: the files first, in order, then `-e` (a later value wins).
    let mut env = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f).map_err(|e| {
            failure!(
                codes::cli::USAGE,
                "--env-file {}: cannot read it: {e}",
                f.display()
            )
        })?;
        env.extend(parse_env_file(&text).map_err(|(line, what)| {
            failure!(
                codes::cli::USAGE,
                help = "write one KEY=VALUE (or KEY, to copy the caller's value) a line; \
                        # starts a comment",
                "--env-file {}:{line}: {what}",
                f.display()
            )
        })?);
    }
    env.append(&mut flags.env);
    flags.env = env;
    for v in &a.volume {
        let opts = v.splitn(3, ':').nth(2).unwrap_or("");
        if opts.split(',').any(|o| o == "z" || o == "Z") {
            tracing::debug!(
                "-v {v}: `z`/`Z` relabel for SELinux; foxbox sets no SELinux labels, so it is ignored"
            );
        }
    }
    Ok(check_run_flags(&flags, &RunArgs::base_dir(), &|k| {
        std::env::var(k).ok()
    }))
}
