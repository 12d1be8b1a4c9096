//! `features` (the runtime-spec features document: what this runtime honours) and `spec`
//! (a starting config.json).

use oci_spec::runtime::Spec;
use serde_json::json;

use super::OCI_VERSION;
use crate::plan::caps::CapSet;

/// The features JSON: only what [`super::translate`] honours or refuses with a message.
pub fn features() -> serde_json::Value {
    let caps: Vec<String> = CapSet::all()
        .names()
        .into_iter()
        .map(|n| format!("CAP_{n}"))
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "bind", "rbind", "private", "rprivate", "noexec",
                         "size", "mode"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false,
                       "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                            "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                              "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false}
        },
        "annotations": {
            "org.foxbox.runtime": "foxbox-runc",
            "org.foxbox.version": env!("CARGO_PKG_VERSION")
        }
    })
}

/// A starting config.json (runc's `spec`): `rootless` adds a user namespace mapping the
/// caller's uid and gid to 0.
pub fn default_spec(rootless: bool) -> Spec {
    if rootless {
        Spec::rootless(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        Spec::default()
    }
}
