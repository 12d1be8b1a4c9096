//! File owners after an import: kept as root; kept inside the box's user namespace for a user
//! with a subordinate range (on disk: host id = IdMaps::host_uid(inside)); all the box's root
//! for a user without one, with one warning. And `image rm` removes such layers rootless.

mod common;
mod image_support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{Env, Who};
use foxbox::sys::idmap::IdMaps;
use image_support::{import_ok, tar, E};

/// The maps foxbox computes for the env's user, as the binary would.
fn maps_for(env: &Env) -> IdMaps {
    let (uid, gid) = env.ids();
    let name = match env.who {
        Who::Root => "root",
        Who::User => common::TEST_USER,
        Who::UserNoSubids => common::TEST_USER_NOSUB,
    };
    let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
    let subgid = fs::read_to_string("/etc/subgid").unwrap_or_default();
    let helpers = foxbox::sys::idmap::find_in_path("newuidmap").is_some();
    IdMaps::compute(uid, gid, Some(name), &subuid, &subgid, helpers)
}

fn owned_archive() -> Vec<u8> {
    tar(&[
        E::dir("./").mode(0o755),
        E::file("root-file", "r").owner(0, 0),
        E::dir("home/fox/").owner(1000, 1000).mode(0o750),
        E::file("home/fox/notes", "n").owner(1000, 1000),
        E::file("nobody-file", "n").owner(65534, 65534),
        E::symlink("daemon-link", "/x").owner(1, 1),
        E::file("mixed", "m").owner(1000, 42).mode(0o2755),
        E::file("too-big", "t").owner(70000, 70000),
    ])
}

fn owner(layer: &Path, p: &str) -> (u32, u32) {
    let m = fs::symlink_metadata(layer.join(p)).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn owners_are_kept_in_the_boxs_namespace() {
    let mut whos = vec![Who::Root, Who::User];
    if common::is_root() {
        whos.push(Who::UserNoSubids);
    }
    for who in whos {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let maps = maps_for(&env);
        let f = env.write("owned.tar", owned_archive());
        let (layer, stderr) = import_ok(&env, &f, "owned");
        let host = |inside: u32| {
            (
                maps.host_uid(inside).expect("mapped"),
                maps.host_gid(inside).expect("mapped"),
            )
        };
        let pair = |u: u32, g: u32| (maps.host_uid(u).unwrap(), maps.host_gid(g).unwrap());
        match (who, maps.has_range()) {
            (Who::Root, _) => {
                assert_eq!(owner(&layer, "home/fox/notes"), (1000, 1000));
                assert_eq!(owner(&layer, "nobody-file"), (65534, 65534));
                assert_eq!(owner(&layer, "daemon-link"), (1, 1));
                assert_eq!(owner(&layer, "too-big"), (70000, 70000));
                assert!(!stderr.contains("warn"), "{stderr}");
            }
            (_, true) => {
                let (uid, gid) = env.ids();
                assert_eq!(owner(&layer, "root-file"), (uid, gid));
                assert_eq!(owner(&layer, "."), (uid, gid));
                assert_eq!(owner(&layer, "home/fox/notes"), host(1000));
                assert_eq!(owner(&layer, "home/fox"), host(1000));
                assert_eq!(owner(&layer, "nobody-file"), host(65534));
                assert_eq!(owner(&layer, "daemon-link"), host(1));
                assert_eq!(owner(&layer, "mixed"), pair(1000, 42));
                // 70000 is past the 65536 ids of the range: the box's root, with a warning.
                assert_eq!(owner(&layer, "too-big"), (uid, gid));
                assert!(stderr.contains("outside this user's id range"), "{stderr}");
                assert!(stderr.contains("too-big"), "{stderr}");
                assert_eq!(owner(&layer, "home/fox/notes").0, 100_999);
            }
            (_, false) => {
                let (uid, gid) = env.ids();
                for p in [
                    "root-file",
                    "home/fox/notes",
                    "nobody-file",
                    "daemon-link",
                    "too-big",
                ] {
                    assert_eq!(owner(&layer, p), (uid, gid), "{p}");
                }
                assert_eq!(
                    stderr.matches("no subordinate id range").count(),
                    1,
                    "{stderr}"
                );
            }
        }
        let mode = fs::metadata(layer.join("mixed")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o2755, "setgid kept after chown");
        assert_eq!(
            fs::metadata(layer.join("home/fox")).unwrap().mode() & 0o777,
            0o750
        );
        // The store's top is private: other host users cannot reach a setuid file in it.
        let top = fs::metadata(env.store().join("images")).unwrap().mode() & 0o777;
        assert_eq!(top, 0o700);
        // Removal works rootless too, although the files belong to subordinate ids.
        env.run(["image", "rm", "owned"]).ok();
        assert!(!layer.exists(), "layer left behind");
        assert_eq!(
            fs::read_dir(env.store().join("images/tmp"))
                .unwrap()
                .count(),
            0
        );
    }
}
