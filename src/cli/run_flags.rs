//! `foxbox run` flags → the library's [`RunFlags`] → the same resolver a spec goes through.
//!
//! The `run` command calls [`plan_from_args`] and gets the plan, or the failure to render.

use foxbox::diag::{self, codes, RenderOptions, Source};
use foxbox::plan::Plan;
use foxbox::spec::flags::{check_run_flags, parse_env_file, RunFlags};

use super::run::{DryRunFormat, RunArgs};
use super::{CmdResult, Ctx, Failure};

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
    super::err(&diag::render_source(&checked.diagnostics, src, opts));
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
        super::out(&foxbox::spec::emit::to_toml(
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
            super::out(&format!("{text}\n"));
        }
        _ => super::out(&super::plan::human(
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
