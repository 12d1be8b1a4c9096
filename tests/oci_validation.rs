//! The OCI runtime conformance suite (opencontainers/runtime-tools) against `foxbox-runc`, as
//! root: `tests/oci-validation/run.sh` builds it once (from ../shared/testinfra, into the test
//! scratch dir) and prints its table. Ignored by default (it takes minutes and needs the
//! shared infra): `cargo test --test oci_validation -- --ignored --nocapture`.
//!
//! Every program that passed when this was written must still pass (`MUST_PASS`); the others
//! fail for reasons listed in the README's "OCI runtime mode" section.

mod common;

use std::path::Path;
use std::process::Command;

/// The programs foxbox passes (42 of 58 here, with `poststart` and `pidfile` left out: each
/// races its own command, for runc too); a regression in any of them fails the test.
const MUST_PASS: &[&str] = &[
    "config_updates_without_affect/config_updates_without_affect",
    "linux_devices/linux_devices",
    "linux_ns_itype/linux_ns_itype",
    "linux_ns_nopath/linux_ns_nopath",
    "linux_ns_path/linux_ns_path",
    "linux_rootfs_propagation/linux_rootfs_propagation",
    "linux_sysctl/linux_sysctl",
    "linux_uid_mappings/linux_uid_mappings",
    "create/create",
    "default/default",
    "delete/delete",
    "delete_only_create_resources/delete_only_create_resources",
    "hooks_stdin/hooks_stdin",
    "hostname/hostname",
    "kill/kill",
    "kill_no_effect/kill_no_effect",
    "killsig/killsig",
    "linux_cgroups_cpus/linux_cgroups_cpus",
    "linux_cgroups_devices/linux_cgroups_devices",
    "linux_cgroups_relative_cpus/linux_cgroups_relative_cpus",
    "linux_cgroups_relative_devices/linux_cgroups_relative_devices",
    "linux_masked_paths/linux_masked_paths",
    "linux_mount_label/linux_mount_label",
    "linux_ns_path_type/linux_ns_path_type",
    "linux_process_apparmor_profile/linux_process_apparmor_profile",
    "linux_readonly_paths/linux_readonly_paths",
    "linux_seccomp/linux_seccomp",
    "misc_props/misc_props",
    "mounts/mounts",
    "process/process",
    "process_capabilities/process_capabilities",
    "process_oom_score_adj/process_oom_score_adj",
    "process_user/process_user",
    "process_capabilities_fail/process_capabilities_fail",
    "process_rlimits_fail/process_rlimits_fail",
    "poststart_fail/poststart_fail",
    "poststop/poststop",
    "poststop_fail/poststop_fail",
    "prestart/prestart",
    "prestart_fail/prestart_fail",
    "root_readonly_true/root_readonly_true",
    "state/state",
];

#[test]
#[ignore = "minutes long; needs ../shared/testinfra/oci-validation and root"]
fn conformance_suite() {
    if !common::root_or_skip("the conformance suite runs as root") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oci-validation/run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(common::foxbox_bin())
        .output()
        .expect("run.sh");
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}");
    if out.status.code() == Some(2) {
        eprintln!("SKIP: {}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in MUST_PASS {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(p))
            .unwrap_or_else(|| panic!("{p} did not run"));
        assert!(line.ends_with("pass"), "{p} regressed: {line}");
    }
}
