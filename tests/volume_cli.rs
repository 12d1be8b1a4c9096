//! `foxbox volume ...` through the binary, as root and as the unprivileged user.

mod common;

use common::{Env, Who};

#[test]
fn create_ls_inspect_rm_prune() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        env.run(["volume", "create", "data"]).ok();
        let dup = env.run(["volume", "create", "data"]);
        dup.assert_code(125);
        assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);
        env.run(["volume", "create", "cache"]).ok();

        let ls = env.run(["volume", "ls", "-q"]);
        ls.ok();
        assert_eq!(ls.stdout, "cache\ndata\n");
        let table = env.run(["volume", "ls"]);
        assert!(table.stdout.starts_with("VOLUME NAME"), "{}", table.stdout);
        // "Less than a second ago", "1 second ago" or "N seconds ago".
        assert!(table.stdout.contains("second"), "{}", table.stdout);

        let inspect = env.run(["volume", "inspect", "data"]);
        inspect.ok();
        let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
        let mp = v[0]["mountpoint"].as_str().unwrap();
        assert!(mp.starts_with(env.store().to_str().unwrap()), "{mp}");
        let meta = std::fs::metadata(mp).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            meta.uid(),
            env.ids().0,
            "the volume belongs to the caller (the box's root)"
        );

        let missing = env.run(["volume", "inspect", "data", "nope"]);
        missing.assert_code(125);
        assert!(
            missing.stderr.contains("no such volume \"nope\""),
            "{}",
            missing.stderr
        );
        assert!(
            missing.stdout.is_empty(),
            "nothing printed when one name is missing"
        );

        env.run(["volume", "rm", "data"]).ok();
        assert!(!std::path::Path::new(mp).exists());
        let again = env.run(["volume", "rm", "data"]);
        again.assert_code(125);
        env.run(["volume", "prune"]).ok();
        assert_eq!(env.run(["volume", "ls", "-q"]).stdout, "");
    }
}

#[test]
fn bad_names_are_refused_and_nothing_is_stored() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        for bad in ["../x", "-x", "a/b", ""] {
            let r = env.run(["volume", "create", "--", bad]);
            r.assert_code(125);
            assert!(
                r.stderr.contains("invalid volume name"),
                "{bad}: {}",
                r.stderr
            );
        }
        let entries: Vec<_> = std::fs::read_dir(env.store().join("volumes"))
            .unwrap()
            .collect();
        assert!(entries.is_empty(), "left behind: {entries:?}");
    }
}

#[test]
fn concurrent_creations_of_one_name_end_with_one_volume() {
    let env = Env::new(Who::User);
    let children: Vec<_> = (0..10)
        .map(|_| {
            env.foxbox(["volume", "create", "race"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ok = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.success())
        .filter(|s| *s)
        .count();
    assert_eq!(ok, 1);
    assert_eq!(env.run(["volume", "ls", "-q"]).stdout, "race\n");
    let names: Vec<_> = std::fs::read_dir(env.store().join("volumes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["race"]);
}

/// A tmpfs holding a store, read-only on demand; unmounted on drop.
struct RoMount(std::path::PathBuf);

impl RoMount {
    fn set(&self, ro: bool) {
        let opts = if ro { "remount,ro" } else { "remount,rw" };
        let s = std::process::Command::new("mount")
            .args(["-o", opts])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(s.success());
    }
}

impl Drop for RoMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Listing writes nothing: `volume ls` and `inspect` work on a read-only store, with or without
/// a `volumes/` directory, and a refused write says so once.
#[test]
fn listing_volumes_works_on_a_read_only_store() {
    if !common::root_or_skip("mounting a read-only store needs root") {
        return;
    }
    for who in Who::BOTH {
        let env = Env::new(who);
        let mnt = env.work().join("ro");
        std::fs::create_dir(&mnt).unwrap();
        let s = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(s.success());
        let m = RoMount(mnt.clone());
        let (uid, gid) = env.ids();
        std::os::unix::fs::chown(&mnt, Some(uid), Some(gid)).unwrap();
        let root = mnt.join("store").display().to_string();
        let fx = |args: &[&str]| {
            let mut v = vec!["--root", root.as_str()];
            v.extend_from_slice(args);
            env.run(v)
        };
        fx(&["ps", "-a"]).ok();
        m.set(true);
        let r = fx(&["volume", "ls", "-q"]);
        r.ok();
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""), "{who:?}");
        let r = fx(&["volume", "inspect", "nothing"]);
        r.assert_code(125);
        assert!(r.stderr.contains("no such volume"), "{who:?}: {}", r.stderr);

        m.set(false);
        fx(&["volume", "create", "kept"]).ok();
        m.set(true);
        let r = fx(&["volume", "ls", "-q"]);
        r.ok();
        assert_eq!(r.stdout, "kept\n", "{who:?}: {}", r.stderr);
        fx(&["volume", "inspect", "kept"]).ok();
        let r = fx(&["volume", "create", "more"]);
        r.assert_code(125);
        assert_eq!(
            r.stderr.matches("Read-only file system").count(),
            1,
            "{who:?}: said once:\n{}",
            r.stderr
        );
    }
}

/// A volume a box wrote into as another of its ids (rootless: a subordinate id, which the
/// caller cannot delete as itself) is removed whole, and so is such a volume's leftover of a
/// `volume rm` that was killed: `system check` is clean after.
#[test]
fn volumes_with_files_of_other_ids_are_removed_whole() {
    let write = "mkdir /v/d && touch /v/d/f && chown -R 1000:1000 /v/d && chmod 700 /v/d";
    for env in common::envs_with_busybox() {
        for v in ["v", "w"] {
            env.run([
                "run",
                "--rm",
                "-v",
                &format!("{v}:/v"),
                "busybox",
                "sh",
                "-c",
                write,
            ])
            .ok();
        }
        env.run(["volume", "rm", "v"]).ok();
        // What `volume rm w` killed after its rename leaves.
        let mut c = std::process::Command::new("true").spawn().expect("spawn");
        let dead = c.id();
        c.wait().expect("wait");
        let vols = env.store().join("volumes");
        std::fs::rename(vols.join("w"), vols.join(format!(".tmp-{dead}-rm-w"))).expect("rename");
        // Listing writes nothing (a read-only store lists); the next command that writes to
        // the volume store sweeps the leftover.
        env.run(["volume", "ls"]).ok();
        assert!(vols.join(format!(".tmp-{dead}-rm-w")).exists());
        env.run(["volume", "create", "x"]).ok();
        let left: Vec<_> = std::fs::read_dir(&vols)
            .expect("volumes")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["x"], "{:?}", env.who);
        env.run(["system", "check"]).ok();
    }
}
