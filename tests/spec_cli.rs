//! `foxbox check`, `plan` and `schema` through the built binary, as root and as the
//! unprivileged user.

mod common;

use std::path::{Path, PathBuf};

use common::{Env, Who};
use serde_json::Value;

const VALID: &str = r#"
[box]
image = "./rootfs.tar.gz"
command = ["/bin/echo", "hi"]

[limits]
memory = "64m"
"#;

const INVALID: &str = r#"[box]
image = "busybox"

[limits]
memory = "64x"
cpus = 0
"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn each_user(f: impl Fn(&Env)) {
    for who in Who::BOTH {
        if who.available() {
            f(&Env::new(who));
        }
    }
}

#[test]
fn check_exits_0_for_valid_1_for_invalid_125_for_unusable() {
    each_user(|env| {
        env.write("good.toml", VALID);
        env.write("bad.toml", INVALID);

        let r = env.run(["check", "good.toml"]);
        r.ok();
        assert_eq!(r.stdout, "good.toml: ok\n");
        assert_eq!(r.stderr, "");

        let r = env.run(["check", "bad.toml"]);
        r.assert_code(1);
        assert_eq!(r.stdout, "bad.toml: 2 errors\n");
        assert!(r.stderr.contains("foxbox::spec::bad_size"), "{}", r.stderr);
        assert!(r.stderr.contains("[bad.toml:5:10]"), "{}", r.stderr);
        assert!(
            r.stderr.contains("foxbox::spec::impossible_limit"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("help:"), "{}", r.stderr);

        // Every file is checked; the worst result wins.
        let r = env.run(["check", "good.toml", "bad.toml"]);
        r.assert_code(1);
        assert_eq!(r.stdout, "good.toml: ok\nbad.toml: 2 errors\n");

        let r = env.run(["check", "good.toml", "missing.toml"]);
        r.assert_code(125);
        assert!(r.stderr.contains("foxbox::spec::read"), "{}", r.stderr);
        assert!(
            r.stdout.contains("missing.toml: unreadable"),
            "{}",
            r.stdout
        );

        env.run(["check"]).assert_code(125);
        env.run(["check", "--format", "yaml", "good.toml"])
            .assert_code(125);
    });
}

#[test]
fn check_format_json_is_machine_readable() {
    each_user(|env| {
        env.write("bad.toml", INVALID);
        env.write("good.toml", VALID);
        let r = env.run(["check", "--format", "json", "good.toml", "bad.toml"]);
        r.assert_code(1);
        let v: Value = serde_json::from_str(&r.stdout).expect("JSON on stdout");
        let items = v.as_array().expect("an array");
        assert_eq!(items.len(), 2, "{v:#}");
        let first = &items[0];
        assert_eq!(first["file"], "bad.toml");
        assert_eq!(first["line"], 5);
        assert_eq!(first["column"], 10);
        assert_eq!(first["end_line"], 5);
        assert_eq!(first["end_column"], 15);
        assert_eq!(first["code"], "foxbox::spec::bad_size");
        assert_eq!(first["severity"], "error");
        assert!(first["message"]
            .as_str()
            .unwrap()
            .contains("unknown unit `x`"));
        assert!(first["help"].is_string());
        assert_eq!(items[1]["line"], 6);
        assert_eq!(r.stderr, "", "JSON mode keeps stderr quiet");

        let r = env.run(["check", "--format", "json", "good.toml"]);
        r.ok();
        assert_eq!(r.stdout.trim(), "[]");
    });
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    each_user(|env| {
        env.write("bad.toml", INVALID);
        let r = env.run(["--color", "always", "check", "bad.toml"]);
        assert!(r.stderr.contains("\x1b["), "{}", r.stderr);
        let r = env.run(["--color", "never", "check", "bad.toml"]);
        assert!(!r.stderr.contains('\x1b'), "{}", r.stderr);

        // `auto` on a terminal: colour, unless NO_COLOR is set.
        let on_tty = |no_color: bool| {
            let cmd = format!("{} check bad.toml 2>&1", common::foxbox_bin().display());
            let mut c = env.command("script");
            c.args(["-qec", &cmd, "/dev/null"]);
            if no_color {
                c.env("NO_COLOR", "1");
            }
            String::from_utf8_lossy(&c.output().expect("script").stdout).into_owned()
        };
        assert!(on_tty(false).contains("\x1b["), "no colour on a terminal");
        let plain = on_tty(true);
        assert!(plain.contains("foxbox::spec::bad_size"), "{plain}");
        assert!(!plain.contains("\x1b["), "NO_COLOR ignored: {plain:?}");
    });
}

#[test]
fn plan_prints_the_steps_and_the_resolved_values() {
    each_user(|env| {
        env.write("Foxbox.toml", VALID);
        // The default spec is ./Foxbox.toml.
        let r = env.run(["plan"]);
        r.ok();
        let abs = env.work().join("rootfs.tar.gz");
        assert!(
            r.stdout.contains(&format!("tarball {}", abs.display())),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("memory 64 MiB"), "{}", r.stdout);
        let steps: Vec<&str> = r
            .stdout
            .lines()
            .skip_while(|l| *l != "steps")
            .skip(1)
            .map(|l| l.split_whitespace().nth(2).unwrap_or(""))
            .collect();
        assert_eq!(steps.first(), Some(&"image"), "{}", r.stdout);
        assert_eq!(steps.last(), Some(&"exec"), "{}", r.stdout);
        assert!(steps.contains(&"cgroup"), "{}", r.stdout);

        let r = env.run(["plan", "--format", "json", "Foxbox.toml"]);
        r.ok();
        let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
        assert_eq!(v["plan"]["image"]["kind"], "tarball");
        assert_eq!(v["plan"]["image"]["path"], abs.display().to_string());
        assert_eq!(v["plan"]["limits"]["memory"], 64 << 20);
        assert_eq!(v["plan"]["process"]["args"][1], "hi");
        let names: Vec<&str> = v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, steps);
    });
}

/// `plan --exec` prints the steps of a process `foxbox exec` starts in such a box: it joins the
/// box (its cgroup, its namespaces), then runs the box's own process steps in the same order,
/// without those only the box's command has.
#[test]
fn plan_exec_prints_the_box_s_process_steps_in_its_order() {
    each_user(|env| {
        env.write(
            "Foxbox.toml",
            format!("{VALID}\n[security]\nno_new_privileges = false\n"),
        );
        let names = |args: &[&str]| -> Vec<String> {
            let r = env.run(args);
            r.ok();
            let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
            v["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect()
        };
        let exec = names(&["plan", "--exec", "--format", "json"]);
        let whole = names(&["plan", "--format", "json"]);
        assert_eq!(exec[..2], ["cgroup", "join"], "{exec:?}");
        let from = whole.iter().position(|n| n == "console").unwrap();
        let own: Vec<&String> = whole[from..]
            .iter()
            .filter(|n| !["hostname", "make-workdir", "init"].contains(&n.as_str()))
            .collect();
        assert_eq!(exec[2..].iter().collect::<Vec<_>>(), own);
        // Without no_new_privs the filter goes in before the user changes, in both.
        let pos = |n: &str| exec.iter().position(|x| x == n).unwrap();
        assert!(pos("seccomp") < pos("user"), "{exec:?}");
        let r = env.run(["plan", "--exec"]);
        r.ok();
        assert!(
            r.stdout.contains("the command given to `foxbox exec`"),
            "{}",
            r.stdout
        );
    });
}

#[test]
fn plan_refuses_an_invalid_or_missing_spec() {
    each_user(|env| {
        env.write("bad.toml", INVALID);
        let r = env.run(["plan", "bad.toml"]);
        r.assert_code(125);
        assert_eq!(r.stdout, "");
        assert!(r.stderr.contains("foxbox::spec::bad_size"), "{}", r.stderr);
        let r = env.run(["plan"]);
        r.assert_code(125);
        assert!(r.stderr.contains("Foxbox.toml"), "{}", r.stderr);
    });
}

#[test]
fn schema_prints_the_committed_schema() {
    let committed =
        std::fs::read_to_string(repo().join("schemas/foxbox.schema.json")).expect("schema");
    each_user(|env| {
        let r = env.run(["schema"]);
        r.ok();
        assert_eq!(r.stdout, committed);
    });
}

fn tomls_in(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_spec_and_example_checks_clean() {
    let mut files = tomls_in("specs");
    files.extend(tomls_in("examples"));
    assert!(files.len() >= 5, "{files:?}");
    each_user(|env| {
        let mut args = vec!["check".to_string(), "--format".into(), "json".into()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        let r = env.run(&args);
        r.ok();
        assert_eq!(r.stdout.trim(), "[]", "warnings or errors: {}", r.stdout);
        for f in &files {
            env.run(["plan".as_ref(), f.as_os_str()]).ok();
        }
    });
}

#[test]
fn the_readme_example_is_a_valid_spec() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = readme[start..].find("```").expect("its end");
    let (plan, diags) =
        foxbox::spec::check_str(&readme[start..start + len], Path::new("README.md"), repo());
    assert!(diags.is_empty(), "{diags:#?}");
    let plan = plan.expect("a plan");
    assert_eq!(plan.mounts.len(), 2);
    assert_eq!(
        plan.limits.memory().map(|m| m.value.bytes()),
        Some(64 << 20)
    );
}
