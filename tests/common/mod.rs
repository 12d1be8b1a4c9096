//! The integration-test harness: runs the built `foxbox` binary for real, as root and as an
//! unprivileged user, each with its own HOME, XDG directories and store.
//!
//! As root, `Who::User` runs the binary through `setpriv` as the `foxtest` user (created here
//! when missing, with a subordinate id range) and `Who::UserNoSubids` as `foxtest-nosub` (a
//! system user without one). Not as root, every `Who` runs as the caller and root-only cases are
//! reported as skipped by `Who::available`.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const TEST_USER: &str = "foxtest";
pub const TEST_USER_NOSUB: &str = "foxtest-nosub";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Root,
    /// An unprivileged user with a subordinate id range in /etc/subuid and /etc/subgid.
    User,
    /// An unprivileged user without a subordinate id range.
    UserNoSubids,
}

impl Who {
    /// Root and the unprivileged user: the two modes every integration test covers.
    pub const BOTH: [Who; 2] = [Who::Root, Who::User];

    /// Whether this mode can run here; prints why not when it cannot.
    pub fn available(self) -> bool {
        if self != Who::Root || is_root() {
            return true;
        }
        eprintln!("SKIP (root mode): the tests are not running as root");
        false
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// For a test that only root can run: true as root, else report it skipped with `why`.
pub fn root_or_skip(why: &str) -> bool {
    if !is_root() {
        eprintln!("SKIP: {why}");
    }
    is_root()
}

/// Where the tests keep files that the unprivileged user must reach (not under /root).
fn scratch_base() -> PathBuf {
    let base = std::env::var_os("FOXBOX_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("foxbox-tests"));
    fs::create_dir_all(&base).expect("create the test scratch dir");
    let _ = fs::set_permissions(&base, fs::Permissions::from_mode(0o1777));
    base
}

fn lock_file(name: &str) -> fs::File {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(scratch_base().join(name))
        .expect("open a lock file");
    // SAFETY: flock on a file descriptor we own; it is released when the File is dropped.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock");
    f
}

/// uid and gid of a user from /etc/passwd.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// Create the test users when running as root and they are missing (idempotent, serialised).
fn ensure_users() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if !is_root() {
            return;
        }
        let _lock = lock_file("users.lock");
        if user_ids(TEST_USER).is_none() {
            run_ok(Command::new("useradd").args([
                "--create-home",
                "--shell",
                "/bin/sh",
                TEST_USER,
            ]));
        }
        if user_ids(TEST_USER_NOSUB).is_none() {
            // A system user: useradd gives it no subordinate ranges.
            run_ok(Command::new("useradd").args([
                "--system",
                "--create-home",
                "--shell",
                "/bin/sh",
                TEST_USER_NOSUB,
            ]));
        }
    });
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The foxbox binary, copied once to a place every test user can execute it from.
pub fn foxbox_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let built = PathBuf::from(env!("CARGO_BIN_EXE_foxbox"));
        // One copy per test process; copies left by processes that are gone are swept.
        let base = scratch_base();
        if let Ok(entries) = fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name
                    .strip_prefix("bin-")
                    .and_then(|p| p.parse::<u32>().ok())
                {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = base.join(format!("bin-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("bin dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod bin dir");
        let dst = dir.join("foxbox");
        fs::copy(&built, &dst).expect("copy foxbox");
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).expect("chmod foxbox");
        // A child another test thread forked while the copy was open for writing holds that
        // descriptor until it execs: until then exec of the copy fails with ETXTBSY.
        for _ in 0..500 {
            match Command::new(&dst).arg("--version").output() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => break,
            }
        }
        dst
    })
    .clone()
}

/// The busybox rootfs tarball from `images/build-busybox.sh`, built once per test run.
pub fn busybox_tarball() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let _lock = lock_file("busybox.lock");
        let out = scratch_base().join("busybox.tar.gz");
        if !out.exists() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/build-busybox.sh");
            run_ok(Command::new("bash").arg(script).arg(&out));
        }
        let _ = fs::set_permissions(&out, fs::Permissions::from_mode(0o644));
        out
    })
    .clone()
}

/// The Debian minbase tarball from `images/build-debian.sh` (debootstrap, about a minute), built
/// once and kept in the test scratch dir across runs. `None` when not root (debootstrap needs it).
pub fn debian_tarball() -> Option<PathBuf> {
    static TAR: OnceLock<Option<PathBuf>> = OnceLock::new();
    TAR.get_or_init(|| {
        if !is_root() {
            eprintln!("SKIP (debian image): building it needs root");
            return None;
        }
        let _lock = lock_file("debian.lock");
        let out = scratch_base().join("debian.tar.gz");
        if !out.exists() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/build-debian.sh");
            run_ok(Command::new("bash").arg(script).arg(&out));
        }
        let _ = fs::set_permissions(&out, fs::Permissions::from_mode(0o644));
        Some(out)
    })
    .clone()
}

/// One isolated foxbox world: a user, a HOME, XDG dirs and thus a store of its own.
pub struct Env {
    pub who: Who,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    ids: Option<(u32, u32)>,
}

impl Env {
    pub fn new(who: Who) -> Env {
        ensure_users();
        let tmp = tempfile::Builder::new()
            .prefix("env-")
            .tempdir_in(scratch_base())
            .expect("env dir");
        let dir = tmp.path().to_path_buf();
        let ids = match who {
            Who::Root => None,
            _ if !is_root() => None,
            Who::User => Some(user_ids(TEST_USER).expect("test user")),
            Who::UserNoSubids => Some(user_ids(TEST_USER_NOSUB).expect("test user")),
        };
        for sub in ["home", "data", "config", "cache", "runtime", "work"] {
            fs::create_dir_all(dir.join(sub)).expect("env subdir");
        }
        fs::set_permissions(dir.join("runtime"), fs::Permissions::from_mode(0o700)).expect("chmod");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        if let Some((uid, gid)) = ids {
            chown_tree(&dir, uid, gid);
        }
        Env {
            who,
            dir,
            _tmp: tmp,
            ids,
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }
    /// A directory the env's user owns, for specs, tarballs and bind sources.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// A fresh directory of the env's user at a short path under /tmp (not under
    /// FOXBOX_TEST_TMP, whose length is the runner's choice), removed when the guard is
    /// dropped: for tools that bound their paths' length (podman refuses a runroot over 50
    /// characters).
    pub fn short_dir(&self) -> tempfile::TempDir {
        let d = tempfile::Builder::new()
            .prefix("fx-")
            .tempdir_in("/tmp")
            .expect("short dir");
        if let Some((uid, gid)) = self.ids {
            chown_tree(d.path(), uid, gid);
        }
        d
    }
    /// The store root foxbox uses for this env (XDG_DATA_HOME/foxbox).
    pub fn store(&self) -> PathBuf {
        self.dir.join("data/foxbox")
    }

    /// The uid and gid commands run as.
    pub fn ids(&self) -> (u32, u32) {
        // SAFETY: getuid/getgid cannot fail.
        self.ids
            .unwrap_or_else(|| unsafe { (libc::getuid(), libc::getgid()) })
    }

    /// Write a file into the work dir, owned by the env's user.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.work().join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&p, contents).expect("write");
        if let Some((uid, gid)) = self.ids {
            chown_tree(&self.work(), uid, gid);
        }
        p
    }

    /// A `Command` for any program, run as this env's user with its environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = match self.ids {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.dir.join("data"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env("XDG_RUNTIME_DIR", self.dir.join("runtime"))
            .env("LANG", "C.UTF-8")
            .current_dir(self.work())
            .stdin(Stdio::null());
        if let Some(user) = match self.who {
            Who::Root => Some("root"),
            Who::User if self.ids.is_some() => Some(TEST_USER),
            Who::UserNoSubids if self.ids.is_some() => Some(TEST_USER_NOSUB),
            _ => None,
        } {
            cmd.env("USER", user).env("LOGNAME", user);
        }
        cmd
    }

    /// `foxbox ARGS...` as this env's user.
    pub fn foxbox<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.command(foxbox_bin());
        c.args(args);
        c
    }

    /// Run `foxbox ARGS...` and collect its output.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.foxbox(args);
        let out = c.output().unwrap_or_else(|e| panic!("run {c:?}: {e}"));
        Run::from(out)
    }

    /// Import the busybox test image into this env's store as `busybox:latest`.
    pub fn import_busybox(&self) {
        let tar = busybox_tarball();
        let r = self.run([
            OsStr::new("image"),
            OsStr::new("import"),
            OsStr::new("--name"),
            OsStr::new("busybox"),
            tar.as_os_str(),
        ]);
        r.assert_code(0);
    }
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    run_ok(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(p),
    );
}

/// A finished command: exit code and both streams as text.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        let code = o
            .status
            .code()
            .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0));
        Run {
            code,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Run {
        self.assert_code(0)
    }
}

/// An env for each mode every integration test covers: root and the unprivileged user (each
/// only where it can run).
pub fn envs() -> Vec<Env> {
    Who::BOTH
        .into_iter()
        .filter(|w| w.available())
        .map(Env::new)
        .collect()
}

/// [`envs`], each with the busybox image imported.
pub fn envs_with_busybox() -> Vec<Env> {
    let v = envs();
    for e in &v {
        e.import_busybox();
    }
    v
}

/// Poll `f` until it holds; fail after 20 s, naming `what`.
#[track_caller]
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Env {
    /// The box directories in this env's store (hidden entries left out).
    pub fn box_dirs(&self) -> Vec<PathBuf> {
        fs::read_dir(self.store().join("boxes"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every entry of the box store, hidden ones included, but for the store's own fixtures
    /// (trash, staged boxes and temp files show here).
    pub fn store_leftovers(&self) -> Vec<String> {
        fs::read_dir(self.store().join("boxes"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| ![".names", ".names.lock", ".mnt"].contains(&n.as_str()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Run a shell script as the env's user (what it makes is the user's, as foxbox's is), to
    /// set the store up as a crash would have left it.
    #[track_caller]
    pub fn sh(&self, script: &str) {
        let out = self
            .command("sh")
            .args(["-euc", script])
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The hex id of the first image in the store's index.
    pub fn image_hex(&self) -> String {
        let text = fs::read_to_string(self.store().join("images/index.json")).expect("index");
        let v: serde_json::Value = serde_json::from_str(&text).expect("index json");
        v["images"][0]["id"]
            .as_str()
            .expect("an image")
            .trim_start_matches("sha256:")
            .to_string()
    }
}

/// Host pids of live (not zombie) processes whose argv (`/proc/PID/cmdline`) `pick` takes.
pub fn live_pids_whose_argv(pick: impl Fn(&[&str]) -> bool) -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    let c = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    let zombie = stat
                        .rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
                    let text = String::from_utf8_lossy(&c);
                    let argv: Vec<&str> = text
                        .strip_suffix('\0')
                        .unwrap_or(&text)
                        .split('\0')
                        .collect();
                    !zombie && pick(&argv)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The mount points at or below `dir` in this process's mount namespace (mountinfo's octal
/// escape of a space undone).
pub fn mounts_below(dir: &Path) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect()
}

/// Host pids of live (not zombie) processes whose command line is exactly `cmd`: the boxes of
/// a test that all run one odd command.
pub fn processes_running(cmd: &str) -> Vec<i32> {
    live_pids_whose_argv(|argv| argv.join(" ").trim() == cmd)
}

/// A `--cgroup-parent` of the test's own (`foxbox-<tag>-<pid>`) and the directory it names
/// in each hierarchy: every box cgroup below it is this test's.
pub fn own_cgroup_parent(tag: &str) -> (String, Vec<PathBuf>) {
    let name = format!("foxbox-{tag}-{}", std::process::id());
    let host = foxbox::cgroup::Host::detect().expect("cgroups");
    let dirs = host
        .hierarchies
        .iter()
        .map(|h| h.mount.join(&name))
        .collect();
    (name, dirs)
}

/// Delegate the cgroup directory `dir` (already made, in a hierarchy of `version`) to `ids`
/// the way an administrator does: on v1 the directory and the files to join it are chowned;
/// on v2 the memory/pids/cpu controllers the hierarchy has are enabled for the children, a
/// leaf named `leaf` is made for the user's own process (no process may live in an inner
/// node), and the subtree and its files are chowned, as systemd's `Delegate=yes` does.
/// Returns the directory the user's process must be moved into: `dir` on v1, the leaf on v2.
pub fn delegate_cgroup(
    dir: &Path,
    version: foxbox::cgroup::Version,
    controllers: &std::collections::BTreeSet<String>,
    (uid, gid): (u32, u32),
    leaf: &str,
) -> PathBuf {
    let chown = |p: &Path| {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()))
    };
    match version {
        foxbox::cgroup::Version::V1 => {
            for f in ["", "cgroup.procs", "tasks"] {
                chown(&dir.join(f));
            }
            dir.to_path_buf()
        }
        foxbox::cgroup::Version::V2 => {
            let want: Vec<String> = ["memory", "pids", "cpu"]
                .iter()
                .filter(|c| controllers.contains(**c))
                .map(|c| format!("+{c}"))
                .collect();
            fs::write(dir.join("cgroup.subtree_control"), want.join(" "))
                .expect("enable controllers");
            let leaf = dir.join(leaf);
            fs::create_dir(&leaf).expect("mkdir leaf");
            for d in [dir, leaf.as_path()] {
                for e in fs::read_dir(d).expect("readdir").flatten() {
                    chown(&e.path());
                }
                chown(d);
            }
            leaf
        }
    }
}
