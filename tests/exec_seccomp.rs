//! seccomp in a real box, as root and as the unprivileged user: the built-in default filter is
//! installed and refuses what it should with EPERM while busybox works; `unconfined` installs
//! none.

mod common;

use common::envs;

use std::ffi::OsString;

use common::{busybox_tarball, Env, Run};

fn sh(env: &Env, flags: &[&str], script: &str) -> Run {
    let mut v: Vec<OsString> = vec!["--log-level".into(), "error".into(), "run".into()];
    v.extend(flags.iter().map(OsString::from));
    v.push(busybox_tarball().into_os_string());
    v.extend(["/bin/sh", "-c", script].map(OsString::from));
    env.run(v)
}

#[test]
fn the_default_filter_is_installed_and_refuses_with_eperm() {
    for env in envs() {
        let r = sh(
            &env,
            &[],
            "grep -E '^(Seccomp|Seccomp_filters):' /proc/self/status; \
             unshare -U true; echo unshare=$?; \
             echo hi | sed s/hi/ok/; ls / >/dev/null && echo ls-ok",
        );
        r.ok();
        assert!(
            r.stdout.contains("Seccomp:\t2"),
            "{:?}: {}",
            env.who,
            r.stdout
        );
        assert!(
            r.stdout.contains("unshare=1"),
            "{:?}: {}",
            env.who,
            r.stdout
        );
        assert!(
            r.stderr.contains("Operation not permitted"),
            "{:?}: unshare must fail with EPERM: {}",
            env.who,
            r.stderr
        );
        assert!(
            r.stdout.contains("ok\nls-ok"),
            "{:?}: {}",
            env.who,
            r.stdout
        );
    }
}

/// CAP_SYS_CHROOT is in the default set, and podman's filter allows `chroot` with it: so does
/// the built-in one. Without the capability it is refused.
#[test]
fn chroot_works_in_a_default_box() {
    for env in envs() {
        let r = sh(
            &env,
            &[],
            "mkdir -p /tmp/jail/bin && cp /bin/busybox /tmp/jail/bin/ && \
             chroot /tmp/jail /bin/busybox echo inside",
        );
        r.ok();
        assert_eq!(r.stdout, "inside\n", "{:?}: {}", env.who, r.stderr);
        let r = sh(&env, &["--cap-drop", "SYS_CHROOT"], "chroot / /bin/true");
        assert!(
            r.code == 1 && r.stderr.contains("Operation not permitted"),
            "{:?}: chroot without CAP_SYS_CHROOT: {r:?}",
            env.who
        );
    }
}

#[test]
fn unconfined_installs_no_filter() {
    for env in envs() {
        let r = sh(
            &env,
            &["--security-opt", "seccomp=unconfined"],
            "grep '^Seccomp:' /proc/self/status",
        );
        r.ok();
        assert!(
            r.stdout.contains("Seccomp:\t0"),
            "{:?}: {}",
            env.who,
            r.stdout
        );
    }
}
