//! The spec as the user wrote it: every value keeps its span, nothing is interpreted yet.
//!
//! These types are filled from TOML (`parse`) or from `run` flags (`flags`), and the JSON schema
//! (`schema`) is generated from them, so their doc comments are the key descriptions users see
//! in their editors. Values that need interpretation (sizes, durations, names) stay strings here;
//! `resolve` turns them into typed plan values and reports what is wrong with them.
//!
//! The `[build]` and `[[test]]` tables are here too ([`RawBuild`], [`RawTest`]): the spec holds
//! them, so they sit below the modules that resolve them (`build`, `smoke`), which then import
//! this one and are never imported by it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::plan::Span;

/// A value and the span of source text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: impl Into<Span>) -> Self {
        Sp {
            value,
            span: span.into(),
        }
    }
}

/// The schema of a spanned value is the schema of the value.
impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A Foxbox.toml box spec.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(title = "Foxbox.toml", deny_unknown_fields)]
pub struct RawSpec {
    /// Base specs this one extends, applied in order (a path relative to this file, or an
    /// array of them): tables merge key by key, `box.env` by name, `[[mounts]]` by `target`,
    /// `capabilities.add`/`drop` concatenate, other values replace the base's. Read before the
    /// rest of the spec, so never set here once read.
    #[serde(default)]
    #[schemars(with = "Option<ExtendsSchema>")]
    pub extends: Option<Sp<Vec<Sp<String>>>>,
    /// The file of variables for `${NAME}` in string values (`KEY=VALUE` lines, Docker's
    /// rules), relative to this file. Default `.env` beside the spec, when it exists. The
    /// environment wins over it.
    pub env_file: Option<Sp<String>>,
    /// The box: its image, command and process settings.
    #[serde(rename = "box")]
    #[schemars(required)]
    pub box_: Option<Sp<RawBox>>,
    /// Resource limits (cgroups) and the wall-clock timeout.
    pub limits: Option<Sp<RawLimits>>,
    /// Capabilities given to the box's processes, starting from podman's default set.
    pub capabilities: Option<Sp<RawCapabilities>>,
    /// The seccomp system-call filter.
    pub seccomp: Option<Sp<RawSeccomp>>,
    /// Other process hardening.
    pub security: Option<Sp<RawSecurity>>,
    /// The box's network.
    pub network: Option<Sp<RawNetwork>>,
    /// Extra mounts, applied in order after the root filesystem, /proc, /dev and /sys.
    #[serde(default)]
    pub mounts: Vec<Sp<RawMount>>,
    /// The box's root filesystem.
    pub rootfs: Option<Sp<RawRootfs>>,
    /// How to build an image from the files beside this spec (`foxbox build`); also the whole
    /// of a standalone `Foxfile.toml`.
    pub build: Option<Sp<RawBuild>>,
    /// `foxbox lint` settings for this spec.
    pub lint: Option<Sp<RawLint>>,
    /// Smoke tests `foxbox test` runs, each in a fresh box from this spec's plan.
    #[serde(rename = "test", default)]
    pub tests: Vec<Sp<RawTest>>,
}

/// The `[box]` table.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Box")]
pub struct RawBox {
    /// Name of the box; when absent foxbox generates a fox-themed one. Letters, digits, `_`, `.`
    /// and `-`, starting with a letter or digit.
    pub name: Option<Sp<String>>,
    /// The image: a stored image `name[:tag][@sha256:<hex>]`, or a path to a `.tar`/`.tar.gz`
    /// rootfs tarball (relative paths are relative to the spec file's directory). Required.
    #[schemars(required)]
    pub image: Option<Sp<String>>,
    /// The entrypoint (Compose's and Docker's): an argv array, or a string run through
    /// `/bin/sh -c`. It replaces the image's `ENTRYPOINT` and drops the image's `CMD` (give
    /// `command` too to keep arguments); `[]` or `""` clears the image's. Default: the image's.
    pub entrypoint: Option<Sp<RawCommand>>,
    /// The command: an argv array, or a string run through `/bin/sh -c`. It replaces the
    /// image's `CMD` and follows the entrypoint (the image's, or `entrypoint`). Default: the
    /// image's `CMD`, unless `entrypoint` is set.
    pub command: Option<Sp<RawCommand>>,
    /// Absolute working directory inside the box. Default `/`.
    pub workdir: Option<Sp<String>>,
    /// The user to run as: `uid[:gid]`, or `name[:group]` looked up in the box's /etc/passwd
    /// and /etc/group. Default `0` (root inside the box, the caller outside).
    #[serde(default)]
    #[schemars(with = "UserSchema")]
    pub user: Option<Sp<String>>,
    /// Hostname inside the box. Default: the box name.
    pub hostname: Option<Sp<String>>,
    /// Environment variables, set over the defaults (PATH, HOME, HOSTNAME, TERM).
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    pub env: Option<Sp<Vec<RawEnv>>>,
    /// Allocate a pseudo-terminal. Default: true when stdin is a terminal.
    pub tty: Option<Sp<bool>>,
    /// Run a tiny pid 1 that reaps zombies and forwards signals. Default false.
    pub init: Option<Sp<bool>>,
    /// The same as the top-level `extends`.
    #[serde(default)]
    #[schemars(with = "Option<ExtendsSchema>")]
    pub extends: Option<Sp<Vec<Sp<String>>>>,
}

/// The schema of `extends`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Extends")]
#[allow(dead_code)]
enum ExtendsSchema {
    /// One base spec.
    One(String),
    /// Base specs, applied in order.
    Many(Vec<String>),
}

/// The schema of `box.user`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "User")]
#[allow(dead_code)]
enum UserSchema {
    /// A numeric uid.
    Uid(u32),
    /// `uid[:gid]` or `name[:group]`.
    Text(String),
}

/// One `env` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEnv {
    pub key: Sp<String>,
    pub value: Sp<String>,
}

/// `command`, `entrypoint`: an argv array or a shell string.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Command")]
pub enum RawCommand {
    /// The program and its arguments, run as they are.
    Argv(Vec<Sp<String>>),
    /// A command line run with `/bin/sh -c`.
    Shell(String),
}

/// A size: bytes as an integer, or a string with a binary unit.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Size")]
pub enum RawSize {
    /// Bytes.
    Bytes(i64),
    /// A number with a binary unit like podman's: `b`, `k`/`KiB`, `m`/`MiB`, `g`/`GiB`
    /// (`64m` = 64 MiB).
    Text(String),
}

/// The `[limits]` table. Every limit but `timeout` needs a cgroup controller.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Limits")]
pub struct RawLimits {
    /// Memory limit: `"64MiB"`, `"64m"`, `"1g"` (binary units), or bytes as an integer. At least
    /// 6 MiB.
    pub memory: Option<Sp<RawSize>>,
    /// Memory plus swap limit, at least `memory` (which it needs). Default: equal to `memory`,
    /// that is no swap.
    pub memory_swap: Option<Sp<RawSize>>,
    /// CPU limit in cores, e.g. `0.5` or `2`. At least 0.01.
    pub cpus: Option<Sp<f64>>,
    /// Maximum number of processes (and threads) in the box. At least 1.
    pub pids: Option<Sp<i64>>,
    /// Wall-clock limit after which the box is stopped (SIGTERM, then SIGKILL after
    /// `stop_timeout`), in humantime syntax (`"30s"`, `"1m30s"`).
    pub timeout: Option<Sp<String>>,
    /// How long the box has to end after the SIGTERM that stops it (its `timeout` ran out, or
    /// `foxbox stop` without `--time`) before it is killed with SIGKILL, in humantime syntax.
    /// Default `"10s"`, as podman's `--stop-timeout`; `"0s"` kills at once.
    pub stop_timeout: Option<Sp<String>>,
    /// What to do when a limit cannot be enforced on this host: `strict` refuses to start
    /// (default), `best-effort` starts with a warning.
    #[serde(default)]
    #[schemars(with = "EnforceName")]
    pub enforce: Option<Sp<String>>,
}

/// Values of `limits.enforce`.
#[derive(JsonSchema)]
#[schemars(rename = "Enforce")]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum EnforceName {
    /// Refuse to start when a declared limit cannot be enforced.
    Strict,
    /// Start anyway, warning about each limit that is not enforced.
    BestEffort,
}

/// The `[capabilities]` table.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Capabilities")]
pub struct RawCapabilities {
    /// Capabilities to remove from the default set (podman's). Names are case-insensitive with an
    /// optional `CAP_` prefix; `ALL` removes every one.
    pub drop: Option<Sp<Vec<Sp<String>>>>,
    /// Capabilities to add after dropping. `ALL` adds every one. A non-root user gets only these.
    pub add: Option<Sp<Vec<Sp<String>>>>,
}

/// The `[seccomp]` table.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Seccomp")]
pub struct RawSeccomp {
    /// `default` (foxbox's built-in allow-list, like podman's), `unconfined` (no filter), or a
    /// path to an OCI/Docker seccomp JSON profile relative to the spec file's directory.
    pub profile: Option<Sp<String>>,
}

/// The `[security]` table.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Security")]
pub struct RawSecurity {
    /// Set no_new_privs so that setuid binaries and file capabilities cannot raise privileges.
    /// Default true.
    pub no_new_privileges: Option<Sp<bool>>,
    /// The user namespace's mode: `"keep-id"` (podman's: your uid is the same number in the
    /// box, your subordinate range around it, and the box runs as it unless `box.user` or the
    /// image names a user; as root nothing moves and the box runs as 0), or
    /// `"keep-id:uid=N,gid=N"` (you are box uid N and gid N). Default: you are the box's root.
    pub userns: Option<Sp<String>>,
}

/// The `[network]` table.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Network")]
pub struct RawNetwork {
    /// `none` (only loopback; the default), `host` (share the host's network), `pasta` or
    /// `slirp4netns` (user-mode networking with outbound access).
    #[serde(default)]
    #[schemars(with = "NetModeName")]
    pub mode: Option<Sp<String>>,
    /// Port forwards from the host into the box: `[host_ip:][host_port:]box_port[/tcp|udp]`,
    /// ports or ranges (`"8000-8010:8000-8010"`); no host port: any free one, picked at start.
    /// Needs `pasta` or `slirp4netns`.
    pub ports: Option<Sp<Vec<Sp<String>>>>,
    /// Let the box reach the host's loopback addresses (pasta/slirp4netns only). Default false.
    pub allow_host_loopback: Option<Sp<bool>>,
}

/// Values of `network.mode`.
#[derive(JsonSchema)]
#[schemars(rename = "NetworkMode")]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum NetModeName {
    /// A network namespace with only loopback.
    None,
    /// The host's network namespace.
    Host,
    /// A network namespace connected through pasta.
    Pasta,
    /// A network namespace connected through slirp4netns.
    Slirp4netns,
}

/// One `[[mounts]]` entry.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Mount")]
pub struct RawMount {
    /// `bind` (a host path), `tmpfs` (memory-backed, empty) or `volume` (a named volume in the
    /// store, created on first use).
    #[serde(rename = "type")]
    #[schemars(with = "MountTypeName", required)]
    pub kind: Option<Sp<String>>,
    /// bind: the host path (relative to the spec file's directory); volume: the volume name;
    /// tmpfs: not allowed.
    pub source: Option<Sp<String>>,
    /// Absolute path inside the box.
    #[schemars(required)]
    pub target: Option<Sp<String>>,
    /// Mount read-only. Default false.
    pub readonly: Option<Sp<bool>>,
    /// tmpfs only: size limit, like `limits.memory` (`"64m"`). Default: the kernel's (half of RAM).
    pub size: Option<Sp<RawSize>>,
    /// tmpfs only: permissions of the mount's root as an octal string (`"1777"`) or an octal
    /// integer (`0o1777`). Default 1777.
    #[serde(default)]
    #[schemars(with = "ModeSchema")]
    pub mode: Option<Sp<RawMode>>,
    /// tmpfs only: whether files on it may be executed. Default true (`run --tmpfs`: false, as
    /// podman's `noexec`).
    pub exec: Option<Sp<bool>>,
    /// bind and volume only: chown the source, recursively, to the box user's ids (as they
    /// are on the host) before the command runs, as podman's `:U`. Default false.
    pub chown: Option<Sp<bool>>,
    /// bind and volume only: mount an overlay over the source, as podman's `:O`: the box may
    /// write, but its writes stay in the box and go when it ends; the source is never
    /// written. Not with `readonly` or `chown`. Default false.
    pub overlay: Option<Sp<bool>>,
    /// In a spec that `extends` a base: drop the base's mount with this `target`.
    pub remove: Option<Sp<bool>>,
}

/// Values of a mount's `type`.
#[derive(JsonSchema)]
#[schemars(rename = "MountType")]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum MountTypeName {
    /// A host path bind-mounted into the box.
    Bind,
    /// An empty memory-backed file system.
    Tmpfs,
    /// A named volume in foxbox's store.
    Volume,
}

/// A file mode: an octal string, or an integer and the radix it was written in.
#[derive(Debug, Clone, PartialEq)]
pub enum RawMode {
    Int { value: i64, radix: u32 },
    Text(String),
}

/// A file mode in octal.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Mode")]
#[allow(dead_code)]
enum ModeSchema {
    /// An integer written as an octal literal (`0o1777`).
    Int(u32),
    /// Octal digits, e.g. `"1777"`.
    Text(String),
}

/// The `[rootfs]` table.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Rootfs")]
pub struct RawRootfs {
    /// Mount the root filesystem read-only. Default false.
    pub readonly: Option<Sp<bool>>,
}

/// The `[lint]` table.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Lint")]
pub struct RawLint {
    /// Lint rule ids (`FB003`) that `foxbox lint` does not report for this spec; it counts them
    /// as allowed. One line can be allowed with a comment on it: `# foxbox: allow FB003`.
    pub allow: Option<Sp<Vec<Sp<String>>>>,
}

/// The `[build]` table: how to build an image from the files beside the recipe.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Build")]
pub struct RawBuild {
    /// The base: a stored image `name[:tag]`, a reference with a registry
    /// (`host[:port]/name:tag`, pulled when the store lacks it), a rootfs tarball path
    /// relative to this file (`./rootfs.tar`), or `"scratch"` (nothing). Required.
    #[schemars(required)]
    pub from: Option<Sp<String>>,
    /// The directory `copy` steps read, relative to this file. Default: this file's directory.
    /// A `.foxignore` there (else `.containerignore`, else `.dockerignore`) excludes files.
    pub context: Option<Sp<String>>,
    /// Build arguments and their defaults, set with `--build-arg K=V` and used as `${K}` in steps.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub args: Option<Sp<Vec<RawEnv>>>,
    /// The steps, in order: `[[build.steps]]` tables with one action each.
    #[serde(default)]
    pub steps: Vec<Sp<RawStep>>,
    /// Images built on the same base as `from`: the layers each has above that base are
    /// applied on top of `from`, in order (e.g. `["golang:1", "valkey:8"]`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub merge: Option<Sp<Vec<Sp<String>>>>,
    /// What to do when two `merge` images change a path differently: `"refuse"` (default)
    /// or `"last-wins"` (the later image's version is kept).
    pub merge_conflicts: Option<Sp<String>>,
    /// Earlier stages, built when the image needs them: `[[build.stage]]` tables with a
    /// `name` that a `from` or a `copy` step's `from` names.
    #[serde(default)]
    pub stage: Vec<Sp<RawStage>>,
    /// The image's default command: an argv array, or a string run with `/bin/sh -c`.
    pub cmd: Option<Sp<RawCommand>>,
    /// The image's entrypoint: an argv array, or a string run with `/bin/sh -c`.
    pub entrypoint: Option<Sp<RawCommand>>,
    /// Environment variables of the image (over those of `from` and of `env` steps).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub env: Option<Sp<Vec<RawEnv>>>,
    /// The image's absolute working directory.
    pub workdir: Option<Sp<String>>,
    /// The user the image runs as: `uid[:gid]` or `name[:group]`.
    pub user: Option<Sp<String>>,
    /// Ports the image listens on: `"80"`, `"80/tcp"`, `"53/udp"` (documentation only).
    pub expose: Option<Sp<Vec<Sp<String>>>>,
    /// Labels of the image (OCI config `Labels`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: Option<Sp<Vec<RawEnv>>>,
}

/// One `[[build.stage]]` table: a named image built on the way, for its files.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "BuildStage")]
pub struct RawStage {
    /// The stage's name, used by a `from` or a `copy` step's `from`. Required.
    #[schemars(required)]
    pub name: Option<Sp<String>>,
    /// As `[build]`'s `from` (a stored image, a registry reference, a tarball, `"scratch"`),
    /// or the name of another stage. Required.
    #[schemars(required)]
    pub from: Option<Sp<String>>,
    /// As `[build]`'s `merge`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub merge: Option<Sp<Vec<Sp<String>>>>,
    /// As `[build]`'s `merge_conflicts`.
    pub merge_conflicts: Option<Sp<String>>,
    /// The stage's steps, as `[[build.steps]]`.
    #[serde(default)]
    pub steps: Vec<Sp<RawStep>>,
}

/// One `[[build.steps]]` table: exactly one of `run`, `copy`, `env`, `workdir`, `user`, `label`.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "BuildStep")]
pub struct RawStep {
    /// Run a command in a box of the image so far: an argv array, or a string run with
    /// `/bin/sh -c`. What it changes becomes the step's layer.
    pub run: Option<Sp<RawCommand>>,
    /// `run` only: the box's network, `none` (default), `host` or `pasta`.
    pub network: Option<Sp<String>>,
    /// `run` only: cache directories mounted into the box, kept in the store between steps
    /// and builds (package caches): an absolute path, or a table with `target`, `id` and
    /// `sharing`. Their contents are not part of the step's layer nor of its cache key.
    #[serde(default)]
    #[schemars(with = "Vec<RawCache>")]
    pub cache: Option<Sp<Vec<Sp<RawCache>>>>,
    /// Copy files, directories or globs of the context (never outside it) to `dest`. A
    /// directory's contents are copied, as Docker's COPY does.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub copy: Option<Sp<Vec<Sp<String>>>>,
    /// `copy` only: copy out of this stage or image instead of the context; the sources are
    /// then absolute paths in it, and owners are kept unless `chown` says otherwise.
    pub from: Option<Sp<String>>,
    /// `copy` only: the absolute destination; ending in `/` (or with several sources) a
    /// directory the sources go into.
    pub dest: Option<Sp<String>>,
    /// `copy` only: the owner of the copied files, `uid[:gid]` or `user[:group]` (names
    /// looked up in the image's /etc/passwd and /etc/group; a user alone means its primary
    /// group). Default `0:0`.
    pub chown: Option<Sp<String>>,
    /// `copy` only: the mode of the copied files and directories, octal (`"0755"`).
    pub chmod: Option<Sp<String>>,
    /// `copy` only (from the context): a source that is a tar archive (plain, gzip or zstd)
    /// is unpacked into `dest` instead of copied, as a Containerfile's `ADD` does; other
    /// sources are copied. Entries keep their owners unless `chown` says otherwise.
    pub extract: Option<Sp<bool>>,
    /// Set environment variables for the later steps and the image.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub env: Option<Sp<Vec<RawEnv>>>,
    /// Set the absolute working directory of the later steps and the image.
    pub workdir: Option<Sp<String>>,
    /// Set the user (`uid[:gid]` or `name[:group]`) of the later steps and the image.
    pub user: Option<Sp<String>>,
    /// Add labels to the image.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub label: Option<Sp<Vec<RawEnv>>>,
}

/// One `cache` entry of a `run` step.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "BuildCacheMount")]
pub enum RawCache {
    /// The absolute path in the box; the cache is named after it.
    Target(String),
    /// A cache with its options.
    Table(RawCacheTable),
}

/// A `cache` entry written as a table.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "BuildCacheMountTable")]
pub struct RawCacheTable {
    /// The absolute path in the box the cache is mounted on. Required.
    #[schemars(required)]
    pub target: Option<Sp<String>>,
    /// The cache's name: steps and builds giving the same id share its contents. Default:
    /// the target path.
    pub id: Option<Sp<String>>,
    /// `"shared"` (default: steps running at once use it together), `"locked"` (one step at
    /// a time, the others wait) or `"private"` (a step that finds it in use gets an empty
    /// one of its own, dropped after the step).
    pub sharing: Option<Sp<String>>,
    /// The owner (a uid in the box) the cache directory is made with. Default 0.
    pub uid: Option<Sp<i64>>,
    /// The group (a gid in the box) the cache directory is made with. Default 0.
    pub gid: Option<Sp<i64>>,
    /// The mode the cache directory is made with, octal (`"0755"`, the default).
    pub mode: Option<Sp<String>>,
}

/// One `[[test]]` entry.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Test")]
pub struct RawTest {
    /// What the test shows, e.g. `"serves the page"`. Required.
    #[schemars(required)]
    pub name: Option<Sp<String>>,
    /// The command to run in a fresh box from the spec's plan: an argv array, or a string run
    /// through `/bin/sh -c`. Required.
    #[schemars(required)]
    pub command: Option<Sp<RawCommand>>,
    /// What the command must do.
    pub expect: Option<Sp<RawExpect>>,
    /// How long the test may run (humantime: `"10s"`); the box is killed after it. Default `"60s"`.
    pub timeout: Option<Sp<String>>,
}

/// A test's `expect` table.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "Expect")]
pub struct RawExpect {
    /// The exit code. Default 0.
    pub exit: Option<Sp<i64>>,
    /// What standard output must contain or match.
    pub stdout: Option<Sp<RawOutputMatch>>,
    /// What standard error must contain or match.
    pub stderr: Option<Sp<RawOutputMatch>>,
    /// Files in the box after the command: each must exist (and contain a text, when given).
    /// Needs `/bin/sh` and `grep` in the image.
    pub files: Option<Sp<Vec<Sp<RawFileExpect>>>>,
}

/// `expect.stdout` / `expect.stderr`.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "OutputMatch")]
pub struct RawOutputMatch {
    /// A text the output must contain.
    pub contains: Option<Sp<String>>,
    /// A regular expression (Rust `regex` syntax) the output must match somewhere; `^` and `$`
    /// match at the start and end of each line.
    pub matches: Option<Sp<String>>,
}

/// One `expect.files` entry.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, rename = "FileExpect")]
pub struct RawFileExpect {
    /// Absolute path inside the box. Required.
    #[schemars(required)]
    pub path: Option<Sp<String>>,
    /// A text the file must contain.
    pub contains: Option<Sp<String>>,
}
