//! An image's ENTRYPOINT and CMD kept apart, as podman, Docker and Compose keep them, through
//! the binary as root and as the unprivileged user: `run IMAGE ARGS` replaces the command
//! only; `--entrypoint` replaces the entrypoint and drops the command; a spec's `entrypoint`
//! and `command` do the same; `run --emit-spec` writes both; `export` maps them to a Pod's
//! `command` and `args` and to a bundle's whole argv; a build's `run` steps never run after
//! the base image's entrypoint.

mod common;

use common::{envs_with_busybox as envs, Env};

/// An image whose ENTRYPOINT is `echo from-entry` and whose CMD is `default`.
fn build_image(env: &Env) {
    env.write(
        "img/Foxfile.toml",
        "[build]\nfrom = \"busybox\"\nentrypoint = [\"echo\", \"from-entry\"]\ncmd = [\"default\"]\n",
    );
    env.run(["build", "-t", "ep:1", "img"]).ok();
}

/// What `run --rm ARGS...` prints, after checking it succeeded.
fn run(env: &Env, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm"];
    a.extend(args);
    let r = env.run(&a);
    r.ok();
    r.stdout
}

/// What `up --rm SPEC EXTRA...` of a spec with these `[box]` keys (image `ep:1`) prints.
fn up(env: &Env, name: &str, keys: &str, extra: &[&str]) -> String {
    let spec = env.write(
        &format!("{name}/Foxbox.toml"),
        format!("[box]\nimage = \"ep:1\"\n{keys}"),
    );
    let mut a = vec!["up", "--rm", spec.to_str().unwrap()];
    a.extend(extra);
    let r = env.run(&a);
    r.ok();
    r.stdout
}

#[test]
fn run_keeps_the_entrypoint_and_replaces_the_command() {
    for env in envs() {
        build_image(&env);
        let who = format!("{:?}", env.who);
        assert_eq!(run(&env, &["ep:1"]), "from-entry default\n", "{who}");
        assert_eq!(run(&env, &["ep:1", "x", "y"]), "from-entry x y\n", "{who}");
        // --entrypoint drops the image's command, as podman's.
        assert_eq!(run(&env, &["--entrypoint", "echo", "ep:1"]), "\n", "{who}");
        assert_eq!(run(&env, &["--entrypoint", "echo", "ep:1", "a"]), "a\n");
        assert_eq!(
            run(&env, &["--entrypoint", r#"["echo","-n"]"#, "ep:1", "b"]),
            "b"
        );
        assert_eq!(
            run(&env, &["--entrypoint", "", "ep:1", "echo", "plain"]),
            "plain\n"
        );
        // With nothing to run, podman refuses; so does foxbox, saying what to do.
        let r = env.run(["run", "--rm", "--entrypoint", "", "ep:1"]);
        r.assert_code(125);
        assert!(r.stderr.contains("needs a command"), "{}", r.stderr);
        // `ps` shows the whole argv the box runs.
        let r = env.run(["run", "-d", "--name", "shown", "ep:1", "shown"]);
        r.ok();
        let r = env.run(["ps", "-a", "--format", "{{.Command}}"]);
        r.ok();
        assert!(r.stdout.contains("echo from-entry shown"), "{}", r.stdout);
        env.run(["rm", "-f", "shown"]).ok();
    }
}

#[test]
fn spec_entrypoint_and_command() {
    for env in envs() {
        build_image(&env);
        let who = format!("{:?}", env.who);
        assert_eq!(up(&env, "plain", "", &[]), "from-entry default\n", "{who}");
        assert_eq!(
            up(&env, "cmd", "command = [\"x\"]\n", &[]),
            "from-entry x\n"
        );
        // An entrypoint drops the image's command, as in Compose and Docker.
        assert_eq!(
            up(&env, "ep", "entrypoint = [\"echo\", \"spec-entry\"]\n", &[]),
            "spec-entry\n"
        );
        assert_eq!(
            up(
                &env,
                "both",
                "entrypoint = [\"echo\", \"spec-entry\"]\ncommand = [\"c\"]\n",
                &[]
            ),
            "spec-entry c\n"
        );
        assert_eq!(
            up(&env, "shell", "entrypoint = \"echo shell-form\"\n", &[]),
            "shell-form\n"
        );
        assert_eq!(
            up(
                &env,
                "cleared",
                "entrypoint = []\ncommand = [\"echo\", \"cleared\"]\n",
                &[]
            ),
            "cleared\n"
        );
        // `up -- CMD` replaces the command only; `up --entrypoint` the entrypoint.
        assert_eq!(
            up(
                &env,
                "over",
                "entrypoint = [\"echo\", \"spec-entry\"]\n",
                &["--", "z"]
            ),
            "spec-entry z\n"
        );
        let spec = env.write("over2/Foxbox.toml", "[box]\nimage = \"ep:1\"\n");
        let r = env.run([
            "up",
            "--rm",
            "--entrypoint",
            "",
            spec.to_str().unwrap(),
            "--",
            "echo",
            "flag",
        ]);
        r.ok();
        assert_eq!(r.stdout, "flag\n");

        // A base's entrypoint stays under the extending spec's command.
        env.write(
            "ext/base.toml",
            "[box]\nimage = \"ep:1\"\nentrypoint = [\"echo\", \"base-entry\"]\n",
        );
        let ext = env.write(
            "ext/Foxbox.toml",
            "extends = \"base.toml\"\n[box]\ncommand = [\"child\"]\n",
        );
        let r = env.run(["up", "--rm", ext.to_str().unwrap()]);
        r.ok();
        assert_eq!(r.stdout, "base-entry child\n");

        // A cleared entrypoint with no command is refused at its line.
        let bad = env.write(
            "bad/Foxbox.toml",
            "[box]\nimage = \"ep:1\"\nentrypoint = []\n",
        );
        let r = env.run(["up", "--rm", bad.to_str().unwrap()]);
        r.assert_code(125);
        assert!(
            r.stderr.contains("foxbox::spec::no_command"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("Foxbox.toml:3"), "{}", r.stderr);

        // `plan` shows the argv and where each part came from.
        let spec = env.write(
            "shown/Foxbox.toml",
            "[box]\nimage = \"ep:1\"\ncommand = [\"x\"]\n",
        );
        let r = env.run(["plan", spec.to_str().unwrap()]);
        r.ok();
        for want in [
            r#"["echo", "from-entry", "x"]"#,
            r#"entrypoint ["echo", "from-entry"] from the image's ENTRYPOINT"#,
            r#"cmd        ["x"] from `box.command`"#,
        ] {
            assert!(r.stdout.contains(want), "{want:?} not in\n{}", r.stdout);
        }
        let r = env.run(["plan", "--format", "json", spec.to_str().unwrap()]);
        r.ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let p = &v["plan"]["process"];
        assert_eq!(p["args"], serde_json::json!(["echo", "from-entry", "x"]));
        assert_eq!(p["entrypoint"]["from"], "image", "{p}");
        assert_eq!(p["command"]["from"], "given", "{p}");
    }
}

#[test]
fn emitted_specs_and_exports_keep_the_two_parts() {
    for env in envs() {
        build_image(&env);
        // run --emit-spec writes both keys, and the spec it writes runs the same.
        for (line, want) in [
            (vec!["--entrypoint", "echo", "ep:1", "a"], "a\n"),
            (vec!["ep:1", "b"], "from-entry b\n"),
            (vec!["--entrypoint", "", "ep:1", "echo", "c"], "c\n"),
        ] {
            let mut a = vec!["run", "--emit-spec"];
            a.extend(&line);
            let r = env.run(&a);
            r.ok();
            let spec: toml::Table = r.stdout.parse().unwrap();
            let b = &spec["box"];
            assert_eq!(
                b.get("entrypoint").is_some(),
                line[0] == "--entrypoint",
                "{}",
                r.stdout
            );
            let path = env.write("emitted/Foxbox.toml", &r.stdout);
            let r = env.run(["up", "--rm", path.to_str().unwrap()]);
            r.ok();
            assert_eq!(r.stdout, want, "{line:?}");
        }

        // A Pod: the entrypoint is the container's command, the command its args.
        let spec = env.write(
            "kube/Foxbox.toml",
            "[box]\nimage = \"ep:1\"\nentrypoint = [\"echo\", \"k\"]\ncommand = [\"arg\"]\n",
        );
        let r = env.run(["export", "--kube", spec.to_str().unwrap()]);
        r.ok();
        assert!(
            r.stdout
                .contains("command:\n    - echo\n    - k\n    args:\n    - arg\n"),
            "{}",
            r.stdout
        );
        let spec = env.write(
            "kube2/Foxbox.toml",
            "[box]\nimage = \"ep:1\"\ncommand = [\"arg\"]\n",
        );
        let r = env.run(["export", "--kube", spec.to_str().unwrap()]);
        r.ok();
        assert!(!r.stdout.contains("command:"), "{}", r.stdout);
        assert!(r.stdout.contains("args:\n    - arg\n"), "{}", r.stdout);

        // A bundle: the whole argv, the image's entrypoint first.
        let bundle = env.dir.join("bundle");
        env.run([
            "export",
            spec.to_str().unwrap(),
            "--oci-bundle",
            bundle.to_str().unwrap(),
        ])
        .ok();
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(
            config["process"]["args"],
            serde_json::json!(["echo", "from-entry", "arg"])
        );
    }
}

#[test]
fn build_steps_and_spec_tests_run_their_own_argv() {
    for env in envs() {
        build_image(&env);
        // A `run` step of an image built on ep:1 runs alone, not after `echo from-entry`.
        env.write(
            "img2/Foxfile.toml",
            "[build]\nfrom = \"ep:1\"\n\n[[build.steps]]\nrun = \"echo built > /f\"\n",
        );
        env.run(["build", "-t", "ep:2", "img2"]).ok();
        assert_eq!(
            run(&env, &["--entrypoint", "", "ep:2", "cat", "/f"]),
            "built\n"
        );
        // The image keeps its entrypoint and command.
        assert_eq!(run(&env, &["ep:2"]), "from-entry default\n");

        // A spec test's command is the whole argv.
        let spec = env.write(
            "t/Foxbox.toml",
            "[box]\nimage = \"ep:1\"\n\n[[test]]\nname = \"own argv\"\ncommand = [\"echo\", \"probe\"]\nexpect.stdout.matches = \"^probe\\n$\"\n",
        );
        let r = env.run(["test", spec.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    }
}
