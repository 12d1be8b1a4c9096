//! `foxbox test` through the built binary, as root and as the unprivileged user: `[[test]]`
//! entries run in fresh boxes from the spec's plan, passing and failing on each expectation,
//! timeouts, TAP output, exit codes, and no box left behind.

mod common;

use common::envs_with_busybox;

const SPEC: &str = r#"[box]
image = "busybox"
env = { GREETING = "the fox" }

[rootfs]
readonly = true

[[mounts]]
type = "tmpfs"
target = "/tmp"

[[test]]
name = "sees the spec's env"
command = ["sh", "-c", "echo $GREETING"]
expect.stdout.contains = "fox"

[[test]]
name = "exit code and stderr"
command = "echo oops >&2; exit 3"
expect.exit = 3
expect.stderr.matches = "^oo+ps$"

[[test]]
name = "writes a file"
command = "echo done > /tmp/out"
expect.files = [{ path = "/tmp/out", contains = "done" }]

[[test]]
name = "the rootfs is read-only as the plan says"
command = "touch /x"
expect.exit = 1
"#;

const FAILING: &str = r#"[box]
image = "busybox"

[[test]]
name = "passes"
command = ["true"]

[[test]]
name = "wrong exit"
command = ["false"]

[[test]]
name = "wrong output"
command = ["echo", "dog"]
expect.stdout.matches = "fox|wolf"

[[test]]
name = "no such file"
command = ["true"]
expect.files = [{ path = "/nothing" }, { path = "/etc/passwd", contains = "no-such-user" }]

[[test]]
name = "too slow"
command = ["sleep", "30"]
timeout = "500ms"
"#;

#[test]
fn passing_tests_exit_0_with_a_line_each_and_a_summary() {
    for env in envs_with_busybox() {
        let spec = env.write("Foxbox.toml", SPEC);
        let r = env.run(["test"]);
        r.ok();
        for name in [
            "sees the spec's env",
            "exit code and stderr",
            "writes a file",
            "the rootfs is read-only as the plan says",
        ] {
            assert!(
                r.stdout.contains(&format!("ok   {name} (")),
                "{name}: {}",
                r.stdout
            );
        }
        assert!(
            r.stdout
                .contains("Foxbox.toml: 4 tests, 4 passed, 0 failed"),
            "{}",
            r.stdout
        );

        let r = env.run(["test", "--format", "tap", spec.to_str().unwrap()]);
        r.ok();
        assert!(
            r.stdout
                .starts_with("TAP version 13\n1..4\nok 1 - sees the spec's env # time="),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.contains("\nok 4 - the rootfs is read-only"),
            "{}",
            r.stdout
        );
        let ps = env.run(["ps", "-a", "-q"]);
        assert_eq!(ps.stdout.trim(), "", "boxes left: {}", ps.stdout);
    }
}

#[test]
fn each_failed_expectation_fails_with_what_came_and_the_spec_line() {
    for env in envs_with_busybox() {
        let spec = env.write("failing/Foxbox.toml", FAILING);
        let p = spec.to_str().unwrap();
        let r = env.run(["test", p]);
        r.assert_code(1);
        let out = &r.stdout;
        assert!(out.contains("ok   passes ("), "{out}");
        assert!(out.contains("FAIL wrong exit ("), "{out}");
        assert!(out.contains("expected exit 0, got 1"), "{out}");
        assert!(out.contains(&format!("at {p}:8\n")), "{out}");
        assert!(
            out.contains("expected stdout that matches /fox|wolf/, got \"dog\""),
            "{out}"
        );
        assert!(out.contains("expected /nothing to exist"), "{out}");
        assert!(
            out.contains("expected /etc/passwd to contain \"no-such-user\""),
            "{out}"
        );
        assert!(out.contains("timed out after 500ms"), "{out}");
        assert!(out.contains("5 tests, 1 passed, 4 failed"), "{out}");

        let r = env.run(["test", "--format", "tap", p]);
        r.assert_code(1);
        assert!(
            r.stdout.contains("\nnot ok 2 - wrong exit # time="),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.contains(&format!("  at: \"{p}:8\"\n")),
            "{}",
            r.stdout
        );

        // JUnit XML, read by a real JUnit reader (Python's junitparser).
        let r = env.run(["test", "--format", "junit", p]);
        r.assert_code(1);
        let xml = env.work().join("report.xml");
        std::fs::write(&xml, &r.stdout).unwrap();
        let read = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys\nfrom junitparser import JUnitXml\n\
                 for s in JUnitXml.fromfile(sys.argv[1]):\n\
                 \x20 print(s.name, s.tests, s.failures)\n\
                 \x20 for c in s: print(c.name, c._elem.get('line'), c.is_passed, '|'.join(r.message for r in c.result))",
            ])
            .arg(&xml)
            .output()
            .unwrap();
        assert!(
            read.status.success(),
            "junitparser (python3-junitparser, scripts/setup.sh) could not read it: {}\n{}",
            String::from_utf8_lossy(&read.stderr),
            r.stdout
        );
        let lines = String::from_utf8_lossy(&read.stdout).into_owned();
        assert!(
            lines.starts_with(&format!("{p} 5 4\npasses 4 True \n")),
            "{lines}"
        );
        assert!(
            lines.contains("wrong exit 8 False expected exit 0, got 1"),
            "{lines}"
        );
        assert!(
            lines.contains(
                "wrong output 12 False expected stdout that matches /fox|wolf/, got \"dog\""
            ),
            "{lines}"
        );
        assert!(
            lines.contains("too slow 22 False timed out after 500ms"),
            "{lines}"
        );

        // The timed-out box is gone with its `foxbox up`.
        common::eventually("no box left", || {
            env.run(["ps", "-a", "-q"]).stdout.trim().is_empty()
        });
    }
}

#[test]
fn a_spec_with_bad_tests_is_refused_before_anything_runs() {
    for env in envs_with_busybox() {
        let spec = env.write(
            "Foxbox.toml",
            "[box]\nimage = \"busybox\"\n\n[[test]]\nname = \"x\"\ncommand = \"touch /tmp/ran\"\nexpect.stdout.matches = \"(\"\n",
        );
        let r = env.run(["test", spec.to_str().unwrap()]);
        r.assert_code(125);
        assert!(
            r.stderr.contains("not a valid regular expression"),
            "{}",
            r.stderr
        );
        env.run(["check", spec.to_str().unwrap()]).assert_code(1);
        assert_eq!(env.run(["ps", "-a", "-q"]).stdout.trim(), "");
        env.run(["test", "missing.toml"]).assert_code(125);
    }
}

#[test]
fn parallel_runs_tests_at_once_and_reports_them_in_order() {
    let spec = "[box]\nimage = \"busybox\"\n".to_string()
        + &(1..=4)
            .map(|i| format!("\n[[test]]\nname = \"t{i}\"\ncommand = \"sleep 1; echo {i}\"\nexpect.stdout.contains = \"{i}\"\n"))
            .collect::<String>();
    for env in envs_with_busybox() {
        let p = env.write("Foxbox.toml", &spec);
        let started = std::time::Instant::now();
        let r = env.run(["test", "--parallel", "4", p.to_str().unwrap()]);
        let took = started.elapsed();
        r.ok();
        let names: Vec<&str> = r
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("ok   "))
            .collect();
        assert_eq!(names.len(), 4, "{}", r.stdout);
        for (i, n) in names.iter().enumerate() {
            assert!(n.starts_with(&format!("t{} (", i + 1)), "{}", r.stdout);
        }
        // Four one-second tests one after another take four seconds.
        assert!(
            took < std::time::Duration::from_millis(3500),
            "took {took:?}"
        );
        env.run(["test", "--parallel", "0", p.to_str().unwrap()])
            .assert_code(125);
    }
}
