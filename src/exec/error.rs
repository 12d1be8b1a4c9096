//! Errors of the executor: a step that failed (on either side), with its errno, as a value the
//! parent renders as a diagnostic pointing at the spec line that asked for the step.

use std::io;

use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::plan::Span;

/// What went wrong inside one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    /// 0 when the failure is not a failed syscall.
    pub errno: i32,
    pub message: String,
    pub hint: Option<String>,
}

impl StepError {
    pub fn new(errno: i32, message: impl Into<String>) -> StepError {
        StepError {
            errno,
            message: message.into(),
            hint: None,
        }
    }

    pub fn msg(message: impl Into<String>) -> StepError {
        StepError::new(0, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> StepError {
        self.hint = Some(hint.into());
        self
    }
}

/// Attach what was being done to an io::Error: "mount proc on /proc: Operation not permitted".
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, StepError>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|e| StepError::new(e.raw_os_error().unwrap_or(0), format!("{}: {e}", what())))
    }
}

/// Why a box did not start (or its command could not be run).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecError {
    #[error("step `{step}` failed: {}", .error.message)]
    Step {
        step: &'static str,
        span: Option<Span>,
        error: StepError,
    },
    #[error("the box's set-up process ended without reporting ({0})")]
    Vanished(String),
    /// Following a started box failed (signals, the pty relay, waiting for it).
    #[error("lost track of the box: {0}")]
    Relay(String),
}

impl ExecError {
    pub fn step(step: &'static str, span: Option<Span>, error: StepError) -> ExecError {
        ExecError::Step { step, span, error }
    }

    /// podman's codes: 127 command not found, 126 command not executable, 125 foxbox's own.
    pub fn exit_code(&self) -> u8 {
        match self {
            ExecError::Step {
                step: "exec",
                error,
                ..
            } => {
                if error.errno == libc::ENOENT {
                    127
                } else {
                    126
                }
            }
            _ => 125,
        }
    }

    /// The diagnostic to render (against the spec when the step has a span).
    pub fn diagnostic(&self) -> Diagnostic {
        match self {
            ExecError::Step { step, span, error } => {
                let code = format!("foxbox::exec::{}", step.replace('-', "_"));
                let mut d =
                    Diagnostic::error(code, format!("{step}: {}", error.message)).with_span(*span);
                if span.is_some() {
                    d = d.with_label(format!("the `{step}` step failed for this"));
                }
                if let Some(h) = &error.hint {
                    d = d.with_help(h.clone());
                }
                d
            }
            ExecError::Vanished(_) => Diagnostic::error("foxbox::exec::vanished", self.to_string()),
            ExecError::Relay(_) => Diagnostic::error("foxbox::exec::relay", self.to_string()),
        }
    }
}
