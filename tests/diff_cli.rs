//! `foxbox diff` through the built binary, as root and as the unprivileged user: plans (not text)
//! compared, each change with its old and new spec lines, exit codes as diff(1)'s, and `REV:PATH`
//! in a throwaway git repository resolving relative paths at that revision.

mod common;

use std::path::Path;

use common::{Env, Who};
use serde_json::Value;

fn each_user(f: impl Fn(&Env)) {
    for who in Who::BOTH {
        if who.available() {
            f(&Env::new(who));
        }
    }
}

const OLD: &str = r#"[box]
image = "busybox"
env = { A = "1", KEEP = "k" }

[limits]
memory = "64m"

[[mounts]]
type = "bind"
source = "./data"
target = "/data"
"#;

/// OLD written otherwise: other order, comments, units, quoting. The same plan.
const SAME: &str = r#"# the same box
[[mounts]]
target = "/data/"
source = "data"
type = "bind"

[limits]
memory = "64MiB"   # 64m

[box]
env.KEEP = "k"
env.A = "1"
image = "busybox"
"#;

const NEW: &str = r#"[box]
image = "busybox"
env = { A = "2", KEEP = "k", B = "x" }

[limits]
memory = "128m"
pids = 10

[[mounts]]
type = "bind"
source = "./data"
target = "/data"
readonly = true
"#;

fn json(r: &common::Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr))
}

fn change<'a>(v: &'a Value, section: &str, key: &str) -> &'a Value {
    v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["section"] == section && c["key"] == key)
        .unwrap_or_else(|| panic!("no change {section}.{key} in {v}"))
}

#[test]
fn equal_plans_exit_0_and_changes_exit_1_with_both_lines() {
    each_user(|env| {
        let old = env.write("old/Foxbox.toml", OLD);
        let same = env.write("old/Same.toml", SAME);
        let new = env.write("old/New.toml", NEW);
        let (o, s, n) = (
            old.to_str().unwrap(),
            same.to_str().unwrap(),
            new.to_str().unwrap(),
        );

        let r = env.run(["diff", o, s]);
        r.ok();
        assert!(r.stdout.contains("the plans are equal"), "{}", r.stdout);
        let r = env.run(["diff", "--format", "json", o, s]);
        r.ok();
        assert_eq!(json(&r)["equal"], true);

        let r = env.run(["diff", "--format", "json", o, n]);
        r.assert_code(1);
        let v = json(&r);
        assert_eq!(v["equal"], false);
        assert_eq!(v["changes"].as_array().unwrap().len(), 5, "{v}");
        let mem = change(&v, "limits", "memory");
        assert_eq!(mem["old"], 64 << 20);
        assert_eq!(mem["new"], 128 << 20);
        assert_eq!(mem["old_location"]["line"], 6);
        assert_eq!(mem["new_location"]["line"], 6);
        assert_eq!(mem["old_location"]["file"], o);
        let pids = change(&v, "limits", "pids");
        assert_eq!(pids["old"], Value::Null);
        assert_eq!(pids["new_location"]["line"], 7);
        assert_eq!(change(&v, "box", "env.A")["new"], "2");
        assert_eq!(change(&v, "box", "env.B")["old"], Value::Null);
        let m = change(&v, "mounts", "/data");
        assert_eq!(m["new"]["readonly"], true);
        assert_eq!(m["new_location"]["line"], 9);

        let r = env.run(["diff", o, n]);
        r.assert_code(1);
        assert!(
            r.stdout
                .contains("[limits]\n  memory: 67108864 -> 134217728\n"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains(&format!("new: {n}:6")), "{}", r.stdout);
        assert!(r.stdout.contains("5 values differ"), "{}", r.stdout);

        // Trouble is 2, as diff(1)'s.
        env.run(["diff", o, "missing.toml"]).assert_code(2);
        let bad = env.write("old/Bad.toml", "[box]\nimage = 3\n");
        let r = env.run(["diff", o, bad.to_str().unwrap()]);
        r.assert_code(2);
        assert!(r.stderr.contains("has errors"), "{}", r.stderr);
    });
}

/// Run git as the env's user in `dir`.
fn git(env: &Env, dir: &Path, args: &[&str]) {
    let out = env
        .command("git")
        .current_dir(dir)
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const PROFILE_A: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}"#;
const PROFILE_B: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"}]}"#;
const WITH_PROFILE: &str = r#"[box]
image = "busybox"

[seccomp]
profile = "profile.json"

[[mounts]]
type = "bind"
source = "./data"
target = "/data"
"#;

#[test]
fn rev_path_reads_the_spec_and_its_files_at_that_revision() {
    each_user(|env| {
        let repo = env.work().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        env.write("repo/deploy/Foxbox.toml", WITH_PROFILE);
        env.write("repo/deploy/profile.json", PROFILE_A);
        env.write("repo/deploy/data/x", "x");
        git(env, &repo, &["init", "-q"]);
        git(env, &repo, &["add", "-A"]);
        git(env, &repo, &["commit", "-qm", "one"]);
        // Only the profile's contents change: the spec's text is the same.
        env.write("repo/deploy/profile.json", PROFILE_B);
        git(env, &repo, &["commit", "-qam", "two"]);
        // The working tree drops the profile file and the seccomp table.
        std::fs::remove_file(repo.join("deploy/profile.json")).unwrap();
        env.write(
            "repo/deploy/Foxbox.toml",
            WITH_PROFILE.replace("[seccomp]\nprofile = \"profile.json\"\n", ""),
        );

        let deploy = repo.join("deploy");
        let diff = |args: &[&str]| {
            let mut c = env.foxbox(["diff", "--format", "json"]);
            c.args(args).current_dir(&deploy);
            common::Run::from(c.output().unwrap())
        };
        let r = diff(&["HEAD~1:Foxbox.toml", "HEAD:Foxbox.toml"]);
        r.assert_code(1);
        let v = json(&r);
        assert_eq!(v["changes"].as_array().unwrap().len(), 1, "{v}");
        let c = change(&v, "seccomp", "profile");
        assert_ne!(c["old"]["sha256"], c["new"]["sha256"]);
        assert_eq!(c["old_location"]["file"], "HEAD~1:Foxbox.toml");
        assert_eq!(c["old_location"]["line"], 5);

        // A revision's relative paths mean the working tree's paths, so an unchanged bind is
        // no change; the profile the working tree no longer has is read from the revision.
        let r = diff(&["HEAD~1:Foxbox.toml", "Foxbox.toml"]);
        r.assert_code(1);
        let v = json(&r);
        assert_eq!(v["changes"].as_array().unwrap().len(), 1, "{v}");
        let c = change(&v, "seccomp", "profile");
        assert_eq!(c["new"], "default");
        assert_eq!(c["new_location"], Value::Null);

        // From the repository's top, a path into the subdirectory; `./` as git's.
        let mut c = env.foxbox([
            "diff",
            "HEAD:deploy/Foxbox.toml",
            "HEAD:./deploy/Foxbox.toml",
        ]);
        c.current_dir(&repo);
        common::Run::from(c.output().unwrap()).ok();

        diff(&["HEAD~5:Foxbox.toml", "Foxbox.toml"]).assert_code(2);
        let r = diff(&["HEAD:nothing.toml", "Foxbox.toml"]);
        r.assert_code(2);
        assert!(
            r.stderr.contains("deploy/nothing.toml at HEAD"),
            "{}",
            r.stderr
        );
    });
}
