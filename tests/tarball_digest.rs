//! A spec whose image is a tarball path: its digest is remembered by the file's (device,
//! inode, size, mtime, ctime), so an unchanged tarball is not read at each start, and a
//! rewritten one (same size, mtime set back with `touch -d`) is read again. Through the binary,
//! as root and as the unprivileged user.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{busybox_tarball, envs};

#[test]
fn an_unchanged_tarball_is_not_read_again_a_rewritten_one_is() {
    for env in envs() {
        let tar = env.work().join("bb.tar.gz");
        std::fs::copy(busybox_tarball(), &tar).unwrap();
        let (uid, gid) = env.ids();
        std::os::unix::fs::chown(&tar, Some(uid), Some(gid)).unwrap();
        let spec = env.write(
            "Foxbox.toml",
            "[box]\nimage = \"./bb.tar.gz\"\ncommand = [\"sh\", \"-c\", \"echo plain\"]\n",
        );
        let spec = spec.to_str().unwrap();
        // Written now: `write` chowns the work dir, which moves the tarball's ctime.
        let spec_no_cmd = env.write("nocmd.toml", "[box]\nimage = \"./bb.tar.gz\"\n");
        let cache = env.store().join("images/tarball-digests.json");

        // Just written: too fresh to trust, hashed and not remembered.
        env.run(["up", "--rm", spec]).ok();
        assert!(!cache.exists(), "a fresh file's digest is not kept");
        std::thread::sleep(Duration::from_millis(2100));
        let r = env.run(["up", "--rm", spec]);
        r.ok();
        assert_eq!(r.stdout, "plain\n");
        let text = std::fs::read_to_string(&cache).expect("settled: remembered");
        let real: serde_json::Value = serde_json::from_str(&text).unwrap();
        let key = std::fs::canonicalize(&tar).unwrap();
        let real_digest = real["entries"][key.to_str().unwrap()]["digest"]
            .as_str()
            .unwrap()
            .to_string();

        // Plant another image's id for the same stamp: foxbox believes it without reading
        // the file, so the box runs that image (whose command differs).
        let r = env.run([
            "image",
            "import",
            "--name",
            "other",
            "--change",
            r#"ENTRYPOINT ["echo", "planted"]"#,
            busybox_tarball().to_str().unwrap(),
        ]);
        r.ok();
        let other = format!("sha256:{}", r.stdout.trim());
        std::fs::write(&cache, text.replace(&real_digest, &other)).unwrap();
        let r = env.run(["up", "--rm", spec_no_cmd.to_str().unwrap()]);
        r.ok();
        assert_eq!(r.stdout, "planted\n", "the remembered digest was used");

        // Rewrite it with the same bytes and set its mtime back: size and mtime are as
        // recorded, the ctime is not, so it is read again and the planted digest is gone.
        let mtime = std::fs::metadata(&tar).unwrap().modified().unwrap();
        let stamp = humantime::format_rfc3339_nanos(mtime).to_string();
        let bytes = std::fs::read(&tar).unwrap();
        std::fs::write(&tar, &bytes).unwrap();
        let st = Command::new("touch")
            .arg("-d")
            .arg(&stamp)
            .arg(&tar)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(std::fs::metadata(&tar).unwrap().modified().unwrap(), mtime);
        let r = env.run(["up", "--rm", spec_no_cmd.to_str().unwrap()]);
        r.ok();
        assert_eq!(
            r.stdout, "",
            "the tarball's own image (its shell, stdin empty)"
        );
    }
}
