//! Completions, the man page and --version come from the same clap definitions as the commands.

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
