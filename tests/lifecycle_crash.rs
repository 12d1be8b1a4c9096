//! Crash safety through the binary, as root (with a memory limit, so the box has cgroups) and
//! as the unprivileged user: kill -9 of a box's supervisor, and of the CLI at several moments
//! of `run -d`; afterwards `ps` tells the truth and `rm` leaves nothing of the box behind.

mod common;

use common::{envs_with_busybox as envs, eventually};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Env, Who};

/// Root boxes get a memory limit, hence cgroups to clean up.
fn limits(env: &Env) -> Vec<&'static str> {
    if env.who == Who::Root {
        vec!["-m", "64m"]
    } else {
        vec![]
    }
}

/// Cgroup directories of the box with this id, anywhere in the host's hierarchies.
fn cgroups_of(id: &str) -> Vec<String> {
    let out = Command::new("find")
        .args(["/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name"])
        .arg(format!("foxbox-{id}"))
        .stderr(Stdio::null())
        .output()
        .expect("find");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn ps_json(env: &Env) -> Vec<serde_json::Value> {
    let r = env.run(["ps", "-a", "--format", "json"]);
    r.ok();
    serde_json::from_str(&r.stdout).expect("ps prints JSON")
}

fn kill9(pid: i32) {
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn kill_9_of_the_supervisor_leaves_truthful_state_and_rm_cleans_up() {
    const CMD: &str = "sleep 98761";
    for env in envs() {
        let mut a = vec!["run", "-d", "--name", "orphan"];
        a.extend(limits(&env));
        a.extend(["busybox", "sleep", "98761"]);
        let r = env.run(&a);
        r.ok();
        let id = r.stdout.trim().to_string();
        let v: serde_json::Value =
            serde_json::from_str(&env.run(["inspect", "orphan"]).stdout).unwrap();
        let sup = v[0]["State"]["SupervisorPid"]
            .as_i64()
            .expect("a supervisor") as i32;
        let fox = v[0]["State"]["Pid"].as_i64().expect("a pid") as i32;
        assert!(Path::new(&format!("/proc/{sup}")).exists());
        if env.who == Who::Root {
            assert!(!cgroups_of(&id).is_empty(), "the box has cgroups");
        }
        kill9(sup);
        // The box dies with its supervisor; nothing may claim it still runs.
        eventually("the box's process to go", || {
            !Path::new(&format!("/proc/{fox}")).exists()
        });
        eventually("ps to show it exited", || {
            let ps = ps_json(&env);
            ps.len() == 1 && ps[0]["State"] == "exited"
        });
        assert!(!env.run(["ps"]).stdout.contains("orphan"));
        assert!(env.run(["ps", "-a"]).stdout.contains("Exited (unknown)"));
        env.run(["rm", "orphan"]).ok();
        assert!(env.box_dirs().is_empty());
        assert_eq!(cgroups_of(&id), Vec::<String>::new());
        assert_eq!(common::processes_running(CMD), Vec::<i32>::new());
        assert!(
            !env.dir.join("runtime/foxbox").join(&id[..12]).exists(),
            "runtime files removed"
        );
    }
}

#[test]
fn kill_9_of_the_cli_mid_start_then_ps_and_rm() {
    const CMD: &str = "sleep 98762";
    for env in envs() {
        let mut ids = Vec::new();
        for (i, delay_ms) in [0u64, 10, 40, 80, 130, 180, 250, 400]
            .into_iter()
            .enumerate()
        {
            let name = format!("crash{i}");
            let mut a = vec!["run".to_string(), "-d".into(), "--name".into(), name];
            a.extend(limits(&env).into_iter().map(String::from));
            a.extend(["busybox", "sleep", "98762"].map(String::from));
            let mut child = env
                .foxbox(&a)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            std::thread::sleep(Duration::from_millis(delay_ms));
            kill9(child.id() as i32);
            let _ = child.wait();
            // Whatever moment it died at, the listing is consistent with the processes.
            for b in ps_json(&env) {
                ids.push(b["Id"].as_str().unwrap().to_string());
                if b["State"] == "running" {
                    let pid = b["Pid"].as_i64();
                    assert!(
                        pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
                            || b["Status"].as_str().is_some_and(|s| s.starts_with("Up")),
                        "{b}"
                    );
                }
            }
        }
        let listed = env.run(["ps", "-a", "-q", "--no-trunc"]);
        listed.ok();
        let all: Vec<&str> = listed.stdout.lines().collect();
        if !all.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(&all);
            env.run(&a).ok();
        }
        assert!(env.box_dirs().is_empty(), "{:?}", env.box_dirs());
        assert_eq!(env.run(["ps", "-a", "-q"]).stdout, "");
        eventually("every box process to go", || {
            common::processes_running(CMD).is_empty()
        });
        ids.sort();
        ids.dedup();
        for id in &ids {
            assert_eq!(cgroups_of(id), Vec::<String>::new(), "box {id}");
        }
    }
}

/// `run --rm` in the foreground whose CLI is killed while its box runs: the box dies with it,
/// and the box is still removed, files and all (its reaper outlives the CLI).
#[test]
fn kill_9_of_a_foreground_rm_run_still_removes_its_box() {
    const CMD: &str = "sleep 98763";
    for env in envs() {
        let mut child = env
            .foxbox([
                "run", "--rm", "--name", "doomed", "busybox", "sleep", "98763",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        eventually("the box to run", || {
            !common::processes_running(CMD).is_empty()
        });
        assert_eq!(env.box_dirs().len(), 1, "{:?}", env.box_dirs());
        kill9(child.id() as i32);
        let _ = child.wait();
        eventually("the box's processes to go", || {
            common::processes_running(CMD).is_empty()
        });
        eventually("the box to be removed", || {
            env.box_dirs().is_empty()
                && std::fs::read_dir(env.store().join("boxes"))
                    .map(|rd| {
                        rd.flatten()
                            .all(|e| !e.file_name().to_string_lossy().starts_with(".trash"))
                    })
                    .unwrap_or(true)
        });
        assert_eq!(env.run(["ps", "-a", "-q"]).stdout, "");
        // Its name is free again.
        env.run(["run", "--rm", "--name", "doomed", "busybox", "true"])
            .ok();
    }
}

/// A foreground box is recorded once its fox runs. When that record cannot be written (here
/// the store's filesystem is full), the fox's run stands, foxbox says why, the box leaves
/// nothing behind, and foxbox does not hang on its own staging lock. As root and as the
/// unprivileged user; root mounts the small tmpfs that fills up, owned by the user it is for.
#[test]
fn a_record_that_cannot_be_written_leaves_nothing_and_no_hang() {
    if !common::root_or_skip("mounting a tmpfs needs root") {
        return;
    }
    for who in [Who::Root, Who::User] {
        eprintln!("--- as {who:?}");
        record_fails_on_a_full_store(&Env::new(who));
    }
}

fn record_fails_on_a_full_store(env: &Env) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mnt = dir.path().join("full");
    std::fs::create_dir(&mnt).unwrap();
    let (uid, gid) = env.ids();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("size=16m,mode=0755,uid={uid},gid={gid}"))
        .arg("tmpfs")
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success(), "mount a tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    let root = mnt.join("store");
    let with_root = |args: &[&str]| {
        let mut v = vec!["--root".to_string(), root.display().to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    let tar = common::busybox_tarball().display().to_string();
    env.run(with_root(&["image", "import", "--name", "bb", &tar]))
        .ok();
    // One box first, while there is room: the store's one-time overlay probe writes a file.
    env.run(with_root(&["run", "--rm", "bb", "true"])).ok();
    // Its files are deleted by its reaper after the CLI exits: space freed after the fill
    // would let the record be written after all.
    eventually("the first box's files to be deleted", || {
        std::fs::read_dir(root.join("boxes")).is_ok_and(|rd| {
            rd.flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with(".trash"))
        })
    });
    // Fill the filesystem.
    let mut fill = std::fs::File::create(mnt.join("fill")).unwrap();
    let block = vec![0u8; 1 << 16];
    while std::io::Write::write_all(&mut fill, &block).is_ok() {}
    drop(fill);

    for extra in [&[][..], &["--rm"][..]] {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend(["--name", "unrecorded", "bb", "sh", "-c", "echo ran"]);
        let mut child = env
            .foxbox(with_root(&args))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("foxbox {args:?} hung with its record unwritten");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
        assert!(
            stderr.contains("could not record box"),
            "{args:?}: {stderr}"
        );
        let r = env.run(with_root(&["ps", "-a", "-q"]));
        r.ok();
        assert_eq!(r.stdout, "", "{args:?}");
        let left: Vec<String> = std::fs::read_dir(root.join("boxes"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| ![".names", ".names.lock", ".mnt"].contains(&n.as_str()))
            .collect();
        assert!(left.is_empty(), "{args:?}: left {left:?}");
        assert!(root
            .join("boxes/.names")
            .read_dir()
            .unwrap()
            .next()
            .is_none());
    }
}

/// `run -d --name N -v V:/v` killed a few milliseconds in leaves a staged box directory, its
/// name, and its image and volume markers (made here as such a kill leaves them, which a kill
/// hits only now and then): the first command that sweeps the directory sweeps them too.
#[test]
fn a_box_killed_before_its_record_leaves_no_name_or_markers() {
    for env in envs() {
        env.run(["volume", "create", "v"]).ok();
        let id = "ef".repeat(32);
        let s = env.store();
        env.sh(&format!(
            "mkdir -p {s}/boxes/.names {s}/boxes/{id}
             ln -s {id} {s}/boxes/.names/half
             mkdir -p {s}/images/users/{img}
             : > {s}/images/users/{img}/{id}
             : > {s}/volumes/v/users/{id}",
            s = s.display(),
            img = env.image_hex(),
        ));
        env.run(["ps", "-a"]).ok();
        let left: Vec<_> = [
            format!("boxes/{id}"),
            "boxes/.names/half".to_string(),
            format!("images/users/{}/{id}", env.image_hex()),
            format!("volumes/v/users/{id}"),
        ]
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(s.join(p)).is_ok())
        .collect();
        assert!(left.is_empty(), "{:?}: left after ps -a: {left:?}", env.who);
        env.run(["system", "check"]).ok();
        // The volume is free and the name too.
        env.run(["run", "--rm", "--name", "half", "busybox", "true"])
            .ok();
        env.run(["volume", "rm", "v"]).ok();
    }
}

/// `rm -f` killed right after it moved a box to trash leaves `boxes/.trash-PID-ID` (made here
/// as that kill leaves it), with files of the box's subordinate ids that only the store's user
/// namespace can delete: the next command that sweeps deletes it, rootless as well as root.
#[test]
fn trash_left_by_a_killed_rm_is_swept_for_every_user() {
    for env in envs() {
        env.run([
            "run",
            "--name",
            "t",
            "busybox",
            "sh",
            "-c",
            "mkdir /d && touch /d/f && chown -R 1000:1000 /d && chmod 700 /d",
        ])
        .ok();
        let dir = env.box_dirs()[0].clone();
        let id = dir.file_name().unwrap().to_string_lossy().into_owned();
        // What `rm` releases before it moves the box away.
        std::fs::remove_file(env.store().join("boxes/.names/t")).expect("name");
        let img = env.store().join("images/users").join(env.image_hex());
        std::fs::remove_file(img.join(&id)).expect("marker");
        let mut c = std::process::Command::new("true").spawn().expect("spawn");
        let dead = c.id();
        c.wait().expect("wait");
        let trash = env.store().join(format!("boxes/.trash-{dead}-{id}"));
        std::fs::rename(&dir, &trash).expect("to trash");
        env.run(["ps", "-a"]).ok();
        assert!(!trash.exists(), "{:?}: {} left", env.who, trash.display());
        env.run(["system", "check"]).ok();
    }
}

/// A detached box whose supervisor is killed: the next command that notices finishes what the
/// supervisor would have done. A `--rm` box is removed (its name is free again); another is
/// recorded as exited and gives up its cgroup and runtime files.
#[test]
fn a_dead_supervisors_box_is_finished_by_the_next_command() {
    const CMD: &str = "sleep 98764";
    for env in envs() {
        let mut fox = Vec::new();
        let mut ids = Vec::new();
        for (name, rm) in [("gone", true), ("kept", false)] {
            let mut a = vec!["run", "-d", "--name", name];
            if rm {
                a.push("--rm");
            }
            a.extend(limits(&env));
            a.extend(["busybox", "sleep", "98764"]);
            let r = env.run(&a);
            r.ok();
            ids.push(r.stdout.trim().to_string());
            let v: serde_json::Value =
                serde_json::from_str(&env.run(["inspect", name]).stdout).unwrap();
            kill9(
                v[0]["State"]["SupervisorPid"]
                    .as_i64()
                    .expect("a supervisor") as i32,
            );
            fox.push(v[0]["State"]["Pid"].as_i64().expect("a pid") as i32);
        }
        eventually("the boxes' processes to go", || {
            fox.iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
        });
        let ps = env.run(["ps", "-a"]);
        ps.ok();
        assert!(!ps.stdout.contains("gone"), "{:?}: {}", env.who, ps.stdout);
        assert!(ps.stdout.contains("kept"), "{}", ps.stdout);
        for id in &ids {
            assert_eq!(cgroups_of(id), Vec::<String>::new(), "box {id}");
        }
        env.run(["system", "check"]).ok();
        env.run(["run", "--rm", "--name", "gone", "busybox", "true"])
            .ok();
        env.run(["rm", "kept"]).ok();
        // rm of such a box, first to notice: it is removed, and rm says so.
        env.run([
            "run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "98764",
        ])
        .ok();
        let v: serde_json::Value =
            serde_json::from_str(&env.run(["inspect", "gone"]).stdout).unwrap();
        kill9(
            v[0]["State"]["SupervisorPid"]
                .as_i64()
                .expect("a supervisor") as i32,
        );
        let fox = v[0]["State"]["Pid"].as_i64().expect("a pid");
        eventually("the box's process to go", || {
            !Path::new(&format!("/proc/{fox}")).exists()
        });
        assert_eq!(env.run(["rm", "gone"]).ok().stdout, "gone\n");
        assert!(env.box_dirs().is_empty(), "{:?}", env.box_dirs());
        assert_eq!(common::processes_running(CMD), Vec::<i32>::new());
    }
}

/// Parallel `rm -f` of one box: one removes it, every other says "no such box" (never a raw
/// system error such as "No such file or directory (os error 2)").
#[test]
fn losing_parallel_removals_say_no_such_box() {
    for env in envs() {
        for round in 0..6 {
            let name = format!("race{round}");
            env.run(["run", "-d", "--name", &name, "busybox", "sleep", "98765"])
                .ok();
            let children: Vec<_> = (0..8)
                .map(|_| {
                    env.foxbox(["rm", "-f", &name])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("spawn")
                })
                .collect();
            let runs: Vec<common::Run> = children
                .into_iter()
                .map(|c| common::Run::from(c.wait_with_output().expect("wait")))
                .collect();
            assert_eq!(
                runs.iter().filter(|r| r.code == 0).count(),
                1,
                "{:?}: {runs:?}",
                env.who
            );
            for r in runs.iter().filter(|r| r.code != 0) {
                assert!(
                    r.stderr.contains("no such box") && !r.stderr.contains("os error"),
                    "{:?}: {}",
                    env.who,
                    r.stderr
                );
            }
        }
        assert!(env.box_dirs().is_empty());
        env.run(["system", "check"]).ok();
    }
}

/// Boxes start while `ps -a` sweeps half-made boxes over and over: a box being staged is
/// never taken for one a crash left (every start succeeds, nothing is left).
#[test]
fn sweeps_beside_starting_boxes_take_none_of_them() {
    use std::sync::atomic::{AtomicBool, Ordering};
    for env in envs() {
        let stop = AtomicBool::new(false);
        let runs: Vec<common::Run> = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = env.run(["ps", "-a"]);
                }
            });
            let mut runs = Vec::new();
            for _ in 0..4 {
                let children: Vec<_> = (0..6)
                    .map(|_| {
                        env.foxbox(["run", "--rm", "busybox", "true"])
                            .stdout(Stdio::piped())
                            .stderr(Stdio::piped())
                            .spawn()
                            .expect("spawn")
                    })
                    .collect();
                for c in children {
                    runs.push(common::Run::from(c.wait_with_output().expect("wait")));
                }
            }
            stop.store(true, Ordering::Relaxed);
            runs
        });
        let failed: Vec<_> = runs.iter().filter(|r| r.code != 0).collect();
        assert!(failed.is_empty(), "{:?}: {failed:?}", env.who);
        eventually("every box to be deleted", || {
            env.store_leftovers().is_empty()
        });
        env.run(["system", "check"]).ok();
    }
}
