//! Stable diagnostic codes. Tools match on these; never rename one, only add.

/// The file is not valid TOML.
pub const SYNTAX: &str = "foxbox::spec::syntax";
/// The spec file cannot be read.
pub const READ: &str = "foxbox::spec::read";
/// A key that no section knows.
pub const UNKNOWN_KEY: &str = "foxbox::spec::unknown_key";
/// A `[section]` foxbox does not know.
pub const UNKNOWN_SECTION: &str = "foxbox::spec::unknown_section";
/// A value of the wrong TOML type (a string where a number belongs, ...).
pub const WRONG_TYPE: &str = "foxbox::spec::wrong_type";
/// A required key is missing (other than `box.image`).
pub const MISSING_KEY: &str = "foxbox::spec::missing_key";
/// The spec has no `box.image`.
pub const MISSING_IMAGE: &str = "foxbox::spec::missing_image";
/// A value outside a fixed set of words (`network.mode`, `limits.enforce`, mount `type`).
pub const BAD_VALUE: &str = "foxbox::spec::bad_value";
/// A malformed size (`limits.memory`, mount `size`).
pub const BAD_SIZE: &str = "foxbox::spec::bad_size";
/// A malformed duration (`limits.timeout`).
pub const BAD_DURATION: &str = "foxbox::spec::bad_duration";
/// A limit no process can run under (`cpus = 0`, `pids = 0`, memory below 6 MiB, ...).
pub const IMPOSSIBLE_LIMIT: &str = "foxbox::spec::impossible_limit";
/// A malformed port forward.
pub const BAD_PORT: &str = "foxbox::spec::bad_port";
/// Two port forwards for the same host address, port and protocol.
pub const DUPLICATE_PORT: &str = "foxbox::spec::duplicate_port";
/// Port forwards with a network mode that cannot forward (`none`, `host`).
pub const PORTS_NEED_NETWORK: &str = "foxbox::spec::ports_need_network";
/// A malformed path (relative where absolute is needed, `..`, NUL bytes, ...).
pub const BAD_PATH: &str = "foxbox::spec::bad_path";
/// A mount key that does not fit the mount's type, or a missing one it needs.
pub const BAD_MOUNT: &str = "foxbox::spec::bad_mount";
/// Two mounts on the same target.
pub const DUPLICATE_MOUNT: &str = "foxbox::spec::duplicate_mount";
/// A malformed file mode.
pub const BAD_MODE: &str = "foxbox::spec::bad_mode";
/// A malformed image reference.
pub const BAD_IMAGE: &str = "foxbox::spec::bad_image";
/// A malformed `box.user`.
pub const BAD_USER: &str = "foxbox::spec::bad_user";
/// A malformed box or volume name.
pub const BAD_NAME: &str = "foxbox::spec::bad_name";
/// A malformed hostname.
pub const BAD_HOSTNAME: &str = "foxbox::spec::bad_hostname";
/// A malformed environment variable.
pub const BAD_ENV: &str = "foxbox::spec::bad_env";
/// A malformed command.
pub const BAD_COMMAND: &str = "foxbox::spec::bad_command";
/// A capability name foxbox does not know.
pub const UNKNOWN_CAPABILITY: &str = "foxbox::spec::unknown_capability";
/// A capability both added and dropped by name.
pub const CAPABILITY_CONFLICT: &str = "foxbox::spec::capability_conflict";
/// Warning: adding a capability the set already has, or dropping one it does not have.
pub const REDUNDANT_CAPABILITY: &str = "foxbox::spec::redundant_capability";
/// A seccomp profile that cannot be read or is invalid (unknown syscalls, bad actions, ...).
pub const SECCOMP_PROFILE: &str = "foxbox::spec::seccomp_profile";
/// Warning: a setting that has no effect where it is.
pub const NO_EFFECT: &str = "foxbox::spec::no_effect";
/// Warning: a writable bind mount of a sensitive host path.
pub const SENSITIVE_BIND: &str = "foxbox::spec::sensitive_bind";
/// A malformed `run` flag (only from the command line).
pub const BAD_FLAG: &str = "foxbox::run::bad_flag";
/// Warning: `run` chose a setting the flags imply (`-p` without `--network`: pasta).
pub const IMPLIED_FLAG: &str = "foxbox::run::implied_flag";
