//! Diagnostics: one type for spec errors, host checks and run-time failures, each with a stable
//! code, a severity, an optional span into the spec, and a help line.

pub mod codes;

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
    /// What caused it, when it came from a typed error ([`Diagnostic::from_error`]): drawn
    /// under the message, as miette draws an error's sources.
    #[serde(skip)]
    pub cause: Option<Box<Cause>>,
    /// The file the span points into when it is not the one the diagnostic is rendered
    /// against: a base a spec `extends`, a local override.
    #[serde(skip)]
    pub file: Option<std::sync::Arc<SourceFile>>,
}

/// A file other than the rendered source, for [`Diagnostic::file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// As shown to the user.
    pub name: String,
    pub text: String,
}

/// One cause of a diagnostic, and the cause of that.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub message: String,
    pub next: Option<Box<Cause>>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.next
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
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
            cause: None,
            file: None,
        }
    }

    /// An error as a diagnostic, keeping its chain of sources (a source whose text the
    /// message already shows, as `thiserror`'s `{source}` does, is not repeated).
    pub fn from_error(code: impl Into<String>, e: &(dyn std::error::Error + 'static)) -> Self {
        let message = e.to_string();
        let mut shown = message.clone();
        let mut causes = Vec::new();
        let mut next = e.source();
        while let Some(c) = next {
            let text = c.to_string();
            if !shown.contains(&text) {
                shown.push_str(&text);
                causes.push(text);
            }
            next = c.source();
        }
        let cause = causes.into_iter().rev().fold(None, |next, message| {
            Some(Box::new(Cause { message, next }))
        });
        Diagnostic {
            cause,
            ..Diagnostic::error(code, message)
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

/// At most this many diagnostics are drawn for a human; the JSON form has them all.
pub const MAX_RENDERED: usize = 200;

/// Render diagnostics as miette graphical reports (file:line:col, the text underlined, the
/// code and the help), one after the other; past [`MAX_RENDERED`], a count of the rest.
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
    let named = src.text.map(|t| Indexed::new(src.name, t));
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate().take(MAX_RENDERED) {
        if i > 0 {
            out.push('\n');
        }
        let other = d
            .file
            .as_deref()
            .map(|f| (f, Indexed::new(&f.name, &f.text)));
        let view = match &other {
            Some((f, o)) => View {
                d,
                src: Some(o as &dyn miette::SourceCode),
                text: &f.text,
                name: &f.name,
            },
            None => View {
                d,
                src: named.as_ref().map(|n| n as &dyn miette::SourceCode),
                text: src.text.unwrap_or(""),
                name: src.name,
            },
        };
        if handler.render_report(&mut out, &view).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
    }
    if diags.len() > MAX_RENDERED {
        out.push_str(&format!(
            "\n... and {} more in {} (`--format json` lists them all)\n",
            diags.len() - MAX_RENDERED,
            src.name
        ));
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
    let starts = src.text.map(line_starts).unwrap_or_default();
    diags
        .iter()
        .map(|d| {
            let (start, end) = match (d.span, src.text, d.file.as_deref()) {
                (Some(s), _, Some(f)) => {
                    let starts = line_starts(&f.text);
                    (
                        Some(line_col_in(&f.text, &starts, s.start)),
                        Some(line_col_in(&f.text, &starts, s.end.max(s.start))),
                    )
                }
                (Some(s), Some(t), None) => (
                    Some(line_col_in(t, &starts, s.start)),
                    Some(line_col_in(t, &starts, s.end.max(s.start))),
                ),
                _ => (None, None),
            };
            JsonDiagnostic {
                file: d
                    .file
                    .as_deref()
                    .map_or_else(|| src.name.to_string(), |f| f.name.clone()),
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

/// 1-based line and character column of a byte offset (clamped into the text). Lines end at
/// `\n`, `\r\n` or a lone `\r`, as miette counts them.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    line_col_in(text, &line_starts(text), offset)
}

fn line_col_in(text: &str, starts: &[usize], offset: usize) -> (usize, usize) {
    let offset = floor_boundary(text, offset);
    let line = line_of(starts, offset);
    let col = text
        .get(starts[line].min(offset)..offset)
        .map_or(0, |s| s.chars().count());
    (line + 1, col + 1)
}

/// Byte offsets where lines start (the first is 0).
fn line_starts(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut starts = vec![0];
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => {
                i += 2;
                starts.push(i);
            }
            b'\r' | b'\n' => {
                i += 1;
                starts.push(i);
            }
            _ => i += 1,
        }
    }
    starts
}

/// The 0-based line holding `offset`.
fn line_of(starts: &[usize], offset: usize) -> usize {
    starts.partition_point(|s| *s <= offset).saturating_sub(1)
}

/// A source with a line index, so that each snippet costs its context, not the whole file
/// (miette's own sources scan from the start for every label).
struct Indexed<'a> {
    name: String,
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Indexed<'a> {
    fn new(name: &str, text: &'a str) -> Self {
        Indexed {
            name: name.to_string(),
            text,
            starts: line_starts(text),
        }
    }
}

impl miette::SourceCode for Indexed<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        // Read from a window that starts `before` lines ahead of the span: miette's reader
        // gives the same snippet there, with line numbers counted from the window.
        let first = line_of(&self.starts, span.offset()).saturating_sub(before);
        let win_start = self.starts[first];
        let window = self.text.as_bytes().get(win_start..).unwrap_or(&[]);
        let shifted =
            miette::SourceSpan::new(span.offset().saturating_sub(win_start).into(), span.len());
        let c = window.read_span(&shifted, before, after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            c.data(),
            miette::SourceSpan::new((c.span().offset() + win_start).into(), c.span().len()),
            c.line() + first,
            c.column(),
            c.line_count() + first,
        )))
    }
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
    src: Option<&'a dyn miette::SourceCode>,
    text: &'a str,
    name: &'a str,
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.d, f)
    }
}

impl View<'_> {
    /// The diagnostic's span when it lies in the text: a plan value from a base file keeps a
    /// span of that file, which the plan's own text cannot show.
    fn span(&self) -> Option<Span> {
        self.d.span.filter(|s| s.start <= self.text.len())
    }
}

impl fmt::Display for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without a snippet the location is not shown by miette: say which file it is about.
        if (self.src.is_none() || self.span().is_none()) && !self.name.is_empty() {
            write!(f, "{}: ", self.name)?;
        }
        f.write_str(&self.d.message)
    }
}

impl std::error::Error for View<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.d
            .cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

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
        self.span()?;
        self.src
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.src?;
        let span = self.span()?;
        let mut labels = vec![miette::LabeledSpan::new_primary_with_span(
            self.d.label.clone(),
            clamp(self.text, span),
        )];
        for r in self
            .d
            .related
            .iter()
            .filter(|r| r.span.start <= self.text.len())
        {
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

    /// The indexed source renders exactly what miette's own (whole-text scanning) source does.
    #[test]
    fn indexed_source_matches_miettes() {
        let text = "l1\nl2 x\r\nl3\rl4 yy\n\nl6 zzz\nl7\nl8 w\n";
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let named = miette::NamedSource::new("t.toml", text.to_string());
        let indexed = Indexed::new("t.toml", text);
        for start in 0..text.len() {
            for len in [0, 1, 3, 9] {
                let end = (start + len).min(text.len());
                let d = Diagnostic::error("c", "m")
                    .with_span(Some(Span::new(start, end)))
                    .with_label("here")
                    .with_related(Some(Span::new(text.len() - 2, text.len())), "there");
                let render = |src: &dyn miette::SourceCode| {
                    let mut out = String::new();
                    let v = View {
                        d: &d,
                        src: Some(src),
                        text,
                        name: "t.toml",
                    };
                    handler.render_report(&mut out, &v).unwrap();
                    out
                };
                assert_eq!(render(&indexed), render(&named), "span {start}..{end}");
            }
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

    #[test]
    fn a_typed_error_keeps_its_sources_without_repeating_them() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open the store")]
        struct Outer(#[source] Middle);
        #[derive(Debug, thiserror::Error)]
        #[error("reading index.json: {0}")]
        struct Middle(#[source] std::io::Error);
        let e = Outer(Middle(std::io::Error::other("disk on fire")));
        let d = Diagnostic::from_error("foxbox::image::store", &e);
        assert_eq!(d.message, "cannot open the store");
        let c = d.cause.as_deref().expect("a cause");
        assert_eq!(c.message, "reading index.json: disk on fire");
        // The io error's text is in its parent's: not repeated.
        assert!(c.next.is_none(), "{c:?}");
        let out = render_source(
            &[d],
            Source {
                name: "",
                text: None,
            },
            RenderOptions::default(),
        );
        assert!(out.contains("cannot open the store"), "{out}");
        assert!(out.contains("reading index.json: disk on fire"), "{out}");
        assert_eq!(out.matches("disk on fire").count(), 1, "{out}");
    }
}
