//! Completions, the man page and --version come from the same clap definitions as the commands;
//! listing commands end quietly when their reader goes away.

mod common;

use common::{Env, Who};

#[test]
fn completions_man_and_version() {
    let env = Env::new(Who::User);
    for shell in ["bash", "zsh", "fish"] {
        let r = env.run(["completions", shell]);
        r.ok();
        assert!(r.stdout.contains("foxbox"), "{shell}: {}", r.stdout);
        assert!(r.stdout.contains("volume"), "{shell}: subcommands missing");
    }
    let r = env.run(["man"]);
    r.ok();
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH foxbox"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    let r = env.run(["--version"]);
    r.ok();
    assert_eq!(
        r.stdout.trim(),
        format!("foxbox {}", env!("CARGO_PKG_VERSION"))
    );
    let bad = env.run(["completions", "tcsh"]);
    bad.assert_code(125);
}

/// A reader that went away (`foxbox ps -a | head -1`) ends a listing command quietly, by
/// SIGPIPE as other command-line tools, without a panic or a backtrace.
#[test]
fn a_closed_pipe_ends_listing_commands_quietly() {
    for env in common::envs_with_busybox() {
        env.run([
            "run",
            "-d",
            "--name",
            "piped",
            "busybox",
            "sh",
            "-c",
            "echo hi; sleep 60",
        ])
        .ok();
        env.run(["volume", "create", "vol"]).ok();
        let commands: [&[&str]; 7] = [
            &["ps", "-a"],
            &["inspect", "piped"],
            &["image", "ls"],
            &["top", "piped"],
            &["logs", "piped"],
            &["volume", "ls"],
            &["image", "inspect", "busybox"],
        ];
        for args in commands {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            let out = env
                .foxbox(args)
                .stdout(writer)
                .stderr(std::process::Stdio::piped())
                .output()
                .unwrap();
            let r = common::Run::from(out);
            assert_eq!(
                (r.code, r.stderr.as_str()),
                (128 + libc::SIGPIPE, ""),
                "{:?}: {args:?}",
                env.who
            );
        }
        env.run(["rm", "-f", "piped"]).ok();
    }
}

/// Every command fails the same way: a diagnostic with a registered code (listed by `foxbox
/// codes`), exit 125, for each box a command names, as root and as the unprivileged user.
#[test]
fn errors_of_every_command_carry_a_registered_code() {
    for env in common::envs() {
        let listed = env.run(["codes"]);
        listed.ok();
        let cases: [(&[&str], &str, &str); 5] = [
            (&["inspect", "nope"], "foxbox::box::lookup", "no such box"),
            (&["stop", "nope", "nada"], "foxbox::box::lookup", "nada"),
            (
                &["kill", "-s", "NOPE", "x"],
                "foxbox::cli::usage",
                "unknown signal",
            ),
            (
                &["exec", "nope", "true"],
                "foxbox::box::lookup",
                "no such box",
            ),
            (&["volume", "rm", "no/pe"], "foxbox::volume", "no/pe"),
        ];
        for (args, code, text) in cases {
            let r = env.run(args);
            r.assert_code(125);
            assert!(r.stderr.contains(code), "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains(text), "{args:?}: {}", r.stderr);
            assert!(!r.stderr.contains("Failure {"), "{args:?}: {}", r.stderr);
            assert!(
                listed
                    .stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("{code} "))),
                "{code} not listed by `foxbox codes`"
            );
        }
        // Both boxes `stop` names are reported, each once.
        let r = env.run(["stop", "nope", "nada"]);
        assert_eq!(
            r.stderr.matches("foxbox::box::lookup").count(),
            2,
            "{}",
            r.stderr
        );
    }
}

/// Fault points (src/store/fault.rs) exist only in a `fault-injection` build: the binary of an
/// ordinary build carries neither the variable that fires them nor their names.
#[cfg(not(feature = "fault-injection"))]
#[test]
fn an_ordinary_build_has_no_fault_points() {
    let bin = std::fs::read(env!("CARGO_BIN_EXE_foxbox")).expect("read the binary");
    for needle in ["FOXBOX_FAULT", "import.after-layer", "start.after-clone"] {
        assert!(
            !bin.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the binary holds {needle:?}"
        );
    }
}
