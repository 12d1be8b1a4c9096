//! What every command shares: the [`Ctx`] it runs in, its result, the values of flags several
//! commands take, and writing to stdout and stderr. Commands take these from here, not from
//! `cli/mod.rs`, which defines the command line and dispatches to them.

use std::path::PathBuf;

use clap::ValueEnum;

use super::fail::{Failure, OrFail};
use foxbox::diag::codes;

/// What every command gets besides its own arguments.
pub struct Ctx {
    pub root: Option<PathBuf>,
    pub color: Color,
}

impl Ctx {
    pub fn paths(&self) -> Result<foxbox::store::paths::Paths, Failure> {
        foxbox::store::paths::Paths::resolve(self.root.as_deref()).or_fail(codes::cli::PATHS)
    }

    /// Whether diagnostics on stderr get colour.
    pub fn color_stderr(&self) -> bool {
        match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::IsTerminal::is_terminal(&std::io::stderr())
            }
        }
    }
}

/// A command's outcome: Ok(exit code), or a [`Failure`] rendered at the edge.
pub type CmdResult = Result<u8, Failure>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// `--pull`'s values (podman's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Pull {
    Always,
    #[default]
    Missing,
    Never,
    Newer,
}

impl From<Pull> for foxbox::image::PullPolicy {
    fn from(p: Pull) -> Self {
        match p {
            Pull::Always => Self::Always,
            Pull::Missing => Self::Missing,
            Pull::Never => Self::Never,
            Pull::Newer => Self::Newer,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
}

/// Write to stdout without panicking when the reader went away (`foxbox ... | head`).
pub fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|_| o.flush());
}

/// Write to stderr without panicking when it is closed.
pub fn err(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
