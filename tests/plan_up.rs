//! The plan is final: `foxbox plan` prints exactly the plan that `foxbox up` runs and that
//! `inspect` records, for a spec whose image has defaults (workdir, user, env, command), with
//! `--name` and `-- CMD`, as root and as the unprivileged user.

mod common;
#[allow(dead_code)]
#[path = "registry/images.rs"]
mod images;

use common::{busybox_tarball, envs, Env};
use serde_json::Value;

/// Load busybox as an OCI image whose config sets every default a box takes from an image;
/// returns the name it is stored under.
fn load_image_with_defaults(env: &Env) -> String {
    let dir = env.work().join("cfg-layout");
    let mut layout = images::Layout::new(&dir);
    let layer = images::Layer::from_gzip_file(&busybox_tarball());
    let cfg = serde_json::json!({
        "Entrypoint": ["/bin/sleep"],
        "Cmd": ["30"],
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FROM_IMAGE=yes"],
        "WorkingDir": "/tmp",
        "User": "1:1",
    });
    let m = layout.image_with(
        "amd64",
        None,
        std::slice::from_ref(&layer),
        cfg,
        std::slice::from_ref(&layer.diff_id),
    );
    layout.tag("cfgbox:1", &m);
    let r = env.run(["image", "load", "-i", dir.to_str().unwrap()]);
    r.ok();
    let name = r
        .stdout
        .strip_prefix("Loaded image: ")
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("{}", r.stdout));
    name.to_string()
}

fn json(r: &common::Run) -> Value {
    r.ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn plan_prints_the_plan_up_runs_with_image_defaults_name_and_command() {
    for env in envs() {
        let image = load_image_with_defaults(&env);
        let spec = env.write(
            "Foxbox.toml",
            format!("[box]\nimage = \"{image}\"\nenv = {{ FROM_SPEC = \"yes\" }}\n"),
        );
        let spec = spec.to_str().unwrap();
        // `-- CMD` replaces the image's command and keeps its entrypoint.
        let cases: [(&str, &[&str]); 2] = [("given", &["--", "31"]), ("imaged", &[])];
        for (name, command) in cases {
            let mut flags = vec!["--name", name];
            flags.extend_from_slice(command);

            let mut args = vec!["plan", "--format", "json", spec];
            args.extend_from_slice(&flags);
            let printed = json(&env.run(&args))["plan"].clone();

            let mut args = vec!["up", "-d", spec];
            args.extend_from_slice(&flags);
            let r = env.run(&args);
            r.ok();
            let id = r.stdout.trim().to_string();
            let recorded = json(&env.run(["inspect", &id]))[0]["Plan"].clone();
            env.run(["rm", "-f", &id]).ok();

            assert_eq!(printed, recorded, "{:?} {name}", env.who);
            // And it is the plan with the image's defaults under the spec's and the flags'.
            let p = &printed["process"];
            let want: Vec<&str> = if command.is_empty() {
                vec!["/bin/sleep", "30"]
            } else {
                vec!["/bin/sleep", "31"]
            };
            assert_eq!(p["args"], serde_json::json!(want), "{printed:#}");
            assert_eq!(printed["name"], name);
            assert_eq!(p["cwd"], "/tmp");
            assert_eq!(
                p["user"],
                serde_json::json!({"kind": "id", "uid": 1, "gid": 1})
            );
            let env_vars = p["env"].to_string();
            assert!(env_vars.contains("FROM_IMAGE"), "{env_vars}");
            assert!(env_vars.contains("FROM_SPEC"), "{env_vars}");
        }

        // `--name` goes through the resolver's checks, as `box.name` does.
        let r = env.run(["up", "--name", "no/slash", spec, "--", "true"]);
        r.assert_code(125);
        assert!(
            r.stderr.contains("`no/slash` is not a valid box name"),
            "{}",
            r.stderr
        );
        assert_eq!(env.run(["ps", "-a", "-q"]).stdout, "");
    }
}

/// `run -w` and `-u` are values the user set: the image's `WorkingDir` and `User` do not
/// replace them (they do replace foxbox's defaults).
#[test]
fn run_flags_win_over_the_image_s_defaults() {
    for env in envs() {
        let image = load_image_with_defaults(&env);
        // The image's entrypoint is /bin/sleep: `--entrypoint` runs the shell instead.
        let sh = ["--entrypoint", "/bin/sh"];
        let r = env.run(["run", "--rm", sh[0], sh[1], &image, "-c", "pwd; id -u"]);
        r.ok();
        assert_eq!(r.stdout, "/tmp\n1\n", "{:?}", env.who);
        let r = env.run([
            "run",
            "--rm",
            "-w",
            "/etc",
            "-u",
            "0",
            sh[0],
            sh[1],
            &image,
            "-c",
            "pwd; id -u",
        ]);
        r.ok();
        assert_eq!(r.stdout, "/etc\n0\n", "{:?}: {}", env.who, r.stderr);
    }
}
