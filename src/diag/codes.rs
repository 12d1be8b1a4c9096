//! Every diagnostic code foxbox reports, in one registry: tools match on these, so never
//! rename one, only add. `foxbox codes` lists them, and so does the README; a unit test
//! checks that every `"foxbox::..."` in the source is here.
//!
//! Each group is a module (`codes::spec::SYNTAX`); [`ALL`] lists every code with what it
//! means.

use serde::Serialize;

/// A code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Code {
    pub code: &'static str,
    pub about: &'static str,
}

macro_rules! registry {
    ($( $(#[doc = $gdoc:literal])* $group:ident { $( $(#[doc = $doc:literal])+ $name:ident = $code:literal, )* } )*) => {
        $(
            $(#[doc = $gdoc])*
            pub mod $group {
                $( $(#[doc = $doc])+ pub const $name: &str = $code; )*
            }
        )*
        /// Every code, in the order of the registry, with what it means.
        pub const ALL: &[Code] = &[ $( $( Code { code: $code, about: concat!($($doc),+) }, )* )* ];
    };
}

registry! {
    /// Problems of a spec or of `run` flags: `foxbox check` reports them all at once.
    spec {
        /// The file is not valid TOML.
        SYNTAX = "foxbox::spec::syntax",
        /// The spec file cannot be read.
        READ = "foxbox::spec::read",
        /// A key that no section knows.
        UNKNOWN_KEY = "foxbox::spec::unknown_key",
        /// A `[section]` foxbox does not know.
        UNKNOWN_SECTION = "foxbox::spec::unknown_section",
        /// A value of the wrong TOML type (a string where a number belongs, ...).
        WRONG_TYPE = "foxbox::spec::wrong_type",
        /// A required key is missing (other than `box.image`).
        MISSING_KEY = "foxbox::spec::missing_key",
        /// The spec has no `box.image`.
        MISSING_IMAGE = "foxbox::spec::missing_image",
        /// A value outside a fixed set of words (`network.mode`, `limits.enforce`, mount `type`).
        BAD_VALUE = "foxbox::spec::bad_value",
        /// A malformed size (`limits.memory`, mount `size`).
        BAD_SIZE = "foxbox::spec::bad_size",
        /// A malformed duration (`limits.timeout`).
        BAD_DURATION = "foxbox::spec::bad_duration",
        /// A limit no process can run under (`cpus = 0`, `pids = 0`, memory below 6 MiB, ...).
        IMPOSSIBLE_LIMIT = "foxbox::spec::impossible_limit",
        /// A malformed port forward.
        BAD_PORT = "foxbox::spec::bad_port",
        /// Two port forwards for the same host address, port and protocol.
        DUPLICATE_PORT = "foxbox::spec::duplicate_port",
        /// Port forwards with a network mode that cannot forward (`none`, `host`).
        PORTS_NEED_NETWORK = "foxbox::spec::ports_need_network",
        /// A malformed path (relative where absolute is needed, `..`, NUL bytes, ...).
        BAD_PATH = "foxbox::spec::bad_path",
        /// A mount key that does not fit the mount's type, or a missing one it needs.
        BAD_MOUNT = "foxbox::spec::bad_mount",
        /// Two mounts on the same target.
        DUPLICATE_MOUNT = "foxbox::spec::duplicate_mount",
        /// A malformed file mode.
        BAD_MODE = "foxbox::spec::bad_mode",
        /// A malformed image reference.
        BAD_IMAGE = "foxbox::spec::bad_image",
        /// A malformed `box.user`.
        BAD_USER = "foxbox::spec::bad_user",
        /// A malformed box or volume name.
        BAD_NAME = "foxbox::spec::bad_name",
        /// A malformed hostname.
        BAD_HOSTNAME = "foxbox::spec::bad_hostname",
        /// A malformed environment variable.
        BAD_ENV = "foxbox::spec::bad_env",
        /// A malformed command.
        BAD_COMMAND = "foxbox::spec::bad_command",
        /// A capability name foxbox does not know.
        UNKNOWN_CAPABILITY = "foxbox::spec::unknown_capability",
        /// A capability both added and dropped by name.
        CAPABILITY_CONFLICT = "foxbox::spec::capability_conflict",
        /// Warning: adding a capability the set already has, or dropping one it does not have.
        REDUNDANT_CAPABILITY = "foxbox::spec::redundant_capability",
        /// A seccomp profile that cannot be read or is invalid (unknown syscalls, bad actions, ...).
        SECCOMP_PROFILE = "foxbox::spec::seccomp_profile",
        /// Warning: a setting that has no effect where it is.
        NO_EFFECT = "foxbox::spec::no_effect",
        /// Warning: a writable bind mount of a sensitive host path.
        SENSITIVE_BIND = "foxbox::spec::sensitive_bind",
        /// A malformed `run` flag (only from the command line).
        BAD_FLAG = "foxbox::run::bad_flag",
        /// Warning: `run` chose a setting the flags imply (`-p` without `--network`: pasta).
        IMPLIED_FLAG = "foxbox::run::implied_flag",
        /// The spec could not be resolved for a reason no other check reported (a bug in foxbox).
        INTERNAL = "foxbox::spec::internal",
        /// Neither the spec, the flags nor the image name a command to run.
        NO_COMMAND = "foxbox::spec::no_command",
        /// A `[build]` table without `from`.
        BUILD_MISSING_FROM = "foxbox::build::missing_from",
        /// A `[[build.steps]]` table with no action, several, or keys of another action.
        BUILD_BAD_STEP = "foxbox::build::bad_step",
        /// A recipe file with no `[build]` table.
        BUILD_NO_RECIPE = "foxbox::build::no_recipe",
        /// A `copy` source outside the context (`..`, an absolute path, a symlink leading out).
        BUILD_COPY_OUTSIDE = "foxbox::build::copy_outside",
        /// A `copy` source that names nothing in the context (or only ignored files).
        BUILD_COPY_SOURCE = "foxbox::build::copy_source",
        /// The `from` image is not in the store and cannot be pulled or imported.
        BUILD_FROM = "foxbox::build::from",
        /// A `run` step that exited non-zero (or could not start).
        BUILD_STEP_FAILED = "foxbox::build::step_failed",
        /// Warning: `--build-arg` names an argument the recipe does not declare.
        BUILD_UNKNOWN_ARG = "foxbox::build::unknown_arg",
        /// A malformed `--build-arg` (not `KEY=VALUE`).
        BUILD_BAD_ARG = "foxbox::build::bad_arg",
        /// The builder failed on its own (the store, the context, a layer).
        BUILD_INTERNAL = "foxbox::build::failed",
    }

    /// What this host cannot honour of a plan (`foxbox check --host`, and before a box starts).
    host {
        /// User namespaces are not allowed for this user.
        USERNS = "foxbox::host::userns",
        /// No subordinate id range, or no newuidmap/newgidmap.
        SUBIDS = "foxbox::host::subids",
        /// A cgroup controller a limit needs is missing or not writable.
        CGROUP = "foxbox::host::cgroup",
        /// pasta or slirp4netns is not installed.
        NET_HELPER = "foxbox::host::net_helper",
        /// Warning: a network helper is not installed (the host's network summary).
        NET_HELPER_MISSING = "foxbox::host::net_helper_missing",
        /// /dev/net/tun is missing or not usable by this user.
        TUN = "foxbox::host::tun",
        /// Warning: /dev/net/tun does not exist (the host's network summary).
        TUN_MISSING = "foxbox::host::tun_missing",
        /// Warning: /dev/net/tun cannot be opened by this user (the host's network summary).
        TUN_DENIED = "foxbox::host::tun_denied",
        /// A host port below net.ipv4.ip_unprivileged_port_start.
        LOW_PORT = "foxbox::host::low_port",
        /// overlayfs is missing or not usable without privileges.
        OVERLAY = "foxbox::host::overlay",
        /// A bind mount's source is missing or unreadable.
        BIND_SOURCE = "foxbox::host::bind_source",
        /// The image tarball is missing or unreadable, or the image is not in the store.
        IMAGE = "foxbox::host::image",
        /// Warning: `limits.cpus` above the host's CPU count.
        CPUS = "foxbox::host::cpus",
        /// Warning: `network.mode = "host"` gives the box the host's network.
        HOST_NETWORK = "foxbox::host::host_network",
    }

    /// A box's limits on this host.
    limits {
        /// A declared limit this host cannot enforce, under `enforce = "strict"`: the box does not start.
        NOT_ENFORCEABLE = "foxbox::limits::not_enforceable",
        /// Warning: a declared limit this host cannot enforce, under `enforce = "best-effort"`.
        NOT_ENFORCED = "foxbox::limits::not_enforced",
        /// This host's cgroup layout cannot be read (`check --host`).
        NO_CGROUPS = "foxbox::limits::no_cgroups",
        /// This host's cgroup layout cannot be read when a box starts.
        DETECT = "foxbox::limits::detect",
        /// The box's cgroup cannot be made, recorded or joined.
        CGROUP = "foxbox::limits::cgroup",
    }

    /// The executor: a step of a box's (or an exec'd process's) start that failed.
    exec {
        /// The step `<step>` (as `foxbox plan` lists it, `-` written `_`) failed, e.g.
        /// `foxbox::exec::pivot_root`; `foxbox::exec::exec` is the command itself (exit 126 or 127).
        STEP = "foxbox::exec::<step>",
        /// The box's set-up process ended without reporting.
        VANISHED = "foxbox::exec::vanished",
        /// Following a started box failed (signals, the terminal relay, waiting for it).
        RELAY = "foxbox::exec::relay",
    }

    /// A detached box's supervisor.
    supervisor {
        /// The supervisor failed at a step of its own (its log, its terminal, its record).
        FAILED = "foxbox::supervisor",
        /// No pipe to hear from the supervisor.
        PIPE = "foxbox::supervisor::pipe",
        /// The supervisor could not be forked.
        FORK = "foxbox::supervisor::fork",
        /// The supervisor ended before the box started.
        DIED = "foxbox::supervisor::died",
    }

    /// Images and the image store.
    image {
        /// The image is not stored and cannot be pulled or imported.
        RESOLVE = "foxbox::image::resolve",
        /// The image store cannot be opened or read, or refuses what was asked (no such image, ...).
        STORE = "foxbox::image::store",
        /// A malformed image name.
        NAME = "foxbox::image::name",
        /// An image cannot be saved as an OCI layout.
        SAVE = "foxbox::image::save",
        /// An OCI layout cannot be loaded.
        LOAD = "foxbox::image::load",
        /// The image cannot be marked as used by the box.
        USERS = "foxbox::image::users",
        /// The box's root filesystem cannot be made from the image.
        ROOTFS = "foxbox::image::rootfs",
    }

    /// A box and its record.
    boxes {
        /// The box store cannot be opened.
        STORE = "foxbox::box::store",
        /// The box cannot be recorded (its name is taken, its record cannot be written, ...).
        CREATE = "foxbox::box::create",
        /// The directory boxes mount their root on cannot be made.
        MOUNTPOINT = "foxbox::box::mountpoint",
        /// No box of that name or id (or more than one), or its record cannot be read or lacks
        /// what the command needs.
        LOOKUP = "foxbox::box::lookup",
        /// The box is not running.
        NOT_RUNNING = "foxbox::box::not_running",
        /// Stopping, signalling, removing or waiting for a box failed.
        CONTROL = "foxbox::box::control",
        /// A box's log cannot be read.
        LOG = "foxbox::box::log",
        /// A box's resource usage cannot be read.
        STATS = "foxbox::box::stats",
    }

    /// Registries: settings, references, pulls and logins.
    registry {
        /// The registry settings (environment, certificates) cannot be used.
        SETTINGS = "foxbox::registry::settings",
        /// A malformed registry reference.
        REFERENCE = "foxbox::registry::reference",
        /// A pull failed.
        PULL = "foxbox::registry::pull",
        /// A login failed, or its credentials cannot be stored.
        LOGIN = "foxbox::registry::login",
    }

    /// The command line itself.
    cli {
        /// A command-line value foxbox cannot use (`--env`, `--user`, `--time`, `--since`, a
        /// signal, a registry, a password).
        USAGE = "foxbox::cli::usage",
        /// The output cannot be written (JSON, the man page).
        OUTPUT = "foxbox::cli::output",
        /// Where foxbox keeps its files cannot be found.
        PATHS = "foxbox::cli::paths",
    }

    /// A box's network.
    net {
        /// A host port the box forwards is taken.
        PORT = "foxbox::net::port",
    }

    /// Named volumes.
    volume {
        /// A volume the box mounts cannot be made or used.
        VOLUME = "foxbox::volume",
    }

    /// `foxbox export`: a plan as a Kubernetes Pod or an OCI bundle.
    export {
        /// Warning: a plan item the export format has no equivalent for (named at its spec line).
        NO_EQUIVALENT = "foxbox::export::no_equivalent",
        /// Warning: a bind mount exported as a Pod `hostPath` (it names a path on whichever node runs the Pod).
        HOST_PATH = "foxbox::export::host_path",
        /// The image cannot be exported (a rootfs tarball without `--image`, an image not in the store).
        IMAGE = "foxbox::export::image",
        /// The output cannot be written (an unwritable file, an existing non-empty bundle directory, a rootfs copy).
        OUTPUT = "foxbox::export::output",
    }

    /// podman habits: user-namespace modes and volume options.
    habits {
        /// A malformed or unsupported `--userns` / `security.userns`.
        BAD_USERNS = "foxbox::habits::bad_userns",
        /// A `keep-id` box's root (a copy of the image with its ids moved to the box's map)
        /// cannot be made.
        KEEP_ID_ROOTFS = "foxbox::habits::keep_id_rootfs",
    }

    /// `foxbox build`'s stages, merges and Containerfiles (the recipe's own codes are the
    /// spec's `foxbox::build::*`).
    build {
        /// Stages that cannot be built: a name used twice, a `from`/`copy from` naming a
        /// stage that does not exist or one that leads back to itself, an unknown `--target`.
        STAGE = "foxbox::build::stage",
        /// An image named in `merge` that is not built on the stage's `from`.
        MERGE_BASE = "foxbox::build::merge_base",
        /// Two images of `merge` change the same paths differently (`merge_conflicts = "last-wins"` settles it).
        MERGE_CONFLICT = "foxbox::build::merge_conflict",
        /// A Containerfile line foxbox does not support or cannot read.
        CONTAINERFILE = "foxbox::build::containerfile",
        /// A `copy` with `from` whose source path is not in that image.
        COPY_FROM = "foxbox::build::copy_from",
        /// `foxbox push` failed (the image, the registry, its authentication or an upload).
        PUSH = "foxbox::build::push",
        /// A `copy` with `chown` naming a user or group the image's /etc/passwd or /etc/group lacks.
        CHOWN = "foxbox::build::chown",
        /// An `extract` (`ADD`) source compressed in a way foxbox cannot unpack (bzip2, xz).
        ARCHIVE = "foxbox::build::archive",
        /// Warning: two images of `merge` set an environment variable to different values (the later one's is kept).
        MERGE_ENV = "foxbox::build::merge_env",
    }

    /// Composing a spec from files: variables, `extends`, local overrides, `Foxbox.lock`.
    compose {
        /// A variable without a value and without a default (`${NAME}`), or a `${NAME:?message}`
        /// whose variable is unset or empty.
        UNSET_VARIABLE = "foxbox::compose::unset_variable",
        /// A `${...}` that is not the syntax (`${NAME}`, `${NAME:-default}`, `${NAME:?message}`;
        /// `$$` for a `$`).
        BAD_VARIABLE = "foxbox::compose::bad_variable",
        /// The env file (`.env` or `env_file`) cannot be read or has a line that is not `KEY=VALUE`.
        ENV_FILE = "foxbox::compose::env_file",
        /// An `extends` that cannot be followed: a missing or unreadable base, a cycle, bases
        /// more than 8 deep, a value that is not a path.
        EXTENDS = "foxbox::compose::extends",
        /// A base widens the box's isolation (capabilities, `seccomp = "unconfined"`,
        /// `network = "host"`, a bind outside the repository, no_new_privileges off): a warning
        /// on the extending spec; an error under `check --strict`.
        UNTRUSTED_BASE = "foxbox::compose::untrusted_base",
        /// A base lies outside the repository holding the spec (warning; an error under
        /// `check --strict`).
        BASE_OUTSIDE_REPO = "foxbox::compose::base_outside_repo",
        /// A `[[mounts]]` entry with `remove = true` whose target no base mounts.
        NOTHING_TO_REMOVE = "foxbox::compose::nothing_to_remove",
        /// A local override (`Foxbox.local.toml` beside the spec) is merged into the spec.
        LOCAL_OVERRIDE = "foxbox::compose::local_override",
        /// The spec's lock (`Foxbox.lock`) is stale: an image reference not in it, a tarball
        /// whose digest changed, an entry no reference uses (`foxbox lock` updates it).
        LOCK_STALE = "foxbox::compose::lock_stale",
        /// The lock file cannot be read, is not a lock, or an image cannot be locked.
        LOCK = "foxbox::compose::lock",
    }

    /// foxbox as an OCI runtime (`foxbox oci`, `foxbox-runc`).
    oci_runtime {
        /// A bundle's config.json is malformed or asks for what foxbox cannot honour (the
        /// message names the JSON path).
        CONFIG = "foxbox::oci_runtime::config",
        /// A command-line value the runtime cannot use (an id, a signal, a missing flag).
        USAGE = "foxbox::oci_runtime::usage",
        /// A container with that id exists already under the runtime root.
        EXISTS = "foxbox::oci_runtime::exists",
        /// No container with that id under the runtime root.
        NOT_FOUND = "foxbox::oci_runtime::not_found",
        /// The container's status does not allow the command (start a running one, delete a
        /// running one without --force, signal a stopped one).
        STATE = "foxbox::oci_runtime::state",
        /// The container's process could not be set up (an executor step failed).
        EXEC = "foxbox::oci_runtime::exec",
        /// A file of the runtime's state, the bundle, a namespace or a socket cannot be used.
        IO = "foxbox::oci_runtime::io",
        /// A config.json hook failed or timed out.
        HOOK = "foxbox::oci_runtime::hook",
        /// The container's cgroup (at linux.cgroupsPath) cannot be made, frozen, updated or
        /// removed.
        CGROUP = "foxbox::oci_runtime::cgroup",
    }
}

/// The code of a failed executor step: `foxbox::exec::<step>`.
pub fn exec_step(step: &str) -> String {
    format!("foxbox::exec::{}", step.replace('-', "_"))
}

/// Whether `code` is in the registry (an executor step's code matches [`exec::STEP`]).
pub fn is_registered(code: &str) -> bool {
    ALL.iter().any(|c| c.code == code)
        || code.strip_prefix("foxbox::exec::").is_some_and(|s| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every `"foxbox::..."` string in the source (outside this file) is a registered code.
    #[test]
    fn every_code_in_the_source_is_registered() {
        fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("diag/codes.rs")
                {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for (i, _) in text.match_indices("\"foxbox::") {
                        let rest = &text[i + 1..];
                        let end = rest.find('"').unwrap_or(rest.len());
                        out.push((p.display().to_string(), rest[..end].to_string()));
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        // Codes made up by diag's own rendering tests.
        let test_only = ["foxbox::test"];
        let missing: Vec<_> = found
            .iter()
            .filter(|(_, c)| !test_only.contains(&c.as_str()) && !is_registered(c))
            .collect();
        assert!(missing.is_empty(), "not in src/diag/codes.rs: {missing:?}");
    }

    #[test]
    fn codes_are_unique_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for c in ALL {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!(c.code.starts_with("foxbox::"), "{}", c.code);
            assert!(!c.about.trim().is_empty(), "{} undocumented", c.code);
        }
        assert_eq!(exec_step("pivot-root"), "foxbox::exec::pivot_root");
        assert!(is_registered(&exec_step("id-maps")));
        assert!(!is_registered("foxbox::nope"));
    }

    /// The README lists every code.
    #[test]
    fn the_readme_lists_every_code() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
                .unwrap();
        let missing: Vec<_> = ALL
            .iter()
            .filter(|c| !readme.contains(&format!("`{}`", c.code)))
            .map(|c| c.code)
            .collect();
        assert!(missing.is_empty(), "README.md does not list {missing:?}");
    }
}
