//! The wall-clock limit and the stop timeout, as root and as the unprivileged user: `--timeout`
//! sends SIGTERM and, after `--stop-timeout` (`limits.stop_timeout`, default 10 s), SIGKILL;
//! a timeout is reported only when it ended the box; `stop` waits the box's own stop timeout.
//! Bounds on time are coarse: they tell a 1 s grace from the 10 s default, nothing finer.

mod common;

use std::time::{Duration, Instant};

use common::{envs_with_busybox as envs, Env, Run};

fn timed(env: &Env, args: &[&str]) -> (Run, Duration) {
    let t = Instant::now();
    let r = env.run(args);
    (r, t.elapsed())
}

fn state(env: &Env, name: &str) -> serde_json::Value {
    let r = env.run(["inspect", name]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("inspect prints JSON");
    v[0]["State"].clone()
}

/// A pid 1 that ignores SIGTERM (busybox sleep, no --init) is killed once the stop timeout
/// after the SIGTERM is over, not after a fixed 10 s.
#[test]
fn the_stop_timeout_bounds_a_timeout_that_sigterm_cannot_end() {
    for env in envs() {
        let (r, took) = timed(
            &env,
            &[
                "run",
                "--name",
                "deaf",
                "--timeout",
                "1s",
                "--stop-timeout",
                "1",
                "busybox",
                "sleep",
                "30",
            ],
        );
        r.assert_code(137);
        assert!(
            took < Duration::from_secs(8),
            "{:?}: took {took:?}",
            env.who
        );
        assert!(r.stderr.contains("stopped by its timeout"), "{}", r.stderr);
        assert_eq!(state(&env, "deaf")["TimedOut"], true, "{:?}", env.who);

        // Detached, and through the spec key.
        let spec = env.write(
            "Foxbox.toml",
            "[box]\nname = \"deaf2\"\nimage = \"busybox\"\ncommand = [\"sleep\", \"30\"]\n\n\
             [limits]\ntimeout = \"1s\"\nstop_timeout = \"500ms\"\n",
        );
        let t = Instant::now();
        env.run(["up", "-d", spec.to_str().unwrap()]).ok();
        assert_eq!(env.run(["wait", "deaf2"]).stdout.trim(), "137");
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", env.who);
        let s = state(&env, "deaf2");
        assert_eq!(
            (s["ExitCode"].as_i64(), &s["TimedOut"]),
            (Some(137), &true.into())
        );
        let ps = env.run(["ps", "-a"]);
        assert!(ps.stdout.contains("(timed out)"), "{}", ps.stdout);
    }
}

/// A box that ends by itself while its SIGTERM went unheard was not ended by its timeout.
#[test]
fn a_box_that_ends_by_itself_is_not_reported_timed_out() {
    for env in envs() {
        let (r, took) = timed(
            &env,
            &[
                "run",
                "--name",
                "self",
                "--timeout",
                "1s",
                "busybox",
                "sleep",
                "3",
            ],
        );
        r.assert_code(0);
        assert!(took < Duration::from_secs(8), "took {took:?}");
        assert!(!r.stderr.contains("timeout"), "{:?}: {}", env.who, r.stderr);
        assert_eq!(state(&env, "self")["TimedOut"], false, "{:?}", env.who);

        // Detached, the same.
        env.run([
            "run",
            "-d",
            "--name",
            "self2",
            "--timeout",
            "1s",
            "busybox",
            "sleep",
            "2",
        ])
        .ok();
        assert_eq!(env.run(["wait", "self2"]).stdout.trim(), "0");
        assert_eq!(state(&env, "self2")["TimedOut"], false, "{:?}", env.who);

        // One that handles the SIGTERM and exits was ended by it.
        let (r, _) = timed(
            &env,
            &[
                "run",
                "--name",
                "polite",
                "--timeout",
                "1s",
                "busybox",
                "sh",
                "-c",
                "trap 'exit 3' TERM; while :; do sleep 0.1; done",
            ],
        );
        r.assert_code(3);
        assert!(r.stderr.contains("stopped by its timeout"), "{}", r.stderr);
        assert_eq!(state(&env, "polite")["TimedOut"], true, "{:?}", env.who);

        // Under --init, which passes the SIGTERM on, the same.
        let (r, _) = timed(
            &env,
            &[
                "run",
                "--rm",
                "--init",
                "--timeout",
                "1s",
                "busybox",
                "sleep",
                "30",
            ],
        );
        r.assert_code(143);
        assert!(r.stderr.contains("stopped by its timeout"), "{}", r.stderr);
    }
}

/// `stop` without `--time` gives the box its own stop timeout.
#[test]
fn stop_waits_the_boxs_stop_timeout() {
    for env in envs() {
        env.run([
            "run",
            "-d",
            "--name",
            "long",
            "--stop-timeout",
            "1s",
            "busybox",
            "sleep",
            "60",
        ])
        .ok();
        let (r, took) = timed(&env, &["stop", "long"]);
        r.ok();
        assert!(
            took < Duration::from_secs(8),
            "{:?}: took {took:?}",
            env.who
        );
        let s = state(&env, "long");
        assert_eq!(s["ExitCode"].as_i64(), Some(137), "{s}");
        assert_eq!(s["TimedOut"], false, "{s}");
    }
}

/// A bad stop timeout is a spec error at its line; a good one shows in the plan.
#[test]
fn a_bad_stop_timeout_is_a_spec_error() {
    for env in envs() {
        let spec = env.write(
            "Foxbox.toml",
            "[box]\nimage = \"busybox\"\n\n[limits]\nstop_timeout = \"soon\"\n",
        );
        let r = env.run(["check", spec.to_str().unwrap()]);
        r.assert_code(1);
        assert!(r.stderr.contains("limits.stop_timeout"), "{}", r.stderr);
        assert!(r.stderr.contains("Foxbox.toml:5"), "{}", r.stderr);
        let spec = env.write(
            "Foxbox.toml",
            "[box]\nimage = \"busybox\"\n\n[limits]\nstop_timeout = \"7s\"\n",
        );
        let r = env.run(["plan", spec.to_str().unwrap()]);
        r.ok();
        assert!(r.stdout.contains("stop timeout 7s"), "{}", r.stdout);
    }
}
