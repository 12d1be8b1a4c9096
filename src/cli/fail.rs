//! The CLI's one error path: a command that fails returns a [`Failure`] (diagnostics with
//! registered codes, the source they point into, the exit code), and `cli::main` renders it
//! with `diag::render`, as it renders spec errors and a box's failed steps.

use foxbox::diag::{Diagnostic, Source};
use foxbox::plan::Origin;

/// Why a command failed, to render at the edge.
#[derive(Debug)]
pub struct Failure {
    pub diagnostics: Vec<Diagnostic>,
    /// The name of what the diagnostics' spans point into (a spec file, `command line`), and
    /// its text (`None`: nothing to point into, e.g. for a box that is not running).
    pub source_name: String,
    pub source_text: Option<String>,
    /// 125 for foxbox's own errors; a box's failed start may give 126 or 127; `check` 1.
    pub exit: u8,
}

impl Failure {
    /// One diagnostic of foxbox's own (exit 125).
    pub fn new(d: Diagnostic) -> Failure {
        Failure {
            diagnostics: vec![d],
            source_name: String::new(),
            source_text: None,
            exit: 125,
        }
    }

    /// Diagnostics that point into a plan's origin (a spec file, or the `run` command line).
    pub fn against(diagnostics: Vec<Diagnostic>, origin: &Origin, exit: u8) -> Failure {
        let mut name = String::new();
        let src = Source::of_origin(origin, &mut name);
        Failure {
            diagnostics,
            source_name: src.name.to_string(),
            source_text: src.text.filter(|t| !t.is_empty()).map(str::to_string),
            exit,
        }
    }

    /// Diagnostics that point into `text`, shown as `name`.
    pub fn in_text(diagnostics: Vec<Diagnostic>, name: &str, text: &str, exit: u8) -> Failure {
        Failure {
            diagnostics,
            source_name: name.to_string(),
            source_text: Some(text.to_string()),
            exit,
        }
    }

    /// The text to show on stderr. Without a snippet to draw, lines are not wrapped: names
    /// in a message (an archive's entry, a path) stay whole, for people and for grep.
    pub fn render(&self, color: bool) -> String {
        let width = match self.source_text {
            Some(_) => foxbox::diag::RenderOptions::default().width,
            None => 10_000,
        };
        foxbox::diag::render_source(
            &self.diagnostics,
            Source {
                name: &self.source_name,
                text: self.source_text.as_deref(),
            },
            foxbox::diag::RenderOptions { color, width },
        )
    }
}

/// `failure!(CODE, "format", args..)`, or `failure!(CODE, help = "...", "format", args..)`.
macro_rules! failure {
    ($code:expr, help = $help:expr, $($fmt:tt)+) => {
        $crate::cli::fail::Failure::new(
            foxbox::diag::Diagnostic::error($code, format!($($fmt)+)).with_help($help),
        )
    };
    ($code:expr, $($fmt:tt)+) => {
        $crate::cli::fail::Failure::new(foxbox::diag::Diagnostic::error($code, format!($($fmt)+)))
    };
}

/// A library error as a [`Failure`] with its code, keeping its chain of sources.
pub trait OrFail<T> {
    fn or_fail(self, code: &'static str) -> Result<T, Failure>;
}

impl<T, E: std::error::Error + 'static> OrFail<T> for Result<T, E> {
    fn or_fail(self, code: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(Diagnostic::from_error(code, &e)))
    }
}
