//! `foxbox system check [--repair]` through the binary, as root and as the unprivileged user:
//! each kind of leftover, made by hand, is reported with its kind word; `--repair` removes it
//! and says so; the store is clean afterwards. A problem that cannot be repaired (a missing
//! layer) stays reported, with exit code 1.

mod common;

use std::path::Path;

use common::{envs_with_busybox as envs, eventually, Who};

/// A pid that is no process's: a child that has been waited for.
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().expect("spawn");
    let pid = c.id();
    c.wait().expect("wait");
    pid
}

fn kill9(pid: i32) {
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn each_kind_of_leftover_is_reported_repaired_and_gone() {
    let ghost = "ab".repeat(32);
    let ghost2 = "cd".repeat(32);
    for env in envs() {
        env.run(["system", "check"]).ok();
        assert_eq!(env.run(["system", "check"]).stdout, "");
        env.run(["volume", "create", "v"]).ok();
        env.run(["run", "--name", "kept", "busybox", "true"]).ok();
        let kept = env.box_dirs()[0].clone();
        // A detached box whose supervisor is killed: recorded running, nothing of it lives.
        let mut a = vec!["run", "-d", "--name", "dead"];
        if env.who == Who::Root {
            a.extend(["--pids-limit", "64"]);
        }
        a.extend(["busybox", "sleep", "98771"]);
        env.run(&a).ok();
        let v: serde_json::Value =
            serde_json::from_str(&env.run(["inspect", "dead"]).stdout).expect("inspect");
        let sup = v[0]["State"]["SupervisorPid"].as_i64().expect("supervisor") as i32;
        let fox = v[0]["State"]["Pid"].as_i64().expect("pid") as i32;
        kill9(sup);
        eventually("the dead box's process to go", || {
            !Path::new(&format!("/proc/{fox}")).exists()
        });

        let s = env.store();
        let img = env.image_hex();
        let dead = dead_pid();
        let runtime = env.dir.join("runtime/foxbox");
        env.sh(&format!(
            "mkdir {s}/boxes/{ghost}
                 ln -s {ghost2} {s}/boxes/.names/ghostname
                 mkdir -p {s}/images/users/{img} {s}/images/users/{ghost2}
                 : > {s}/images/users/{img}/{ghost2}
                 : > {s}/volumes/v/users/{ghost2}
                 : > {s}/images/.tmp-index.json-AbC123
                 : > {kept}/.tmp-state.json-XyZ
                 mkdir -p {s}/boxes/.trash-{dead}-{ghost2}/rootfs
                 mkdir -p {runtime}/{short}
                 mkdir {s}/images/tmp/import-0123456789abcdef
                 mkdir {s}/images/layers/{ghost2}
                 : > {s}/images/blobs/sha256/{ghost2}
                 mkdir -p {s}/volumes/.tmp-{dead}-x/_data",
            s = s.display(),
            kept = kept.display(),
            runtime = runtime.display(),
            short = &ghost2[..12],
        ));
        let expect = [
            ("box-half-made", format!("boxes/{ghost}")),
            ("name-dangling", "boxes/.names/ghostname".to_string()),
            ("image-user-orphan", format!("images/users/{img}/{ghost2}")),
            ("image-user-orphan", format!("images/users/{ghost2}")),
            ("volume-user-orphan", format!("volumes/v/users/{ghost2}")),
            ("temp-file", "images/.tmp-index.json-AbC123".to_string()),
            ("temp-file", ".tmp-state.json-XyZ".to_string()),
            ("trash", format!("boxes/.trash-{dead}-{ghost2}")),
            (
                "runtime-orphan",
                format!("runtime/foxbox/{}", &ghost2[..12]),
            ),
            (
                "image-leftover",
                "images/tmp/import-0123456789abcdef".to_string(),
            ),
            ("layer-orphan", format!("images/layers/{ghost2}")),
            ("blob-orphan", format!("images/blobs/sha256/{ghost2}")),
            ("volume-leftover", format!("volumes/.tmp-{dead}-x")),
            ("box-dead", String::new()),
        ];
        let r = env.run(["system", "check"]);
        r.assert_code(1);
        for (kind, path) in &expect {
            assert!(
                r.stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("{kind} ")) && l.contains(path.as_str())),
                "{:?}: no `{kind} ...{path}` in\n{}",
                env.who,
                r.stdout
            );
        }
        if env.who == Who::Root {
            assert!(
                r.stdout.lines().any(|l| l.starts_with("cgroup ")),
                "{}",
                r.stdout
            );
        }
        // Only reported: nothing was changed.
        assert!(Path::new(&format!("{}/boxes/{ghost}", s.display())).exists());
        assert_eq!(env.run(["system", "check"]).stdout, r.stdout);

        let fixed = env.run(["system", "check", "--repair"]);
        fixed.ok();
        for l in r.stdout.lines() {
            assert!(
                fixed.stdout.contains(&format!("repaired {l}")),
                "{:?}: `{l}` not repaired:\n{}",
                env.who,
                fixed.stdout
            );
        }
        let after = env.run(["system", "check"]);
        after.ok();
        assert_eq!(after.stdout, "");
        // What was in use is still there and works.
        assert!(kept.join("config.json").exists());
        let ps = env.run(["ps", "-a"]);
        assert!(
            ps.stdout.contains("kept") && ps.stdout.contains("Exited (unknown)"),
            "{}",
            ps.stdout
        );
        env.run(["run", "--rm", "-v", "v:/v", "busybox", "true"])
            .ok();
        env.run(["rm", "kept", "dead"]).ok();
        env.run(["volume", "rm", "v"]).ok();
        env.run(["system", "check"]).ok();
    }
}

#[test]
fn a_missing_layer_is_reported_and_stays_so() {
    for env in envs() {
        let layers = env.store().join("images/layers");
        let layer = std::fs::read_dir(&layers)
            .expect("layers")
            .flatten()
            .next()
            .expect("a layer")
            .path();
        env.sh(&format!(
            "mv {} {}/../moved",
            layer.display(),
            layers.display()
        ));
        let r = env.run(["system", "check"]);
        r.assert_code(1);
        assert!(r.stdout.starts_with("layer-missing "), "{}", r.stdout);
        let fixed = env.run(["system", "check", "--repair"]);
        fixed.assert_code(1);
        assert!(
            fixed.stdout.starts_with("layer-missing "),
            "{}",
            fixed.stdout
        );
        env.sh(&format!(
            "mv {}/../moved {}",
            layers.display(),
            layer.display()
        ));
        env.run(["system", "check"]).ok();
    }
}

/// The children of `pid` whose command is `foxbox` and that lead a session of their own: a
/// `run --rm`'s reaper (it calls setsid(2) to leave the caller's terminal).
fn reapers_of(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        // After the comm: state, ppid, pgrp, session.
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok());
        if head.ends_with("(foxbox") && num(1) == Some(pid as i64) && num(3) == Some(p as i64) {
            out.push(p);
        }
    }
    out
}

/// `run --rm` leaves the deletion of the box's files to a reaper that outlives the CLI: while
/// the reaper lives (held stopped here, as a loaded machine may hold it), its trash is not an
/// interrupted deletion, and `system check` says nothing; once it runs on, nothing is left.
#[test]
fn a_run_rm_whose_reaper_is_slow_is_not_a_leftover() {
    for env in envs() {
        let mut cli = env
            .foxbox(["run", "--rm", "busybox", "sleep", "1"])
            .spawn()
            .expect("spawn");
        let mut reaper = Vec::new();
        eventually("the reaper is forked", || {
            reaper = reapers_of(cli.id());
            !reaper.is_empty()
        });
        for r in &reaper {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(*r, libc::SIGSTOP) };
        }
        assert!(cli.wait().expect("wait").success(), "{:?}", env.who);
        let r = env.run(["system", "check"]);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, ""),
            "{:?}: a live reaper's trash reported",
            env.who
        );
        for r in &reaper {
            // SAFETY: as above.
            unsafe { libc::kill(*r, libc::SIGCONT) };
        }
        eventually("the reaper deleted the box", || {
            reaper
                .iter()
                .all(|r| !Path::new(&format!("/proc/{r}")).exists())
        });
        env.run(["system", "check"]).ok();
        assert!(env.box_dirs().is_empty(), "{:?}", env.box_dirs());
    }
}
