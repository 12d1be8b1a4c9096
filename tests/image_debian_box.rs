//! The Debian minbase image (`images/build-debian.sh`, debootstrap) in a real box, as root and
//! as the unprivileged user with a subordinate id range: imported with `foxbox image import`,
//! then `dpkg -l`, `apt-get --version` and `su nobody -s /bin/sh -c id` run in boxes.
//!
//! Building the image needs root (debootstrap): not as root, `common::debian_tarball` prints a
//! SKIP and the test returns. The name starts with `slow_` (the first build takes about a
//! minute) so that `--skip slow_` leaves it out.
//!
//! What `su` needs, and why it works with foxbox's default plan as podman's does: the box's
//! process is the box's root (uid 0 in its user namespace), so `su` changes ids with
//! CAP_SETUID/CAP_SETGID from the default capability set; no setuid bit is involved, so
//! no_new_privs (on by default) does not get in the way. Rootless, nobody (65534) must be mapped:
//! the subordinate range maps box ids 1..65536 (the harness's `foxtest` has 100000:65536).
//! Without CAP_SETUID `su` fails. A setuid binary run by a user other than root raises its
//! effective uid only with `no_new_privileges = false` (`--security-opt
//! no-new-privileges=false`): checked with a setuid copy of `id`.

mod common;

use std::ffi::OsStr;

use common::{Env, Run, Who};

fn run_in(env: &Env, flags: &[&str], script: &str) -> Run {
    let mut args: Vec<&OsStr> = ["--log-level", "error", "run", "--rm"]
        .iter()
        .map(OsStr::new)
        .collect();
    args.extend(flags.iter().map(OsStr::new));
    args.extend(
        ["debian", "/bin/sh", "-c", script]
            .into_iter()
            .map(OsStr::new),
    );
    env.run(args)
}

#[test]
fn slow_debian_runs_dpkg_apt_and_su_in_a_box() {
    let Some(tarball) = common::debian_tarball() else {
        return;
    };
    for who in Who::BOTH {
        let env = Env::new(who);
        env.run([
            OsStr::new("--log-level"),
            OsStr::new("error"),
            OsStr::new("image"),
            OsStr::new("import"),
            OsStr::new("--name"),
            OsStr::new("debian"),
            tarball.as_os_str(),
        ])
        .ok();

        let r = run_in(
            &env,
            &[],
            "dpkg -l; echo dpkg=$?; apt-get --version; echo apt=$?; \
             stat -c 'su %a %u:%g' /usr/bin/su; \
             su nobody -s /bin/sh -c id; echo su=$?",
        );
        r.ok();
        let out = &r.stdout;
        let packages = out.lines().filter(|l| l.starts_with("ii  ")).count();
        assert!(
            packages > 50,
            "{who:?}: dpkg -l lists the installed packages ({packages}):\n{out}"
        );
        for p in ["apt", "dpkg", "libc6", "login", "passwd", "base-files"] {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(&format!("ii  {p} "))
                        || l.starts_with(&format!("ii  {p}:"))),
                "{who:?}: {p} is not listed as installed:\n{out}"
            );
        }
        assert!(out.contains("dpkg=0"), "{who:?}: {}", r.stderr);
        assert!(
            out.lines().any(|l| l.starts_with("apt 2.")) && out.contains("apt=0"),
            "{who:?}: apt-get --version:\n{out}\n{}",
            r.stderr
        );
        // The setuid bit and root ownership survive the import and the id mapping.
        assert!(out.contains("su 4755 0:0"), "{who:?}:\n{out}");
        assert!(
            out.contains("uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\nsu=0"),
            "{who:?}: su nobody:\n{out}\n--- stderr\n{}",
            r.stderr
        );

        // su changes ids with CAP_SETUID: without it, it fails.
        let r = run_in(
            &env,
            &["--cap-drop", "SETUID"],
            "su nobody -s /bin/sh -c id; echo su=$?",
        );
        r.ok();
        assert!(r.stdout.contains("su=1"), "{who:?}: {}", r.stdout);
        assert!(
            r.stderr
                .contains("su: cannot set user id: Operation not permitted"),
            "{who:?}: {}",
            r.stderr
        );

        // A setuid-root binary run as nobody: no effect under no_new_privs (the default), an
        // effective uid of 0 without it.
        let setuid_id = "cp /usr/bin/id /tmp/id && chmod 4755 /tmp/id && \
                         setpriv --reuid=65534 --regid=65534 --clear-groups /tmp/id; \
                         grep NoNewPrivs /proc/self/status";
        let r = run_in(&env, &[], setuid_id);
        r.ok();
        assert!(
            r.stdout
                .contains("uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n")
                && r.stdout.contains("NoNewPrivs:\t1"),
            "{who:?}: {}\n{}",
            r.stdout,
            r.stderr
        );
        let r = run_in(
            &env,
            &["--security-opt", "no-new-privileges=false"],
            setuid_id,
        );
        r.ok();
        assert!(
            r.stdout
                .contains("uid=65534(nobody) gid=65534(nogroup) euid=0(root)")
                && r.stdout.contains("NoNewPrivs:\t0"),
            "{who:?}: {}\n{}",
            r.stdout,
            r.stderr
        );
    }
}
