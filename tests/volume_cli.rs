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
        env.run(["volume", "ls"]).ok();
        let left: Vec<_> = std::fs::read_dir(&vols)
            .expect("volumes")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{:?}: {left:?}", env.who);
        env.run(["system", "check"]).ok();
    }
}
