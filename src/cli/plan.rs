use std::path::{Path, PathBuf};

use clap::Args;

use foxbox::diag::{self, codes, RenderOptions};
use foxbox::exec::steps::{self, Side};
use foxbox::plan::{
    ArgvFrom, ArgvPart, BoxPlan, Enforce, ImageRef, MountKind, NetMode, Plan, Seccomp,
};
use foxbox::spec::{self, units::format_size, Overrides};

use super::ctx::{CmdResult, Ctx, Format};
use super::fail::Failure;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The spec file (default: ./Foxbox.toml).
    #[arg(value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Print the steps `foxbox exec` runs in a box started from this spec instead.
    #[arg(long)]
    pub exec: bool,
    /// Show the file and line that set each value (shown anyway when the spec extends a
    /// base or has a local override; always in `--format json`).
    #[arg(long)]
    pub sources: bool,
    /// Name of the box (as `up --name`).
    #[arg(long)]
    pub name: Option<String>,
    /// Entrypoint to run instead of the spec's or the image's (as `up --entrypoint`).
    #[arg(long, value_name = "PROGRAM|JSON")]
    pub entrypoint: Option<String>,
    /// Command to run instead of the spec's (as `up -- CMD`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(a: PlanArgs, ctx: &Ctx) -> CmdResult {
    let path = a.spec.unwrap_or_else(|| PathBuf::from("Foxbox.toml"));
    let overrides = Overrides {
        name: a.name,
        command: a.command,
        entrypoint: entrypoint_override(a.entrypoint.as_deref())?,
    };
    let plan = load_plan(&path, &overrides, ctx)?;
    let boxed = preview(&plan, ctx)?;
    let plan = boxed.as_deref().unwrap_or(&plan);
    if a.exec {
        return exec_steps(&path, plan, a.format);
    }
    let steps = steps::describe(plan);
    let (sources, files) = spec::provenance(&path).unwrap_or_default();
    match a.format {
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Out<'a> {
                plan: &'a Plan,
                steps: &'a [steps::StepDesc],
                /// The file and line that set each value of the spec.
                sources: &'a [spec::compose::Source],
            }
            let v = Out {
                plan,
                steps: &steps,
                sources: &sources,
            };
            let text = serde_json::to_string_pretty(&v)
                .map_err(|e| failure!(codes::cli::OUTPUT, "{e}"))?;
            super::ctx::out(&format!("{text}\n"));
        }
        Format::Human => {
            let mut out = human(&path, plan, &steps);
            if a.sources || files > 1 {
                out.push_str("\nsources\n");
                let width = sources.iter().map(|s| s.key.len()).max().unwrap_or(0);
                for s in &sources {
                    out.push_str(&format!("  {:<width$} {}:{}\n", s.key, s.file, s.line));
                }
            }
            super::ctx::out(&out)
        }
    }
    Ok(0)
}

/// What `up` (or `run`) would run: the plan with the image's defaults, when the image is
/// stored; else a note on stderr that they are not shown.
pub(super) fn preview(plan: &Plan, ctx: &Ctx) -> Result<Option<BoxPlan>, Failure> {
    let boxed = match foxbox::runner::box_plan::preview(&ctx.paths()?, plan) {
        Ok(b) => b,
        Err(e) => {
            super::ctx::err(&format!("warning: cannot read the image store: {e}\n"));
            None
        }
    };
    if boxed.is_none() {
        super::ctx::err(&format!(
            "note: {} is not in the image store: its defaults (command, workdir, user, env) \
             are not shown\n",
            foxbox::runner::image_label(&plan.image.value)
        ));
    }
    Ok(boxed)
}

/// `plan --exec`: the step list of a process `foxbox exec` starts in a box of this plan.
fn exec_steps(path: &Path, plan: &Plan, format: Format) -> CmdResult {
    let list = match foxbox::runner::exec_request::plan_steps(plan) {
        Ok(l) => steps::describe_list(l),
        Err(e) => {
            return Err(Failure::against(
                vec![e.diagnostic()],
                &plan.origin,
                e.exit_code(),
            ))
        }
    };
    match format {
        Format::Json => {
            let v = serde_json::json!({ "steps": list });
            let text = serde_json::to_string_pretty(&v)
                .map_err(|e| failure!(codes::cli::OUTPUT, "{e}"))?;
            super::ctx::out(&format!("{text}\n"));
        }
        Format::Human => {
            let mut out = format!(
                "steps of `foxbox exec` in a box of {} (as the box's user)\n",
                path.display()
            );
            out.push_str(&step_lines(&list));
            super::ctx::out(&out);
        }
    }
    Ok(0)
}

/// `--entrypoint` of `up` and `plan`, read as `run`'s.
pub(super) fn entrypoint_override(ep: Option<&str>) -> Result<Option<Vec<String>>, Failure> {
    ep.map(|ep| {
        spec::flags::entrypoint_words(ep)
            .map_err(|e| failure!(codes::spec::BAD_FLAG, help = e.help, "{}", e.message))
    })
    .transpose()
}

/// Load a spec for a command that goes on to use the plan (`plan`, `up`): warnings are
/// rendered on stderr; `Err`: the spec's diagnostics, exit 125 (foxbox could not go on).
pub fn load_plan(path: &Path, overrides: &Overrides, ctx: &Ctx) -> Result<Plan, Failure> {
    let opts = RenderOptions {
        color: ctx.color_stderr(),
        ..RenderOptions::default()
    };
    match spec::load_with(path, overrides) {
        Ok(loaded) => {
            super::ctx::err(&diag::render(
                &loaded.warnings,
                &loaded.plan.origin,
                opts.color,
            ));
            Ok(loaded.plan)
        }
        Err(e) => {
            let (diags, origin) = e.into_diagnostics();
            Err(Failure::against(diags, &origin, 125))
        }
    }
}

pub(super) fn human(path: &Path, plan: &Plan, steps: &[steps::StepDesc]) -> String {
    let mut out = format!("plan for {}\n", path.display());
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<12} {v}\n"));
    row(
        "name",
        plan.name
            .as_ref()
            .map_or("(generated)".into(), |n| n.value.clone()),
    );
    row(
        "image",
        match &plan.image.value {
            ImageRef::Stored(n) => match n.digest() {
                Some(d) => format!("{}@{d}", n.full()),
                None => n.full(),
            },
            ImageRef::Tarball { path } => format!("tarball {}", path.display()),
        },
    );
    row("command", argv_line(plan));
    for (key, part) in [
        ("entrypoint", &plan.process.argv.entrypoint),
        ("cmd", &plan.process.argv.command),
    ] {
        if let Some(line) = argv_part_line(plan, key, part.as_ref()) {
            row("", line);
        }
    }
    row("user", plan.process.user.value.to_string());
    row("workdir", plan.process.cwd.value.display().to_string());
    row(
        "hostname",
        plan.hostname
            .as_ref()
            .map_or("(the box name)".into(), |h| h.value.clone()),
    );
    for (k, v) in &plan.process.env {
        row("env", format!("{k}={v}"));
    }
    row(
        "tty",
        match plan.process.tty {
            None => "when stdin is a terminal".into(),
            Some(t) => t.to_string(),
        },
    );
    row("init", plan.process.init.to_string());
    let l = &plan.limits;
    let mut limits = Vec::new();
    if let Some(m) = l.memory() {
        limits.push(format!("memory {}", format_size(m.value.bytes())));
    }
    if let Some(m) = l.memory_swap() {
        limits.push(format!("memory+swap {}", format_size(m.value.bytes())));
    }
    if let Some(c) = l.cpus() {
        limits.push(format!("cpus {}", c.value.cores()));
    }
    if let Some(p) = l.pids() {
        limits.push(format!("pids {}", p.value.count()));
    }
    if let Some(t) = l.timeout() {
        limits.push(format!("timeout {}", humantime::format_duration(t.value)));
    }
    if let Some(t) = l.stop_timeout() {
        limits.push(format!(
            "stop timeout {}",
            humantime::format_duration(t.value)
        ));
    }
    if limits.is_empty() {
        limits.push("none".into());
    } else if l.needs_cgroup() {
        limits.push(match l.enforce() {
            Enforce::Strict => "enforce strict".into(),
            Enforce::BestEffort => "enforce best-effort".into(),
        });
    }
    row("limits", limits.join(", "));
    let names = |set: foxbox::security::caps::CapSet| {
        let n = set.names();
        if n.is_empty() {
            "none".to_string()
        } else {
            n.join(" ")
        }
    };
    row(
        "capabilities",
        format!(
            "{} (uid 0: all five sets; any user: the bounding set)",
            names(plan.capabilities.value)
        ),
    );
    row(
        "non-root",
        format!(
            "{} (a non-root user's effective, permitted, inheritable, ambient: the added ones)",
            names(plan.added_capabilities)
        ),
    );
    row("no_new_privs", plan.no_new_privs.to_string());
    if let foxbox::plan::Userns::KeepId { uid, gid } = plan.userns.value {
        let id = |v: Option<u32>, what: &str| {
            v.map_or(format!("the caller's {what}"), |n| n.to_string())
        };
        row(
            "userns",
            format!("keep-id (uid {}, gid {})", id(uid, "uid"), id(gid, "gid")),
        );
    }
    row(
        "seccomp",
        match &plan.seccomp.value {
            Seccomp::Default => "default".into(),
            Seccomp::Unconfined => "unconfined".into(),
            Seccomp::Profile { path, .. } => format!("profile {}", path.display()),
        },
    );
    let mode = match plan.network.mode.value {
        NetMode::None => "none",
        NetMode::Host => "host",
        NetMode::Pasta => "pasta",
        NetMode::Slirp4netns => "slirp4netns",
    };
    row("network", mode.to_string());
    for p in &plan.network.ports {
        let f = &p.value;
        let ip = f.host_ip.map(|i| format!("{i} ")).unwrap_or_default();
        row(
            "port",
            format!("{ip}{} -> {}/{:?}", f.host_port, f.box_port, f.proto).to_lowercase(),
        );
    }
    if plan.network.allow_host_loopback {
        row("host loopback", "allowed".into());
    }
    for m in &plan.mounts {
        let what = match &m.kind {
            MountKind::Bind { source } => format!("bind {}", source.display()),
            MountKind::Tmpfs { size, mode, noexec } => {
                let mut t = "tmpfs".to_string();
                if *noexec {
                    t.push_str(" noexec");
                }
                if let Some(s) = size {
                    t.push_str(&format!(" size={}", format_size(*s)));
                }
                if let Some(m) = mode {
                    t.push_str(&format!(" mode={m:o}"));
                }
                t
            }
            MountKind::Volume { name } => format!("volume {name}"),
        };
        let mut how: Vec<&str> = Vec::new();
        if m.readonly {
            how.push("read-only");
        }
        if m.chown {
            how.push("chowned to the user");
        }
        if m.overlay {
            how.push("overlay: writes stay in the box");
        }
        let how = if how.is_empty() {
            String::new()
        } else {
            format!(" ({})", how.join(", "))
        };
        row("mount", format!("{what} -> {}{how}", m.target.display()));
    }
    row(
        "rootfs",
        if plan.rootfs.readonly.value {
            "read-only".into()
        } else {
            "writable".into()
        },
    );
    out.push_str("\nsteps\n");
    out.push_str(&step_lines(steps));
    out
}

/// The argv the box runs; empty when the image (not in the store) decides.
fn argv_line(plan: &Plan) -> String {
    let p = &plan.process;
    if !p.args.value.is_empty() {
        return format!("{:?}", p.args.value);
    }
    let given = |part: &Option<ArgvPart>| part.as_ref().map(|p| p.words.value.clone());
    match (given(&p.argv.entrypoint), given(&p.argv.command)) {
        // The image's command is dropped: the argv is known without the image.
        (Some(mut e), c) => {
            e.extend(c.unwrap_or_default());
            format!("{e:?}")
        }
        (None, Some(c)) => format!("{c:?} after the image's entrypoint"),
        (None, None) => "(the image's entrypoint and command; /bin/sh when it has none)".into(),
    }
}

/// Where one part of the argv came from: `entrypoint ["x"] from box.entrypoint`.
fn argv_part_line(plan: &Plan, key: &str, part: Option<&ArgvPart>) -> Option<String> {
    let given = plan.process.argv.entrypoint.as_ref();
    let given = given.is_some_and(|e| e.from == ArgvFrom::Given);
    let flags = matches!(plan.origin, foxbox::plan::Origin::CommandLine);
    let (spec_key, image_key) = match (key, flags) {
        ("entrypoint", false) => ("`box.entrypoint`", "ENTRYPOINT"),
        ("entrypoint", true) => ("`--entrypoint`", "ENTRYPOINT"),
        (_, false) => ("`box.command`", "CMD"),
        (_, true) => ("the command line", "CMD"),
    };
    let Some(part) = part else {
        return (key == "cmd" && given).then(|| {
            let ep = if flags {
                "`--entrypoint`"
            } else {
                "`box.entrypoint`"
            };
            format!("{key:<10} none: {ep} drops the image's CMD")
        });
    };
    let from = match part.from {
        ArgvFrom::Given => spec_key.to_string(),
        ArgvFrom::Image => format!("the image's {image_key}"),
        ArgvFrom::Shell => "the default shell: nothing else names a command".to_string(),
    };
    Some(format!("{key:<10} {:?} from {from}", part.words.value))
}

fn step_lines(steps: &[steps::StepDesc]) -> String {
    let mut out = String::new();
    for (i, s) in steps.iter().enumerate() {
        let side = match s.side {
            Side::Parent => "parent",
            Side::Child => "child",
        };
        out.push_str(&format!(
            "  {:>2}. {side:<6} {:<15} {}\n",
            i + 1,
            s.name,
            s.detail
        ));
    }
    out
}
