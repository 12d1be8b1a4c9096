//! The rule table: ids are stable (tools and `[lint] allow` lists match on them), never reused.

use serde::Serialize;

/// How much a finding matters; `foxbox lint` exits 1 when any finding is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One lint rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// `FB` and three digits.
    pub id: &'static str,
    /// A short kebab-case name.
    pub name: &'static str,
    pub severity: Severity,
    /// Why the rule exists, in one line.
    pub rationale: &'static str,
    /// What to do about a finding.
    pub help: &'static str,
}

pub const IMAGE_NOT_PINNED: &Rule = &RULES[0];
pub const HOST_NETWORK: &Rule = &RULES[1];
pub const SECCOMP_UNCONFINED: &Rule = &RULES[2];
pub const DANGEROUS_CAPABILITY: &Rule = &RULES[3];
pub const NEW_PRIVILEGES: &Rule = &RULES[4];
pub const SENSITIVE_BIND: &Rule = &RULES[5];
pub const WRITABLE_REPO_BIND: &Rule = &RULES[6];
pub const NO_LIMIT: &Rule = &RULES[7];
pub const WRITABLE_ROOTFS: &Rule = &RULES[8];
pub const BEST_EFFORT: &Rule = &RULES[9];
pub const PORT_ALL_INTERFACES: &Rule = &RULES[10];
pub const SECRET_ENV: &Rule = &RULES[11];
pub const ROOT_OVER_IMAGE_USER: &Rule = &RULES[12];

/// Every rule, in id order.
pub const RULES: &[Rule] = &[
    Rule {
        id: "FB001",
        name: "image-not-pinned",
        severity: Severity::Warning,
        rationale: "a tag can move: the box that CI checked is not the one that runs later",
        help: "pin the image by digest: `image = \"name:tag@sha256:<hex>\"`, or lock it with `foxbox lock`",
    },
    Rule {
        id: "FB002",
        name: "host-network",
        severity: Severity::Error,
        rationale: "the host's network namespace exposes every host socket and interface to the box",
        help: "use `mode = \"pasta\"` (or `slirp4netns`) with `ports`, or `none`",
    },
    Rule {
        id: "FB003",
        name: "seccomp-unconfined",
        severity: Severity::Error,
        rationale: "without a seccomp filter every system call reaches the host kernel",
        help: "remove `profile = \"unconfined\"`, or give a profile that allows what the box needs",
    },
    Rule {
        id: "FB004",
        name: "dangerous-capability",
        severity: Severity::Error,
        rationale: "this capability lets a process in the box escape it or act on the host",
        help: "add only the capabilities the workload needs; these are rarely among them",
    },
    Rule {
        id: "FB005",
        name: "new-privileges",
        severity: Severity::Warning,
        rationale: "without no_new_privileges setuid binaries and file capabilities raise privileges",
        help: "remove `no_new_privileges = false` (the default is true)",
    },
    Rule {
        id: "FB006",
        name: "sensitive-bind",
        severity: Severity::Error,
        rationale: "binding the host's root, /etc, /run, /proc, /sys, a home or a runtime socket hands the host to the box",
        help: "bind only the directory the box needs, read-only when it can be",
    },
    Rule {
        id: "FB007",
        name: "writable-repo-bind",
        severity: Severity::Warning,
        rationale: "a box that can write the repository can change the code and the spec that confine it",
        help: "bind the repository with `readonly = true`, or only the directory the box writes",
    },
    Rule {
        id: "FB008",
        name: "no-limit",
        severity: Severity::Warning,
        rationale: "without memory and pids limits one box can exhaust the host (a leak, a fork bomb)",
        help: "set `memory` and `pids` in [limits]",
    },
    Rule {
        id: "FB009",
        name: "writable-rootfs",
        severity: Severity::Note,
        rationale: "a writable root with no tmpfs /tmp lets the box change its image's files and keeps scratch data on disk",
        help: "set `[rootfs] readonly = true` and mount a tmpfs on /tmp",
    },
    Rule {
        id: "FB010",
        name: "best-effort-limits",
        severity: Severity::Warning,
        rationale: "with `enforce = \"best-effort\"` a declared limit is dropped where the host cannot enforce it",
        help: "remove `enforce = \"best-effort\"` so that a limit that cannot be enforced stops the box from starting",
    },
    Rule {
        id: "FB011",
        name: "port-all-interfaces",
        severity: Severity::Warning,
        rationale: "a port published on all interfaces is reachable from every network the host is on",
        help: "publish on loopback: `\"127.0.0.1:8080:80\"`",
    },
    Rule {
        id: "FB012",
        name: "secret-in-env",
        severity: Severity::Error,
        rationale: "a secret written in the spec is committed with it and shown by `foxbox plan` and `inspect`",
        help: "keep the secret out of the spec: bind a file from outside the repository read-only",
    },
    Rule {
        id: "FB013",
        name: "root-over-image-user",
        severity: Severity::Warning,
        rationale: "the image names a user to run as, and the spec runs its process as root instead",
        help: "remove `user`, or set it to the image's user; checked only for images in the store",
    },
];

/// The rule with this id.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_ordered_unique_and_well_formed() {
        for (i, r) in RULES.iter().enumerate() {
            assert_eq!(r.id, format!("FB{:03}", i + 1));
            assert!(crate::spec::parse::is_rule_id(r.id));
            assert!(!r.rationale.contains('\n') && !r.help.contains('\n'));
        }
        assert_eq!(SECRET_ENV.name, "secret-in-env");
    }
}
