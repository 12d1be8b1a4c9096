//! The immutable, fully defaulted plan that a valid spec (or `run` flags) resolves into.
//!
//! Nothing here knows TOML: values are typed (bytes, capability sets, absolute paths, parsed
//! seccomp rules). Every item that came from the user remembers the span it came from, so a
//! failure at run time can point back at the spec line that asked for it.
//!
//! The value types the plan holds live with it ([`caps`], [`seccomp_profile`], [`units`]): the mechanisms
//! that apply them (`security`) import them from here, never the other way.

pub mod caps;
pub mod seccomp_profile;
pub mod units;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

use caps::CapSet;
use seccomp_profile::Profile;

/// The PATH a box's processes get unless the spec sets one (podman's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A byte range in the spec source that a plan item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Self {
        Span::new(r.start, r.end)
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.end.saturating_sub(s.start)).into()
    }
}

/// A value with the place in the spec it came from (`None` for defaults and command-line values).
///
/// Serializes as the bare value: spans are for diagnostics, not for `foxbox plan --format json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Option<Span>,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Option<Span>) -> Self {
        Spanned { value, span }
    }
    /// A value that no spec line asked for (a default, or a command-line flag).
    pub fn bare(value: T) -> Self {
        Spanned { value, span: None }
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

/// Where a plan came from: a spec file (kept whole so runtime errors can render against it) or
/// the `run` command line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    Spec {
        /// The spec file as the user named it.
        path: PathBuf,
        /// The directory relative paths in the spec were resolved against.
        dir: PathBuf,
        #[serde(skip)]
        text: String,
    },
    CommandLine,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub origin: Origin,
    /// The box name asked for; `None` means "generate one".
    pub name: Option<Spanned<String>>,
    pub image: Spanned<ImageRef>,
    pub process: Process,
    /// `None`: the box name.
    pub hostname: Option<Spanned<String>>,
    pub limits: Limits,
    /// The box's capability set: the bounding set of every process in the box, and all five
    /// sets (effective, permitted, inheritable, bounding, ambient) of one running as uid 0.
    pub capabilities: Spanned<CapSet>,
    /// The capabilities `capabilities.add` (`--cap-add`) names, within `capabilities` (all of
    /// them with `ALL`). As podman does, a process running as any uid but 0 gets only these in
    /// its effective, permitted, inheritable and ambient sets (the bounding set stays
    /// `capabilities`): a non-root user keeps no default capability.
    pub added_capabilities: CapSet,
    pub no_new_privs: bool,
    pub seccomp: Spanned<Seccomp>,
    pub network: Network,
    /// Mounts in the order the spec gives them (after the rootfs, /proc, /dev, /sys).
    pub mounts: Vec<Mount>,
    pub rootfs: Rootfs,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageRef {
    /// An image in the store, by name and tag, optionally pinned to a digest (`sha256:<hex>`).
    Stored {
        name: String,
        tag: String,
        digest: Option<String>,
    },
    /// A rootfs tarball (absolute path), imported on first use and keyed by its digest.
    Tarball { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Process {
    /// argv; a string command in the spec becomes `["/bin/sh", "-c", cmd]`. Empty means the
    /// image's default command.
    pub args: Spanned<Vec<String>>,
    /// Environment in order: the default PATH first, then the spec's (a spec PATH replaces the
    /// default in place). HOME, HOSTNAME and TERM depend on the box's /etc/passwd, its
    /// (possibly generated) name and the tty decision, so the executor adds each at start when
    /// it is absent here.
    pub env: Vec<(String, String)>,
    /// Absolute path inside the box.
    pub cwd: Spanned<PathBuf>,
    pub user: Spanned<User>,
    /// `None`: decide at start (a tty when stdin is a terminal).
    pub tty: Option<bool>,
    pub init: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum User {
    /// Numeric ids; a missing gid means the user's primary group from /etc/passwd, or the uid.
    Id { uid: u32, gid: Option<u32> },
    /// Looked up in the box's /etc/passwd (and /etc/group for the group) at start.
    Name { user: String, group: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<Spanned<u64>>,
    /// Bytes of memory + swap; `None` with a memory limit means "same as memory" (no swap).
    pub memory_swap: Option<Spanned<u64>>,
    /// Fractions of a CPU.
    pub cpus: Option<Spanned<f64>>,
    pub pids: Option<Spanned<u64>>,
    #[serde(serialize_with = "ser_duration_opt")]
    pub timeout: Option<Spanned<Duration>>,
    /// Between SIGTERM and SIGKILL when the box is stopped (`None`: [`DEFAULT_STOP_TIMEOUT`]).
    #[serde(serialize_with = "ser_duration_opt")]
    pub stop_timeout: Option<Spanned<Duration>>,
    pub enforce: Enforce,
}

/// How long a box being stopped has between SIGTERM and SIGKILL unless its plan says (podman's
/// `--stop-timeout` default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl Limits {
    /// The grace period between SIGTERM and SIGKILL when the box is stopped.
    pub fn stop_grace(&self) -> Duration {
        self.stop_timeout
            .as_ref()
            .map_or(DEFAULT_STOP_TIMEOUT, |t| t.value)
    }

    /// True when any cgroup-backed limit is declared (timeout is enforced by foxbox itself).
    pub fn needs_cgroup(&self) -> bool {
        self.memory.is_some() || self.cpus.is_some() || self.pids.is_some()
    }
}

fn ser_duration_opt<S: Serializer>(d: &Option<Spanned<Duration>>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&humantime::format_duration(d.value).to_string()),
        None => s.serialize_none(),
    }
}

/// What to do when a declared limit cannot be enforced on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Enforce {
    /// Refuse to start (the default: a declared limit is never silently dropped).
    #[default]
    Strict,
    /// Start anyway with a warning naming each limit that is not enforced.
    BestEffort,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Seccomp {
    /// foxbox's built-in allow-list (podman's default equivalent).
    Default,
    Unconfined,
    /// An OCI/Docker JSON profile, parsed and checked at resolve time.
    Profile {
        path: PathBuf,
        profile: Box<Profile>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetMode {
    None,
    Host,
    Pasta,
    Slirp4netns,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    pub mode: Spanned<NetMode>,
    pub ports: Vec<Spanned<PortForward>>,
    pub allow_host_loopback: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortForward {
    /// `None`: all host addresses.
    pub host_ip: Option<std::net::IpAddr>,
    /// 0: any free port, picked when the box starts (the box's record has the one picked).
    pub host_port: u16,
    pub box_port: u16,
    pub proto: Proto,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mount {
    pub kind: MountKind,
    /// Absolute, normalised, no `..`; resolved inside the new root at run time.
    pub target: PathBuf,
    pub readonly: bool,
    #[serde(skip)]
    pub span: Option<Span>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountKind {
    /// An absolute host path.
    Bind { source: PathBuf },
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
        /// Files on it cannot be executed (`--tmpfs`' default, as podman's).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        noexec: bool,
    },
    /// A named volume in the store, created on first use.
    Volume { name: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rootfs {
    pub readonly: Spanned<bool>,
}
