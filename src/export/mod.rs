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
