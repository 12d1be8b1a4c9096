//! A store is its owner's alone: another local user can list nothing of it and read no log,
//! whether its owner is root or an unprivileged user, in `XDG_DATA_HOME` or the default
//! `~/.local/share/foxbox`, and an older store's open modes are tightened when it is opened.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{envs_with_busybox, root_or_skip, user_ids, TEST_USER_NOSUB};

fn mode(p: &Path) -> u32 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// What `script` prints (both streams) run as a user who owns none of the stores.
fn as_stranger(script: &str) -> String {
    let (uid, gid) = user_ids(TEST_USER_NOSUB).expect("the second test user");
    let out = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--init-groups", "--", "sh", "-c", script])
        .output()
        .expect("setpriv");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn another_user_reads_nothing_of_a_store() {
    if !root_or_skip("a second user is needed") {
        return;
    }
    for env in envs_with_busybox() {
        env.run([
            "run",
            "-d",
            "--name",
            "talker",
            "busybox",
            "echo",
            "secret-4711",
        ])
        .ok();
        env.run(["wait", "talker"]).ok();
        env.run(["volume", "create", "vault9"]).ok();
        let store = env.store();
        let boxes = env.box_dirs();
        assert_eq!(boxes.len(), 1, "{:?}", env.who);
        let log = boxes[0].join("log");
        assert!(fs::read_to_string(&log).unwrap().contains("secret-4711"));
        for d in [
            store.clone(),
            store.join("boxes"),
            store.join("images"),
            store.join("volumes"),
            boxes[0].clone(),
        ] {
            assert_eq!(mode(&d), 0o700, "{:?}: {}", env.who, d.display());
        }
        assert_eq!(mode(&log), 0o600, "{:?}", env.who);

        let seen = as_stranger(&format!(
            "ls {s}; ls {s}/boxes; cat {l}; ls {s}/volumes; ls {s}/images/layers; \
             cat {s}/boxes/*/config.json",
            s = store.display(),
            l = log.display()
        ));
        let id = boxes[0].file_name().unwrap().to_string_lossy().into_owned();
        let listed = seen.replace(&log.display().to_string(), "");
        for secret in ["secret-4711", "vault9", "talker", &id] {
            let seen = if secret == id { &listed } else { &seen };
            assert!(
                !seen.contains(secret),
                "{:?}: a stranger saw {secret}:\n{seen}",
                env.who
            );
        }
        assert!(seen.contains("Permission denied"), "{:?}: {seen}", env.who);

        // A store an older foxbox left open is closed when it is next opened.
        for d in [store.clone(), store.join("boxes"), store.join("volumes")] {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        env.run(["ps", "-a"]).ok();
        env.run(["volume", "create", "vol2"]).ok();
        for d in [store.clone(), store.join("boxes"), store.join("volumes")] {
            assert_eq!(mode(&d), 0o700, "{:?}: {}", env.who, d.display());
        }

        // The default place, ~/.local/share/foxbox, is as private.
        let r = env
            .foxbox(["volume", "create", "vol3"])
            .env_remove("XDG_DATA_HOME")
            .output()
            .unwrap();
        assert!(r.status.success(), "{r:?}");
        let default = env.home().join(".local/share/foxbox");
        assert_eq!(mode(&default), 0o700, "{:?}", env.who);
        let seen = as_stranger(&format!("ls {}", default.display()));
        assert!(
            seen.contains("Permission denied") && !seen.contains("vol3"),
            "{:?}: {seen}",
            env.who
        );
    }
}
