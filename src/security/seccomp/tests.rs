//! Parser error classes, resolution, and the BPF generator checked against the reference
//! semantics (`Ruleset::decide`) by interpreting the generated program.

use super::interp::{self, SeccompData};
use super::*;
use crate::plan::caps::{self, CapSet};

const PODMAN: &str = "/usr/share/containers/seccomp.json";

fn caps_of(names: &[&str]) -> CapSet {
    let mut s = CapSet::EMPTY;
    for n in names {
        s.insert(caps::parse(n).expect("cap name"));
    }
    s
}

fn errors(text: &str) -> Vec<ProfileError> {
    match parse_profile(text) {
        Ok(p) => panic!("expected errors, parsed {p:?}"),
        Err(e) => e,
    }
}

/// The single error at `pointer`, whose message contains `needle`.
fn assert_error(text: &str, pointer: &str, needle: &str) -> ProfileError {
    let errs = errors(text);
    let hit = errs
        .iter()
        .find(|e| e.pointer.as_deref() == Some(pointer))
        .unwrap_or_else(|| panic!("no error at {pointer}: {errs:#?}"));
    assert!(
        hit.message.contains(needle),
        "error at {pointer} is {:?}, expected it to mention {needle:?}",
        hit.message
    );
    hit.clone()
}

fn rule(body: &str) -> String {
    format!(r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{body}]}}"#)
}

// ---------------------------------------------------------------- parser: every error class

#[test]
fn not_json_and_not_an_object() {
    let e = errors("{ nope");
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("not valid JSON"));
    assert_error("[1]", "", "expected an object");
}

#[test]
fn missing_and_unknown_default_action() {
    assert_error("{}", "/defaultAction", "missing `action`");
    let e = assert_error(
        r#"{"defaultAction": "SCMP_ACT_ERNO"}"#,
        "/defaultAction",
        "unknown action `SCMP_ACT_ERNO`",
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `SCMP_ACT_ERRNO`?"));
    assert_error(
        r#"{"defaultAction": 3}"#,
        "/defaultAction",
        "expected a string",
    );
}

#[test]
fn unknown_keys_everywhere() {
    let e = assert_error(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultActoin": "x"}"#,
        "/defaultActoin",
        "unknown key",
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `defaultAction`?"));
    assert_error(
        &rule(r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "nmaes": []}"#),
        "/syscalls/0/nmaes",
        "unknown key",
    );
    assert_error(
        &rule(
            r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ", "vlaue": 2}]}"#,
        ),
        "/syscalls/0/args/0/vlaue",
        "unknown key",
    );
    assert_error(
        &rule(r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"cap": []}}"#),
        "/syscalls/0/includes/cap",
        "unknown key",
    );
}

#[test]
fn unknown_action_in_a_rule_and_notify() {
    assert_error(
        &rule(r#"{"names": ["read"], "action": "SCMP_ACT_PERMIT"}"#),
        "/syscalls/0/action",
        "unknown action `SCMP_ACT_PERMIT`",
    );
    assert_error(
        &rule(r#"{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}"#),
        "/syscalls/0/action",
        "SCMP_ACT_NOTIFY is not supported",
    );
    assert_error(
        &rule(r#"{"names": ["read"]}"#),
        "/syscalls/0/action",
        "missing `action`",
    );
    assert_error(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}"#,
        "/listenerPath",
        "not supported",
    );
}

#[test]
fn unknown_operator_and_bad_args() {
    let e = assert_error(
        &rule(
            r#"{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"}]}"#,
        ),
        "/syscalls/0/args/0/op",
        "unknown operator `SCMP_CMP_EQUAL`",
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `SCMP_CMP_EQ`?"));
    assert_error(
        &rule(
            r#"{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}"#,
        ),
        "/syscalls/0/args/0/index",
        "out of range",
    );
    assert_error(
        &rule(
            r#"{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}"#,
        ),
        "/syscalls/0/args/0/value",
        "non-negative integer",
    );
    assert_error(
        &rule(
            r#"{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}"#,
        ),
        "/syscalls/0/args/0",
        "missing `value`",
    );
    assert_error(
        &rule(
            r#"{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GE"}, {"index": 0, "value": 9, "op": "SCMP_CMP_LE"}]}"#,
        ),
        "/syscalls/0/args/1/index",
        "second condition on argument 0",
    );
}

#[test]
fn unknown_syscall_names_are_errors_but_other_arches_names_are_not() {
    let e = assert_error(
        &rule(r#"{"names": ["read", "opne"], "action": "SCMP_ACT_ALLOW"}"#),
        "/syscalls/0/names/1",
        "unknown system call `opne`",
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `open`?"));
    // Not on x86_64, but real elsewhere: accepted, skipped at compile time.
    let p = parse_profile(&rule(
        r#"{"names": ["_llseek", "s390_runtime_instr", "arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW"}"#,
    ))
    .expect("parses");
    assert_eq!(p.syscalls[0].names.len(), 3);
    let rs = resolve(
        &p,
        &Target {
            arch: Arch::X86_64,
            caps: CapSet::EMPTY,
            kernel: None,
        },
    );
    assert!(rs.is_empty());
}

#[test]
fn name_and_names() {
    assert_error(
        &rule(r#"{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}"#),
        "/syscalls/0/name",
        "both `name` and `names`",
    );
    assert_error(
        &rule(r#"{"action": "SCMP_ACT_ALLOW"}"#),
        "/syscalls/0",
        "missing `names`",
    );
    assert_error(
        &rule(r#"{"names": [], "action": "SCMP_ACT_ALLOW"}"#),
        "/syscalls/0/names",
        "empty",
    );
    let p = parse_profile(&rule(r#"{"name": "read", "action": "SCMP_ACT_ALLOW"}"#)).unwrap();
    assert_eq!(p.syscalls[0].names, vec!["read".to_string()]);
}

#[test]
fn errno_ret_rules() {
    assert_error(
        &rule(r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}"#),
        "/syscalls/0/errnoRet",
        "only applies to SCMP_ACT_ERRNO",
    );
    assert_error(
        &rule(r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5000}"#),
        "/syscalls/0/errnoRet",
        "out of range",
    );
    assert_error(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "EPERM"}"#,
        "/defaultErrnoRet",
        "non-negative integer",
    );
    assert_error(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "EWHATEVER"}"#,
        "/defaultErrno",
        "unknown errno name",
    );
    let p = parse_profile(&rule(
        r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO"}, {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}, {"names": ["close"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}"#,
    ))
    .unwrap();
    assert_eq!(p.default_action, Action::Errno { errno: 1 });
    assert_eq!(p.syscalls[0].action, Action::Errno { errno: 1 });
    assert_eq!(p.syscalls[1].action, Action::Errno { errno: 13 });
    assert_eq!(p.syscalls[2].action, Action::Trace { data: 7 });
    let p =
        parse_profile(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "ENOSYS"}"#).unwrap();
    assert_eq!(p.default_action, Action::Errno { errno: 38 });
}

#[test]
fn conditions_caps_arches_min_kernel() {
    assert_error(
        &rule(
            r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMN"]}}"#,
        ),
        "/syscalls/0/includes/caps/0",
        "unknown capability",
    );
    assert_error(
        &rule(
            r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd46"]}}"#,
        ),
        "/syscalls/0/excludes/arches/0",
        "unknown architecture",
    );
    assert_error(
        &rule(
            r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "five"}}"#,
        ),
        "/syscalls/0/includes/minKernel",
        "not a kernel version",
    );
    assert_error(
        &rule(r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": []}"#),
        "/syscalls/0/includes",
        "expected an object",
    );
}

#[test]
fn architectures_arch_map_and_flags() {
    assert_error(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_46"]}"#,
        "/architectures/0",
        "unknown architecture",
    );
    assert_error(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}]}"#,
        "/archMap",
        "both",
    );
    assert_error(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"subArchitectures": ["SCMP_ARCH_X86"]}]}"#,
        "/archMap/0",
        "missing `architecture`",
    );
    assert_error(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOUD"]}"#,
        "/flags/0",
        "unknown filter flag",
    );
    assert_error(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#,
        "/flags/0",
        "not supported",
    );
    let p = parse_profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}]}"#,
    )
    .unwrap();
    assert_eq!(p.flags, vec![FilterFlag::Log]);
    assert_eq!(p.architectures.len(), 3);
}

#[test]
fn every_problem_at_once() {
    let text = r#"{
        "defaultAction": "SCMP_ACT_NOPE",
        "syscalls": [
            {"names": ["read", "raed"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_NOPE"]}}
        ]
    }"#;
    let errs = errors(text);
    let pointers: Vec<_> = errs.iter().filter_map(|e| e.pointer.clone()).collect();
    assert_eq!(
        pointers,
        vec![
            "/defaultAction",
            "/syscalls/0/names/1",
            "/syscalls/1/args/0/op",
            "/syscalls/2/includes/caps/0",
        ],
        "{errs:#?}"
    );
}

#[test]
fn go_nulls_are_empty() {
    let p = parse_profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": null, "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": null, "includes": null,
             "excludes": {}, "errnoRet": null, "comment": "x"}]}"#,
    )
    .unwrap();
    assert!(p.syscalls[0].args.is_empty());
}

// ---------------------------------------------------------------- resolution

fn x86(caps: CapSet) -> Target {
    Target {
        arch: Arch::X86_64,
        caps,
        kernel: KernelVersion::parse("6.1"),
    }
}

fn nr(name: &str) -> u32 {
    Arch::X86_64.syscall(name).expect(name)
}

fn decide(rs: &Ruleset, name: &str, args: [u64; 6]) -> Action {
    rs.decide(nr(name), &args)
}

const EPERM: Action = Action::Errno { errno: 1 };
const ENOSYS: Action = Action::Errno { errno: 38 };

#[test]
fn includes_and_excludes() {
    let p = parse_profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["gettid"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "7.0"}}
        ]}"#,
    )
    .unwrap();
    let none = resolve(&p, &x86(CapSet::EMPTY));
    let admin = resolve(&p, &x86(caps_of(&["SYS_ADMIN"])));
    let both = resolve(&p, &x86(caps_of(&["SYS_ADMIN", "NET_ADMIN"])));
    let z = [0; 6];
    assert_eq!(decide(&none, "mount", z), EPERM);
    assert_eq!(
        decide(&admin, "mount", z),
        EPERM,
        "includes needs every cap"
    );
    assert_eq!(decide(&both, "mount", z), Action::Allow);
    assert_eq!(decide(&none, "chroot", z), Action::Allow);
    assert_eq!(decide(&admin, "chroot", z), EPERM, "excludes on any cap");
    assert_eq!(decide(&none, "arch_prctl", z), Action::Allow);
    assert_eq!(decide(&none, "getpid", z), EPERM);
    assert_eq!(decide(&none, "ptrace", z), Action::Allow);
    assert_eq!(decide(&none, "gettid", z), EPERM);
    let arm = resolve(
        &p,
        &Target {
            arch: Arch::Aarch64,
            caps: CapSet::EMPTY,
            kernel: None,
        },
    );
    assert_eq!(
        arm.decide(Arch::Aarch64.syscall("getpid").unwrap(), &z),
        Action::Allow
    );
}

#[test]
fn most_restrictive_match_wins() {
    let p = parse_profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}
        ]}"#,
    )
    .unwrap();
    let rs = resolve(&p, &x86(CapSet::EMPTY));
    assert_eq!(decide(&rs, "socket", [2, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(
        decide(&rs, "socket", [16, 0, 0, 0, 0, 0]),
        Action::Errno { errno: 22 },
        "first of equally restrictive rules"
    );
    assert_eq!(
        decide(&rs, "socket", [17, 0, 0, 0, 0, 0]),
        Action::KillProcess
    );
}

#[test]
fn numbers_beyond_the_profile_get_enosys() {
    let p = parse_profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "openat2"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let rs = resolve(&p, &x86(CapSet::EMPTY));
    assert_eq!(rs.enosys_above, Some(nr("openat2")));
    assert_eq!(decide(&rs, "write", [0; 6]), EPERM);
    assert_eq!(decide(&rs, "fchmodat2", [0; 6]), ENOSYS);
    let kill = parse_profile(r#"{"defaultAction": "SCMP_ACT_KILL", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#).unwrap();
    let rs = resolve(&kill, &x86(CapSet::EMPTY));
    assert_eq!(rs.enosys_above, None);
    assert_eq!(decide(&rs, "fchmodat2", [0; 6]), Action::KillThread);
}

// ---------------------------------------------------------------- the built-in default

#[test]
fn default_profile_semantics() {
    let p = default_profile();
    let plain = resolve(p, &x86(CapSet::podman_default()));
    let mut with_admin = CapSet::podman_default();
    with_admin.insert(caps::parse("SYS_ADMIN").unwrap());
    let admin = resolve(p, &x86(with_admin));
    let z = [0; 6];
    for name in [
        "read",
        "write",
        "execve",
        "openat",
        "fchmodat2",
        "futex_waitv",
        "rseq",
        "wait4",
    ] {
        assert_eq!(decide(&plain, name, z), Action::Allow, "{name}");
    }
    for name in [
        "keyctl",
        "add_key",
        "request_key",
        "unshare",
        "mount",
        "umount2",
        "setns",
        "pivot_root",
        "reboot",
        "bpf",
        "kexec_load",
        "init_module",
        "vmsplice",
        "userfaultfd",
        "open_by_handle_at",
        "acct",
        "syslog",
        "sethostname",
    ] {
        assert_eq!(decide(&plain, name, z), EPERM, "{name}");
    }
    for name in ["unshare", "mount", "setns", "sethostname", "bpf"] {
        assert_eq!(
            decide(&admin, name, z),
            Action::Allow,
            "{name} with CAP_SYS_ADMIN"
        );
    }
    for name in ["keyctl", "add_key", "reboot"] {
        assert_eq!(
            decide(&admin, name, z),
            EPERM,
            "{name} even with CAP_SYS_ADMIN"
        );
    }
    // clone: a plain fork, a thread; no new namespaces without CAP_SYS_ADMIN.
    let fork = (libc::SIGCHLD | libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u64;
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    assert_eq!(
        decide(&plain, "clone", [fork, 0, 0, 0, 0, 0]),
        Action::Allow
    );
    assert_eq!(
        decide(&plain, "clone", [thread, 0, 0, 0, 0, 0]),
        Action::Allow
    );
    for ns in [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWCGROUP,
    ] {
        let flags = fork | ns as u64;
        assert_eq!(
            decide(&plain, "clone", [flags, 0, 0, 0, 0, 0]),
            EPERM,
            "{ns:#x}"
        );
        assert_eq!(
            decide(&admin, "clone", [flags, 0, 0, 0, 0, 0]),
            Action::Allow
        );
    }
    assert_eq!(decide(&plain, "clone3", z), ENOSYS);
    assert_eq!(decide(&admin, "clone3", z), Action::Allow);
    // personality: only podman's values.
    assert_eq!(
        decide(&plain, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        Action::Allow
    );
    assert_eq!(
        decide(&plain, "personality", [0x8, 0, 0, 0, 0, 0]),
        Action::Allow
    );
    assert_eq!(
        decide(&plain, "personality", [0x0040000, 0, 0, 0, 0, 0]),
        EPERM,
        "ADDR_NO_RANDOMIZE"
    );
    // Audit netlink needs CAP_AUDIT_WRITE.
    assert_eq!(
        decide(&plain, "socket", [16, 3, 9, 0, 0, 0]),
        Action::Errno { errno: 22 }
    );
    assert_eq!(decide(&plain, "socket", [16, 3, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(decide(&plain, "socket", [2, 1, 0, 0, 0, 0]), Action::Allow);
    let audit = resolve(p, &x86(caps_of(&["AUDIT_WRITE"])));
    assert_eq!(decide(&audit, "socket", [16, 3, 9, 0, 0, 0]), Action::Allow);
    // Newer than anything named: ENOSYS.
    assert_eq!(plain.decide(470, &z), ENOSYS);
    assert_eq!(plain.decide(1000, &z), ENOSYS);
}

#[test]
fn default_profile_names_are_all_real() {
    // The built-in profile goes through the same name check as a user's.
    for r in &default_profile().syscalls {
        for n in &r.names {
            assert!(arch::is_syscall_anywhere(n), "{n}");
        }
    }
    assert_eq!(
        resolve(default_profile(), &x86(CapSet::EMPTY)).enosys_above,
        Some(Arch::X86_64.max_syscall())
    );
}

#[test]
fn podman_profile_parses_and_means_what_podman_means() {
    let Ok(text) = std::fs::read_to_string(PODMAN) else {
        panic!("{PODMAN} is missing: install golang-github-containers-common");
    };
    let p = parse_profile(&text).expect("podman's profile parses");
    assert_eq!(p.default_action, ENOSYS);
    let rs = resolve(&p, &x86(CapSet::podman_default()));
    let z = [0; 6];
    assert_eq!(decide(&rs, "read", z), Action::Allow);
    assert_eq!(decide(&rs, "keyctl", z), Action::Allow);
    assert_eq!(decide(&rs, "add_key", z), ENOSYS);
    assert_eq!(decide(&rs, "vmsplice", z), EPERM);
    assert_eq!(decide(&rs, "open_by_handle_at", z), EPERM);
    assert_eq!(
        decide(&rs, "chroot", z),
        Action::Allow,
        "CAP_SYS_CHROOT is a default cap"
    );
    assert_eq!(
        decide(&rs, "socket", [16, 3, 9, 0, 0, 0]),
        Action::Errno { errno: 22 }
    );
    assert_eq!(decide(&rs, "socket", [2, 1, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(decide(&rs, "arch_prctl", z), Action::Allow);
    let no_chroot = resolve(&p, &x86(CapSet::EMPTY));
    assert_eq!(decide(&no_chroot, "chroot", z), EPERM);
}

// ---------------------------------------------------------------- BPF generator

/// xorshift64*: deterministic, good enough to pick test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Values near every operand the ruleset compares with, plus some noise.
fn interesting_values(rs: &Ruleset, rng: &mut Rng) -> Vec<u64> {
    let mut v = vec![0, 1, u64::MAX, 0xffff_ffff, 1 << 32, 0x1_0000_0001];
    for (_, rules) in rs.iter() {
        for r in rules {
            for c in &r.conds {
                for x in [c.value, c.value_two, c.value | c.value_two] {
                    v.extend([
                        x,
                        x.wrapping_add(1),
                        x.wrapping_sub(1),
                        x ^ (1 << 32),
                        x ^ 1,
                    ]);
                }
            }
        }
    }
    for _ in 0..8 {
        v.push(rng.next());
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn run(prog: &Program, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let data = SeccompData {
        nr,
        arch,
        ip: 0,
        args,
    };
    interp::run(prog.instructions(), &data).expect("program runs")
}

/// Check the program against `Ruleset::decide` for every number up to past the table, the
/// x32 and foreign-arch cases, and many argument vectors for each syscall with conditions.
fn check_program(rs: &Ruleset, seed: u64) -> Program {
    let prog = bpf::compile(rs).expect("compiles");
    let audit = rs.arch.audit_arch();
    let mut rng = Rng(seed | 1);
    let values = interesting_values(rs, &mut rng);
    let max = rs.arch.max_syscall() + 40;
    let mut nrs: Vec<u32> = (0..=max).collect();
    nrs.extend([1000, 0x3fff_ffff, u32::MAX - 1]);
    for nr in nrs {
        let z = [0u64; 6];
        let got = run(&prog, nr, audit, z);
        assert_eq!(got, rs.decide(nr, &z).ret(), "nr {nr} with zero args");
        if rs
            .rules_for(nr)
            .is_some_and(|r| r.iter().any(|r| !r.conds.is_empty()))
        {
            for _ in 0..400 {
                let mut args = [0u64; 6];
                for a in &mut args {
                    *a = values[rng.below(values.len() as u64) as usize];
                }
                assert_eq!(
                    run(&prog, nr, audit, args),
                    rs.decide(nr, &args).ret(),
                    "nr {nr} args {args:x?}"
                );
            }
        }
        // Another ABI is killed.
        assert_eq!(run(&prog, nr, 0x4000_0003, z), Action::KillProcess.ret());
    }
    if rs.arch == Arch::X86_64 {
        for nr in [0x4000_0000, 0x4000_0001, 0x4000_0000 + 59, u32::MAX] {
            assert_eq!(
                run(&prog, nr, audit, [0; 6]),
                Action::KillProcess.ret(),
                "x32 {nr:#x}"
            );
        }
    }
    prog
}

#[test]
fn default_profile_program_matches_rules() {
    for arch in [Arch::X86_64, Arch::Aarch64] {
        for caps in [CapSet::EMPTY, CapSet::podman_default(), CapSet::all()] {
            let rs = resolve(
                default_profile(),
                &Target {
                    arch,
                    caps,
                    kernel: None,
                },
            );
            let prog = check_program(&rs, 7);
            assert!(prog.len() < 600, "{arch:?}: {} instructions", prog.len());
        }
    }
}

#[test]
fn podman_profile_program_matches_rules_and_is_small() {
    let text = std::fs::read_to_string(PODMAN).expect("podman profile");
    let p = parse_profile(&text).unwrap();
    for arch in [Arch::X86_64, Arch::Aarch64] {
        for caps in [CapSet::EMPTY, CapSet::podman_default(), CapSet::all()] {
            let rs = resolve(
                &p,
                &Target {
                    arch,
                    caps,
                    kernel: None,
                },
            );
            let prog = check_program(&rs, 11);
            assert!(prog.len() < 600, "{arch:?}: {} instructions", prog.len());
        }
    }
}

/// Random profiles with every operator, overlapping rules and all actions.
#[test]
fn random_profiles_program_matches_rules() {
    let ops = CmpOp::NAMES;
    let actions = [
        r#""action": "SCMP_ACT_ALLOW""#,
        r#""action": "SCMP_ACT_ERRNO", "errnoRet": 13"#,
        r#""action": "SCMP_ACT_ERRNO""#,
        r#""action": "SCMP_ACT_KILL_PROCESS""#,
        r#""action": "SCMP_ACT_KILL""#,
        r#""action": "SCMP_ACT_TRAP""#,
        r#""action": "SCMP_ACT_TRACE", "errnoRet": 5"#,
        r#""action": "SCMP_ACT_LOG""#,
    ];
    let names = [
        "read",
        "write",
        "openat",
        "socket",
        "personality",
        "clone",
        "ioctl",
        "mmap",
    ];
    let mut rng = Rng(0x1234_5678);
    for round in 0..60 {
        let mut rules = Vec::new();
        for _ in 0..rng.below(12) + 1 {
            let name = names[rng.below(names.len() as u64) as usize];
            let action = actions[rng.below(actions.len() as u64) as usize];
            let mut args = Vec::new();
            let mut used = Vec::new();
            for _ in 0..rng.below(4) {
                let index = rng.below(6);
                if used.contains(&index) {
                    continue;
                }
                used.push(index);
                let op = ops[rng.below(ops.len() as u64) as usize].0;
                let pick = |r: &mut Rng| match r.below(4) {
                    0 => r.below(4),
                    1 => r.next(),
                    2 => r.next() & 0xffff_ffff,
                    _ => r.next() & 0xffff_ffff_0000_0000,
                };
                let (value, two) = (pick(&mut rng), pick(&mut rng));
                args.push(format!(
                    r#"{{"index": {index}, "value": {value}, "valueTwo": {two}, "op": "{op}"}}"#
                ));
            }
            rules.push(format!(
                r#"{{"names": ["{name}"], {action}, "args": [{}]}}"#,
                args.join(",")
            ));
        }
        let default = actions[rng.below(actions.len() as u64) as usize]
            .replace("action", "defaultAction")
            .replace("errnoRet", "defaultErrnoRet");
        let text = format!(r#"{{{default}, "syscalls": [{}]}}"#, rules.join(","));
        let p = parse_profile(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let rs = resolve(
                &p,
                &Target {
                    arch,
                    caps: CapSet::EMPTY,
                    kernel: None,
                },
            );
            check_program(&rs, round);
        }
    }
}

/// Many conditional rules on one call: jumps further than 255 instructions go through `ja`.
#[test]
fn long_jumps_and_the_size_limit() {
    let rules: Vec<String> = (0..300u64)
        .map(|i| {
            format!(
                r#"{{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{{"index": 0, "value": {}, "op": "SCMP_CMP_EQ"}}]}}"#,
                i * 3 + (i << 33)
            )
        })
        .collect();
    let text = format!(
        r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{}]}}"#,
        rules.join(",")
    );
    let p = parse_profile(&text).unwrap();
    let rs = resolve(&p, &x86(CapSet::EMPTY));
    let prog = check_program(&rs, 3);
    assert!(prog.len() > 1000);
    assert!(prog.instructions().iter().any(|i| i.code == bpf::JMP_JA));
    for i in [0u64, 1, 150, 299] {
        let v = i * 3 + (i << 33);
        assert_eq!(
            run(
                &prog,
                nr("personality"),
                rs.arch.audit_arch(),
                [v, 0, 0, 0, 0, 0]
            ),
            Action::Allow.ret()
        );
        assert_eq!(
            run(
                &prog,
                nr("personality"),
                rs.arch.audit_arch(),
                [v + 1, 0, 0, 0, 0, 0]
            ),
            EPERM.ret()
        );
    }

    let rules: Vec<String> = (0..1200u64)
        .map(|i| {
            format!(
                r#"{{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{{"index": 0, "value": {i}, "op": "SCMP_CMP_EQ"}}]}}"#
            )
        })
        .collect();
    let text = format!(
        r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{}]}}"#,
        rules.join(",")
    );
    let p = parse_profile(&text).unwrap();
    match compile_for(&p, &x86(CapSet::EMPTY)) {
        Err(CompileError::TooLong { len }) => assert!(len > MAX_INSNS),
        other => panic!("expected TooLong, got {other:?}"),
    }
}

/// Damaged profiles: parsing never panics, and whatever parses compiles to a program that
/// means what the rules mean.
#[test]
fn mutated_profiles_never_panic() {
    let base = include_str!("../../../tests/data/seccomp-docker-style.json");
    let pieces = [
        "",
        "0",
        "-1",
        "1e3",
        "null",
        "[]",
        "{}",
        "\"x\"",
        "\"SCMP_CMP_GT\"",
        "18446744073709551616",
        "\"SCMP_ACT_KILL\"",
        "\"CAP_SYS_ADMIN\"",
        ",",
        "\"\\u0000\"",
        "\"names\"",
        "7",
    ];
    let mut rng = Rng(0xfeed);
    let mut parsed = 0;
    for round in 0..300 {
        let mut text = base.to_string();
        for _ in 0..rng.below(3) + 1 {
            let at = rng.below(text.len() as u64) as usize;
            let end = (at + rng.below(12) as usize).min(text.len());
            if !text.is_char_boundary(at) || !text.is_char_boundary(end) {
                continue;
            }
            let piece = pieces[rng.below(pieces.len() as u64) as usize];
            text.replace_range(at..end, piece);
        }
        if let Ok(p) = parse_profile(&text) {
            parsed += 1;
            if round % 10 == 0 {
                let rs = resolve(&p, &x86(CapSet::podman_default()));
                check_program(&rs, round);
            }
        }
    }
    assert!(
        parsed > 0 && parsed < 300,
        "{parsed} of 300 mutated profiles parsed"
    );
}

/// The calls named in `default.rs`' list of departures from podman's profile.
fn listed_departures() -> Vec<String> {
    let docs: String = include_str!("default.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .skip_while(|l| !l.contains("# Departures from podman's profile"))
        .collect::<Vec<_>>()
        .join(" ");
    docs.split('`')
        .skip(1)
        .step_by(2)
        .filter(|n| arch::is_syscall_anywhere(n))
        .map(str::to_string)
        .collect()
}

/// Every call where the built-in profile decides otherwise than podman's `seccomp.json` is one
/// `default.rs` lists with its reason; only the errno of a refusal may differ unlisted (EPERM
/// for podman's ENOSYS, and ENOSYS past the end of the built-in list).
#[test]
fn every_departure_from_podmans_profile_is_listed() {
    let text = std::fs::read_to_string(PODMAN)
        .unwrap_or_else(|_| panic!("{PODMAN} is missing: install golang-github-containers-common"));
    let podman = parse_profile(&text).expect("podman's profile parses");
    let listed = listed_departures();
    assert!(listed.contains(&"keyctl".to_string()), "{listed:?}");
    let mut unlisted = std::collections::BTreeSet::new();
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let mut sets = vec![
            ("no capabilities".to_string(), CapSet::EMPTY),
            ("the default set".into(), CapSet::podman_default()),
            ("every capability".into(), CapSet::all()),
        ];
        for c in CapSet::all().iter() {
            let mut s = CapSet::podman_default();
            s.insert(c);
            sets.push((format!("the default set + {:?}", CapSet(1 << c).names()), s));
        }
        for (label, caps) in sets {
            let t = Target {
                arch,
                caps,
                kernel: None,
            };
            let (theirs, ours) = (resolve(&podman, &t), resolve(default_profile(), &t));
            let mut rng = Rng(3);
            let mut values = interesting_values(&theirs, &mut rng);
            values.extend(interesting_values(&ours, &mut rng));
            for nr in 0..=arch.max_syscall() {
                let Some(name) = arch.syscall_name(nr) else {
                    continue;
                };
                let mut argsets = vec![[0u64; 6]];
                for v in &values {
                    // Each argument position any rule compares (socket's 0 and 2, clone's 0).
                    argsets.push([*v, 0, 0, 0, 0, 0]);
                    argsets.push([16, 3, *v, 0, 0, 0]);
                }
                for args in argsets {
                    let (a, b) = (theirs.decide(nr, &args), ours.decide(nr, &args));
                    let same = a == b
                        || matches!((a, b), (ENOSYS, EPERM))
                        || (b == ENOSYS && a != Action::Allow && ours.fallback(nr) == ENOSYS);
                    if !same && !listed.iter().any(|l| l == name) {
                        unlisted.insert(format!(
                            "{name} on {arch:?} with {label}: podman {a:?}, foxbox {b:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "departures from podman's profile that default.rs does not list:\n{}",
        unlisted.into_iter().collect::<Vec<_>>().join("\n")
    );
}
