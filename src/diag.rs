//! Diagnostics: one type for spec errors, host checks and run-time failures, each with a stable
//! code, a severity, an optional span into the spec, and a help line.

use serde::Serialize;

use crate::plan::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable, e.g. `foxbox::spec::unknown_key`.
    pub code: String,
    pub message: String,
    /// Where in the spec source; `None` for problems of the whole file or of the host.
    #[serde(skip)]
    pub span: Option<Span>,
    /// Text for the underline.
    pub label: Option<String>,
    pub help: Option<String>,
    /// Other places in the same source that explain this one (e.g. the first of two duplicate
    /// mounts), each with its own label.
    #[serde(skip)]
    pub related: Vec<Related>,
}

/// A secondary span of a diagnostic.
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    pub span: Span,
    pub label: String,
}

impl Diagnostic {
    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code: code.into(),
            message: message.into(),
            span: None,
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(code: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn with_span(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_related(mut self, span: Option<Span>, label: impl Into<String>) -> Self {
        if let Some(span) = span {
            self.related.push(Related {
                span,
                label: label.into(),
            });
        }
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

// ---- rendering ----

use std::fmt;

use crate::plan::Origin;

/// The text diagnostics point into, and the name to show for it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// A file path as the user named it, or `command line`.
    pub name: &'a str,
    /// `None`: nothing to show snippets of (spans are then ignored).
    pub text: Option<&'a str>,
}

impl<'a> Source<'a> {
    /// The source of a plan's origin: the spec file's text, or nothing for the command line.
    pub fn of_origin(origin: &'a Origin, name_buf: &'a mut String) -> Source<'a> {
        match origin {
            Origin::Spec { path, text, .. } => {
                *name_buf = path.display().to_string();
                Source {
                    name: name_buf.as_str(),
                    text: Some(text.as_str()),
                }
            }
            Origin::CommandLine => Source {
                name: "command line",
                text: None,
            },
        }
    }
}

/// How to render for a human.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// ANSI colours (decided by the caller from `--color` and NO_COLOR).
    pub color: bool,
    /// Wrap width.
    pub width: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            color: false,
            width: 100,
        }
    }
}

/// Render diagnostics against a plan's origin: the executor's runtime errors use this to point
/// at the spec line that asked for what failed.
pub fn render(diags: &[Diagnostic], origin: &Origin, color: bool) -> String {
    let mut name = String::new();
    let src = Source::of_origin(origin, &mut name);
    render_source(
        diags,
        src,
        RenderOptions {
            color,
            ..RenderOptions::default()
        },
    )
}

/// Render diagnostics as miette graphical reports (file:line:col, the text underlined, the
/// code and the help), one after the other.
pub fn render_source(diags: &[Diagnostic], src: Source<'_>, opts: RenderOptions) -> String {
    let theme = if opts.color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(opts.width)
        .with_links(false)
        .without_syntax_highlighting();
    let named = src
        .text
        .map(|t| miette::NamedSource::new(src.name, t.to_string()));
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let view = View {
            d,
            src: named.as_ref(),
            text: src.text.unwrap_or(""),
            name: src.name,
        };
        if handler.render_report(&mut out, &view).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
    }
    out
}

/// One diagnostic as `foxbox check --format json` prints it. Lines and columns are 1-based,
/// columns count characters; the end is exclusive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonDiagnostic {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub end_line: Option<usize>,
    pub end_column: Option<usize>,
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub label: Option<String>,
    pub help: Option<String>,
}

/// The machine-readable form of diagnostics.
pub fn to_json(diags: &[Diagnostic], src: Source<'_>) -> Vec<JsonDiagnostic> {
    diags
        .iter()
        .map(|d| {
            let (start, end) = match (d.span, src.text) {
                (Some(s), Some(t)) => (
                    Some(line_col(t, s.start)),
                    Some(line_col(t, s.end.max(s.start))),
                ),
                _ => (None, None),
            };
            JsonDiagnostic {
                file: src.name.to_string(),
                line: start.map(|p| p.0),
                column: start.map(|p| p.1),
                end_line: end.map(|p| p.0),
                end_column: end.map(|p| p.1),
                code: d.code.clone(),
                severity: d.severity,
                message: d.message.clone(),
                label: d.label.clone(),
                help: d.help.clone(),
            }
        })
        .collect()
}

/// 1-based line and character column of a byte offset (clamped into the text).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The largest char boundary at or below `offset`, within the text.
fn floor_boundary(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// A span made safe for a text: inside it, on char boundaries, and at least one character
/// wide when the text allows (miette draws nothing under a zero-width span at a line end).
fn clamp(text: &str, s: Span) -> miette::SourceSpan {
    let start = floor_boundary(text, s.start);
    let mut end = floor_boundary(text, s.end.max(start));
    if end == start {
        if let Some(c) = text[start..].chars().next().filter(|c| *c != '\n') {
            end = start + c.len_utf8();
        }
    }
    (start, end - start).into()
}

/// A [`Diagnostic`] seen through miette's eyes.
struct View<'a> {
    d: &'a Diagnostic,
    src: Option<&'a miette::NamedSource<String>>,
    text: &'a str,
    name: &'a str,
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.d, f)
    }
}

impl fmt::Display for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without a snippet the location is not shown by miette: say which file it is about.
        if self.src.is_none() || self.d.span.is_none() {
            write!(f, "{}: ", self.name)?;
        }
        f.write_str(&self.d.message)
    }
}

impl std::error::Error for View<'_> {}

impl miette::Diagnostic for View<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(&self.d.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.d
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.d.span?;
        self.src.map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.src?;
        let span = self.d.span?;
        let mut labels = vec![miette::LabeledSpan::new_primary_with_span(
            self.d.label.clone(),
            clamp(self.text, span),
        )];
        for r in &self.d.related {
            labels.push(miette::LabeledSpan::new_with_span(
                Some(r.label.clone()),
                clamp(self.text, r.span),
            ));
        }
        Some(Box::new(labels.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let t = "a = 1\nné = \"x\"\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        // After the two-byte é.
        assert_eq!(line_col(t, 9), (2, 3));
        // Inside the é: clamped to its start.
        assert_eq!(line_col(t, 8), (2, 2));
        assert_eq!(line_col(t, 1000), (3, 1));
    }

    #[test]
    fn renders_any_span_without_panicking() {
        let text = "[box]\nimage = \"é\"\n";
        for (s, e) in [
            (0, 0),
            (9, 10),
            (100, 200),
            (12, 3),
            (text.len(), text.len()),
        ] {
            let d = Diagnostic::error("foxbox::test", "m")
                .with_span(Some(Span::new(s, e)))
                .with_label("l")
                .with_related(Some(Span::new(e, s)), "r");
            let src = Source {
                name: "x.toml",
                text: Some(text),
            };
            let out = render_source(std::slice::from_ref(&d), src, RenderOptions::default());
            assert!(out.contains("foxbox::test"), "{out}");
            let j = to_json(&[d], src);
            assert!(j[0].line.is_some());
        }
    }

    #[test]
    fn without_a_source_the_file_is_named_in_the_message() {
        let d = Diagnostic::error("foxbox::test", "it broke").with_help("fix it");
        let out = render(&[d], &Origin::CommandLine, false);
        assert!(out.contains("command line: it broke"), "{out}");
        assert!(out.contains("help: fix it"), "{out}");
        assert!(!out.contains('\x1b'));
    }
}
