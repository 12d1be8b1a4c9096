//! What a box runs when no command is given, through the binary as root and as the
//! unprivileged user: the image's config, set at import with podman's `--change`, else
//! `/bin/sh` when the image has one (as the original tool's `run IMAGE`), else an error.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{busybox_tarball, envs_with_busybox as envs, Env, Run};

fn with_stdin(env: &Env, args: &[&str], input: &str) -> Run {
    let mut child = env
        .foxbox(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn an_image_without_a_command_runs_its_shell() {
    for env in envs() {
        let r = with_stdin(
            &env,
            &["run", "--rm", "-i", "busybox"],
            "echo from-sh; exit 4\n",
        );
        r.assert_code(4);
        assert_eq!(r.stdout, "from-sh\n");

        let spec = env.write("Foxbox.toml", "[box]\nimage = \"busybox\"\n");
        let r = env.run(["plan", spec.to_str().unwrap()]);
        r.ok();
        assert!(
            r.stdout
                .contains(r#"cmd        ["/bin/sh"] from the default shell"#),
            "{}",
            r.stdout
        );

        // No shell, no command: the error says so.
        let dir = env.work().join("noshell");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hello"), "hi").unwrap();
        let tar = env.work().join("noshell.tar");
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::set_permissions(&tar, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let r = env.run(["run", "--rm", tar.to_str().unwrap()]);
        r.assert_code(125);
        assert!(r.stderr.contains("no /bin/sh"), "{}", r.stderr);
    }
}

#[test]
fn import_change_sets_the_config() {
    for env in envs() {
        let tar = busybox_tarball();
        let tar = tar.to_str().unwrap();
        let r = env.run([
            "image",
            "import",
            "--name",
            "withcmd",
            "--change",
            r#"CMD ["sh", "-c", "echo cmd $K $PWD"]"#,
            "--change",
            "ENV K=from-env",
            "-c",
            "WORKDIR /etc",
            tar,
        ]);
        r.ok();
        let r = env.run(["run", "--rm", "withcmd"]);
        r.ok();
        assert_eq!(r.stdout, "cmd from-env /etc\n");
        // The plain import is another image: it still runs its shell.
        let r = with_stdin(&env, &["run", "--rm", "-i", "busybox"], "echo plain\n");
        r.ok();
        assert_eq!(r.stdout, "plain\n");

        let before = env.run(["image", "ls"]).stdout;
        for (bad, says) in [("EXPOSE 80", "CMD, ENTRYPOINT"), ("CMD [1", "JSON array")] {
            let r = env.run(["image", "import", "--name", "bad", "--change", bad, tar]);
            r.assert_code(125);
            assert!(r.stderr.contains(says), "{bad}: {}", r.stderr);
        }
        assert_eq!(env.run(["image", "ls"]).stdout, before);
    }
}
