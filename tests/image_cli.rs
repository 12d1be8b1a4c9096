//! `foxbox image import|ls|rm|inspect` through the binary, as root and as the unprivileged user:
//! naming, re-import, listing formats, removal rules, concurrent and interrupted imports.

mod common;

use common::envs;
mod image_support;

use std::ffi::OsStr;
use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{busybox_tarball, Env};
use image_support::{gzip, snapshot, tar, E};

fn import(env: &Env, args: &[&OsStr]) -> common::Run {
    let mut v: Vec<&OsStr> = vec![OsStr::new("image"), OsStr::new("import")];
    v.extend_from_slice(args);
    env.run(v)
}

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let r = env.run(args);
    r.ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn import_names_after_the_file_and_lists_like_podman() {
    for env in envs() {
        let tb = busybox_tarball();
        let local = env.work().join("busybox.tar.gz");
        fs::copy(&tb, &local).unwrap();
        let r = import(&env, &[local.as_os_str()]);
        r.ok();
        let hex = r.stdout.trim().to_string();
        let sha = String::from_utf8(
            std::process::Command::new("sha256sum")
                .arg(&local)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(sha.starts_with(&hex), "the id is the file's sha256");
        let ls = env.run(["image", "ls"]);
        ls.ok();
        let lines: Vec<&str> = ls.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{}", ls.stdout);
        let head: Vec<&str> = lines[0]
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(head, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
        assert!(lines[1].starts_with("busybox "), "{}", lines[1]);
        assert!(lines[1].contains(" latest "));
        assert!(lines[1].contains(&hex[..12]) && !lines[1].contains(&hex[..13]));
        assert!(lines[1].contains("ago"), "{}", lines[1]);
        assert!(lines[1].ends_with(" MB"), "{}", lines[1]);
        let q = env.run(["image", "ls", "-q"]);
        assert_eq!(q.stdout, format!("{}\n", &hex[..12]));
        let q = env.run(["image", "ls", "-q", "--no-trunc"]);
        assert_eq!(q.stdout, format!("sha256:{hex}\n"));
        let v = json(&env, &["image", "ls", "--format", "json"]);
        assert_eq!(v[0]["id"], format!("sha256:{hex}"));
        assert_eq!(v[0]["names"][0], "busybox:latest");
        assert!(v[0]["size"].as_u64().unwrap() > 500_000);
        // A second name for the same file: one image, two rows, one layer on disk.
        import(
            &env,
            &[OsStr::new("--name"), OsStr::new("bb:v1"), local.as_os_str()],
        )
        .ok();
        let v = json(&env, &["image", "inspect", "bb:v1"]);
        assert_eq!(
            v[0]["names"],
            serde_json::json!(["busybox:latest", "bb:v1"])
        );
        assert_eq!(
            fs::read_dir(env.store().join("images/layers"))
                .unwrap()
                .count(),
            1
        );
        // Inspect by id prefix; a missing name fails naming what exists.
        let v = json(&env, &["image", "inspect", &hex[..8]]);
        assert_eq!(v[0]["id"], format!("sha256:{hex}"));
        let bad = env.run(["image", "inspect", "nope"]);
        assert_eq!(bad.code, 125);
        assert!(bad.stderr.contains("nope") && bad.stderr.contains("busybox:latest"));
        // A file name that is no image name needs --name.
        let odd = env.write("My Image.tar", tar(&[E::file("x", "x")]));
        let r = import(&env, &[odd.as_os_str()]);
        assert_eq!(r.code, 125);
        assert!(r.stderr.contains("--name"), "{}", r.stderr);
    }
}

#[test]
fn reimport_moves_the_tag_and_rm_follows_podman() {
    for env in envs() {
        let v1 = env.write("app.tar", tar(&[E::file("version", "1")]));
        let r1 = import(&env, &[v1.as_os_str()]);
        r1.ok();
        let id1 = r1.stdout.trim().to_string();
        let v2 = env.write("app.tar", tar(&[E::file("version", "2")]));
        let r2 = import(&env, &[v2.as_os_str()]);
        r2.ok();
        let id2 = r2.stdout.trim().to_string();
        assert_ne!(id1, id2);
        let v = json(&env, &["image", "inspect", "app"]);
        assert_eq!(v[0]["id"], format!("sha256:{id2}"));
        let layer = v[0]["layers"][0].as_str().unwrap().to_string();
        assert_eq!(fs::read_to_string(format!("{layer}/version")).unwrap(), "2");
        // The old image lost its name but stays, as <none>.
        let ls = env.run(["image", "ls"]);
        assert!(ls
            .stdout
            .lines()
            .any(|l| l.starts_with("<none>") && l.contains(&id1[..12])));
        // rm by id prefix.
        let r = env.run(["image", "rm", &id1[..10]]);
        r.ok();
        assert_eq!(r.stdout, format!("Deleted: {id1}\n"));
        // Missing: exit 1.
        assert_eq!(env.run(["image", "rm", "ghost"]).code, 1);
        // In use by a box: exit 2, unless -f. (The lifecycle records users through
        // Store::add_user; here the marker and the box dir are made by hand.)
        let users = env.store().join("images/users").join(&id2);
        fs::create_dir_all(&users).unwrap();
        fs::write(users.join("box1"), b"").unwrap();
        fs::create_dir_all(env.store().join("boxes/box1")).unwrap();
        let r = env.run(["image", "rm", "app"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains("box1") && r.stderr.contains("-f"),
            "{}",
            r.stderr
        );
        let v = json(&env, &["image", "inspect", "app"]);
        assert_eq!(v[0]["users"], serde_json::json!(["box1"]));
        // A marker whose box is gone does not count.
        fs::remove_dir(env.store().join("boxes/box1")).unwrap();
        let v = json(&env, &["image", "inspect", "app"]);
        assert_eq!(v[0]["users"], serde_json::json!([]));
        fs::create_dir_all(env.store().join("boxes/box1")).unwrap();
        // Untag when there is another name; delete with -f.
        import(
            &env,
            &[
                OsStr::new("--name"),
                OsStr::new("app:other"),
                v2.as_os_str(),
            ],
        )
        .ok();
        let r = env.run(["image", "rm", "app:other"]);
        r.ok();
        assert_eq!(r.stdout, "Untagged: app:other\n");
        let r = env.run(["image", "rm", "-f", "app"]);
        r.ok();
        assert_eq!(r.stdout, format!("Untagged: app:latest\nDeleted: {id2}\n"));
        assert!(env.run(["image", "ls", "-q"]).stdout.is_empty());
        assert_eq!(
            fs::read_dir(env.store().join("images/layers"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            fs::read_dir(env.store().join("images/tmp"))
                .unwrap()
                .count(),
            0
        );
    }
}

/// A tar.gz big enough that an import takes a while (many small files).
fn big_archive(env: &Env, name: &str, files: usize) -> std::path::PathBuf {
    let mut entries = Vec::with_capacity(files);
    for i in 0..files {
        entries.push(E::file(
            format!("d{}/f{i}", i % 50),
            format!("{i}").repeat(400),
        ));
    }
    env.write(name, gzip(&tar(&entries)))
}

#[test]
fn concurrent_imports_of_one_archive_end_with_one_image() {
    for env in envs() {
        let f = big_archive(&env, "big.tar.gz", 4000);
        let mut kids: Vec<_> = (0..3)
            .map(|_| {
                env.foxbox(["image", "import", "--name", "big"])
                    .arg(&f)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<String> = kids
            .drain(..)
            .map(|k| {
                let o = k.wait_with_output().unwrap();
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                String::from_utf8(o.stdout).unwrap()
            })
            .collect();
        assert!(outs.iter().all(|o| o == &outs[0]));
        assert_eq!(env.run(["image", "ls", "-q"]).stdout.lines().count(), 1);
        assert_eq!(
            fs::read_dir(env.store().join("images/layers"))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(
            fs::read_dir(env.store().join("images/tmp"))
                .unwrap()
                .count(),
            0
        );
    }
}

#[test]
fn a_killed_import_leaves_nothing_and_is_swept() {
    for env in envs() {
        let f = big_archive(&env, "slow.tar.gz", 30_000);
        env.run(["image", "ls"]).ok();
        let before = snapshot(&env.store());
        let tmp = env.store().join("images/tmp");
        let mut child = env
            .foxbox(["image", "import", "--name", "slow"])
            .arg(&f)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill it once it is unpacking (its temporary directory exists).
        let start = Instant::now();
        loop {
            let busy = fs::read_dir(&tmp)
                .map(|d| {
                    d.flatten()
                        .any(|e| !e.file_name().to_string_lossy().ends_with(".lock"))
                })
                .unwrap_or(false);
            if busy {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the import never started"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "the import finished too fast"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        // setpriv execs foxbox, so this pid is foxbox itself; its namespace child dies with it.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        child.wait().unwrap();
        // Give the orphaned namespace child (PDEATHSIG) a moment to go.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            fs::read_dir(&tmp).unwrap().count() > 0,
            "nothing left to sweep"
        );
        let ls = env.run(["image", "ls", "-q"]);
        ls.ok();
        assert!(
            ls.stdout.is_empty(),
            "a killed import is visible: {}",
            ls.stdout
        );
        assert_eq!(
            fs::read_dir(&tmp).unwrap().count(),
            0,
            "leftovers not swept"
        );
        assert_eq!(before, snapshot(&env.store()));
    }
}

/// `image import` killed while writing the index leaves `images/.tmp-index.json-XXXXXX` (made
/// here as the kill leaves it): the next image command sweeps it, as other partial work.
#[test]
fn a_temp_index_left_by_a_killed_import_is_swept() {
    for env in envs() {
        env.import_busybox();
        let tmp = env.store().join("images/.tmp-index.json-AbC123");
        env.sh(&format!(
            "echo '{{\"version\": 1, \"ima' > {}",
            tmp.display()
        ));
        env.run(["image", "ls"]).ok();
        assert!(!tmp.exists(), "{:?}: {} left", env.who, tmp.display());
        env.run(["system", "check"]).ok();
    }
}
