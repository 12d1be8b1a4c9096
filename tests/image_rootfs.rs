//! A box's rootfs from an image: two empty directories (no copy), mountable as an overlay in the
//! box's user and mount namespaces, removable rootless after the box wrote files as its own ids.
//! The mount here is done with unshare(1) the way the executor will do it.

mod common;

use std::fs;
use std::path::Path;

use common::{Env, Who};

fn prepare(env: &Env, image: &str, box_dir: &Path) -> serde_json::Value {
    let r = env.run([
        "image".as_ref(),
        "prepare-rootfs".as_ref(),
        image.as_ref(),
        box_dir.as_os_str(),
    ]);
    r.ok();
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn box_rootfs_is_an_overlay_of_the_shared_layer() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        env.import_busybox();
        let box_dir = env.work().join("box1");
        let v = prepare(&env, "busybox", &box_dir);
        assert_eq!(v["copy"], false, "overlayfs works on this host");
        let lower = v["lower_dirs"][0].as_str().unwrap();
        assert!(lower.contains("/images/layers/"), "{lower}");
        let upper = Path::new(v["upper"].as_str().unwrap());
        assert_eq!(fs::read_dir(upper).unwrap().count(), 0, "nothing copied");
        assert_eq!(
            v["userxattr"], true,
            "boxes mount with userxattr, root's too"
        );
        // Mount it the way the executor will: a user namespace with the box's maps (the
        // subordinate range at 1..), a mount namespace, overlay; then write as box uid 1000.
        let merged = box_dir.join("merged");
        fs::create_dir_all(&merged).unwrap();
        let opts = format!(
            "lowerdir={lower},upperdir={},workdir={},userxattr",
            v["upper"].as_str().unwrap(),
            v["work"].as_str().unwrap(),
        );
        let script = format!(
            "set -e; mount -t overlay overlay -o {opts} {m}; cat {m}/etc/foxbox-image; \
             echo hi > {m}/newfile; chown 1000:1000 {m}/newfile; mkdir {m}/home/fox/d; \
             chown 1000 {m}/home/fox/d; rm {m}/etc/passwd",
            m = merged.display()
        );
        let mut cmd = env.command("unshare");
        if who != Who::Root {
            cmd.args([
                "--user",
                "--map-root-user",
                "--map-users=100000,1,65536",
                "--map-groups=100000,1,65536",
            ]);
        }
        let out = cmd.args(["--mount", "sh", "-c", &script]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "busybox\n");
        // Writes went to the box's upper dir, the shared layer is untouched.
        assert!(upper.join("newfile").exists());
        assert!(Path::new(lower).join("etc/passwd").exists());
        let uid =
            std::os::unix::fs::MetadataExt::uid(&fs::metadata(upper.join("newfile")).unwrap());
        assert_eq!(uid, if who == Who::Root { 1000 } else { 100_999 });
        // A second box of the same image shares the layer.
        let v2 = prepare(&env, "busybox", &env.work().join("box2"));
        assert_eq!(v2["lower_dirs"], v["lower_dirs"]);
        // Removing the box's rootfs works rootless, files of subordinate ids included.
        for b in ["box1", "box2"] {
            let dir = env.work().join(b);
            env.run(["image".as_ref(), "remove-rootfs".as_ref(), dir.as_os_str()])
                .ok();
            assert!(!dir.join("rootfs").exists(), "{b}'s rootfs left behind");
        }
        assert!(Path::new(lower).join("etc/passwd").exists());
    }
}

#[test]
fn without_overlayfs_the_box_gets_a_copy_with_owners_and_links() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        env.import_busybox();
        let box_dir = env.work().join("copybox");
        let r = env
            .foxbox(["image", "prepare-rootfs", "busybox"])
            .arg(&box_dir)
            .env("FOXBOX_NO_OVERLAY", "1")
            .output()
            .unwrap();
        let r = common::Run::from(r);
        r.ok();
        assert!(
            r.stderr.contains("copying the image"),
            "one warning: {}",
            r.stderr
        );
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["copy"], true);
        assert_eq!(v["lower_dirs"], serde_json::json!([]));
        let root = Path::new(v["upper"].as_str().unwrap());
        let layer = {
            let i: serde_json::Value =
                serde_json::from_str(&env.run(["image", "inspect", "busybox"]).stdout).unwrap();
            std::path::PathBuf::from(i[0]["layers"][0].as_str().unwrap())
        };
        use std::os::unix::fs::MetadataExt;
        for p in ["bin/busybox", "etc/passwd", "home/fox", "tmp", "root"] {
            let (a, b) = (
                fs::symlink_metadata(layer.join(p)).unwrap(),
                fs::symlink_metadata(root.join(p)).unwrap(),
            );
            assert_eq!(
                (a.uid(), a.gid(), a.mode()),
                (b.uid(), b.gid(), b.mode()),
                "{p}"
            );
        }
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            fs::read_link(root.join("var/run")).unwrap(),
            Path::new("/run")
        );
        env.run([
            "image".as_ref(),
            "remove-rootfs".as_ref(),
            box_dir.as_os_str(),
        ])
        .ok();
        assert!(!box_dir.join("rootfs").exists());
    }
}
