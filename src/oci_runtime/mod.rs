//! foxbox as an OCI runtime: runc's command line (`foxbox oci ...`, or the binary invoked as
//! `foxbox-runc`) over the same executor a box runs through.
//!
//! A bundle's `config.json` ([`config`]) translates into a [`crate::plan::Plan`] and a few
//! launch values ([`translate`]); [`container`] runs it as runc does: `create` clones the
//! container's process, which goes through every executor step up to its exec, reports
//! ready and then waits on the exec fifo in the container's state directory; `create`
//! returns, and the process outlives it (no supervisor). `start` writes a byte into the fifo;
//! the process execs its command. The state directory under `--root` (`ROOT/ID/state.json`)
//! is all the runtime keeps; a container's status is read from its process and the fifo.
//!
//! This module sits on the runner's row: it joins the executor, the mechanisms and the files
//! under the runtime root; the CLI (`cli/oci.rs`) only parses and prints.

pub mod cgroups;
pub mod config;
pub mod container;
pub mod features;
pub mod hooks;
pub mod host_mounts;
pub mod translate;

use std::path::PathBuf;

pub use config::ConfigError;

/// The runtime-spec version foxbox implements.
pub const OCI_VERSION: &str = "1.2.0";

/// Why an OCI runtime command failed. Every variant exits 1 (runc's code).
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {id:?} is {status}: {what}")]
    State {
        id: String,
        status: &'static str,
        what: String,
    },
    #[error("cannot start the container: {0}")]
    Exec(#[from] crate::exec::ExecError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup: {0}")]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error("{kind} hook {path}: {message}")]
    Hook {
        kind: &'static str,
        path: String,
        message: String,
    },
}

impl OciError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OciError {
        let what = what.into();
        move |source| OciError::Io { what, source }
    }

    /// The diagnostic code (`foxbox codes` lists them).
    pub fn code(&self) -> &'static str {
        use crate::diag::codes::oci_runtime as c;
        match self {
            OciError::Config(_) => c::CONFIG,
            OciError::Usage(_) => c::USAGE,
            OciError::Exists(_) => c::EXISTS,
            OciError::NotFound(_) => c::NOT_FOUND,
            OciError::State { .. } => c::STATE,
            OciError::Exec(_) => c::EXEC,
            OciError::Io { .. } => c::IO,
            OciError::Hook { .. } => c::HOOK,
            OciError::Cgroup(_) => c::CGROUP,
        }
    }
}

/// runc's default state root: /run/foxbox-runc as root, else $XDG_RUNTIME_DIR/foxbox-runc
/// (or /tmp/foxbox-runc-UID without one).
pub fn default_root() -> PathBuf {
    let uid = nix::unistd::geteuid().as_raw();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty());
    // runc's rule (shouldHonorXDGRuntimeDir): root in a user namespace whose $USER is unset
    // or not root is an unprivileged user's runtime (rootless podman runs it so, through
    // conmon, which drops $USER), whose state belongs in its XDG_RUNTIME_DIR; /run is the
    // host root's.
    let rootless_root = uid == 0
        && xdg.is_some()
        && in_user_namespace()
        && std::env::var("USER").map_or(true, |u| u != "root");
    if uid == 0 && !rootless_root {
        return PathBuf::from("/run/foxbox-runc");
    }
    match xdg {
        Some(d) => PathBuf::from(d).join("foxbox-runc"),
        None if uid == 0 => PathBuf::from("/run/foxbox-runc"),
        None => PathBuf::from(format!("/tmp/foxbox-runc-{uid}")),
    }
}

/// Whether this process is in a user namespace other than the host's (whose uid map is the
/// whole identity).
pub(crate) fn in_user_namespace() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let host: Vec<&str> = map.split_whitespace().collect();
    !(host.is_empty() || host == ["0", "0", "4294967295"])
}
