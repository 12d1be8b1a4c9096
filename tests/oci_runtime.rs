//! foxbox as an OCI runtime (`foxbox oci`, `foxbox-runc`): the create/start/state/kill/delete
//! lifecycle on a busybox bundle, `run`, argv0 dispatch, and bad configs refused with their
//! JSON path and nothing left under `--root`. As root and as the unprivileged user (whose
//! bundle maps its own uid to 0 in a user namespace, as `spec --rootless` writes it).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{busybox_tarball, envs, Env, Who};
use serde_json::{json, Value};

/// A bundle under the env's work dir: busybox as rootfs, `spec` (or `spec --rootless`) as
/// config.json with `edit` applied. Returns (bundle dir, state root).
fn bundle(env: &Env, name: &str, edit: impl FnOnce(&mut Value)) -> (PathBuf, PathBuf) {
    let dir = env.work().join(name);
    let rootfs = dir.join("rootfs");
    env.command("mkdir")
        .arg("-p")
        .arg(&rootfs)
        .status()
        .expect("mkdir");
    let tar = env
        .command("tar")
        .arg("-xzf")
        .arg(busybox_tarball())
        .arg("-C")
        .arg(&rootfs)
        .output()
        .expect("tar");
    assert!(tar.status.success(), "{tar:?}");
    let mut spec = vec!["oci", "spec", "--bundle"];
    let d = dir.to_string_lossy().into_owned();
    spec.push(&d);
    if env.who != Who::Root {
        spec.push("--rootless");
    }
    env.run(&spec).ok();
    let cfg_path = dir.join("config.json");
    let mut cfg: Value = serde_json::from_str(&fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["process"]["terminal"] = json!(false);
    edit(&mut cfg);
    env.write(
        &format!("{name}/config.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    );
    (dir, env.dir.join("oci-root"))
}

fn oci(env: &Env, root: &Path, args: &[&str]) -> common::Run {
    let mut all = vec![
        "oci".to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    env.run(&all)
}

/// `create` of the bundle at `b` is refused (exit 1, runc's code) with `what` (the JSON path)
/// in its message, and leaves no state under `root`.
fn assert_create_refused(env: &Env, root: &Path, b: &Path, id: &str, what: &str) {
    let r = oci_detached(
        env,
        root,
        &["create", "--bundle", &b.display().to_string(), id],
    );
    r.assert_code(1);
    assert!(
        r.stderr.contains(what),
        "{:?}: no {what:?} in {}",
        env.who,
        r.stderr
    );
    assert!(!root.join(id).exists(), "{id}: state left under --root");
}

/// `create` or `run --detach`: the container keeps the runtime's stdout and stderr, so they go
/// to files (a pipe would stay open as long as the container runs).
fn oci_detached(env: &Env, root: &Path, args: &[&str]) -> common::Run {
    let log = env.dir.join("detached.err");
    let err = fs::File::create(&log).unwrap();
    let mut c = env.foxbox(["oci", "--root", &root.display().to_string()]);
    c.args(args).stdout(std::process::Stdio::null()).stderr(err);
    let st = c.status().unwrap();
    common::Run {
        code: st.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: fs::read_to_string(&log).unwrap_or_default(),
    }
}

fn status(env: &Env, root: &Path, id: &str) -> String {
    let r = oci(env, root, &["state", id]);
    r.ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["status"].as_str().unwrap().to_string()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bind the env's work dir at /out in the container, to see what its command did.
fn with_out(cfg: &mut Value, host: &Path, args: &[&str]) {
    cfg["process"]["args"] = json!(args);
    cfg["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/out", "type": "bind", "source": host, "options": ["rbind", "rw"]}),
    );
}

#[test]
fn create_start_state_kill_delete() {
    for env in envs() {
        let out = env.work().join("out");
        env.command("mkdir").arg(&out).status().unwrap();
        let (b, root) = bundle(&env, "life", |c| {
            with_out(
                c,
                &out,
                &["sh", "-c", "echo started > /out/mark; exec sleep 600"],
            );
        });
        let pid_file = env.work().join("pid");
        let bs = b.display().to_string();
        let pf = pid_file.display().to_string();
        oci_detached(
            &env,
            &root,
            &["create", "--bundle", &bs, "--pid-file", &pf, "c1"],
        )
        .ok();
        let pid: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "{:?}", env.who);
        let st: Value = serde_json::from_str(&oci(&env, &root, &["state", "c1"]).stdout).unwrap();
        assert_eq!(st["status"], "created", "{st}");
        assert_eq!(st["pid"], pid);
        assert_eq!(st["id"], "c1");
        assert_eq!(st["bundle"], bs);
        assert!(st["ociVersion"].is_string());
        // Created is not started: the command has not run.
        std::thread::sleep(Duration::from_millis(200));
        assert!(!out.join("mark").exists(), "the command ran before start");

        let again = oci_detached(&env, &root, &["create", "--bundle", &bs, "c1"]);
        again.assert_code(1);
        assert!(again.stderr.contains("already exists"), "{}", again.stderr);

        oci(&env, &root, &["start", "c1"]).ok();
        wait_for("the mark", || out.join("mark").exists());
        assert_eq!(status(&env, &root, "c1"), "running");
        oci(&env, &root, &["start", "c1"]).assert_code(1);
        // exec: one more process in the running container, with its exit code.
        let ex = oci(
            &env,
            &root,
            &[
                "exec",
                "--env",
                "X=y",
                "c1",
                "sh",
                "-c",
                "echo $X in $(cat /out/mark); exit 4",
            ],
        );
        ex.assert_code(4);
        assert_eq!(ex.stdout.trim(), "y in started", "{}", ex.stderr);
        let ps = oci(&env, &root, &["ps", "--format", "json", "c1"]);
        ps.ok();
        let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
        assert_eq!(pids.first(), Some(&pid), "{pids:?}");
        let list = oci(&env, &root, &["list", "--format", "json"]);
        list.ok();
        let l: Value = serde_json::from_str(&list.stdout).unwrap();
        assert_eq!(l[0]["id"], "c1");
        assert_eq!(l[0]["status"], "running");

        let del = oci(&env, &root, &["delete", "c1"]);
        del.assert_code(1);
        assert!(del.stderr.contains("--force"), "{}", del.stderr);
        assert_eq!(status(&env, &root, "c1"), "running");

        oci(&env, &root, &["kill", "c1", "KILL"]).ok();
        wait_for("stopped", || status(&env, &root, "c1") == "stopped");
        // Signalling a stopped container fails (runc's and crun's rule), but not with --all
        // (runc's man page: no error when stopped or gone).
        oci(&env, &root, &["kill", "c1", "TERM"]).assert_code(1);
        oci(&env, &root, &["kill", "--all", "c1", "TERM"]).ok();
        oci(&env, &root, &["kill", "--all", "never-made", "TERM"]).ok();
        oci(&env, &root, &["exec", "c1", "true"]).assert_code(1);
        oci(&env, &root, &["delete", "c1"]).ok();
        let gone = oci(&env, &root, &["state", "c1"]);
        gone.assert_code(1);
        assert!(gone.stderr.contains("does not exist"), "{}", gone.stderr);
        assert!(!root.join("c1").exists());

        // Deleting a created container is an error too (the runtime-spec's rule), unless
        // forced; so is a running one.
        oci_detached(&env, &root, &["create", "--bundle", &bs, "c2"]).ok();
        oci(&env, &root, &["delete", "c2"]).assert_code(1);
        assert_eq!(status(&env, &root, "c2"), "created");
        oci(&env, &root, &["delete", "--force", "c2"]).ok();
        assert!(!root.join("c2").exists());
        oci_detached(&env, &root, &["run", "--detach", "--bundle", &bs, "c3"]).ok();
        assert_eq!(status(&env, &root, "c3"), "running");
        oci(&env, &root, &["delete", "--force", "c3"]).ok();
        assert!(!root.join("c3").exists());
        oci(&env, &root, &["delete", "--force", "c3"]).ok();
    }
}

#[test]
fn run_waits_and_gives_the_exit_code() {
    for env in envs() {
        let (b, root) = bundle(&env, "run", |c| {
            c["process"]["args"] = json!([
                "sh",
                "-c",
                "echo hi from $(hostname) as $(id -u); grep Groups /proc/self/status; exit 3"
            ]);
            c["hostname"] = json!("oci-test");
            c["process"]["user"]["additionalGids"] = json!([5, 7]);
        });
        let r = oci(
            &env,
            &root,
            &["run", "--bundle", &b.display().to_string(), "r1"],
        );
        r.assert_code(3);
        assert!(r.stdout.contains("hi from oci-test as 0"), "{}", r.stdout);
        assert!(!root.join("r1").exists(), "run deletes its container");
        if env.who == Who::Root {
            // additionalGids replace /etc/group's (a rootless map has no gid 5 or 7).
            assert!(r.stdout.contains("Groups:\t5 7"), "{}", r.stdout);
        }
    }
}

/// runc's `run` with `process.terminal` and no console socket: the runtime makes the pty and
/// relays it (a detached `run` still needs the socket).
#[test]
fn run_with_a_terminal_and_no_console_socket_relays_its_own_pty() {
    for env in envs() {
        let (b, root) = bundle(&env, "tty", |c| {
            c["process"]["terminal"] = json!(true);
            c["process"]["args"] = json!([
                "sh",
                "-c",
                "test -t 0 && test -t 1 && echo tty:$(stty size); read line; echo got:$line; exit 5"
            ]);
        });
        let cmd = format!(
            "echo typed | {} oci --root {} run --bundle {} t1; echo rc=$?",
            common::foxbox_bin().display(),
            root.display(),
            b.display()
        );
        let mut c = env.command("script");
        c.args(["-qec", &cmd, "/dev/null"]);
        let out = String::from_utf8_lossy(&c.output().expect("script").stdout).into_owned();
        assert!(out.contains("tty:"), "{:?}: {out:?}", env.who);
        assert!(out.contains("got:typed"), "{:?}: {out:?}", env.who);
        assert!(out.contains("rc=5"), "{:?}: {out:?}", env.who);
        assert!(!root.join("t1").exists(), "run deletes its container");
        let r = oci(
            &env,
            &root,
            &[
                "run",
                "--detach",
                "--bundle",
                &b.display().to_string(),
                "t2",
            ],
        );
        r.assert_code(1);
        assert!(r.stderr.contains("--console-socket"), "{}", r.stderr);
        assert!(!root.join("t2").exists());
    }
}

#[test]
fn invoked_as_foxbox_runc_it_takes_runc_s_argv() {
    for env in envs() {
        let link_dir = env.work().join("bin");
        env.command("mkdir").arg(&link_dir).status().unwrap();
        let link = link_dir.join("foxbox-runc");
        env.command("ln")
            .arg("-s")
            .arg(common::foxbox_bin())
            .arg(&link)
            .status()
            .unwrap();
        let v = env.command(&link).arg("--version").output().unwrap();
        let text = String::from_utf8_lossy(&v.stdout);
        assert!(text.starts_with("foxbox-runc version"), "{text}");
        assert!(text.contains("spec: 1."), "{text}");
        let root = env.dir.join("oci-root");
        let s = env
            .command(&link)
            .args(["--root", &root.display().to_string(), "state", "nope"])
            .output()
            .unwrap();
        assert_eq!(s.status.code(), Some(1));
        let f = env.command(&link).arg("features").output().unwrap();
        let feat: Value = serde_json::from_slice(&f.stdout).unwrap();
        assert!(feat["ociVersionMax"].as_str().unwrap().starts_with("1."));
        assert!(feat["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("user")));
    }
}

#[test]
fn bad_configs_name_their_json_path_and_leave_no_state() {
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "uid type",
            |c| c["process"]["user"]["uid"] = json!("zero"),
            "process.user.uid",
        ),
        (
            "negative uid",
            |c| c["process"]["user"]["uid"] = json!(-1),
            "process.user.uid",
        ),
        (
            "negative gid",
            |c| c["process"]["user"]["gid"] = json!(-5),
            "process.user.gid",
        ),
        (
            "args type",
            |c| c["process"]["args"] = json!("sh"),
            "process.args",
        ),
        (
            "env type",
            |c| c["process"]["env"] = json!([1]),
            "process.env[0]",
        ),
        (
            "terminal type",
            |c| c["process"]["terminal"] = json!("yes"),
            "process.terminal",
        ),
        (
            "namespace type",
            |c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "bogus"}))
            },
            "linux.namespaces[",
        ),
        (
            "dotdot destination",
            |c| {
                c["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/a/../../etc", "type": "tmpfs", "source": "tmpfs"}),
                )
            },
            ".destination",
        ),
        (
            "root outside",
            |c| c["root"]["path"] = json!("../rootfs"),
            "root.path",
        ),
        ("mounts type", |c| c["mounts"] = json!({}), "mounts"),
        (
            "version",
            |c| c["ociVersion"] = json!("invalid"),
            "ociVersion",
        ),
        (
            "seccomp listener",
            |c| {
                c["linux"]["seccomp"] =
                    json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"})
            },
            "linux.seccomp",
        ),
        (
            "sysctl of the host",
            |c| c["linux"]["sysctl"] = json!({"kernel.pid_max": "1000"}),
            "linux.sysctl.kernel.pid_max",
        ),
        (
            "sysctl of the host network",
            |c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "network");
                c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            },
            "linux.sysctl.net.ipv4.ip_forward",
        ),
        (
            "sysctl name",
            |c| c["linux"]["sysctl"] = json!({"net/../../kernel": "1"}),
            "linux.sysctl.net/../../kernel",
        ),
    ];
    for env in envs() {
        for (what, edit, path) in &cases {
            let name = format!("bad-{}", what.replace(' ', "-"));
            let (b, root) = bundle(&env, &name, *edit);
            let r = oci_detached(
                &env,
                &root,
                &["create", "--bundle", &b.display().to_string(), "x1"],
            );
            r.assert_code(1);
            assert!(
                r.stderr.contains(path),
                "{what} ({:?}): no {path:?} in {}",
                env.who,
                r.stderr
            );
            assert!(!root.join("x1").exists(), "{what}: state left under --root");
        }
        let r = oci(
            &env,
            &env.dir.join("oci-root"),
            &["create", "--bundle", "/nonexistent", "../x"],
        );
        r.assert_code(1);
        assert!(r.stderr.contains("invalid container id"), "{}", r.stderr);
    }
}

/// podman drives foxbox as its runtime (through conmon): `run --rm`, and a detached box's
/// logs, stop and rm. Root only (podman rootless needs its own user set-up), with podman's
/// files in a private root, and `--network none` (no host network changes).
#[test]
fn podman_runs_busybox_with_foxbox_runc() {
    if !common::root_or_skip("podman as root") {
        return;
    }
    if std::process::Command::new("podman")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: podman is not installed");
        return;
    }
    let env = Env::new(Who::Root);
    let p = env.dir.join("podman");
    let runroot = env.short_dir();
    fs::create_dir_all(&p).unwrap();
    let conf = p.join("containers.conf");
    fs::write(
        &conf,
        "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    let link = p.join("foxbox-runc");
    std::os::unix::fs::symlink(common::foxbox_bin(), &link).unwrap();
    let podman = |args: &[&str]| {
        let mut c = std::process::Command::new("podman");
        c.env("CONTAINERS_CONF", &conf)
            .arg("--root")
            .arg(p.join("root"))
            .arg("--runroot")
            .arg(runroot.path())
            .arg("--tmpdir")
            .arg(p.join("tmp"))
            .arg("--runtime")
            .arg(&link)
            .args(args)
            .stdin(std::process::Stdio::null());
        common::Run::from(c.output().unwrap())
    };
    let tar = busybox_tarball().display().to_string();
    podman(&["import", &tar, "localhost/busybox:latest"]).ok();
    let r = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/busybox",
        "echo",
        "hi",
    ]);
    r.ok();
    assert_eq!(r.stdout.trim(), "hi", "{}", r.stderr);
    // A pty: conmon passes --console-socket and gets the master over it.
    let t = podman(&[
        "run",
        "--rm",
        "-t",
        "--network",
        "none",
        "localhost/busybox",
        "tty",
    ]);
    t.ok();
    assert!(t.stdout.contains("/dev/pts/"), "{}{}", t.stdout, t.stderr);
    let r = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/busybox",
        "sh",
        "-c",
        "exit 7",
    ]);
    r.assert_code(7);
    let d = podman(&[
        "run",
        "-d",
        "--network",
        "none",
        "localhost/busybox",
        "sh",
        "-c",
        "echo logged; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    d.ok();
    let id = d.stdout.trim().to_string();
    wait_for("the log line", || {
        podman(&["logs", &id]).stdout.contains("logged")
    });
    let ex = podman(&["exec", &id, "sh", "-c", "echo exec-ok; exit 5"]);
    ex.assert_code(5);
    assert_eq!(ex.stdout.trim(), "exec-ok", "{}", ex.stderr);
    let ps = podman(&["ps", "--format", "{{.ID}} {{.Status}}"]);
    assert!(ps.stdout.contains("Up"), "{}", ps.stdout);
    podman(&["stop", "-t", "10", &id]).ok();
    podman(&["rm", &id]).ok();
    assert!(podman(&["ps", "-a", "-q"]).stdout.trim().is_empty());
}

/// Hooks get the state on stdin: createRuntime at create (status `creating`), prestart at start (before the
/// command), poststart after it, poststop at delete; a failing poststop hook is a warning and
/// the next one still runs; a failing prestart hook fails `start` and removes the container.
#[test]
fn hooks_run_at_their_moments_with_the_state_on_stdin() {
    for env in envs() {
        let out = env.work().join("hooks-out");
        env.command("mkdir").arg(&out).status().unwrap();
        let o = out.display().to_string();
        let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {o}/{name}")]});
        let (b, root) = bundle(&env, "hooks", |c| {
            with_out(c, &out, &["sh", "-c", "touch /out/command"]);
            c["hooks"] = json!({
                "createRuntime": [hook("createRuntime")],
                "prestart": [hook("prestart")],
                "poststart": [hook("poststart")],
                "poststop": [{"path": "/bin/false"}, hook("poststop")],
            });
        });
        let bs = b.display().to_string();
        oci_detached(&env, &root, &["create", "--bundle", &bs, "h1"]).ok();
        let st: Value =
            serde_json::from_str(&fs::read_to_string(out.join("createRuntime")).unwrap()).unwrap();
        assert_eq!(st["status"], "creating", "{st}");
        assert_eq!(st["id"], "h1");
        assert!(!out.join("prestart").exists(), "prestart ran at create");
        oci(&env, &root, &["start", "h1"]).ok();
        assert!(out.join("prestart").exists() && out.join("poststart").exists());
        wait_for("stopped", || status(&env, &root, "h1") == "stopped");
        assert!(out.join("command").exists());
        let del = oci(&env, &root, &["delete", "h1"]);
        del.ok();
        assert!(
            del.stderr.contains("poststop hook /bin/false"),
            "{}",
            del.stderr
        );
        let st: Value =
            serde_json::from_str(&fs::read_to_string(out.join("poststop")).unwrap()).unwrap();
        assert_eq!(st["status"], "stopped", "{st}");

        let (b, root) = bundle(&env, "hooks-fail", |c| {
            c["process"]["args"] = json!(["true"]);
            c["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
        });
        oci_detached(
            &env,
            &root,
            &["create", "--bundle", &b.display().to_string(), "h2"],
        )
        .ok();
        let r = oci(&env, &root, &["start", "h2"]);
        r.assert_code(1);
        assert!(r.stderr.contains("prestart hook"), "{}", r.stderr);
        assert!(
            !root.join("h2").exists(),
            "a failed prestart leaves the container"
        );
    }
}

/// The directory of cgroup `rel` for controller `ctrl`: its v1 hierarchy, else the v2 root.
fn cg_dir(ctrl: &str, rel: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup").join(ctrl);
    let base = if v1.join("cgroup.procs").exists() && !v1.join("cgroup.controllers").exists() {
        v1
    } else {
        PathBuf::from("/sys/fs/cgroup")
    };
    base.join(rel.trim_start_matches('/'))
}

fn v1(ctrl: &str) -> bool {
    cg_dir(ctrl, "").starts_with(Path::new("/sys/fs/cgroup").join(ctrl))
}

fn read_cg(ctrl: &str, rel: &str, v1_file: &str, v2_file: &str) -> String {
    let f = cg_dir(ctrl, rel).join(if v1(ctrl) { v1_file } else { v2_file });
    fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        .trim()
        .to_string()
}

const CONTROLLERS: &[&str] = &["memory", "cpu", "cpuset", "pids", "devices", "freezer"];

/// Removes what a failed test left: its containers (forced) and its cgroup directories.
struct CgroupGuard<'a> {
    env: &'a Env,
    root: PathBuf,
    ids: Vec<&'static str>,
    rel: String,
}

impl Drop for CgroupGuard<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = oci(self.env, &self.root, &["delete", "--force", id]);
        }
        for c in CONTROLLERS {
            let _ = fs::remove_dir(cg_dir(c, &self.rel).join("c"));
            let _ = fs::remove_dir(cg_dir(c, &self.rel));
        }
    }
}

/// The envs of the cgroup tests: FOXBOX_LIMITS_WHO=root|user keeps one (the v2 VM, emulated,
/// runs them as root only: each container start there costs seconds).
fn cgroup_envs() -> Vec<Env> {
    let only = std::env::var("FOXBOX_LIMITS_WHO").unwrap_or_default();
    envs()
        .into_iter()
        .filter(|e| match only.as_str() {
            "root" => e.who == Who::Root,
            "user" => e.who == Who::User,
            _ => true,
        })
        .collect()
}

#[test]
fn cgroups_resources_pause_resume_update_delete() {
    let rel = format!("/foxbox-test-oci-{}", std::process::id());
    for env in cgroup_envs() {
        let out = env.work().join("out");
        env.command("mkdir").arg(&out).status().unwrap();
        let resources = json!({
            "memory": {"limit": 67108864, "swap": 67108864, "reservation": 33554432},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 50},
            "devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
            ]
        });
        let (b, root) = bundle(&env, "cg", |c| {
            with_out(
                c,
                &out,
                &[
                    "sh",
                    "-c",
                    "echo x > /dev/null && while true; do date +%s%N > /out/tick; sleep 0.05; done",
                ],
            );
            c["linux"]["cgroupsPath"] = json!(rel);
            c["linux"]["resources"] = resources.clone();
        });
        let bs = b.display().to_string();
        let _guard = CgroupGuard {
            env: &env,
            root: root.clone(),
            ids: vec!["cg1", "cg2"],
            rel: rel.clone(),
        };
        if env.who != Who::Root {
            // runc's rootless rules: resources that cannot be set are an error (leaving no
            // state); a cgroupsPath alone is ignored with a warning.
            let r = oci_detached(&env, &root, &["create", "--bundle", &bs, "cg1"]);
            r.assert_code(1);
            assert!(r.stderr.contains("linux.resources"), "{}", r.stderr);
            assert!(!root.join("cg1").exists());
            let cfg_path = b.join("config.json");
            let mut cfg: Value =
                serde_json::from_str(&fs::read_to_string(&cfg_path).unwrap()).unwrap();
            cfg["linux"].as_object_mut().unwrap().remove("resources");
            env.write("cg/config.json", serde_json::to_string(&cfg).unwrap());
            let r = oci_detached(&env, &root, &["create", "--bundle", &bs, "cg1"]);
            r.ok();
            assert!(r.stderr.contains("not writable"), "{}", r.stderr);
            let p = oci(&env, &root, &["pause", "cg1"]);
            p.assert_code(1);
            assert!(p.stderr.contains("no cgroup"), "{}", p.stderr);
            oci(&env, &root, &["delete", "--force", "cg1"]).ok();

            // In a cgroup delegated to the user (v1: a directory it owns in each hierarchy
            // used), resources are set and pause works, as for runc rootless.
            if !v1("pids") || !v1("freezer") {
                continue;
            }
            let (uid, _) = env.ids();
            let delegated = format!("{rel}-user");
            let _delegation = CgroupGuard {
                env: &env,
                root: root.clone(),
                ids: vec![],
                rel: delegated.clone(),
            };
            for c in ["pids", "freezer"] {
                let d = cg_dir(c, &delegated);
                fs::create_dir(&d).unwrap();
                for e in fs::read_dir(&d).unwrap() {
                    std::os::unix::fs::chown(e.unwrap().path(), Some(uid), None).unwrap();
                }
                std::os::unix::fs::chown(&d, Some(uid), None).unwrap();
            }
            let inner = format!("{delegated}/c");
            cfg["linux"]["cgroupsPath"] = json!(inner);
            cfg["linux"]["resources"] = json!({"pids": {"limit": 33}});
            env.write("cg/config.json", serde_json::to_string(&cfg).unwrap());
            oci_detached(&env, &root, &["create", "--bundle", &bs, "cg2"]).ok();
            assert_eq!(read_cg("pids", &inner, "pids.max", "pids.max"), "33");
            oci(&env, &root, &["pause", "cg2"]).ok();
            assert_eq!(status(&env, &root, "cg2"), "paused");
            oci(&env, &root, &["delete", "--force", "cg2"]).ok();
            for c in ["pids", "freezer"] {
                assert!(!cg_dir(c, &inner).exists(), "{c}: {inner} left behind");
            }
            continue;
        }

        let pid_file = env.work().join("pid");
        let pf = pid_file.display().to_string();
        oci_detached(
            &env,
            &root,
            &["create", "--bundle", &bs, "--pid-file", &pf, "cg1"],
        )
        .ok();
        let pid = fs::read_to_string(&pid_file).unwrap().trim().to_string();
        // The values are in the cgroup files, and the container's process is in the cgroup.
        assert_eq!(
            read_cg("memory", &rel, "memory.limit_in_bytes", "memory.max"),
            "67108864"
        );
        assert_eq!(read_cg("pids", &rel, "pids.max", "pids.max"), "50");
        assert_eq!(read_cg("cpuset", &rel, "cpuset.cpus", "cpuset.cpus"), "0");
        if v1("cpu") {
            assert_eq!(read_cg("cpu", &rel, "cpu.shares", ""), "512");
            assert_eq!(read_cg("cpu", &rel, "cpu.cfs_quota_us", ""), "50000");
        } else {
            assert_eq!(read_cg("cpu", &rel, "", "cpu.max"), "50000 100000");
        }
        if v1("devices") {
            let list = read_cg("devices", &rel, "devices.list", "");
            assert_eq!(list.lines().next(), Some("c 10:229 rwm"), "{list}");
            assert!(
                list.contains("c 1:3 rwm"),
                "foxbox's /dev is allowed: {list}"
            );
            assert!(!list.contains("a *:* rwm"), "{list}");
        }
        let procs = read_cg("freezer", &rel, "cgroup.procs", "cgroup.procs");
        assert!(procs.lines().any(|l| l == pid), "{pid} not in {procs}");

        oci(&env, &root, &["start", "cg1"]).ok();
        wait_for("the ticks", || out.join("tick").exists());
        assert_eq!(status(&env, &root, "cg1"), "running");

        // pause: frozen, state says so, nothing runs; resume: it runs again.
        oci(&env, &root, &["pause", "cg1"]).ok();
        assert_eq!(status(&env, &root, "cg1"), "paused");
        let tick = || fs::read_to_string(out.join("tick")).unwrap_or_default();
        let t0 = tick();
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(tick(), t0, "the container ran while paused");
        oci(&env, &root, &["exec", "cg1", "true"]).assert_code(1);
        oci(&env, &root, &["pause", "cg1"]).assert_code(1);
        oci(&env, &root, &["resume", "cg1"]).ok();
        assert_eq!(status(&env, &root, "cg1"), "running");
        wait_for("a tick after resume", || tick() != t0);
        oci(&env, &root, &["resume", "cg1"]).assert_code(1);

        // update: the memory limit (with memory + swap above it) and the pids limit.
        oci(
            &env,
            &root,
            &[
                "update",
                "--memory",
                "128m",
                "--memory-swap",
                "256m",
                "--pids-limit",
                "20",
                "cg1",
            ],
        )
        .ok();
        assert_eq!(
            read_cg("memory", &rel, "memory.limit_in_bytes", "memory.max"),
            "134217728"
        );
        assert_eq!(read_cg("pids", &rel, "pids.max", "pids.max"), "20");
        // From a file (standard input), a bad value named by its path.
        let bad = env
            .foxbox([
                "oci",
                "--root",
                &root.display().to_string(),
                "update",
                "--resources",
                "-",
                "cg1",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(br#"{"pids": {"limit": "lots"}}"#)?;
                c.wait_with_output()
            })
            .unwrap();
        assert_eq!(bad.status.code(), Some(1));
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains("pids.limit"), "{err}");
        assert_eq!(read_cg("pids", &rel, "pids.max", "pids.max"), "20");

        // kill --all, delete: the cgroup goes with the container.
        oci(&env, &root, &["kill", "--all", "cg1", "KILL"]).ok();
        wait_for("stopped", || status(&env, &root, "cg1") == "stopped");
        oci(&env, &root, &["delete", "cg1"]).ok();
        for c in CONTROLLERS {
            assert!(!cg_dir(c, &rel).exists(), "{c}: {rel} left behind");
        }

        // update of a controller create did not use: its hierarchy is added (v1; on v2 the
        // one directory, made for the freezer, has it), the container's process moved in,
        // and delete removes it too.
        let cfg_path = b.join("config.json");
        let mut cfg: Value = serde_json::from_str(&fs::read_to_string(&cfg_path).unwrap()).unwrap();
        cfg["linux"].as_object_mut().unwrap().remove("resources");
        env.write("cg/config.json", serde_json::to_string(&cfg).unwrap());
        oci_detached(&env, &root, &["run", "--detach", "--bundle", &bs, "cg2"]).ok();
        if v1("pids") {
            assert!(
                !cg_dir("pids", &rel).exists(),
                "pids used without a pids resource"
            );
        }
        oci(&env, &root, &["update", "--pids-limit", "9", "cg2"]).ok();
        assert_eq!(read_cg("pids", &rel, "pids.max", "pids.max"), "9");
        let st: Value = serde_json::from_str(&oci(&env, &root, &["state", "cg2"]).stdout).unwrap();
        let pid = st["pid"].to_string();
        let procs = read_cg("pids", &rel, "cgroup.procs", "cgroup.procs");
        assert!(procs.lines().any(|l| l == pid), "{pid} not in {procs}");
        oci(&env, &root, &["delete", "--force", "cg2"]).ok();
        for c in CONTROLLERS {
            assert!(!cg_dir(c, &rel).exists(), "{c}: {rel} left behind");
        }

        // A value the kernel refuses (no cpu 999): the error names its JSON path, exit 1,
        // nothing under --root and no cgroup left.
        for (res, path) in [
            (json!({"cpu": {"cpus": "999"}}), "linux.resources.cpu.cpus"),
            (
                json!({"memory": {"swappiness": 101}}),
                "linux.resources.memory.swappiness",
            ),
        ] {
            let cfg_path = b.join("config.json");
            let mut cfg: Value =
                serde_json::from_str(&fs::read_to_string(&cfg_path).unwrap()).unwrap();
            cfg["linux"]["resources"] = res;
            env.write("cg/config.json", serde_json::to_string(&cfg).unwrap());
            let r = oci_detached(&env, &root, &["create", "--bundle", &bs, "cg2"]);
            r.assert_code(1);
            assert!(r.stderr.contains(path), "{path}: {}", r.stderr);
            assert!(!root.join("cg2").exists());
            for c in CONTROLLERS {
                assert!(!cg_dir(c, &rel).exists(), "{c}: {rel} left behind");
            }
        }
    }
}

/// The device programs attached to a cgroup v2 directory (bpftool is not installed).
fn device_programs(dir: &Path) -> Vec<u32> {
    use std::os::fd::AsFd;
    let f = fs::File::open(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    foxbox::sys::bpf::prog_query(f.as_fd(), foxbox::sys::bpf::ATTACH_CGROUP_DEVICE)
        .unwrap_or_else(|e| panic!("BPF_PROG_QUERY {}: {e}", dir.display()))
}

/// `linux.resources.devices`: deny all, allow /dev/null; a node in the rootfs (c 1:11, kmsg,
/// made by the test, in no allow rule) cannot be opened for writing (EPERM; kmsg checks no
/// capability for that, unlike for reading) while /dev/null can; `update` with a rule for it
/// lets it be opened. Enforced by the v1 devices controller where there is one (this
/// hybrid host) and by an eBPF device program on cgroup v2 (the v2 VM: FOXBOX_CGROUP_EXPECT=v2
/// asserts that path, one program attached and the old one detached by `update`). Root only:
/// an unprivileged runtime applies no device rules (a warning).
#[test]
fn device_rules_deny_what_they_do_not_allow() {
    if !common::is_root() {
        eprintln!("SKIP: device rules are applied by a privileged runtime only");
        return;
    }
    let env = Env::new(Who::Root);
    let rel = format!("/foxbox-test-oci-dev-{}", std::process::id());
    let out = env.work().join("out");
    fs::create_dir_all(&out).unwrap();
    let (b, root) = bundle(&env, "dev", |c| {
        with_out(
            c,
            &out,
            &[
                "sh",
                "-c",
                "echo x > /dev/null && echo null:ok > /out/r; \
                 (exec 3>/probe) 2>> /out/r; echo probe:$? >> /out/r; exec sleep 600",
            ],
        );
        c["linux"]["cgroupsPath"] = json!(rel);
        c["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]});
    });
    let probe = b.join("rootfs/probe");
    let mk = std::process::Command::new("mknod")
        .arg(&probe)
        .args(["c", "1", "11"])
        .status()
        .unwrap();
    assert!(mk.success(), "mknod {}", probe.display());
    let _guard = CgroupGuard {
        env: &env,
        root: root.clone(),
        ids: vec!["dv1"],
        rel: rel.clone(),
    };
    let bs = b.display().to_string();
    oci_detached(&env, &root, &["create", "--bundle", &bs, "dv1"]).ok();
    let dir = cg_dir("devices", &rel);
    let v2 = !v1("devices");
    match std::env::var("FOXBOX_CGROUP_EXPECT").as_deref() {
        Ok("v2") => assert!(v2, "the devices controller is on v1 here"),
        Ok("v1") => assert!(!v2, "no v1 devices controller here"),
        _ => {}
    }
    if v2 {
        let ctl = fs::read_to_string(dir.join("cgroup.controllers")).unwrap();
        assert!(!ctl.split_whitespace().any(|c| c == "devices"), "{ctl}");
        assert_eq!(device_programs(&dir).len(), 1, "{}", dir.display());
    } else {
        let list = read_cg("devices", &rel, "devices.list", "");
        assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
        assert!(!list.contains("1:11"), "{list}");
    }
    oci(&env, &root, &["start", "dv1"]).ok();
    let result = || fs::read_to_string(out.join("r")).unwrap_or_default();
    wait_for("the probe", || result().contains("\nprobe:"));
    let r = result();
    assert!(r.starts_with("null:ok\n"), "/dev/null is allowed: {r}");
    assert!(r.contains("Operation not permitted"), "{r}");
    assert!(r.ends_with("probe:1\n"), "{r}");

    // update: a rule that allows writing the probe replaces the program (v2: one attached).
    let before = if v2 { device_programs(&dir) } else { vec![] };
    let upd = env
        .foxbox(["oci", "--root", &root.display().to_string(), "update", "--resources", "-", "dv1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(
                br#"{"devices": [{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]}"#,
            )?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        upd.status.success(),
        "{}",
        String::from_utf8_lossy(&upd.stderr)
    );
    if !v2 {
        let list = read_cg("devices", &rel, "devices.list", "");
        assert!(list.lines().any(|l| l == "c 1:11 w"), "{list}");
    }
    if v2 {
        let after = device_programs(&dir);
        assert_eq!(after.len(), 1, "{after:?}");
        assert_ne!(after, before, "the old program is detached");
    }
    let e = oci(
        &env,
        &root,
        &[
            "exec",
            "dv1",
            "sh",
            "-c",
            "(exec 3>/probe) && echo writable; echo x > /dev/null && echo null:ok",
        ],
    );
    e.ok();
    assert_eq!(e.stdout, "writable\nnull:ok\n", "{}", e.stderr);

    oci(&env, &root, &["delete", "--force", "dv1"]).ok();
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// The namespaces of `pid` (`ns` names under /proc/PID/ns), as links.
fn ns_link(pid: i32, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

/// A process holding new namespaces (`unshare --fork ... sleep`), killed when dropped.
struct Holder(std::process::Child);

impl Holder {
    fn start(env: &Env, args: &[&str]) -> Holder {
        let child = env
            .command("unshare")
            .args(args)
            .args(["--fork", "sleep", "600"])
            .spawn()
            .unwrap();
        let h = Holder(child);
        let pid = h.pid();
        // unshare has made its namespaces once it has forked sleep.
        wait_for("the namespaces of unshare", || {
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .is_ok_and(|c| !c.trim().is_empty())
        });
        h
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User, mount and pid namespaces joined by `path` (user first, so the others, which it owns,
/// can be joined), with the uid/gid maps taken from the joined user namespace: the container's
/// process is in the holder's namespaces. A config whose maps differ from the joined
/// namespace's is refused, naming the JSON path, with nothing left under `--root`.
#[test]
fn user_mount_and_pid_namespaces_join_by_path() {
    for env in envs() {
        let holder = Holder::start(&env, &["--user", "--map-root-user", "--mount", "--pid"]);
        let h = holder.pid();
        let (b, root) = bundle(&env, "nsjoin", |c| {
            c["process"]["args"] = json!(["sleep", "600"]);
            let list = c["linux"]["namespaces"].as_array_mut().unwrap();
            list.retain(|n| !matches!(n["type"].as_str(), Some("user" | "mount" | "pid")));
            list.push(json!({"type": "pid", "path": format!("/proc/{h}/ns/pid_for_children")}));
            list.push(json!({"type": "mount", "path": format!("/proc/{h}/ns/mnt")}));
            list.push(json!({"type": "user", "path": format!("/proc/{h}/ns/user")}));
            // Root's bundle has no maps: they come from the joined namespace. The rootless one
            // maps the user's uid to 0, as the holder's does.
        });
        let bs = b.display().to_string();
        let pid_file = env.work().join("nsjoin.pid");
        let pf = pid_file.display().to_string();
        oci_detached(
            &env,
            &root,
            &["create", "--bundle", &bs, "--pid-file", &pf, "j1"],
        )
        .ok();
        let pid: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        for (ns, holder_ns) in [
            ("user", "user"),
            ("mnt", "mnt"),
            ("pid", "pid_for_children"),
        ] {
            assert_eq!(
                ns_link(pid, ns),
                ns_link(h, holder_ns),
                "{ns} ({:?})",
                env.who
            );
        }
        let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
        assert_eq!(
            uid_map.split_whitespace().collect::<Vec<_>>(),
            ["0", &env.ids().0.to_string(), "1"],
            "{uid_map}"
        );
        oci(&env, &root, &["delete", "--force", "j1"]).ok();

        // Maps that differ from the joined namespace's.
        let (b, root) = bundle(&env, "nsjoin-bad", |c| {
            let list = c["linux"]["namespaces"].as_array_mut().unwrap();
            list.retain(|n| n["type"] != "user");
            list.push(json!({"type": "user", "path": format!("/proc/{h}/ns/user")}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 5}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 5}]);
        });
        assert_create_refused(&env, &root, &b, "j2", "linux.uidMappings");
    }
}

/// A user namespace that maps no uid 0 (ids 1-1000 to 100000-100999: root's range, and the
/// unprivileged user's subordinate one): the set-up process takes the command's id, which
/// can make the container's mounts, and the command runs as it.
#[test]
fn a_user_namespace_without_uid_0_runs() {
    for env in envs() {
        let (b, root) = bundle(&env, "no0", |c| {
            c["process"]["args"] = json!(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"]);
            c["process"]["user"] = json!({"uid": 1, "gid": 1});
            let list = c["linux"]["namespaces"].as_array_mut().unwrap();
            if !list.iter().any(|n| n["type"] == "user") {
                list.push(json!({"type": "user"}));
            }
            let map = json!([{"containerID": 1, "hostID": 100000, "size": 1000}]);
            c["linux"]["uidMappings"] = map.clone();
            c["linux"]["gidMappings"] = map;
        });
        let r = oci(
            &env,
            &root,
            &["run", "--bundle", &b.display().to_string(), "n0"],
        );
        r.ok();
        let words: Vec<&str> = r.stdout.split_whitespace().collect();
        assert_eq!(words, ["1", "1", "1", "100000", "1000"], "{:?}", env.who);
    }
}

/// The optional fields (`shared:N`, `master:N`, `unbindable`) of the mountinfo line for
/// mount point `at`, in `mountinfo`.
fn propagation_of(mountinfo: &str, at: &str) -> String {
    let line = mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(at))
        .unwrap_or_else(|| panic!("no {at} in {mountinfo}"));
    let fields: Vec<&str> = line.split(' ').collect();
    let end = fields.iter().position(|f| *f == "-").unwrap();
    fields[6..end].join(" ")
}

/// `linux.rootfsPropagation` and a mount's `propagation` option are applied (not warned): the
/// container's mountinfo shows its root shared or unbindable, and a bind with `rshared`
/// shared; an unknown propagation is an error naming its JSON path.
#[test]
fn rootfs_and_mount_propagation_are_applied() {
    for env in envs() {
        let src = env.work().join("prop-src");
        env.command("mkdir").arg(&src).status().unwrap();
        for (root_prop, root_want) in [("shared", "shared:"), ("unbindable", "unbindable")] {
            let (b, root) = bundle(&env, &format!("prop-{root_prop}"), |c| {
                c["process"]["args"] = json!(["cat", "/proc/self/mountinfo"]);
                c["linux"]["rootfsPropagation"] = json!(root_prop);
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/m1", "type": "bind", "source": src,
                    "options": ["rbind", "rshared"]
                }));
            });
            let r = oci(
                &env,
                &root,
                &["run", "--bundle", &b.display().to_string(), "p1"],
            );
            r.ok();
            assert!(
                !r.stderr.contains("propagation"),
                "{root_prop}: {}",
                r.stderr
            );
            let got = propagation_of(&r.stdout, "/");
            assert!(got.starts_with(root_want), "{root_prop}: / has {got:?}");
            let m1 = propagation_of(&r.stdout, "/m1");
            assert!(m1.starts_with("shared:"), "/m1 has {m1:?}");
        }
        let (b, root) = bundle(&env, "prop-bad", |c| {
            c["linux"]["rootfsPropagation"] = json!("sideways");
        });
        assert_create_refused(&env, &root, &b, "p2", "linux.rootfsPropagation");
    }
}

/// `linux.sysctl` (namespaced ones) and `domainname` are set in the container's own
/// namespaces; the host's stay as they were.
#[test]
fn sysctls_and_domainname_are_set() {
    let host_forward = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_domain = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    for env in envs() {
        let (b, root) = bundle(&env, "sysctl", |c| {
            c["process"]["args"] = json!([
                "cat",
                "/proc/sys/net/ipv4/ip_forward",
                "/proc/sys/kernel/shmmni",
                "/proc/sys/kernel/domainname"
            ]);
            let list = c["linux"]["namespaces"].as_array_mut().unwrap();
            if !list.iter().any(|n| n["type"] == "network") {
                list.push(json!({"type": "network"}));
            }
            let forward = if host_forward.trim() == "1" { "0" } else { "1" };
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": forward, "kernel.shmmni": "1234"});
            c["domainname"] = json!("fox.example");
        });
        let r = oci(
            &env,
            &root,
            &["run", "--bundle", &b.display().to_string(), "s1"],
        );
        r.ok();
        let want_forward = if host_forward.trim() == "1" { "0" } else { "1" };
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(
            lines,
            [want_forward, "1234", "fox.example"],
            "{:?}",
            env.who
        );
        assert!(!r.stderr.contains("domainname"), "{}", r.stderr);
    }
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_domain
    );
}

/// `linux.devices` become nodes in the container's /dev: made with their type, numbers, mode
/// and owner as root (in the host's user namespace), the host's node bound where a user
/// namespace cannot mknod (as runc does rootless); a fifo is made either way. A node whose
/// type is `a` is an error naming its JSON path.
#[test]
fn linux_devices_become_nodes() {
    for env in envs() {
        let (b, root) = bundle(&env, "devices", |c| {
            c["process"]["args"] = json!([
                "stat",
                "-c",
                "%n %F %t:%T %a %u:%g",
                "/dev/kmsg",
                "/dev/sub/fifo"
            ]);
            c["linux"]["devices"] = json!([
                {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11,
                 "fileMode": 0o640, "uid": 0, "gid": 2},
                {"path": "/dev/sub/fifo", "type": "p", "fileMode": 0o600}
            ]);
        });
        let r = oci(
            &env,
            &root,
            &["run", "--bundle", &b.display().to_string(), "d1"],
        );
        r.ok();
        assert!(!r.stderr.contains("linux.devices"), "{}", r.stderr);
        let lines: Vec<&str> = r.stdout.lines().collect();
        let kmsg = if env.who == Who::Root {
            "/dev/kmsg character special file 1:b 640 0:2"
        } else {
            // The host's, bound: its mode, and owners the namespace does not map.
            "/dev/kmsg character special file 1:b 644 65534:65534"
        };
        assert_eq!(
            lines,
            [kmsg, "/dev/sub/fifo fifo 0:0 600 0:0"],
            "{:?}",
            env.who
        );

        let (b, root) = bundle(&env, "devices-bad", |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/x", "type": "a"}]);
        });
        assert_create_refused(&env, &root, &b, "d2", "linux.devices[0].type");
    }
}

/// With `--log`, `create`'s warnings go there (in `--log-format`), not to its stderr, which
/// is often the container's own; an error in the arguments is written there too.
#[test]
fn warnings_and_argument_errors_go_to_the_log() {
    for env in envs() {
        let (b, root) = bundle(&env, "logged", |c| {
            c["process"]["args"] = json!(["true"]);
            // Warned: not applied.
            c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
        });
        let log = env.work().join("runtime.log");
        let lg = log.display().to_string();
        let r = oci_detached(
            &env,
            &root,
            &[
                "--log",
                &lg,
                "--log-format",
                "json",
                "create",
                "--bundle",
                &b.display().to_string(),
                "l1",
            ],
        );
        r.ok();
        assert!(!r.stderr.contains("selinuxLabel"), "{}", r.stderr);
        let text = fs::read_to_string(&log).unwrap();
        let warned = text.lines().any(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["level"] == "warning" && v["msg"].as_str().unwrap().contains("selinuxLabel")
        });
        assert!(warned, "{text}");
        oci(&env, &root, &["delete", "--force", "l1"]).ok();

        let bad = oci(
            &env,
            &root,
            &[
                "--log",
                &lg,
                "--log-format",
                "json",
                "create",
                "--bogus",
                "l2",
            ],
        );
        bad.assert_code(1);
        let text = fs::read_to_string(&log).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["level"], "error", "{text}");
        assert!(last["msg"].as_str().unwrap().contains("--bogus"), "{text}");
    }
}

/// Rootless podman (as the unprivileged user, through conmon) drives foxbox-runc: podman runs
/// the runtime as root of its rootless user namespace, without `--root` and without $USER, so
/// the state goes under the user's XDG_RUNTIME_DIR (runc's rule), not /run.
#[test]
fn rootless_podman_runs_busybox_with_foxbox_runc() {
    if std::process::Command::new("podman")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: podman is not installed");
        return;
    }
    let env = Env::new(Who::User);
    let p = env.work().join("podman");
    let runroot = env.short_dir();
    let run_dir = env.dir.join("runtime");
    for d in [&p, &run_dir] {
        env.command("mkdir")
            .args(["-p", "-m", "700"])
            .arg(d)
            .status()
            .unwrap();
    }
    env.write(
        "podman/containers.conf",
        "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    );
    let link = p.join("foxbox-runc");
    env.command("ln")
        .arg("-s")
        .arg(common::foxbox_bin())
        .arg(&link)
        .status()
        .unwrap();
    let podman = |args: &[&str]| {
        let mut c = env.command("podman");
        c.env("CONTAINERS_CONF", p.join("containers.conf"))
            .arg("--root")
            .arg(p.join("root"))
            .arg("--runroot")
            .arg(runroot.path())
            .arg("--tmpdir")
            .arg(p.join("tmp"))
            .arg("--runtime")
            .arg(&link)
            .args(args);
        common::Run::from(c.output().unwrap())
    };
    let tar = busybox_tarball().display().to_string();
    podman(&["import", &tar, "localhost/busybox:latest"]).ok();
    let r = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/busybox",
        "sh",
        "-c",
        "echo hi; id -u",
    ]);
    // Rootless podman leaves a pause process holding its user namespace, its pid in the
    // tmpdir given: end it, or every run leaves one behind.
    if let Ok(pid) = fs::read_to_string(p.join("tmp/pause.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SAFETY: kill(2) on the pid podman recorded for this env's pause process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    r.ok();
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["hi", "0"],
        "{}",
        r.stderr
    );
    // Its state root was the user's (before runc's rule, /run/foxbox-runc: EACCES).
    assert!(run_dir.join("foxbox-runc").is_dir());
}

/// Capabilities the runtime itself may lack (this kind of host's root has no
/// CAP_SYS_RESOURCE) are still granted: root's container without a user namespace in its
/// config gets one of its own for them, instead of capset failing.
#[test]
fn capabilities_beyond_the_runtime_s_own_are_granted() {
    for env in envs() {
        let (b, root) = bundle(&env, "caps", |c| {
            c["process"]["args"] = json!(["grep", "CapEff", "/proc/self/status"]);
            let set = json!(["CAP_SYS_RESOURCE", "CAP_CHOWN"]);
            for k in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][k] = set.clone();
            }
        });
        let r = oci(
            &env,
            &root,
            &["run", "--bundle", &b.display().to_string(), "k1"],
        );
        r.ok();
        // CAP_CHOWN (0) and CAP_SYS_RESOURCE (24).
        assert!(
            r.stdout.contains("0000000001000001"),
            "{:?}: {}",
            env.who,
            r.stdout
        );
    }
}

/// Host pids of live processes whose command line holds `needle` (a container's set-up
/// process is a fork of `create`, whose argv names the container's id).
fn processes_with(needle: &str) -> Vec<i32> {
    common::live_pids_whose_argv(|argv| argv.join(" ").contains(needle))
}

/// Whether a mountinfo text has a mount whose mount point ends with `suffix`.
fn mounted_at(mountinfo: &str, suffix: &str) -> bool {
    mountinfo
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.ends_with(suffix)))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json_of(p: &Path) -> Value {
    serde_json::from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The runtime-spec's places for the hooks that run while the container is made and started:
/// createRuntime in the runtime's namespaces once the container's exist and before its
/// pivot_root (its mount namespace still has the rootfs at the scratch mountpoint, which the
/// command's own mountinfo no longer shows), then createContainer in the container's mount
/// namespace with host paths still reachable, both with status `creating` and the container's
/// pid; startContainer only at `start`, inside the container (a path only its rootfs has),
/// before the command.
#[test]
fn hooks_run_at_the_runtime_spec_s_places_in_order() {
    for env in envs() {
        let out = env.work().join("at-out");
        let host = env.work().join("at-host");
        for d in [&out, &host] {
            env.command("mkdir").arg(d).status().unwrap();
        }
        let h = host.display().to_string();
        let (b, root) = bundle(&env, "at", |c| {
            with_out(
                c,
                &out,
                &[
                    "sh",
                    "-c",
                    "{ cat /out/start.mark; readlink /proc/self/ns/mnt; } > /out/command; \
                     cat /proc/self/mountinfo > /out/after.mountinfo",
                ],
            );
            let cr = format!(
                "cat > {h}/cr.state; pid=$(sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p' {h}/cr.state); \
                 cat /proc/$pid/mountinfo > {h}/cr.mountinfo; \
                 readlink /proc/self/ns/mnt > {h}/cr.mnt; echo createRuntime >> {h}/order"
            );
            let cc = format!(
                "cat > {h}/cc.state; readlink /proc/self/ns/mnt > {h}/cc.mnt; \
                 echo createContainer >> {h}/order"
            );
            c["hooks"] = json!({
                "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", cr]}],
                "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", cc]}],
                "startContainer": [{"path": "/start-hook.sh", "timeout": 10}],
            });
        });
        // Only the container's rootfs has this path.
        let hook = env.write(
            "at/rootfs/start-hook.sh",
            "#!/bin/sh\ncat > /out/start.state; echo startContainer > /out/start.mark\n",
        );
        env.command("chmod").arg("755").arg(&hook).status().unwrap();
        assert!(!Path::new("/start-hook.sh").exists());
        let bs = b.display().to_string();
        let pf = env.work().join("at.pid");
        oci_detached(
            &env,
            &root,
            &[
                "create",
                "--bundle",
                &bs,
                "--pid-file",
                &pf.display().to_string(),
                "at1",
            ],
        )
        .ok();
        let pid: i64 = read(&pf).trim().parse().unwrap();
        assert_eq!(
            read(&host.join("order")),
            "createRuntime\ncreateContainer\n"
        );
        for (f, kind) in [
            ("cr.state", "createRuntime"),
            ("cc.state", "createContainer"),
        ] {
            let st = json_of(&host.join(f));
            assert_eq!(st["status"], "creating", "{:?} {kind}: {st}", env.who);
            assert_eq!(st["pid"], pid, "{:?} {kind}: {st}", env.who);
            assert_eq!(st["id"], "at1");
        }
        // Before pivot_root: the rootfs is still at the scratch mountpoint under --root.
        let at = "/oci-root/at1/mnt/root";
        let before = read(&host.join("cr.mountinfo"));
        assert!(mounted_at(&before, at), "{:?}: {before}", env.who);
        // Nothing of startContainer before `start`.
        assert!(
            !out.join("start.mark").exists(),
            "startContainer ran at create"
        );
        assert_eq!(status(&env, &root, "at1"), "created");

        oci(&env, &root, &["start", "at1"]).ok();
        wait_for("the command", || {
            fs::read_to_string(out.join("after.mountinfo")).is_ok_and(|s| !s.is_empty())
        });
        let command = read(&out.join("command"));
        let lines: Vec<&str> = command.lines().collect();
        assert_eq!(lines[0], "startContainer", "{:?}: {command}", env.who);
        // createContainer ran in the container's mount namespace, createRuntime did not.
        assert_eq!(read(&host.join("cc.mnt")).trim(), lines[1], "{:?}", env.who);
        assert_ne!(read(&host.join("cr.mnt")).trim(), lines[1], "{:?}", env.who);
        let after = read(&out.join("after.mountinfo"));
        assert!(!mounted_at(&after, at), "{:?}: {after}", env.who);
        let st = json_of(&out.join("start.state"));
        assert_eq!(st["status"], "created", "{st}");
        assert_eq!(st["pid"], pid, "{st}");
        assert_eq!(st["id"], "at1");
        wait_for("stopped", || status(&env, &root, "at1") == "stopped");
        oci(&env, &root, &["delete", "at1"]).ok();
        assert!(!root.join("at1").exists());
    }
}

/// A failing createRuntime or createContainer hook fails `create`, naming it, with no state
/// and no process left; a failing startContainer hook fails `start` (exit 1, naming it), the
/// command never runs and the container is stopped, for `delete` to remove; `run` removes it
/// itself.
#[test]
fn failing_create_and_start_hooks_fail_their_command() {
    for env in envs() {
        for (i, kind) in ["createRuntime", "createContainer"].iter().enumerate() {
            let id = format!("hook-fails-{i}");
            let (b, root) = bundle(&env, &id, |c| {
                c["process"]["args"] = json!(["true"]);
                c["hooks"] = json!({ *kind: [{"path": "/bin/false"}] });
            });
            assert_create_refused(&env, &root, &b, &id, &format!("{kind} hook /bin/false"));
            assert!(
                processes_with(&id).is_empty(),
                "{:?} {kind}: a process is left",
                env.who
            );
        }

        let out = env.work().join("sc-out");
        env.command("mkdir").arg(&out).status().unwrap();
        let (b, root) = bundle(&env, "sc", |c| {
            with_out(c, &out, &["touch", "/out/ran"]);
            c["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
        });
        let bs = b.display().to_string();
        oci_detached(&env, &root, &["create", "--bundle", &bs, "sc1"]).ok();
        let r = oci(&env, &root, &["start", "sc1"]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("startContainer hook /bin/false"),
            "{:?}: {}",
            env.who,
            r.stderr
        );
        assert_eq!(status(&env, &root, "sc1"), "stopped");
        std::thread::sleep(Duration::from_millis(200));
        assert!(!out.join("ran").exists(), "the command ran");
        oci(&env, &root, &["delete", "sc1"]).ok();
        assert!(!root.join("sc1").exists());

        let r = oci(&env, &root, &["run", "--bundle", &bs, "sc2"]);
        r.assert_code(1);
        assert!(r.stderr.contains("startContainer hook"), "{}", r.stderr);
        assert!(!out.join("ran").exists(), "the command ran");
        assert!(!root.join("sc2").exists(), "run left its container");
    }
}

/// `process` is optional in config.json and required by `start`: `create` makes the container,
/// which waits at its gate; `start` fails saying so and leaves it created; `delete` removes it.
#[test]
fn a_config_without_process_is_created_and_not_started() {
    for env in envs() {
        let (b, root) = bundle(&env, "noproc", |c| {
            c.as_object_mut().unwrap().remove("process");
        });
        let bs = b.display().to_string();
        oci_detached(&env, &root, &["create", "--bundle", &bs, "np1"]).ok();
        assert_eq!(status(&env, &root, "np1"), "created");
        let r = oci(&env, &root, &["start", "np1"]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("process: not set; start needs it"),
            "{:?}: {}",
            env.who,
            r.stderr
        );
        assert_eq!(status(&env, &root, "np1"), "created");
        oci(&env, &root, &["delete", "--force", "np1"]).ok();
        assert!(!root.join("np1").exists());
        assert!(processes_with(" np1").is_empty(), "{:?}", env.who);
    }
}

/// Deletes a container when dropped (a failed assertion must not leave its mounts on the
/// host, nor let the env's clean-up walk into them).
struct Deleted<'a>(&'a Env, PathBuf, &'static str);

impl Drop for Deleted<'_> {
    fn drop(&mut self) {
        let _ = oci(self.0, &self.1, &["delete", "--force", self.2]);
    }
}

/// A tmpfs mounted (shared) at `dir` and bound at `peer`, which is then its peer: a mount
/// below one appears below the other. Unmounted when dropped.
struct SharedPair(PathBuf, PathBuf);

impl SharedPair {
    fn mount(dir: PathBuf, peer: PathBuf) -> SharedPair {
        for d in [&dir, &peer] {
            fs::create_dir_all(d).unwrap();
        }
        let pair = SharedPair(dir, peer);
        let (d, p) = (pair.0.display().to_string(), pair.1.display().to_string());
        for args in [
            vec!["-t", "tmpfs", "tmpfs", &d],
            vec!["--make-shared", &d],
            vec!["--bind", &d, &p],
        ] {
            let st = std::process::Command::new("mount")
                .args(&args)
                .status()
                .unwrap();
            assert!(st.success(), "mount {args:?}");
        }
        pair
    }
}

impl Drop for SharedPair {
    fn drop(&mut self) {
        for d in [&self.1, &self.0] {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(d)
                .status();
        }
    }
}

/// A config that lists no namespace at all (the conformance suite's `linux_ns_itype`): the
/// container inherits every namespace of the runtime (the runtime-spec), its /proc, /dev,
/// binds and masked paths made in the runtime's mount namespace below its rootfs, which is
/// bound onto itself and made private first: the bundle is on a shared tmpfs whose peer sees
/// the rootfs bind but nothing mounted below it. `ps`, `exec`, `kill` work; `delete`, and a
/// `create` that fails half-way, leave no mount below the bundle or its peer. Root only: an
/// unprivileged runtime is refused (`a_rootless_config_without_mount_namespace_is_refused`).
#[test]
fn a_config_without_namespaces_inherits_the_runtime_s() {
    if !common::root_or_skip("only root can mount in its own mount namespace") {
        return;
    }
    let env = Env::new(Who::Root);
    let pair = SharedPair::mount(env.work().join("shared"), env.work().join("peer"));
    let out = env.work().join("out");
    fs::create_dir_all(&out).unwrap();
    let (b, root) = bundle(&env, "shared/none", |c| {
        c["linux"]["namespaces"] = json!([]);
        c.as_object_mut().unwrap().remove("hostname");
        with_out(
            c,
            &out,
            &[
                "sh",
                "-c",
                "echo $$ > /out/pid; ls /proc/$$/ns > /out/ns; \
                 cat /proc/self/mountinfo > /out/mountinfo; wc -c < /proc/keys > /out/keys; \
                 ls -A /sys/firmware | wc -l > /out/firmware; exec sleep 600",
            ],
        );
    });
    let (bs, rootfs) = (b.display().to_string(), b.join("rootfs"));
    let peer_rootfs = pair.1.join("none/rootfs");
    let _deleted = Deleted(&env, root.clone(), "n1");
    oci_detached(&env, &root, &["create", "--bundle", &bs, "n1"]).ok();
    let st: Value = serde_json::from_str(&oci(&env, &root, &["state", "n1"]).ok().stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap() as i32;
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
        assert_eq!(
            ns_link(pid, ns),
            ns_link(std::process::id() as i32, ns),
            "{ns}"
        );
    }
    let below = common::mounts_below(&rootfs);
    for m in [
        "",
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/out",
        "/proc/keys",
        "/sys/firmware",
    ] {
        let want = format!("{}{m}", rootfs.display());
        assert!(below.contains(&want), "no {want} in {below:?}");
    }
    // The peer got the bind of the rootfs (made below its shared parent), nothing below it.
    assert_eq!(
        common::mounts_below(&peer_rootfs),
        [peer_rootfs.display().to_string()]
    );

    oci(&env, &root, &["start", "n1"]).ok();
    wait_for("the container's command", || {
        fs::read_to_string(out.join("firmware")).is_ok_and(|s| s.ends_with('\n'))
    });
    let read = |f: &str| fs::read_to_string(out.join(f)).unwrap();
    // The runtime's pid namespace, and a /proc that shows it.
    assert_eq!(read("pid").trim(), pid.to_string());
    assert!(read("ns").contains("pid"), "{}", read("ns"));
    let inside = read("mountinfo");
    for m in [
        " / ",
        " /proc ",
        " /proc/keys ",
        " /proc/sys ",
        " /sys/firmware ",
    ] {
        assert!(inside.contains(m), "no {m:?} in {inside}");
    }
    assert_eq!(read("keys").trim(), "0", "/proc/keys is masked");
    assert_eq!(read("firmware").trim(), "0", "/sys/firmware is masked");
    let ps = oci(&env, &root, &["ps", "n1"]);
    assert!(ps.ok().stdout.contains(&pid.to_string()), "{}", ps.stdout);
    // exec enters the container's root (busybox's, with its linuxrc).
    let ls = oci(&env, &root, &["exec", "n1", "ls", "/"]);
    assert!(ls.ok().stdout.contains("linuxrc"), "{}", ls.stdout);
    oci(&env, &root, &["kill", "n1", "KILL"]).ok();
    wait_for("the container to stop", || {
        status(&env, &root, "n1") == "stopped"
    });
    oci(&env, &root, &["delete", "n1"]).ok();
    assert_eq!(
        common::mounts_below(&b),
        Vec::<String>::new(),
        "left on the host"
    );
    assert_eq!(
        common::mounts_below(&pair.1.join("none")),
        Vec::<String>::new()
    );

    // A create that fails after its first mounts (a bind whose source is missing) unmounts
    // them again.
    let (b, root) = bundle(&env, "shared/none-bad", |c| {
        c["linux"]["namespaces"] = json!([]);
        c.as_object_mut().unwrap().remove("hostname");
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/gone", "type": "bind", "source": "/nonexistent", "options": ["rbind"]}),
        );
    });
    let r = oci_detached(
        &env,
        &root,
        &["create", "--bundle", &b.display().to_string(), "n2"],
    );
    r.assert_code(1);
    assert!(r.stderr.contains("/nonexistent"), "{}", r.stderr);
    assert!(!root.join("n2").exists(), "state left under --root");
    assert_eq!(
        common::mounts_below(&b),
        Vec::<String>::new(),
        "left on the host"
    );
    assert_eq!(
        common::mounts_below(&pair.1.join("none-bad")),
        Vec::<String>::new()
    );

    // The runtime's own root as the container's, without a mount namespace: its mounts would
    // cover the host's.
    // (Other tests may mount in their own dirs meanwhile: only the host's top is compared.)
    let top = || {
        let all = fs::read_to_string("/proc/self/mountinfo").unwrap();
        all.lines()
            .filter(|l| {
                let at = l.split(' ').nth(4).unwrap_or("");
                ["/", "/proc", "/dev", "/sys", "/dev/pts", "/dev/shm"].contains(&at)
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let before = top();
    let (b, root) = bundle(&env, "none-host-root", |c| {
        c["linux"]["namespaces"] = json!([]);
        c.as_object_mut().unwrap().remove("hostname");
        c["root"]["path"] = json!("/");
    });
    assert_create_refused(&env, &root, &b, "n3", "root.path");
    assert_eq!(top(), before);
}

/// A config that lists every namespace but the cgroup one: the container shares the
/// runtime's cgroup namespace (no warning says it gets one); listed, it has its own.
#[test]
fn a_missing_cgroup_namespace_is_the_runtime_s() {
    for env in envs() {
        for listed in [false, true] {
            let name = format!("cgns-{listed}");
            let (b, root) = bundle(&env, &name, |c| {
                c["process"]["args"] = json!(["sleep", "600"]);
                let list = c["linux"]["namespaces"].as_array_mut().unwrap();
                list.retain(|n| n["type"] != "cgroup");
                if listed {
                    list.push(json!({"type": "cgroup"}));
                }
            });
            let _deleted = Deleted(&env, root.clone(), "g1");
            let r = oci_detached(
                &env,
                &root,
                &["create", "--bundle", &b.display().to_string(), "g1"],
            );
            r.ok();
            assert!(!r.stderr.contains("cgroup namespace"), "{}", r.stderr);
            let st: Value =
                serde_json::from_str(&oci(&env, &root, &["state", "g1"]).ok().stdout).unwrap();
            let pid = st["pid"].as_i64().unwrap() as i32;
            let own = ns_link(std::process::id() as i32, "cgroup");
            assert_eq!(
                ns_link(pid, "cgroup") == own,
                !listed,
                "{:?}, cgroup listed: {listed}",
                env.who
            );
        }
    }
}

/// Without a mount namespace (or a pid one), a container in a user namespace is refused,
/// naming `linux.namespaces`, with nothing left under `--root`: an unprivileged runtime's
/// (always in a user namespace), and root's that asks for one.
#[test]
fn a_config_in_a_user_namespace_without_mount_or_pid_namespace_is_refused() {
    for env in envs() {
        for missing in ["mount", "pid"] {
            let name = format!("userns-no-{missing}");
            let (b, root) = bundle(&env, &name, |c| {
                let list = c["linux"]["namespaces"].as_array_mut().unwrap();
                list.retain(|n| n["type"] != missing);
                if !list.iter().any(|n| n["type"] == "user") {
                    list.push(json!({"type": "user"}));
                    let map = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
                    c["linux"]["uidMappings"] = map.clone();
                    c["linux"]["gidMappings"] = map;
                }
            });
            assert_create_refused(&env, &root, &b, "u1", "linux.namespaces");
        }
    }
}
