//! What went wrong inside one step of a box's set-up, as a value (with its errno), and
//! [`Context`] to attach what was being done to an `io::Error`. Below the executor and every
//! mechanism it calls (`fs`, ...), so that they share one error type without importing the
//! executor; [`crate::exec::error`] turns a step's error into the box's `ExecError`.

use std::io;

use serde::{Deserialize, Serialize};

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
