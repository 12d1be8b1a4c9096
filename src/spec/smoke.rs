//! `[[test]]` entries: smoke tests `foxbox test` runs, each in a fresh box from the spec's plan.
//!
//! The raw (spanned) form, [`RawTest`], is with the spec's other raw types in [`super::raw`];
//! [`resolve`] checks what TOML types cannot (a regex that does not compile, a duration
//! without a unit, an empty command).

use std::time::Duration;

use super::codes;
use super::raw::{RawCommand, RawOutputMatch, RawTest, Sp};
use crate::diag::Diagnostic;
use crate::plan::Span;

/// How long a test may run unless it says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What an output must hold.
#[derive(Debug, Clone)]
pub enum OutputMatch {
    Contains(String),
    Matches(regex::Regex),
}

impl OutputMatch {
    pub fn holds(&self, text: &str) -> bool {
        match self {
            OutputMatch::Contains(s) => text.contains(s.as_str()),
            OutputMatch::Matches(r) => r.is_match(text),
        }
    }
    pub fn describe(&self) -> String {
        match self {
            OutputMatch::Contains(s) => format!("contains {s:?}"),
            OutputMatch::Matches(r) => format!("matches /{}/", r.as_str()),
        }
    }
}

/// A file a test expects.
#[derive(Debug, Clone, PartialEq)]
pub struct FileExpect {
    pub path: String,
    pub contains: Option<String>,
}

/// A resolved test.
#[derive(Debug, Clone)]
pub struct SmokeTest {
    pub name: String,
    /// argv; a string command becomes `["/bin/sh", "-c", cmd]`.
    pub args: Vec<String>,
    pub exit: i32,
    pub stdout: Vec<OutputMatch>,
    pub stderr: Vec<OutputMatch>,
    pub files: Vec<FileExpect>,
    pub timeout: Duration,
    /// The `[[test]]` table in the spec.
    pub span: Span,
}

/// Check the tests; the resolved ones when none has an error.
pub fn resolve(raw: &[Sp<RawTest>]) -> (Vec<SmokeTest>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut out = Vec::new();
    for t in raw {
        let before = diags.len();
        let missing = |key: &str, help: &str| {
            Diagnostic::error(codes::MISSING_KEY, format!("a [[test]] needs `{key}`"))
                .with_span(Some(t.span))
                .with_label(format!("no `{key}`"))
                .with_help(help.to_string())
        };
        let name = match &t.value.name {
            Some(n) => n.value.clone(),
            None => {
                diags.push(missing("name", "add `name = \"what it shows\"`"));
                String::new()
            }
        };
        let args = match &t.value.command {
            Some(Sp {
                value: RawCommand::Argv(a),
                span,
            }) => {
                if a.is_empty() {
                    diags.push(
                        Diagnostic::error(codes::BAD_COMMAND, "a test's command is empty")
                            .with_span(Some(*span))
                            .with_help("give the program and its arguments"),
                    );
                }
                a.iter().map(|s| s.value.clone()).collect()
            }
            Some(Sp {
                value: RawCommand::Shell(s),
                ..
            }) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
            None => {
                diags.push(missing("command", "add `command = [\"program\", \"arg\"]`"));
                Vec::new()
            }
        };
        let timeout = match &t.value.timeout {
            Some(d) => match crate::plan::units::parse_duration(&d.value) {
                Ok(v) if !v.is_zero() => v,
                Ok(_) => {
                    diags.push(
                        Diagnostic::error(codes::BAD_DURATION, "a test's timeout must be above 0")
                            .with_span(Some(d.span)),
                    );
                    DEFAULT_TIMEOUT
                }
                Err(e) => {
                    diags.push(
                        Diagnostic::error(codes::BAD_DURATION, format!("bad `timeout`: {e}"))
                            .with_span(Some(d.span))
                            .with_help("write e.g. `timeout = \"10s\"`"),
                    );
                    DEFAULT_TIMEOUT
                }
            },
            None => DEFAULT_TIMEOUT,
        };
        let mut test = SmokeTest {
            name,
            args,
            exit: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            files: Vec::new(),
            timeout,
            span: t.span,
        };
        if let Some(e) = &t.value.expect {
            if let Some(x) = &e.value.exit {
                match i32::try_from(x.value) {
                    Ok(v) if (0..=255).contains(&v) => test.exit = v,
                    _ => diags.push(
                        Diagnostic::error(
                            codes::BAD_VALUE,
                            "`expect.exit` must be an exit code, 0 to 255",
                        )
                        .with_span(Some(x.span)),
                    ),
                }
            }
            test.stdout = matches(e.value.stdout.as_ref(), &mut diags);
            test.stderr = matches(e.value.stderr.as_ref(), &mut diags);
            for f in e.value.files.iter().flat_map(|f| &f.value) {
                match &f.value.path {
                    Some(p) if p.value.starts_with('/') => test.files.push(FileExpect {
                        path: p.value.clone(),
                        contains: f.value.contains.as_ref().map(|c| c.value.clone()),
                    }),
                    Some(p) => diags.push(
                        Diagnostic::error(codes::BAD_PATH, "a file's `path` must be absolute")
                            .with_span(Some(p.span))
                            .with_help("a path inside the box, e.g. \"/var/log/app.log\""),
                    ),
                    None => diags.push(
                        Diagnostic::error(
                            codes::MISSING_KEY,
                            "an `expect.files` entry needs `path`",
                        )
                        .with_span(Some(f.span)),
                    ),
                }
            }
        }
        if diags.len() == before {
            out.push(test);
        }
    }
    (out, diags)
}

fn matches(m: Option<&Sp<RawOutputMatch>>, diags: &mut Vec<Diagnostic>) -> Vec<OutputMatch> {
    let mut out = Vec::new();
    let Some(m) = m else { return out };
    if let Some(c) = &m.value.contains {
        out.push(OutputMatch::Contains(c.value.clone()));
    }
    if let Some(r) = &m.value.matches {
        // Multi-line: `^` and `$` match at each line of the output, as people read it.
        match regex::RegexBuilder::new(&r.value).multi_line(true).build() {
            Ok(re) => out.push(OutputMatch::Matches(re)),
            Err(e) => diags.push(
                Diagnostic::error(
                    codes::BAD_VALUE,
                    "`matches` is not a valid regular expression",
                )
                .with_span(Some(r.span))
                .with_label("here")
                .with_help(e.to_string().lines().last().unwrap_or("").to_string()),
            ),
        }
    }
    if m.value.contains.is_none() && m.value.matches.is_none() {
        diags.push(
            Diagnostic::error(codes::MISSING_KEY, "give `contains` or `matches`")
                .with_span(Some(m.span)),
        );
    }
    out
}
