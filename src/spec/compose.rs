//! A spec made of files: the spec, the bases it `extends` (and theirs), and a local override
//! beside it, merged into one TOML tree before the spec is read; variables are interpolated in
//! each file first, so every diagnostic still points at the line that holds the value.
//!
//! # Spans across files
//!
//! Each file is a layer; layer `k`'s spans are offset by `k * LAYER_STRIDE`, so a span alone
//! says which file it is in. [`Composition::locate`] turns such spans back into a span of the
//! file and names the file on the diagnostic ([`crate::diag::Diagnostic::file`]).
//!
//! # Merge rules
//!
//! Tables merge key by key (`box.env` therefore by name); scalars and arrays from the extending
//! file replace the base's, except `capabilities.add`/`drop`, which concatenate (extending file
//! last), and `[[mounts]]`, which merge by `target` (same target replaces, new ones append,
//! `remove = true` drops the base's).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::vars::{self, VarErrorKind, Vars};
use super::{image, paths};
use crate::diag::{codes::compose as codes, Diagnostic, SourceFile};
use crate::plan::Span;

/// Where layer `k`'s spans start; larger than any spec ([`super::file::MAX_SPEC_BYTES`]).
pub const LAYER_STRIDE: usize = 1 << 24;
/// How deep `extends` may go.
pub const MAX_DEPTH: usize = 8;
/// How many files a spec may be made of.
const MAX_LAYERS: usize = 64;

type Val<'i> = Spanned<DeValue<'i>>;

/// Why a file is part of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The spec itself (layer 0).
    Main,
    /// A base, extended by layer `by` at `at` (a span of layer `by`).
    Base { by: usize, at: Span },
    /// The local override beside the spec.
    Local,
}

/// One file of a spec.
#[derive(Debug, Clone)]
pub struct Layer {
    /// As shown to the user.
    pub path: PathBuf,
    /// Its absolute directory: relative paths in it start there.
    pub dir: PathBuf,
    pub text: String,
    pub role: Role,
}

/// How to read the files of a spec.
pub struct Options<'a> {
    /// Reads a base or the local override (the file system; `foxbox diff` reads git history).
    pub read: &'a dyn Fn(&Path) -> std::io::Result<String>,
    /// Variables from the environment (they win over the env file's).
    pub env: Vars,
    /// Merge `<stem>.local.toml` beside the spec when it exists.
    pub local: bool,
}

impl Options<'static> {
    /// Files from the file system, variables from this process's environment.
    pub fn from_host() -> Self {
        Options {
            read: &|p: &Path| super::file::read_spec(p),
            env: Vars::from_process(),
            local: true,
        }
    }
}

/// Where a value of the merged spec was set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// The dotted key: `box.image`, `box.env.A`, `mounts["/tmp"].size`, `capabilities.add[0]`.
    pub key: String,
    /// The file, as shown to the user.
    pub file: String,
    pub line: usize,
}

/// The merged tree of a spec's files.
pub struct Merged<'t> {
    pub tree: DeTable<'t>,
    /// Where a file's TOML is broken: later checks stay quiet about values there.
    pub syntax: Vec<Span>,
    /// String values whose variables could not be interpolated: later checks of the value as
    /// written would only repeat the problem.
    pub failed: Vec<Span>,
    pub diagnostics: Vec<Diagnostic>,
    /// Every file's `box.image` (interpolated; a base's tarball path made absolute) and
    /// `build.from`, with its layered span: what `foxbox lock` pins.
    pub images: Vec<(&'static str, String, Span)>,
}

/// The files of a spec, in layers, with what went wrong finding them.
#[derive(Debug, Clone)]
pub struct Composition {
    pub layers: Vec<Layer>,
    /// Layer indexes in merge order (bases first, the local override last).
    pub order: Vec<usize>,
    /// Diagnostics with layered spans ([`Composition::locate`] places them).
    pub diagnostics: Vec<Diagnostic>,
    pub vars: Vars,
    /// The repository holding the spec (the nearest directory with `.git`, else its own).
    pub repo: PathBuf,
}

/// A value's place: the layer and the span in it.
fn split(span: Span) -> (usize, Span) {
    let k = span.start / LAYER_STRIDE;
    let off = k * LAYER_STRIDE;
    (k, Span::new(span.start - off, span.end.saturating_sub(off)))
}

fn shifted(r: std::ops::Range<usize>, off: usize) -> std::ops::Range<usize> {
    r.start + off..r.end + off
}

/// The `extends` entries of a file's tree: (path, span of the entry) and problems.
fn extends_of(root: &DeTable<'_>) -> (Vec<(String, Span)>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    let mut values = Vec::new();
    if let Some(v) = root.get("extends") {
        values.push(v);
    }
    if let Some(v) = root
        .get("box")
        .and_then(|b| b.get_ref().as_table())
        .and_then(|b| b.get("extends"))
    {
        values.push(v);
    }
    for v in values {
        let items: Vec<&Val<'_>> = match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            _ => vec![v],
        };
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span().into())),
                _ => diags.push(
                    Diagnostic::error(
                        codes::EXTENDS,
                        "`extends` must be a path or an array of paths",
                    )
                    .with_span(Some(item.span().into()))
                    .with_label("not a path")
                    .with_help("write e.g. `extends = \"../base/Foxbox.toml\"`"),
                ),
            }
        }
    }
    (out, diags)
}

/// The nearest directory at or above `dir` holding `.git`.
fn repo_of(dir: &Path) -> PathBuf {
    let mut d = Some(dir);
    while let Some(p) = d {
        if p.join(".git").exists() {
            return p.to_path_buf();
        }
        d = p.parent();
    }
    dir.to_path_buf()
}

/// `<stem>.local.toml` beside `path`: `Foxbox.toml` → `Foxbox.local.toml`.
pub fn local_path(path: &Path, dir: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "Foxbox".into(), |s| s.to_string_lossy().into_owned());
    dir.join(format!("{stem}.local.toml"))
}

impl Composition {
    /// Find the files of the spec `text` (named `path`, its relative paths starting at `dir`).
    pub fn discover(text: &str, path: &Path, dir: &Path, opts: &Options<'_>) -> Composition {
        let mut c = Composition {
            layers: vec![Layer {
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
                text: text.to_string(),
                role: Role::Main,
            }],
            order: Vec::new(),
            diagnostics: Vec::new(),
            vars: opts.env.clone(),
            repo: repo_of(dir),
        };
        let mut chain = vec![paths::normalise(
            &dir.join(path.file_name().unwrap_or_default()),
        )];
        let mut order = c.visit(0, &mut chain, opts);
        if opts.local {
            let local = local_path(path, dir);
            if let Ok(text) = (opts.read)(&local) {
                let shown = path.parent().map_or_else(
                    || local.clone(),
                    |p| p.join(local.file_name().unwrap_or_default()),
                );
                c.layers.push(Layer {
                    path: shown.clone(),
                    dir: dir.to_path_buf(),
                    text,
                    role: Role::Local,
                });
                let k = c.layers.len() - 1;
                c.diagnostics.push(
                    Diagnostic::warning(
                        codes::LOCAL_OVERRIDE,
                        format!(
                            "the local override {} is merged into this spec",
                            shown.display()
                        ),
                    )
                    .with_help("it is meant to stay out of version control; remove it to use the spec alone"),
                );
                let mut chain = vec![local];
                order.extend(c.visit(k, &mut chain, opts));
            }
        }
        c.order = order;
        c.env_file(opts);
        c
    }

    /// Follow layer `k`'s `extends`; its merge order (its bases', then itself).
    fn visit(&mut self, k: usize, chain: &mut Vec<PathBuf>, opts: &Options<'_>) -> Vec<usize> {
        let off = k * LAYER_STRIDE;
        let (root, _) = DeTable::parse_recoverable(&self.layers[k].text);
        let (bases, diags) = extends_of(root.get_ref());
        let shift = |d: Diagnostic| {
            let s = d.span.map(|s| Span::new(s.start + off, s.end + off));
            d.with_span(s)
        };
        self.diagnostics.extend(diags.into_iter().map(shift));
        let mut order = Vec::new();
        for (rel, at) in bases {
            let span = Span::new(at.start + off, at.end + off);
            let err = |msg: String| {
                Diagnostic::error(codes::EXTENDS, msg)
                    .with_span(Some(span))
                    .with_label("extended here")
            };
            if chain.len() > MAX_DEPTH {
                self.diagnostics.push(err(format!(
                    "bases more than {MAX_DEPTH} deep: {}",
                    show_chain(chain, &self.layers[0].dir)
                )));
                continue;
            }
            if self.layers.len() >= MAX_LAYERS {
                self.diagnostics.push(err(format!(
                    "a spec may be made of at most {MAX_LAYERS} files"
                )));
                continue;
            }
            if rel.is_empty() {
                self.diagnostics.push(err("`extends` is empty".into()));
                continue;
            }
            if rel.contains("://") {
                self.diagnostics.push(
                    err(format!("`{rel}` is a URL: foxbox fetches no bases"))
                        .with_help("vendor the base into the repository and extend it by path"),
                );
                continue;
            }
            let dir = &self.layers[k].dir;
            let full = paths::normalise(&dir.join(&rel));
            if chain.contains(&full) {
                let mut cycle = chain.clone();
                cycle.push(full);
                self.diagnostics.push(
                    err(format!(
                        "`extends` makes a cycle: {}",
                        show_chain(&cycle, &self.layers[0].dir)
                    ))
                    .with_help("a spec cannot extend itself, directly or through its bases"),
                );
                continue;
            }
            let text = match (opts.read)(&full) {
                Ok(t) => t,
                Err(e) => {
                    self.diagnostics.push(
                        err(format!("cannot read the base {rel}: {e}")).with_help(
                            "the path is relative to the directory of the file that extends it",
                        ),
                    );
                    continue;
                }
            };
            if !full.starts_with(&self.repo) {
                self.diagnostics.push(
                    Diagnostic::warning(
                        codes::BASE_OUTSIDE_REPO,
                        format!(
                            "the base {} is outside the repository {}",
                            full.display(),
                            self.repo.display()
                        ),
                    )
                    .with_span(Some(span))
                    .with_label("extended here")
                    .with_help(
                        "what it sets is not reviewed with this spec; `check --strict` refuses it",
                    ),
                );
            }
            let shown = match self.layers[k].path.parent() {
                Some(p) if !rel.starts_with('/') => tidy(&p.join(&rel)),
                _ => full.clone(),
            };
            self.layers.push(Layer {
                path: shown,
                dir: full.parent().map(Path::to_path_buf).unwrap_or_default(),
                text,
                role: Role::Base { by: k, at: span },
            });
            let b = self.layers.len() - 1;
            chain.push(full);
            order.extend(self.visit(b, chain, opts));
            chain.pop();
        }
        order.push(k);
        order
    }

    /// Read the env file into the variables (under the environment's).
    fn env_file(&mut self, opts: &Options<'_>) {
        let (root, _) = DeTable::parse_recoverable(&self.layers[0].text);
        let named = match root.get_ref().get("env_file") {
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Some((s.to_string(), Span::from(v.span()))),
                _ => {
                    self.diagnostics.push(
                        Diagnostic::error(codes::ENV_FILE, "`env_file` must be a path")
                            .with_span(Some(v.span().into()))
                            .with_label("expected a string"),
                    );
                    return;
                }
            },
            None => None,
        };
        let dir = &self.layers[0].dir;
        let (file, span) = match &named {
            Some((p, s)) => (paths::normalise(&dir.join(p)), Some(*s)),
            None => (dir.join(".env"), None),
        };
        let text = match (opts.read)(&file) {
            Ok(t) => t,
            Err(e) if named.is_some() => {
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::ENV_FILE,
                        format!("cannot read the env file {}: {e}", file.display()),
                    )
                    .with_span(span)
                    .with_label("named here"),
                );
                return;
            }
            Err(_) => return,
        };
        match vars::parse_env_file(&text) {
            Ok(entries) => self.vars.add_under(entries),
            Err(e) => {
                let message = format!("{} line {}: {}", file.display(), e.line, e.message);
                // A `.env` found beside the spec may be another tool's: its problems warn (and
                // its variables are not used); a named env file is the spec's own.
                let d = if named.is_some() {
                    Diagnostic::error(codes::ENV_FILE, message)
                } else {
                    Diagnostic::warning(
                        codes::ENV_FILE,
                        format!("{message}; its variables are not used"),
                    )
                };
                self.diagnostics.push(
                    d.with_span(span)
                        .with_help("env files hold KEY=VALUE lines, `#` comments and blank lines"),
                );
            }
        }
    }

    /// The merged tree of every layer, and what went wrong making it. Spans are layered.
    pub fn merged(&self) -> Merged<'_> {
        let mut acc = DeTable::new();
        let mut syntax = Vec::new();
        let mut diags = Vec::new();
        let mut failed = Vec::new();
        let mut images = Vec::new();
        for &k in &self.order {
            let layer = &self.layers[k];
            let off = k * LAYER_STRIDE;
            let (root, errors) = DeTable::parse_recoverable(&layer.text);
            for e in errors {
                let span = e
                    .span()
                    .map(Span::from)
                    .unwrap_or_else(|| Span::new(layer.text.len(), layer.text.len()));
                let span = Span::new(span.start + off, span.end + off);
                syntax.push(span);
                // The main file's syntax errors are reported by its own parse.
                diags.push(
                    Diagnostic::error(
                        super::codes::SYNTAX,
                        format!("invalid TOML: {}", e.message()),
                    )
                    .with_span(Some(span))
                    .with_label("here")
                    .with_help("see https://toml.io for the syntax"),
                );
            }
            let mut root = root.into_inner();
            root.remove("extends");
            if k == 0 {
                root.remove("env_file");
            } else if let Some(v) = root.remove("env_file") {
                diags.push(
                    Diagnostic::warning(
                        super::codes::NO_EFFECT,
                        "`env_file` only has an effect in the spec itself, not in a base or a local override",
                    )
                    .with_span(Some(shifted(v.span(), off).into())),
                );
            }
            if let Some(b) = root.get_mut("box") {
                if let DeValue::Table(t) = b.get_mut() {
                    t.remove("extends");
                }
            }
            for (key, v) in root.iter_mut() {
                // `${ARG}` in [build] are build arguments, replaced by `foxbox build`.
                if key.get_ref() != "build" {
                    self.interpolate(v, &layer.text, off, &mut diags, &mut failed);
                }
            }
            if layer.dir != self.layers[0].dir {
                rebase(&mut root, &layer.dir);
            }
            // `[build]`'s and each `[[build.stage]]`'s `from` and `merge` name images, unless
            // they name a stage of the recipe.
            if let Some(build) = root.get("build").and_then(|b| b.get_ref().as_table()) {
                let stages: Vec<_> = build
                    .get("stage")
                    .and_then(|s| s.get_ref().as_array())
                    .map(|a| a.iter().filter_map(|s| s.get_ref().as_table()).collect())
                    .unwrap_or_default();
                let names: Vec<&str> = stages
                    .iter()
                    .filter_map(|t| t.get("name").and_then(|n| n.get_ref().as_str()))
                    .collect();
                let mut refs = Vec::new();
                for t in stages.iter().copied().chain(std::iter::once(build)) {
                    if let Some(v) = t.get("from") {
                        refs.push(v);
                    }
                    if let Some(m) = t.get("merge").and_then(|m| m.get_ref().as_array()) {
                        refs.extend(m.iter());
                    }
                }
                for v in refs {
                    if let Some(text) = v.get_ref().as_str() {
                        if !names.contains(&text) {
                            images.push(("build", text.to_string(), shifted(v.span(), off).into()));
                        }
                    }
                }
            }
            for (section, key) in [("box", "image")] {
                if let Some(img) = root
                    .get(section)
                    .and_then(|b| b.get_ref().as_table())
                    .and_then(|b| b.get(key))
                {
                    if let Some(text) = img.get_ref().as_str() {
                        images.push((section, text.to_string(), shifted(img.span(), off).into()));
                    }
                }
            }
            let root = shift_table(root, off);
            merge_table(&mut acc, root, "", &mut diags);
        }
        diags.extend(self.trust(&acc));
        Merged {
            tree: acc,
            syntax,
            failed,
            diagnostics: diags,
            images,
        }
    }

    fn interpolate(
        &self,
        v: &mut Val<'_>,
        text: &str,
        off: usize,
        diags: &mut Vec<Diagnostic>,
        failed: &mut Vec<Span>,
    ) {
        let range = v.span();
        match v.get_mut() {
            DeValue::String(s) if vars::has_dollar(s) => match vars::interpolate(s, &self.vars) {
                Ok(out) => *s = Cow::Owned(out),
                Err(errors) => {
                    failed.push(Span::new(range.start + off, range.end + off));
                    for e in errors {
                        let at = source_range(text, range.clone(), s, e.at.clone());
                        let span = Some(Span::new(at.start + off, at.end + off));
                        let expr = s.get(e.at.clone()).unwrap_or("").to_string();
                        diags.push(match e.kind {
                            VarErrorKind::Unset(name) => Diagnostic::error(
                                codes::UNSET_VARIABLE,
                                format!("the variable `{name}` is not set"),
                            )
                            .with_span(span)
                            .with_label("unset")
                            .with_help(format!(
                                "set it in the environment or in the env file (.env beside the spec), or give a default: `${{{name}:-default}}`"
                            )),
                            VarErrorKind::Required { name, message } => Diagnostic::error(
                                codes::UNSET_VARIABLE,
                                if message.is_empty() {
                                    format!("the variable `{name}` is not set")
                                } else {
                                    format!("the variable `{name}` is not set: {message}")
                                },
                            )
                            .with_span(span)
                            .with_label("required"),
                            VarErrorKind::Syntax(why) => Diagnostic::error(
                                codes::BAD_VARIABLE,
                                format!("`{expr}`: {why}"),
                            )
                            .with_span(span)
                            .with_label("here")
                            .with_help("write `$$` for a literal `$`"),
                        });
                    }
                }
            },
            DeValue::Array(a) => {
                for item in a.iter_mut() {
                    self.interpolate(item, text, off, diags, failed);
                }
            }
            DeValue::Table(t) => {
                for (_, item) in t.iter_mut() {
                    self.interpolate(item, text, off, diags, failed);
                }
            }
            _ => {}
        }
    }

    /// Warnings for what a base sets that widens the box's isolation, on the extending spec's
    /// `extends` line.
    fn trust(&self, tree: &DeTable<'_>) -> Vec<Diagnostic> {
        let mut found: Vec<(Span, String)> = Vec::new();
        let get = |t: &DeTable<'_>, section: &str, key: &str| -> Option<(Span, String)> {
            let v = t.get(section)?.get_ref().as_table()?.get(key)?;
            let text = match v.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Boolean(b) => b.to_string(),
                _ => return None,
            };
            Some((v.span().into(), text))
        };
        if let Some(caps) = tree
            .get("capabilities")
            .and_then(|c| c.get_ref().as_table())
            .and_then(|c| c.get("add"))
            .and_then(|a| a.get_ref().as_array())
        {
            for c in caps.iter() {
                if let Some(name) = c.get_ref().as_str() {
                    found.push((c.span().into(), format!("adds the capability {name}")));
                }
            }
        }
        if let Some((s, v)) = get(tree, "seccomp", "profile").filter(|(_, v)| v == "unconfined") {
            found.push((s, format!("sets `seccomp.profile = \"{v}\"`")));
        }
        if let Some((s, _)) = get(tree, "network", "mode").filter(|(_, v)| v == "host") {
            found.push((
                s,
                "shares the host's network (`network.mode = \"host\"`)".into(),
            ));
        }
        if let Some((s, _)) =
            get(tree, "security", "no_new_privileges").filter(|(_, v)| v == "false")
        {
            found.push((s, "turns no_new_privileges off".into()));
        }
        if let Some(mounts) = tree.get("mounts").and_then(|m| m.get_ref().as_array()) {
            for m in mounts.iter() {
                let Some(t) = m.get_ref().as_table() else {
                    continue;
                };
                if t.get("type").and_then(|v| v.get_ref().as_str()) != Some("bind") {
                    continue;
                }
                let Some(src) = t.get("source") else { continue };
                let Some(text) = src.get_ref().as_str() else {
                    continue;
                };
                let (k, _) = split(src.span().into());
                let dir = self.layers.get(k).map_or(Path::new("/"), |l| &l.dir);
                let host = paths::normalise(&dir.join(text));
                if !host.starts_with(&self.repo) {
                    found.push((
                        src.span().into(),
                        format!("binds {}, outside the repository", host.display()),
                    ));
                }
            }
        }
        let mut out = Vec::new();
        for (span, what) in found {
            let (k, local) = split(span);
            let Some((at, _)) = self.extended_at(k) else {
                continue;
            };
            let base = &self.layers[k];
            let line = crate::diag::line_col(&base.text, local.start).0;
            out.push(
                Diagnostic::warning(
                    codes::UNTRUSTED_BASE,
                    format!(
                        "the base {} {what} (line {line}), widening this box's isolation",
                        base.path.display()
                    ),
                )
                .with_span(Some(at))
                .with_label("extended here")
                .with_help("set it in this spec if it is meant; `foxbox check --strict` refuses it from a base"),
            );
        }
        out
    }

    /// For a value in layer `k`: the span of the main spec's `extends` entry it came through
    /// and the layer that entry names; `None` for the spec itself and the local override.
    fn extended_at(&self, mut k: usize) -> Option<(Span, usize)> {
        loop {
            match self.layers.get(k)?.role {
                Role::Base { by, at } => {
                    if matches!(self.layers.get(by)?.role, Role::Main) {
                        return Some((at, k));
                    }
                    k = by;
                }
                Role::Main | Role::Local => return None,
            }
        }
    }

    /// Put a layered diagnostic in its file: a span of layer `k > 0` becomes a span of that
    /// file, named on the diagnostic, with a note of which spec extended it. A related span in
    /// another file cannot be drawn beside it: it becomes a line of the help naming its place.
    pub fn locate(&self, mut d: Diagnostic) -> Diagnostic {
        let Some(span) = d.span.filter(|s| s.start != usize::MAX) else {
            return d;
        };
        let (k, local) = split(span);
        let (here, elsewhere): (Vec<_>, Vec<_>) = std::mem::take(&mut d.related)
            .into_iter()
            .partition(|r| split(r.span).0 == k);
        d.related = here;
        for r in &mut d.related {
            r.span = split(r.span).1;
        }
        for r in elsewhere {
            let (rk, rs) = split(r.span);
            let Some(layer) = self.layers.get(rk) else {
                continue;
            };
            let (line, col) = crate::diag::line_col(&layer.text, rs.start);
            let also = format!("{}: {}:{line}:{col}", r.label, layer.path.display());
            d.help = Some(match d.help.take() {
                Some(h) => format!("{h}\n{also}"),
                None => also,
            });
        }
        if k == 0 {
            return d;
        }
        let Some(layer) = self.layers.get(k) else {
            return d;
        };
        d.span = Some(local);
        d.file = Some(Arc::new(SourceFile {
            name: layer.path.display().to_string(),
            text: layer.text.clone(),
        }));
        let note = match &layer.role {
            Role::Base { by, at } => {
                let parent = &self.layers[*by];
                let line = crate::diag::line_col(&parent.text, split(*at).1.start).0;
                format!(
                    "{} is a base: {} extends it at line {line}",
                    layer.path.display(),
                    parent.path.display()
                )
            }
            Role::Local => format!("{} is the local override", layer.path.display()),
            Role::Main => return d,
        };
        d.help = Some(match d.help.take() {
            Some(h) => format!("{h}\n{note}"),
            None => note,
        });
        d
    }

    /// Where each value of the merged spec was set: `(key, file, line)`, in the tree's order.
    pub fn provenance(&self) -> Vec<Source> {
        let merged = self.merged();
        let mut out = Vec::new();
        self.walk_sources(&merged.tree, "", &mut out);
        out
    }

    fn walk_sources(&self, t: &DeTable<'_>, prefix: &str, out: &mut Vec<Source>) {
        for (k, v) in t.iter() {
            let key = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            self.value_sources(v, &key, out);
        }
    }

    fn value_sources(&self, v: &Val<'_>, key: &str, out: &mut Vec<Source>) {
        match v.get_ref() {
            DeValue::Table(t) => self.walk_sources(t, key, out),
            DeValue::Array(a) if a.iter().all(|i| i.get_ref().is_table()) && !a.is_empty() => {
                for (n, item) in a.iter().enumerate() {
                    let Some(t) = item.get_ref().as_table() else {
                        continue;
                    };
                    let id = ["target", "name"]
                        .iter()
                        .find_map(|f| t.get(*f).and_then(|v| v.get_ref().as_str()))
                        .map_or_else(|| n.to_string(), |s| format!("{s:?}"));
                    self.walk_sources(t, &format!("{key}[{id}]"), out);
                }
            }
            DeValue::Array(a) if key.starts_with("capabilities.") => {
                for (n, item) in a.iter().enumerate() {
                    self.value_sources(item, &format!("{key}[{n}]"), out);
                }
            }
            _ => {
                if let Some((file, line)) = self.place(v.span().into()) {
                    out.push(Source {
                        key: key.to_string(),
                        file,
                        line,
                    });
                }
            }
        }
    }

    /// A layered span as a place in the spec itself: a value of the spec stays where it is; a
    /// base's value is shown at the spec's `extends` entry it came through, a local override's
    /// at no line; the note says where the value is.
    pub fn in_main(&self, span: Span) -> (Option<Span>, Option<String>) {
        let (k, local) = split(span);
        if k == 0 {
            return (Some(span), None);
        }
        let Some(layer) = self.layers.get(k) else {
            return (None, None);
        };
        let line = crate::diag::line_col(&layer.text, local.start).0;
        let note = format!("from {} line {line}", layer.path.display());
        (self.extended_at(k).map(|(at, _)| at), Some(note))
    }

    /// The file (as shown) and line of a layered span.
    pub fn place(&self, span: Span) -> Option<(String, usize)> {
        let (k, local) = split(span);
        let layer = self.layers.get(k)?;
        let line = crate::diag::line_col(&layer.text, local.start).0;
        Some((layer.path.display().to_string(), line))
    }

    /// Whether a local override is merged.
    pub fn local(&self) -> Option<&Layer> {
        self.layers.iter().find(|l| l.role == Role::Local)
    }
}

/// `a/./b/../c` → `a/c`, keeping leading `..` (paths shown as the user wrote them).
fn tidy(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The files of a chain of `extends`, relative to the spec's directory.
fn show_chain(chain: &[PathBuf], dir: &Path) -> String {
    chain
        .iter()
        .map(|p| paths::relative_to(p, dir).display().to_string())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Where `at` (a range of the decoded string `value`) is in the file: exact when the literal
/// holds the same text there (no escapes before it), else the whole literal.
fn source_range(
    text: &str,
    literal: std::ops::Range<usize>,
    value: &str,
    at: std::ops::Range<usize>,
) -> std::ops::Range<usize> {
    let raw = text.get(literal.clone()).unwrap_or("");
    let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else if raw.starts_with('"') || raw.starts_with('\'') {
        1
    } else {
        0
    };
    let want = value.get(at.clone());
    for skip in [0, 1, 2] {
        let start = literal.start + quote + skip + at.start;
        let end = literal.start + quote + skip + at.end;
        if end <= literal.end && want.is_some() && text.get(start..end) == want {
            return start..end;
        }
    }
    literal
}

/// Relative host paths of a base are relative to the base's directory: make them absolute
/// before the merge, which resolves the spec's against the spec's.
fn rebase(root: &mut DeTable<'_>, dir: &Path) {
    let fix = |v: &mut Val<'_>, when: &dyn Fn(&str) -> bool| {
        if let DeValue::String(s) = v.get_mut() {
            if !s.is_empty() && !s.starts_with('/') && when(s) {
                *s = Cow::Owned(
                    paths::normalise(&dir.join(s.as_ref()))
                        .display()
                        .to_string(),
                );
            }
        }
    };
    if let Some(DeValue::Table(b)) = root.get_mut("box").map(Spanned::get_mut) {
        if let Some(v) = b.get_mut("image") {
            fix(v, &|s| image::is_tarball(s));
        }
    }
    if let Some(DeValue::Table(s)) = root.get_mut("seccomp").map(Spanned::get_mut) {
        if let Some(v) = s.get_mut("profile") {
            fix(v, &|s| s != "default" && s != "unconfined");
        }
    }
    // A base's recipe reads its files near the base: its context (given or the default, the
    // base's directory) and tarball `from`s become absolute, so a spec that extends it from
    // elsewhere builds the same image.
    if let Some(b) = root.get_mut("build") {
        let at = b.span();
        if let DeValue::Table(t) = b.get_mut() {
            match t.get_mut("context") {
                Some(v) => fix(v, &|_| true),
                None => {
                    let here = Cow::Owned(paths::normalise(dir).display().to_string());
                    t.insert(
                        Spanned::new(at.clone(), Cow::Borrowed("context")),
                        Spanned::new(at, DeValue::String(here)),
                    );
                }
            }
            if let Some(v) = t.get_mut("from") {
                fix(v, &|s| image::is_tarball(s));
            }
            if let Some(DeValue::Array(stages)) = t.get_mut("stage").map(Spanned::get_mut) {
                for st in stages.iter_mut() {
                    if let DeValue::Table(st) = st.get_mut() {
                        if let Some(v) = st.get_mut("from") {
                            fix(v, &|s| image::is_tarball(s));
                        }
                    }
                }
            }
        }
    }
    if let Some(DeValue::Array(ms)) = root.get_mut("mounts").map(Spanned::get_mut) {
        for m in ms.iter_mut() {
            if let DeValue::Table(t) = m.get_mut() {
                if t.get("type").and_then(|v| v.get_ref().as_str()) == Some("bind") {
                    if let Some(v) = t.get_mut("source") {
                        fix(v, &|_| true);
                    }
                }
            }
        }
    }
}

fn shift_val(v: Val<'_>, off: usize) -> Val<'_> {
    let span = shifted(v.span(), off);
    let inner = match v.into_inner() {
        DeValue::Table(t) => DeValue::Table(shift_table(t, off)),
        DeValue::Array(a) => DeValue::Array(a.into_iter().map(|i| shift_val(i, off)).collect()),
        other => other,
    };
    Spanned::new(span, inner)
}

fn shift_table(t: DeTable<'_>, off: usize) -> DeTable<'_> {
    let mut out = DeTable::new();
    for (k, v) in t {
        let key = Spanned::new(shifted(k.span(), off), k.into_inner());
        out.insert(key, shift_val(v, off));
    }
    out
}

/// Merge `over` into `acc` by the rules in the module's doc; `path` is the dotted key so far.
fn merge_table<'i>(
    acc: &mut DeTable<'i>,
    over: DeTable<'i>,
    path: &str,
    diags: &mut Vec<Diagnostic>,
) {
    for (k, v) in over {
        let key: &str = k.get_ref();
        let here = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        let v = match (acc.get_mut(key).map(Spanned::get_mut), v) {
            (Some(DeValue::Table(a)), v) if v.get_ref().is_table() => {
                if let DeValue::Table(b) = v.into_inner() {
                    merge_table(a, b, &here, diags);
                }
                continue;
            }
            (existing, v) if here == "mounts" => {
                let base = match existing {
                    Some(DeValue::Array(a)) => std::mem::replace(a, DeArray::new()),
                    _ => DeArray::new(),
                };
                let span = v.span();
                let merged = match v.into_inner() {
                    DeValue::Array(over) => merge_mounts(base, over, diags),
                    other => {
                        // Not an array: the reader reports it.
                        acc.remove(key);
                        acc.insert(k, Spanned::new(span, other));
                        continue;
                    }
                };
                Spanned::new(span, DeValue::Array(merged))
            }
            (Some(DeValue::Array(a)), v)
                if (here == "capabilities.add" || here == "capabilities.drop")
                    && v.get_ref().is_array() =>
            {
                let span = v.span();
                let mut all = std::mem::replace(a, DeArray::new());
                if let DeValue::Array(b) = v.into_inner() {
                    for i in b {
                        all.push(i);
                    }
                }
                Spanned::new(span, DeValue::Array(all))
            }
            (_, v) => v,
        };
        acc.remove(key);
        acc.insert(k, v);
    }
}

fn mount_target<'a>(m: &'a Val<'_>) -> Option<&'a str> {
    m.get_ref().as_table()?.get("target")?.get_ref().as_str()
}

fn merge_mounts<'i>(
    base: DeArray<'i>,
    over: DeArray<'i>,
    diags: &mut Vec<Diagnostic>,
) -> DeArray<'i> {
    let same_target = |a: &Val<'_>, target: &Option<PathBuf>| {
        target.is_some() && mount_target(a).map(|t| paths::normalise(Path::new(t))) == *target
    };
    // The base's mounts (None: removed) and whether this file replaced each; two mounts of
    // one file with the same target stay two, for the resolver to report.
    let mut kept: Vec<(Option<Val<'i>>, bool)> =
        base.into_iter().map(|m| (Some(m), false)).collect();
    let mut added = Vec::new();
    for mut m in over {
        let remove = match m.get_mut() {
            DeValue::Table(t) => t.remove("remove"),
            _ => None,
        };
        let remove = match remove {
            Some(r) => match r.get_ref().as_bool() {
                Some(b) => b,
                None => {
                    diags.push(
                        Diagnostic::error(
                            super::codes::WRONG_TYPE,
                            "`mounts.remove` must be a boolean",
                        )
                        .with_span(Some(r.span().into()))
                        .with_label("expected a boolean"),
                    );
                    false
                }
            },
            None => false,
        };
        let target = mount_target(&m).map(|t| paths::normalise(Path::new(t)));
        let matching = kept.iter().position(|(b, replaced)| {
            !replaced && b.as_ref().is_some_and(|b| same_target(b, &target))
        });
        match (remove, matching) {
            (true, _) => {
                let mut any = false;
                for (b, _) in kept.iter_mut() {
                    if b.as_ref().is_some_and(|b| same_target(b, &target)) {
                        *b = None;
                        any = true;
                    }
                }
                if !any {
                    diags.push(
                        Diagnostic::warning(
                            codes::NOTHING_TO_REMOVE,
                            format!(
                                "no base mounts {}: `remove = true` has nothing to remove",
                                target.map_or("this target".into(), |t| t.display().to_string())
                            ),
                        )
                        .with_span(Some(m.span().into())),
                    );
                }
            }
            (false, Some(i)) => kept[i] = (Some(m), true),
            (false, None) => added.push(m),
        }
    }
    kept.into_iter()
        .filter_map(|(m, _)| m)
        .chain(added)
        .collect()
}

/// The files of a spec (its bases, its local override) and its variables, found as
/// [`super::check_str`] finds them.
pub fn composition(text: &str, path: &Path, base_dir: &Path) -> Composition {
    Composition::discover(
        text,
        path,
        &super::file::absolute_dir(base_dir),
        &Options::from_host(),
    )
}

/// The raw spec `text` makes with its bases, local override and variables: what the resolver
/// gets (its spans are layered: see [the module's docs](self)).
pub fn raw_composed(text: &str, path: &Path, base_dir: &Path) -> super::raw::RawSpec {
    let c = composition(text, path, base_dir);
    let merged = c.merged();
    super::parse::from_tree(&merged.tree).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn opts(files: &HashMap<PathBuf, String>) -> impl Fn(&Path) -> std::io::Result<String> + '_ {
        move |p: &Path| {
            files
                .get(p)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }

    fn compose(main: &str, files: &[(&str, &str)]) -> Composition {
        let files: HashMap<PathBuf, String> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        let read = opts(&files);
        let o = Options {
            read: &read,
            env: Vars::new([("WHO".to_string(), "fox".to_string())], []),
            local: true,
        };
        Composition::discover(main, Path::new("Foxbox.toml"), Path::new("/r/app"), &o)
    }

    #[test]
    fn bases_merge_in_order_and_local_last() {
        let c = compose(
            "extends = [\"../base/a.toml\", \"b.toml\"]\n[box]\nimage = \"busybox\"\n",
            &[
                (
                    "/r/base/a.toml",
                    "[box]\nimage = \"alpine\"\nhostname = \"a\"\n",
                ),
                ("/r/app/b.toml", "[box]\nhostname = \"b\"\n"),
                ("/r/app/Foxbox.local.toml", "[box]\nname = \"mine\"\n"),
            ],
        );
        assert_eq!(c.order, [1, 2, 0, 3]);
        let p = c.provenance();
        let find = |k: &str| p.iter().find(|e| e.key == k).unwrap().clone();
        assert_eq!(
            find("box.image"),
            Source {
                key: "box.image".into(),
                file: "Foxbox.toml".into(),
                line: 3
            }
        );
        assert_eq!(find("box.hostname").file, "b.toml");
        assert_eq!(find("box.name").file, "Foxbox.local.toml");
        assert!(c
            .diagnostics
            .iter()
            .any(|d| d.code == codes::LOCAL_OVERRIDE));
    }

    #[test]
    fn cycles_and_missing_bases_point_at_extends() {
        let c = compose(
            "extends = \"a.toml\"\n",
            &[("/r/app/a.toml", "extends = \"Foxbox.toml\"\n")],
        );
        let d = c
            .diagnostics
            .iter()
            .find(|d| d.code == codes::EXTENDS)
            .unwrap();
        assert!(d.message.contains("cycle"), "{}", d.message);
        let d = c.locate(d.clone());
        assert_eq!(d.file.as_ref().unwrap().name, "a.toml");
        assert_eq!(d.span, Some(Span::new(10, 23)));
        let c = compose("extends = \"https://x/b.toml\"\n", &[]);
        assert!(c.diagnostics[0].message.contains("is a URL"));
        let c = compose("[box]\nextends = \"nope.toml\"\n", &[]);
        assert_eq!(c.diagnostics[0].span, Some(Span::new(16, 27)));
        assert!(c.diagnostics[0].message.contains("cannot read"));
    }

    #[test]
    fn too_deep() {
        let mut files = Vec::new();
        let names: Vec<String> = (0..12).map(|i| format!("/r/app/{i}.toml")).collect();
        let texts: Vec<String> = (0..12)
            .map(|i| format!("extends = \"{}.toml\"\n", i + 1))
            .collect();
        for i in 0..12 {
            files.push((names[i].as_str(), texts[i].as_str()));
        }
        let c = compose("extends = \"0.toml\"\n", &files);
        assert!(c
            .diagnostics
            .iter()
            .any(|d| d.code == codes::EXTENDS && d.message.contains("deep")));
    }

    #[test]
    fn mounts_env_and_capabilities_merge() {
        let c = compose(
            "extends = \"b.toml\"\n[box]\nenv = { B = \"2\" }\n[capabilities]\nadd = [\"CHOWN\"]\n[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\nsize = \"1m\"\n[[mounts]]\ntarget = \"/gone\"\nremove = true\n[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/new\"\n",
            &[(
                "/r/app/b.toml",
                "[box]\nimage = \"busybox\"\nenv = { A = \"1\", B = \"1\" }\n[capabilities]\nadd = [\"NET_RAW\"]\n[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\n[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/gone\"\n",
            )],
        );
        let m = c.merged();
        let (tree, diags) = (m.tree, m.diagnostics);
        assert!(
            diags.iter().all(|d| d.code != codes::NOTHING_TO_REMOVE),
            "{diags:?}"
        );
        let env = tree["box"].get_ref().as_table().unwrap()["env"]
            .get_ref()
            .as_table()
            .unwrap()
            .clone();
        assert_eq!(env["A"].get_ref().as_str(), Some("1"));
        assert_eq!(env["B"].get_ref().as_str(), Some("2"));
        let caps: Vec<_> = tree["capabilities"].get_ref().as_table().unwrap()["add"]
            .get_ref()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.get_ref().as_str().unwrap().to_string())
            .collect();
        assert_eq!(caps, ["NET_RAW", "CHOWN"]);
        let targets: Vec<_> = tree["mounts"]
            .get_ref()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| mount_target(m).unwrap().to_string())
            .collect();
        assert_eq!(targets, ["/tmp", "/new"]);
        // The base's NET_RAW is a trust warning at the extends line.
        let w = diags
            .iter()
            .find(|d| d.code == codes::UNTRUSTED_BASE)
            .unwrap();
        assert_eq!(w.span, Some(Span::new(10, 18)));
        assert!(w.message.contains("line 5"), "{}", w.message);
    }

    #[test]
    fn one_files_mounts_of_the_same_target_stay_two() {
        let c = compose(
            "[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/a\"\n[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/a\"\n",
            &[],
        );
        let m = c.merged();
        assert_eq!(m.tree["mounts"].get_ref().as_array().unwrap().len(), 2);
    }

    #[test]
    fn build_args_are_not_variables() {
        let c = compose(
            "[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"echo ${V}\"\n",
            &[],
        );
        assert!(c.merged().diagnostics.is_empty());
    }

    #[test]
    fn variables_point_into_the_literal() {
        let text = "[box]\nimage = \"x${NOPE}\"\n";
        let c = compose(text, &[]);
        let diags = c.merged().diagnostics;
        let d = &diags[0];
        assert_eq!(d.code, codes::UNSET_VARIABLE);
        let s = d.span.unwrap();
        assert_eq!(&text[s.start..s.end], "${NOPE}");
    }

    #[test]
    fn env_file_under_the_environment() {
        let c = compose(
            "[box]\nimage = \"${WHO}-${OTHER}\"\n",
            &[("/r/app/.env", "WHO=file\nOTHER=x\n")],
        );
        assert_eq!(c.vars.get("WHO"), Some("fox"));
        assert_eq!(c.vars.get("OTHER"), Some("x"));
        let c = compose("env_file = \"no.env\"\n", &[]);
        assert_eq!(c.diagnostics[0].code, codes::ENV_FILE);
    }
}
