//! The immutable, fully defaulted plan that a valid spec (or `run` flags) resolves into.
//!
//! Nothing here knows TOML: values are typed (bytes, capability sets, absolute paths, parsed
//! seccomp rules). Every item that came from the user remembers the span it came from, so a
//! failure at run time can point back at the spec line that asked for it.
//!
//! The value types the plan holds live with it ([`caps`], [`digest`], [`limits`],
//! [`mod@reference`], [`seccomp_profile`], [`units`]): the mechanisms that apply them (`security`, `cgroup`) import them from here,
//! never the other way.
//!
//! A [`Plan`] is what the spec and the command line ask for; a [`BoxPlan`] is that plan with
//! its image's defaults applied: what a box runs, what `foxbox plan` prints and what `inspect`
//! records. Neither changes once made.

pub mod box_rootfs;
pub mod caps;
pub mod digest;
pub mod limits;
pub mod names;
pub mod reference;
pub mod seccomp_profile;
pub mod units;
pub mod user;
pub mod userns;

use std::path::PathBuf;

use serde::{Serialize, Serializer};

use caps::CapSet;
pub use limits::{Limits, DEFAULT_STOP_TIMEOUT};
use seccomp_profile::Profile;
pub use user::User;
pub use userns::Userns;

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

/// An image's defaults for the boxes made from it: its config's `WorkingDir`, `User`, `Env`
/// (`KEY=VALUE`), `Entrypoint` and `Cmd`, and whether it has a shell to run when nothing
/// names a command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// The image has [`DEFAULT_SHELL`].
    pub shell: bool,
}

/// The shell a box runs when neither its spec nor its image names a command (a rootfs
/// tarball has no config), as the original tool's `run IMAGE` did.
pub const DEFAULT_SHELL: &str = "/bin/sh";

/// What a box runs: a [`Plan`] with its image's defaults applied under it. The runner starts
/// only these, and `foxbox plan` prints one, so what is printed is what runs. Serializes as
/// the plan it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct BoxPlan(Plan);

impl BoxPlan {
    /// The image's defaults under the plan: a value the spec or a `run` flag set wins; a value
    /// foxbox defaulted yields to the image's. Under `keep-id` a box with no user from either
    /// runs as the ids the caller (`caller`: its uid and gid) keeps, as podman's.
    pub fn new(plan: Plan, image: &ImageDefaults, caller: (u32, u32)) -> BoxPlan {
        let mut p = plan;
        if !p.process.given.cwd {
            if let Some(w) = image.workdir.as_ref().filter(|w| w.starts_with('/')) {
                p.process.cwd = Spanned::bare(PathBuf::from(w));
            }
        }
        if !p.process.given.user {
            if let Some(u) = image.user.as_deref().and_then(User::parse_image) {
                p.process.user = Spanned::bare(u);
            } else if let Some((uid, gid)) = p.userns.value.kept_ids(caller) {
                p.process.user = Spanned::new(
                    User::Id {
                        uid,
                        gid: Some(gid),
                    },
                    p.userns.span,
                );
            }
        }
        let default_path = p
            .process
            .env
            .iter()
            .any(|(k, v)| k == "PATH" && v == DEFAULT_PATH);
        for kv in &image.env {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match p.process.env.iter_mut().find(|(pk, _)| pk == k) {
                Some(entry) if k == "PATH" && default_path => entry.1 = v.to_string(),
                Some(_) => {}
                None => p.process.env.insert(0, (k.to_string(), v.to_string())),
            }
        }
        p.process.argv = p.process.argv.with_image(image);
        p.process.args = p.process.argv.joined();
        BoxPlan(p)
    }

    pub fn plan(&self) -> &Plan {
        &self.0
    }
}

impl std::ops::Deref for BoxPlan {
    type Target = Plan;
    fn deref(&self) -> &Plan {
        &self.0
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
    /// How the box's user namespace maps ids (`keep-id`); left out of the JSON when default.
    #[serde(skip_serializing_if = "is_default_userns")]
    pub userns: Spanned<Userns>,
    pub network: Network,
    /// Mounts in the order the spec gives them (after the rootfs, /proc, /dev, /sys).
    pub mounts: Vec<Mount>,
    pub rootfs: Rootfs,
}

fn is_default_userns(u: &Spanned<Userns>) -> bool {
    u.value.is_default()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageRef {
    /// An image in the store (pulled when missing), by name and tag, optionally pinned to a
    /// digest.
    Stored(reference::ImageName),
    /// A rootfs tarball (absolute path), imported on first use and keyed by its digest.
    Tarball { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Process {
    /// The argv the box runs: [`Process::argv`]'s parts joined, which [`BoxPlan::new`] (the
    /// one place that decides it) does with the image's defaults; empty in a spec's plan
    /// before that. A plan made without an image (the OCI runtime's) sets it itself.
    pub args: Spanned<Vec<String>>,
    /// The entrypoint and command the argv is made of, and where each came from.
    #[serde(flatten)]
    pub argv: Argv,
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
    /// Which of `cwd` and `user` the spec or a flag set, so that an image's `WorkingDir` and
    /// `User` replace only foxbox's defaults (spans cannot tell: `run` flags keep none).
    #[serde(skip)]
    pub given: Given,
}

/// A box's argv in Docker's two parts: the entrypoint, and the command (Docker's `CMD`)
/// that follows it. A string in the spec is already `["/bin/sh", "-c", cmd]` here.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Argv {
    /// `box.entrypoint` (`--entrypoint`): replaces the image's `ENTRYPOINT` and drops its
    /// `CMD`, as Docker and Compose do; empty words clear it. `None`: the image's.
    pub entrypoint: Option<ArgvPart>,
    /// `box.command` (the words after the image in `run`): replaces the image's `CMD`.
    /// `None`: the image's, unless the entrypoint was given.
    pub command: Option<ArgvPart>,
}

/// One part of a box's argv and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgvPart {
    pub words: Spanned<Vec<String>>,
    pub from: ArgvFrom,
}

/// Where a part of a box's argv came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgvFrom {
    /// The spec, or a `run` flag.
    Given,
    /// The image's `ENTRYPOINT` or `CMD`.
    Image,
    /// [`DEFAULT_SHELL`]: nothing else named a command and the image has one.
    Shell,
}

impl ArgvPart {
    /// A part the spec or a flag gave.
    pub fn given(words: Spanned<Vec<String>>) -> ArgvPart {
        ArgvPart {
            words,
            from: ArgvFrom::Given,
        }
    }

    fn of(words: &[String], from: ArgvFrom) -> Option<ArgvPart> {
        (!words.is_empty()).then(|| ArgvPart {
            words: Spanned::bare(words.to_vec()),
            from,
        })
    }
}

impl Argv {
    /// The parts given, completed by the image's as Docker does: an entrypoint given drops
    /// the image's command; the image's entrypoint stays under a command given; the shell
    /// runs when nothing names a program. Parts an image filled earlier are filled anew.
    fn with_image(&self, image: &ImageDefaults) -> Argv {
        let given = |p: &Option<ArgvPart>| p.clone().filter(|p| p.from == ArgvFrom::Given);
        let entrypoint = given(&self.entrypoint);
        let mut command = given(&self.command);
        let out_entrypoint = match &entrypoint {
            Some(e) => Some(e.clone()),
            None => ArgvPart::of(&image.entrypoint, ArgvFrom::Image),
        };
        if command.is_none() && entrypoint.is_none() {
            command = ArgvPart::of(&image.cmd, ArgvFrom::Image);
        }
        let empty = |p: &Option<ArgvPart>| p.as_ref().is_none_or(|p| p.words.value.is_empty());
        if empty(&out_entrypoint) && empty(&command) && entrypoint.is_none() && image.shell {
            command = ArgvPart::of(&[DEFAULT_SHELL.to_string()], ArgvFrom::Shell);
        }
        Argv {
            entrypoint: out_entrypoint,
            command,
        }
    }

    /// The argv: the entrypoint's words, then the command's. Its span is that of the part
    /// that names the program, when the spec gave it.
    fn joined(&self) -> Spanned<Vec<String>> {
        let parts = [&self.entrypoint, &self.command];
        let mut words = Vec::new();
        let mut span = None;
        for p in parts.into_iter().flatten() {
            if words.is_empty() && !p.words.value.is_empty() {
                span = p.words.span;
            }
            words.extend(p.words.value.iter().cloned());
        }
        Spanned::new(words, span)
    }
}

/// The process values a spec or the command line set (see [`Process::given`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Given {
    pub cwd: bool,
    pub user: bool,
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
    /// Binds and volumes (podman's `:U`): chown the source, recursively, to the box user's
    /// ids before the box's command runs.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub chown: bool,
    /// Binds and volumes (podman's `:O`): an overlay over the source, whose writes stay in
    /// the box (on its scratch tmpfs) and go with it; the source is never written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub overlay: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    fn given(w: &[&str]) -> Option<ArgvPart> {
        Some(ArgvPart::given(Spanned::new(
            words(w),
            Some(Span::new(1, 2)),
        )))
    }

    /// The argv and where its parts came from, for a plan's parts over an image's.
    fn joined(argv: Argv, ep: &[&str], cmd: &[&str], shell: bool) -> (Vec<String>, Argv) {
        let image = ImageDefaults {
            entrypoint: words(ep),
            cmd: words(cmd),
            shell,
            ..ImageDefaults::default()
        };
        let a = argv.with_image(&image);
        (a.joined().value, a)
    }

    #[test]
    fn the_argv_is_made_as_docker_makes_it() {
        let none = Argv::default();
        let (v, a) = joined(none.clone(), &["ep"], &["cmd"], true);
        assert_eq!(v, ["ep", "cmd"]);
        assert_eq!(a.entrypoint.map(|p| p.from), Some(ArgvFrom::Image));
        // A command given replaces the image's, after its entrypoint.
        let cmd = Argv {
            command: given(&["x"]),
            ..Argv::default()
        };
        assert_eq!(joined(cmd, &["ep"], &["cmd"], true).0, ["ep", "x"]);
        // An entrypoint given drops the image's command; an empty one clears it.
        let ep = Argv {
            entrypoint: given(&["e"]),
            ..Argv::default()
        };
        assert_eq!(joined(ep, &["ep"], &["cmd"], true).0, ["e"]);
        let cleared = Argv {
            entrypoint: given(&[]),
            command: given(&["c"]),
        };
        assert_eq!(joined(cleared, &["ep"], &["cmd"], true).0, ["c"]);
        // Nothing anywhere: the shell, when the image has one; else nothing.
        let (v, a) = joined(none.clone(), &[], &[], true);
        assert_eq!(v, [DEFAULT_SHELL]);
        assert_eq!(a.command.map(|p| p.from), Some(ArgvFrom::Shell));
        assert!(joined(none, &[], &[], false).0.is_empty());
        // An entrypoint cleared with no command runs nothing, not the shell.
        let bare = Argv {
            entrypoint: given(&[]),
            ..Argv::default()
        };
        assert!(joined(bare, &[], &[], true).0.is_empty());
    }

    #[test]
    fn the_argv_points_at_the_part_that_names_the_program_and_is_made_once() {
        let cmd = Argv {
            command: given(&["x"]),
            ..Argv::default()
        };
        let (_, a) = joined(cmd.clone(), &[], &["cmd"], false);
        assert_eq!(a.joined().span, Some(Span::new(1, 2)));
        let (_, a) = joined(cmd, &["ep"], &["cmd"], false);
        assert_eq!(a.joined().span, None, "the image's entrypoint names it");
        // Made again over another image, the first image's parts do not count as given.
        let (_, first) = joined(Argv::default(), &["ep"], &["cmd"], false);
        assert_eq!(joined(first, &["other"], &["c2"], false).0, ["other", "c2"]);
    }
}
