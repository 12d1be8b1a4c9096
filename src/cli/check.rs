use std::path::PathBuf;

use clap::Args;

use foxbox::diag::{self, codes, Diagnostic, RenderOptions, Source};
use foxbox::{preflight, spec};

use super::ctx::{CmdResult, Ctx, Format};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Spec files to check.
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<PathBuf>,
    /// Also check what this host cannot honour (user namespaces, id ranges, cgroups, network helpers, images).
    #[arg(long)]
    pub host: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Refuse what bases widen of the box's isolation, and bases outside the repository
    /// (their warnings become errors).
    #[arg(long)]
    pub strict: bool,
}

/// Exit 0 when every spec is valid (warnings allowed), 1 when any has errors, 125 when a spec
/// cannot be read at all.
pub fn run(a: CheckArgs, ctx: &Ctx) -> CmdResult {
    let opts = RenderOptions {
        color: ctx.color_stderr(),
        ..RenderOptions::default()
    };
    let host_opts = preflight::HostOptions {
        store: ctx.paths().ok(),
        // The same variable `run --cgroup-parent` and `up --cgroup-parent` read.
        cgroup_parent: std::env::var("FOXBOX_CGROUP_PARENT")
            .ok()
            .filter(|p| !p.is_empty()),
        image_in_store: ctx.paths().ok().map(|paths| {
            let lookup: preflight::ImageLookup = Box::new(move |r: &foxbox::plan::ImageRef| {
                foxbox::image::Store::open(&paths).is_ok_and(|s| s.resolve(r).is_ok())
            });
            lookup
        }),
    };
    let mut json = Vec::new();
    let mut code = 0u8;
    for path in &a.specs {
        let name = path.display().to_string();
        let (text, diags) = match spec::read_spec(path) {
            Ok(text) => {
                let (plan, mut diags) = spec::check_str(&text, path, &spec::spec_dir(path));
                if a.strict {
                    spec::strict(&mut diags);
                }
                if let Some(plan) = &plan {
                    if a.host {
                        diags.extend(preflight::check(plan, &host_opts));
                    } else {
                        diags.extend(preflight::missing_bind_sources(plan));
                    }
                }
                (Some(text), diags)
            }
            Err(e) => {
                code = 125;
                let d = Diagnostic::error(spec::codes::READ, format!("cannot read it: {e}"))
                    .with_help("check the path");
                (None, vec![d])
            }
        };
        let src = Source {
            name: &name,
            text: text.as_deref(),
        };
        let errors = diags.iter().filter(|d| d.is_error()).count();
        let warnings = diags.len() - errors;
        if errors > 0 {
            code = code.max(1);
        }
        match a.format {
            Format::Json => json.extend(diag::to_json(&diags, src)),
            Format::Human => {
                super::ctx::err(&diag::render_source(&diags, src, opts));
                super::ctx::out(&format!(
                    "{name}: {}\n",
                    summary(text.is_some(), errors, warnings)
                ));
            }
        }
    }
    if a.host && a.format == Format::Human {
        let summary = preflight::host_network_summary();
        let indented: String = summary.lines().map(|l| format!("  {l}\n")).collect();
        super::ctx::out(&format!("host network:\n{indented}"));
    }
    if a.format == Format::Json {
        let text =
            serde_json::to_string_pretty(&json).map_err(|e| failure!(codes::cli::OUTPUT, "{e}"))?;
        super::ctx::out(&format!("{text}\n"));
    }
    Ok(code)
}

fn summary(read: bool, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (read, errors, warnings) {
        (false, _, _) => "unreadable".into(),
        (true, 0, 0) => "ok".into(),
        (true, 0, w) => format!("ok, {}", plural(w, "warning")),
        (true, e, 0) => plural(e, "error"),
        (true, e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}
