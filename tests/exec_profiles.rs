//! seccomp profiles written elsewhere, in real boxes through the built binary, as root and as
//! the unprivileged user: podman's own profile (`/usr/share/containers/seccomp.json`, Debian's
//! golang-github-containers-common) from `--security-opt`, and a Docker-format profile
//! (tests/data/seccomp-docker-style.json: `includes`/`excludes` by capability, architecture and
//! kernel, `args` conditions, `errnoRet`) from a spec with `foxbox up`. busybox runs normally
//! under each, and the calls a profile denies fail with the profile's errno.
//!
//! busybox applets print strerror text and cannot make calls such as add_key or vmsplice, so
//! the exact numbers come from tests/data/sysprobe.c: a static helper, compiled here with the
//! system's C compiler and bind-mounted into the box, that makes raw calls and prints the errno.
//! Each profile check is paired with an unconfined run of the same probe: the kernel's own
//! answer differs, so a filter that is not installed cannot pass.

mod common;

use common::envs;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{busybox_tarball, Env, Run, Who};

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The probe binary's bytes, compiled once per test process.
fn sysprobe_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("sysprobe");
        let st = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(repo().join("tests/data/sysprobe.c"))
            .status()
            .expect("run cc (the tests need a C compiler and a static libc)");
        assert!(st.success(), "cc failed on tests/data/sysprobe.c");
        fs::read(&out).expect("read sysprobe")
    })
}

/// Put the probe in the env's work dir (readable and executable by its user).
fn install_probe(env: &Env) -> PathBuf {
    let p = env.write("sysprobe", sysprobe_bytes());
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod sysprobe");
    p
}

/// `foxbox run FLAGS... busybox /bin/sh -c SCRIPT` with the probe at /sysprobe.
fn run_sh(env: &Env, flags: &[&str], script: &str) -> Run {
    let probe = install_probe(env);
    let mut v: Vec<OsString> = vec!["--log-level".into(), "error".into(), "run".into()];
    v.push("--rm".into());
    v.push("-v".into());
    v.push(format!("{}:/sysprobe:ro", probe.display()).into());
    v.extend(flags.iter().map(OsString::from));
    v.push(busybox_tarball().into_os_string());
    v.extend(["/bin/sh", "-c", script].map(OsString::from));
    env.run(v)
}

/// The outcome the probe printed for the call `nr`, as `ok N` or `errno N` (the first line for
/// that call unless `nth` says otherwise).
fn probe_result(out: &str, nr: i64, nth: usize) -> String {
    out.lines()
        .filter_map(|l| l.strip_prefix(&format!("{nr} ")))
        .nth(nth)
        .unwrap_or_else(|| panic!("no probe line #{nth} for call {nr} in:\n{out}"))
        .to_string()
}

#[track_caller]
fn assert_errno(out: &str, nr: i64, nth: usize, errno: i32, what: &str) {
    assert_eq!(
        probe_result(out, nr, nth),
        format!("errno {errno}"),
        "{what}:\n{out}"
    );
}

#[track_caller]
fn assert_ok(out: &str, nr: i64, nth: usize, what: &str) {
    let r = probe_result(out, nr, nth);
    assert!(r.starts_with("ok "), "{what}: {r}\n{out}");
}

#[track_caller]
fn has(r: &Run, who: Who, s: &str) {
    assert!(
        r.stdout.contains(s) || r.stderr.contains(s),
        "{who:?}: expected {s:?}\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
}

// The raw calls the probe makes (x86_64 numbers, from libc).
const ADD_KEY: i64 = libc::SYS_add_key;
const VMSPLICE: i64 = libc::SYS_vmsplice;
const PERSONALITY: i64 = libc::SYS_personality;
const SYSINFO: i64 = libc::SYS_sysinfo;
const GETCPU: i64 = libc::SYS_getcpu;
const SCHED_YIELD: i64 = libc::SYS_sched_yield;
const GETPGRP: i64 = libc::SYS_getpgrp;
const UMASK: i64 = libc::SYS_umask;
const SOCKET: i64 = libc::SYS_socket;

/// add_key(NULL, ...) and vmsplice(-1, ...): refused by the kernel with EFAULT and EBADF; by
/// podman's profile with its default errno (ENOSYS: add_key is on no list) and with the EPERM
/// of its deny list. personality: only the listed personas are allowed.
fn podman_probe() -> String {
    format!(
        "/sysprobe {ADD_KEY},0,0,0,0,0 {VMSPLICE},-1,0,0,0 {PERSONALITY},0 {PERSONALITY},0x400000"
    )
}

#[test]
fn podmans_own_profile_runs_busybox_and_refuses_what_it_denies() {
    if !Path::new(PODMAN_PROFILE).exists() {
        eprintln!(
            "SKIP: {PODMAN_PROFILE} is missing (apt-get install golang-github-containers-common)"
        );
        return;
    }
    let profile = format!("seccomp={PODMAN_PROFILE}");
    for env in envs() {
        let who = env.who;
        let script = format!(
            "grep '^Seccomp:' /proc/self/status; \
             echo hi | sed s/hi/ok/; ls / >/dev/null && echo ls-ok; \
             unshare -U true; echo unshare=$?; \
             hostname foxed; echo hostname=$?; \
             date -s 2001-01-01 >/dev/null; echo date=$?; \
             {}",
            podman_probe()
        );
        let r = run_sh(&env, &["--security-opt", &profile], &script);
        r.ok();
        let out = &r.stdout;
        has(&r, who, "Seccomp:\t2");
        has(&r, who, "ok\nls-ok");
        // Allowed by podman's profile (foxbox's default refuses it): proof that this profile,
        // not the built-in one, is in force.
        has(&r, who, "unshare=0");
        // sethostname is allowed only with CAP_SYS_ADMIN, clock_settime with CAP_SYS_TIME;
        // without them podman's profile answers EPERM.
        has(&r, who, "hostname=1");
        has(&r, who, "sethostname: Operation not permitted");
        has(&r, who, "date: can't set date: Operation not permitted");
        assert_errno(
            out,
            ADD_KEY,
            0,
            libc::ENOSYS,
            "add_key: the default errnoRet (38)",
        );
        assert_errno(out, VMSPLICE, 0, libc::EPERM, "vmsplice: on the deny list");
        assert_ok(out, PERSONALITY, 0, "personality(PER_LINUX) is allowed");
        assert_errno(out, PERSONALITY, 1, libc::ENOSYS, "an unlisted persona");

        // `includes: {caps: [CAP_SYS_ADMIN]}`: with the capability, sethostname is allowed
        // (and the box's own uts namespace takes the name).
        let r = run_sh(
            &env,
            &["--security-opt", &profile, "--cap-add", "SYS_ADMIN"],
            "hostname foxed && hostname",
        );
        r.ok();
        assert_eq!(r.stdout.trim(), "foxed", "{who:?}");

        // Control: the kernel's own answers, unfiltered.
        let r = run_sh(
            &env,
            &["--security-opt", "seccomp=unconfined"],
            &podman_probe(),
        );
        r.ok();
        assert_errno(&r.stdout, ADD_KEY, 0, libc::EFAULT, "unconfined add_key");
        assert_errno(&r.stdout, VMSPLICE, 0, libc::EBADF, "unconfined vmsplice");
        assert_ok(&r.stdout, PERSONALITY, 1, "unconfined personality");
    }
}

/// The spec for `foxbox up`: busybox, the probe bound at /sysprobe, `extra` appended.
fn spec(script: &str, extra: &str) -> String {
    // A spec's strings are interpolated (`${VAR}`, `$$` for a `$`): the shell's `$$` is `$$$$`.
    let script = script.replace('$', "$$");
    format!(
        "[box]\nimage = {image:?}\ncommand = [\"/bin/sh\", \"-c\", {script:?}]\n\n\
         [[mounts]]\ntype = \"bind\"\nsource = \"./sysprobe\"\ntarget = \"/sysprobe\"\n\
         readonly = true\n\n{extra}",
        image = busybox_tarball().display().to_string(),
    )
}

/// Write `Foxbox.toml` (and the Docker-style profile as ./profile.json) and run `foxbox up`.
fn up(env: &Env, script: &str, extra: &str) -> Run {
    install_probe(env);
    let profile = fs::read(repo().join("tests/data/seccomp-docker-style.json")).expect("profile");
    env.write("profile.json", profile);
    env.write("Foxbox.toml", spec(script, extra));
    env.run(["--log-level", "error", "up", "--rm"])
}

/// What the Docker-style profile must do, in one busybox shell.
fn docker_script() -> String {
    format!(
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
         echo hi | sed s/hi/ok/; \
         mkdir /tmp/made; echo mkdir=$?; \
         trap 'echo got-usr1' USR1; kill -USR1 $$; echo kill-usr1=$?; \
         kill -USR2 $$; echo kill-usr2=$?; \
         nc ::1 1; echo nc6=$?; \
         chown 1 /etc/passwd; echo chown=$?; \
         /sysprobe {SYSINFO},0 {GETCPU},0,0,0 {SCHED_YIELD} {GETPGRP} {UMASK},0022 {UMASK},0077 \
           {PERSONALITY},0 {PERSONALITY},8 {SOCKET},10,1,0 {SOCKET},2,2,0 {SOCKET},16,2,0"
    )
}

/// The Docker-style profile's rules (see the `comment` of each in the JSON).
#[track_caller]
fn assert_docker_profile(r: &Run, who: Who) {
    let out = &r.stdout;
    has(r, who, "Seccomp:\t2");
    has(r, who, "ok\n");
    // errnoRet 13 on mkdir/mkdirat.
    has(r, who, "mkdir=1");
    has(
        r,
        who,
        "can't create directory '/tmp/made': Permission denied",
    );
    // kill: allowed unless the signal (argument 1) is SIGUSR2; then the default errno (EPERM).
    has(r, who, "got-usr1\nkill-usr1=0");
    has(r, who, "kill-usr2=1");
    has(r, who, "Operation not permitted");
    // socket: AF_INET6 gets errnoRet 97.
    has(r, who, "nc6=1");
    has(r, who, "Address family not supported by protocol");
    // includes by arch (amd64), minKernel 3.0: these deny rules apply.
    assert_errno(out, SYSINFO, 0, libc::EOPNOTSUPP, "sysinfo: arches amd64");
    assert_errno(
        out,
        SCHED_YIELD,
        0,
        libc::EOPNOTSUPP,
        "sched_yield: minKernel 3.0",
    );
    // ... and by arch s390x, minKernel 99.0: these do not.
    assert_ok(out, GETCPU, 0, "getcpu: the s390x-only rule does not apply");
    assert_ok(
        out,
        GETPGRP,
        0,
        "getpgrp: the minKernel 99.0 rule does not apply",
    );
    // args: SCMP_CMP_MASKED_EQ on umask, SCMP_CMP_EQ on personality, LE and EQ on socket.
    assert_ok(out, UMASK, 0, "umask 022");
    assert_errno(
        out,
        UMASK,
        1,
        libc::EPERM,
        "umask 077: the masked compare fails",
    );
    assert_ok(out, PERSONALITY, 0, "personality(0)");
    assert_errno(
        out,
        PERSONALITY,
        1,
        libc::EPERM,
        "personality(8) is not listed",
    );
    assert_errno(out, SOCKET, 0, libc::EAFNOSUPPORT, "socket(AF_INET6)");
    assert_ok(out, SOCKET, 1, "socket(AF_INET)");
    assert_errno(
        out,
        SOCKET,
        2,
        libc::EPERM,
        "socket(AF_NETLINK): above the LE 2 rule",
    );
}

#[test]
fn a_docker_profile_from_a_spec_applies_args_errnoret_and_includes() {
    for env in envs() {
        let who = env.who;
        let r = up(
            &env,
            &docker_script(),
            "[seccomp]\nprofile = \"./profile.json\"\n",
        );
        r.ok();
        assert_docker_profile(&r, who);
        has(&r, who, "NoNewPrivs:\t1");
        // The box has CAP_CHOWN: the `includes: {caps: [CAP_CHOWN]}` allow rule applies.
        has(&r, who, "chown=0");

        // Without CAP_CHOWN, `excludes: {caps: [CAP_CHOWN]}` selects the EROFS rule instead.
        let r = up(
            &env,
            "chown 1 /etc/passwd; echo chown=$?",
            "[seccomp]\nprofile = \"./profile.json\"\n\n[capabilities]\ndrop = [\"CHOWN\"]\n",
        );
        r.ok();
        has(&r, who, "chown=1");
        has(&r, who, "/etc/passwd: Read-only file system");

        // Control: the same probe unconfined gets the kernel's answers.
        let r = up(
            &env,
            &format!("grep '^Seccomp:' /proc/self/status; /sysprobe {SYSINFO},0 {UMASK},0077 {SOCKET},10,1,0"),
            "[seccomp]\nprofile = \"unconfined\"\n",
        );
        r.ok();
        has(&r, who, "Seccomp:\t0");
        assert_errno(
            &r.stdout,
            SYSINFO,
            0,
            libc::EFAULT,
            "unconfined sysinfo(NULL)",
        );
        assert_ok(&r.stdout, UMASK, 0, "unconfined umask");
        assert_ok(&r.stdout, SOCKET, 0, "unconfined socket(AF_INET6)");
    }
}

#[test]
fn without_no_new_privileges_the_profile_still_installs() {
    for env in envs() {
        let who = env.who;
        // From a spec, with the Docker-style profile: installed while the box's root still has
        // CAP_SYS_ADMIN, since without no_new_privs the kernel requires it.
        let r = up(
            &env,
            &docker_script(),
            "[seccomp]\nprofile = \"./profile.json\"\n\n[security]\nno_new_privileges = false\n",
        );
        r.ok();
        has(&r, who, "NoNewPrivs:\t0");
        assert_docker_profile(&r, who);

        // From flags, with the built-in profile, for a box user that is not root (the filter
        // goes in before the user step drops to it).
        let r = run_sh(
            &env,
            &[
                "--security-opt",
                "no-new-privileges=false",
                "--user",
                "65534:65534",
            ],
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; id -u; \
             unshare -U true; echo unshare=$?",
        );
        r.ok();
        has(&r, who, "Seccomp:\t2");
        has(&r, who, "NoNewPrivs:\t0");
        has(&r, who, "65534\n");
        has(&r, who, "unshare=1");
        has(&r, who, "Operation not permitted");
    }
}

#[test]
fn a_profile_with_an_unknown_call_or_action_is_a_check_error_at_the_profile_line() {
    let mut profile: serde_json::Value = serde_json::from_slice(
        &fs::read(repo().join("tests/data/seccomp-docker-style.json")).expect("profile"),
    )
    .expect("profile JSON");
    profile["syscalls"][0]["names"]
        .as_array_mut()
        .expect("names")
        .push("no_such_call".into());
    profile["syscalls"][3]["action"] = "SCMP_ACT_BOGUS".into();
    let bad = serde_json::to_string_pretty(&profile).expect("json");
    for env in envs() {
        let who = env.who;
        env.write("bad.json", &bad);
        let text = spec("echo the-box-ran", "[seccomp]\nprofile = \"./bad.json\"\n");
        let line = text
            .lines()
            .position(|l| l.starts_with("profile ="))
            .expect("profile line")
            + 1;
        env.write("Foxbox.toml", &text);
        let r = env.run(["--color", "never", "check", "Foxbox.toml"]);
        r.assert_code(1);
        // Both problems, each pointing at the spec's `profile = ...` (line:column of the value).
        has(&r, who, "/syscalls/0/names/");
        has(&r, who, "unknown system call `no_such_call`");
        has(
            &r,
            who,
            "/syscalls/3/action: unknown action `SCMP_ACT_BOGUS`",
        );
        assert_eq!(
            r.stderr
                .matches(&format!("[Foxbox.toml:{line}:11]"))
                .count(),
            2,
            "{who:?}: both errors at the profile line {line}:\n{}",
            r.stderr
        );
        // `up` refuses it before anything runs, and leaves no box behind.
        let r = env.run(["--color", "never", "up", "--rm"]);
        r.assert_code(125);
        assert!(!r.stdout.contains("the-box-ran"), "{who:?}: {}", r.stdout);
        has(&r, who, "unknown action `SCMP_ACT_BOGUS`");
        let ps = env.run(["ps", "-a", "-q"]);
        ps.ok();
        assert_eq!(ps.stdout.trim(), "", "{who:?}: no box recorded");
    }
}
