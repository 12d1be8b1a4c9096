//! The `[build]` table (a `Foxfile.toml`, or beside `[box]` in a `Foxbox.toml`): its raw form
//! ([`RawBuild`], with the spec's other raw types in [`super::raw`]) resolved into a [`Recipe`].
//!
//! Parsing is the spec's own ([`super::parse`]): same TOML reader, same diagnostics. Resolving
//! needs nothing of the host; what does (the context's files, the `from` image) is checked by
//! the builder (`crate::build`) before any step runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::codes;
use super::raw::{RawBuild, RawCache, RawCommand, RawEnv, RawStep, Sp};
use crate::diag::Diagnostic;
use crate::plan::Span;

/// What a build starts from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum From {
    /// Nothing: the first layer is the first step's.
    Scratch,
    /// A rootfs tarball (absolute path).
    Tarball(PathBuf),
    /// A stored image (or a registry reference, pulled when missing), as written.
    Image(String),
    /// Another stage of the recipe, by name.
    Stage(String),
    /// Text with `${ARG}`s (a Containerfile's `ARG` before `FROM`), one of the above once the
    /// build's arguments are known ([`Recipe::with_args`]); relative paths start at `base`.
    Args { text: String, base: PathBuf },
}

/// A resolved recipe: what the builder needs, with spans for its diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// The stages in the order written; the last is the image (it may have no name).
    pub stages: Vec<Stage>,
    /// The context directory (absolute).
    pub context: PathBuf,
    /// Declared build arguments and their defaults, in the order written.
    pub args: Vec<(String, String)>,
    pub config: ImageSettings,
}

/// One stage: a base, the images merged onto it, and its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Its name (with its span), by which `from` and `copy from` find it.
    pub name: Option<Sp<String>>,
    /// A stage name here means that stage's image ([`Recipe::stage_named`]).
    pub from: From,
    pub from_span: Span,
    pub merge: Vec<Sp<String>>,
    pub merge_conflicts: MergeConflicts,
    pub steps: Vec<Step>,
}

/// What `merge` does with a path two of its images change differently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeConflicts {
    #[default]
    Refuse,
    LastWins,
}

impl Recipe {
    /// The index of the stage called `name`.
    pub fn stage_named(&self, name: &str) -> Option<usize> {
        self.stages
            .iter()
            .position(|s| s.name.as_ref().is_some_and(|n| n.value == name))
    }

    /// The recipe with every `from` that uses build arguments resolved with their values
    /// (`args`: the defaults with `--build-arg`s over them); a `from` that then names no
    /// image, or stages that then need each other, are diagnostics.
    pub fn with_args(&self, args: &BTreeMap<String, String>) -> Result<Recipe, Vec<Diagnostic>> {
        let mut out = self.clone();
        let names: Vec<String> = self
            .stages
            .iter()
            .filter_map(|s| s.name.as_ref().map(|n| n.value.clone()))
            .collect();
        let mut diags = Vec::new();
        for st in &mut out.stages {
            let From::Args { text, base } = &st.from else {
                continue;
            };
            let value = substitute(text, &|n| args.get(n).cloned());
            match from_text(value.trim(), base, &names) {
                Ok(f) => st.from = f,
                Err(e) => diags.push(
                    Diagnostic::error(
                        codes::BUILD_FROM,
                        format!("`{text}` is `{value}` with the build arguments: {e}"),
                    )
                    .with_span(Some(st.from_span))
                    .with_label("this image")
                    .with_help("give the argument an image with `--build-arg NAME=IMAGE`"),
                ),
            }
        }
        check_stage_graph(&out, &mut diags);
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }
}

/// The image configuration a recipe sets at its end.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImageSettings {
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub expose: Vec<String>,
    pub labels: Vec<(String, String)>,
}

/// One step, with the span of its action's value (`run = ...`, `copy = ...`).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub span: Span,
    pub action: Action,
}

/// A step's one action. Strings may hold `${ARG}` references, replaced at build time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Run {
        argv: Vec<String>,
        network: String,
        /// Cache mounts: not part of the cache key (what they hold never enters the layer).
        #[serde(skip)]
        cache: Vec<CacheMount>,
    },
    Copy {
        /// Sources relative to the context (globs allowed), with their spans.
        #[serde(serialize_with = "values")]
        sources: Vec<Sp<String>>,
        dest: String,
        chown: Option<(u32, u32)>,
        /// `chown` by name (`user[:group]`), looked up in the image being built.
        #[serde(skip_serializing_if = "Option::is_none")]
        chown_name: Option<String>,
        chmod: Option<u32>,
        /// Copy out of this stage or image (sources are absolute paths in it).
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Tar archives among the sources are unpacked into `dest` (`ADD`).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        extract: bool,
    },
    Env(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Label(Vec<(String, String)>),
}

/// A cache directory mounted into a `run` step's box.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CacheMount {
    /// Absolute, normalised.
    pub target: String,
    /// Its name in the store (default: the target).
    pub id: String,
    pub sharing: Sharing,
    /// Owner and mode the directory is made with (a cache that exists keeps its own).
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// How steps running at the same time use one cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    #[default]
    Shared,
    Locked,
    Private,
}

fn values<S: serde::Serializer>(v: &[Sp<String>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| &x.value))
}

impl Action {
    /// The step's name in progress lines: `RUN`, `COPY`, ...
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Run { .. } => "RUN",
            Action::Copy { extract: true, .. } => "ADD",
            Action::Copy { .. } => "COPY",
            Action::Env(_) => "ENV",
            Action::Workdir(_) => "WORKDIR",
            Action::User(_) => "USER",
            Action::Label(_) => "LABEL",
        }
    }

    /// A short text of what the step does, for progress lines.
    pub fn summary(&self) -> String {
        let pairs = |v: &[(String, String)]| {
            v.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Action::Run { argv, .. } => match argv.as_slice() {
                [sh, c, cmd] if sh == "/bin/sh" && c == "-c" => cmd.clone(),
                _ => argv.join(" "),
            },
            Action::Copy {
                sources,
                dest,
                from,
                ..
            } => format!(
                "{}{} {dest}",
                from.as_ref()
                    .map(|f| format!("--from={f} "))
                    .unwrap_or_default(),
                sources
                    .iter()
                    .map(|s| s.value.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Action::Env(v) | Action::Label(v) => pairs(v),
            Action::Workdir(w) => w.clone(),
            Action::User(u) => u.clone(),
        }
    }

    /// Every string of the step, for `${ARG}` substitution.
    pub fn map_strings(&self, f: &dyn Fn(&str) -> String) -> Action {
        let pairs = |v: &[(String, String)]| v.iter().map(|(k, x)| (k.clone(), f(x))).collect();
        match self {
            Action::Run {
                argv,
                network,
                cache,
            } => Action::Run {
                argv: argv.iter().map(|a| f(a)).collect(),
                network: network.clone(),
                cache: cache
                    .iter()
                    .map(|c| CacheMount {
                        id: f(&c.id),
                        ..c.clone()
                    })
                    .collect(),
            },
            Action::Copy {
                sources,
                dest,
                chown,
                chown_name,
                chmod,
                from,
                extract,
            } => Action::Copy {
                sources: sources
                    .iter()
                    .map(|s| Sp::new(f(&s.value), s.span))
                    .collect(),
                dest: f(dest),
                chown: *chown,
                chown_name: chown_name.as_ref().map(|x| f(x)),
                chmod: *chmod,
                from: from.as_ref().map(|x| f(x)),
                extract: *extract,
            },
            Action::Env(v) => Action::Env(pairs(v)),
            Action::Workdir(w) => Action::Workdir(f(w)),
            Action::User(u) => Action::User(f(u)),
            Action::Label(v) => Action::Label(pairs(v)),
        }
    }
}

/// `${NAME}` references in `text`, in order (names of letters, digits and `_`).
pub fn arg_refs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) if is_arg_name(&after[..j]) => {
                out.push(&after[..j]);
                rest = &after[j + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

/// Replace `${NAME}` for every NAME `value` knows; other text (shell `${VAR}` too) stays.
pub fn substitute(text: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after
            .find('}')
            .filter(|j| is_arg_name(&after[..*j]))
            .and_then(|j| value(&after[..j]).map(|v| (j, v)))
        {
            Some((j, v)) => {
                out.push_str(&v);
                rest = &after[j + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_arg_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn command(c: &RawCommand) -> Vec<String> {
    match c {
        RawCommand::Argv(v) => v.iter().map(|s| s.value.clone()).collect(),
        RawCommand::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
    }
}

fn pairs(v: &Option<Sp<Vec<RawEnv>>>) -> Vec<(String, String)> {
    v.as_ref()
        .map(|e| {
            e.value
                .iter()
                .map(|kv| (kv.key.value.clone(), kv.value.value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Resolve a parsed `[build]` table; `base` is the recipe file's directory. The recipe, when
/// nothing is an error, and every diagnostic.
pub fn resolve(raw: &Sp<RawBuild>, base: &Path) -> (Option<Recipe>, Vec<Diagnostic>) {
    let b = &raw.value;
    let mut diags = Vec::new();
    let context = match &b.context {
        None => Some(super::paths::normalise(base)),
        Some(c) => match super::paths::host_path(&c.value, base) {
            Ok(p) => Some(p),
            Err(e) => {
                diags.push(
                    Diagnostic::error(codes::BAD_PATH, format!("bad `context`: {e}"))
                        .with_span(Some(c.span))
                        .with_label("this path"),
                );
                None
            }
        },
    };
    let abs = |diags: &mut Vec<Diagnostic>, what: &str, s: &Sp<String>| {
        if !s.value.starts_with('/') && !s.value.starts_with("${") {
            diags.push(
                Diagnostic::error(
                    codes::BAD_PATH,
                    format!("`{what}` must be an absolute path"),
                )
                .with_span(Some(s.span))
                .with_label("relative")
                .with_help(format!("write `/{}`", s.value)),
            );
        }
    };
    // Stage names first: a `from` may name any of them.
    let mut names: Vec<String> = Vec::new();
    for st in &b.stage {
        match &st.value.name {
            None => diags.push(
                Diagnostic::error(codes::MISSING_KEY, "a [[build.stage]] has no `name`")
                    .with_span(Some(Span::new(st.span.start, st.span.start)))
                    .with_label("this stage")
                    .with_help("add e.g. `name = \"builder\"`"),
            ),
            Some(n) if names.contains(&n.value) => diags.push(
                Diagnostic::error(
                    crate::diag::codes::build::STAGE,
                    format!("two stages are called `{}`", n.value),
                )
                .with_span(Some(n.span))
                .with_label("used before")
                .with_help("give each stage its own name"),
            ),
            Some(n) => names.push(n.value.clone()),
        }
    }
    let mut stages = Vec::new();
    for st in &b.stage {
        let r = &st.value;
        let parts = StageParts {
            table: "[[build.stage]]",
            span: st.span,
            from: &r.from,
            merge: &r.merge,
            merge_conflicts: &r.merge_conflicts,
            steps: &r.steps,
        };
        if let Some(mut stage) = resolve_stage(&mut diags, &parts, base, &names, &abs) {
            stage.name = r.name.clone();
            stages.push(stage);
        }
    }
    let parts = StageParts {
        table: "[build]",
        span: raw.span,
        from: &b.from,
        merge: &b.merge,
        merge_conflicts: &b.merge_conflicts,
        steps: &b.steps,
    };
    let last = resolve_stage(&mut diags, &parts, base, &names, &abs);
    if let Some(w) = &b.workdir {
        abs(&mut diags, "build.workdir", w);
    }
    let config = ImageSettings {
        cmd: b.cmd.as_ref().map(|c| command(&c.value)),
        entrypoint: b.entrypoint.as_ref().map(|c| command(&c.value)),
        env: pairs(&b.env),
        workdir: b.workdir.as_ref().map(|w| w.value.clone()),
        user: b.user.as_ref().map(|u| u.value.clone()),
        expose: b
            .expose
            .as_ref()
            .map(|e| {
                e.value
                    .iter()
                    .filter_map(|p| expose(&mut diags, p))
                    .collect()
            })
            .unwrap_or_default(),
        labels: pairs(&b.labels),
    };
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    let (Some(last), Some(context)) = (last, context) else {
        return (None, diags);
    };
    stages.push(last);
    let args = pairs(&b.args);
    for st in &stages {
        if let From::Args { text, .. } = &st.from {
            for n in arg_refs(text) {
                if !args.iter().any(|(k, _)| k == n) {
                    diags.push(
                        Diagnostic::error(
                            codes::BAD_IMAGE,
                            format!("`from` uses `${{{n}}}`, which is not a build argument"),
                        )
                        .with_span(Some(st.from_span))
                        .with_label("undeclared")
                        .with_help(format!(
                            "declare it in [build.args] (a Containerfile: `ARG {n}=DEFAULT` before FROM)"
                        )),
                    );
                }
            }
        }
    }
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    let recipe = Recipe {
        stages,
        context,
        args,
        config,
    };
    check_stage_graph(&recipe, &mut diags);
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    (Some(recipe), diags)
}

/// The keys a stage is made of, from `[build]` or a `[[build.stage]]`.
struct StageParts<'a> {
    table: &'a str,
    span: Span,
    from: &'a Option<Sp<String>>,
    merge: &'a Option<Sp<Vec<Sp<String>>>>,
    merge_conflicts: &'a Option<Sp<String>>,
    steps: &'a [Sp<RawStep>],
}

fn resolve_stage(
    diags: &mut Vec<Diagnostic>,
    p: &StageParts<'_>,
    base: &Path,
    stage_names: &[String],
    abs: &AbsCheck<'_>,
) -> Option<Stage> {
    let from = match p.from {
        None => {
            diags.push(
                Diagnostic::error(
                    codes::BUILD_MISSING_FROM,
                    if p.table == "[build]" {
                        "the build has no `from`".to_string()
                    } else {
                        format!("a {} has no `from`", p.table)
                    },
                )
                .with_span(Some(Span::new(p.span.start, p.span.start)))
                .with_label(format!("in this {} table", p.table))
                    .with_help("add e.g. `from = \"busybox\"`, `from = \"./rootfs.tar\"` or `from = \"scratch\"`"),
            );
            None
        }
        Some(f) => resolve_from(diags, f, base, stage_names).map(|x| (x, f.span)),
    };
    let merge_conflicts = match p.merge_conflicts {
        None => MergeConflicts::Refuse,
        Some(m) => match m.value.as_str() {
            "refuse" => MergeConflicts::Refuse,
            "last-wins" => MergeConflicts::LastWins,
            other => {
                diags.push(
                    Diagnostic::error(
                        codes::BAD_VALUE,
                        format!("`merge_conflicts` must be `refuse` or `last-wins`, not `{other}`"),
                    )
                    .with_span(Some(m.span))
                    .with_label("unknown policy"),
                );
                MergeConflicts::Refuse
            }
        },
    };
    let merge: Vec<Sp<String>> = p
        .merge
        .as_ref()
        .map(|m| m.value.clone())
        .unwrap_or_default();
    for m in &merge {
        if !stage_names.contains(&m.value) {
            if let Err(e) = super::image::parse_image(&m.value, base) {
                diags.push(
                    Diagnostic::error(codes::BAD_IMAGE, e.to_string())
                        .with_span(Some(m.span))
                        .with_label("this image"),
                );
            }
        }
    }
    let mut steps = Vec::new();
    for (i, s) in p.steps.iter().enumerate() {
        if let Some(step) = step(diags, i + 1, s, abs) {
            steps.push(step);
        }
    }
    let (from, from_span) = from?;
    Some(Stage {
        name: None,
        from,
        from_span,
        merge,
        merge_conflicts,
        steps,
    })
}

fn resolve_from(
    diags: &mut Vec<Diagnostic>,
    f: &Sp<String>,
    base: &Path,
    stage_names: &[String],
) -> Option<From> {
    let text = f.value.trim();
    if !arg_refs(text).is_empty() {
        return Some(From::Args {
            text: text.to_string(),
            base: base.to_path_buf(),
        });
    }
    from_text(text, base, stage_names)
        .map_err(|e| {
            diags.push(
                Diagnostic::error(codes::BAD_IMAGE, e)
                    .with_span(Some(f.span))
                    .with_label("this image"),
            )
        })
        .ok()
}

/// What a `from` text (without `${ARG}`s) names.
fn from_text(text: &str, base: &Path, stage_names: &[String]) -> Result<From, String> {
    if text == "scratch" {
        return Ok(From::Scratch);
    }
    if stage_names.iter().any(|n| n == text) {
        return Ok(From::Stage(text.to_string()));
    }
    match super::image::parse_image(text, base) {
        Ok(crate::plan::ImageRef::Tarball { path }) => Ok(From::Tarball(path)),
        Ok(crate::plan::ImageRef::Stored { .. }) => Ok(From::Image(text.to_string())),
        Err(e) => Err(e.to_string()),
    }
}

/// The stages another one needs, as indices: its `from`, its `merge` entries and its
/// `copy from`s that name stages (with the span of each reference).
pub fn stage_deps(recipe: &Recipe, i: usize) -> Vec<(usize, Span)> {
    let st = &recipe.stages[i];
    let mut out = Vec::new();
    if let From::Stage(n) = &st.from {
        if let Some(j) = recipe.stage_named(n) {
            out.push((j, st.from_span));
        }
    }
    for m in &st.merge {
        if let Some(j) = recipe.stage_named(&m.value) {
            out.push((j, m.span));
        }
    }
    for s in &st.steps {
        if let Action::Copy { from: Some(f), .. } = &s.action {
            if let Some(j) = recipe.stage_named(f) {
                out.push((j, s.span));
            }
        }
    }
    out
}

/// A stage that needs itself, through any chain of others, is refused.
fn check_stage_graph(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    // 0: not seen, 1: on the path, 2: done.
    fn visit(r: &Recipe, i: usize, mark: &mut [u8], diags: &mut Vec<Diagnostic>) {
        mark[i] = 1;
        for (j, span) in stage_deps(r, i) {
            match mark[j] {
                1 => {
                    let name = |k: usize| {
                        r.stages[k]
                            .name
                            .as_ref()
                            .map(|n| n.value.clone())
                            .unwrap_or_else(|| "the image".into())
                    };
                    diags.push(
                        Diagnostic::error(
                            crate::diag::codes::build::STAGE,
                            format!(
                                "the stages form a cycle: {} needs {}, which needs it back",
                                name(i),
                                name(j)
                            ),
                        )
                        .with_span(Some(span))
                        .with_label("leads back")
                        .with_help("a stage can only use stages that do not use it"),
                    );
                }
                0 => visit(r, j, mark, diags),
                _ => {}
            }
        }
        mark[i] = 2;
    }
    let mut mark = vec![0u8; recipe.stages.len()];
    for i in 0..recipe.stages.len() {
        if mark[i] == 0 {
            visit(recipe, i, &mut mark, diags);
        }
    }
}

/// `80`, `80/tcp`, `53/udp` → `80/tcp`, `53/udp` (the OCI form).
fn expose(diags: &mut Vec<Diagnostic>, p: &Sp<String>) -> Option<String> {
    let (port, proto) = p.value.split_once('/').unwrap_or((&p.value, "tcp"));
    let ok = port.parse::<u16>().is_ok_and(|n| n > 0) && matches!(proto, "tcp" | "udp" | "sctp");
    if ok {
        return Some(format!("{port}/{proto}"));
    }
    diags.push(
        Diagnostic::error(codes::BAD_PORT, format!("`{}` is not a port", p.value))
            .with_span(Some(p.span))
            .with_label("this port")
            .with_help("write e.g. `\"8080\"` or `\"53/udp\"`"),
    );
    None
}

type AbsCheck<'a> = dyn Fn(&mut Vec<Diagnostic>, &str, &Sp<String>) + 'a;

fn step(
    diags: &mut Vec<Diagnostic>,
    n: usize,
    s: &Sp<RawStep>,
    abs: &AbsCheck<'_>,
) -> Option<Step> {
    let r = &s.value;
    let actions: Vec<(&str, Span)> = [
        ("run", r.run.as_ref().map(|x| x.span)),
        ("copy", r.copy.as_ref().map(|x| x.span)),
        ("env", r.env.as_ref().map(|x| x.span)),
        ("workdir", r.workdir.as_ref().map(|x| x.span)),
        ("user", r.user.as_ref().map(|x| x.span)),
        ("label", r.label.as_ref().map(|x| x.span)),
    ]
    .into_iter()
    .filter_map(|(k, sp)| sp.map(|sp| (k, sp)))
    .collect();
    let start = Span::new(s.span.start, s.span.start);
    match actions.as_slice() {
        [] => {
            diags.push(
                Diagnostic::error(codes::BUILD_BAD_STEP, format!("step {n} has no action"))
                    .with_span(Some(start))
                    .with_label("this step")
                    .with_help("give it one of `run`, `copy`, `env`, `workdir`, `user`, `label`"),
            );
            return None;
        }
        [_] => {}
        [(first, _), (second, sp), ..] => {
            diags.push(
                Diagnostic::error(
                    codes::BUILD_BAD_STEP,
                    format!("step {n} has several actions: `{first}` and `{second}`"),
                )
                .with_span(Some(*sp))
                .with_label("a second action")
                .with_help("one action per `[[build.steps]]` table: split it in two"),
            );
            return None;
        }
    }
    let (kind, action_span) = actions[0];
    let only = |diags: &mut Vec<Diagnostic>, key: &str, sp: Option<Span>, owner: &str| {
        if let Some(sp) = sp {
            if kind != owner {
                diags.push(
                    Diagnostic::error(
                        codes::BUILD_BAD_STEP,
                        format!("`{key}` belongs to a `{owner}` step, not a `{kind}` one"),
                    )
                    .with_span(Some(sp))
                    .with_label("not for this step"),
                );
            }
        }
    };
    only(diags, "network", r.network.as_ref().map(|x| x.span), "run");
    only(diags, "cache", r.cache.as_ref().map(|x| x.span), "run");
    only(diags, "extract", r.extract.as_ref().map(|x| x.span), "copy");
    only(diags, "dest", r.dest.as_ref().map(|x| x.span), "copy");
    only(diags, "from", r.from.as_ref().map(|x| x.span), "copy");
    only(diags, "chown", r.chown.as_ref().map(|x| x.span), "copy");
    only(diags, "chmod", r.chmod.as_ref().map(|x| x.span), "copy");
    let action = match kind {
        "run" => {
            let c = r.run.as_ref()?;
            let argv = command(&c.value);
            if argv.is_empty() || argv[0].is_empty() {
                diags.push(
                    Diagnostic::error(codes::BAD_COMMAND, "`run` is empty")
                        .with_span(Some(c.span))
                        .with_label("no command"),
                );
                return None;
            }
            let network = match &r.network {
                None => "none".to_string(),
                Some(n) if matches!(n.value.as_str(), "none" | "host" | "pasta") => n.value.clone(),
                Some(n) => {
                    diags.push(
                        Diagnostic::error(
                            codes::BAD_VALUE,
                            format!("`network` must be none, host or pasta, not `{}`", n.value),
                        )
                        .with_span(Some(n.span))
                        .with_label("unknown network"),
                    );
                    return None;
                }
            };
            let cache = cache_mounts(diags, &r.cache)?;
            Action::Run {
                argv,
                network,
                cache,
            }
        }
        "copy" => {
            let c = r.copy.as_ref()?;
            if c.value.is_empty() {
                diags.push(
                    Diagnostic::error(codes::BUILD_BAD_STEP, "`copy` names no source")
                        .with_span(Some(c.span))
                        .with_label("empty"),
                );
            }
            let Some(dest) = &r.dest else {
                diags.push(
                    Diagnostic::error(codes::MISSING_KEY, format!("step {n}: `copy` needs `dest`"))
                        .with_span(Some(c.span))
                        .with_label("copied where?")
                        .with_help("add e.g. `dest = \"/app/\"`"),
                );
                return None;
            };
            abs(diags, "dest", dest);
            let mut bad = false;
            let mut chown_name = None;
            let chown = match &r.chown {
                None => None,
                Some(o) => match crate::plan::User::parse(&o.value) {
                    Ok(crate::plan::User::Id { uid, gid }) => Some((uid, gid.unwrap_or(uid))),
                    // `${ARG}`s are names until the build replaces them.
                    Ok(crate::plan::User::Name { .. }) => {
                        chown_name = Some(o.value.clone());
                        None
                    }
                    Err(e) => {
                        bad = true;
                        diags.push(
                            Diagnostic::error(codes::BAD_USER, format!("`chown`: {e}"))
                                .with_span(Some(o.span))
                                .with_label("not uid[:gid] or user[:group]")
                                .with_help(e.help()),
                        );
                        None
                    }
                },
            };
            let extract = r.extract.as_ref().is_some_and(|e| e.value);
            if let (true, Some(f)) = (extract, &r.from) {
                bad = true;
                diags.push(
                    Diagnostic::error(
                        codes::BUILD_BAD_STEP,
                        "`extract` unpacks archives of the context, not of another image",
                    )
                    .with_span(Some(f.span))
                    .with_label("a copy from an image")
                    .with_help("drop `extract`, or copy the archive from the context"),
                );
            }
            let chmod = match &r.chmod {
                None => None,
                Some(m) => match u32::from_str_radix(m.value.trim_start_matches("0o"), 8) {
                    Ok(v) if v <= 0o7777 => Some(v),
                    _ => {
                        bad = true;
                        diags.push(
                            Diagnostic::error(
                                codes::BAD_MODE,
                                format!("`chmod` must be an octal mode, not `{}`", m.value),
                            )
                            .with_span(Some(m.span))
                            .with_label("not octal")
                            .with_help("write e.g. `\"0755\"`"),
                        );
                        None
                    }
                },
            };
            if bad {
                return None;
            }
            if r.from.is_some() {
                for src in &c.value {
                    abs(diags, "copy (from an image)", src);
                }
            }
            Action::Copy {
                sources: c.value.clone(),
                dest: dest.value.clone(),
                chown,
                chown_name,
                chmod,
                from: r.from.as_ref().map(|f| f.value.trim().to_string()),
                extract,
            }
        }
        "env" => Action::Env(pairs(&r.env)),
        "workdir" => {
            let w = r.workdir.as_ref()?;
            abs(diags, "workdir", w);
            Action::Workdir(w.value.clone())
        }
        "user" => Action::User(r.user.as_ref()?.value.clone()),
        _ => Action::Label(pairs(&r.label)),
    };
    Some(Step {
        span: action_span,
        action,
    })
}

/// A `run` step's `cache` entries: absolute targets, each once; ids default to the target.
fn cache_mounts(
    diags: &mut Vec<Diagnostic>,
    raw: &Option<Sp<Vec<Sp<RawCache>>>>,
) -> Option<Vec<CacheMount>> {
    let mut out: Vec<CacheMount> = Vec::new();
    let mut bad = false;
    for c in raw.iter().flat_map(|r| r.value.iter()) {
        let mut owner = (0, 0);
        let mut mode = 0o755;
        let (target, id, sharing) = match &c.value {
            RawCache::Target(t) => (Sp::new(t.clone(), c.span), None, None),
            RawCache::Table(t) => {
                let Some(target) = &t.target else {
                    diags.push(
                        Diagnostic::error(codes::MISSING_KEY, "a `cache` table has no `target`")
                            .with_span(Some(c.span))
                            .with_label("mounted where?")
                            .with_help("add e.g. `target = \"/var/cache/apt\"`"),
                    );
                    bad = true;
                    continue;
                };
                let id_of = |diags: &mut Vec<Diagnostic>, what: &str, v: &Option<Sp<i64>>| {
                    let v = v.as_ref()?;
                    match u32::try_from(v.value).ok().filter(|n| *n != u32::MAX) {
                        Some(n) => Some(n),
                        None => {
                            diags.push(
                                Diagnostic::error(
                                    codes::BAD_USER,
                                    format!(
                                        "a cache's `{what}` must be an id from 0 to 4294967294"
                                    ),
                                )
                                .with_span(Some(v.span))
                                .with_label("out of range"),
                            );
                            None
                        }
                    }
                };
                owner = (
                    id_of(diags, "uid", &t.uid).unwrap_or(0),
                    id_of(diags, "gid", &t.gid).unwrap_or(0),
                );
                if let Some(m) = &t.mode {
                    match u32::from_str_radix(m.value.trim_start_matches("0o"), 8) {
                        Ok(v) if v <= 0o7777 => mode = v,
                        _ => diags.push(
                            Diagnostic::error(
                                codes::BAD_MODE,
                                format!("a cache's `mode` must be octal, not `{}`", m.value),
                            )
                            .with_span(Some(m.span))
                            .with_label("not octal")
                            .with_help("write e.g. `\"0755\"`"),
                        ),
                    }
                }
                (target.clone(), t.id.clone(), t.sharing.clone())
            }
        };
        let before = diags.len();
        let norm = match super::paths::box_path(&target.value) {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => {
                diags.push(
                    Diagnostic::error(codes::BAD_PATH, format!("bad cache `target`: {e}"))
                        .with_span(Some(target.span))
                        .with_label("this path")
                        .with_help(
                            "a cache target is an absolute path in the box, e.g. `/root/.cache`",
                        ),
                );
                String::new()
            }
        };
        if norm == "/" {
            diags.push(
                Diagnostic::error(codes::BAD_PATH, "a cache cannot be mounted on `/`")
                    .with_span(Some(target.span))
                    .with_label("the root"),
            );
        }
        if out.iter().any(|m| m.target == norm) {
            diags.push(
                Diagnostic::error(
                    codes::BUILD_BAD_STEP,
                    format!("two caches are mounted on `{norm}`"),
                )
                .with_span(Some(target.span))
                .with_label("mounted before"),
            );
        }
        let sharing = match sharing {
            None => Sharing::Shared,
            Some(s) => match s.value.as_str() {
                "shared" => Sharing::Shared,
                "locked" => Sharing::Locked,
                "private" => Sharing::Private,
                other => {
                    diags.push(
                        Diagnostic::error(
                            codes::BAD_VALUE,
                            format!("`sharing` must be shared, locked or private, not `{other}`"),
                        )
                        .with_span(Some(s.span))
                        .with_label("unknown sharing"),
                    );
                    Sharing::Shared
                }
            },
        };
        let id = match id {
            Some(i) if i.value.trim().is_empty() => {
                diags.push(
                    Diagnostic::error(codes::BAD_VALUE, "a cache's `id` is empty")
                        .with_span(Some(i.span))
                        .with_label("empty"),
                );
                String::new()
            }
            Some(i) => i.value,
            None => norm.clone(),
        };
        if out.iter().any(|m| m.id == id) {
            // One lock per cache and step: a second would wait for the first.
            diags.push(
                Diagnostic::error(
                    codes::BUILD_BAD_STEP,
                    format!("two caches of this step are the cache `{id}`"),
                )
                .with_span(Some(c.span))
                .with_label("named before")
                .with_help("mount a cache once per step, or give this one its own `id`"),
            );
        }
        if diags.len() > before {
            bad = true;
            continue;
        }
        out.push(CacheMount {
            target: norm,
            id,
            sharing,
            uid: owner.0,
            gid: owner.1,
            mode,
        });
    }
    (!bad).then_some(out)
}

/// `uid[:gid]` in numbers; the gid defaults to the uid.
pub fn parse_chown(s: &str) -> Option<(u32, u32)> {
    crate::plan::User::parse_ids(s)
}

/// A recipe file read and resolved: the recipe and its warnings, or every diagnostic; either
/// way with the origin (the file's text) to render them against.
pub type Loaded = Result<(Recipe, Vec<Diagnostic>), Vec<Diagnostic>>;

/// Read a recipe: a `Foxfile.toml` or a `Foxbox.toml` with a `[build]` table, with the bases
/// it `extends` (a base's relative paths start at the base's directory). Every problem of the
/// file is reported (the other sections' syntax and keys too); relative paths start at the
/// file's directory. The third value puts a diagnostic about the recipe (now or at build time)
/// in the file that wrote the part it points at.
pub fn load(path: &Path) -> (Loaded, crate::plan::Origin, Locate) {
    let base = super::file::spec_dir(path);
    let text = match super::file::read_spec(path) {
        Ok(t) => t,
        Err(e) => {
            let origin = crate::plan::Origin::Spec {
                path: path.to_path_buf(),
                dir: base,
                text: String::new(),
            };
            let d = Diagnostic::error(codes::READ, format!("cannot read {}: {e}", path.display()));
            return (Err(vec![d]), origin, Box::new(|d| d));
        }
    };
    let comp = super::compose::composition(&text, path, &base);
    let merged = comp.merged();
    let (raw, read) = super::parse::from_tree(&merged.tree);
    let mut diagnostics = merged.diagnostics;
    diagnostics.extend(comp.diagnostics.iter().cloned());
    diagnostics.extend(read);
    let parsed = super::parse::Parsed {
        raw,
        diagnostics,
        syntax_spans: merged.syntax,
    };
    let located = |ds: Vec<Diagnostic>| ds.into_iter().map(|d| comp.locate(d)).collect();
    let loaded = match check_parsed(parsed, &base) {
        Ok((r, ds)) => Ok((r, located(ds))),
        Err(ds) => Err(located(ds)),
    };
    let origin = crate::plan::Origin::Spec {
        path: path.to_path_buf(),
        dir: base,
        text,
    };
    (loaded, origin, Box::new(move |d| comp.locate(d)))
}

/// Puts a diagnostic whose spans point into a spec made of several files in the right file.
pub type Locate = Box<dyn Fn(Diagnostic) -> Diagnostic>;

/// Whether the spec file at `path`, with its bases, has a `[build]` table (`up` then builds
/// its image first). An unreadable or malformed file has none: loading it reports why.
pub fn has_recipe(path: &Path) -> bool {
    super::file::read_spec(path).is_ok_and(|t| {
        super::compose::raw_composed(&t, path, &super::file::spec_dir(path))
            .build
            .is_some()
    })
}

/// [`load`] on text in memory, without bases; `base` is where relative paths start (absolute).
pub fn check_str(text: &str, base: &Path) -> Loaded {
    check_parsed(super::parse::parse(text), base)
}

fn check_parsed(parsed: super::parse::Parsed, base: &Path) -> Loaded {
    let Some(raw) = &parsed.raw.build else {
        let mut diags = parsed.diagnostics;
        if !diags.iter().any(Diagnostic::is_error) {
            diags.push(
                Diagnostic::error(codes::BUILD_NO_RECIPE, "this file has no [build] table")
                    .with_help("a recipe starts with `[build]` and `from = \"IMAGE\"`"),
            );
        }
        return Err(diags);
    };
    let (recipe, more) = resolve(raw, base);
    let diags = super::parse::merge(parsed.diagnostics, more, &parsed.syntax_spans);
    match recipe {
        Some(r) if !diags.iter().any(Diagnostic::is_error) => Ok((r, diags)),
        _ => Err(diags),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_substituted_and_shell_variables_stay() {
        let v = |k: &str| (k == "V").then(|| "1.2".to_string());
        assert_eq!(
            substitute("x${V}y ${HOME} $V ${", &v),
            "x1.2y ${HOME} $V ${"
        );
        assert_eq!(arg_refs("a ${V} ${HOME} ${9x} ${"), ["V", "HOME"]);
    }

    #[test]
    fn cache_extract_and_chown_keys_are_checked() {
        let t = r#"[build]
from = "busybox"
[[build.steps]]
copy = "a.tar"
dest = "/x/"
extract = true
from = "other"
[[build.steps]]
copy = "f"
dest = "/f"
cache = ["/c"]
chown = "1:fox"
[[build.steps]]
run = "true"
cache = ["/c", "/c/", { id = "" , target = "/d" }, { id = "x" }, { target = "/e", id = "/c" }]
"#;
        let d = check_str(t, Path::new("/")).unwrap_err();
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        for want in [
            "`extract` unpacks archives of the context",
            "`cache` belongs to a `run` step, not a `copy` one",
            "`chown`: `1:fox` mixes a number and a name",
            "two caches are mounted on `/c`",
            "a cache's `id` is empty",
            "a `cache` table has no `target`",
            "two caches of this step are the cache `/c`",
        ] {
            assert!(msgs.iter().any(|m| m.contains(want)), "{want}: {msgs:?}");
        }
        let ok = "[build]\nfrom = \"${B}\"\n[build.args]\nB = \"busybox\"\n[[build.steps]]\ncopy = \"f\"\ndest = \"/f\"\nchown = \"fox:staff\"\n";
        let (r, _) = check_str(ok, Path::new("/")).unwrap();
        assert!(matches!(&r.stages[0].from, From::Args { text, .. } if text == "${B}"));
        assert!(matches!(
            &r.stages[0].steps[0].action,
            Action::Copy { chown: None, chown_name: Some(n), .. } if n == "fox:staff"
        ));
        let args = [("B".to_string(), "scratch".to_string())].into();
        assert_eq!(r.with_args(&args).unwrap().stages[0].from, From::Scratch);
    }

    #[test]
    fn chown_forms() {
        assert_eq!(parse_chown("1000"), Some((1000, 1000)));
        assert_eq!(parse_chown("1:2"), Some((1, 2)));
        assert_eq!(parse_chown("fox"), None);
    }
}
