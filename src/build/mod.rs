//! `foxbox build`: a recipe ([`crate::spec::build::Recipe`]) into an image, one cached step at
//! a time.
//!
//! Beside the runner (it uses the runner, never the other way): a `run` step is a box started
//! through [`crate::runner::prepare_image`] and [`crate::runner::run_foreground`], the same
//! executor as `run` and `up`, with the network `none` unless the step asks; its overlay upper
//! directory becomes the step's layer ([`crate::image::store::NewLayer::Upper`]). A `copy` step's
//! layer is made from the context's files; `env`, `workdir`, `user` and `label` change only the
//! configuration. Every step's result is an (unnamed) image, found again by its cache key:
//! the parent image, the step with its `${ARG}`s replaced, the digest of the files it copies
//! and the build arguments it uses.
//!
//! Everything that can be checked before a step runs is: the `from` image, every `copy`
//! source (inside the context, not ignored, matching something), the build arguments.

pub mod containerfile;
mod exercise;
pub use exercise::exercise;
pub mod context;
pub mod output;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::diag::codes::build as build_codes;
use crate::diag::Diagnostic;
use crate::image::archive::TarKind;
use crate::image::store::{BuildStep, CopyItem, NewLayer};
use crate::image::{Image, ImageConfig, Store};
use crate::plan::{ImageRef, Span};
use crate::runner::{self, RunOptions};
use crate::spec::build::{
    arg_refs, stage_deps, substitute, Action, CacheMount, From, MergeConflicts, Recipe, Sharing,
    Stage, Step,
};
use crate::spec::codes;
use crate::spec::flags::{check_run_flags, RunFlags};
use crate::store::lock::{Lock, Mode as LockMode};
use crate::store::paths::Paths;

/// The context files' digests, by their `stat` (see [`context::DigestCache`]), in the store.
const DIGEST_CACHE: &str = "build-digests.json";

/// How many lines of a failing step's output its diagnostic shows.
const LAST_LINES: usize = 10;

/// What the caller asks of a build besides the recipe.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `name:tag`s for the image (full names).
    pub tags: Vec<String>,
    /// Run every step again.
    pub no_cache: bool,
    /// `--build-arg K=V`, in order.
    pub build_args: Vec<(String, String)>,
    /// Show each `run` step's output as it runs.
    pub echo: bool,
    /// Build this stage (by name) and stop: it is the image.
    pub target: Option<String>,
    /// `SOURCE_DATE_EPOCH`: layer times are clamped to it (a reproducible build).
    pub source_date_epoch: Option<u64>,
    /// With `echo`, stderr being a terminal: a `run` step's output shows as a window of its
    /// last lines, folded away when the step succeeds (BuildKit's display).
    pub fold: bool,
}

/// Where a build reports its progress.
pub trait Progress {
    /// Step `i` of `n` starts (`i` from 1).
    fn step(&mut self, i: usize, n: usize, action: &Action);
    /// It ended: taken from the cache, or made in `took`.
    fn done(&mut self, i: usize, n: usize, cached: bool, took: Duration);
    /// A warning about the recipe or the arguments.
    fn warn(&mut self, d: Diagnostic);
    /// A stage's `merge` is done (or was cached).
    fn merged(&mut self, _images: &[String], _took: Duration) {}
}

/// A build that failed: diagnostics against the recipe file.
#[derive(Debug, thiserror::Error)]
#[error("{}", diagnostics.first().map(|d| d.message.as_str()).unwrap_or("the build failed"))]
pub struct BuildError {
    pub diagnostics: Vec<Diagnostic>,
}

fn fail(code: &str, message: impl Into<String>, span: Option<Span>) -> BuildError {
    BuildError {
        diagnostics: vec![Diagnostic::error(code, message).with_span(span)],
    }
}

fn internal(e: impl std::fmt::Display) -> BuildError {
    fail(codes::BUILD_INTERNAL, e.to_string(), None)
}

/// The image configuration as the steps change it, with what the store's config lacks.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct State {
    config: ImageConfig,
    labels: BTreeMap<String, String>,
    expose: Vec<String>,
}

impl State {
    /// An image's configuration, with the labels and ports its OCI config has.
    fn of(store: &Store, img: &Image) -> State {
        let (labels, expose) = store.labels_and_ports(&img.id);
        State {
            config: img.config.clone(),
            labels,
            expose,
        }
    }

    /// Take what a `merge`d image changes of `base` (the stage's `from`, as its layers are
    /// those above it) over what this has; its command, entrypoint, working directory and
    /// user stay this one's. Its environment (a variable it sets to another value than
    /// `base`'s is its value; `PATH` the union of both lists), labels and exposed ports. The
    /// variables an earlier merged image (one in `set`) had set otherwise are returned.
    fn merge(
        &mut self,
        other: &State,
        base: &State,
        set: &mut BTreeMap<String, String>,
    ) -> Vec<String> {
        let mut clashes = Vec::new();
        for e in &other.config.env {
            let Some((k, v)) = e.split_once('=') else {
                continue;
            };
            if base.env(k) == Some(v) {
                continue;
            }
            let value = match self.env("PATH") {
                Some(mine) if k == "PATH" => merge_path(mine, v),
                _ => v.to_string(),
            };
            if k != "PATH" && set.get(k).is_some_and(|before| before != v) {
                clashes.push(k.to_string());
            }
            set.insert(k.to_string(), v.to_string());
            self.set_env(&[(k.to_string(), value)]);
        }
        for (k, v) in &other.labels {
            if base.labels.get(k) != Some(v) {
                self.labels.insert(k.clone(), v.clone());
            }
        }
        for p in &other.expose {
            if !self.expose.contains(p) {
                self.expose.push(p.clone());
            }
        }
        clashes
    }

    fn env(&self, key: &str) -> Option<&str> {
        self.config
            .env
            .iter()
            .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    fn set_env(&mut self, pairs: &[(String, String)]) {
        for (k, v) in pairs {
            let kv = format!("{k}={v}");
            match self
                .config
                .env
                .iter_mut()
                .find(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k))
            {
                Some(e) => *e = kv,
                None => self.config.env.push(kv),
            }
        }
    }

    fn apply(&mut self, a: &Action) {
        match a {
            Action::Env(p) => self.set_env(p),
            Action::Workdir(w) => self.config.workdir = Some(w.clone()),
            Action::User(u) => self.config.user = Some(u.clone()),
            Action::Label(p) => self.labels.extend(p.iter().cloned()),
            Action::Run { .. } | Action::Copy { .. } => {}
        }
    }
}

/// `PATH` lists joined: `theirs`' entries that `mine` lacks go where `theirs` has them, before
/// the first of `mine`'s that follows them there (else at the end), so `/go/bin:/usr/bin` over
/// `/usr/local/bin:/usr/bin` gives `/usr/local/bin:/go/bin:/usr/bin`.
fn merge_path(mine: &str, theirs: &str) -> String {
    let mut out: Vec<&str> = mine.split(':').filter(|p| !p.is_empty()).collect();
    let theirs: Vec<&str> = theirs.split(':').filter(|p| !p.is_empty()).collect();
    for (k, p) in theirs.iter().enumerate() {
        if out.contains(p) {
            continue;
        }
        let at = theirs[k + 1..]
            .iter()
            .find_map(|next| out.iter().position(|o| o == next))
            .unwrap_or(out.len());
        out.insert(at, p);
    }
    out.join(":")
}

/// A step made ready: arguments replaced, copy sources expanded, its cache key's parts.
struct Ready<'a> {
    step: &'a Step,
    action: Action,
    copied: Option<(Vec<CopyItem>, String)>,
    /// `extract`: the tar archives among the sources, with the directory they unpack into.
    archives: Vec<(PathBuf, String)>,
    args_used: Vec<(String, String)>,
}

/// The stages to build for `target` (default: the image, the last), each after those it
/// needs.
fn stage_order(recipe: &Recipe, target: usize) -> Vec<usize> {
    fn visit(r: &Recipe, i: usize, seen: &mut Vec<bool>, out: &mut Vec<usize>) {
        if seen[i] {
            return;
        }
        seen[i] = true;
        for (j, _) in stage_deps(r, i) {
            visit(r, j, seen, out);
        }
        out.push(i);
    }
    let mut seen = vec![false; recipe.stages.len()];
    let mut out = Vec::new();
    visit(recipe, target, &mut seen, &mut out);
    out
}

/// Build the recipe; the final image (named with `opts.tags`).
pub fn build(
    paths: &Paths,
    recipe: &Recipe,
    opts: &Options,
    progress: &mut dyn Progress,
) -> Result<Image, BuildError> {
    let mut args: BTreeMap<String, String> = recipe.args.iter().cloned().collect();
    for (k, v) in &opts.build_args {
        if !args.contains_key(k) {
            progress.warn(
                Diagnostic::warning(
                    codes::BUILD_UNKNOWN_ARG,
                    format!("--build-arg {k} is not an argument of this recipe: it is not used"),
                )
                .with_help("declare it in [build.args] to use it as ${NAME}"),
            );
            continue;
        }
        args.insert(k.clone(), v.clone());
    }
    // `from`s written with arguments (`ARG` before `FROM`) name their images now.
    let resolved = recipe
        .with_args(&args)
        .map_err(|diagnostics| BuildError { diagnostics })?;
    let recipe = &resolved;
    let last = recipe.stages.len().saturating_sub(1);
    let target = match &opts.target {
        None => last,
        Some(t) => recipe.stage_named(t).ok_or_else(|| {
            let known: Vec<String> = recipe
                .stages
                .iter()
                .filter_map(|s| s.name.as_ref().map(|n| n.value.clone()))
                .collect();
            BuildError {
                diagnostics: vec![Diagnostic::error(
                    build_codes::STAGE,
                    format!("--target {t}: the recipe has no stage of that name"),
                )
                .with_help(if known.is_empty() {
                    "this recipe has no named stages".to_string()
                } else {
                    format!("its stages are {}", known.join(", "))
                })],
            }
        })?,
    };
    let order = stage_order(recipe, target);
    let context = context::canonical(&recipe.context).map_err(|e| {
        internal(format!(
            "the build context {} cannot be used: {e}",
            recipe.context.display()
        ))
    })?;
    let ignore = context::Ignore::load(&context).map_err(internal)?;

    // Everything checked before anything runs.
    let mut digests = context::DigestCache::load(&paths.images().join(DIGEST_CACHE));
    let mut ready: BTreeMap<usize, Vec<Ready<'_>>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut n = 0;
    for &si in &order {
        let mut list = Vec::new();
        for (i, step) in recipe.stages[si].steps.iter().enumerate() {
            let raw = serde_json::to_string(&step.action).unwrap_or_default();
            let mut used: Vec<String> = arg_refs(&raw)
                .into_iter()
                .filter(|n| args.contains_key(*n))
                .map(str::to_string)
                .collect();
            used.sort();
            used.dedup();
            let action = step
                .action
                .map_strings(&|s| substitute(s, &|n| args.get(n).cloned()));
            let mut archives = Vec::new();
            let copied = match &action {
                Action::Copy {
                    sources,
                    dest,
                    from: None,
                    extract,
                    ..
                } => {
                    let srcs: Vec<String> = sources.iter().map(|s| s.value.clone()).collect();
                    match context::expand(&context, &ignore, &srcs, dest, &mut digests) {
                        Ok(mut c) => {
                            if *extract {
                                match split_archives(&mut c, dest) {
                                    Ok(a) => archives = a,
                                    Err(why) => problems.push(
                                        Diagnostic::error(
                                            build_codes::ARCHIVE,
                                            format!("step {}: {why}", n + i + 1),
                                        )
                                        .with_span(Some(step.span))
                                        .with_label("this step")
                                        .with_help(
                                            "unpacked archives are tar, tar.gz or tar.zst; decompress it first, or COPY it as a file",
                                        ),
                                    ),
                                }
                            }
                            Some((c.items, c.digest))
                        }
                        Err((k, e)) => {
                            let span = sources.get(k).map(|s| s.span).unwrap_or(step.span);
                            let code = match e {
                                context::SourceError::Outside(_)
                                | context::SourceError::LinkOutside { .. } => {
                                    codes::BUILD_COPY_OUTSIDE
                                }
                                _ => codes::BUILD_COPY_SOURCE,
                            };
                            problems.push(
                                Diagnostic::error(code, format!("step {}: {e}", n + i + 1))
                                    .with_span(Some(span))
                                    .with_label("this source")
                                    .with_help(
                                        "copy sources are files, directories or globs inside the build context",
                                    ),
                            );
                            None
                        }
                    }
                }
                _ => None,
            };
            list.push(Ready {
                step,
                action,
                copied,
                archives,
                args_used: used
                    .into_iter()
                    .map(|n| {
                        let v = args.get(&n).cloned().unwrap_or_default();
                        (n, v)
                    })
                    .collect(),
            });
        }
        n += list.len();
        ready.insert(si, list);
    }
    if !problems.is_empty() {
        return Err(BuildError {
            diagnostics: problems,
        });
    }

    let store = Store::open(paths).map_err(internal)?;
    digests.save();
    reap_abandoned_step_boxes(paths, &store);
    let mut built: BTreeMap<usize, Image> = BTreeMap::new();
    let mut state = State::default();
    let mut parent: Option<Image> = None;
    let mut i = 0;
    for &si in &order {
        let stage = &recipe.stages[si];
        let find = |name: &str, span: Span, built: &BTreeMap<usize, Image>| match recipe
            .stage_named(name)
            .and_then(|j| built.get(&j))
        {
            Some(img) => Ok(img.clone()),
            None => stored_image(&store, recipe, name, span),
        };
        parent = match &stage.from {
            From::Stage(name) => Some(find(name, stage.from_span, &built)?),
            _ => base_image(&store, recipe, stage)?,
        };
        state = match &parent {
            Some(p) => State::of(&store, p),
            None => State::default(),
        };
        if !stage.merge.is_empty() {
            let t = Instant::now();
            let mut images = Vec::new();
            for m in &stage.merge {
                images.push(find(&m.value, m.span, &built)?);
            }
            let base = state.clone();
            let mut set = BTreeMap::new();
            for (img, m) in images.iter().zip(&stage.merge) {
                let clashes = state.merge(&State::of(&store, img), &base, &mut set);
                if !clashes.is_empty() {
                    progress.warn(
                        Diagnostic::warning(
                            build_codes::MERGE_ENV,
                            format!(
                                "`{}` sets {} to another value than an image merged before it: its value is kept",
                                m.value,
                                clashes.join(", ")
                            ),
                        )
                        .with_span(Some(m.span))
                        .with_label("a later image wins")
                        .with_help("set the variable in the recipe's `env` to say which value the image has"),
                    );
                }
            }
            let img = merge(&store, stage, parent.as_ref(), &images, &state, opts)?;
            progress.merged(
                &stage
                    .merge
                    .iter()
                    .map(|m| m.value.clone())
                    .collect::<Vec<_>>(),
                t.elapsed(),
            );
            state.config = img.config.clone();
            parent = Some(img);
        }
        for r in ready.get(&si).map(Vec::as_slice).unwrap_or_default() {
            i += 1;
            progress.step(i, n, &r.action);
            let t = Instant::now();
            state.apply(&r.action);
            let source = match &r.action {
                Action::Copy { from: Some(f), .. } => Some(find(f, r.step.span, &built)?),
                _ => None,
            };
            let key = step_key(parent.as_ref(), r, source.as_ref(), opts.source_date_epoch);
            if !opts.no_cache {
                if let Some(img) = store.find_build_step(&key).map_err(internal)? {
                    progress.done(i, n, true, t.elapsed());
                    parent = Some(img);
                    continue;
                }
            }
            let layer = match &r.action {
                Action::Run {
                    argv,
                    network,
                    cache,
                } => {
                    let Some(base) = &parent else {
                        return Err(fail(
                            codes::BUILD_STEP_FAILED,
                            format!("step {i} runs a command, but the image has nothing yet (`from = \"scratch\"`)"),
                            Some(r.step.span),
                        ));
                    };
                    let img = run_step(
                        paths,
                        &store,
                        base,
                        StepRun {
                            argv,
                            network,
                            cache,
                        },
                        &key,
                        &state,
                        opts,
                        (i, n),
                        r,
                    )?;
                    progress.done(i, n, false, t.elapsed());
                    parent = Some(img);
                    continue;
                }
                Action::Copy {
                    chown,
                    chown_name,
                    chmod,
                    from: Some(f),
                    sources,
                    dest,
                    ..
                } => {
                    let src = source.as_ref().ok_or_else(|| internal("no source image"))?;
                    let srcs: Vec<String> = sources.iter().map(|s| s.value.clone()).collect();
                    let items = match store
                        .copy_from_items(&src.layers, &srcs, dest)
                        .map_err(internal)?
                    {
                        Ok(items) => items,
                        Err((k, why)) => {
                            let span = sources.get(k).map(|s| s.span).unwrap_or(r.step.span);
                            return Err(BuildError {
                                diagnostics: vec![Diagnostic::error(
                                    build_codes::COPY_FROM,
                                    format!("step {i}: {why} (`{f}`)"),
                                )
                                .with_span(Some(span))
                                .with_label("this source")
                                .with_help(
                                    "a copy with `from` takes absolute paths in that stage or image",
                                )],
                            });
                        }
                    };
                    NewLayer::Copy {
                        items,
                        owner: owner(&store, parent.as_ref(), *chown, chown_name, i, r)?,
                        chmod: *chmod,
                        archives: Vec::new(),
                        archive_owner: None,
                    }
                }
                Action::Copy {
                    chown,
                    chown_name,
                    chmod,
                    ..
                } => {
                    let owner = owner(&store, parent.as_ref(), *chown, chown_name, i, r)?;
                    NewLayer::Copy {
                        items: r.copied.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
                        owner: Some(owner.unwrap_or((0, 0))),
                        chmod: *chmod,
                        archives: r.archives.clone(),
                        archive_owner: owner,
                    }
                }
                _ => NewLayer::None,
            };
            let img = store
                .commit_build_step(BuildStep {
                    clamp_mtime: opts.source_date_epoch,
                    created_by: history_text(&r.action),
                    ..step_of(&key, parent.clone(), &state, layer, Vec::new())
                })
                .map_err(|e| {
                    fail(
                        codes::BUILD_INTERNAL,
                        format!("step {i}: {e}"),
                        Some(r.step.span),
                    )
                })?;
            progress.done(i, n, false, t.elapsed());
            parent = Some(img);
        }
        if let Some(p) = &parent {
            built.insert(si, p.clone());
        }
    }

    // The image's own configuration over what the steps left (the recipe's `[build]` keys
    // are the last stage's).
    if target == last {
        let c = &recipe.config;
        state.set_env(&c.env);
        if let Some(v) = &c.cmd {
            state.config.cmd = v.clone();
        }
        if let Some(v) = &c.entrypoint {
            state.config.entrypoint = v.clone();
            if c.cmd.is_none() {
                // As Docker: a new entrypoint drops the base's command.
                state.config.cmd.clear();
            }
        }
        if let Some(v) = &c.workdir {
            state.config.workdir = Some(v.clone());
        }
        if let Some(v) = &c.user {
            state.config.user = Some(v.clone());
        }
        for p in &c.expose {
            if !state.expose.contains(p) {
                state.expose.push(p.clone());
            }
        }
        state.labels.extend(c.labels.iter().cloned());
    }
    let key = hex::encode(Sha256::digest(
        serde_json::to_vec(&("final", parent.as_ref().map(|p| p.id.as_str()), &state))
            .unwrap_or_default(),
    ));
    store
        .commit_build_step(step_of(
            &key,
            parent,
            &state,
            NewLayer::None,
            opts.tags.clone(),
        ))
        .map_err(internal)
}

/// Stack the layers each of `images` has above `base` onto it, refusing an image built on
/// another base and (unless the stage settles them) paths two images change differently.
fn merge(
    store: &Store,
    stage: &Stage,
    base: Option<&Image>,
    images: &[Image],
    state: &State,
    opts: &Options,
) -> Result<Image, BuildError> {
    let key = hex::encode(Sha256::digest(
        serde_json::json!({
            "merge": base.map(|b| b.id.as_str()).unwrap_or("scratch"),
            "images": images.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            "conflicts": stage.merge_conflicts,
        })
        .to_string()
        .as_bytes(),
    ));
    if !opts.no_cache {
        if let Some(img) = store.find_build_step(&key).map_err(internal)? {
            return Ok(img);
        }
    }
    let base_name = match &stage.from {
        From::Scratch => "scratch".to_string(),
        From::Tarball(p) => p.display().to_string(),
        From::Image(n) | From::Stage(n) | From::Args { text: n, .. } => n.clone(),
    };
    match store.merge_conflicts(base, images).map_err(internal)? {
        Err(k) => {
            let m = &stage.merge[k];
            return Err(BuildError {
                diagnostics: vec![Diagnostic::error(
                    build_codes::MERGE_BASE,
                    format!(
                        "`{}` is not built on `{base_name}`: its layers do not start with that image's",
                        m.value
                    ),
                )
                .with_span(Some(m.span))
                .with_label("another base")
                .with_help("merge only images built `from` the same image as this stage")],
            });
        }
        Ok(conflicts)
            if !conflicts.is_empty() && stage.merge_conflicts == MergeConflicts::Refuse =>
        {
            const SHOWN: usize = 10;
            let lines: Vec<String> = conflicts
                .iter()
                .take(SHOWN)
                .map(|(p, who)| {
                    let names: Vec<&str> =
                        who.iter().map(|k| stage.merge[*k].value.as_str()).collect();
                    format!("  {p} (changed by {})", names.join(", "))
                })
                .collect();
            let more = conflicts.len().saturating_sub(SHOWN);
            let span = stage.merge.first().map(|m| m.span);
            return Err(BuildError {
                diagnostics: vec![Diagnostic::error(
                    build_codes::MERGE_CONFLICT,
                    format!(
                        "the merged images change {} path(s) differently:\n{}{}",
                        conflicts.len(),
                        lines.join("\n"),
                        if more > 0 {
                            format!("\n  and {more} more")
                        } else {
                            String::new()
                        }
                    ),
                )
                .with_span(span)
                .with_label("these images")
                .with_help(
                    "set `merge_conflicts = \"last-wins\"` to keep the later image's version",
                )],
            });
        }
        Ok(_) => {}
    }
    let base_len = base.map(|b| b.layer_digests.len()).unwrap_or(0);
    let mut digests = Vec::new();
    let mut sizes = Vec::new();
    for img in images {
        let rec_sizes = store.layer_sizes(&img.id).map_err(internal)?;
        for (k, d) in img.layer_digests.iter().enumerate().skip(base_len) {
            digests.push(d.clone());
            sizes.push(rec_sizes.get(k).copied().unwrap_or(0));
        }
    }
    store
        .commit_build_step(BuildStep {
            created_by: format!(
                "MERGE {}",
                stage
                    .merge
                    .iter()
                    .map(|m| m.value.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            ..step_of(
                &key,
                base.cloned(),
                state,
                NewLayer::Existing { digests, sizes },
                Vec::new(),
            )
        })
        .map_err(internal)
}

fn step_of(
    key: &str,
    parent: Option<Image>,
    state: &State,
    layer: NewLayer,
    names: Vec<String>,
) -> BuildStep {
    BuildStep {
        clamp_mtime: None,
        created_by: String::new(),
        key: key.to_string(),
        parent,
        config: state.config.clone(),
        labels: state.labels.clone(),
        expose: state.expose.clone(),
        names,
        layer,
    }
}

/// The cache key of a step on `parent` (`source`: the image a `copy` with `from` reads).
fn step_key(
    parent: Option<&Image>,
    r: &Ready<'_>,
    source: Option<&Image>,
    epoch: Option<u64>,
) -> String {
    let v = serde_json::json!({
        "epoch": epoch,
        "parent": parent.map(|p| p.id.as_str()).unwrap_or("scratch"),
        "action": &r.action,
        "files": r.copied.as_ref().map(|c| c.1.as_str()),
        "source": source.map(|s| s.id.as_str()),
        "args": &r.args_used,
    });
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

/// A stage's `from` image (`None`: scratch): a stored one, a tarball imported, or a
/// reference with a registry pulled when the store lacks it.
fn base_image(store: &Store, recipe: &Recipe, stage: &Stage) -> Result<Option<Image>, BuildError> {
    match &stage.from {
        From::Scratch => Ok(None),
        From::Tarball(path) => {
            let r = ImageRef::Tarball { path: path.clone() };
            store.resolve(&r).map(Some).map_err(|e| {
                from_error(&path.display().to_string(), &e.to_string(), stage.from_span)
            })
        }
        From::Image(text) | From::Stage(text) => {
            stored_image(store, recipe, text, stage.from_span).map(Some)
        }
        From::Args { text, .. } => Err(internal(format!(
            "`{text}` was not resolved with the build arguments"
        ))),
    }
}

/// An image named in a recipe: stored, or pulled when it names a registry.
fn stored_image(
    store: &Store,
    recipe: &Recipe,
    text: &str,
    span: Span,
) -> Result<Image, BuildError> {
    let r = crate::spec::image::parse_image(text, &recipe.context)
        .map_err(|e| fail(codes::BAD_IMAGE, e.to_string(), Some(span)))?;
    let found = match store.resolve(&r) {
        Ok(i) => Ok(i),
        Err(e) => match &r {
            ImageRef::Stored(n) if n.registry().is_some() => crate::oci::Settings::from_env()
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    let client = crate::oci::Client::new(s);
                    let ctx = crate::image::PullContext::new(&client);
                    store.resolve_or_pull(&r, &ctx).map_err(|e| e.to_string())
                }),
            _ => Err(e.to_string()),
        },
    };
    found.map_err(|e| from_error(text, &e, span))
}

fn from_error(name: &str, e: &str, span: Span) -> BuildError {
    BuildError {
        diagnostics: vec![Diagnostic::error(
            codes::BUILD_FROM,
            format!("the image `{name}` cannot be had: {e}"),
        )
        .with_span(Some(span))
        .with_label("this image")
        .with_help(
            "import or pull it first (`foxbox image import`, `foxbox pull`), or fix the name",
        )],
    }
}

/// What a `run` step runs.
struct StepRun<'a> {
    argv: &'a [String],
    network: &'a str,
    cache: &'a [CacheMount],
}

/// Run a `run` step in a box of `base` and record its layer.
#[allow(clippy::too_many_arguments)]
fn run_step(
    paths: &Paths,
    store: &Store,
    base: &Image,
    what: StepRun<'_>,
    key: &str,
    state: &State,
    opts: &Options,
    (i, n): (usize, usize),
    r: &Ready<'_>,
) -> Result<Image, BuildError> {
    let StepRun {
        argv,
        network,
        cache,
    } = what;
    let span = Some(r.step.span);
    let step_fail = |msg: String, help: Option<String>| {
        let mut d = Diagnostic::error(codes::BUILD_STEP_FAILED, msg)
            .with_span(span)
            .with_label("this step");
        if let Some(h) = help {
            d = d.with_help(h);
        }
        BuildError {
            diagnostics: vec![d],
        }
    };
    // Named for what it is, in `ps` while it runs (and after, should the build be killed).
    let name = step_box_name();
    let flags = RunFlags {
        name: Some(name.clone()),
        image: STEP_IMAGE.into(),
        // As Docker's RUN: the step's argv alone, never after the image's entrypoint.
        entrypoint: Some(String::new()),
        command: argv.to_vec(),
        network: Some(network.to_string()),
        ..RunFlags::default()
    };
    let checked = check_run_flags(&flags, &PathBuf::from("/"), &|_| None);
    let Some(mut plan) = checked.plan else {
        let why: Vec<String> = checked
            .diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect();
        return Err(step_fail(
            format!("step {i}/{n} cannot run: {}", why.join("; ")),
            None,
        ));
    };
    let run_opts = RunOptions {
        auto_remove: false,
        cgroup_parent: None,
        tty: Some(false),
        // The step's image is the build's own, already in the store.
        pull: crate::image::PullPolicy::Never,
        // Copy-ups are not fsync'ed one by one (a `chmod -R` over an image cost a journal
        // commit per file): the layer is synced once, when it is stored.
        volatile_upper: true,
    };
    let box_store = Store::open_for_boxes(paths).map_err(internal)?;
    let image = store_image(store, base)?;
    let scratch = store.build_scratch(&name).map_err(internal)?;
    // Held until the step's layer is stored: a `locked` cache is this step's alone, and
    // `image prune --cache-mounts` leaves a cache in use.
    let mut _cache_locks = Vec::new();
    // Locked in the order of their ids, as every build does: two builds never wait for each
    // other's second cache. Mounted in the recipe's order (a target may be inside another).
    let mut order: Vec<usize> = (0..cache.len()).collect();
    order.sort_by(|a, b| cache[*a].id.cmp(&cache[*b].id));
    let mut sources: Vec<Option<PathBuf>> = vec![None; cache.len()];
    for k in order {
        let c = &cache[k];
        // Locked before the directory is looked at: a prune may remove it until then.
        let lock_path = store.cache_mount_lock(&c.id).map_err(internal)?;
        let lock_err = |e| internal(format!("cannot lock the cache `{}`: {e}", c.id));
        let held = match c.sharing {
            Sharing::Shared => Some(Lock::acquire(&lock_path, LockMode::Shared).map_err(lock_err)?),
            Sharing::Locked => {
                Some(Lock::acquire(&lock_path, LockMode::Exclusive).map_err(lock_err)?)
            }
            Sharing::Private => {
                Lock::try_acquire(&lock_path, LockMode::Exclusive).map_err(lock_err)?
            }
        };
        let source = match held {
            Some(l) => {
                _cache_locks.push(l);
                store
                    .cache_mount(&c.id, (c.uid, c.gid), c.mode)
                    .map_err(internal)?
            }
            None => {
                // A private cache in use: an empty one of its own, gone with the step's scratch.
                let own = scratch.path().join(format!("cache-{k}"));
                std::fs::create_dir(&own).map_err(internal)?;
                own
            }
        };
        sources[k] = Some(source);
    }
    for (c, source) in cache.iter().zip(sources) {
        let Some(source) = source else { continue };
        plan.mounts.push(crate::plan::Mount {
            kind: crate::plan::MountKind::Bind { source },
            target: PathBuf::from(&c.target),
            readonly: false,
            chown: false,
            overlay: false,
            span: None,
        });
    }
    let log = scratch.path().join("output");
    // Started before the box is made: the copier is forked holding none of its locks.
    let echo = match (opts.echo, opts.fold) {
        (false, _) => output::Echo::Off,
        (true, false) => output::Echo::All,
        (true, true) => output::Echo::Window,
    };
    let capture = output::Capture::start(&log, echo).map_err(internal)?;
    let prepared =
        match runner::prepare_image(paths, &plan, &run_opts, box_store, image, Duration::ZERO) {
            Ok(p) => p,
            Err(e) => {
                capture.finish(0);
                return Err(step_fail(format!("step {i}/{n} cannot run: {e}"), None));
            }
        };
    let upper = match &prepared.rootfs.layers {
        crate::exec::Layers::Overlay { upper: Some(u), .. } => Some(u.upper.clone()),
        _ => None,
    };
    let Some(upper) = upper else {
        capture.finish(0);
        prepared.discard(paths);
        return Err(step_fail(
            format!("step {i}/{n} cannot run: building needs overlayfs, which this host does not give foxbox"),
            None,
        ));
    };
    let result = runner::run_foreground(paths, &run_opts, &prepared);
    let (last, window) = capture.finish(LAST_LINES);
    let finish = |prepared: &runner::ReadyBox| prepared.discard(paths);
    let shown = if last.is_empty() {
        None
    } else {
        Some(format!(
            "its last lines of output:\n{}",
            last.iter()
                .map(|l| format!("  │ {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    };
    match result {
        Ok((outcome, _)) if outcome.code == 0 => output::fold(window),
        Ok((outcome, _)) => {
            finish(&prepared);
            let how = if outcome.code > 128 {
                format!("was killed by signal {}", outcome.code - 128)
            } else {
                format!("failed with exit code {}", outcome.code)
            };
            return Err(step_fail(
                format!("step {i}/{n} `{}` {how}", r.action.summary()),
                shown,
            ));
        }
        Err(e) => {
            finish(&prepared);
            return Err(step_fail(
                format!("step {i}/{n} `{}` could not run: {e}", r.action.summary()),
                shown,
            ));
        }
    }
    crate::store::fault::point("build.step-ran");
    if !cache.is_empty() {
        let targets: Vec<String> = cache.iter().map(|c| c.target.clone()).collect();
        if let Err(e) = store.drop_mount_points(&upper, &base.layers, &targets) {
            finish(&prepared);
            return Err(internal(e));
        }
    }
    let made = store.commit_build_step(BuildStep {
        clamp_mtime: opts.source_date_epoch,
        created_by: history_text(&r.action),
        ..step_of(
            key,
            Some(base.clone()),
            state,
            NewLayer::Upper(upper),
            Vec::new(),
        )
    });
    finish(&prepared);
    made.map_err(|e| step_fail(format!("step {i}/{n}: cannot store its layer: {e}"), None))
}

/// Move the tar archives among a `copy` step's named sources (`extract`) out of its items:
/// each, with the directory it unpacks into (`dest`). An archive foxbox cannot read is refused.
fn split_archives(c: &mut context::Copied, dest: &str) -> Result<Vec<(PathBuf, String)>, String> {
    let into = format!("/{}", context::clean(dest));
    let mut archives = Vec::new();
    let mut taken = Vec::new();
    for &k in &c.named {
        let src = &c.items[k].src;
        let kind = crate::image::archive::tar_kind(src)
            .map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        match kind {
            TarKind::Tar => {
                archives.push((src.clone(), into.clone()));
                taken.push(k);
            }
            TarKind::Unreadable(how) => {
                return Err(format!(
                    "{} is compressed with {how}, which foxbox cannot unpack",
                    src.file_name().unwrap_or_default().to_string_lossy()
                ))
            }
            TarKind::NotTar => {}
        }
    }
    for k in taken.into_iter().rev() {
        c.items.remove(k);
    }
    Ok(archives)
}

/// The owner a `copy` step gives its files: `chown` in numbers, or by name looked up in the
/// image so far's /etc/passwd and /etc/group (a user alone: its primary group), as Docker's
/// `COPY --chown=user:group`; `None` when the step names none.
fn owner(
    store: &Store,
    image: Option<&Image>,
    ids: Option<(u32, u32)>,
    name: &Option<String>,
    i: usize,
    r: &Ready<'_>,
) -> Result<Option<(u32, u32)>, BuildError> {
    let Some(name) = name else {
        return Ok(ids);
    };
    let refuse = |why: String| {
        BuildError {
        diagnostics: vec![Diagnostic::error(
            build_codes::CHOWN,
            format!("step {i}: `chown = \"{name}\"`: {why}"),
        )
        .with_span(Some(r.step.span))
        .with_label("this step")
        .with_help("name a user and group the image defines (add them in an earlier step), or give numeric ids")],
    }
    };
    let user = crate::plan::User::parse(name).map_err(|e| refuse(e.to_string()))?;
    let layers = image.map(|i| i.layers.clone()).unwrap_or_default();
    let read = |path: &str| -> Result<String, BuildError> {
        Ok(store
            .read_image_file(&layers, path)
            .map_err(internal)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    };
    let (passwd, group) = (read("/etc/passwd")?, read("/etc/group")?);
    let id = crate::exec::user::resolve(&user, &passwd, &group)
        .map_err(|e| refuse(e.message.replace("the box's", "the image's")))?;
    Ok(Some((id.uid, id.gid)))
}

/// A step as `image history` shows it.
fn history_text(a: &Action) -> String {
    format!("{} {}", a.keyword(), a.summary())
}

/// The image name a step's box shows in `ps` (its image is the build's, unnamed).
const STEP_IMAGE: &str = "foxbox-build";

/// A step box's name: `build-<random>`, unique among live builds.
fn step_box_name() -> String {
    let r = crate::sys::process::random_u64().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ u64::from(std::process::id())
    });
    format!("build-{:012x}", r >> 16)
}

/// Remove the step boxes of builds that were killed: a box named `build-*` of the step
/// image whose build's scratch lock nobody holds (a live build holds it from before its step
/// box exists until after it is removed).
fn reap_abandoned_step_boxes(paths: &Paths, store: &Store) {
    let Ok(boxes) = crate::boxes::Boxes::open(paths.boxes()) else {
        return;
    };
    let Ok(list) = boxes.list() else {
        return;
    };
    for e in list {
        let c = &e.config;
        let ours = c.name.starts_with("build-")
            && c.image.split(':').next() == Some(STEP_IMAGE)
            && !e.state.is_running();
        if ours && store.build_box_abandoned(&c.name) {
            tracing::debug!("removing the step box {} of a build that died", c.name);
            let _ = runner::remove::remove(paths, &boxes, &e);
        }
    }
}

/// The stored image a step runs on (read again: its record is what the box is counted against).
fn store_image(store: &Store, base: &Image) -> Result<Image, BuildError> {
    store.lookup(&base.id).map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_entries_of_a_merged_image_go_where_it_has_them() {
        let base = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        let golang = format!("/go/bin:/usr/local/go/bin:{base}");
        assert_eq!(
            merge_path(base, &golang),
            format!("/go/bin:/usr/local/go/bin:{base}")
        );
        assert_eq!(
            merge_path(base, &format!("{base}:/opt/x")),
            format!("{base}:/opt/x")
        );
        assert_eq!(
            merge_path("/usr/local/bin:/usr/bin", "/go/bin:/usr/bin"),
            "/usr/local/bin:/go/bin:/usr/bin"
        );
        assert_eq!(merge_path(base, base), base);
    }

    #[test]
    fn merged_images_add_env_labels_and_ports_but_not_their_command() {
        let mut s = State {
            config: ImageConfig {
                env: vec!["PATH=/usr/bin:/bin".into(), "A=1".into(), "LANG=C".into()],
                cmd: vec!["sh".into()],
                ..ImageConfig::default()
            },
            labels: [("l".to_string(), "base".to_string())].into(),
            expose: vec!["80/tcp".into()],
        };
        let base = s.clone();
        let mut set = BTreeMap::new();
        let first = State {
            config: ImageConfig {
                env: vec!["PATH=/usr/bin:/bin".into(), "LANG=en".into(), "C=x".into()],
                ..ImageConfig::default()
            },
            ..State::default()
        };
        assert!(s.merge(&first, &base, &mut set).is_empty());
        let second = State {
            config: ImageConfig {
                env: vec![
                    "PATH=/opt/bin:/usr/bin:/bin".into(),
                    "A=2".into(),
                    "B=3".into(),
                    // The base's value: no change of this image's, the first one's stays.
                    "LANG=C".into(),
                    "C=y".into(),
                ],
                cmd: vec!["server".into()],
                workdir: Some("/data".into()),
                ..ImageConfig::default()
            },
            labels: [
                ("l".to_string(), "merged".to_string()),
                ("m".to_string(), "1".to_string()),
            ]
            .into(),
            expose: vec!["80/tcp".into(), "6379/tcp".into()],
        };
        assert_eq!(s.merge(&second, &base, &mut set), ["C"]);
        assert_eq!(
            s.config.env,
            [
                "PATH=/opt/bin:/usr/bin:/bin",
                "A=2",
                "LANG=en",
                "C=y",
                "B=3"
            ]
        );
        assert_eq!(s.config.cmd, ["sh"]);
        assert_eq!(s.config.workdir, None);
        assert_eq!(s.labels["l"], "merged");
        assert_eq!(s.labels["m"], "1");
        assert_eq!(s.expose, ["80/tcp", "6379/tcp"]);
    }
}
