//! The harness itself: the test users and the busybox tarball are what every other test leans on.

mod common;

use common::{Env, Who};

#[test]
fn the_binary_runs_as_root_and_as_the_unprivileged_user() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let r = env.run(["--version"]);
        r.ok();
        assert!(r.stdout.starts_with("foxbox "), "{}", r.stdout);
        let id = env.command("id").output().expect("id");
        let uid: u32 =
            String::from_utf8_lossy(&env.command("id").arg("-u").output().unwrap().stdout)
                .trim()
                .parse()
                .unwrap();
        assert!(id.status.success());
        assert_eq!(uid, env.ids().0);
        let xdg = env
            .command("sh")
            .args(["-c", "echo $HOME:$XDG_DATA_HOME"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&xdg.stdout).trim(),
            format!(
                "{}:{}",
                env.home().display(),
                env.dir.join("data").display()
            ),
            "each env has its own HOME and XDG dirs, whoever runs it"
        );
        if who == Who::User && common::is_root() {
            assert_ne!(uid, 0, "the unprivileged mode must not run as root");
        }
    }
}

#[test]
fn busybox_tarball_has_a_shell_and_passwd() {
    let tar = common::busybox_tarball();
    let out = std::process::Command::new("tar")
        .arg("tzf")
        .arg(&tar)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.lines().any(|l| l == "./bin/sh"),
        "no ./bin/sh in {}",
        tar.display()
    );
    assert!(list.lines().any(|l| l == "./etc/passwd"));
}
