//! Detached boxes through the binary, as root and as the unprivileged user: `run -d` under a
//! supervisor, ps, logs (both streams, -f, --tail, --since, -t), wait, inspect, top, stop,
//! kill, rm, --rm, synchronous start failures, and the parallel-name race.

mod common;

use common::{envs_with_busybox as envs, eventually};

use std::path::PathBuf;
use std::process::Stdio;

use common::{Env, Run};

/// `foxbox run -d FLAGS busybox CMD...`; returns the printed id.
fn detach(env: &Env, flags: &[&str], cmd: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend(flags);
    a.push("busybox");
    a.extend(cmd);
    let r = env.run(&a);
    r.ok();
    let id = r.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "a full id: {r:?}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{r:?}");
    id
}

fn inspect(env: &Env, name: &str) -> serde_json::Value {
    let r = env.run(["inspect", name]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("inspect prints JSON");
    v[0].clone()
}

#[test]
fn a_detached_box_logs_both_streams_and_its_exit() {
    for env in envs() {
        let id = detach(
            &env,
            &["--name", "web"],
            &[
                "sh",
                "-c",
                "echo out1; echo err1 >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; \
                 echo out2; exit 3",
            ],
        );
        let ps = env.run(["ps"]);
        ps.ok();
        let line = ps.stdout.lines().find(|l| l.contains("web")).unwrap_or("");
        assert!(line.starts_with(&id[..12]), "{}", ps.stdout);
        assert!(line.contains("Up "), "{}", ps.stdout);
        assert_eq!(env.run(["ps", "-q", "--no-trunc"]).stdout.trim(), id);

        // `logs -f` started now ends by itself once the box exits.
        let follower = env
            .foxbox(["logs", "-f", "web"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn logs -f");
        eventually("the first lines in the log", || {
            let r = env.run(["logs", "web"]);
            r.stdout == "out1\n" && r.stderr == "err1\n"
        });
        let st = inspect(&env, "web");
        assert_eq!(st["State"]["Status"], "running");
        assert!(st["State"]["SupervisorPid"].as_i64().is_some(), "{st}");
        assert!(PathBuf::from(st["Paths"]["Log"].as_str().unwrap()).is_file());

        env.run(["exec", "web", "touch", "/tmp/go"]).ok();
        let w = env.run(["wait", &id[..8]]);
        w.ok();
        assert_eq!(w.stdout.trim(), "3");
        let f = Run::from(follower.wait_with_output().expect("logs -f ends"));
        f.ok();
        assert_eq!(f.stdout, "out1\nout2\n");
        assert_eq!(f.stderr, "err1\n");

        assert_eq!(env.run(["logs", "--tail", "1", "web"]).stdout, "out2\n");
        let t = env.run(["logs", "-t", "web"]);
        for l in t.stdout.lines() {
            let (time, text) = l.split_once(' ').unwrap();
            assert!(time.ends_with('Z') && time.contains('T'), "{l}");
            assert!(text.starts_with("out"), "{l}");
        }
        assert_eq!(
            env.run(["logs", "--since", "1h", "web"]).stdout,
            "out1\nout2\n"
        );
        assert_eq!(
            env.run(["logs", "--since", "2999-01-01T00:00:00Z", "web"])
                .stdout,
            ""
        );

        let ps = env.run(["ps", "-a"]);
        assert!(ps.stdout.contains("Exited (3)"), "{}", ps.stdout);
        assert!(!env.run(["ps"]).stdout.contains("web"));
        let st = inspect(&env, "web");
        assert_eq!(st["State"]["Status"], "exited");
        assert_eq!(st["State"]["ExitCode"], 3);
        assert!(st["State"]["FinishedAt"].is_string());
        env.run(["rm", "web"]).ok();
        assert!(env.box_dirs().is_empty());
    }
}

#[test]
fn exec_joins_the_box_and_keeps_its_limits() {
    for env in envs() {
        detach(
            &env,
            &["--name", "den", "-e", "FROM_BOX=1"],
            &["sh", "-c", "sleep 1000 & wait"],
        );
        let r = env.run([
            "exec",
            "den",
            "sh",
            "-c",
            "echo $$; hostname; echo $FROM_BOX; grep CapEff /proc/self/status; \
             grep CapEff /proc/1/status; ls /proc | grep -c '^[0-9]'",
        ]);
        r.ok();
        let l: Vec<&str> = r.stdout.lines().collect();
        let pid: i32 = l[0].parse().unwrap();
        assert!(pid < 10, "a pid of the box's namespace, got {pid}");
        assert_eq!(l[1], "den");
        assert_eq!(l[2], "1");
        assert_eq!(
            l[3].replace("CapEff:", "").trim(),
            l[4].replace("CapEff:", "").trim()
        );
        let procs: usize = l[5].parse().unwrap();
        assert!(procs < 10, "sees only the box's processes: {procs}");

        let r = env.run([
            "exec",
            "-e",
            "A=b c",
            "-w",
            "/etc",
            "-u",
            "1000:1000",
            "den",
            "sh",
            "-c",
            "echo $A; pwd; id -u; grep CapEff /proc/self/status",
        ]);
        r.ok();
        assert!(r.stdout.starts_with("b c\n/etc\n1000\n"), "{}", r.stdout);
        env.run(["exec", "den", "sh", "-c", "exit 5"])
            .assert_code(5);
        let r = env.run(["exec", "den", "no-such-cmd"]);
        r.assert_code(127);
        assert!(r.stderr.contains("no-such-cmd"), "{}", r.stderr);
        env.run(["exec", "den", "/etc/passwd"]).assert_code(126);
        let r = env.run(["exec", "-w", "/nope", "den", "true"]);
        r.assert_code(125);
        assert!(r.stderr.contains("/nope"), "{}", r.stderr);

        let top = env.run(["top", "den"]);
        top.ok();
        assert!(
            top.stdout.contains("sh -c sleep 1000 & wait"),
            "{}",
            top.stdout
        );
        assert!(
            top.stdout.lines().any(|l| l.ends_with("sleep 1000")),
            "{}",
            top.stdout
        );

        // A box with fewer capabilities: exec gets no more than it.
        detach(
            &env,
            &["--name", "bare", "--cap-drop", "ALL"],
            &["sleep", "1000"],
        );
        let r = env.run([
            "exec",
            "bare",
            "grep",
            "-E",
            "Cap(Eff|Prm|Bnd)",
            "/proc/self/status",
        ]);
        r.ok();
        for l in r.stdout.lines() {
            assert!(l.ends_with("0000000000000000"), "{}", r.stdout);
        }
        env.run(["rm", "-f", "den", "bare"]).ok();
        env.run(["exec", "den", "true"]).assert_code(125);
        assert!(env.box_dirs().is_empty());
    }
}

#[test]
fn stop_kill_rm_and_wait() {
    for env in envs() {
        detach(
            &env,
            &["--name", "stubborn"],
            &["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"],
        );
        let r = env.run(["rm", "stubborn"]);
        r.assert_code(125);
        assert!(r.stderr.contains("is running"), "{}", r.stderr);
        assert_eq!(inspect(&env, "stubborn")["State"]["Status"], "running");
        env.run(["stop", "-t", "1s", "stubborn"]).ok();
        assert_eq!(env.run(["wait", "stubborn"]).stdout.trim(), "137");
        assert!(env.run(["ps", "-a"]).stdout.contains("Exited (137)"));

        detach(
            &env,
            &["--name", "sig"],
            &[
                "sh",
                "-c",
                "trap 'exit 42' USR1; while :; do sleep 0.1; done",
            ],
        );
        env.run(["kill", "-s", "USR1", "sig"]).ok();
        assert_eq!(env.run(["wait", "sig"]).stdout.trim(), "42");
        let r = env.run(["kill", "sig"]);
        r.assert_code(125);
        assert!(r.stderr.contains("not running"), "{}", r.stderr);

        detach(&env, &["--name", "forced"], &["sleep", "1000"]);
        env.run(["rm", "-f", "forced"]).ok();
        env.run(["rm", "stubborn", "sig"]).ok();
        assert!(env.box_dirs().is_empty());
    }
}

#[test]
fn rm_boxes_leave_nothing_and_failed_starts_keep_their_reason() {
    for env in envs() {
        detach(
            &env,
            &["--rm", "--name", "brief"],
            &["sh", "-c", "echo bye"],
        );
        eventually("the --rm box to go", || env.box_dirs().is_empty());
        assert_eq!(env.run(["ps", "-a", "-q"]).stdout, "");

        let r = env.run(["run", "-d", "--rm", "-w", "/etc/passwd", "busybox", "true"]);
        r.assert_code(125);
        assert!(r.stderr.contains("workdir"), "{}", r.stderr);
        assert!(r.stderr.contains("/etc/passwd"), "{}", r.stderr);
        assert_eq!(r.stdout, "");
        let r = env.run(["run", "-d", "--rm", "busybox", "no-such-cmd"]);
        r.assert_code(127);
        assert!(r.stderr.contains("no-such-cmd"), "{}", r.stderr);
        env.run(["run", "-d", "--rm", "busybox", "/etc/passwd"])
            .assert_code(126);
        assert!(env.box_dirs().is_empty(), "{:?}", env.box_dirs());
        assert_eq!(env.run(["ps", "-a", "-q"]).stdout, "");

        // Without --rm a failed start keeps the box, exited, with the reason (as podman and
        // a foreground box do), and `rm` takes it.
        for (name, args, code, why) in [
            (
                "nowd",
                &["-w", "/etc/passwd", "busybox", "true"][..],
                125,
                "/etc/passwd",
            ),
            ("nocmd", &["busybox", "no-such-cmd"][..], 127, "no-such-cmd"),
        ] {
            let mut cmd = vec!["run", "-d", "--name", name];
            cmd.extend_from_slice(args);
            let r = env.run(cmd);
            r.assert_code(code);
            assert!(r.stderr.contains(why), "{}", r.stderr);
            assert_eq!(r.stdout, "");
            let i = env.run(["inspect", name]);
            i.ok();
            let i: serde_json::Value = serde_json::from_str(&i.stdout).unwrap();
            assert_eq!(i[0]["State"]["Status"], "exited", "{i}");
            assert_eq!(i[0]["State"]["ExitCode"], code, "{i}");
            let error = i[0]["State"]["Error"].as_str().unwrap_or("");
            assert!(error.contains(why), "{i}");
            assert_eq!(env.run(["wait", name]).stdout.trim(), code.to_string());
        }
        assert_eq!(env.run(["ps", "-a", "-q"]).stdout.lines().count(), 2);
        env.run(["rm", "nowd", "nocmd"]).ok();
        assert!(env.box_dirs().is_empty(), "{:?}", env.box_dirs());
    }
}

/// `run --rm` in the foreground: the box is gone when the command returns (its name free at
/// once), and its files, even those a box user owns (subordinate ids, rootless), are deleted
/// in the background soon after. Failed starts leave nothing either.
#[test]
fn a_foreground_rm_box_is_gone_at_once_and_its_files_soon_after() {
    for env in envs() {
        let r = env.run([
            "run",
            "--rm",
            "--name",
            "fleeting",
            "busybox",
            "sh",
            "-c",
            "mkdir -p /data/deep && echo x > /data/deep/f && chown -R 1000:1000 /data \
             && chmod 000 /data/deep && echo done",
        ]);
        r.ok();
        assert_eq!(r.stdout, "done\n");
        assert!(env.box_dirs().is_empty(), "{:?}", env.box_dirs());
        assert_eq!(env.run(["ps", "-a", "-q"]).stdout, "");
        env.run(["run", "--rm", "--name", "fleeting", "busybox", "true"])
            .ok();
        eventually("the trash to be deleted", || {
            env.store_leftovers().is_empty()
        });

        env.run(["run", "--rm", "busybox", "no-such-cmd"])
            .assert_code(127);
        env.run([
            "run",
            "--name",
            "failed",
            "-w",
            "/etc/passwd",
            "busybox",
            "true",
        ])
        .assert_code(125);
        // Without --rm a box that failed to start stays, with why (recorded at the failure:
        // a foreground box is recorded once its fox runs).
        let i = env.run(["inspect", "failed"]);
        i.ok();
        let i: serde_json::Value = serde_json::from_str(&i.stdout).unwrap();
        assert_eq!(i[0]["State"]["ExitCode"], 125, "{i}");
        assert!(
            i[0]["State"]["Error"]
                .as_str()
                .unwrap_or("")
                .contains("/etc/passwd"),
            "{i}"
        );
        env.run(["rm", "failed"]).ok();
        eventually("failed starts to leave nothing", || {
            env.store_leftovers()
                .iter()
                .all(|n| !n.starts_with(".trash"))
        });
        let ps = env.run(["ps", "-a", "--format", "json"]);
        ps.ok();
        let listed: serde_json::Value = serde_json::from_str(&ps.stdout).unwrap();
        let names: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["Names"].as_str().or(b["Name"].as_str()))
            .collect();
        assert!(!names.iter().any(|n| n.contains("fleeting")), "{names:?}");
    }
}

/// `wait` on a `--rm` box prints its exit code though the box is gone when it ends, detached
/// or in the foreground elsewhere; afterwards a detached box's id (not its name) still finds
/// the code.
#[test]
fn wait_learns_the_exit_of_an_rm_box() {
    const HOLD: &str = "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit ";
    for env in envs() {
        let id = detach(
            &env,
            &["--rm", "--name", "brief"],
            &["sh", "-c", &format!("{HOLD}5")],
        );
        let fg = env
            .foxbox(["run", "--rm", "--name", "front", "busybox", "sh", "-c"])
            .arg(format!("{HOLD}9"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn run --rm");
        eventually("the foreground box to run", || {
            let r = env.run(["inspect", "front"]);
            r.code == 0 && r.stdout.contains("\"running\"")
        });
        let waiters: Vec<_> = ["brief", "front"]
            .into_iter()
            .map(|name| {
                env.foxbox(["wait", name])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn wait")
            })
            .collect();
        // Both waiters have found their box (and poll its record) before it ends.
        std::thread::sleep(std::time::Duration::from_millis(300));
        for name in ["brief", "front"] {
            env.run(["exec", name, "touch", "/tmp/go"]).ok();
        }
        let codes: Vec<String> = waiters
            .into_iter()
            .map(|w| {
                let out = w.wait_with_output().expect("wait for wait");
                assert!(out.status.success(), "{out:?}");
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            })
            .collect();
        assert_eq!(codes, ["5", "9"]);
        let mut fg = fg;
        assert_eq!(fg.wait().expect("run --rm").code(), Some(9));
        eventually("the --rm boxes to go", || env.box_dirs().is_empty());

        assert_eq!(env.run(["wait", &id]).stdout.trim(), "5");
        assert_eq!(env.run(["wait", &id[..12]]).stdout.trim(), "5");
        let r = env.run(["wait", "brief"]);
        r.assert_code(125);
        assert!(r.stderr.contains("brief"), "{}", r.stderr);
    }
}

#[test]
fn twenty_parallel_runs_with_one_name_make_one_box() {
    for env in envs() {
        let children: Vec<_> = (0..20)
            .map(|_| {
                env.foxbox(["run", "-d", "--name", "same", "busybox", "sleep", "1000"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        let runs: Vec<Run> = children
            .into_iter()
            .map(|c| Run::from(c.wait_with_output().expect("wait")))
            .collect();
        let ok: Vec<&Run> = runs.iter().filter(|r| r.code == 0).collect();
        assert_eq!(ok.len(), 1, "{runs:#?}");
        for r in runs.iter().filter(|r| r.code != 0) {
            r.assert_code(125);
            assert!(r.stderr.contains("already in use"), "{}", r.stderr);
        }
        assert_eq!(env.box_dirs().len(), 1);
        let ps = env.run(["ps", "-q", "--no-trunc"]);
        assert_eq!(ps.stdout.trim(), ok[0].stdout.trim());
        env.run(["rm", "-f", "same"]).ok();
        assert!(env.box_dirs().is_empty());
    }
}

#[test]
fn up_detached_from_a_spec_honours_its_timeout() {
    for env in envs() {
        let spec = env.write(
            "timed/Foxbox.toml",
            "[box]\nname = \"timed\"\nimage = \"busybox\"\n\
             command = [\"sh\", \"-c\", \"echo started; trap 'echo bye; exit 3' TERM; \
             while :; do sleep 0.1; done\"]\n\n[limits]\ntimeout = \"1s\"\n",
        );
        let r = env.run(["up", "-d", spec.to_str().unwrap()]);
        r.ok();
        assert_eq!(r.stdout.trim().len(), 64, "{r:?}");
        let w = env.run(["wait", "timed"]);
        w.ok();
        // The box's pid 1 traps SIGTERM from the timeout and exits 3 by itself.
        assert_eq!(w.stdout.trim(), "3", "{w:?}");
        let state = &inspect(&env, "timed")["State"];
        assert_eq!(state["TimedOut"], true, "{state}");
        let logs = env.run(["logs", "timed"]);
        assert_eq!(logs.stdout, "started\nbye\n", "{logs:?}");
        let ps = env.run(["ps", "-a"]);
        assert!(ps.stdout.contains("(timed out)"), "{}", ps.stdout);
        env.run(["rm", "timed"]).ok();
    }
}

/// Runtime files (a detached `--rm` box's kept exit code; rootless, the id holder's record)
/// live on the runtime tmpfs, `$XDG_RUNTIME_DIR`, also for a store named by `FOXBOX_ROOT`,
/// in a directory of that store's own: none under the store, none shared with the default
/// store's.
#[test]
fn runtime_files_of_an_explicit_root_are_under_the_runtime_dir() {
    for env in common::envs() {
        let root = env.work().join("altroot");
        let fox = |args: &[&str]| {
            let mut c = env.foxbox(args);
            c.env("FOXBOX_ROOT", &root);
            Run::from(c.output().expect("foxbox"))
        };
        let tar = common::busybox_tarball();
        fox(&[
            "image",
            "import",
            "--name",
            "busybox",
            tar.to_str().unwrap(),
        ])
        .ok();
        let id = fox(&["run", "-d", "--rm", "busybox", "sh", "-c", "exit 3"]);
        id.ok();
        let code = fox(&["wait", id.stdout.trim()]);
        code.ok();
        assert_eq!(code.stdout.trim(), "3");
        assert!(
            !root.join("run").exists(),
            "{:?}: runtime files under the store",
            env.who
        );
        let mine: Vec<String> = std::fs::read_dir(env.dir.join("runtime"))
            .expect("runtime dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("foxbox-"))
            .collect();
        assert_eq!(mine.len(), 1, "{:?}: {mine:?}", env.who);
        assert!(
            env.dir
                .join("runtime")
                .join(&mine[0])
                .join("exits")
                .is_dir(),
            "{:?}",
            env.who
        );
    }
}
