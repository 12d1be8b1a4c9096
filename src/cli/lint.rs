use std::path::PathBuf;

use clap::{Args, ValueEnum};

use foxbox::diag::{self, RenderOptions, Source};
use foxbox::lint::{self, Report, Severity, RULES};
use foxbox::spec;

use super::ctx::{CmdResult, Ctx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LintFormat {
    #[default]
    Human,
    Json,
    /// SARIF 2.1.0, for GitHub code scanning (`upload-sarif`).
    Sarif,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Rules (ids are stable; `foxbox lint --rules` shows each one's rationale and help):
  FB001 image-not-pinned     FB007 writable-repo-bind
  FB002 host-network         FB008 no-limit
  FB003 seccomp-unconfined   FB009 writable-rootfs
  FB004 dangerous-capability FB010 best-effort-limits
  FB005 new-privileges       FB011 port-all-interfaces
  FB006 sensitive-bind       FB012 secret-in-env
  FB013 root-over-image-user (images in the store only)

Allow a rule for a whole spec with `[lint] allow = [\"FB003\"]`, or for one line with a
comment on it or on the line above: `# foxbox: allow FB003`. Allowed findings are counted
(and kept as suppressed results in SARIF).

Exit status: 0 when no finding is at error severity, 1 when one is or a spec has errors
(`foxbox check`'s), 125 when a spec cannot be read.")]
pub struct LintArgs {
    /// Spec files to lint.
    #[arg(required_unless_present = "rules", value_name = "SPEC")]
    pub specs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintFormat::Human)]
    pub format: LintFormat,
    /// List the rules (id, severity, name, rationale, help) and exit.
    #[arg(long)]
    pub rules: bool,
}

pub fn run(a: LintArgs, ctx: &Ctx) -> CmdResult {
    if a.rules {
        return list_rules(a.format);
    }
    // FB013 needs each image's user: from the store when the image is there. Lint only reads:
    // no store is made where there is none, and no sweep runs.
    let store = ctx
        .paths()
        .ok()
        .filter(|p| p.images().is_dir())
        .and_then(|p| foxbox::image::Store::open_for_boxes(&p).ok());
    let image_user = |r: &foxbox::plan::ImageRef| -> Option<String> {
        store.as_ref()?.resolve(r).ok()?.config.user
    };
    let mut reports = Vec::new();
    let mut code = 0u8;
    for path in &a.specs {
        match spec::read_spec(path) {
            Ok(text) => {
                let r = lint::lint_with(&text, path, &spec::spec_dir(path), &image_user);
                if r.fails() {
                    code = code.max(1);
                }
                reports.push(r);
            }
            Err(e) => {
                super::ctx::err(&format!("{}: cannot read it: {e}\n", path.display()));
                code = 125;
            }
        }
    }
    match a.format {
        LintFormat::Human => human(&reports, ctx),
        LintFormat::Json => print_json(&json(&reports))?,
        LintFormat::Sarif => print_json(&lint::sarif::to_sarif(&reports))?,
    }
    Ok(code)
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), super::fail::Failure> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| failure!(foxbox::diag::codes::cli::OUTPUT, "{e}"))?;
    super::ctx::out(&format!("{text}\n"));
    Ok(())
}

fn list_rules(format: LintFormat) -> CmdResult {
    match format {
        LintFormat::Human => {
            let mut s = String::new();
            for r in RULES {
                s.push_str(&format!(
                    "{} {:<7} {}\n    {}\n    help: {}\n",
                    r.id,
                    r.severity.as_str(),
                    r.name,
                    r.rationale,
                    r.help
                ));
            }
            super::ctx::out(&s);
        }
        LintFormat::Json => print_json(&RULES)?,
        LintFormat::Sarif => print_json(&lint::sarif::to_sarif(&[]))?,
    }
    Ok(0)
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn human(reports: &[Report], ctx: &Ctx) {
    let opts = RenderOptions {
        color: ctx.color_stderr(),
        ..RenderOptions::default()
    };
    for r in reports {
        let name = r.path.display().to_string();
        if !r.errors.is_empty() {
            let src = Source {
                name: &name,
                text: Some(&r.text),
            };
            super::ctx::err(&diag::render_source(&r.errors, src, opts));
            super::ctx::out(&format!(
                "{name}: {}, not linted (see `foxbox check`)\n",
                plural(r.errors.len(), "error")
            ));
            continue;
        }
        let mut s = String::new();
        if let Some(l) = &r.local_override {
            super::ctx::err(&format!(
                "{name}: note: the local override {} is merged into it\n",
                l.display()
            ));
        }
        for (id, line) in &r.unknown_allows {
            super::ctx::err(&format!(
                "{name}:{line}: warning: `{id}` in [lint] allow is not a rule of this foxbox (`foxbox lint --rules`)\n"
            ));
        }
        for f in &r.findings {
            s.push_str(&format!(
                "{name}:{}:{}: {}[{}] {}: {}\n  why: {}\n  help: {}\n",
                f.line,
                f.column,
                f.rule.severity.as_str(),
                f.rule.id,
                f.rule.name,
                f.message,
                f.rule.rationale,
                f.rule.help
            ));
        }
        let count = |sev| r.findings.iter().filter(|f| f.rule.severity == sev).count();
        let (e, w, n) = (
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Note),
        );
        let mut parts = Vec::new();
        if r.findings.is_empty() {
            parts.push("ok".to_string());
        } else {
            parts.extend([plural(e, "error"), plural(w, "warning"), plural(n, "note")]);
        }
        parts.push(format!("{} allowed", r.allowed.len()));
        s.push_str(&format!("{name}: {}\n", parts.join(", ")));
        super::ctx::out(&s);
    }
}

/// `--format json`: one object per spec.
fn json(reports: &[Report]) -> serde_json::Value {
    let files: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            let findings = |fs: &[lint::Finding]| -> Vec<serde_json::Value> {
                fs.iter()
                    .map(|f| {
                        serde_json::json!({
                            "rule": f.rule.id,
                            "name": f.rule.name,
                            "severity": f.rule.severity,
                            "message": f.message,
                            "rationale": f.rule.rationale,
                            "help": f.rule.help,
                            "line": f.line,
                            "column": f.column,
                            "end_line": f.end_line,
                            "end_column": f.end_column,
                        })
                    })
                    .collect()
            };
            let errors = diag::to_json(
                &r.errors,
                Source {
                    name: &r.path.display().to_string(),
                    text: Some(&r.text),
                },
            );
            serde_json::json!({
                "path": r.path,
                "repo_path": r.repo_path,
                "findings": findings(&r.findings),
                "allowed": findings(&r.allowed),
                "unknown_allows": r.unknown_allows.iter().map(|(id, line)| serde_json::json!({"rule": id, "line": line})).collect::<Vec<_>>(),
                "errors": errors,
                "local_override": r.local_override,
            })
        })
        .collect();
    serde_json::Value::Array(files)
}
