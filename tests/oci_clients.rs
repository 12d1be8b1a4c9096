//! Real clients drive foxbox as their OCI runtime: containerd (Debian's package, the path the
//! Kubernetes CRI plugin takes) runs `foxbox-runc` through its io.containerd.runc.v2 shim.
//! (podman is covered in tests/oci_runtime.rs.)
//!
//! The test starts its own containerd with a private config: root, state, sockets, the shim's
//! runc root (`--runc-root`) and ctr's fifos under the env's temp dir, the CRI plugin off. Only
//! the shims' sockets are not ours to place: containerd 1.6 puts them under /run/containerd/s
//! whatever the config says; the test checks that its shims are gone, and thus their sockets.
//! Root only: containerd rootless needs rootlesskit.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, Env, Run, Who};

const NS: &str = "foxbox-test";

/// A containerd of the test's own, stopped (with any shim of its left behind) when dropped.
struct Containerd {
    child: Option<Child>,
    dir: PathBuf,
    sock: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        fs::create_dir_all(dir).unwrap();
        let sock = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n\
                 [ttrpc]\n  address = \"{sock}.ttrpc\"\n\
                 [debug]\n  level = \"debug\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                sock = sock.display(),
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let mut c = Containerd {
            child: Some(child),
            dir: dir.to_path_buf(),
            sock,
        };
        let until = Instant::now() + Duration::from_secs(60);
        while c.ctr(&["version"]).code != 0 {
            if let Some(st) = c.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("containerd exited ({st}):\n{}", c.log());
            }
            assert!(
                Instant::now() < until,
                "containerd's socket did not answer:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> Run {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.sock)
            .arg("--namespace")
            .arg(NS)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr");
        Run::from(out)
    }

    /// Pids of the shims serving this containerd (their command line names its socket).
    fn shims(&self) -> Vec<i32> {
        let sock = self.sock.display().to_string();
        pids_whose_cmdline(|c| c.contains("containerd-shim") && c.contains(&sock))
    }

    /// Where containerd 1.6's shim for container `id` listens (`shim.SocketAddress`: a hash of
    /// containerd's address, the namespace and the id, under the fixed /run/containerd/s).
    fn shim_socket(&self, id: &str) -> PathBuf {
        use sha2::Digest;
        let key = format!("{}/{NS}/{id}", self.sock.display());
        Path::new("/run/containerd/s").join(hex::encode(sha2::Sha256::digest(key.as_bytes())))
    }

    /// Stop containerd and whatever it left: containers still there (a failed test's) are
    /// killed and deleted through containerd, so that their shims exit and take their sockets
    /// and mounts along; then any shim left is killed and mounts under the dir unmounted.
    fn stop(&mut self) {
        let running = self
            .child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none());
        if running {
            let ls = self.ctr(&["container", "ls", "-q"]);
            for id in ls.stdout.split_whitespace() {
                self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
                self.ctr(&["task", "rm", "-f", id]);
                self.ctr(&["container", "rm", id]);
                let _ = fs::remove_file(self.shim_socket(id));
            }
        }
        for pid in self.shims() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for m in common::mounts_below(&self.dir).into_iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pids_whose_cmdline(f: impl Fn(&str) -> bool) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let c = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            f(&String::from_utf8_lossy(&c).replace('\0', " "))
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The task's (pid, status) in `ctr task ls`.
fn task(c: &Containerd, id: &str) -> Option<(i32, String)> {
    let ls = c.ctr(&["task", "ls"]);
    ls.ok();
    ls.stdout.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && f[0] == id).then(|| (f[1].parse().unwrap(), f[2].to_string()))
    })
}

/// A containerd with busybox imported from `foxbox image save`'s archive, and the foxbox-runc
/// link its shims run (the fields drop in order: containerd stops before the env goes).
struct Fixture {
    c: Containerd,
    dir: PathBuf,
    link: PathBuf,
    _env: Env,
}

impl Fixture {
    /// None (the test skipped, saying why) when not root or containerd is not installed.
    fn new() -> Option<Fixture> {
        if !common::root_or_skip(
            "containerd as root only (containerd rootless needs rootlesskit, not driven here)",
        ) {
            return None;
        }
        for prog in ["containerd", "ctr", "containerd-shim-runc-v2"] {
            if Command::new("sh")
                .args(["-c", &format!("command -v {prog}")])
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
            {
                eprintln!("SKIP: {prog} is not installed (scripts/setup.sh installs containerd)");
                return None;
            }
        }
        let env = Env::new(Who::Root);
        env.import_busybox();
        let archive = env.work().join("busybox-oci.tar");
        env.run(["image", "save", "busybox", "-o", archive.to_str().unwrap()])
            .ok();
        let link = env.dir.join("foxbox-runc");
        std::os::unix::fs::symlink(common::foxbox_bin(), &link).unwrap();
        let dir = env.dir.join("containerd");
        let c = Containerd::start(&dir);
        c.ctr(&["image", "import", archive.to_str().unwrap()]).ok();
        let ls = c.ctr(&["image", "ls", "-q"]);
        assert_eq!(ls.stdout.trim(), "busybox:latest", "{}", ls.stderr);
        Some(Fixture {
            c,
            dir,
            link,
            _env: env,
        })
    }

    /// The shim's runc root: foxbox-runc keeps its state in a directory per namespace below.
    fn runc_root(&self) -> PathBuf {
        self.dir.join("runc")
    }

    /// `ctr run [extra] busybox:latest ID CMD...` with foxbox-runc as the shim's runtime, its
    /// root and ctr's fifos under the test's dir.
    fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Run {
        let (link, root) = (self.link.display().to_string(), self.runc_root());
        let fifos = self.dir.join("fifo").display().to_string();
        let root = root.display().to_string();
        let mut a = vec![
            "run",
            "--runc-binary",
            &link,
            "--runc-root",
            &root,
            "--fifo-dir",
            &fifos,
        ];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["busybox:latest", id]);
        a.extend_from_slice(cmd);
        self.c.ctr(&a)
    }

    /// Start `sleep 1000` as the detached task `id`; its pid once it runs the command.
    fn sleeper(&self, id: &str) -> i32 {
        let r = self.run(&["-d"], id, &["sleep", "1000"]);
        assert_eq!(r.code, 0, "{r:?}\n{}", self.c.log());
        let (pid, status) = task(&self.c, id).expect("the task is listed");
        assert_eq!(status, "RUNNING");
        assert!(alive(pid), "the task's pid {pid} is not running");
        // `start` returns once the process is released, maybe before it has exec'd the command.
        eventually("the task to exec sleep", || {
            fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default() == b"sleep\x001000\x00"
        });
        pid
    }
}

/// containerd runs busybox from an archive `foxbox image save` wrote, with foxbox-runc as the
/// shim's runtime: `ctr run --rm` prints the command's output; a detached task is RUNNING,
/// killed, STOPPED, deleted, and no process, shim or mount of it is left.
#[test]
fn containerd_runs_busybox_with_foxbox_runc() {
    let Some(mut f) = Fixture::new() else {
        return;
    };
    let (c, dir) = (&f.c, f.dir.clone());
    let runc_root = f.runc_root().display().to_string();
    let r = f.run(&["--rm"], "hi", &["echo", "hi"]);
    assert_eq!(r.code, 0, "{r:?}\n{}", c.log());
    assert_eq!(r.stdout, "hi\n", "{r:?}");
    let r = f.run(&["--rm"], "seven", &["sh", "-c", "exit 7"]);
    assert_eq!(r.code, 7, "{r:?}");
    assert!(c.ctr(&["container", "ls", "-q"]).stdout.trim().is_empty());

    let pid = f.sleeper("sleeper");
    assert!(
        c.shim_socket("sleeper").exists(),
        "no shim socket where expected"
    );
    // The shim's runtime is foxbox: its state of the task, under the shim's root per namespace.
    let st = Run::from(
        Command::new(&f.link)
            .args(["--root", &format!("{runc_root}/{NS}"), "state", "sleeper"])
            .output()
            .unwrap(),
    );
    st.ok();
    let st: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"], pid, "{st}");
    c.ctr(&["task", "kill", "-s", "SIGKILL", "sleeper"]).ok();
    eventually("the task to stop", || {
        task(c, "sleeper").is_some_and(|(_, s)| s == "STOPPED")
    });
    assert!(!alive(pid), "the killed task's process {pid} is running");
    c.ctr(&["task", "rm", "sleeper"]).ok();
    c.ctr(&["container", "rm", "sleeper"]).ok();
    assert!(task(c, "sleeper").is_none());
    assert!(c.ctr(&["container", "ls", "-q"]).stdout.trim().is_empty());
    eventually("the shims to exit", || c.shims().is_empty());
    for id in ["hi", "seven", "sleeper"] {
        assert!(
            !c.shim_socket(id).exists(),
            "the shim socket of {id} is left"
        );
    }
    let rootfs_mounts: Vec<String> = common::mounts_below(&dir)
        .into_iter()
        .filter(|m| m.contains("io.containerd.runtime.v2.task"))
        .collect();
    assert!(rootfs_mounts.is_empty(), "{rootfs_mounts:?}");

    let pid = f.c.child.as_ref().unwrap().id() as i32;
    f.c.stop();
    assert!(!alive(pid), "containerd {pid} is running");
    assert!(
        common::mounts_below(&dir).is_empty(),
        "{:?}",
        common::mounts_below(&dir)
    );
    assert!(pids_whose_cmdline(|l| l.contains(dir.to_str().unwrap())).is_empty());
}

/// What a node also asks of a running task through the shim: `ctr task exec` (kubectl exec,
/// exec probes) and `ctr task ps` run `foxbox-runc exec` and `ps`.
#[test]
fn containerd_exec_and_ps_with_foxbox_runc() {
    let Some(f) = Fixture::new() else {
        return;
    };
    let pid = f.sleeper("busy");
    let fifos = f.dir.join("fifo").display().to_string();
    let r = f.c.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        &fifos,
        "--exec-id",
        "e1",
        "busy",
        "sh",
        "-c",
        "echo from-exec; exit 3",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (3, "from-exec\n"), "{r:?}");
    let ps = f.c.ctr(&["task", "ps", "busy"]);
    ps.ok();
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "{ps:?}"
    );
    f.c.ctr(&["task", "kill", "-s", "SIGKILL", "busy"]).ok();
    eventually("the task to stop", || {
        task(&f.c, "busy").is_some_and(|(_, s)| s == "STOPPED")
    });
    f.c.ctr(&["task", "rm", "busy"]).ok();
    f.c.ctr(&["container", "rm", "busy"]).ok();
}

/// `ctr task pause`/`resume` run `foxbox-runc pause`/`resume`. Its own container id: the shim
/// names the cgroup `/<namespace>/<id>`, which a test running at once with the same id would
/// share (and thaw when it deletes its container).
#[test]
fn containerd_pause_and_resume_with_foxbox_runc() {
    let Some(f) = Fixture::new() else {
        return;
    };
    f.sleeper("frozen");
    f.c.ctr(&["task", "pause", "frozen"]).ok();
    assert_eq!(task(&f.c, "frozen").map(|t| t.1).as_deref(), Some("PAUSED"));
    f.c.ctr(&["task", "resume", "frozen"]).ok();
    assert_eq!(
        task(&f.c, "frozen").map(|t| t.1).as_deref(),
        Some("RUNNING")
    );
    f.c.ctr(&["task", "kill", "-s", "SIGKILL", "frozen"]).ok();
    eventually("the task to stop", || {
        task(&f.c, "frozen").is_some_and(|(_, s)| s == "STOPPED")
    });
    f.c.ctr(&["task", "rm", "frozen"]).ok();
    f.c.ctr(&["container", "rm", "frozen"]).ok();
}
