//! The soak test's short version in the suite: `tests/soak.sh` (see its header) for about a
//! minute, as root and as the unprivileged user, with the binary cargo built and the suite's
//! busybox image. The long one runs by hand: `tests/soak.sh 1200 200`.

mod common;

use std::process::Command;

#[test]
fn soak_short() {
    let secs = std::env::var("FOXBOX_SOAK_SECS").unwrap_or_else(|_| "60".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/soak.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&secs)
        .arg("200")
        .env("FOXBOX_BIN", env!("CARGO_BIN_EXE_foxbox"))
        .env("FOXBOX_BUSYBOX", common::busybox_tarball())
        .output()
        .expect("run tests/soak.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "soak failed:\n{text}");
    assert!(text.contains("soak: OK"), "{text}");
}
