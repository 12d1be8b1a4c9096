//! A real distribution image: Debian minbase from debootstrap (built once per scratch dir, about
//! a minute the first time; the test's name starts with `slow_` so `--skip slow_` leaves it
//! out). Imported as root and rootless with a subordinate range, every entry of the archive is
//! checked on disk: type, mode (setuid/setgid included), owner (mapped for the user), symlink
//! target, hard links sharing one inode, sizes.
//!
//! Running `dpkg -l`, `apt-get --version` and `su nobody -s /bin/sh -c id` in a box belongs to
//! the executor's tests, on top of this image.

mod common;
mod image_support;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::{Env, Who};
use foxbox::sys::idmap::IdMaps;
use image_support::import_ok;

fn maps_for(env: &Env) -> IdMaps {
    let (uid, gid) = env.ids();
    let name = if env.who == Who::Root {
        "root"
    } else {
        common::TEST_USER
    };
    let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
    let subgid = fs::read_to_string("/etc/subgid").unwrap_or_default();
    IdMaps::compute(uid, gid, Some(name), &subuid, &subgid, true)
}

fn rel(p: &[u8]) -> PathBuf {
    let s = String::from_utf8_lossy(p);
    PathBuf::from(s.trim_start_matches("./").trim_end_matches('/'))
}

#[test]
fn slow_debian_minbase_lands_exactly_as_archived() {
    let Some(tarball) = common::debian_tarball() else {
        return;
    };
    for who in Who::BOTH {
        let env = Env::new(who);
        let local = env.work().join("debian.tar.gz");
        fs::copy(&tarball, &local).unwrap();
        let (layer, stderr) = import_ok(&env, &local, "debian:bookworm");
        assert!(
            stderr.contains("device node"),
            "devices skipped, with a word: {stderr}"
        );
        let maps = maps_for(&env);
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
            fs::File::open(&tarball).unwrap(),
        ));
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut setids = 0;
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let path = rel(&e.path_bytes());
            let on_disk = layer.join(&path);
            let ty = h.entry_type();
            if ty.is_character_special() || ty.is_block_special() {
                assert!(
                    fs::symlink_metadata(&on_disk).is_err(),
                    "{path:?}: device made"
                );
                *counts.entry("device").or_default() += 1;
                continue;
            }
            let m =
                fs::symlink_metadata(&on_disk).unwrap_or_else(|e| panic!("{path:?} missing: {e}"));
            let (uid, gid) = (h.uid().unwrap() as u32, h.gid().unwrap() as u32);
            let want_owner = (maps.host_uid(uid).unwrap(), maps.host_gid(gid).unwrap());
            if ty.is_hard_link() {
                let target = rel(&e.link_name_bytes().unwrap());
                let t = fs::symlink_metadata(layer.join(&target)).unwrap();
                assert_eq!(t.ino(), m.ino(), "{path:?} is not a link of {target:?}");
                assert!(m.nlink() >= 2);
                *counts.entry("hardlink").or_default() += 1;
                continue;
            }
            assert_eq!((m.uid(), m.gid()), want_owner, "{path:?}: owner");
            if ty.is_symlink() {
                assert!(m.file_type().is_symlink(), "{path:?}");
                let target = e.link_name_bytes().unwrap();
                assert_eq!(
                    fs::read_link(&on_disk)
                        .unwrap()
                        .as_os_str()
                        .as_encoded_bytes(),
                    &target[..],
                    "{path:?}"
                );
                *counts
                    .entry(if target.starts_with(b"/") {
                        "absolute symlink"
                    } else {
                        "symlink"
                    })
                    .or_default() += 1;
                continue;
            }
            assert_eq!(
                m.mode() & 0o7777,
                h.mode().unwrap() & 0o7777,
                "{path:?}: mode"
            );
            if m.mode() & 0o6000 != 0 {
                setids += 1;
            }
            if ty.is_dir() {
                assert!(m.is_dir(), "{path:?}");
                *counts.entry("dir").or_default() += 1;
            } else if ty.is_fifo() {
                assert!(m.file_type().is_fifo(), "{path:?}");
            } else {
                assert!(m.is_file(), "{path:?}");
                assert_eq!(m.len(), h.size().unwrap(), "{path:?}: size");
                if m.len() < 4096 {
                    let mut want = Vec::new();
                    e.read_to_end(&mut want).unwrap();
                    assert_eq!(fs::read(&on_disk).unwrap(), want, "{path:?}: contents");
                }
                *counts.entry("file").or_default() += 1;
            }
        }
        assert!(counts["file"] > 3000 && counts["dir"] > 500, "{counts:?}");
        assert!(
            counts["hardlink"] >= 1 && counts["absolute symlink"] >= 1,
            "{counts:?}"
        );
        assert!(setids >= 5, "setuid/setgid files kept: {setids}");
        // Spot checks that mean something to a box.
        let su = fs::metadata(layer.join("usr/bin/su")).unwrap();
        assert_eq!(su.mode() & 0o7777, 0o4755);
        assert_eq!(su.uid(), maps.host_uid(0).unwrap());
        let chage = fs::metadata(layer.join("usr/bin/chage")).unwrap();
        assert_eq!(
            (chage.mode() & 0o7777, chage.gid()),
            (0o2755, maps.host_gid(42).unwrap())
        );
        assert_eq!(
            fs::read_link(layer.join("var/run")).unwrap(),
            Path::new("/run")
        );
        if who == Who::User {
            assert_eq!(
                chage.gid(),
                100_041,
                "shadow (42) is host gid 100041 rootless"
            );
        }
        // And it goes away again rootless.
        env.run(["image", "rm", "debian:bookworm"]).ok();
        assert!(!layer.exists());
    }
}
