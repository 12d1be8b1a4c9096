//! Mounts through the binary (`run -v/--tmpfs/--read-only` and specs with `up`), as root and
//! as the unprivileged user: binds, volumes, tmpfs, a read-only root, and targets that try to
//! lead out of the box.

mod common;

use common::envs;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_tarball, is_root, Env, Run};

fn tar() -> String {
    busybox_tarball().to_str().unwrap().to_string()
}

/// `foxbox run --rm FLAGS... busybox sh -c SCRIPT`.
fn sh(env: &Env, flags: &[&str], script: &str) -> Run {
    let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.extend([tar(), "sh".into(), "-c".into(), script.into()]);
    env.run(args)
}

/// A directory in the env's work dir that its user owns.
fn dir(env: &Env, rel: &str) -> PathBuf {
    let p = env.write(&format!("{rel}/.keep"), "");
    fs::remove_file(&p).unwrap();
    p.parent().unwrap().to_path_buf()
}

/// Run `cmd` in a private mount namespace (as root) where `under` has a tmpfs submount holding
/// a file `x`: the host's mount table never changes.
fn with_submount(cmd: Command, under: &Path) -> Run {
    let mut w = Command::new("unshare");
    w.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o mode=0777 sub \"$0\" && echo in-sub > \"$0/x\" && exec \"$@\"")
        .arg(under)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    w.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            w.env(k, v);
        }
    }
    if let Some(d) = cmd.get_current_dir() {
        w.current_dir(d);
    }
    w.stdin(Stdio::null());
    Run::from(w.output().unwrap())
}

#[test]
fn binds_read_write_and_read_only_including_submounts() {
    for env in envs() {
        let src = dir(&env, "src");
        env.write("src/f", "from-host\n");
        let s = src.to_str().unwrap();

        let r = sh(
            &env,
            &["-v", &format!("{s}:/rw")],
            "cat /rw/f && echo box > /rw/new",
        );
        r.ok();
        assert_eq!(r.stdout, "from-host\n");
        assert_eq!(fs::read_to_string(src.join("new")).unwrap(), "box\n");

        let r = sh(
            &env,
            &["-v", &format!("{s}:/ro:ro")],
            "cat /ro/f; echo x > /ro/g",
        );
        assert_ne!(r.code, 0, "a write to a read-only bind succeeded");
        assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
        assert!(!src.join("g").exists());

        if !is_root() {
            eprintln!("SKIP (submount): making one needs root");
            continue;
        }
        let sub = dir(&env, "src/sub");
        let mut args: Vec<OsString> = vec!["run".into(), "--rm".into(), "-v".into()];
        args.push(format!("{s}:/ro:ro").into());
        args.extend(
            [
                tar().as_str(),
                "sh",
                "-c",
                "cat /ro/sub/x; echo y > /ro/sub/y; echo rc=$?; \
                 grep -E ' /ro(/sub)? ' /proc/self/mountinfo | cut -d' ' -f5,6",
            ]
            .map(OsString::from),
        );
        let r = with_submount(env.foxbox(args), &sub);
        r.ok();
        assert!(r.stdout.starts_with("in-sub\nrc=1\n"), "{}", r.stdout);
        assert!(r.stdout.contains("/ro/sub ro,"), "{}", r.stdout);
        assert!(r.stdout.contains("/ro ro,"), "{}", r.stdout);
        assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
    }
}

const SPEC_MOUNTS: &str = r#"
[[mounts]]
type = "bind"
source = "../data"
target = "/data"

[[mounts]]
type = "bind"
source = "../data"
target = "/data-ro"
readonly = true
"#;

#[test]
fn spec_binds_resolve_against_the_spec_dir_from_any_cwd() {
    for env in envs() {
        let spec = format!(
            "[box]\nimage = \"{}\"\ncommand = \"cat /data/f; echo w > /data-ro/w; echo rc=$?\"\n{SPEC_MOUNTS}",
            tar()
        );
        env.write("other/dir/spec.toml", &spec);
        env.write("other/data/f", "relative\n");
        // From the work dir and from HOME: the same directory either way.
        for cwd in [env.work(), env.home()] {
            let path = env.work().join("other/dir/spec.toml");
            let arg = if cwd == env.work() {
                PathBuf::from("other/dir/spec.toml")
            } else {
                path
            };
            let out = env
                .foxbox([OsString::from("up"), arg.into(), "--rm".into()])
                .current_dir(&cwd)
                .output()
                .unwrap();
            let r = Run::from(out);
            r.ok();
            assert_eq!(r.stdout, "relative\nrc=1\n", "{}", r.stderr);
        }
    }
}

#[test]
fn a_missing_bind_source_points_at_its_line_in_check_and_at_run_time() {
    for env in envs() {
        let spec = format!(
            "[box]\nimage = \"{}\"\ncommand = \"true\"\n\n[[mounts]]\ntype = \"bind\"\nsource = \"./gone\"\ntarget = \"/g\"\n",
            tar()
        );
        env.write("s/spec.toml", &spec);
        let r = env.run(["check", "s/spec.toml"]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("foxbox::host::bind_source"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("s/spec.toml:5:1"), "{}", r.stderr);
        assert!(r.stderr.contains("/s/gone does not exist"), "{}", r.stderr);

        // Present at check, gone at run: the executor's diagnostic points at the same line.
        let gone = dir(&env, "s/gone");
        env.run(["check", "s/spec.toml"]).ok();
        fs::remove_dir(&gone).unwrap();
        let r = env.run(["up", "s/spec.toml", "--rm"]);
        r.assert_code(125);
        assert!(r.stderr.contains("s/spec.toml:5:1"), "{}", r.stderr);
        assert!(r.stderr.contains("bind source"), "{}", r.stderr);
        assert!(r.stderr.contains("No such file"), "{}", r.stderr);
    }
}

fn volume_users(env: &Env, name: &str) -> Vec<String> {
    let r = env.run(["volume", "inspect", name]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v[0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect()
}

/// Start `foxbox run --rm --name NAME FLAGS busybox sh -c SCRIPT` in the background and wait
/// until the box runs.
fn background(env: &Env, name: &str, flags: &[&str], script: &str) -> Child {
    let mut args: Vec<String> = vec!["run".into(), "--rm".into(), "--name".into(), name.into()];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.extend([tar(), "sh".into(), "-c".into(), script.into()]);
    let child = env
        .foxbox(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        let r = env.run(["inspect", name]);
        if r.code == 0 && r.stdout.contains("\"running\"") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{name} never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn stop(env: &Env, name: &str, mut child: Child) {
    env.run(["kill", name]).ok();
    child.wait().unwrap();
}

#[test]
fn named_volumes_are_shared_kept_and_refused_for_rm_while_in_use() {
    for env in envs() {
        // A fresh volume is writable by the box's root, and owned by it.
        let r = sh(
            &env,
            &["-v", "data:/v"],
            "stat -c %u:%g /v && echo one > /v/f",
        );
        r.ok();
        assert_eq!(r.stdout, "0:0\n");
        let r = sh(&env, &["-v", "data:/w:ro"], "cat /w/f; echo x > /w/g");
        assert_eq!(r.stdout, "one\n");
        assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
        assert!(volume_users(&env, "data").is_empty());

        let holder = background(&env, "holder", &["-v", "data:/v"], "sleep 30");
        let users = volume_users(&env, "data");
        assert_eq!(users.len(), 1, "{users:?}");
        let id = env.run(["inspect", "holder"]);
        assert!(id.stdout.contains(&users[0]), "{}", id.stdout);
        let rm = env.run(["volume", "rm", "data"]);
        rm.assert_code(125);
        assert!(rm.stderr.contains("in use"), "{}", rm.stderr);
        env.run(["volume", "create", "idle"]).ok();
        let pruned = env.run(["volume", "prune"]);
        pruned.ok();
        assert_eq!(pruned.stdout, "idle\n");
        assert_eq!(env.run(["volume", "ls", "-q"]).stdout, "data\n");
        stop(&env, "holder", holder);

        assert!(volume_users(&env, "data").is_empty());
        env.run(["volume", "rm", "data"]).ok();
        assert_eq!(env.run(["volume", "ls", "-q"]).stdout, "");
    }
}

#[test]
fn a_volume_is_writable_by_a_non_root_user_of_the_box_only_through_its_root() {
    // With a subordinate range the box has more ids than its root; the volume belongs to the
    // box's root (the caller on the host) either way.
    for env in envs() {
        sh(&env, &["-v", "own:/v"], "touch /v/by-root").ok();
        let r = env.run(["volume", "inspect", "own"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let mp = PathBuf::from(v[0]["mountpoint"].as_str().unwrap());
        assert_eq!(fs::metadata(&mp).unwrap().uid(), env.ids().0);
        assert_eq!(fs::metadata(mp.join("by-root")).unwrap().uid(), env.ids().0);
    }
}

#[test]
fn tmpfs_size_and_mode_are_enforced() {
    for env in envs() {
        let r = sh(
            &env,
            &["--tmpfs", "/t:size=1m,mode=0700"],
            "stat -c %a /t; dd if=/dev/zero of=/t/f bs=1M count=2 2>&1; echo rc=$?",
        );
        r.ok();
        assert!(r.stdout.starts_with("700\n"), "{}", r.stdout);
        assert!(r.stdout.contains("No space left on device"), "{}", r.stdout);
        assert!(r.stdout.ends_with("rc=1\n"), "{}", r.stdout);

        let spec = format!(
            "[box]\nimage = \"{}\"\ncommand = \"stat -c %a /t; dd if=/dev/zero of=/t/f bs=1M count=2 2>&1; echo rc=$?\"\n\n[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/t\"\nsize = \"1m\"\nmode = \"0750\"\n",
            tar()
        );
        env.write("tmpfs.toml", &spec);
        let r = env.run(["up", "tmpfs.toml", "--rm"]);
        r.ok();
        assert!(r.stdout.starts_with("750\n"), "{}", r.stdout);
        assert!(r.stdout.contains("No space left on device"), "{}", r.stdout);
    }
}

const WRITABLE_CHECK: &str =
    "for d in /tmp /var/tmp /run /dev/shm /run/s; do touch $d/w || exit 9; done; \
     ls /run/s; touch /etc/w; echo rc=$?";

#[test]
fn read_only_root_keeps_scratch_dirs_and_plan_mounts_writable() {
    for env in envs() {
        let src = dir(&env, "ro-src");
        env.write("ro-src/seen", "");
        let s = src.to_str().unwrap();
        let r = sh(
            &env,
            &["--read-only", "-v", &format!("{s}:/run/s")],
            WRITABLE_CHECK,
        );
        r.ok();
        assert_eq!(r.stdout, "seen\nw\nrc=1\n", "{}", r.stderr);
        assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
        assert!(
            !r.stderr.contains("readonly_without_tmp"),
            "a warning about a /tmp that is writable: {}",
            r.stderr
        );
        fs::remove_file(src.join("w")).unwrap();

        let spec = format!(
            "[box]\nimage = \"{}\"\ncommand = \"{WRITABLE_CHECK}\"\n\n[rootfs]\nreadonly = true\n\n[[mounts]]\ntype = \"bind\"\nsource = \"./ro-src\"\ntarget = \"/run/s\"\n",
            tar()
        );
        env.write("ro.toml", &spec);
        let r = env.run(["up", "ro.toml", "--rm"]);
        r.ok();
        assert_eq!(r.stdout, "seen\nw\nrc=1\n", "{}", r.stderr);
        assert!(src.join("w").exists());

        // A plan mount on /tmp itself takes the place of the scratch tmpfs.
        let r = sh(
            &env,
            &["--read-only", "--tmpfs", "/tmp:ro"],
            "touch /tmp/x; echo rc=$?; touch /run/x && echo run-ok",
        );
        r.ok();
        assert_eq!(r.stdout, "rc=1\nrun-ok\n", "{}", r.stderr);
    }
}

/// The busybox image plus `extra` (relative paths in the rootfs) and symlinks, as a tarball in
/// the env's work dir.
fn image_with(env: &Env, name: &str, dirs: &[&str], links: &[(&str, &str)]) -> String {
    let root = tempfile::tempdir_in(env.dir.join("cache")).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(busybox_tarball())
        .arg("-C")
        .arg(root.path())
        .status()
        .unwrap();
    assert!(st.success());
    for d in dirs {
        fs::create_dir_all(root.path().join(d)).unwrap();
    }
    for (link, to) in links {
        std::os::unix::fs::symlink(to, root.path().join(link)).unwrap();
    }
    let out = env.work().join(name);
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(root.path())
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
    out.to_str().unwrap().to_string()
}

fn listing(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn is_mount_point(p: &Path) -> bool {
    let me = fs::read_to_string("/proc/self/mountinfo").unwrap();
    me.lines()
        .any(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
}

#[test]
fn symlinked_targets_in_the_image_never_reach_the_host() {
    for env in envs() {
        // Host directories the image's links name; the first also exists inside the image.
        let canary = dir(&env, "canary");
        let absent = dir(&env, "canary-absent");
        let src = dir(&env, "payload");
        env.write("payload/p", "payload\n");
        let rel = |p: &Path| p.strip_prefix("/").unwrap().to_str().unwrap().to_string();
        let dotdots = format!("../../../../../../../../..{}", canary.display());
        let img = image_with(
            &env,
            "links.tar.gz",
            &[&rel(&canary)],
            &[
                ("etc/target", canary.to_str().unwrap()),
                ("etc/relative", &dotdots),
                ("etc/absent", absent.to_str().unwrap()),
            ],
        );
        let s = src.to_str().unwrap();
        let c = canary.display().to_string();
        let r = env.run([
            "run",
            "--rm",
            "-v",
            &format!("{s}:/etc/target"),
            "--tmpfs",
            "/etc/relative/t",
            &img,
            "sh",
            "-c",
            &format!(
                "cat {c}/p && touch {c}/t/x {c}/from-box && grep -c ' {c}' /proc/self/mountinfo"
            ),
        ]);
        r.ok();
        assert_eq!(r.stdout, "payload\n2\n", "{}", r.stderr);
        assert!(listing(&canary).is_empty(), "{:?}", listing(&canary));
        assert!(!is_mount_point(&canary));
        // The mount lands on the image's copy of the canary path, inside the box.
        assert_eq!(listing(&src), ["from-box", "p", "t"]);

        // A link to a host path the image does not have: refused, with the target named.
        let r = env.run(["run", "--rm", "--tmpfs", "/etc/absent", &img, "true"]);
        r.assert_code(125);
        assert!(r.stderr.contains("mount point /etc/absent"), "{}", r.stderr);
        assert!(
            r.stderr.contains("never follow a link out of it"),
            "{}",
            r.stderr
        );
        assert!(listing(&absent).is_empty());
        assert!(!is_mount_point(&absent));
    }
}

#[test]
fn dotdot_in_targets_is_an_error() {
    for env in envs() {
        let src = dir(&env, "dd");
        let r = env.run([
            "run",
            "--rm",
            "-v",
            &format!("{}:/a/../etc", src.display()),
            &tar(),
            "true",
        ]);
        r.assert_code(125);
        assert!(r.stderr.contains("contains `..`"), "{}", r.stderr);
        let spec = format!(
            "[box]\nimage = \"{}\"\n\n[[mounts]]\ntype = \"tmpfs\"\ntarget = \"/x/../../etc\"\n",
            tar()
        );
        env.write("dd.toml", &spec);
        let r = env.run(["check", "dd.toml"]);
        r.assert_code(1);
        assert!(r.stderr.contains("dd.toml:6:"), "{}", r.stderr);
    }
}

#[test]
fn a_symlink_swapped_into_a_shared_volume_never_moves_another_boxs_mount_out() {
    for env in envs() {
        // Settled links first: `/` means the volume's root, a path the volume lacks is refused.
        sh(
            &env,
            &["-v", "shared:/v"],
            "ln -s / /v/d && ln -s /etc /v/e",
        )
        .ok();
        let r = sh(
            &env,
            &["-v", "shared:/v", "--tmpfs", "/v/d/t:size=3m"],
            "test -x /bin/busybox && test ! -e /t && grep 'size=3072k' /proc/self/mountinfo",
        );
        r.ok();
        assert_eq!(r.stdout.split(' ').nth(4), Some("/v/t"), "{r:?}");
        let r = sh(&env, &["-v", "shared:/v", "--tmpfs", "/v/e"], "true");
        r.assert_code(125);
        assert!(r.stderr.contains("mount point /v/e"), "{}", r.stderr);
        sh(&env, &["-v", "shared:/v"], "rm -rf /v/*").ok();
        let host = dir(&env, "host-target");
        let h = host.display().to_string();
        // Box A keeps turning /v/d into a directory, a link to /, and a link to a host path.
        let swapper = background(
            &env,
            "swapper",
            &["-v", "shared:/v"],
            &format!(
                "while :; do rm -rf /v/d; mkdir /v/d; rm -rf /v/d; ln -s / /v/d; \
                 rm -f /v/d; ln -s {h} /v/d; rm -f /v/d; ln -s ../../../../.. /v/d; rm -f /v/d; done"
            ),
        );
        let mut mounted = 0;
        for _ in 0..12 {
            // Box B mounts a tmpfs (with a size to find it by) on /v/d while A swaps it.
            let r = sh(
                &env,
                &["-v", "shared:/v", "--tmpfs", "/v/d:size=3m"],
                "test -x /bin/busybox || exit 7; grep 'size=3072k' /proc/self/mountinfo; true",
            );
            match r.code {
                0 => {
                    // Empty when A unlinked the mount point after B's start, which detaches
                    // the mount in B's namespace (the kernel's rule since 3.18).
                    if let Some(at) = r.stdout.split(' ').nth(4) {
                        mounted += 1;
                        assert!(
                            at == "/v" || at.starts_with("/v/d"),
                            "tmpfs landed on {at:?}: {r:?}"
                        );
                    }
                }
                // Refused: the mount point was not a directory of the box when resolved, or
                // vanished between its resolution and the attach (ENOENT).
                125 => assert!(
                    r.stderr.contains("mount point /v/d") || r.stderr.contains("on /v/d:"),
                    "{}",
                    r.stderr
                ),
                _ => panic!("unexpected: {r:?}"),
            }
        }
        stop(&env, "swapper", swapper);
        assert!(listing(&host).is_empty(), "{:?}", listing(&host));
        assert!(!is_mount_point(&host));
        eprintln!("{mounted} of 12 starts mounted");
    }
}
