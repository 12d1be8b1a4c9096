//! `foxbox lint` through the built binary, as root and as the unprivileged user: each rule
//! firing and not firing, allowing a rule per spec and per line, exit codes, and the SARIF log
//! validated against the SARIF 2.1.0 schema.

mod common;

use std::path::Path;
use std::process::Command;

use common::{envs_with_busybox, Env, Who};
use serde_json::Value;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A spec no rule fires on; `extra` is appended (TOML tables), `image` replaces the image.
fn spec(image: Option<&str>, box_extra: &str, extra: &str, limits: &str) -> String {
    let image = image
        .map(str::to_string)
        .unwrap_or_else(|| format!("busybox:1.36@{DIGEST}"));
    format!(
        "[box]\nimage = \"{image}\"\n{box_extra}\n\n[limits]\n{limits}\n\n[rootfs]\nreadonly = true\n\n\
         [[mounts]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\n\n{extra}\n"
    )
}

const LIMITS: &str = "memory = \"64m\"\npids = 64";

fn each_user(f: impl Fn(&Env)) {
    for who in Who::BOTH {
        if who.available() {
            f(&Env::new(who));
        }
    }
}

/// `foxbox lint --format json` on `text` written as `rel`: the exit code and the report.
fn lint_json(env: &Env, rel: &str, text: &str) -> (i32, Value) {
    let path = env.write(rel, text);
    let r = env.run(["lint", "--format", "json", path.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    (r.code, v)
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[0][key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

struct Case {
    rule: &'static str,
    fires: String,
    quiet: String,
}

fn cases(env: &Env) -> Vec<Case> {
    let s = |box_extra: &str, extra: &str| spec(None, box_extra, extra, LIMITS);
    let home = env.home();
    let bind = |source: &str, ro: bool| {
        format!("[[mounts]]\ntype = \"bind\"\nsource = \"{source}\"\ntarget = \"/b\"\nreadonly = {ro}\n")
    };
    std::fs::create_dir_all(env.work().join("data")).unwrap();
    vec![
        Case {
            rule: "FB001",
            fires: spec(Some("busybox:1.36"), "", "", LIMITS),
            quiet: s("", ""),
        },
        Case {
            rule: "FB002",
            fires: s("", "[network]\nmode = \"host\"\n"),
            quiet: s("", "[network]\nmode = \"none\"\n"),
        },
        Case {
            rule: "FB003",
            fires: s("", "[seccomp]\nprofile = \"unconfined\"\n"),
            quiet: s("", "[seccomp]\nprofile = \"default\"\n"),
        },
        Case {
            rule: "FB004",
            fires: s("", "[capabilities]\nadd = [\"CAP_SYS_PTRACE\"]\n"),
            quiet: s("", "[capabilities]\nadd = [\"SYS_NICE\"]\n"),
        },
        Case {
            rule: "FB004",
            fires: s("", "[capabilities]\nadd = [\"all\"]\n"),
            quiet: s("", "[capabilities]\ndrop = [\"ALL\"]\n"),
        },
        Case {
            rule: "FB005",
            fires: s("", "[security]\nno_new_privileges = false\n"),
            quiet: s("", "[security]\nno_new_privileges = true\n"),
        },
        Case {
            rule: "FB006",
            fires: s("", &bind("/etc", true)),
            quiet: s("", &bind("./data", true)),
        },
        Case {
            rule: "FB006",
            fires: s("", &bind(home.to_str().unwrap(), true)),
            quiet: s("", &bind(home.join("sub").to_str().unwrap(), true)),
        },
        Case {
            rule: "FB006",
            fires: s("", &bind("/var/run/docker.sock", true)),
            quiet: s("", &bind("/var/lib/docker.sock.d", true)),
        },
        Case {
            rule: "FB006",
            fires: s("", &bind("/proc/sys", true)),
            quiet: s("", &bind("/procedures", true)),
        },
        Case {
            rule: "FB007",
            fires: s("", &bind(".", false)),
            quiet: s("", &bind(".", true)),
        },
        Case {
            rule: "FB008",
            fires: spec(None, "", "", "memory = \"64m\""),
            quiet: s("", ""),
        },
        Case {
            rule: "FB008",
            fires: spec(None, "", "", "pids = 10"),
            quiet: s("", ""),
        },
        Case {
            rule: "FB009",
            fires: s("", "")
                .replace("readonly = true", "readonly = false")
                .replace("\"/tmp\"", "\"/scratch\""),
            quiet: s("", "").replace("readonly = true", "readonly = false"),
        },
        Case {
            rule: "FB010",
            fires: spec(
                None,
                "",
                "",
                &format!("{LIMITS}\nenforce = \"best-effort\""),
            ),
            quiet: spec(None, "", "", &format!("{LIMITS}\nenforce = \"strict\"")),
        },
        Case {
            rule: "FB011",
            fires: s(
                "",
                "[network]\nmode = \"pasta\"\nports = [\"8080:80\", \"127.0.0.1:8081:81\"]\n",
            ),
            quiet: s(
                "",
                "[network]\nmode = \"pasta\"\nports = [\"127.0.0.1:8080:80\"]\n",
            ),
        },
        Case {
            rule: "FB012",
            fires: s("env = { DEPLOY_TOKEN = \"s3cret\" }", ""),
            quiet: s("env = { DEPLOY_TOKEN = \"\", LOG_LEVEL = \"debug\" }", ""),
        },
    ]
}

#[test]
fn each_rule_fires_and_stays_quiet() {
    each_user(|env| {
        let all = cases(env);
        let covered: std::collections::BTreeSet<&str> = all.iter().map(|c| c.rule).collect();
        assert_eq!(covered.len(), 12, "every rule but FB013 (below) has a case");
        for (i, c) in all.iter().enumerate() {
            let (code, v) = lint_json(env, &format!("c{i}/Foxbox.toml"), &c.fires);
            let found = ids(&v, "findings");
            assert_eq!(found, vec![c.rule.to_string()], "{}", c.fires);
            let severity = v[0]["findings"][0]["severity"].as_str().unwrap();
            assert_eq!(code, i32::from(severity == "error"), "{}: {v}", c.rule);
            let line = v[0]["findings"][0]["line"].as_u64().unwrap();
            assert!(line >= 1 && line as usize <= c.fires.lines().count());

            std::fs::create_dir_all(env.work().join(format!("q{i}/data"))).unwrap();
            let (code, v) = lint_json(env, &format!("q{i}/Foxbox.toml"), &c.quiet);
            assert_eq!(
                ids(&v, "findings"),
                Vec::<String>::new(),
                "{}: {}",
                c.rule,
                c.quiet
            );
            assert_eq!(code, 0, "{v}");
        }
    });
}

/// A spec with two error findings (FB002, then FB003).
fn risky(extra: &str) -> String {
    spec(
        None,
        "",
        &format!("[network]\nmode = \"host\"\n\n[seccomp]\nprofile = \"unconfined\"\n{extra}"),
        LIMITS,
    )
}

/// The 1-based line of `mode = "host"`.
fn host_line(text: &str) -> usize {
    text.lines().position(|l| l == "mode = \"host\"").unwrap() + 1
}

#[test]
fn rules_are_allowed_per_spec_and_per_line_and_counted() {
    each_user(|env| {
        let text = risky("");
        let (code, v) = lint_json(env, "a/Foxbox.toml", &text);
        assert_eq!(ids(&v, "findings"), ["FB002", "FB003"]);
        assert_eq!(code, 1);

        let (code, v) = lint_json(
            env,
            "b/Foxbox.toml",
            &risky("\n[lint]\nallow = [\"FB003\"]\n"),
        );
        assert_eq!(ids(&v, "findings"), ["FB002"]);
        assert_eq!(ids(&v, "allowed"), ["FB003"]);
        assert_eq!(code, 1);

        let text = risky("\n[lint]\nallow = [\"FB003\"]\n")
            .replace("mode = \"host\"", "mode = \"host\" # foxbox: allow FB002");
        let p = env.write("c/Foxbox.toml", &text);
        let r = env.run(["lint", p.to_str().unwrap()]);
        r.ok();
        assert!(r.stdout.contains("ok, 2 allowed"), "{}", r.stdout);

        // An id that names no rule is said, not an error: a newer foxbox may know it.
        let p = env.write(
            "u/Foxbox.toml",
            risky("\n[lint]\nallow = [\"FB002\", \"FB003\", \"FB999\"]\n"),
        );
        let r = env.run(["lint", p.to_str().unwrap()]);
        r.ok();
        assert!(
            r.stderr.contains("`FB999` in [lint] allow is not a rule"),
            "{}",
            r.stderr
        );

        // A comment on the line above counts; one two lines above does not.
        let above = risky("").replace("[network]\n", "[network]\n# foxbox: allow FB002\n");
        let (_, v) = lint_json(env, "d/Foxbox.toml", &above);
        assert_eq!(ids(&v, "allowed"), ["FB002"]);
        let far = risky("").replace("[network]\n", "# foxbox: allow FB002\n[network]\n");
        let (_, v) = lint_json(env, "e/Foxbox.toml", &far);
        assert_eq!(ids(&v, "findings"), ["FB002", "FB003"]);
    });
}

#[test]
fn human_output_names_file_line_rule_and_help() {
    each_user(|env| {
        let p = env.write("Foxbox.toml", risky(""));
        let r = env.run(["lint", p.to_str().unwrap()]);
        r.assert_code(1);
        let name = p.display().to_string();
        let line = host_line(&risky(""));
        assert!(
            r.stdout
                .contains(&format!("{name}:{line}:8: error[FB002] host-network:")),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.contains("help: use `mode = \"pasta\"`"),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout
                .contains("2 errors, 0 warnings, 0 notes, 0 allowed"),
            "{}",
            r.stdout
        );

        let r = env.run(["lint", "--rules"]);
        r.ok();
        assert!(
            r.stdout.contains("FB012 error   secret-in-env"),
            "{}",
            r.stdout
        );
    });
}

#[test]
fn a_bad_allow_an_invalid_spec_and_an_unreadable_one_fail() {
    each_user(|env| {
        let p = env.write("bad/Foxbox.toml", risky("\n[lint]\nallow = [\"F3\"]\n"));
        let r = env.run(["lint", p.to_str().unwrap()]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("`F3` is not a lint rule id"),
            "{}",
            r.stderr
        );
        env.run(["check", p.to_str().unwrap()]).assert_code(1);

        let p = env.write("unknown/Foxbox.toml", risky("\n[lint]\nallw = []\n"));
        env.run(["check", p.to_str().unwrap()]).assert_code(1);

        let r = env.run(["lint", "missing/Foxbox.toml"]);
        r.assert_code(125);
    });
}

/// SARIF for GitHub code scanning: valid against the SARIF 2.1.0 schema (with Python's
/// `jsonschema`), with rule metadata and each result on its spec line by the spec's path in
/// its repository.
#[test]
fn sarif_is_valid_and_points_at_repo_relative_spec_lines() {
    let has_jsonschema = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_jsonschema,
        "this test needs python3 with jsonschema (`pip install jsonschema`)"
    );
    each_user(|env| {
        std::fs::create_dir_all(env.work().join("repo/.git")).unwrap();
        let text = risky("\n[lint]\nallow = [\"FB003\"]\n");
        let p = env.write("repo/deploy/Foxbox.toml", &text);
        let r = env.run(["lint", "--format", "sarif", p.to_str().unwrap()]);
        r.assert_code(1);
        let log_path = env.work().join("lint.sarif");
        std::fs::write(&log_path, &r.stdout).unwrap();
        let schema =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif-schema-2.1.0.json");
        let check = Command::new("python3")
            .args([
                "-c",
                "import json,sys,jsonschema\n\
                 s=json.load(open(sys.argv[1]));d=json.load(open(sys.argv[2]))\n\
                 jsonschema.validators.validator_for(s)(s).validate(d)",
            ])
            .arg(&schema)
            .arg(&log_path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "SARIF invalid: {}\n{}",
            String::from_utf8_lossy(&check.stderr),
            r.stdout
        );

        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "foxbox");
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 13);
        assert_eq!(rules[1]["id"], "FB002");
        assert_eq!(rules[1]["defaultConfiguration"]["level"], "error");
        assert!(rules[1]["help"]["text"].as_str().unwrap().contains("pasta"));
        assert!(rules[1]["shortDescription"]["text"].as_str().unwrap().len() > 10);

        let results = run["results"].as_array().unwrap();
        let host = results.iter().find(|r| r["ruleId"] == "FB002").unwrap();
        assert_eq!(host["level"], "error");
        assert_eq!(host["ruleIndex"], 1);
        let loc = &host["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "deploy/Foxbox.toml");
        assert_eq!(loc["region"]["startLine"], host_line(&text));
        assert_eq!(loc["region"]["startColumn"], 8);
        let allowed = results.iter().find(|r| r["ruleId"] == "FB003").unwrap();
        assert_eq!(allowed["suppressions"][0]["kind"], "external");
        assert!(host.get("suppressions").is_none());

        // Outside a repository the path is the one given.
        let p = env.write("loose/Foxbox.toml", &text);
        let r = env.run(["lint", "--format", "sarif", p.to_str().unwrap()]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(
            v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
                ["uri"],
            p.to_str().unwrap()
        );
    });
}

/// FB013 needs the image: one built with a user, in the env's store.
#[test]
fn root_over_the_image_s_user_is_found_for_stored_images() {
    for env in envs_with_busybox() {
        env.write(
            "img/Foxfile.toml",
            "[build]\nfrom = \"busybox\"\nuser = \"1000\"\n",
        );
        let mut b = env.foxbox(["build", "-t", "withuser:1", "."]);
        b.current_dir(env.work().join("img"));
        common::Run::from(b.output().unwrap()).ok();
        let with = |image: &str, user: &str| {
            spec(Some(image), user, "", LIMITS) + "\n[lint]\nallow = [\"FB001\"]\n"
        };
        let cases = [
            (with("withuser:1", "user = 0"), vec!["FB013"]),
            (with("withuser:1", "user = \"root:root\""), vec!["FB013"]),
            (with("withuser:1", ""), vec![]),
            (with("withuser:1", "user = \"1000\""), vec![]),
            (with("busybox", "user = 0"), vec![]),
            (with("notstored:1", "user = 0"), vec![]),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let (code, v) = lint_json(&env, &format!("u{i}/Foxbox.toml"), text);
            assert_eq!(ids(&v, "findings"), *want, "{text}");
            assert_eq!(code, 0, "{v}");
        }
    }
}

#[test]
fn lint_makes_no_store() {
    each_user(|env| {
        let p = env.write("Foxbox.toml", spec(None, "", "", LIMITS));
        env.run(["lint", p.to_str().unwrap()]).ok();
        assert!(!env.store().exists(), "lint made {}", env.store().display());
    });
}
