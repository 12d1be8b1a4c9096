//! Host checks (`foxbox check --host`).

use crate::diag::Diagnostic;
use crate::plan::Plan;

/// What the host checks look at besides the plan.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// The store (`--root` / FOXBOX_ROOT / XDG), to look for stored images; `None` when it
    /// cannot be determined.
    pub store: Option<crate::store::paths::Paths>,
}

/// Every problem this host has with running `plan`.
pub fn check(_plan: &Plan, _opts: &HostOptions) -> Vec<Diagnostic> {
    Vec::new()
}
