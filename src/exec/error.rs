//! Errors of the executor: a step that failed (on either side), with its errno, as a value the
//! parent renders as a diagnostic pointing at the spec line that asked for the step.

use crate::diag::{codes, Diagnostic};
use crate::plan::Span;
pub use crate::step_error::{Context, StepError};

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
                let code = codes::exec_step(step);
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
            ExecError::Vanished(_) => Diagnostic::error(codes::exec::VANISHED, self.to_string()),
            ExecError::Relay(_) => Diagnostic::error(codes::exec::RELAY, self.to_string()),
        }
    }
}
