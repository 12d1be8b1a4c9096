//! The library API the executor calls: `Store::resolve` for stored names (pinned or not) and
//! tarball paths, run in this (root) test process. The rootless path of the same code is the
//! CLI's, covered by the image_cli and image_owners tests.

mod common;
mod image_support;

use std::fs;

use foxbox::image::{ImageError, ImageName, Store};
use foxbox::plan::ImageRef;
use foxbox::store::paths::Paths;
use image_support::{tar, E};

fn store(dir: &std::path::Path) -> Store {
    let paths = Paths {
        root: dir.join("root"),
        runtime: dir.join("run"),
    };
    Store::open(&paths).unwrap()
}

#[test]
fn resolve_names_pins_and_tarballs() {
    if !common::root_or_skip("in-process store tests run as root (rootless goes through the CLI)") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let s = store(t.path());
    let tb = t.path().join("app.tar");
    fs::write(&tb, tar(&[E::file("etc/hostname", "app")])).unwrap();

    // Unknown name: the error lists what exists (nothing yet, then app:latest).
    let stored = |n: &str| ImageRef::Stored(ImageName::parse(n).unwrap());
    let want = stored("app");
    let e = s.resolve(&want).unwrap_err();
    assert!(matches!(e, ImageError::NotFound { .. }));
    assert!(e.to_string().contains("image import"), "{e}");

    // A tarball is imported on first use, then found by its digest.
    let by_path = ImageRef::Tarball { path: tb.clone() };
    let a = s.resolve(&by_path).unwrap();
    assert!(a.names.is_empty());
    assert_eq!(fs::read(a.layers[0].join("etc/hostname")).unwrap(), b"app");
    let layer_ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&a.layers[0]).unwrap());
    let b = s.resolve(&by_path).unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(
        layer_ino,
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&b.layers[0]).unwrap()),
        "reused, not unpacked again"
    );
    assert_eq!(s.list().unwrap().len(), 1);
    assert_eq!(a.config, Default::default());

    // Named import, then resolve by name, pinned right and wrong.
    let name = ImageName::parse("app").unwrap();
    s.import(&tb, Some(&name)).unwrap();
    let got = s.resolve(&want).unwrap();
    assert_eq!(got.id, a.id);
    assert_eq!(got.names, ["app:latest"]);
    let pinned = stored(&format!("app@{}", a.id));
    assert_eq!(s.resolve(&pinned).unwrap().id, a.id);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let e = s.resolve(&stored(&format!("app@{wrong}"))).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&wrong) && msg.contains(&a.id), "{msg}");
    let e = s.resolve(&stored("other")).unwrap_err();
    assert!(e.to_string().contains("app:latest"), "{e}");

    // Users block removal until removed; the marker counts only while the box dir exists.
    s.add_user(&a.id, "box9").unwrap();
    fs::create_dir_all(t.path().join("root/boxes/box9")).unwrap();
    assert!(matches!(
        s.remove("app", false),
        Err(ImageError::InUse { .. })
    ));
    s.remove_user(&a.id, "box9");
    s.remove("app", false).unwrap();
    assert!(s.list().unwrap().is_empty());
    assert!(!a.layers[0].exists());

    // A box that resolved the image before an `image rm` read the (then empty) users is
    // refused when it records itself, and leaves no marker behind.
    let e = s.add_user(&a.id, "box10").unwrap_err();
    assert!(
        matches!(&e, ImageError::RemovedWhileStarting(id) if *id == a.id),
        "{e}"
    );
    let markers = t.path().join("root/images/users");
    let left: Vec<_> = walk_files(&markers);
    assert!(left.is_empty(), "markers left: {left:?}");
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn layers() -> (Vec<u8>, Vec<u8>) {
    let lower = tar(&[
        E::file("a/x", "x"),
        E::file("a/y", "y"),
        E::file("b/z", "z"),
    ]);
    let upper = tar(&[
        E::file("a/.wh.x", ""),
        E::dir("b/"),
        E::file("b/.wh..wh..opq", ""),
        E::file("b/new", "new"),
    ]);
    (lower, upper)
}

#[test]
fn layers_with_whiteouts_apply_and_convert_for_overlayfs() {
    use foxbox::image::unpack::{unpack, Options, Owners, Whiteouts};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !common::root_or_skip("needs root to mount the overlay") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (lower, upper) = layers();
    let opts = |w| Options {
        whiteouts: w,
        owners: Owners::Keep,
        max_size: 1 << 20,
    };
    // Applied onto one directory: the result is the merged tree.
    let flat = t.path().join("flat");
    fs::create_dir(&flat).unwrap();
    unpack(&lower[..], &flat, &opts(Whiteouts::Apply)).unwrap();
    unpack(&upper[..], &flat, &opts(Whiteouts::Apply)).unwrap();
    assert!(!flat.join("a/x").exists() && flat.join("a/y").exists());
    assert!(!flat.join("b/z").exists() && flat.join("b/new").exists());
    assert!(!flat.join("a/.wh.x").exists() && !flat.join("b/.wh..wh..opq").exists());
    // As separate overlay layers: whiteout devices and the opaque mark, merged by the kernel.
    let (l1, l2) = (t.path().join("l1"), t.path().join("l2"));
    fs::create_dir(&l1).unwrap();
    fs::create_dir(&l2).unwrap();
    let ov = Whiteouts::Overlay;
    unpack(&lower[..], &l1, &opts(ov)).unwrap();
    unpack(&upper[..], &l2, &opts(ov)).unwrap();
    let wh = fs::symlink_metadata(l2.join("a/x")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert!(foxbox::image::xattr::is_opaque(&l2.join("b")));
    // The mark a userxattr overlay reads, for root too (boxes always mount in a user
    // namespace); not the trusted.* one.
    assert_eq!(
        xattr(&l2.join("b"), "user.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert_eq!(xattr(&l2.join("b"), "trusted.overlay.opaque"), None);
    let merged = t.path().join("merged");
    fs::create_dir(&merged).unwrap();
    // Mounted as boxes mount it: in a user namespace, with userxattr.
    let script = format!(
        "mount -t overlay overlay -o lowerdir={}:{},userxattr {m} && ls {m}/a {m}/b",
        l2.display(),
        l1.display(),
        m = merged.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = listing
        .lines()
        .filter(|l| !l.is_empty() && !l.ends_with(':'))
        .collect();
    assert_eq!(names, ["y", "new"], "{listing}");
}

fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: both strings are NUL-terminated; buf is writable for its length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}
