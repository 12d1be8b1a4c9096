//! Exit codes (the fox's own, 126, 127, 128+N, 125 with a diagnostic naming the failed step)
//! and signal forwarding, as root and as the unprivileged user.

mod common;

use common::envs;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_tarball, Env, Run};

fn args(flags: &[&str], cmd: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["--log-level".into(), "error".into(), "run".into()];
    v.extend(flags.iter().map(OsString::from));
    v.push(busybox_tarball().into_os_string());
    v.extend(cmd.iter().map(OsString::from));
    v
}

fn boxed(env: &Env, flags: &[&str], cmd: &[&str]) -> Run {
    env.run(args(flags, cmd))
}

#[test]
fn the_fox_exit_code_is_foxboxs() {
    for env in envs() {
        boxed(&env, &[], &["true"]).assert_code(0);
        boxed(&env, &[], &["false"]).assert_code(1);
        boxed(&env, &[], &["sh", "-c", "exit 42"]).assert_code(42);
        let r = boxed(&env, &[], &["sh", "-c", "echo out; echo err >&2"]);
        r.ok();
        assert_eq!(r.stdout, "out\n");
        assert!(r.stderr.contains("err\n"), "{}", r.stderr);
    }
}

#[test]
fn missing_command_is_127_and_non_executable_is_126() {
    for env in envs() {
        let r = boxed(&env, &[], &["no-such-command"]);
        r.assert_code(127);
        assert!(r.stderr.contains("no-such-command"), "{}", r.stderr);
        assert!(r.stderr.contains("not found"), "{}", r.stderr);
        let r = boxed(&env, &[], &["/no/such/path"]);
        r.assert_code(127);
        let r = boxed(&env, &[], &["/etc/passwd"]);
        r.assert_code(126);
        assert!(r.stderr.contains("/etc/passwd"), "{}", r.stderr);
        // Found in PATH but not executable: 126, not 127.
        let r = boxed(&env, &["-e", "PATH=/etc"], &["passwd"]);
        r.assert_code(126);
        let r = boxed(&env, &[], &["/tmp"]);
        r.assert_code(126);
        // The same with an init as pid 1.
        boxed(&env, &["--init"], &["no-such-command"]).assert_code(127);
        boxed(&env, &["--init"], &["sh", "-c", "exit 9"]).assert_code(9);
    }
}

#[test]
fn a_failing_step_is_a_diagnostic_naming_it_and_exit_125() {
    for env in envs() {
        // A missing working directory is made (see exec_isolation); a file is no directory.
        let r = boxed(&env, &["-w", "/etc/passwd"], &["true"]);
        r.assert_code(125);
        assert!(r.stderr.contains("workdir"), "{}", r.stderr);
        assert!(r.stderr.contains("/etc/passwd"), "{}", r.stderr);
        let missing = env.work().join("vanished-source");
        let r = boxed(
            &env,
            &["-v", &format!("{}:/mnt/x", missing.display())],
            &["true"],
        );
        r.assert_code(125);
        assert!(r.stderr.contains("mount"), "{}", r.stderr);
        assert!(r.stderr.contains("vanished-source"), "{}", r.stderr);
        let r = boxed(&env, &["-u", "nobody-in-passwd"], &["true"]);
        r.assert_code(125);
        assert!(r.stderr.contains("user"), "{}", r.stderr);
        assert!(r.stderr.contains("/etc/passwd"), "{}", r.stderr);
        // The box never started: nothing of the command ran.
        assert!(r.stdout.is_empty());
    }
}

fn spawn(env: &Env, flags: &[&str], cmd: &[&str]) -> Child {
    env.foxbox(args(flags, cmd))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn foxbox")
}

/// Read stdout lines until one equals `want` (the box is set up and running).
fn wait_line(child: &mut Child, want: &str) -> BufReader<std::process::ChildStdout> {
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read");
        assert!(n > 0, "box ended before printing {want:?}");
        if line.trim() == want {
            return out;
        }
    }
}

fn kill(pid: u32, sig: i32) {
    // SAFETY: kill has no memory effects.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0, "kill {pid}");
}

fn wait_code(mut child: Child) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
        }
        assert!(Instant::now() < deadline, "foxbox did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Host pids of foxbox's children (the box's pid 1).
fn children(pid: u32) -> Vec<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    text.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[test]
fn signals_to_foxbox_reach_the_fox() {
    for env in envs() {
        for (sig, name) in [
            (libc::SIGTERM, "TERM"),
            (libc::SIGINT, "INT"),
            (libc::SIGHUP, "HUP"),
            (libc::SIGQUIT, "QUIT"),
            (libc::SIGWINCH, "WINCH"),
        ] {
            let script = format!(
                "trap 'echo got {name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done"
            );
            let mut child = spawn(&env, &[], &["sh", "-c", &script]);
            let mut out = wait_line(&mut child, "ready");
            kill(child.id(), sig);
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
            assert_eq!(wait_code(child), 7, "{:?} SIG{name}", env.who);
            assert_eq!(rest, format!("got {name}\n"), "{:?}", env.who);
        }
    }
}

#[test]
fn killed_by_a_signal_is_128_plus_n() {
    for env in envs() {
        // Killed from outside (pid 1 of a pid namespace ignores what it has no handler for,
        // but not SIGKILL from its parent namespace).
        let mut child = spawn(&env, &[], &["sh", "-c", "echo ready; exec sleep 30"]);
        let _out = wait_line(&mut child, "ready");
        let inner = children(child.id());
        assert_eq!(inner.len(), 1, "{inner:?}");
        kill(inner[0], libc::SIGKILL);
        assert_eq!(wait_code(child), 137, "{:?}", env.who);
        // With an init, the fox is pid 2 and can die of any signal; the init passes it on.
        boxed(&env, &["--init"], &["sh", "-c", "kill -TERM $$; sleep 5"]).assert_code(143);
        boxed(&env, &["--init"], &["sh", "-c", "kill -SEGV $$; sleep 5"]).assert_code(139);
        // SIGTERM to foxbox goes through the init to a fox without a handler.
        let mut child = spawn(
            &env,
            &["--init"],
            &["sh", "-c", "echo ready; exec sleep 30"],
        );
        let _out = wait_line(&mut child, "ready");
        kill(child.id(), libc::SIGTERM);
        assert_eq!(wait_code(child), 143, "{:?}", env.who);
    }
}

/// The init's command line is its own: nothing of the command line foxbox was started with
/// (its binary's path, bind sources, variables) is readable from the box.
#[test]
fn the_init_shows_no_host_command_line() {
    for env in envs() {
        let host_dir = env.work().join("host-side-dir");
        std::fs::create_dir_all(&host_dir).unwrap();
        let bind = format!("{}:/x", host_dir.display());
        let r = boxed(
            &env,
            &["--init", "-e", "API_TOKEN=hush-4711", "-v", &bind],
            &[
                "sh",
                "-c",
                "cat /proc/1/cmdline; echo; cat /proc/1/comm; cat /proc/1/environ 2>&1; \
                 cat /proc/1/status | grep ^Name",
            ],
        );
        r.ok();
        let bin = common::foxbox_bin();
        for leak in [
            "hush-4711",
            "API_TOKEN",
            &host_dir.display().to_string(),
            &bin.display().to_string(),
            "--init",
        ] {
            assert!(
                !r.stdout.contains(leak),
                "{:?}: {leak} in {:?}",
                env.who,
                r.stdout
            );
        }
        let first = r.stdout.lines().next().unwrap_or("");
        assert_eq!(first, "foxbox-init\0", "{:?}: {:?}", env.who, r.stdout);
        assert!(r.stdout.contains("Name:\tfoxbox-init"), "{}", r.stdout);
    }
}

#[test]
fn init_reaps_orphans_and_is_not_the_runtime_binary_reachable() {
    for env in envs() {
        // An orphan (the grandchild, re-parented to pid 1) is reaped: no zombie remains.
        let r = boxed(
            &env,
            &["--init"],
            &[
                "sh",
                "-c",
                "sh -c 'sleep 0.2 &' ; sleep 0.5; ps -o stat,comm | grep -c '^Z' || true; \
                 cat /proc/1/exe >/dev/null 2>&1 && echo EXE-OPEN; \
                 readlink /proc/1/exe >/dev/null 2>&1 && echo EXE-LINK; \
                 echo fds: $(ls /proc/1/fd 2>/dev/null); \
                 grep -h State /proc/1/status",
            ],
        );
        r.ok();
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines[0], "0", "{:?}: zombies: {}", env.who, r.stdout);
        assert!(!r.stdout.contains("EXE-"), "{:?}: {}", env.who, r.stdout);
        // The init holds no descriptor but stdio (as root the list is readable, as a user not).
        let fds = lines.iter().find(|l| l.starts_with("fds:")).unwrap();
        assert!(
            *fds == "fds: 0 1 2" || *fds == "fds:",
            "{:?}: {fds}",
            env.who
        );
        // Even with CAP_SYS_PTRACE the box cannot open its init's binary.
        let r = boxed(
            &env,
            &["--init", "--cap-add", "SYS_PTRACE"],
            &[
                "sh",
                "-c",
                "cat /proc/1/exe > /dev/null 2>&1 && echo EXE-OPEN; exit 0",
            ],
        );
        r.ok();
        assert!(!r.stdout.contains("EXE-OPEN"), "{:?}", env.who);
    }
}
