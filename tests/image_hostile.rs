//! Hostile archives against `foxbox image import`, as root and as the unprivileged user (with a
//! subordinate range): each case asserts the exact outcome in the layer, that a canary outside
//! every store is untouched, and for refusals the message and that the store is unchanged.

mod common;
mod image_support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{Env, Who};
use image_support::{gzip, import_ok, snapshot, tar, Canary, E};

/// Import expecting a refusal: exit 125, `needles` in stderr, the store exactly as before.
#[track_caller]
fn refused(env: &Env, file: &Path, needles: &[&str]) {
    let ls_before = env.run(["image", "ls", "-q"]).stdout;
    let before = snapshot(&env.store());
    let r = env.run([
        OsStr::new("image"),
        OsStr::new("import"),
        OsStr::new("--name"),
        OsStr::new("hostile"),
        file.as_os_str(),
    ]);
    r.assert_code(125);
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
    }
    let after = snapshot(&env.store());
    assert_eq!(before, after, "a refused import changed the store");
    let ls = env.run(["image", "ls", "-q"]);
    ls.ok();
    assert_eq!(ls.stdout, ls_before);
}

fn each_user(f: impl Fn(&Env, &Canary)) {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let canary = Canary::new(&env);
        f(&env, &canary);
        canary.assert_untouched();
    }
}

#[test]
fn dotdot_components_are_refused_naming_the_entry() {
    each_user(|env, c| {
        let rel = "../../../../../../../../../..".to_string() + &c.dir.display().to_string();
        for (i, name) in [format!("{rel}/victim"), "a/../../x".to_string()]
            .iter()
            .enumerate()
        {
            let t = tar(&[E::dir("a/"), E::file(name, "pwned")]);
            let f = image_support::archive(env, &format!("dotdot{i}.tar"), &t);
            refused(env, &f, &["refused entry", name.as_str(), "`..`"]);
        }
        // A hard link's target with `..` too.
        let t = tar(&[E::hardlink("h", format!("{rel}/victim"))]);
        let f = image_support::archive(env, "dotdot-link.tar", &t);
        refused(env, &f, &["refused entry \"h\"", "`..`"]);
    });
}

#[test]
fn absolute_paths_land_inside_the_layer() {
    each_user(|env, c| {
        let abs = c.dir.join("victim");
        let t = tar(&[E::file(abs.as_os_str().as_bytes(), "pwned")]);
        let f = image_support::archive(env, "abs.tar.gz", &gzip(&t));
        let (layer, _) = import_ok(env, &f, "abs");
        assert_eq!(
            fs::read(c.in_layer(&layer).join("victim")).unwrap(),
            b"pwned"
        );
    });
}

#[test]
fn writes_through_symlinks_stay_in_the_layer() {
    each_user(|env, c| {
        let abs = c.dir.as_os_str().as_bytes().to_vec();
        let up = "../".repeat(20) + &c.dir.display().to_string()[1..];
        let t = tar(&[
            // Absolute symlink, then an entry below it.
            E::symlink("esc", &abs),
            E::file("esc/victim", "abs"),
            // Relative symlink climbing past the root.
            E::symlink("up", &up),
            E::file("up/rel", "rel"),
            // A chain: a -> b -> the canary's parent, absolute.
            E::symlink("a", "b"),
            E::symlink("b", c.dir.parent().unwrap().as_os_str().as_bytes()),
            E::file("a/canary/chained", "chained"),
            // A symlink to the victim, then a file of the same name: the link is replaced.
            E::symlink("vl", c.dir.join("victim").as_os_str().as_bytes()),
            E::file("vl", "replaced"),
            // The common legitimate case: var/run -> /run before run/ exists.
            E::dir("var/"),
            E::symlink("var/run", "/run"),
            E::file("var/run/utmp", "utmp"),
        ]);
        let f = image_support::archive(env, "symlinks.tar", &t);
        let (layer, _) = import_ok(env, &f, "symlinks");
        let inside = c.in_layer(&layer);
        assert_eq!(fs::read(inside.join("victim")).unwrap(), b"abs");
        assert_eq!(fs::read(inside.join("rel")).unwrap(), b"rel");
        assert_eq!(fs::read(inside.join("chained")).unwrap(), b"chained");
        assert_eq!(fs::read_link(layer.join("esc")).unwrap(), c.dir);
        assert_eq!(fs::read(layer.join("vl")).unwrap(), b"replaced");
        assert!(fs::symlink_metadata(layer.join("vl")).unwrap().is_file());
        assert_eq!(
            fs::read_link(layer.join("var/run")).unwrap(),
            Path::new("/run")
        );
        assert_eq!(fs::read(layer.join("run/utmp")).unwrap(), b"utmp");
    });
}

#[test]
fn hard_links_must_name_earlier_entries_of_the_layer() {
    each_user(|env, c| {
        let victim = c.dir.join("victim");
        // Absolute: resolves in the layer, where nothing is.
        let t = tar(&[E::hardlink("h", victim.as_os_str().as_bytes())]);
        let f = image_support::archive(env, "hl-abs.tar", &t);
        refused(env, &f, &["refused entry \"h\"", "not an earlier entry"]);
        // Through a symlink that points at the canary dir.
        let t = tar(&[
            E::symlink("l", c.dir.as_os_str().as_bytes()),
            E::hardlink("h", "l/victim"),
        ]);
        let f = image_support::archive(env, "hl-sym.tar", &t);
        refused(env, &f, &["refused entry \"h\"", "not an earlier entry"]);
        // To a directory.
        let t = tar(&[E::dir("d/"), E::hardlink("h", "d")]);
        let f = image_support::archive(env, "hl-dir.tar", &t);
        refused(env, &f, &["refused entry \"h\"", "directory"]);
        // The legitimate case, also through an in-layer symlink: one inode, two names.
        let t = tar(&[
            E::file("usr/bin/perl5.36", "perl").mode(0o755),
            E::symlink("bin", "usr/bin"),
            E::hardlink("usr/bin/perl", "bin/perl5.36"),
            E::symlink("s", "/nowhere"),
            E::hardlink("s2", "s"),
        ]);
        let f = image_support::archive(env, "hl-ok.tar", &t);
        let (layer, _) = import_ok(env, &f, "links");
        let a = fs::metadata(layer.join("usr/bin/perl5.36")).unwrap();
        let b = fs::metadata(layer.join("usr/bin/perl")).unwrap();
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        let s2 = fs::symlink_metadata(layer.join("s2")).unwrap();
        assert!(
            s2.file_type().is_symlink(),
            "a link to a symlink links the symlink"
        );
    });
}

#[test]
fn devices_are_skipped_fifos_made_unknown_types_refused() {
    each_user(|env, _c| {
        let t = tar(&[
            E::dir("dev/"),
            E::chardev("dev/mem"),
            E::blockdev("dev/sda"),
            E::fifo("run/fifo").mode(0o620),
            E::file("ok", "ok"),
        ]);
        let f = image_support::archive(env, "dev.tar", &t);
        let (layer, stderr) = import_ok(env, &f, "dev");
        assert!(!layer.join("dev/mem").exists() && !layer.join("dev/sda").exists());
        assert!(
            stderr.contains("skipped 2 device node(s) (first: dev/mem)"),
            "{stderr}"
        );
        let m = fs::symlink_metadata(layer.join("run/fifo")).unwrap();
        assert!(m.file_type().is_fifo());
        assert_eq!(m.mode() & 0o7777, 0o620);
        assert_eq!(fs::read(layer.join("ok")).unwrap(), b"ok");
        for kind in [b'S', b'V', b'X'] {
            let t = tar(&[E::kind("weird", kind)]);
            let f = image_support::archive(env, "weird.tar", &t);
            refused(env, &f, &["refused entry \"weird\""]);
        }
    });
}

#[test]
fn long_names_pax_duplicates_and_non_utf8() {
    each_user(|env, _c| {
        let long_dir = "d".repeat(120);
        let gnu = format!("{long_dir}/{}", "g".repeat(150));
        let pax = format!("{long_dir}/{}", "p".repeat(150));
        let t = tar(&[
            E::file(&gnu, "gnu"),
            E::file(&pax, "pax").pax(),
            E::symlink("longlink", format!("/{}", "t".repeat(200))).pax(),
            E::file("dup", "one"),
            E::file("dup", "two"),
            E::dir("was-dir/"),
            E::file("was-dir/inner", "x"),
            E::file("was-dir", "now a file"),
            E::file(b"caf\xe9-\xff", "latin1"),
        ]);
        let f = image_support::archive(env, "names.tar.gz", &gzip(&t));
        let (layer, _) = import_ok(env, &f, "names");
        assert_eq!(fs::read(layer.join(&gnu)).unwrap(), b"gnu");
        assert_eq!(fs::read(layer.join(&pax)).unwrap(), b"pax");
        assert_eq!(
            fs::read_link(layer.join("longlink")).unwrap(),
            Path::new(&format!("/{}", "t".repeat(200)))
        );
        assert_eq!(fs::read(layer.join("dup")).unwrap(), b"two");
        assert_eq!(fs::read(layer.join("was-dir")).unwrap(), b"now a file");
        let odd = layer.join(OsStr::from_bytes(b"caf\xe9-\xff"));
        assert_eq!(fs::read(odd).unwrap(), b"latin1");
        // A PAX path with `..` is refused like any other.
        let t = tar(&[E::file(format!("{}/../../../x", "q".repeat(120)), "x").pax()]);
        let f = image_support::archive(env, "pax-dotdot.tar", &t);
        refused(env, &f, &["refused entry", "`..`"]);
    });
}

#[test]
fn whiteouts_are_dropped_and_act_inside_the_layer_only() {
    each_user(|env, c| {
        let t = tar(&[
            E::file("a/gone", "x"),
            E::file("a/kept", "x"),
            E::file("a/.wh.gone", ""),
            E::file("a/.wh..wh..opq", ""),
            E::symlink("l", c.dir.as_os_str().as_bytes()),
            E::file("l/.wh.victim", ""),
            E::file(".wh.nothing-here", ""),
        ]);
        let f = image_support::archive(env, "wh.tar", &t);
        let (layer, _) = import_ok(env, &f, "wh");
        assert!(!layer.join("a/gone").exists());
        assert!(layer.join("a/kept").exists());
        let names: Vec<String> = fs::read_dir(layer.join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["kept"], "whiteout markers were written");
        assert!(!layer.join(".wh.nothing-here").exists());
        // `.wh...` names `..`.
        let t = tar(&[E::dir("a/"), E::file("a/.wh...", "")]);
        let f = image_support::archive(env, "wh-dotdot.tar", &t);
        refused(env, &f, &["refused entry \"a/.wh...\"", "names no file"]);
    });
}

#[test]
fn corrupt_truncated_and_bomb_archives_are_refused() {
    each_user(|env, _c| {
        let mut entries = Vec::new();
        for i in 0..50 {
            entries.push(E::file(format!("f{i}"), vec![b'x'; 10_000]));
        }
        let good = gzip(&tar(&entries));
        let f = image_support::archive(env, "trunc.tar.gz", &good[..good.len() / 2]);
        refused(env, &f, &["corrupt"]);
        let mut bad = good.clone();
        let n = bad.len();
        for b in &mut bad[n / 3..n / 3 + 64] {
            *b ^= 0x5a;
        }
        let f = image_support::archive(env, "flipped.tar.gz", &bad);
        refused(env, &f, &["corrupt"]);
        // A bad gzip trailer (CRC) is caught even though the tar ended before it.
        let mut crc = good.clone();
        let n = crc.len();
        crc[n - 8] ^= 0xff;
        let f = image_support::archive(env, "crc.tar.gz", &crc);
        refused(env, &f, &["corrupt"]);
        let t = tar(&entries);
        let f = image_support::archive(env, "trunc.tar", &t[..t.len() / 2 + 100]);
        refused(env, &f, &["corrupt"]);
        let f = image_support::archive(env, "garbage.tar", &[0x42u8; 4096]);
        refused(env, &f, &["corrupt"]);
        let f = image_support::archive(env, "empty.tar", b"");
        refused(env, &f, &["no entries"]);
        // The bomb: 64 MiB of zeros in ~64 KiB of gzip, against a 4 MiB limit.
        let bomb = gzip(&tar(&[E::file("zeros", vec![0u8; 64 << 20])]));
        assert!(bomb.len() < 1 << 20);
        let f = image_support::archive(env, "bomb.tar.gz", &bomb);
        env.run(["image", "ls"]).ok();
        let before = snapshot(&env.store());
        let r = env
            .command(common::foxbox_bin())
            .args(["image", "import", "--name", "bomb"])
            .arg(&f)
            .env("FOXBOX_MAX_IMAGE_SIZE", "4M")
            .output()
            .unwrap();
        let r = common::Run::from(r);
        r.assert_code(125);
        assert!(r.stderr.contains("size limit"), "{}", r.stderr);
        assert!(r.stderr.contains("FOXBOX_MAX_IMAGE_SIZE"), "{}", r.stderr);
        assert_eq!(before, snapshot(&env.store()));
    });
}

#[test]
fn setuid_bits_and_modes_are_kept() {
    each_user(|env, _c| {
        let t = tar(&[
            E::file("bin/su", "su").mode(0o4755),
            E::file("usr/bin/wall", "wall").mode(0o2755).owner(0, 5),
            E::dir("tmp/").mode(0o1777),
            E::dir("locked/").mode(0o500),
            E::file("locked/inside", "x").mode(0o400),
        ]);
        let f = image_support::archive(env, "modes.tar", &t);
        let (layer, _) = import_ok(env, &f, "modes");
        let mode = |p: &str| fs::symlink_metadata(layer.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("bin/su"), 0o4755);
        assert_eq!(mode("usr/bin/wall"), 0o2755);
        assert_eq!(mode("tmp"), 0o1777);
        assert_eq!(mode("locked"), 0o500);
        assert_eq!(mode("locked/inside"), 0o400);
        // And the store can still remove what it made (a read-only dir included).
        env.run(["image", "rm", "modes"]).ok();
        assert!(!layer.exists());
    });
}
