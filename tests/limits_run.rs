//! Resource limits through the real binary: `foxbox run -m/--cpus/--pids-limit/--timeout
//! --cgroup-parent` and a spec's `[limits]` through `foxbox up`, as root and as the
//! unprivileged user given a delegated cgroup subtree (made here, removed afterwards), plus
//! the refusal (and the best-effort warning) without delegation, and `foxbox stats`.
//!
//! Works on cgroup v1 (this host: memory, cpu, cpuacct, pids are v1 hierarchies) and v2
//! (tests/vm/limits-v2.sh runs it in a v2-only VM with FOXBOX_CGROUP_EXPECT=v2).

mod common;

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_tarball, Env, Run, Who};
use foxbox::cgroup::{Controller, Host, Node, Version};

// ---------------------------------------------------------------------------------------------
// A delegated cgroup parent per test.

/// A parent cgroup made for one test in each hierarchy foxbox uses; for the unprivileged user
/// delegated the way an administrator does it (v1: the directory and its cgroup.procs/tasks
/// chowned; v2: controllers enabled, the subtree chowned, the user's process put in a leaf
/// below it). Everything in it is killed and removed on drop.
struct Parent {
    /// Relative to each hierarchy's root: what `--cgroup-parent` takes.
    name: String,
    dirs: Vec<(Version, PathBuf)>,
    /// v2, unprivileged: the leaf foxbox itself must run in (the common ancestor of its cgroup
    /// and the box's must be delegated).
    leaf: Option<PathBuf>,
}

fn host() -> Host {
    let h = Host::detect().expect("read the cgroup layout");
    if let Ok(want) = std::env::var("FOXBOX_CGROUP_EXPECT") {
        for c in [Controller::Memory, Controller::Cpu, Controller::Pids] {
            let got = h.hierarchy(c).expect("controller").version.to_string();
            assert_eq!(got, want, "{c} is on cgroup {got}, the test expects {want}");
        }
    }
    h
}

/// Whether the limits tests can run here: as root (to delegate), with the controllers.
fn available() -> bool {
    if !common::root_or_skip("the limits tests delegate cgroups and must run as root") {
        return false;
    }
    let h = host();
    let missing: Vec<_> = [Controller::Memory, Controller::Cpu, Controller::Pids]
        .into_iter()
        .filter(|c| h.find(*c).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!("SKIP: controllers {missing:?} are not available here");
        return false;
    }
    true
}

impl Parent {
    fn new(env: &Env, tag: &str) -> Parent {
        let host = host();
        let name = format!("foxbox-test-{}-{tag}", std::process::id());
        let mut p = Parent {
            name: name.clone(),
            dirs: Vec::new(),
            leaf: None,
        };
        let user = (env.who != Who::Root).then(|| env.ids());
        let mut seen = Vec::new();
        for c in Controller::ALL {
            let Some(h) = host.find(c) else { continue };
            if seen.contains(&h) {
                continue;
            }
            seen.push(h);
            let hi = &host.hierarchies[h];
            let dir = hi.mount.join(&name);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            p.dirs.push((hi.version, dir.clone()));
            let Some(ids) = user else { continue };
            let leaf =
                common::delegate_cgroup(&dir, hi.version, &hi.controllers, ids, "foxbox-cli");
            if hi.version == Version::V2 {
                p.leaf = Some(leaf);
            }
        }
        p
    }

    /// The box cgroups below the parent (the v2 leaf foxbox runs in is not one).
    fn children(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (_, d) in &self.dirs {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != "foxbox-cli" {
                    out.push(e.path());
                }
            }
        }
        out
    }

    /// `foxbox ARGS` as the env's user, in the delegated leaf on v2.
    fn foxbox<I, S>(&self, env: &Env, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = env.foxbox(args);
        if let Some(leaf) = &self.leaf {
            let procs = CString::new(
                leaf.join("cgroup.procs")
                    .into_os_string()
                    .into_encoded_bytes(),
            )
            .expect("path");
            // SAFETY: between fork and exec only open/write/close on memory made before the
            // fork; "0" moves the writing process itself.
            unsafe {
                c.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                    Ok(())
                });
            }
        }
        c
    }

    fn run<I, S>(&self, env: &Env, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = self.foxbox(env, args);
        Run::from(c.output().unwrap_or_else(|e| panic!("run {c:?}: {e}")))
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for (v, d) in self.dirs.iter().rev() {
            let node = Node::new(*v, d.clone());
            let _ = node.ops().kill_all(Duration::from_secs(10));
            let _ = node.ops().remove(Duration::from_secs(10));
        }
        for (_, d) in &self.dirs {
            if d.exists() {
                eprintln!("LEFT BEHIND: {}", d.display());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn tar() -> String {
    busybox_tarball().to_str().expect("utf-8 path").to_string()
}

/// `run` flags that put the box under the test's parent.
fn run_args<'a>(p: &'a Parent, extra: &[&'a str]) -> Vec<String> {
    let mut v = vec!["run".to_string(), "--cgroup-parent".into(), p.name.clone()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// A box started in the background (`foxbox run` attached, as podman without -d).
struct Background {
    child: Child,
}

impl Background {
    fn start(p: &Parent, env: &Env, args: Vec<String>) -> Background {
        let child = p
            .foxbox(env, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn foxbox run");
        Background { child }
    }

    /// What an ended `run` printed.
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let mut out = String::new();
        if let Some(o) = self.child.stdout.as_mut() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut out);
        }
        out
    }

    fn finish(self) -> Run {
        let c = self.child;
        Run::from(c.wait_with_output().expect("wait for foxbox run"))
    }
}

/// `foxbox stats --format json NAME` once the box runs (polls up to 60 s: the v2 VM is slow).
fn stats(env: &Env, name: &str, bg: &mut Background) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let r = env.run(["stats", "--format", "json", name]);
        if r.code == 0 {
            let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("stats json");
            return v[0].clone();
        }
        if let Ok(Some(_)) = bg.child.try_wait() {
            let out = bg.wait_with_output_ref();
            panic!("the box ended before it could be measured: {out}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the box never ran: {}",
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cgroups_of(stats: &serde_json::Value) -> Vec<PathBuf> {
    stats["Cgroups"]
        .as_array()
        .expect("Cgroups")
        .iter()
        .map(|p| PathBuf::from(p.as_str().expect("path")))
        .collect()
}

#[track_caller]
fn assert_gone(dirs: &[PathBuf]) {
    let left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

fn inspect(env: &Env, name: &str) -> serde_json::Value {
    let r = env.run(["inspect", name]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("inspect json");
    v[0].clone()
}

/// The `ps -a` line of a box.
fn ps_line(env: &Env, name: &str) -> String {
    let r = env.run(["ps", "-a"]);
    r.ok();
    r.stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} in ps -a:\n{}", r.stdout))
        .to_string()
}

/// Run `f` as root and as the unprivileged user, each with a parent of its own (`tag` keeps
/// the tests' parents apart).
fn each_who(tag: &str, f: impl Fn(&Env, &Parent)) {
    if !available() {
        return;
    }
    // FOXBOX_LIMITS_WHO=root|user runs one of the two (the v2 VM, emulated, is slow).
    let only = std::env::var("FOXBOX_LIMITS_WHO").unwrap_or_default();
    for who in Who::BOTH {
        if (only == "root" && who != Who::Root) || (only == "user" && who != Who::User) {
            eprintln!("SKIP as {who:?}: FOXBOX_LIMITS_WHO={only}");
            continue;
        }
        eprintln!("--- as {who:?}");
        let env = Env::new(who);
        let p = Parent::new(&env, &format!("{tag}-{who:?}").to_lowercase());
        f(&env, &p);
        assert_gone(&p.children());
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// A pids limit of 1 leaves room for the box's own process only: its network namespace, made
/// beside the set-up process when it can be, is then made by the set-up process itself.
#[test]
fn a_pids_limit_of_one_runs_the_fox_alone_with_its_own_network() {
    each_who("pids1", |env, p| {
        let t = tar();
        let r = p.run(
            env,
            run_args(
                p,
                &[
                    "--rm",
                    "--pids-limit",
                    "1",
                    &t,
                    "cat",
                    "/sys/class/net/lo/operstate",
                ],
            ),
        );
        // lo, up ("unknown"), in a namespace of the box's own.
        assert_eq!((r.code, r.stdout.trim()), (0, "unknown"), "{}", r.stderr);
        let r = p.run(
            env,
            run_args(
                p,
                &["--rm", "--pids-limit", "1", &t, "sh", "-c", "ls /; ls /"],
            ),
        );
        assert_ne!(
            r.code, 0,
            "a second process in a box limited to one: {}",
            r.stdout
        );
    });
}

/// A fork bomb stops at the pids limit: the box holds at most `pids` processes, forks beyond
/// it fail, and the host can still start processes.
#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    each_who("bomb", |env, p| {
        let t = tar();
        // cpus: the bomb keeps both cores busy otherwise, which would slow every other test.
        // pid 1 does not take part: busybox sh exits when a fork fails, and the box would end.
        let bomb = "exec 2>/dev/null; b() { while :; do b & done; }; b & exec sleep 600";
        let args = run_args(
            p,
            &[
                "--name",
                "bomb",
                "--rm",
                "--pids-limit",
                "24",
                "--cpus",
                "0.5",
                &t,
                "sh",
                "-c",
                bomb,
            ],
        );
        let mut bg = Background::start(p, env, args);
        let s = stats(env, "bomb", &mut bg);
        let cgroups = cgroups_of(&s);
        let pids_dir = cgroups
            .iter()
            .find(|d| d.join("pids.max").exists())
            .expect("a pids cgroup")
            .clone();
        assert_eq!(
            std::fs::read_to_string(pids_dir.join("pids.max"))
                .unwrap()
                .trim(),
            "24"
        );
        // Wait for the bomb to hit the limit, then watch it stay there.
        let start = Instant::now();
        let mut denied = 0;
        while start.elapsed() < Duration::from_secs(60) {
            let ev = std::fs::read_to_string(pids_dir.join("pids.events")).unwrap_or_default();
            denied = ev
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            if denied > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(denied > 0, "the bomb never reached the limit");
        for _ in 0..10 {
            let s = stats(env, "bomb", &mut bg);
            let n = s["Pids"].as_u64().expect("Pids");
            assert!(n <= 24, "{n} processes in a box limited to 24");
            // The host is fine: it can start processes.
            let st = Command::new("true").status().expect("fork on the host");
            assert!(st.success());
            std::thread::sleep(Duration::from_millis(100));
        }
        env.run(["kill", "bomb"]).ok();
        let r = bg.finish();
        r.assert_code(137);
        assert_gone(&cgroups);
    });
}

/// A box allocating past its memory limit is OOM-killed: exit 137, foxbox says it was the
/// memory limit, ps -a and inspect say "OOM killed"; its cgroup goes with `rm`.
#[test]
fn memory_hog_is_oom_killed_and_reported() {
    each_who("oom", |env, p| {
        let t = tar();
        let hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived ${#x}";
        let r = p.run(
            env,
            run_args(p, &["--name", "hog", "-m", "32m", &t, "sh", "-c", hog]),
        );
        r.assert_code(137);
        assert!(!r.stdout.contains("survived"), "{}", r.stdout);
        assert!(
            r.stderr.contains("killed by its memory limit"),
            "stderr: {}",
            r.stderr
        );
        assert!(
            ps_line(env, "hog").contains("Exited (137)")
                && ps_line(env, "hog").contains("(OOM killed)"),
            "{}",
            ps_line(env, "hog")
        );
        let i = inspect(env, "hog");
        assert_eq!(i["State"]["OOMKilled"], true, "{i}");
        assert_eq!(i["State"]["ExitCode"], 137, "{i}");
        env.run(["rm", "hog"]).ok();

        // Under the limit the same box runs: the limit, not the image, killed it.
        let fits = "x=$(head -c 2000000 /dev/zero | tr '\\0' a); echo survived ${#x}";
        let r = p.run(
            env,
            run_args(p, &["--rm", "-m", "32m", &t, "sh", "-c", fits]),
        );
        r.ok();
        assert!(r.stdout.contains("survived 2000000"), "{}", r.stdout);

        // The limit kills a child; the box's shell goes on and exits with its own code. The
        // box still counts as OOM-killed, as podman's would. (One process, dd, holds all the
        // memory: with a pipeline's, a second OOM kill may take the shell too.)
        let child = "dd if=/dev/zero of=/dev/null bs=200M count=1; echo after; exit 3";
        let r = p.run(
            env,
            run_args(p, &["--name", "kid", "-m", "32m", &t, "sh", "-c", child]),
        );
        r.assert_code(3);
        assert!(
            r.stdout.contains("after") && !r.stdout.contains("survived"),
            "{}",
            r.stdout
        );
        assert!(
            r.stderr
                .contains("a process of box kid was killed by its memory limit"),
            "stderr: {}",
            r.stderr
        );
        let i = inspect(env, "kid");
        assert_eq!(i["State"]["OOMKilled"], true, "{i}");
        assert_eq!(i["State"]["ExitCode"], 3, "{i}");
        env.run(["rm", "kid"]).ok();
    });
}

/// Two busy loops under `--cpus 0.5` get about half a core between them (cpu time from the
/// box's cgroup over ~3 s of wall clock, read with `foxbox stats`). A peer box with the same
/// loops and a limit they cannot reach (`--cpus 2`) runs beside it: it shows what the host had
/// to give (this 2-core machine is often busy with other builds); the limited box is held to
/// half a core whatever the peer gets, and gets about that when the peer shows it was there.
#[test]
fn busy_loops_get_about_half_a_core() {
    each_who("cpu", |env, p| {
        let t = tar();
        let spin = "s() { while :; do :; done; }; s & s & wait";
        let start = |name: &str, limit: &[&str]| {
            let mut args = vec!["run".to_string()];
            // root: foxbox's default parent (`foxbox` under each hierarchy); the user: delegated.
            if env.who != Who::Root {
                args.extend(["--cgroup-parent".to_string(), p.name.clone()]);
            }
            args.extend(["--name", name, "--rm"].map(String::from));
            args.extend(limit.iter().map(|s| s.to_string()));
            args.extend([t.as_str(), "sh", "-c", spin].map(String::from));
            Background::start(p, env, args)
        };
        let mut bg = start("spin", &["--cpus", "0.5"]);
        // A quota the peer's two loops cannot reach on this 2-core host: it gets a cpu cgroup
        // of its own, of the same weight as the limited box's, and is measured the same way.
        let mut peer = start("spin-peer", &["--cpus", "2"]);
        let first = stats(env, "spin", &mut bg);
        let cgroups = cgroups_of(&first);
        if env.who == Who::Root {
            assert!(
                cgroups
                    .iter()
                    .all(|c| c.parent().is_some_and(|d| d.ends_with("foxbox"))),
                "root's default parent is `foxbox`: {cgroups:?}"
            );
        }
        let quota = cgroups
            .iter()
            .find_map(|c| {
                std::fs::read_to_string(c.join("cpu.cfs_quota_us"))
                    .or_else(|_| std::fs::read_to_string(c.join("cpu.max")))
                    .ok()
            })
            .expect("a cpu cgroup");
        assert!(quota.starts_with("50000"), "quota {quota:?}");
        stats(env, "spin-peer", &mut peer);
        // Let the loops start, then measure both over the same window.
        std::thread::sleep(Duration::from_millis(500));
        let cpu = |s: &serde_json::Value| s["CpuNanos"].as_u64().expect("CpuNanos") as f64 / 1e9;
        let (a0, b0) = (
            stats(env, "spin", &mut bg),
            stats(env, "spin-peer", &mut peer),
        );
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(3));
        let (a1, b1) = (
            stats(env, "spin", &mut bg),
            stats(env, "spin-peer", &mut peer),
        );
        let wall = t0.elapsed().as_secs_f64();
        let limited = (cpu(&a1) - cpu(&a0)) / wall;
        let free = (cpu(&b1) - cpu(&b0)) / wall;
        eprintln!(
            "over {wall:.2} s: --cpus 0.5 got {limited:.2} of a core, the peer under --cpus 2 {free:.2}"
        );
        env.run(["kill", "spin", "spin-peer"]).ok();
        bg.finish().assert_code(137);
        peer.finish().assert_code(137);
        assert_gone(&cgroups);
        // Never more than the quota (with room for accounting jitter).
        assert!(limited <= 0.65, "{limited:.2} of a core under --cpus 0.5");
        assert!(limited > 0.0, "the limited loops never ran");
        if free >= 0.6 {
            // The host had half a core to give (the peer, of equal weight, got it): the
            // limited box got about that, and the peer clearly more.
            assert!(limited >= 0.3, "{limited:.2} of a core under --cpus 0.5");
            assert!(
                free > limited * 1.15,
                "the peer got {free:.2}, the limited box {limited:.2}"
            );
        } else {
            eprintln!("host too busy to show the lower bound: the peer got only {free:.2}");
        }
    });
}

/// `--timeout` ends a sleeping box: SIGTERM (forwarded by --init), exit 143; foxbox says it
/// was the timeout; inspect says TimedOut.
#[test]
fn timeout_ends_a_sleeping_box() {
    each_who("timeout", |env, p| {
        let t = tar();
        let start = Instant::now();
        let r = p.run(
            env,
            run_args(
                p,
                &[
                    "--name",
                    "nap",
                    "--init",
                    "--timeout",
                    "1s",
                    "--pids-limit",
                    "16",
                    &t,
                    "sleep",
                    "60",
                ],
            ),
        );
        let took = start.elapsed();
        assert!(
            r.code == 143 || r.code == 137,
            "exit {}: {}",
            r.code,
            r.stderr
        );
        assert!(took < Duration::from_secs(30), "took {took:?}");
        assert!(r.stderr.contains("timeout"), "stderr: {}", r.stderr);
        let i = inspect(env, "nap");
        assert_eq!(i["State"]["TimedOut"], true, "{i}");
        assert_eq!(i["State"]["OOMKilled"], false, "{i}");
        assert!(ps_line(env, "nap").contains("(timed out)"));
        env.run(["rm", "nap"]).ok();
    });
}

/// Without --init the sleeping pid 1 ignores SIGTERM: SIGKILL after the stop timeout, 137.
#[test]
fn timeout_kills_a_box_that_ignores_sigterm() {
    if !available() {
        return;
    }
    let env = Env::new(Who::Root);
    let r = env.run([
        "run",
        "--rm",
        "--timeout",
        "1s",
        "--stop-timeout",
        "1",
        &tar(),
        "sleep",
        "60",
    ]);
    r.assert_code(137);
    assert!(r.stderr.contains("timeout"), "stderr: {}", r.stderr);
}

/// The box sees its own cgroups as the root (a cgroup namespace made after it was placed).
#[test]
fn the_box_sees_its_cgroup_as_root() {
    each_who("ns", |env, p| {
        let r = p.run(
            env,
            run_args(
                p,
                &[
                    "--rm",
                    "-m",
                    "64m",
                    "--pids-limit",
                    "64",
                    "--cpus",
                    "1",
                    &tar(),
                    "cat",
                    "/proc/self/cgroup",
                ],
            ),
        );
        r.ok();
        for line in r.stdout.lines() {
            let path = line.rsplit(':').next().unwrap_or("");
            assert_eq!(path, "/", "{line} in\n{}", r.stdout);
        }
    });
}

const SPEC: &str = r#"[box]
name = "limited"
image = "TAR"
command = ["sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo all forked"]

[limits]
memory = "32MiB"
pids = 16
cpus = 1
timeout = "60s"
"#;

/// A spec's [limits] through `foxbox up`: pids stops the forks, memory OOM-kills a hog.
#[test]
fn spec_limits_through_up() {
    each_who("spec", |env, p| {
        let spec = env.write("Foxbox.toml", SPEC.replace("TAR", &tar()));
        let spec = spec.to_str().unwrap();
        let r = p.run(env, ["up", "--rm", "--cgroup-parent", &p.name, spec]);
        assert_ne!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("can't fork"), "{}", r.stderr);
        assert!(!r.stdout.contains("all forked"), "{}", r.stdout);

        let hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a)";
        let r = p.run(
            env,
            [
                "up",
                "--rm",
                "--cgroup-parent",
                &p.name,
                spec,
                "--",
                "sh",
                "-c",
                hog,
            ],
        );
        r.assert_code(137);
        assert!(
            r.stderr.contains("killed by its memory limit"),
            "{}",
            r.stderr
        );
    });
}

const STRICT: &str = "[box]\nimage = \"TAR\"\ncommand = [\"echo\", \"ran\"]\n\n[limits]\nmemory = \"64MiB\"\npids = 32\n";
const BEST_EFFORT: &str = "[box]\nimage = \"TAR\"\ncommand = [\"echo\", \"ran\"]\n\n[limits]\nmemory = \"64MiB\"\nenforce = \"best-effort\"\n";

/// The unprivileged user without a delegated cgroup: a declared limit is refused (125) at
/// its line with how to delegate; `enforce = "best-effort"` runs with a warning;
/// `check --host` says the same before anything runs.
#[test]
fn without_delegation_limits_are_refused_or_warned() {
    if !available() {
        return;
    }
    let env = Env::new(Who::User);
    let t = tar();
    let hint = |s: &str| {
        assert!(s.contains("cannot be enforced"), "{s}");
        // v1: root chowns a subtree; v2: systemd's Delegate=yes (or the same by hand).
        assert!(
            (s.contains("chown") || s.contains("Delegate=yes")) && s.contains("--cgroup-parent"),
            "{s}"
        );
    };

    let r = env.run(["run", "--rm", "-m", "32m", &t, "echo", "ran"]);
    r.assert_code(125);
    assert!(!r.stdout.contains("ran"));
    assert!(r.stderr.contains("`memory` limit"), "{}", r.stderr);
    hint(&r.stderr);

    let strict = env.write("strict.toml", STRICT.replace("TAR", &t));
    let r = env.run(["--color", "never", "up", "--rm", strict.to_str().unwrap()]);
    r.assert_code(125);
    assert!(!r.stdout.contains("ran"));
    // Each limit at its line: memory on 6, pids on 7.
    assert!(r.stderr.contains("strict.toml:6:"), "{}", r.stderr);
    assert!(r.stderr.contains("strict.toml:7:"), "{}", r.stderr);
    assert!(r.stderr.contains("`memory` limit") && r.stderr.contains("`pids` limit"));
    hint(&r.stderr);
    // Nothing was left of the refused box.
    let ps = env.run(["ps", "-a", "-q"]);
    assert_eq!(ps.stdout.trim(), "", "{}", ps.stdout);

    let check = env.run([
        "--color",
        "never",
        "check",
        "--host",
        strict.to_str().unwrap(),
    ]);
    check.assert_code(1);
    assert!(check.stderr.contains("strict.toml:6:"), "{}", check.stderr);
    assert!(check.stderr.contains("strict.toml:7:"), "{}", check.stderr);
    hint(&check.stderr);

    let best = env.write("best.toml", BEST_EFFORT.replace("TAR", &t));
    let r = env.run(["--color", "never", "up", "--rm", best.to_str().unwrap()]);
    r.ok();
    assert!(r.stdout.contains("ran"));
    assert!(
        r.stderr.contains("running without it") && r.stderr.contains("best.toml:6:"),
        "{}",
        r.stderr
    );
    // Other host problems may be reported too (the v2 VM has no overlayfs): only the limit's
    // diagnostic is looked at.
    let check = env.run([
        "check",
        "--host",
        "--format",
        "json",
        best.to_str().unwrap(),
    ]);
    let diags: serde_json::Value = serde_json::from_str(&check.stdout).expect("check json");
    let limit: Vec<_> = diags
        .as_array()
        .expect("array")
        .iter()
        .filter(|d| {
            d["message"]
                .as_str()
                .unwrap_or("")
                .contains("`memory` limit")
        })
        .collect();
    assert_eq!(limit.len(), 1, "{diags:#}");
    assert_eq!(limit[0]["severity"], "warning", "{diags:#}");
    assert_eq!(limit[0]["line"], 6, "{diags:#}");
    assert!(limit[0]["message"]
        .as_str()
        .unwrap()
        .contains("running without it"));
}

/// `foxbox stats` on a box that is not running, or has no cgroup, says so.
#[test]
fn stats_needs_a_running_box_with_a_cgroup() {
    if !available() {
        return;
    }
    let env = Env::new(Who::Root);
    env.run(["run", "--name", "done", &tar(), "true"]).ok();
    let r = env.run(["stats", "done"]);
    r.assert_code(125);
    assert!(r.stderr.contains("not running"), "{}", r.stderr);
    let r = env.run(["stats", "nosuchbox"]);
    r.assert_code(125);
}

/// A box whose start fails in the child is kept, exited with the reason (as podman's), but
/// holds no cgroup, attached or detached: an exited box holds none.
#[test]
fn a_box_whose_start_failed_keeps_no_cgroup() {
    each_who("failedstart", |env, p| {
        let t = tar();
        for (name, detach) in [("fg", false), ("bg", true)] {
            let mut extra = vec![
                "--name",
                name,
                "--pids-limit",
                "64",
                "-w",
                "/proc/self/fd/5",
            ];
            if detach {
                extra.push("-d");
            }
            extra.extend([t.as_str(), "true"]);
            let r = p.run(env, run_args(p, &extra));
            r.assert_code(125);
            let b = inspect(env, name);
            assert_eq!(b["State"]["Status"], "exited", "{b}");
            assert_gone(&p.children());
            let check = env.run(["system", "check"]);
            assert!(!check.stdout.contains("cgroup "), "{}", check.stdout);
            env.run(["rm", name]).ok();
        }
    });
}

/// `system check` sees the cgroups of a box that does not run (a detached box whose
/// supervisor was killed, before any command settled it) and `--repair` removes them.
#[test]
fn system_check_reports_and_repairs_cgroups_of_a_dead_box() {
    each_who("checkcg", |env, p| {
        let t = tar();
        let r = p.run(
            env,
            run_args(
                p,
                &[
                    "-d",
                    "--name",
                    "dead",
                    "--pids-limit",
                    "64",
                    &t,
                    "sleep",
                    "98781",
                ],
            ),
        );
        r.ok();
        let b = inspect(env, "dead");
        let sup = b["State"]["SupervisorPid"].as_i64().expect("supervisor") as i32;
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(sup, libc::SIGKILL) };
        let fox = b["State"]["Pid"].as_i64().expect("pid");
        common::eventually("the box to end", || {
            !Path::new(&format!("/proc/{fox}")).exists()
        });
        let check = env.run(["system", "check"]);
        check.assert_code(1);
        let cgroups: Vec<&str> = check
            .stdout
            .lines()
            .filter(|l| l.starts_with("cgroup "))
            .collect();
        assert_eq!(cgroups.len(), p.children().len(), "{}", check.stdout);
        assert!(!cgroups.is_empty(), "{}", check.stdout);
        p.run(env, ["system", "check", "--repair"]).ok();
        assert_gone(&p.children());
        env.run(["system", "check"]).ok();
        env.run(["rm", "dead"]).ok();
    });
}
