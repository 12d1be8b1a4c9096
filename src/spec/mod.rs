//! The Foxbox.toml spec: raw types with spans, validation, diagnostics, resolution into a Plan.
//!
//! # The one path
//!
//! ```text
//! Foxbox.toml ──parse──▶ RawSpec ─┐
//! run flags ───flags───▶ RawSpec ─┴─resolve──▶ (Option<Plan>, Vec<Diagnostic>)
//! ```
//!
//! [`parse`] reads TOML into a [`raw::RawSpec`] whose values keep their spans (syntax errors,
//! wrong types and unknown keys are reported there); [`flags`] builds the same `RawSpec` from
//! podman-style `run` flags; [`resolve`] checks every value and, when nothing is an error,
//! assembles the immutable [`Plan`]. Every problem in the input is reported in one go.
//!
//! # Library API
//!
//! - [`load`]: read a spec file and resolve it (`Err` carries the diagnostics and the source
//!   to render them against).
//! - [`check_str`]: the same on text already in memory; never touches the host except to read
//!   a seccomp profile the spec names.
//! - [`flags::check_run_flags`]: `run` flags to a plan through the same resolver.
//! - [`crate::preflight::check`] (beside the spec, not in it): what this machine cannot honour
//!   of a plan (`foxbox check --host`).
//! - [`schema::schema_json`]: the JSON schema of the spec.
//! - [`crate::diag::render`] / [`crate::diag::to_json`]: show diagnostics.
//!
//! ```no_run
//! let (plan, diagnostics) = foxbox::spec::check_str(
//!     "[box]\nimage = \"busybox\"\n",
//!     std::path::Path::new("Foxbox.toml"),
//!     std::path::Path::new("/repo"),
//! );
//! assert!(plan.is_some() && diagnostics.is_empty());
//! ```

pub mod build;
pub mod codes;
pub mod compose;
pub mod emit;
pub mod file;
pub mod flags;
pub mod image;
pub mod lock;
pub mod parse;
pub mod paths;
pub mod ports;
pub mod raw;
pub mod resolve;
pub mod schema;
pub mod smoke;
mod suggest;
pub mod vars;
/// Sizes and durations are plan values ([`crate::plan::units`]); here at their old path too.
pub use crate::plan::units;

pub use compose::{composition, raw_composed};
pub use file::{read_spec, spec_dir, MAX_SPEC_BYTES};

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::plan::{Origin, Plan, Span};
use resolve::COMMAND_LINE;

/// A spec that resolved: the plan and any warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub plan: Plan,
    pub warnings: Vec<Diagnostic>,
}

/// Why a spec file did not give a plan.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The spec has errors; `origin` holds the text to render `diagnostics` against.
    #[error("{} has {} error(s)", path_of(origin).display(), diagnostics.iter().filter(|d| d.is_error()).count())]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        origin: Origin,
    },
}

impl LoadError {
    /// The diagnostic form of the error, with the origin to render it against.
    pub fn into_diagnostics(self) -> (Vec<Diagnostic>, Origin) {
        match self {
            LoadError::Read { path, source } => (
                vec![Diagnostic::error(
                    codes::READ,
                    format!("cannot read {}: {source}", path.display()),
                )],
                Origin::Spec {
                    dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
                    path,
                    text: String::new(),
                },
            ),
            LoadError::Invalid {
                diagnostics,
                origin,
            } => (diagnostics, origin),
        }
    }
}

fn path_of(o: &Origin) -> &Path {
    match o {
        Origin::Spec { path, .. } => path,
        Origin::CommandLine => Path::new("command line"),
    }
}

/// Values from the command line that replace the spec's (`up --name NAME`, `up -- CMD`). They
/// are resolved with the spec's own values, by the same checks, so that a plan is final once
/// made: `foxbox plan` and `foxbox up` given the same spec and flags make the same plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces `box.name`.
    pub name: Option<String>,
    /// Replaces `box.command` when not empty (the entrypoint stays).
    pub command: Vec<String>,
    /// Replaces `box.entrypoint` (`--entrypoint`, read by [`flags::entrypoint_words`]); empty
    /// words clear it.
    pub entrypoint: Option<Vec<String>>,
}

impl Overrides {
    /// Put the overrides into a parsed spec (one without `[box]` has errors of its own).
    fn apply(&self, raw: &mut raw::RawSpec) {
        let Some(b) = raw.box_.as_mut() else {
            return;
        };
        if let Some(n) = &self.name {
            b.value.name = Some(raw::Sp::new(n.clone(), COMMAND_LINE));
        }
        if let Some(words) = &self.entrypoint {
            let words = words
                .iter()
                .map(|w| raw::Sp::new(w.clone(), COMMAND_LINE))
                .collect();
            b.value.entrypoint = Some(raw::Sp::new(raw::RawCommand::Argv(words), COMMAND_LINE));
        }
        if !self.command.is_empty() {
            let args = self
                .command
                .iter()
                .map(|a| raw::Sp::new(a.clone(), COMMAND_LINE))
                .collect();
            b.value.command = Some(raw::Sp::new(raw::RawCommand::Argv(args), COMMAND_LINE));
        }
    }
}

/// A diagnostic about an override value: no span, and the flag's name for the spec key's.
fn override_words(mut d: Diagnostic) -> Diagnostic {
    if d.span == Some(COMMAND_LINE) {
        d.span = None;
        d.label = None;
        for (key, flag) in [
            ("`box.name`", "`--name`"),
            ("`box.command`", "the command after `--`"),
            ("`box.entrypoint`", "`--entrypoint`"),
        ] {
            d.message = d.message.replace(key, flag);
        }
    }
    d.related.retain(|r| r.span != COMMAND_LINE);
    d
}

/// Read `path` and resolve it; relative paths in the spec are relative to its directory.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    load_with(path, &Overrides::default())
}

/// [`load`], with command-line values replacing the spec's.
pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Loaded, LoadError> {
    let text = read_spec(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = spec_dir(path);
    let (plan, diagnostics) = check_str_with(&text, path, &base, overrides);
    match plan {
        Some(plan) => Ok(Loaded {
            plan,
            warnings: diagnostics,
        }),
        None => Err(LoadError::Invalid {
            diagnostics,
            origin: Origin::Spec {
                path: path.to_path_buf(),
                dir: base,
                text,
            },
        }),
    }
}

/// Check a spec's text: every diagnostic (errors and warnings, sorted by position), and the
/// plan when there is no error. `path` is how the file is named in the plan's origin;
/// `base_dir` is where relative paths start (made absolute against the working directory).
pub fn check_str(text: &str, path: &Path, base_dir: &Path) -> (Option<Plan>, Vec<Diagnostic>) {
    check_str_with(text, path, base_dir, &Overrides::default())
}

/// [`check_str`], with command-line values replacing the spec's.
pub fn check_str_with(
    text: &str,
    path: &Path,
    base_dir: &Path,
    overrides: &Overrides,
) -> (Option<Plan>, Vec<Diagnostic>) {
    check_composed(
        text,
        path,
        base_dir,
        overrides,
        &compose::Options::from_host(),
    )
}

/// Where each value of the spec at `path` was set, and how many files it is made of (see
/// [`compose::Composition::provenance`]).
pub fn provenance(path: &Path) -> std::io::Result<(Vec<compose::Source>, usize)> {
    let text = read_spec(path)?;
    let c = composition(&text, path, &spec_dir(path));
    Ok((c.provenance(), c.order.len()))
}

/// The image references of the spec at `path` and its bases (what `foxbox lock` pins), the
/// spec's files, and the lock file beside it.
pub fn lock_inputs(
    path: &Path,
) -> std::io::Result<(Vec<lock::Reference>, compose::Composition, PathBuf)> {
    let text = read_spec(path)?;
    let dir = spec_dir(path);
    let c = composition(&text, path, &dir);
    let refs = lock::references(&c.merged(), &dir);
    Ok((refs, c, lock::lock_path(path, &dir)))
}

/// `check --strict`: what a base widens of the box's isolation, and bases from outside the
/// repository, become errors.
pub fn strict(diags: &mut [Diagnostic]) {
    for d in diags {
        if [
            crate::diag::codes::compose::UNTRUSTED_BASE,
            crate::diag::codes::compose::BASE_OUTSIDE_REPO,
        ]
        .contains(&d.code.as_str())
        {
            d.severity = crate::diag::Severity::Error;
        }
    }
}

/// [`check_str_with`], reading bases and variables as `opts` says.
pub fn check_composed(
    text: &str,
    path: &Path,
    base_dir: &Path,
    overrides: &Overrides,
    opts: &compose::Options<'_>,
) -> (Option<Plan>, Vec<Diagnostic>) {
    let base = file::absolute_dir(base_dir);
    let comp = compose::Composition::discover(text, path, &base, opts);
    let merged = comp.merged();
    let refs = lock::references(&merged, &base);
    let (raw, read) = parse::from_tree(&merged.tree);
    let (syntax_spans, failed, mut composing) = (merged.syntax, merged.failed, merged.diagnostics);
    composing.extend(comp.diagnostics.iter().cloned());
    composing.extend(read);
    let mut parsed = parse::Parsed {
        raw,
        diagnostics: composing,
        syntax_spans,
    };
    overrides.apply(&mut parsed.raw);
    let origin = Origin::Spec {
        path: path.to_path_buf(),
        dir: base.clone(),
        text: text.to_string(),
    };
    let (plan, more) = resolve::resolve(
        &parsed.raw,
        origin,
        &resolve::Options {
            base_dir: &base,
            keep_spans: true,
        },
    );
    let mut more = more;
    if let Some(b) = &parsed.raw.build {
        // A spec's [build] table is checked with it (`foxbox check`), as `foxbox build` would;
        // a file of only [build] is a Foxfile.toml, which names no image to run.
        if parsed.raw.box_.is_none() {
            more.retain(|d| d.code != codes::MISSING_IMAGE);
        }
        more.extend(build::resolve(b, &base).1);
    }
    more.extend(smoke::resolve(&parsed.raw.tests).1);
    let within = |s: &Span| failed.iter().any(|f| f.start <= s.start && s.end <= f.end);
    let more = more
        .into_iter()
        .filter(|d| !d.span.as_ref().is_some_and(within))
        .map(override_words)
        .collect();
    let diagnostics: Vec<Diagnostic> = parse::merge(parsed.diagnostics, more, &parsed.syntax_spans)
        .into_iter()
        .map(|d| comp.locate(d))
        .collect();
    let (mut plan, mut diagnostics) = (plan, diagnostics);
    check_lock(path, &base, &refs, plan.as_mut(), &mut diagnostics, &comp);
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    (plan.filter(|_| !has_errors), diagnostics)
}

/// With a lock beside the spec: warn about what is stale in it, and pin the plan's image.
fn check_lock(
    path: &Path,
    dir: &Path,
    refs: &[lock::Reference],
    plan: Option<&mut Plan>,
    diagnostics: &mut Vec<Diagnostic>,
    comp: &compose::Composition,
) {
    let file = lock::lock_path(path, dir);
    let shown = path
        .parent()
        .map_or_else(
            || file.clone(),
            |p| p.join(file.file_name().unwrap_or_default()),
        )
        .display()
        .to_string();
    match lock::read(&file) {
        Ok(None) => {}
        Ok(Some(l)) => {
            diagnostics.extend(
                lock::stale(refs, &l, &shown)
                    .into_iter()
                    .map(|d| comp.locate(d)),
            );
            if let Some(plan) = plan {
                lock::pin(plan, refs, &l);
            }
        }
        Err(message) => diagnostics.push(
            Diagnostic::error(crate::diag::codes::compose::LOCK, message)
                .with_help("`foxbox lock` writes it afresh"),
        ),
    }
}

/// The fuzz target's body (`fuzz/fuzz_targets/compose.rs`), in the library so tests run its
/// seeds, and here rather than in `compose` because it runs the whole check above it:
/// `text` split at `\n%%\n` lines is `Foxbox.toml`, `base.toml`, `sub/deep.toml`,
/// `Foxbox.local.toml` and `.env` in `/fuzz`, read from memory. Panics when a plan comes with
/// an error or without one nothing comes.
#[doc(hidden)]
pub fn exercise_compose(text: &str) {
    const NAMES: [&str; 5] = [
        "Foxbox.toml",
        "base.toml",
        "sub/deep.toml",
        "Foxbox.local.toml",
        ".env",
    ];
    let parts: Vec<&str> = text.splitn(NAMES.len(), "\n%%\n").collect();
    let files: Vec<(PathBuf, String)> = NAMES
        .iter()
        .zip(&parts)
        .skip(1)
        .map(|(n, t)| (Path::new("/fuzz").join(n), t.to_string()))
        .collect();
    let read = |p: &Path| {
        files
            .iter()
            .find(|(n, _)| n == p)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    let opts = compose::Options {
        read: &read,
        env: vars::Vars::new(
            [
                ("WHO".to_string(), "fox".to_string()),
                ("EMPTY".to_string(), String::new()),
            ],
            [],
        ),
        local: true,
    };
    let main = parts.first().copied().unwrap_or("");
    let (plan, diags) = check_composed(
        main,
        Path::new("Foxbox.toml"),
        Path::new("/fuzz"),
        &Overrides::default(),
        &opts,
    );
    let src = crate::diag::Source {
        name: "Foxbox.toml",
        text: Some(main),
    };
    let _ = crate::diag::render_source(&diags, src, crate::diag::RenderOptions::default());
    let _ = crate::diag::to_json(&diags, src);
    let c =
        compose::Composition::discover(main, Path::new("Foxbox.toml"), Path::new("/fuzz"), &opts);
    let _ = c.provenance();
    match plan {
        Some(plan) => {
            assert!(diags.iter().all(|d| !d.is_error()), "a plan with errors");
            let _ = serde_json::to_string(&plan);
        }
        None => assert!(
            diags.iter().any(Diagnostic::is_error),
            "no plan and no error"
        ),
    }
}
