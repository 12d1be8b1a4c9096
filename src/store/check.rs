//! What `foxbox system check` reports: one broken invariant of the store, found by the part of
//! foxbox that keeps it (boxes, images, volumes, the runner for processes and cgroups).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// One problem: a stable kind word (scripts match on it), where it is, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: &'static str,
    pub path: PathBuf,
    pub detail: String,
}

impl Finding {
    pub fn new(kind: &'static str, path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Finding {
            kind,
            path: path.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.path.display(), self.detail)
    }
}

/// The use markers in `users` (one file per box id, as images and volumes keep them) whose box
/// directory under `boxes` is gone: a box's directory is made before its markers and goes
/// after them, so such a marker was left by a crash.
pub fn gone_boxes(users: &Path, boxes: &Path) -> Vec<PathBuf> {
    fs::read_dir(users)
        .map(|rd| {
            rd.flatten()
                .filter(|m| !boxes.join(m.file_name()).exists())
                .map(|m| m.path())
                .collect()
        })
        .unwrap_or_default()
}
