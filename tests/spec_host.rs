//! `foxbox check --host` on this machine, through the binary: as root, as a user with a
//! subordinate id range, and as one without. Each host problem names the spec line needing it.

mod common;

use common::{Env, Run, Who};
use serde_json::Value;

/// Diagnostics of a `check --host --format json` run, as (code, severity, line).
fn host_diags(
    env: &Env,
    spec: &str,
    extra_env: &[(&str, &str)],
) -> (Run, Vec<(String, String, u64)>) {
    env.write("Foxbox.toml", spec);
    let mut c = env.foxbox(["check", "--host", "--format", "json", "Foxbox.toml"]);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let r = Run::from(c.output().expect("foxbox"));
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let d = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["severity"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    (r, d)
}

fn has(d: &[(String, String, u64)], code: &str, severity: &str, line: u64) -> bool {
    d.iter()
        .any(|(c, s, l)| c == code && s == severity && *l == line)
}

#[test]
fn files_the_spec_names_must_exist_and_plain_check_does_not_care() {
    let spec = "[box]\nimage = \"./rootfs.tar.gz\"\n\n[[mounts]]\ntype = \"bind\"\nsource = \"./data\"\ntarget = \"/data\"\n";
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        env.import_busybox();
        let (r, d) = host_diags(&env, spec, &[]);
        r.assert_code(1);
        assert!(has(&d, "foxbox::host::image", "error", 2), "{d:?}");
        assert!(has(&d, "foxbox::host::bind_source", "error", 4), "{d:?}");
        // Plain check needs nothing of the host but the bind sources (a missing one is an
        // error at its line, issue 8); a missing image tarball is for `--host`.
        let r = env.run(["check", "Foxbox.toml"]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("foxbox::host::bind_source"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("foxbox::host::image"), "{}", r.stderr);

        env.write("rootfs.tar.gz", "not really a tarball, but readable");
        env.write("data/file", "x");
        let (r, d) = host_diags(&env, spec, &[]);
        assert!(
            !d.iter()
                .any(|(c, _, _)| c == "foxbox::host::image" || c == "foxbox::host::bind_source"),
            "{d:?}"
        );
        if who == Who::Root {
            r.ok();
            assert!(d.is_empty(), "root on this host: {d:?}");
        }
    }
}

#[test]
fn subordinate_ids_are_needed_for_a_box_user_other_than_root() {
    if !common::root_or_skip("needs root to run as users with and without a subordinate range") {
        return;
    }
    let spec = "[box]\nimage = \"busybox\"\nuser = \"1000:1000\"\n";
    let env = Env::new(Who::UserNoSubids);
    env.import_busybox();
    let (r, d) = host_diags(&env, spec, &[]);
    r.assert_code(1);
    assert!(has(&d, "foxbox::host::subids", "error", 3), "{d:?}");

    // As root inside the box, a single mapped id is enough: only a warning.
    let (r, d) = host_diags(&env, "[box]\nimage = \"busybox\"\n", &[]);
    r.ok();
    assert!(has(&d, "foxbox::host::subids", "warning", 2), "{d:?}");

    let env = Env::new(Who::User);
    env.import_busybox();
    let (r, d) = host_diags(&env, spec, &[]);
    r.ok();
    assert!(d.is_empty(), "foxtest has a range: {d:?}");
}

#[test]
fn privileged_host_ports_are_for_root_only() {
    let spec = "[box]\nimage = \"busybox\"\n\n[network]\nmode = \"pasta\"\nports = [\"80:80\", \"8080:80\"]\n";
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        env.import_busybox();
        let (_, d) = host_diags(&env, spec, &[]);
        let low = has(&d, "foxbox::host::low_port", "error", 6);
        let root = env.ids().0 == 0;
        assert_eq!(low, !root, "{who:?}: {d:?}");
        assert!(
            !d.iter().any(|(c, _, _)| c == "foxbox::host::net_helper"),
            "pasta is installed: {d:?}"
        );
    }
}

/// A pids cgroup created for the test (v1 here, or v2), removed on drop.
struct TestCgroup {
    dir: std::path::PathBuf,
    rel: String,
}

impl TestCgroup {
    fn new(owner: (u32, u32)) -> Option<TestCgroup> {
        let base = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
            .into_iter()
            .map(std::path::Path::new)
            .find(|p| {
                p.join("cgroup.procs").exists()
                    && (p.ends_with("pids") || p.join("cgroup.controllers").exists())
            })?;
        let rel = format!("foxbox-spec-test-{}", std::process::id());
        let dir = base.join(&rel);
        std::fs::create_dir(&dir).ok()?;
        let status = std::process::Command::new("chown")
            .arg(format!("{}:{}", owner.0, owner.1))
            .arg(&dir)
            .status()
            .ok()?;
        assert!(status.success());
        Some(TestCgroup {
            dir,
            rel: format!("/{rel}"),
        })
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn limits_need_a_writable_cgroup_unless_best_effort() {
    if !common::root_or_skip("needs root to delegate a cgroup") {
        return;
    }
    let strict = "[box]\nimage = \"busybox\"\n\n[limits]\npids = 16\n";
    let best = "[box]\nimage = \"busybox\"\n\n[limits]\npids = 16\nenforce = \"best-effort\"\n";

    let root = Env::new(Who::Root);
    root.import_busybox();
    let (r, d) = host_diags(&root, strict, &[]);
    r.ok();
    assert!(d.is_empty(), "{d:?}");

    let user = Env::new(Who::User);
    user.import_busybox();
    // The test user's processes stay in the caller's cgroup, which is root's.
    let (r, d) = host_diags(&user, strict, &[]);
    r.assert_code(1);
    assert!(has(&d, "foxbox::host::cgroup", "error", 5), "{d:?}");
    let (r, d) = host_diags(&user, best, &[]);
    r.ok();
    assert!(has(&d, "foxbox::host::cgroup", "warning", 5), "{d:?}");

    // A delegated cgroup named by FOXBOX_CGROUP_PARENT makes the limit enforceable.
    let cg = TestCgroup::new(user.ids()).expect("create a pids cgroup");
    let (r, d) = host_diags(&user, strict, &[("FOXBOX_CGROUP_PARENT", &cg.rel)]);
    r.ok();
    assert!(d.is_empty(), "{d:?}");
}
