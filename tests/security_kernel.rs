//! Kernel-facing tests of src/security: filters installed for real, capability sets set for
//! real, read back from /proc/self/status, and busybox run under them.
//!
//! A cargo test process is multi-threaded, and `unshare(CLONE_NEWUSER)` or a filter on one
//! thread would not be meaningful there, so this file has its own `main` (`harness = false`):
//! run normally, it spawns itself once per case with `FOXBOX_SECPROBE=<case>`, as root or as
//! the unprivileged test user; the probe (a fresh, single-threaded process) sets things up,
//! checks, and reports through its exit status and stderr.

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use foxbox::security::caps::{self, CapSet};
use foxbox::security::capset;
use foxbox::security::seccomp::{self, Arch, Program};

const BUSYBOX: &str = "/bin/busybox";
const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";
const DOCKER_STYLE: &str = "seccomp-docker-style.json";

/// How the probe gets the right to install a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Host root: CAP_SYS_ADMIN, no user namespace.
    Host,
    /// A new user namespace (own uid mapped to 0): CAP_SYS_ADMIN there, no no_new_privs.
    Userns,
    /// no_new_privs and nothing else, as a plain user can.
    Nnp,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Host => "host",
            Mode::Userns => "userns",
            Mode::Nnp => "nnp",
        }
    }

    fn parse(s: &str) -> Mode {
        match s {
            "host" => Mode::Host,
            "userns" => Mode::Userns,
            _ => Mode::Nnp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum As {
    Root,
    User,
}

struct Case {
    name: &'static str,
    who: As,
    mode: Mode,
}

const fn case(name: &'static str, who: As, mode: Mode) -> Case {
    Case { name, who, mode }
}

const CASES: &[Case] = &[
    case("default_profile", As::Root, Mode::Host),
    case("default_profile", As::Root, Mode::Userns),
    case("default_profile", As::User, Mode::Userns),
    case("default_profile", As::User, Mode::Nnp),
    case("podman_profile", As::Root, Mode::Userns),
    case("podman_profile", As::User, Mode::Nnp),
    case("docker_profile_with_chown", As::Root, Mode::Userns),
    case("docker_profile_with_chown", As::User, Mode::Nnp),
    case("docker_profile_without_chown", As::User, Mode::Userns),
    case("caps_root", As::Root, Mode::Host),
    case("caps_root", As::Root, Mode::Userns),
    case("caps_root", As::User, Mode::Userns),
    case("caps_non_root_ambient", As::Root, Mode::Host),
    case("plain_user_needs_nnp", As::User, Mode::Nnp),
    case("other_abis_are_killed", As::Root, Mode::Userns),
    case("other_abis_are_killed", As::User, Mode::Nnp),
];

fn main() {
    if let Ok(name) = std::env::var("FOXBOX_SECPROBE") {
        let mode = Mode::parse(&std::env::var("FOXBOX_SECPROBE_MODE").unwrap_or_default());
        let data = PathBuf::from(std::env::var("FOXBOX_SECPROBE_DATA").unwrap_or_default());
        match probe::run(&name, mode, &data) {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    std::process::exit(runner());
}

/// libtest-like: positional arguments filter by substring, `--list` lists, other flags ignored.
fn runner() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let list = args.iter().any(|a| a == "--list");
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let full = |c: &Case| {
        let who = match c.who {
            As::Root => "root",
            As::User => "user",
        };
        format!("{}::{}::{}", c.name, who, c.mode.name())
    };
    let selected: Vec<&Case> = CASES
        .iter()
        .filter(|c| {
            let n = full(c);
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        n == **f
                    } else {
                        n.contains(f.as_str())
                    }
                })
        })
        .collect();
    if list {
        for c in &selected {
            println!("{}: test", full(c));
        }
        return 0;
    }
    let data = match stage_data() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot stage the probe: {e}");
            return 1;
        }
    };
    println!("\nrunning {} tests", selected.len());
    let (mut passed, mut failed, mut skipped) = (0, Vec::new(), 0);
    for c in selected {
        let name = full(c);
        match run_case(c, &data) {
            Outcome::Pass => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Outcome::Skip(why) => {
                println!("test {name} ... skipped ({why})");
                skipped += 1;
            }
            Outcome::Fail(why) => {
                println!("test {name} ... FAILED\n{why}");
                failed.push(name);
            }
        }
    }
    let _ = fs::remove_dir_all(&data);
    let result = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {result}. {passed} passed; {} failed; {skipped} skipped",
        failed.len()
    );
    for f in &failed {
        println!("    {f}");
    }
    i32::from(!failed.is_empty())
}

enum Outcome {
    Pass,
    Skip(String),
    Fail(String),
}

/// A directory every test user can read, holding a copy of this binary and the test data.
fn stage_data() -> std::io::Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix("foxbox-secprobe-")
        .tempdir()?
        .keep();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    fs::copy(std::env::current_exe()?, dir.join("probe"))?;
    fs::set_permissions(dir.join("probe"), fs::Permissions::from_mode(0o755))?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(DOCKER_STYLE);
    fs::copy(src, dir.join(DOCKER_STYLE))?;
    fs::set_permissions(dir.join(DOCKER_STYLE), fs::Permissions::from_mode(0o644))?;
    // A place the probe may write in (mkdir, chown checks), owned by whoever runs it.
    let scratch = dir.join("scratch");
    fs::create_dir(&scratch)?;
    fs::set_permissions(&scratch, fs::Permissions::from_mode(0o1777))?;
    Ok(dir)
}

fn run_case(c: &Case, data: &Path) -> Outcome {
    let root = common::is_root();
    if c.who == As::Root && !root {
        return Outcome::Skip("needs root".into());
    }
    let mut cmd = Command::new(data.join("probe"));
    cmd.env("FOXBOX_SECPROBE", c.name)
        .env("FOXBOX_SECPROBE_MODE", c.mode.name())
        .env("FOXBOX_SECPROBE_DATA", data)
        .current_dir(data);
    if c.who == As::User && root {
        let Some((uid, gid)) = common::user_ids(common::TEST_USER) else {
            return Outcome::Fail(format!("user {} is missing", common::TEST_USER));
        };
        cmd.uid(uid).gid(gid);
    }
    match cmd.output() {
        Err(e) => Outcome::Fail(format!("spawning the probe: {e}")),
        Ok(out) if out.status.success() => Outcome::Pass,
        Ok(out) => Outcome::Fail(format!(
            "probe {}: {}{}",
            match out.status.signal() {
                Some(s) => format!("killed by signal {s}"),
                None => format!("exit {}", out.status.code().unwrap_or(-1)),
            },
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The probe side: runs in a fresh single-threaded process.
mod probe {
    use super::*;

    type R = Result<(), String>;

    macro_rules! ensure {
        ($cond:expr, $($fmt:tt)+) => {
            if !$cond {
                return Err(format!($($fmt)+));
            }
        };
    }

    pub fn run(name: &str, mode: Mode, data: &Path) -> R {
        match name {
            "default_profile" => default_profile(mode),
            "podman_profile" => podman_profile(mode),
            "docker_profile_with_chown" => docker_profile(mode, data, true),
            "docker_profile_without_chown" => docker_profile(mode, data, false),
            "caps_root" => caps_root(mode),
            "caps_non_root_ambient" => caps_non_root_ambient(),
            "plain_user_needs_nnp" => plain_user_needs_nnp(),
            "other_abis_are_killed" => other_abis_are_killed(mode),
            other => Err(format!("unknown probe {other}")),
        }
    }

    fn native() -> Result<Arch, String> {
        Arch::native().ok_or_else(|| "foxbox cannot filter this architecture".to_string())
    }

    fn caps(names: &[&str]) -> CapSet {
        let mut s = CapSet::EMPTY;
        for n in names {
            s.insert(caps::parse(n).expect("known cap"));
        }
        s
    }

    /// Enter a user namespace with our uid and gid mapped to 0.
    fn enter_userns() -> R {
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
            .map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
        fs::write("/proc/self/uid_map", format!("0 {uid} 1"))
            .map_err(|e| format!("uid_map: {e}"))?;
        fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
        fs::write("/proc/self/gid_map", format!("0 {gid} 1"))
            .map_err(|e| format!("gid_map: {e}"))?;
        Ok(())
    }

    /// Put `program` in place the way `mode` allows, then set the box's capability set (the
    /// executor's order: without no_new_privs the filter goes first, while CAP_SYS_ADMIN is
    /// still there).
    fn confine(mode: Mode, program: &Program, set: Option<CapSet>) -> R {
        match mode {
            Mode::Host | Mode::Userns => {
                if mode == Mode::Userns {
                    enter_userns()?;
                }
                seccomp::install(program, false).map_err(|e| format!("install: {e}"))?;
                if let Some(set) = set {
                    capset::set_capabilities(set).map_err(|e| format!("set caps: {e}"))?;
                }
            }
            Mode::Nnp => {
                capset::set_no_new_privs().map_err(|e| e.to_string())?;
                seccomp::install(program, true).map_err(|e| format!("install: {e}"))?;
            }
        }
        Ok(())
    }

    /// `syscall(2)`: the return value, or the errno.
    fn sys(nr: libc::c_long, a: [u64; 6]) -> Result<i64, i32> {
        // SAFETY: the calls made here pass integers, valid pointers, or addresses the kernel
        // checks (EFAULT); none gives the kernel memory it may write after the call.
        let rc = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
        if rc < 0 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(rc)
        }
    }

    fn expect_errno(what: &str, nr: libc::c_long, a: [u64; 6], errno: i32) -> R {
        match sys(nr, a) {
            Err(e) if e == errno => Ok(()),
            other => Err(format!("{what}: expected errno {errno}, got {other:?}")),
        }
    }

    fn expect_ok(what: &str, nr: libc::c_long, a: [u64; 6]) -> R {
        sys(nr, a)
            .map(|_| ())
            .map_err(|e| format!("{what}: expected success, got errno {e}"))
    }

    fn status() -> Result<HashMap<String, String>, String> {
        let s = fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
        Ok(parse_status(&s))
    }

    fn parse_status(s: &str) -> HashMap<String, String> {
        s.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    fn cap_field(st: &HashMap<String, String>, key: &str) -> Result<CapSet, String> {
        let v = st.get(key).ok_or_else(|| format!("no {key} in status"))?;
        u64::from_str_radix(v, 16)
            .map(CapSet)
            .map_err(|e| format!("{key}={v}: {e}"))
    }

    fn check_filter_status(st: &HashMap<String, String>, nnp: bool) -> R {
        ensure!(
            st.get("Seccomp").map(String::as_str) == Some("2"),
            "Seccomp: {:?}, expected 2 (filter mode)",
            st.get("Seccomp")
        );
        ensure!(
            st.get("Seccomp_filters").map(String::as_str) == Some("1"),
            "Seccomp_filters: {:?}",
            st.get("Seccomp_filters")
        );
        let want = if nnp { "1" } else { "0" };
        ensure!(
            st.get("NoNewPrivs").map(String::as_str) == Some(want),
            "NoNewPrivs: {:?}, expected {want}",
            st.get("NoNewPrivs")
        );
        Ok(())
    }

    /// Run busybox with a shell script under the current filter; its stdout, or why not.
    fn busybox(script: &str) -> Result<String, String> {
        let out = Command::new(BUSYBOX)
            .args(["sh", "-c", script])
            .env_clear()
            .env("PATH", "/nonexistent")
            .output()
            .map_err(|e| format!("spawning busybox: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure!(
            out.status.success(),
            "busybox sh -c {script:?}: {:?}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(stdout)
    }

    /// Ordinary work: pipes, fork/exec of applets, files, /proc, signals, sleep.
    const WORKLOAD: &str = "set -e; bb=/bin/busybox; d=$($bb mktemp -d); \
         $bb echo hello > $d/f; $bb cat $d/f | $bb tr a-z A-Z; \
         $bb seq 1 200 | $bb sort -rn | $bb head -n 1; $bb ls / >/dev/null; \
         $bb ps >/dev/null; $bb sleep 0.01; $bb sh -c 'exit 3' || echo rc=$?; \
         $bb cp $d/f $d/g; $bb chmod 600 $d/g; $bb rm -r $d; $bb uname -s; \
         $bb wget -q -O /dev/null http://127.0.0.1:1/ 2>/dev/null || echo refused; \
         $bb grep -q Seccomp /proc/self/status && echo status";
    const WORKLOAD_OUT: &str = "HELLO\n200\nrc=3\nLinux\nrefused\nstatus\n";

    fn workload_runs() -> R {
        let out = busybox(WORKLOAD)?;
        ensure!(out == WORKLOAD_OUT, "busybox workload printed {out:?}");
        Ok(())
    }

    const KEY_SPEC_SESSION_KEYRING: u64 = -3i64 as u64;
    /// An address the kernel refuses with EFAULT if a call gets that far.
    const BAD_PTR: u64 = 1;

    fn default_profile(mode: Mode) -> R {
        let set = CapSet::podman_default();
        let program = seccomp::compile(seccomp::default_profile(), set, native()?)
            .map_err(|e| e.to_string())?;
        confine(mode, &program, (mode != Mode::Nnp).then_some(set))?;
        let eperm = libc::EPERM;
        // Each of these would succeed or fail differently if the filter let it through.
        expect_errno(
            "keyctl",
            libc::SYS_keyctl,
            [0, KEY_SPEC_SESSION_KEYRING, 0, 0, 0, 0],
            eperm,
        )?;
        expect_errno(
            "add_key",
            libc::SYS_add_key,
            [BAD_PTR, BAD_PTR, 0, 0, KEY_SPEC_SESSION_KEYRING, 0],
            eperm,
        )?;
        expect_errno(
            "request_key",
            libc::SYS_request_key,
            [BAD_PTR, BAD_PTR, 0, 0, 0, 0],
            eperm,
        )?;
        expect_errno(
            "unshare(CLONE_NEWUSER)",
            libc::SYS_unshare,
            [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
            eperm,
        )?;
        expect_errno(
            "mount",
            libc::SYS_mount,
            [BAD_PTR, BAD_PTR, BAD_PTR, 0, 0, 0],
            eperm,
        )?;
        expect_errno(
            "umount2",
            libc::SYS_umount2,
            [BAD_PTR, 0, 0, 0, 0, 0],
            eperm,
        )?;
        expect_errno("setns", libc::SYS_setns, [u64::MAX, 0, 0, 0, 0, 0], eperm)?;
        expect_errno(
            "personality(ADDR_NO_RANDOMIZE)",
            libc::SYS_personality,
            [0x0040000, 0, 0, 0, 0, 0],
            eperm,
        )?;
        // CLONE_NEWUSER with CLONE_FS is EINVAL in the kernel, so nothing forks if it got there.
        let clone_flags = (libc::CLONE_NEWUSER | libc::CLONE_FS | libc::SIGCHLD) as u64;
        expect_errno(
            "clone(CLONE_NEWUSER)",
            libc::SYS_clone,
            [clone_flags, 0, 0, 0, 0, 0],
            eperm,
        )?;
        expect_errno(
            "clone3",
            libc::SYS_clone3,
            [BAD_PTR, 64, 0, 0, 0, 0],
            libc::ENOSYS,
        )?;
        expect_errno(
            "socket(AF_NETLINK, NETLINK_AUDIT)",
            libc::SYS_socket,
            [16, 3, 9, 0, 0, 0],
            libc::EINVAL,
        )?;
        expect_ok(
            "personality(query)",
            libc::SYS_personality,
            [0xffff_ffff, 0, 0, 0, 0, 0],
        )?;
        expect_ok("getpid", libc::SYS_getpid, [0; 6])?;
        check_filter_status(&status()?, mode == Mode::Nnp)?;
        workload_runs()?;
        // The same refusals reach programs run under the filter.
        let out = busybox("/bin/busybox unshare -U /bin/busybox true 2>&1 || echo refused")?;
        ensure!(
            out.contains("Operation not permitted") && out.contains("refused"),
            "busybox unshare -U: {out:?}"
        );
        let out = busybox("/bin/busybox grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status")?;
        let st = parse_status(&out);
        ensure!(
            st.get("Seccomp").map(String::as_str) == Some("2"),
            "child status {out:?}"
        );
        Ok(())
    }

    fn podman_profile(mode: Mode) -> R {
        let text =
            fs::read_to_string(PODMAN_PROFILE).map_err(|e| format!("{PODMAN_PROFILE}: {e}"))?;
        let profile = seccomp::parse_profile(&text).map_err(|e| format!("{e:?}"))?;
        let set = CapSet::podman_default();
        let program = seccomp::compile(&profile, set, native()?).map_err(|e| e.to_string())?;
        confine(mode, &program, (mode != Mode::Nnp).then_some(set))?;
        // podman: unknown calls ENOSYS, an explicit EPERM list, EINVAL for audit netlink.
        expect_errno(
            "add_key",
            libc::SYS_add_key,
            [BAD_PTR, BAD_PTR, 0, 0, KEY_SPEC_SESSION_KEYRING, 0],
            libc::ENOSYS,
        )?;
        expect_errno(
            "vmsplice",
            libc::SYS_vmsplice,
            [u64::MAX, BAD_PTR, 1, 0, 0, 0],
            libc::EPERM,
        )?;
        expect_errno(
            "open_by_handle_at",
            libc::SYS_open_by_handle_at,
            [u64::MAX, BAD_PTR, 0, 0, 0, 0],
            libc::EPERM,
        )?;
        expect_errno(
            "socket(AF_NETLINK, NETLINK_AUDIT)",
            libc::SYS_socket,
            [16, 3, 9, 0, 0, 0],
            libc::EINVAL,
        )?;
        expect_errno(
            "personality(ADDR_NO_RANDOMIZE)",
            libc::SYS_personality,
            [0x0040000, 0, 0, 0, 0, 0],
            libc::ENOSYS,
        )?;
        expect_ok("socket(AF_UNIX)", libc::SYS_socket, [1, 1, 0, 0, 0, 0])?;
        // podman allows keyctl: the kernel answers (a keyring id, or its own error).
        match sys(libc::SYS_keyctl, [0, KEY_SPEC_SESSION_KEYRING, 0, 0, 0, 0]) {
            Err(e) if e == libc::ENOSYS || e == libc::EPERM => {
                return Err(format!("keyctl refused with {e}, podman allows it"))
            }
            _ => {}
        }
        check_filter_status(&status()?, mode == Mode::Nnp)?;
        workload_runs()
    }

    fn docker_profile(mode: Mode, data: &Path, with_chown: bool) -> R {
        let text = fs::read_to_string(data.join(DOCKER_STYLE)).map_err(|e| e.to_string())?;
        let profile = seccomp::parse_profile(&text).map_err(|e| format!("{e:?}"))?;
        let mut set = CapSet::podman_default();
        if !with_chown {
            set.remove(caps::parse("CHOWN").expect("cap"));
        }
        let program = seccomp::compile(&profile, set, native()?).map_err(|e| e.to_string())?;
        let scratch = data.join("scratch");
        let file = scratch.join(format!("f-{}", std::process::id()));
        fs::write(&file, "x").map_err(|e| e.to_string())?;
        let cfile = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).expect("path");
        let cdir = std::ffi::CString::new(
            scratch
                .join(format!("d-{}", std::process::id()))
                .as_os_str()
                .as_encoded_bytes(),
        )
        .expect("path");
        confine(mode, &program, (mode != Mode::Nnp).then_some(set))?;
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let at_fdcwd = libc::AT_FDCWD as i64 as u64;
        let path = cfile.as_ptr() as u64;
        let dir = cdir.as_ptr() as u64;
        // errnoRet.
        expect_errno(
            "mkdirat",
            libc::SYS_mkdirat,
            [at_fdcwd, dir, 0o755, 0, 0, 0],
            libc::EACCES,
        )?;
        // args: NE, LE, EQ, MASKED_EQ; the default's errnoRet.
        let me = std::process::id() as u64;
        expect_ok("kill(self, 0)", libc::SYS_kill, [me, 0, 0, 0, 0, 0])?;
        expect_errno(
            "kill(self, SIGUSR2)",
            libc::SYS_kill,
            [me, 12, 0, 0, 0, 0],
            libc::EPERM,
        )?;
        expect_ok("socket(AF_UNIX)", libc::SYS_socket, [1, 1, 0, 0, 0, 0])?;
        expect_ok("socket(AF_INET)", libc::SYS_socket, [2, 2, 0, 0, 0, 0])?;
        expect_errno(
            "socket(AF_INET6)",
            libc::SYS_socket,
            [10, 2, 0, 0, 0, 0],
            libc::EAFNOSUPPORT,
        )?;
        expect_errno(
            "socket(AF_NETLINK)",
            libc::SYS_socket,
            [16, 3, 0, 0, 0, 0],
            libc::EPERM,
        )?;
        expect_ok(
            "personality(query)",
            libc::SYS_personality,
            [0xffff_ffff, 0, 0, 0, 0, 0],
        )?;
        expect_errno(
            "personality(8)",
            libc::SYS_personality,
            [8, 0, 0, 0, 0, 0],
            libc::EPERM,
        )?;
        expect_ok("umask(022)", libc::SYS_umask, [0o022, 0, 0, 0, 0, 0])?;
        expect_ok("umask(0722)", libc::SYS_umask, [0o722, 0, 0, 0, 0, 0])?;
        expect_errno(
            "umask(077)",
            libc::SYS_umask,
            [0o077, 0, 0, 0, 0, 0],
            libc::EPERM,
        )?;
        // includes/excludes by capability.
        let chown = sys(
            libc::SYS_fchownat,
            [at_fdcwd, path, uid.into(), gid.into(), 0, 0],
        );
        if with_chown {
            ensure!(
                chown.is_ok(),
                "fchownat with CAP_CHOWN in the set: {chown:?}"
            );
        } else {
            ensure!(
                chown == Err(libc::EROFS),
                "fchownat without CAP_CHOWN: {chown:?}"
            );
        }
        // includes by architecture and minKernel.
        expect_errno(
            "sysinfo",
            libc::SYS_sysinfo,
            [BAD_PTR, 0, 0, 0, 0, 0],
            libc::EOPNOTSUPP,
        )?;
        expect_ok("getcpu", libc::SYS_getcpu, [0, 0, 0, 0, 0, 0])?;
        expect_errno(
            "sched_yield",
            libc::SYS_sched_yield,
            [0; 6],
            libc::EOPNOTSUPP,
        )?;
        expect_ok("getpgrp", libc::SYS_getpgrp, [0; 6])?;
        check_filter_status(&status()?, mode == Mode::Nnp)?;
        // busybox under it: normal work runs; mkdir is refused with the profile's errno.
        let out = busybox(&format!(
            "/bin/busybox mkdir {}/bb 2>&1 || echo refused; /bin/busybox echo ok | /bin/busybox tr a-z A-Z",
            scratch.display()
        ))?;
        ensure!(
            out.contains("Permission denied") && out.contains("refused") && out.ends_with("OK\n"),
            "busybox under the Docker-style profile: {out:?}"
        );
        Ok(())
    }

    fn expect_caps(st: &HashMap<String, String>, want: &[(&str, CapSet)]) -> R {
        for (key, set) in want {
            let got = cap_field(st, key)?;
            ensure!(
                got == *set,
                "{key} = {:?}, expected {:?}",
                got.names(),
                set.names()
            );
        }
        Ok(())
    }

    /// As uid 0 (host root or a user namespace's root): all five sets equal the set, ambient
    /// included; and exec keeps the set.
    fn caps_root(mode: Mode) -> R {
        if mode == Mode::Userns {
            enter_userns()?;
        }
        let mut wide = CapSet::podman_default();
        wide.0 |= caps(&["NET_RAW", "SYS_ADMIN", "CHECKPOINT_RESTORE", "AUDIT_READ"]).0;
        // Sets can only shrink once the bounding set is dropped: wide, then narrower.
        for set in [wide, CapSet::podman_default(), CapSet::EMPTY] {
            capset::set_capabilities(set).map_err(|e| format!("{:?}: {e}", set.names()))?;
            let st = status()?;
            expect_caps(
                &st,
                &[
                    ("CapEff", set),
                    ("CapPrm", set),
                    ("CapInh", set),
                    ("CapBnd", set),
                    ("CapAmb", set),
                ],
            )?;
            let cur = capset::current().map_err(|e| e.to_string())?;
            ensure!(
                cur == capset::CapState {
                    effective: set,
                    permitted: set,
                    inheritable: set,
                    bounding: set,
                    ambient: set
                },
                "capset::current() = {cur:?}"
            );
            let out = busybox("/bin/busybox grep ^Cap /proc/self/status")?;
            expect_caps(
                &parse_status(&out),
                &[("CapEff", set), ("CapPrm", set), ("CapBnd", set)],
            )?;
        }
        // no_new_privs.
        ensure!(
            !capset::no_new_privs().map_err(|e| e.to_string())?,
            "nnp already set"
        );
        capset::set_no_new_privs().map_err(|e| e.to_string())?;
        ensure!(
            capset::no_new_privs().map_err(|e| e.to_string())?,
            "nnp not set"
        );
        ensure!(
            status()?.get("NoNewPrivs").map(String::as_str) == Some("1"),
            "NoNewPrivs not 1"
        );
        Ok(())
    }

    /// Host root switching to an unprivileged uid, as the executor does for `user = "1001"`:
    /// keep-caps across setresuid, then the set, ambient raised; exec'd busybox has them.
    fn caps_non_root_ambient() -> R {
        let set = caps(&["NET_BIND_SERVICE", "KILL", "CHOWN", "SETPCAP", "BPF"]);
        let (uid, gid) = common::user_ids(common::TEST_USER).ok_or("no test user")?;
        capset::set_keep_caps(true).map_err(|e| e.to_string())?;
        nix::unistd::setgroups(&[]).map_err(|e| e.to_string())?;
        let g = nix::unistd::Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(|e| e.to_string())?;
        let u = nix::unistd::Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(|e| e.to_string())?;
        capset::set_capabilities(set).map_err(|e| e.to_string())?;
        let st = status()?;
        expect_caps(
            &st,
            &[
                ("CapEff", set),
                ("CapPrm", set),
                ("CapInh", set),
                ("CapBnd", set),
                ("CapAmb", set),
            ],
        )?;
        let out = busybox("/bin/busybox grep -E '^(Cap|Uid)' /proc/self/status")?;
        let child = parse_status(&out);
        expect_caps(
            &child,
            &[
                ("CapEff", set),
                ("CapPrm", set),
                ("CapInh", set),
                ("CapBnd", set),
                ("CapAmb", set),
            ],
        )?;
        ensure!(
            child
                .get("Uid")
                .is_some_and(|u| u.starts_with(&uid.to_string())),
            "child Uid {:?}",
            child.get("Uid")
        );
        Ok(())
    }

    /// A plain user can install a filter only with no_new_privs, and is told why.
    fn plain_user_needs_nnp() -> R {
        if nix::unistd::geteuid().is_root() {
            return Err("this probe must run unprivileged".into());
        }
        let program = seccomp::compile(seccomp::default_profile(), CapSet::EMPTY, native()?)
            .map_err(|e| e.to_string())?;
        match seccomp::install(&program, false) {
            Err(e) if e.errno() == Some(libc::EACCES) && e.help().is_some() => {}
            other => return Err(format!("install without nnp: {other:?}")),
        }
        ensure!(
            status()?.get("Seccomp").map(String::as_str) == Some("0"),
            "a filter got installed"
        );
        capset::set_no_new_privs().map_err(|e| e.to_string())?;
        seccomp::install(&program, true).map_err(|e| e.to_string())?;
        check_filter_status(&status()?, true)?;
        expect_errno(
            "keyctl",
            libc::SYS_keyctl,
            [0, KEY_SPEC_SESSION_KEYRING, 0, 0, 0, 0],
            libc::EPERM,
        )?;
        workload_runs()
    }

    /// Calls through another ABI than the native one are killed (x32 and i386 on x86_64).
    fn other_abis_are_killed(mode: Mode) -> R {
        if native()? != Arch::X86_64 {
            return Ok(());
        }
        let program = seccomp::compile(
            seccomp::default_profile(),
            CapSet::podman_default(),
            Arch::X86_64,
        )
        .map_err(|e| e.to_string())?;
        // Whether this kernel has the i386 ABI at all (without it, int 0x80 is a SIGSEGV).
        let ia32 = in_child(int80_getpid)? == Ok(0);
        confine(mode, &program, None)?;
        // x32 getpid: the native audit arch with bit 30 set in the number.
        let status = in_child(|| {
            let _ = sys(0x4000_0000 | libc::SYS_getpid, [0; 6]);
        })?;
        ensure!(
            status == Err(libc::SIGSYS),
            "x32 call: {status:?}, expected SIGSYS"
        );
        // i386 getpid (20) through int 0x80.
        if ia32 {
            let status = in_child(int80_getpid)?;
            ensure!(
                status == Err(libc::SIGSYS),
                "int 0x80 call: {status:?}, expected SIGSYS"
            );
        } else {
            eprintln!("no i386 ABI in this kernel: int 0x80 not checked");
        }
        Ok(())
    }

    #[cfg(target_arch = "x86_64")]
    fn int80_getpid() {
        let mut eax: u64 = 20;
        // SAFETY: i386 getpid takes no arguments and touches no memory; int 0x80 clobbers
        // only eax (declared) in the compat entry path.
        unsafe {
            std::arch::asm!(
                "int 0x80",
                inout("rax") eax,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                options(nostack)
            );
        }
        let _ = eax;
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn int80_getpid() {}

    /// Run `f` in a forked child that then exits 0; Ok(code) or Err(signal).
    fn in_child(f: impl FnOnce()) -> Result<Result<i32, i32>, String> {
        // SAFETY: the probe is single-threaded, so the child may do anything.
        match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
            nix::unistd::ForkResult::Child => {
                f();
                // SAFETY: leave without running the parent's atexit handlers.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                match nix::sys::wait::waitpid(child, None).map_err(|e| e.to_string())? {
                    nix::sys::wait::WaitStatus::Exited(_, c) => Ok(Ok(c)),
                    nix::sys::wait::WaitStatus::Signaled(_, s, _) => Ok(Err(s as i32)),
                    other => Err(format!("child: {other:?}")),
                }
            }
        }
    }
}
