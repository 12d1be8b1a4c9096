//! `foxbox export`: a resolved plan written in the formats other engines take.
//!
//! - [`kube`]: a Kubernetes Pod manifest (YAML), from the plan alone.
//! - [`bundle`]: an OCI runtime bundle (the image's root filesystem and a `config.json`), for
//!   runc, crun or any OCI runtime. [`bundle::config_from_plan`] is the one translation from a
//!   plan to runtime-spec types (the OCI runtime mode translates the other way).
//!
//! What a target format cannot express is a warning (`foxbox::export::no_equivalent`) that
//! points at the spec line that asked for it; nothing is dropped silently. Outputs appear whole
//! or not at all: a file through `store::atomic`, a bundle as a temporary sibling directory
//! renamed into place.
//!
//! This module sits beside `build` (above the runner): it reads the image and volume stores to
//! copy a root filesystem and find a volume's directory, and never starts a box.

pub mod bundle;
pub mod kube;

use std::path::PathBuf;

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} exists and is not an empty directory", path.display())]
    NotEmpty { path: PathBuf },
    #[error("{0}")]
    Image(String),
    #[error("{0}")]
    Other(String),
}

impl ExportError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ExportError {
        let path = path.into();
        move |source| ExportError::Io { what, path, source }
    }
}

/// What a plan asks of foxbox's own set-up that neither a bundle nor a Pod carries: `keep-id`
/// (the id maps foxbox computes), `:U` (the source chowned before the box starts) and `:O`
/// (foxbox's overlay over the source, which a bundle exports as a read-only bind so that
/// nothing writes through to the host). Each with the span that asked for it.
pub(crate) fn foxbox_only(
    plan: &crate::plan::Plan,
    format: &str,
) -> Vec<(Option<crate::plan::Span>, String)> {
    let mut out = Vec::new();
    if plan.userns.value != crate::plan::Userns::Default {
        out.push((
            plan.userns.span,
            format!(
                "{format} has no `keep-id`: foxbox computes those id maps itself; the box's \
                 user is exported, the mapping is the engine's"
            ),
        ));
    }
    for m in &plan.mounts {
        let target = m.target.display();
        if m.chown {
            out.push((
                m.span,
                format!(
                    "{format} does not chown a source (`:U`, `chown = true` on {target}): \
                     chown it on the host first"
                ),
            ));
        }
        if m.overlay {
            out.push((
                m.span,
                format!(
                    "{format} has no overlay over a source (`:O`, `overlay = true` on \
                     {target}): it is exported read-only, so nothing writes through to the host"
                ),
            ));
        }
    }
    out
}
