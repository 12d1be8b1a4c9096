//! The id holder (src/sys/holder.rs) for an unprivileged user with a subordinate range: the
//! first box starts it, later ones reuse it, a killed one is replaced, and it goes once its
//! record does. Through the built binary, as `foxtest`.

mod common;

use common::eventually;

use std::path::{Path, PathBuf};

use common::{Env, Who};

/// The holder's record under the env's runtime dir.
fn record(env: &Env) -> PathBuf {
    env.dir.join("runtime/foxbox/userns-holder")
}

/// The recorded holder's pid, if the record exists.
fn holder_pid(env: &Env) -> Option<i32> {
    let text = std::fs::read_to_string(record(env)).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false)
}

fn box_uid_map(env: &Env) -> String {
    let r = env.run(["run", "--rm", "busybox", "cat", "/proc/self/uid_map"]);
    r.ok();
    r.stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_holder_is_started_once_reused_replaced_when_killed_and_gone_with_its_record() {
    if !common::root_or_skip("needs root to run as the test user with a subordinate range") {
        return;
    }
    let env = Env::new(Who::User);
    env.import_busybox();
    // Made inside the holder's namespace: the box's maps name the holder's ids.
    assert_eq!(box_uid_map(&env), "0 0 1\n1 1 65536");
    let first = holder_pid(&env).expect("a holder is recorded");
    assert!(alive(first));
    let cmdline = std::fs::read(format!("/proc/{first}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).starts_with("foxbox-userns-holder"),
        "{cmdline:?}"
    );
    box_uid_map(&env);
    assert_eq!(holder_pid(&env), Some(first), "a live holder is reused");

    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(first, libc::SIGKILL) };
    eventually("the holder to die", || !alive(first));
    assert_eq!(box_uid_map(&env), "0 0 1\n1 1 65536");
    let second = holder_pid(&env).expect("a new holder is recorded");
    assert_ne!(second, first);
    assert!(alive(second));

    std::fs::remove_file(record(&env)).unwrap();
    eventually("the holder to leave with its record", || !alive(second));
    assert!(!Path::new(&format!("/proc/{second}")).exists() || !alive(second));
}

#[test]
fn without_a_subordinate_range_there_is_no_holder() {
    if !common::root_or_skip("needs root to run as the test user without a range") {
        return;
    }
    let env = Env::new(Who::UserNoSubids);
    env.import_busybox();
    let r = env.run(["run", "--rm", "busybox", "id", "-u"]);
    r.ok();
    assert_eq!(r.stdout, "0\n");
    assert!(holder_pid(&env).is_none());
}
