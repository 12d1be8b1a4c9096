//! A full disk, as root and as the unprivileged user (root mounts a small tmpfs as the user's
//! store, owned by the user): an import, a load (the pull path: layers unpacked from blobs)
//! and a volume write that do not fit fail with an error naming the store's device, leave the
//! store as `system check` finds clean, and free what they took; a box whose log disk fills
//! keeps running, its log drops lines and says so with one marker line once space returns.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{eventually, Env, Who};

/// A tmpfs mounted over a path for the test's life.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str, ids: (u32, u32)) -> Tmpfs {
        fs::create_dir_all(at).expect("mountpoint");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0700,uid={},gid={}", ids.0, ids.1))
            .arg("tmpfs")
            .arg(at)
            .status()
            .expect("mount");
        assert!(st.success(), "mount a tmpfs on {}", at.display());
        Tmpfs(at.to_path_buf())
    }

    /// Bytes free on it.
    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df's figure")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status();
        if !ok.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A tarball of `bytes` of random data (does not compress), in the env's work dir.
fn big_tar(env: &Env, name: &str, bytes: usize) -> String {
    let w = env.work().display().to_string();
    env.sh(&format!(
        "mkdir -p {w}/{name} && head -c {bytes} /dev/urandom > {w}/{name}/blob && tar -C {w}/{name} -cf {w}/{name}.tar ."
    ));
    format!("{w}/{name}.tar")
}

/// An error without the renderer's wrapping (it breaks long lines behind "  | ", anywhere,
/// even inside a path): compared with spaces and bars left out on both sides.
fn flat(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '|')
        .collect()
}

/// Free space back to `start` (give or take the directories a first use makes).
#[track_caller]
fn assert_back(disk: &Tmpfs, start: u64, what: &str) {
    let now = disk.free();
    assert!(
        now + (32 << 10) >= start,
        "{what}: {} bytes more used than before",
        start - now
    );
}

#[track_caller]
fn assert_clean(env: &Env, what: &str) {
    let r = env.run(["system", "check"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, ""),
        "{what}: system check: {r:?}"
    );
}

fn full_disk(who: Who) {
    if !common::root_or_skip("mounting a tmpfs needs root") || !who.available() {
        return;
    }
    let env = Env::new(who);
    let disk = Tmpfs::mount(&env.store(), "4m", env.ids());
    let store = env.store().display().to_string();
    env.import_busybox();
    let start = disk.free();
    let said = flat(&format!("no space left on the device holding {store}"));

    // An import that does not fit.
    let tar = big_tar(&env, "big", 6 << 20);
    let r = env.run(["image", "import", "--name", "big", &tar]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(flat(&r.stderr).contains(&said), "import: {}", r.stderr);
    assert_clean(&env, "import");
    assert_back(&disk, start, "import left files");

    // A load (a pull's unpacking of layers from blobs) that does not fit: saved from a store
    // on an ordinary disk.
    let other = Env::new(who);
    let tar = big_tar(&other, "big", 6 << 20);
    other.run(["image", "import", "--name", "big", &tar]).ok();
    let oci = other.work().join("big-oci.tar").display().to_string();
    other.run(["image", "save", "big", "-o", &oci]).ok();
    let r = env.run(["image", "load", "-q", "-i", &oci]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(flat(&r.stderr).contains(&said), "load: {}", r.stderr);
    assert_clean(&env, "load");
    assert!(!env.run(["image", "ls"]).stdout.contains("big"));
    assert_back(&disk, start, "load left files");

    // A volume write that does not fit: the box's own write fails (its error), nothing else.
    let r = env.run([
        "run",
        "--rm",
        "-v",
        "vol:/v",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/v/big",
        "bs=64k",
        "count=200",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("No space left on device"), "{r:?}");
    assert_clean(&env, "volume write");
    env.run(["volume", "rm", "vol"]).ok();
    assert_back(&disk, start, "volume left files");

    // A box whose log fills the disk keeps running; once space returns, one marker says how
    // many lines were lost, and logging goes on.
    env.run(["volume", "create", "ctl"]).ok();
    let go = env.store().join("volumes/ctl/_data/go");
    let filler = env.store().join("filler");
    let keep = 256 << 10;
    fs::write(&filler, vec![0u8; (disk.free() - keep) as usize]).expect("filler");
    env.run([
        "run",
        "-d",
        "--name",
        "chatty",
        "-v",
        "ctl:/c",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); echo line-$i-of-a-box-that-talks-far-too-much; done; \
         echo all-printed; while [ ! -e /c/go ]; do sleep 0.1; done; echo after-space; sleep 600",
    ])
    .ok();
    eventually("the log to fill the disk", || disk.free() < 64 << 10);
    // The rest of its 20,000 lines take well under this.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let r = env.run(["ps", "--format", "json"]);
    assert!(r.stdout.contains("chatty"), "the box died: {r:?}");
    fs::remove_file(&filler).expect("free the disk");
    fs::write(&go, b"").expect("go");
    eventually("the line after space returned", || {
        env.run(["logs", "chatty"]).stdout.contains("after-space")
    });
    let logs = env.run(["logs", "chatty"]);
    let markers: Vec<&str> = logs
        .stderr
        .lines()
        .chain(logs.stdout.lines())
        .filter(|l| l.contains("log lines dropped"))
        .collect();
    assert_eq!(markers.len(), 1, "one marker: {markers:?}");
    let log_path = env.store().join("boxes");
    assert!(
        markers[0].contains(&format!(
            "no space left on the device holding {}",
            log_path.display()
        )),
        "{markers:?}"
    );
    assert!(
        !logs.stdout.contains("all-printed"),
        "the lines while full were dropped"
    );
    assert!(
        logs.stdout.contains("line-1-"),
        "the lines before it were kept"
    );
    env.run(["rm", "-f", "chatty"]).ok();
    env.run(["volume", "rm", "ctl"]).ok();
    assert_clean(&env, "log");
    assert_back(&disk, start, "the box left files");
}

#[test]
fn full_disk_as_root() {
    full_disk(Who::Root);
}

#[test]
fn full_disk_as_the_unprivileged_user() {
    full_disk(Who::User);
}
