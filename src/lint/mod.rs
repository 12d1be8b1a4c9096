//! `foxbox lint`: rules about what a valid spec asks for (isolation it gives up, limits it lacks,
//! secrets it holds), each with a stable id, beside `check`'s diagnostics about whether it is
//! valid at all.
//!
//! Rules read the raw spec (for the span of each value) and its plan (for resolved values: a
//! bind's absolute source, the capability names). A finding can be allowed for a whole spec
//! (`[lint] allow = ["FB003"]`) or on one line (`# foxbox: allow FB003` on the line or the one
//! above it); allowed findings are counted, not shown.
//!
//! This module sits on the spec's row: it needs nothing of the host but the spec's directory
//! (to find its repository and `$HOME`).

pub mod rules;
pub mod sarif;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diag::{line_col, Diagnostic};
use crate::plan::{ImageRef, MountKind, NetMode, Plan, Seccomp, Span, User};
use crate::spec::raw::{RawMount, RawSpec};
use crate::spec::{self, paths};
pub use rules::{Rule, Severity, RULES};

/// Capabilities that let a box escape or act on the host (FB004).
pub const DANGEROUS_CAPABILITIES: &[&str] = &[
    "SYS_ADMIN",
    "NET_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "DAC_READ_SEARCH",
    "SYS_RAWIO",
    "SYS_BOOT",
    "SYS_TIME",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "BPF",
    "PERFMON",
    "SYSLOG",
    "NET_RAW",
    "LINUX_IMMUTABLE",
];

/// One finding: a rule that fired at a place in the spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    #[serde(serialize_with = "rule_id")]
    pub rule: &'static Rule,
    pub message: String,
    #[serde(skip)]
    pub span: Option<Span>,
    /// 1-based line and column (in characters) of the span's start and end.
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

fn rule_id<S: serde::Serializer>(r: &&'static Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.id)
}

/// The lint of one spec.
#[derive(Debug, Clone)]
pub struct Report {
    /// The spec as named on the command line.
    pub path: PathBuf,
    /// The spec's path relative to its repository's root (the nearest directory above it with a
    /// `.git`), with `/` separators; the path as given when it is in no repository.
    pub repo_path: String,
    pub findings: Vec<Finding>,
    /// Findings allowed by `[lint] allow` or a `# foxbox: allow` comment.
    pub allowed: Vec<Finding>,
    /// The rule ids of the spec's `[lint] allow`.
    pub spec_allows: Vec<String>,
    /// Ids in `[lint] allow` that name no rule (a typo, or a rule of a newer foxbox), with
    /// their line.
    pub unknown_allows: Vec<(String, usize)>,
    /// The spec's own errors (`foxbox check`'s): a spec with errors is not linted.
    pub errors: Vec<Diagnostic>,
    /// The spec's text (to render against).
    pub text: String,
    /// The local override merged into the spec (`Foxbox.local.toml`), when there is one.
    pub local_override: Option<PathBuf>,
}

impl Report {
    /// Whether this report makes `foxbox lint` exit 1.
    pub fn fails(&self) -> bool {
        !self.errors.is_empty()
            || self
                .findings
                .iter()
                .any(|f| f.rule.severity == Severity::Error)
    }
}

/// The user an image's config names (`None`: the image is not known, or names none). The CLI
/// looks images up in the store; lint itself needs nothing of the host.
pub type ImageUser<'a> = &'a dyn Fn(&ImageRef) -> Option<String>;

/// Lint a spec file's text. `path` names it; `base_dir` is its directory (absolute).
pub fn lint_str(text: &str, path: &Path, base_dir: &Path) -> Report {
    lint_with(text, path, base_dir, &|_| None)
}

/// [`lint_str`], with the images' users for FB013.
pub fn lint_with(text: &str, path: &Path, base_dir: &Path, image_user: ImageUser<'_>) -> Report {
    let repo_root = repo_root(base_dir);
    let repo_path = match &repo_root {
        Some(root) => {
            let abs = base_dir.join(path.file_name().unwrap_or(path.as_os_str()));
            abs.strip_prefix(root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_else(|_| path.display().to_string())
        }
        None => path.display().to_string(),
    };
    let mut report = Report {
        path: path.to_path_buf(),
        repo_path,
        findings: Vec::new(),
        allowed: Vec::new(),
        spec_allows: Vec::new(),
        unknown_allows: Vec::new(),
        errors: Vec::new(),
        text: text.to_string(),
        local_override: None,
    };
    let (plan, diags) = spec::check_str(text, path, base_dir);
    let Some(plan) = plan else {
        report.errors = diags.into_iter().filter(Diagnostic::is_error).collect();
        return report;
    };
    // The spec with its bases and local override; a finding about a value from another file
    // is shown at the spec's own `extends` line, naming where the value is.
    let comp = spec::composition(text, path, base_dir);
    report.local_override = comp.local().map(|l| l.path.clone());
    let raw = {
        let merged = comp.merged();
        spec::parse::from_tree(&merged.tree).0
    };
    let cx = Cx {
        raw: &raw,
        plan: &plan,
        base_dir,
        repo_root: repo_root.as_deref(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        image_user,
    };
    let mut found = Vec::new();
    cx.run(&mut |rule, span, message| found.push((rule, span, message)));
    let allow_ids = raw
        .lint
        .iter()
        .flat_map(|l| &l.value.allow)
        .flat_map(|a| &a.value);
    for id in allow_ids {
        if rules::by_id(&id.value).is_none() {
            // An id a base allows is shown at the spec's `extends` line.
            let at = comp.in_main(id.span).0.map_or(0, |s| s.start);
            let (line, _) = line_col(text, at);
            report.unknown_allows.push((id.value.clone(), line));
        }
        report.spec_allows.push(id.value.clone());
    }
    let spec_allows = report.spec_allows.clone();
    for (rule, span, message) in found {
        let (span, message) = match span.map(|s| comp.in_main(s)) {
            Some((at, Some(note))) => (at, format!("{message} ({note})")),
            Some((at, None)) => (at, message),
            None => (None, message),
        };
        let (line, column) = line_col(text, span.map_or(0, |s| s.start));
        let (end_line, end_column) = line_col(text, span.map_or(0, |s| s.end));
        let f = Finding {
            rule,
            message,
            span,
            line,
            column,
            end_line,
            end_column,
        };
        let allowed = spec_allows.iter().any(|a| a == rule.id)
            || (span.is_some() && line_allows(text, line, rule.id));
        if allowed {
            report.allowed.push(f);
        } else {
            report.findings.push(f);
        }
    }
    let order = |f: &Finding| (f.line, f.column, f.rule.id);
    report.findings.sort_by_key(order);
    report.allowed.sort_by_key(order);
    report
}

/// The nearest directory at or above `dir` holding a `.git` (a directory, or a worktree's file).
pub fn repo_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Whether line `line` (1-based), or a comment line right above it, says
/// `# foxbox: allow ID[, ID...]` with `id` among the ids.
fn line_allows(text: &str, line: usize, id: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    let says = |l: &str| {
        l.find('#').is_some_and(|h| {
            let c = l[h + 1..].trim_start();
            c.strip_prefix("foxbox:")
                .map(str::trim_start)
                .and_then(|c| c.strip_prefix("allow"))
                .is_some_and(|ids| {
                    ids.split(|ch: char| ch == ',' || ch.is_whitespace())
                        .any(|i| i == id)
                })
        })
    };
    let this = lines.get(line.wrapping_sub(1)).copied().unwrap_or("");
    let above = line
        .checked_sub(2)
        .and_then(|i| lines.get(i))
        .copied()
        .filter(|l| l.trim_start().starts_with('#'));
    says(this) || above.is_some_and(says)
}

type Emit<'e> = dyn FnMut(&'static Rule, Option<Span>, String) + 'e;

struct Cx<'a> {
    raw: &'a RawSpec,
    plan: &'a Plan,
    base_dir: &'a Path,
    repo_root: Option<&'a Path>,
    home: Option<PathBuf>,
    image_user: ImageUser<'a>,
}

impl Cx<'_> {
    fn run(&self, emit: &mut Emit<'_>) {
        self.image(emit);
        self.network(emit);
        self.seccomp(emit);
        self.capabilities(emit);
        self.new_privileges(emit);
        self.mounts(emit);
        self.limits(emit);
        self.rootfs(emit);
        self.env(emit);
        self.user(emit);
    }

    fn user(&self, emit: &mut Emit<'_>) {
        let Some(span) = self.plan.process.user.span else {
            return; // The image's user applies.
        };
        let root = match &self.plan.process.user.value {
            User::Id { uid, .. } => *uid == 0,
            User::Name { user, .. } => user == "root",
        };
        let image_user = (self.image_user)(&self.plan.image.value);
        if let Some(u) = image_user.filter(|u| {
            let name = u.split(':').next().unwrap_or("");
            root && !name.is_empty() && name != "0" && name != "root"
        }) {
            emit(
                rules::ROOT_OVER_IMAGE_USER,
                Some(span),
                format!("the box runs as root; the image runs as `{u}`"),
            );
        }
    }

    /// Where a finding about the box as a whole goes: its `image` line.
    fn box_span(&self) -> Option<Span> {
        let b = self.raw.box_.as_ref()?;
        Some(b.value.image.as_ref().map_or(b.span, |i| i.span))
    }

    fn image(&self, emit: &mut Emit<'_>) {
        if let crate::plan::ImageRef::Stored(n) = &self.plan.image.value {
            if n.digest().is_none() {
                emit(
                    rules::IMAGE_NOT_PINNED,
                    self.plan.image.span,
                    format!("image `{}` is not pinned by digest", n.full()),
                );
            }
        }
    }

    fn network(&self, emit: &mut Emit<'_>) {
        let n = &self.plan.network;
        if n.mode.value == NetMode::Host {
            emit(
                rules::HOST_NETWORK,
                n.mode.span,
                "the box shares the host's network".into(),
            );
        }
        for p in &n.ports {
            if p.value.host_ip.is_none_or(|ip| ip.is_unspecified()) {
                emit(
                    rules::PORT_ALL_INTERFACES,
                    p.span,
                    format!(
                        "host port {} is published on all interfaces",
                        p.value.host_port
                    ),
                );
            }
        }
    }

    fn seccomp(&self, emit: &mut Emit<'_>) {
        if self.plan.seccomp.value == Seccomp::Unconfined {
            emit(
                rules::SECCOMP_UNCONFINED,
                self.plan.seccomp.span,
                "the box runs without a seccomp filter".into(),
            );
        }
    }

    fn capabilities(&self, emit: &mut Emit<'_>) {
        let adds = self
            .raw
            .capabilities
            .iter()
            .flat_map(|c| &c.value.add)
            .flat_map(|a| &a.value);
        for add in adds {
            let upper = add.value.trim().to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
            let named: Vec<&str> = if bare == "ALL" {
                DANGEROUS_CAPABILITIES.to_vec()
            } else {
                DANGEROUS_CAPABILITIES
                    .iter()
                    .copied()
                    .filter(|d| *d == bare)
                    .collect()
            };
            if !named.is_empty() {
                let what = if bare == "ALL" {
                    "`ALL` adds CAP_SYS_ADMIN, CAP_SYS_PTRACE and every other capability".into()
                } else {
                    format!("CAP_{bare} is added")
                };
                emit(rules::DANGEROUS_CAPABILITY, Some(add.span), what);
            }
        }
    }

    fn new_privileges(&self, emit: &mut Emit<'_>) {
        if !self.plan.no_new_privs {
            let span = self
                .raw
                .security
                .as_ref()
                .and_then(|s| s.value.no_new_privileges.as_ref())
                .map(|v| v.span);
            emit(
                rules::NEW_PRIVILEGES,
                span,
                "no_new_privileges is off".into(),
            );
        }
    }

    fn raw_mount(&self, span: Option<Span>) -> Option<&RawMount> {
        let span = span?;
        self.raw
            .mounts
            .iter()
            .find(|m| m.span == span)
            .map(|m| &m.value)
    }

    fn mounts(&self, emit: &mut Emit<'_>) {
        for m in &self.plan.mounts {
            let MountKind::Bind { source } = &m.kind else {
                continue;
            };
            let raw = self.raw_mount(m.span);
            let span = raw
                .and_then(|r| r.source.as_ref())
                .map(|s| s.span)
                .or(m.span);
            if let Some(why) = self.sensitive(source) {
                emit(
                    rules::SENSITIVE_BIND,
                    span,
                    format!("{} is bind-mounted: {why}", source.display()),
                );
            }
            if !m.readonly {
                let spec_dir = paths::normalise(self.base_dir);
                let repo = [Some(spec_dir.as_path()), self.repo_root];
                if repo.iter().flatten().any(|r| r.starts_with(source)) {
                    emit(
                        rules::WRITABLE_REPO_BIND,
                        span,
                        format!(
                            "{} holds the spec's repository and is bind-mounted writable",
                            source.display()
                        ),
                    );
                }
            }
        }
    }

    /// Why binding `source` hands the host to the box, if it does.
    fn sensitive(&self, source: &Path) -> Option<&'static str> {
        let under = |p: &str| source.starts_with(p);
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if source == Path::new("/") {
            Some("the host's whole file system")
        } else if under("/etc") {
            Some("the host's configuration")
        } else if under("/proc") || under("/sys") {
            Some("the host's kernel interfaces")
        } else if name.ends_with(".sock")
            && ["docker", "podman", "containerd", "crio", "buildkitd"]
                .iter()
                .any(|s| name.starts_with(s))
        {
            Some("a container runtime's socket controls the host")
        } else if under("/run") || under("/var/run") {
            Some("the host's runtime sockets and state")
        } else if self
            .home
            .as_deref()
            .is_some_and(|h| h != Path::new("/") && h.starts_with(source))
        {
            Some("a home directory (keys, credentials, shell start-up files)")
        } else {
            None
        }
    }

    fn limits(&self, emit: &mut Emit<'_>) {
        let l = &self.plan.limits;
        let raw = self.raw.limits.as_ref();
        let span = raw.map(|r| r.span).or_else(|| self.box_span());
        if l.memory().is_none() {
            emit(rules::NO_LIMIT, span, "the box has no memory limit".into());
        }
        if l.pids().is_none() {
            emit(rules::NO_LIMIT, span, "the box has no pids limit".into());
        }
        if l.enforce() == crate::plan::Enforce::BestEffort {
            let span = raw.and_then(|r| r.value.enforce.as_ref()).map(|e| e.span);
            emit(
                rules::BEST_EFFORT,
                span,
                "limits are enforced only where the host can".into(),
            );
        }
    }

    fn rootfs(&self, emit: &mut Emit<'_>) {
        let tmp_tmpfs =
            self.plan.mounts.iter().any(|m| {
                m.target == Path::new("/tmp") && matches!(m.kind, MountKind::Tmpfs { .. })
            });
        let ro = &self.plan.rootfs.readonly;
        if !ro.value && !tmp_tmpfs {
            emit(
                rules::WRITABLE_ROOTFS,
                ro.span.or_else(|| self.box_span()),
                "the root file system is writable and /tmp is not a tmpfs".into(),
            );
        }
    }

    fn env(&self, emit: &mut Emit<'_>) {
        let env = self
            .raw
            .box_
            .iter()
            .flat_map(|b| &b.value.env)
            .flat_map(|e| &e.value);
        for e in env {
            let key = e.key.value.to_ascii_uppercase();
            let v = &e.value.value;
            // A reference to a variable is not a secret (foxbox may expand `${NAME}` later).
            let literal = !v.is_empty() && !v.starts_with('$');
            if literal && is_secret_name(&key) {
                emit(
                    rules::SECRET_ENV,
                    Some(e.value.span),
                    format!("`{}` holds a literal secret", e.key.value),
                );
            }
        }
    }
}

/// Whether an (upper-case) environment variable's name says it holds a secret.
fn is_secret_name(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
        "CREDENTIALS",
    ];
    WORDS
        .iter()
        .any(|w| key == *w || key.ends_with(&format!("_{w}")) || key.starts_with(&format!("{w}_")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_allows_its_line_and_the_next() {
        let t = "x = 1 # foxbox: allow FB002, FB003\n# foxbox: allow FB004\ny = 2\nz = 3\n";
        assert!(line_allows(t, 1, "FB003"));
        assert!(!line_allows(t, 1, "FB004"));
        assert!(line_allows(t, 3, "FB004"));
        assert!(!line_allows(t, 4, "FB004"));
        assert!(!line_allows(t, 9, "FB004"));
    }

    #[test]
    fn secret_names() {
        for k in [
            "GITHUB_TOKEN",
            "DB_PASSWORD",
            "PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "API_KEY",
        ] {
            assert!(is_secret_name(k), "{k}");
        }
        for k in ["PATH", "TOKENIZER", "KEYBOARD", "HOME"] {
            assert!(!is_secret_name(k), "{k}");
        }
    }
}
