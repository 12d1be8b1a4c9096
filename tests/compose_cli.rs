//! Specs made of files and variables through the built binary, as root and as the
//! unprivileged user: `${NAME}` from the environment and `.env`, `extends` with its merge
//! rules, provenance and trust warnings (`check --strict`), and `Foxbox.local.toml`.

mod common;

use common::{envs, envs_with_busybox, Env};
use serde_json::Value;

fn json(r: &common::Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr))
}

/// A repository in the env's work dir (the trust checks look for `.git`).
fn repo(env: &Env) {
    env.write(".git/HEAD", "ref: refs/heads/main\n");
}

const BASE: &str = r#"[box]
image = "busybox"
hostname = "base"
env = { A = "from-base", B = "from-base" }

[[mounts]]
type = "tmpfs"
target = "/scratch"

[[mounts]]
type = "tmpfs"
target = "/gone"
"#;

const APP: &str = r#"extends = "../base/Foxbox.toml"

[box]
command = ["/bin/sh", "-c", "echo ${GREETING:-hi} $$B $(hostname); test -d /scratch && ! test -d /gone && echo mounts-ok"]
env = { B = "${WHO}" }

[[mounts]]
target = "/gone"
remove = true
"#;

#[test]
fn a_box_runs_from_a_spec_its_base_its_variables_and_its_local_override() {
    for env in envs_with_busybox() {
        repo(&env);
        env.write("base/Foxbox.toml", BASE);
        env.write("app/Foxbox.toml", APP);
        env.write("app/.env", "WHO=from-dotenv\nGREETING=hello # a comment\n");
        env.write("app/Foxbox.local.toml", "[box]\nhostname = \"mine\"\n");
        let mut c = env.foxbox(["up", "--rm", "app/Foxbox.toml"]);
        // The environment wins over the env file.
        c.env("WHO", "from-env");
        let r = common::Run::from(c.output().unwrap());
        r.ok();
        assert_eq!(r.stdout, "hello from-env mine\nmounts-ok\n", "{}", r.stderr);
        // `up` says a local override is in effect.
        assert!(
            r.stderr.contains("foxbox::compose::local_override"),
            "{}",
            r.stderr
        );
        // Without it and with the variable only in .env.
        std::fs::remove_file(env.work().join("app/Foxbox.local.toml")).unwrap();
        let r = env.run(["up", "--rm", "app/Foxbox.toml"]);
        r.ok();
        assert_eq!(
            r.stdout, "hello from-dotenv base\nmounts-ok\n",
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("local_override"), "{}", r.stderr);
    }
}

#[test]
fn an_unset_variable_is_an_error_at_its_span_and_dollar_dollar_is_a_dollar() {
    for env in envs() {
        env.write(
            "Foxbox.toml",
            "[box]\nimage = \"busybox\"\nhostname = \"${HOST:?say which host}\"\ncommand = [\"echo\", \"$$X\", \"x${NOPE}\"]\n",
        );
        let r = env.run(["check", "--format", "json", "Foxbox.toml"]);
        r.assert_code(1);
        let v = json(&r);
        let d: Vec<_> = v.as_array().unwrap().iter().collect();
        assert_eq!(d.len(), 2, "{v:#}");
        assert_eq!(d[0]["code"], "foxbox::compose::unset_variable");
        assert_eq!(
            d[0]["message"],
            "the variable `HOST` is not set: say which host"
        );
        assert_eq!(
            (d[0]["line"].clone(), d[0]["column"].clone()),
            (3.into(), 13.into())
        );
        assert_eq!(d[0]["end_column"], 36);
        assert_eq!(d[1]["message"], "the variable `NOPE` is not set");
        assert_eq!(
            (d[1]["line"].clone(), d[1]["column"].clone()),
            (4.into(), 29.into())
        );
        // The value as written is not checked again (no bad_hostname).
        let mut c = env.foxbox(["plan", "--format", "json", "Foxbox.toml"]);
        c.env("HOST", "den").env("NOPE", "pe");
        let r = common::Run::from(c.output().unwrap());
        r.ok();
        let p = json(&r);
        assert_eq!(p["plan"]["hostname"], "den");
        assert_eq!(
            p["plan"]["process"]["command"]["words"],
            serde_json::json!(["echo", "$X", "xpe"])
        );
        // A broken .env found beside the spec warns, naming its line; a named one is an error.
        env.write(".env", "HOST=den\nnot a line\n");
        env.write("e.toml", "[box]\nimage = \"busybox\"\n");
        let r = env.run(["check", "e.toml"]);
        r.ok();
        assert!(
            r.stderr.contains("foxbox::compose::env_file"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(".env line 2"), "{}", r.stderr);
        env.write(
            "n.toml",
            "env_file = \".env\"\n[box]\nimage = \"busybox\"\n",
        );
        let r = env.run(["check", "n.toml"]);
        r.assert_code(1);
        assert!(r.stderr.contains(".env line 2"), "{}", r.stderr);
    }
}

#[test]
fn a_value_from_a_base_is_reported_in_the_base_and_plan_shows_sources() {
    for env in envs() {
        repo(&env);
        env.write(
            "base/Foxbox.toml",
            "[box]\nimage = \"busybox\"\n\n[limits]\nmemory = \"64x\"\n",
        );
        env.write("app/Foxbox.toml", APP);
        env.write("app/.env", "WHO=me\n");
        let r = env.run(["check", "app/Foxbox.toml"]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("[app/../base/Foxbox.toml:5:10]")
                || r.stderr.contains("[base/Foxbox.toml:5:10]"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains("is a base: app/Foxbox.toml extends it at line 1"),
            "{}",
            r.stderr
        );
        let r = env.run(["check", "--format", "json", "app/Foxbox.toml"]);
        let v = json(&r);
        let d = v
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == "foxbox::spec::bad_size")
            .unwrap();
        assert_eq!(d["file"], "base/Foxbox.toml");
        assert_eq!(d["line"], 5);

        env.write("base/Foxbox.toml", BASE);
        let r = env.run(["plan", "--format", "json", "app/Foxbox.toml"]);
        r.ok();
        let sources = json(&r)["sources"].clone();
        let of = |k: &str| {
            sources
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["key"] == k)
                .unwrap_or_else(|| panic!("{k} in {sources:#}"))
                .clone()
        };
        assert_eq!(of("box.image")["file"], "base/Foxbox.toml");
        assert_eq!(of("box.image")["line"], 2);
        assert_eq!(of("box.env.A")["file"], "base/Foxbox.toml");
        assert_eq!(of("box.env.B")["file"], "app/Foxbox.toml");
        assert_eq!(of("box.env.B")["line"], 5);
        assert_eq!(of("mounts[\"/scratch\"].target")["line"], 8);
        let r = env.run(["plan", "app/Foxbox.toml"]);
        assert!(
            r.stdout.contains("box.image") && r.stdout.contains("base/Foxbox.toml:2"),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn extends_cycles_missing_bases_and_depth_are_errors_at_the_extends_line() {
    for env in envs() {
        env.write(
            "a.toml",
            "extends = \"b.toml\"\n[box]\nimage = \"busybox\"\n",
        );
        env.write("b.toml", "[box]\nextends = [\"a.toml\"]\n");
        let r = env.run(["check", "a.toml"]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("foxbox::compose::extends"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("makes a cycle"), "{}", r.stderr);
        assert!(r.stderr.contains("[b.toml:2:12]"), "{}", r.stderr);

        env.write(
            "m.toml",
            "[box]\nimage = \"busybox\"\nextends = \"nope.toml\"\n",
        );
        let r = env.run(["check", "--format", "json", "m.toml"]);
        r.assert_code(1);
        let d = &json(&r)[0];
        assert_eq!(d["code"], "foxbox::compose::extends");
        assert_eq!(
            (d["line"].clone(), d["column"].clone()),
            (3.into(), 11.into())
        );

        for i in 0..10 {
            env.write(
                &format!("d{i}.toml"),
                format!("extends = \"d{}.toml\"\n", i + 1),
            );
        }
        env.write("d10.toml", "[box]\nimage = \"busybox\"\n");
        let r = env.run(["check", "d0.toml"]);
        r.assert_code(1);
        assert!(r.stderr.contains("more than 8 deep"), "{}", r.stderr);
        // Eight deep is fine.
        let r = env.run(["check", "d2.toml"]);
        r.ok();
    }
}

#[test]
fn a_base_that_widens_isolation_warns_and_strict_refuses_it() {
    for env in envs() {
        repo(&env);
        env.write(
            "base.toml",
            "[box]\nimage = \"busybox\"\n[capabilities]\nadd = [\"SYS_ADMIN\"]\n[network]\nmode = \"host\"\n[[mounts]]\ntype = \"bind\"\nsource = \"/etc\"\ntarget = \"/host-etc\"\n",
        );
        env.write(
            "Foxbox.toml",
            "extends = \"base.toml\"\n[capabilities]\nadd = [\"CHOWN\"]\n",
        );
        let r = env.run(["check", "--format", "json", "Foxbox.toml"]);
        r.ok();
        let v = json(&r);
        let trust: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["code"] == "foxbox::compose::untrusted_base")
            .collect();
        // SYS_ADMIN, host network and the /etc bind: not the spec's own CHOWN.
        assert_eq!(trust.len(), 3, "{v:#}");
        for d in &trust {
            assert_eq!(d["file"], "Foxbox.toml");
            assert_eq!(d["line"], 1);
            assert_eq!(d["severity"], "warning");
        }
        assert!(trust[0]["message"]
            .as_str()
            .unwrap()
            .contains("SYS_ADMIN (line 4)"));
        let r = env.run(["check", "--strict", "Foxbox.toml"]);
        r.assert_code(1);
        assert!(
            r.stdout.starts_with("Foxbox.toml: 3 errors"),
            "{}",
            r.stdout
        );
        // The same values in the spec itself are its own business.
        env.write(
            "own.toml",
            "[box]\nimage = \"busybox\"\n[capabilities]\nadd = [\"SYS_ADMIN\"]\n",
        );
        env.run(["check", "--strict", "own.toml"]).ok();
        // A base outside the repository.
        let outside = tempfile::tempdir().unwrap();
        let base = outside.path().join("b.toml");
        std::fs::write(&base, "[box]\nimage = \"busybox\"\n").unwrap();
        std::fs::set_permissions(
            outside.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        env.write("out.toml", format!("extends = \"{}\"\n", base.display()));
        let r = env.run(["check", "out.toml"]);
        r.ok();
        assert!(
            r.stderr.contains("foxbox::compose::base_outside_repo"),
            "{}",
            r.stderr
        );
        env.run(["check", "--strict", "out.toml"]).assert_code(1);
    }
}

#[test]
fn lint_shows_a_base_finding_at_the_extends_line_naming_the_base_line() {
    for env in envs() {
        env.write(
            "base/net.toml",
            "[box]\nimage = \"busybox\"\n[network]\nmode = \"host\"\n",
        );
        env.write("n.toml", "# the app\nextends = \"base/net.toml\"\n");
        let r = env.run(["lint", "--format", "json", "n.toml"]);
        let v = json(&r);
        let f = v[0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == "FB002")
            .unwrap_or_else(|| panic!("{v:#}"))
            .clone();
        assert_eq!(f["line"], 2);
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .ends_with("(from base/net.toml line 4)"),
            "{f}"
        );
        assert_eq!(v[0]["local_override"], Value::Null);
        // lint says when a local override is in effect.
        env.write("n.local.toml", "[box]\nname = \"mine\"\n");
        let v = json(&env.run(["lint", "--format", "json", "n.toml"]));
        assert_eq!(v[0]["local_override"], "n.local.toml");
        let r = env.run(["lint", "n.toml"]);
        assert!(
            r.stderr.contains("local override n.local.toml"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn diff_names_the_base_line_of_a_changed_value() {
    for env in envs() {
        env.write(
            "b1.toml",
            "[box]\nimage = \"busybox\"\n[limits]\nmemory = \"64m\"\n",
        );
        env.write(
            "b2.toml",
            "[box]\nimage = \"busybox\"\n\n[limits]\nmemory = \"128m\"\n",
        );
        env.write("o.toml", "extends = \"b1.toml\"\n");
        env.write("n.toml", "extends = \"b2.toml\"\n");
        let r = env.run(["diff", "--format", "json", "o.toml", "n.toml"]);
        r.assert_code(1);
        let c = &json(&r)["changes"][0];
        assert_eq!(c["key"], "memory");
        assert_eq!(
            c["old_location"],
            serde_json::json!({"file": "b1.toml", "line": 4})
        );
        assert_eq!(
            c["new_location"],
            serde_json::json!({"file": "b2.toml", "line": 5})
        );
        // The same plan through a base and written out is equal.
        env.write(
            "flat.toml",
            "[box]\nimage = \"busybox\"\n[limits]\nmemory = \"64m\"\n",
        );
        env.run(["diff", "o.toml", "flat.toml"]).ok();
    }
}

#[test]
fn lock_pins_images_and_tarballs_and_check_finds_it_stale() {
    for env in envs_with_busybox() {
        std::fs::copy(common::busybox_tarball(), env.work().join("rootfs.tar.gz")).unwrap();
        env.write("base.toml", "[box]\nimage = \"rootfs.tar.gz\"\n");
        env.write(
            "Foxbox.toml",
            "extends = \"base.toml\"\n[box]\nimage = \"busybox\"\ncommand = [\"echo\", \"locked\"]\n",
        );
        let r = env.run(["lock", "--check"]);
        r.assert_code(1);
        assert!(r.stdout.contains("missing"), "{}", r.stdout);
        // Unlocked, lint says the image is not pinned.
        let r = env.run(["lint", "--format", "json", "Foxbox.toml"]);
        assert!(r.stdout.contains("FB001"), "{}", r.stdout);

        env.run(["lock"]).ok();
        let text = std::fs::read_to_string(env.work().join("Foxbox.lock")).unwrap();
        let lock: toml::Table = toml::from_str(&text).unwrap();
        let images = lock["image"].as_array().unwrap();
        let refs: Vec<_> = images
            .iter()
            .map(|i| i["reference"].as_str().unwrap())
            .collect();
        assert_eq!(refs, ["busybox", "rootfs.tar.gz"]);
        let digest = images[0]["digest"].as_str().unwrap().to_string();
        assert!(digest.starts_with("sha256:"), "{text}");
        assert_eq!(images[1]["kind"].as_str(), Some("tarball"));
        env.run(["lock", "--check"]).ok();

        // The plan, and so `up`, use the locked digest; lint is content.
        let r = env.run(["plan", "--format", "json"]);
        r.ok();
        let image = json(&r)["plan"]["image"].to_string();
        assert!(image.contains(&digest), "{image}");
        let r = env.run(["up", "--rm"]);
        r.ok();
        assert_eq!(r.stdout, "locked\n");
        let r = env.run(["lint", "--format", "json", "Foxbox.toml"]);
        assert!(!r.stdout.contains("FB001"), "{}", r.stdout);

        // A tarball that changes makes the lock stale: check warns at the base's line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(env.work().join("rootfs.tar.gz"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"x").unwrap();
        let r = env.run(["check", "--format", "json", "Foxbox.toml"]);
        r.ok();
        let d = &json(&r)[0];
        assert_eq!(d["code"], "foxbox::compose::lock_stale");
        assert_eq!(d["file"], "base.toml");
        assert_eq!(d["line"], 2);
        env.run(["lock", "--check"]).assert_code(1);
        // A reference not in the lock.
        env.run(["lock"]).ok();
        env.write(
            "Foxbox.toml",
            "extends = \"base.toml\"\n[box]\nimage = \"busybox:other\"\n",
        );
        let r = env.run(["lock", "--check"]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("`busybox:other` is not in Foxbox.lock"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("no longer names"), "{}", r.stderr);
    }
}

/// `run --emit-spec` / `--dry-run --format toml`: the spec made from a command line has the
/// command line's plan.
#[test]
fn an_emitted_spec_makes_the_command_lines_plan() {
    let lines: &[&[&str]] = &[
        &["busybox"],
        &[
            "--name",
            "web",
            "-e",
            "A=x$y",
            "-e",
            "B",
            "-w",
            "/tmp",
            "-u",
            "1:2",
            "busybox",
            "sh",
            "-c",
            "echo $HOME $$",
        ],
        &[
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "--timeout",
            "30",
            "busybox",
            "true",
        ],
        &[
            "--cap-add",
            "NET_RAW",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "seccomp=unconfined",
            "--read-only",
            "busybox",
        ],
        &[
            "-v",
            "./data:/data:ro",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/run:size=1m,mode=700",
            "--network",
            "pasta",
            "-p",
            "127.0.0.1:8080:80",
            "busybox",
        ],
        &[
            "--init",
            "--entrypoint",
            "[\"/bin/sh\",\"-c\"]",
            "--hostname",
            "fox",
            "busybox",
            "echo hi",
        ],
        &["--env-file", "vars.env", "./rootfs.tar.gz", "ls"],
        &[
            "--userns",
            "keep-id:uid=5,gid=6",
            "-v",
            "./data:/u:U",
            "-v",
            "./data:/o:O",
            "busybox",
        ],
    ];
    for env in envs() {
        env.write("data/x", "x");
        env.write("vars.env", "FROM_FILE=1\n");
        std::fs::copy(common::busybox_tarball(), env.work().join("rootfs.tar.gz")).unwrap();
        for (i, line) in lines.iter().enumerate() {
            let mut emit = vec!["run", "--emit-spec"];
            emit.extend_from_slice(line);
            let run_with_b = |args: &[&str]| {
                let mut c = env.foxbox(args);
                c.env("B", "from-caller");
                common::Run::from(c.output().unwrap())
            };
            let r = run_with_b(&emit);
            r.ok();
            let mut dry = vec!["run", "--dry-run", "--format", "toml"];
            dry.extend_from_slice(line);
            assert_eq!(run_with_b(&dry).stdout, r.stdout, "{line:?}");
            // Saved elsewhere, it means the same.
            let spec = env.write(&format!("emitted/{i}.toml"), &r.stdout);
            let mut c = env.foxbox(["plan", "--format", "json", spec.to_str().unwrap()]);
            c.env("B", "from-caller");
            let from_spec = json(&common::Run::from(c.output().unwrap()));
            let mut json_line = vec!["run", "--dry-run", "--format", "json"];
            json_line.extend_from_slice(line);
            let mut c = env.foxbox(&json_line);
            c.env("B", "from-caller");
            let from_line = json(&common::Run::from(c.output().unwrap()));
            let strip = |v: &Value| {
                let mut p = v["plan"].clone();
                p.as_object_mut().unwrap().remove("origin");
                (p, v["steps"].clone())
            };
            assert_eq!(
                strip(&from_spec),
                strip(&from_line),
                "{line:?}\n{}",
                r.stdout
            );
        }
    }
}

#[test]
fn foxbox_test_runs_a_bases_tests_and_names_their_line() {
    for env in envs_with_busybox() {
        env.write(
            "tb.toml",
            "[box]\nimage = \"busybox\"\n\n[[test]]\nname = \"from base\"\ncommand = [\"sh\", \"-c\", \"test \\\"$WHO\\\" = fox\"]\n",
        );
        env.write(
            "t.toml",
            "extends = \"tb.toml\"\n[box]\nenv = { WHO = \"${WHO:-nobody}\" }\n",
        );
        let r = env.run(["test", "t.toml"]);
        r.assert_code(1);
        assert!(r.stdout.contains("FAIL from base"), "{}", r.stdout);
        assert!(r.stdout.contains("at tb.toml:4"), "{}", r.stdout);
        // JUnit: the testcase's class is the spec run, its file the base that wrote it.
        let r = env.run(["test", "--format", "junit", "t.toml"]);
        r.assert_code(1);
        assert!(
            r.stdout
                .contains("classname=\"t.toml\" file=\"tb.toml\" line=\"4\""),
            "{}",
            r.stdout
        );
        let mut c = env.foxbox(["test", "t.toml"]);
        c.env("WHO", "fox");
        let r = common::Run::from(c.output().unwrap());
        r.ok();
        assert!(r.stdout.starts_with("ok   from base"), "{}", r.stdout);
    }
}

/// A spec that builds its image: the lock pins what it builds from, and `build` uses it.
#[test]
fn lock_pins_a_builds_from_image_and_build_uses_it() {
    for env in envs_with_busybox() {
        env.write(
            "Foxbox.toml",
            "[box]\nimage = \"sp:1\"\n\n[build]\nfrom = \"busybox\"\ncmd = [\"echo\", \"built\"]\n",
        );
        env.run(["lock"]).ok();
        let text = std::fs::read_to_string(env.work().join("Foxbox.lock")).unwrap();
        let lock: toml::Table = toml::from_str(&text).unwrap();
        let images = lock["image"].as_array().unwrap();
        // The box runs what it builds: only `from` is locked.
        assert_eq!(images.len(), 1, "{text}");
        assert_eq!(images[0]["reference"].as_str(), Some("busybox"));
        env.run(["build", "-t", "sp:1"]).ok();
        let up = env.run(["up", "--rm"]);
        up.ok();
        assert_eq!(up.stdout, "built\n");
        // A lock naming another image makes the build use that one (here: none such).
        let digest = images[0]["digest"].as_str().unwrap();
        let bogus = format!("sha256:{}", "0".repeat(64));
        env.write("Foxbox.lock", text.replace(digest, &bogus));
        let r = env.run(["build", "-t", "sp:2"]);
        assert_ne!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stderr.contains(&bogus) || r.stderr.contains("0000000"),
            "{}",
            r.stderr
        );
    }
}

/// A multi-stage recipe locks the images its stages start from, and not its stages' names.
#[test]
fn lock_pins_the_images_stages_start_from_not_their_names() {
    for env in envs_with_busybox() {
        env.write(
            "Foxbox.toml",
            "[box]\nimage = \"ms:1\"\n\n[build]\nfrom = \"builder\"\ncmd = [\"cat\", \"/made\"]\n\n\
             [[build.stage]]\nname = \"builder\"\nfrom = \"busybox\"\n\n\
             [[build.stage.steps]]\nrun = \"echo made > /made\"\n",
        );
        env.run(["lock"]).ok();
        let text = std::fs::read_to_string(env.work().join("Foxbox.lock")).unwrap();
        let lock: toml::Table = toml::from_str(&text).unwrap();
        let refs: Vec<&str> = lock["image"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["reference"].as_str())
            .collect();
        assert_eq!(refs, ["busybox"], "{:?}: {text}", env.who);
        env.run(["lock", "--check"]).ok();
        let up = env.run(["up", "--rm"]);
        up.ok();
        assert_eq!(up.stdout, "made\n", "{:?}", env.who);
    }
}

#[test]
fn a_bases_build_reads_its_files_beside_the_base() {
    for env in envs_with_busybox() {
        repo(&env);
        env.write("base/hello.txt", "from the base's dir\n");
        env.write(
            "base/Foxbox.toml",
            "[box]\nimage = \"eb:1\"\n\n[build]\nfrom = \"busybox\"\ncmd = [\"cat\", \"/app/hello.txt\"]\n\n[[build.steps]]\ncopy = [\"hello.txt\"]\ndest = \"/app/\"\n",
        );
        // A file of the same name beside the spec must not be the one copied.
        env.write("app/hello.txt", "from the app's dir\n");
        env.write(
            "app/Foxbox.toml",
            "extends = \"../base/Foxbox.toml\"\n[box]\nhostname = \"app\"\n",
        );
        let up = env.run(["up", "--rm", "app/Foxbox.toml"]);
        up.ok();
        assert_eq!(
            up.stdout, "from the base's dir\n",
            "{:?}: {}",
            env.who, up.stderr
        );
        // The spec's own context wins when it names one (relative to the spec).
        env.write(
            "app/Foxbox.toml",
            "extends = \"../base/Foxbox.toml\"\n[build]\ncontext = \".\"\n",
        );
        let up = env.run(["up", "--rm", "--build", "app/Foxbox.toml"]);
        up.ok();
        assert_eq!(
            up.stdout, "from the app's dir\n",
            "{:?}: {}",
            env.who, up.stderr
        );
        // A step of the base that fails is shown at its line in the base.
        env.write(
            "base/Foxbox.toml",
            "[box]\nimage = \"eb:2\"\n\n[build]\nfrom = \"busybox\"\n\n[[build.steps]]\nrun = \"exit 3\"\n",
        );
        let r = env.run(["build", "-f", "app/Foxbox.toml", "-t", "eb:2"]);
        r.assert_code(125);
        assert!(
            r.stderr.contains("[base/Foxbox.toml:8:7]") && r.stderr.contains("exit code 3"),
            "{:?}: {}",
            env.who,
            r.stderr
        );
    }
}

#[test]
fn a_related_place_in_a_base_is_named_in_the_help() {
    for env in envs() {
        repo(&env);
        env.write(
            "base/Foxbox.toml",
            "[box]\nimage = \"busybox\"\n\n[capabilities]\ndrop = [\"NET_RAW\"]\n",
        );
        env.write(
            "app/Foxbox.toml",
            "extends = \"../base/Foxbox.toml\"\n[capabilities]\nadd = [\"NET_RAW\"]\n",
        );
        let r = env.run(["check", "app/Foxbox.toml"]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("[app/Foxbox.toml:3:8]")
                && r.stderr.contains("dropped: base/Foxbox.toml:5:9"),
            "{}",
            r.stderr
        );
    }
}
