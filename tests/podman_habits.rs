//! Habits a podman user brings, through the binary as root and as the unprivileged user:
//! `--env-file`, `--entrypoint`, `-v ...:z`, real-time signals for `kill`, podman's `ps
//! --format json` names and Go-template `--format` for `ps`, `image ls` and `inspect`.

mod common;

use common::{envs_with_busybox as envs, eventually, Env};

fn detach(env: &Env, flags: &[&str], cmd: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend(flags);
    a.push("busybox");
    a.extend(cmd);
    let r = env.run(&a);
    r.ok();
    r.stdout.trim().to_string()
}

#[test]
fn env_file_and_entrypoint() {
    for env in envs() {
        let f = env.write(
            "vars.env",
            "# a comment\n\nFROM_FILE=one two\nBOTH=file\nCOPIED\n",
        );
        let f = f.to_str().unwrap();
        let r = env
            .foxbox(["run", "--rm", "--env-file", f, "-e", "BOTH=flag", "busybox"])
            .args(["sh", "-c", "echo \"$FROM_FILE|$BOTH|$COPIED\""])
            .env("COPIED", "from-caller")
            .output()
            .unwrap();
        let r = common::Run::from(r);
        r.ok();
        assert_eq!(r.stdout, "one two|flag|from-caller\n");

        let bad = env.write("bad.env", "A=1\n=2\n");
        let r = env.run([
            "run",
            "--rm",
            "--env-file",
            bad.to_str().unwrap(),
            "busybox",
            "true",
        ]);
        r.assert_code(125);
        assert!(r.stderr.contains("bad.env:2"), "{}", r.stderr);
        let r = env.run([
            "run",
            "--rm",
            "--env-file",
            "/nonexistent.env",
            "busybox",
            "true",
        ]);
        r.assert_code(125);
        assert!(r.stderr.contains("/nonexistent.env"), "{}", r.stderr);

        let r = env.run([
            "run",
            "--rm",
            "--entrypoint",
            "/bin/echo",
            "busybox",
            "a",
            "b",
        ]);
        r.ok();
        assert_eq!(r.stdout, "a b\n");
        let r = env.run([
            "run",
            "--rm",
            "--entrypoint",
            r#"["/bin/sh","-c"]"#,
            "busybox",
            "echo $((6*7))",
        ]);
        r.ok();
        assert_eq!(r.stdout, "42\n");
    }
}

#[test]
fn selinux_volume_options_are_accepted_and_the_unsupported_ones_say_what_to_do() {
    for env in envs() {
        let src = env.write("vol/f", "hello\n");
        let dir = src.parent().unwrap().to_str().unwrap().to_string();
        let r = env.run([
            "--log-level",
            "debug",
            "run",
            "--rm",
            "-v",
            &format!("{dir}:/v:ro,z"),
            "busybox",
            "cat",
            "/v/f",
        ]);
        r.ok();
        assert_eq!(r.stdout, "hello\n");
        assert!(r.stderr.contains("SELinux"), "{}", r.stderr);
        for (opt, help) in [("U", "chown"), ("O", "read-only")] {
            let r = env.run([
                "run",
                "--rm",
                "-v",
                &format!("{dir}:/v:{opt}"),
                "busybox",
                "true",
            ]);
            r.assert_code(125);
            assert!(r.stderr.contains(help), "{opt}: {}", r.stderr);
        }
    }
}

#[test]
fn kill_sends_real_time_signals() {
    for env in envs() {
        // SIGRTMIN is 34 on Linux with glibc, as podman (Go) numbers it.
        detach(
            &env,
            &["--name", "rt"],
            &[
                "sh",
                "-c",
                "trap 'echo got35; exit 7' 35; echo ready; while :; do sleep 0.05; done",
            ],
        );
        eventually("the trap to be set", || {
            env.run(["logs", "rt"]).stdout == "ready\n"
        });
        env.run(["kill", "-s", "SIGRTMIN+1", "rt"]).ok();
        let w = env.run(["wait", "rt"]);
        w.ok();
        assert_eq!(w.stdout.trim(), "7");
        assert_eq!(env.run(["logs", "rt"]).stdout, "ready\ngot35\n");
        let r = env.run(["kill", "-s", "SIGRTMIN+99", "rt"]);
        r.assert_code(125);
        assert!(r.stderr.contains("SIGRTMIN+1"), "{}", r.stderr);
        env.run(["rm", "rt"]).ok();
    }
}

#[test]
fn ps_images_and_inspect_take_podman_formats() {
    for env in envs() {
        let id = detach(&env, &["--name", "fmt"], &["sh", "-c", "exit 3"]);
        env.run(["wait", "fmt"]).ok();

        let r = env.run(["ps", "-a", "--format", "json"]);
        r.ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v[0]["Names"], serde_json::json!(["fmt"]));
        assert_eq!(v[0]["ExitCode"], 3);
        assert_eq!(v[0]["Exited"], true);

        let r = env.run(["ps", "-a", "--format", "{{.Names}} {{.ExitCode}} {{.ID}}"]);
        r.ok();
        assert_eq!(r.stdout, format!("fmt 3 {}\n", &id[..12]));
        let r = env.run(["ps", "-a", "--format", "table {{.Names}}\\t{{.State}}"]);
        r.ok();
        assert_eq!(r.stdout, "NAMES  STATE\nfmt    exited\n");

        let r = env.run(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
        r.ok();
        assert_eq!(r.stdout, "busybox:latest\n");

        let r = env.run([
            "inspect",
            "--format",
            "{{.State.ExitCode}} {{json .Name}}",
            "fmt",
        ]);
        r.ok();
        assert_eq!(r.stdout, "3 \"fmt\"\n");
        let r = env.run(["inspect", "--format", "{{.Nope}}", "fmt"]);
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("`.Nope`"), "{}", r.stderr);
        env.run(["rm", "fmt"]).ok();
    }
}
