//! What a box sees of itself and of the host, checked from inside the box, as root and as the
//! unprivileged user, through the built binary with the busybox image.

mod common;

use common::envs;

use std::ffi::OsString;
use std::fs;

use common::{busybox_tarball, Env, Run, Who};
use foxbox::security::caps::{self, CapSet};

/// `foxbox run [flags] BUSYBOX args...` as the env's user.
fn boxed(env: &Env, flags: &[&str], args: &[&str]) -> Run {
    let mut v: Vec<OsString> = vec!["--log-level".into(), "error".into(), "run".into()];
    v.extend(flags.iter().map(OsString::from));
    v.push(busybox_tarball().into_os_string());
    v.extend(args.iter().map(OsString::from));
    env.run(v)
}

fn sh(env: &Env, flags: &[&str], script: &str) -> Run {
    boxed(env, flags, &["/bin/sh", "-c", script])
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in\n{status}"))
}

#[test]
fn the_box_sees_only_its_own_processes() {
    for env in envs() {
        let r = sh(&env, &[], "ls /proc | grep -E '^[0-9]+$'");
        r.ok();
        let pids: Vec<&str> = r.stdout.lines().collect();
        // The shell (pid 1) and `ls` (its child); grep runs in a pipe, so at most three.
        assert!(pids.contains(&"1"), "{:?}: {pids:?}", env.who);
        assert!(
            pids.len() <= 3,
            "{:?}: host processes visible: {pids:?}",
            env.who
        );
        let r = boxed(&env, &[], &["cat", "/proc/1/cmdline"]);
        r.ok();
        assert_eq!(r.stdout, "cat\0/proc/1/cmdline\0", "{:?}", env.who);
    }
}

#[test]
fn hostname_is_the_flag_or_a_generated_fox_name() {
    for env in envs() {
        let r = boxed(&env, &["--hostname", "den"], &["hostname"]);
        r.ok();
        assert_eq!(r.stdout.trim(), "den");
        let r = sh(
            &env,
            &["--hostname", "den"],
            "cat /etc/hostname; echo $HOSTNAME; grep den /etc/hosts",
        );
        r.ok();
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(&lines[..2], ["den", "den"], "{}", r.stdout);
        assert!(lines[2].starts_with("127.0.1.1"), "{}", r.stdout);
        let r = boxed(&env, &[], &["hostname"]);
        r.ok();
        let name = r.stdout.trim();
        assert!(
            name.split('-').count() == 2
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "generated hostname {name:?}"
        );
        let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_ne!(name, host.trim());
    }
}

/// Names may have 128 characters, hostnames 64: a long name gives the box a hostname cut from
/// it (the start works, `exec` sees the same), and an explicit hostname too long is a spec
/// error at its line, before anything starts.
#[test]
fn a_long_name_gives_a_valid_hostname_and_a_long_hostname_is_refused() {
    let long = format!("fox-{}", "a".repeat(59)) + &"b".repeat(40);
    assert_eq!(long.len(), 103);
    let cut = &long[..63];
    for env in envs() {
        let r = boxed(
            &env,
            &["--name", &long, "-d"],
            &["sh", "-c", "hostname; echo $HOSTNAME; sleep 30"],
        );
        r.ok();
        assert!(
            !r.stderr.contains("hostname"),
            "{:?}: {}",
            env.who,
            r.stderr
        );
        let x = env.run(["exec", &long, "sh", "-c", "hostname; echo $HOSTNAME"]);
        x.ok();
        assert_eq!(x.stdout, format!("{cut}\n{cut}\n"), "{:?}", env.who);
        env.run(["rm", "-f", &long]).ok();

        let spec = env.write(
            "Foxbox.toml",
            format!(
                "[box]\nimage = \"busybox\"\nhostname = \"{}\"\n",
                "h".repeat(64)
            ),
        );
        let r = env.run(["check", spec.to_str().unwrap()]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("bad_hostname") && r.stderr.contains("Foxbox.toml:3"),
            "{:?}: {}",
            env.who,
            r.stderr
        );
        let r = boxed(&env, &["--hostname", &"h".repeat(70)], &["true"]);
        r.assert_code(125);
        assert!(r.stderr.contains("bad_hostname"), "{}", r.stderr);
    }
}

fn subordinate(file: &str, user: &str) -> (u32, u32) {
    let text = fs::read_to_string(file).unwrap();
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == user).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .unwrap_or_else(|| panic!("{user} has no range in {file}"))
}

fn map_lines(text: &str) -> Vec<Vec<u64>> {
    text.lines()
        .map(|l| l.split_whitespace().map(|n| n.parse().unwrap()).collect())
        .collect()
}

#[test]
fn id_maps_put_the_caller_at_root_with_its_subordinate_range() {
    for env in envs() {
        // The maps as the host sees them: the fox's own, read from the host's /proc.
        let r = env.run([
            OsString::from("run"),
            "-d".into(),
            busybox_tarball().into_os_string(),
            "sleep".into(),
            "30".into(),
        ]);
        r.ok();
        let id = r.stdout.trim().to_string();
        let st = env.run(["inspect", &id]);
        st.ok();
        let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
        let pid = v[0]["State"]["Pid"].as_i64().expect("the fox's pid");
        let uids = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
        let gids = fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap();
        env.run(["rm", "-f", &id]).ok();
        let (uid, gid) = env.ids();
        // And as the box sees them: relative to its parent user namespace, which for a user
        // with a range is the id holder's (the same ids, already mapped; see sys::holder).
        let r = sh(
            &env,
            &[],
            "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map",
        );
        r.ok();
        let (inner_uids, inner_gids) = r.stdout.split_once("--\n").unwrap();
        match env.who {
            Who::Root => {
                for m in [&uids, &gids, inner_uids, inner_gids] {
                    assert_eq!(map_lines(m), vec![vec![0, 0, 4294967295]]);
                }
            }
            _ => {
                let (su, sc) = subordinate("/etc/subuid", common::TEST_USER);
                let (gu, gc) = subordinate("/etc/subgid", common::TEST_USER);
                assert_eq!(
                    map_lines(&uids),
                    vec![vec![0, uid as u64, 1], vec![1, su as u64, sc as u64]]
                );
                assert_eq!(
                    map_lines(&gids),
                    vec![vec![0, gid as u64, 1], vec![1, gu as u64, gc as u64]]
                );
                assert_eq!(
                    map_lines(inner_uids),
                    vec![vec![0, 0, 1], vec![1, 1, sc as u64]]
                );
                assert_eq!(
                    map_lines(inner_gids),
                    vec![vec![0, 0, 1], vec![1, 1, gc as u64]]
                );
            }
        }
        // Root too gets a user namespace of its own.
        let r = boxed(&env, &[], &["readlink", "/proc/self/ns/user"]);
        r.ok();
        let host = fs::read_link("/proc/self/ns/user").unwrap();
        assert_ne!(r.stdout.trim(), host.to_string_lossy(), "{:?}", env.who);
        // A user from the image's /etc/passwd, with its groups.
        let r = boxed(&env, &["-u", "fox"], &["id"]);
        r.ok();
        assert_eq!(
            r.stdout.trim(),
            "uid=1000(fox) gid=1000(fox) groups=10(wheel)",
            "{:?}",
            env.who
        );
        let r = sh(&env, &["-u", "1000:1000"], "echo $HOME; id -u");
        r.ok();
        assert_eq!(r.stdout, "/home/fox\n1000\n");
    }
}

#[test]
fn without_a_subordinate_range_only_root_exists_in_the_box() {
    if !common::root_or_skip("needs root to run as the user without a range") {
        return;
    }
    let env = Env::new(Who::UserNoSubids);
    let r = boxed(&env, &[], &["cat", "/proc/self/uid_map"]);
    r.ok();
    assert_eq!(map_lines(&r.stdout), vec![vec![0, env.ids().0 as u64, 1]]);
    let r = boxed(&env, &["-u", "fox"], &["id"]);
    r.assert_code(125);
    assert!(r.stderr.contains("user"), "{}", r.stderr);
    assert!(r.stderr.contains("not mapped"), "{}", r.stderr);
}

fn hex(set: CapSet) -> String {
    format!("{:016x}", set.0)
}

/// uid 0 gets the plan's set in all five sets; any other uid (podman's rule) only what was added
/// explicitly, in all but the bounding set, which stays the plan's.
#[test]
fn capability_sets_are_exactly_the_plans() {
    let default = CapSet::podman_default();
    let mut nbs = CapSet::EMPTY;
    nbs.insert(caps::parse("NET_BIND_SERVICE").unwrap());
    let mut raw = default;
    raw.insert(caps::parse("NET_RAW").unwrap());
    let mut net_raw = CapSet::EMPTY;
    net_raw.insert(caps::parse("NET_RAW").unwrap());
    for env in envs() {
        // (flags, bounding set, what a non-root user gets)
        for (flags, want, added) in [
            (vec![], default, CapSet::EMPTY),
            (
                vec!["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
                nbs,
                nbs,
            ),
            (vec!["--cap-add", "NET_RAW"], raw, net_raw),
        ] {
            for user in ["0", "fox", "1000"] {
                let mut f: Vec<&str> = flags.clone();
                f.extend(["-u", user]);
                let r = boxed(&env, &f, &["cat", "/proc/self/status"]);
                r.ok();
                let others = if user == "0" { want } else { added };
                for (key, set) in [
                    ("CapEff", others),
                    ("CapPrm", others),
                    ("CapBnd", want),
                    ("CapInh", others),
                    ("CapAmb", others),
                ] {
                    assert_eq!(
                        status_field(&r.stdout, key),
                        hex(set),
                        "{:?} {f:?}: {key}",
                        env.who
                    );
                }
            }
        }
        // Dropped capabilities are really gone: chown needs CAP_CHOWN.
        let r = sh(&env, &["--cap-drop", "CHOWN"], "touch /f && chown 1:1 /f");
        assert_ne!(r.code, 0, "{:?}: chown worked without CAP_CHOWN", env.who);
        let r = sh(&env, &[], "touch /f && chown 1:1 /f");
        r.ok();
    }
}

/// A non-root box user cannot override file permissions: a file only its owner (the box's
/// root, which is the caller) may read stays closed to uid 1000, through a bind mount too.
#[test]
fn a_non_root_user_keeps_no_default_capability() {
    for env in envs() {
        let secret = env.write("private/secret", "hush\n");
        fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let bind = format!("{}:/private", secret.parent().unwrap().display());
        let r = sh(&env, &["-v", &bind], "cat /private/secret");
        r.ok();
        assert_eq!(r.stdout, "hush\n");
        let r = sh(
            &env,
            &["-v", &bind, "-u", "1000"],
            "cat /private/secret; echo more >> /private/secret; grep CapEff /proc/self/status",
        );
        assert!(!r.stdout.contains("hush"), "{:?}: {}", env.who, r.stdout);
        assert!(
            r.stderr.contains("Permission denied"),
            "{:?}: {}",
            env.who,
            r.stderr
        );
        assert!(
            r.stdout.contains("CapEff:\t0000000000000000"),
            "{}",
            r.stdout
        );
        assert_eq!(fs::read_to_string(&secret).unwrap(), "hush\n");
        // `exec -u` follows the same rule.
        let mut a: Vec<OsString> = ["run", "-d", "--name", "den", "-v", &bind]
            .map(OsString::from)
            .to_vec();
        a.push(busybox_tarball().into_os_string());
        a.extend(["sleep", "1000"].map(OsString::from));
        env.run(a).ok();
        let r = env.run(["exec", "-u", "1000", "den", "cat", "/private/secret"]);
        assert_ne!(r.code, 0, "{:?}: {}", env.who, r.stdout);
        let r = env.run([
            "exec",
            "-u",
            "1000:1000",
            "den",
            "grep",
            "Cap",
            "/proc/self/status",
        ]);
        r.ok();
        for key in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
            assert_eq!(
                status_field(&r.stdout, key),
                hex(CapSet::EMPTY),
                "{:?} {key}",
                env.who
            );
        }
        assert_eq!(
            status_field(&r.stdout, "CapBnd"),
            hex(CapSet::podman_default())
        );
        env.run(["rm", "-f", "den"]).ok();
    }
}

#[test]
fn no_new_privs_follows_the_plan() {
    // On by default (as bubblewrap does; podman's default is off): setuid binaries in the
    // image cannot raise privileges unless the spec or the flag turns it off.
    for env in envs() {
        let r = boxed(&env, &[], &["cat", "/proc/self/status"]);
        r.ok();
        assert_eq!(status_field(&r.stdout, "NoNewPrivs"), "1");
        let r = boxed(
            &env,
            &["--security-opt", "no-new-privileges=false"],
            &["cat", "/proc/self/status"],
        );
        r.ok();
        assert_eq!(status_field(&r.stdout, "NoNewPrivs"), "0");
    }
}

#[test]
fn masked_and_read_only_paths() {
    for env in envs() {
        // Masked files read as empty (a /dev/null bind), masked dirs are empty and read-only.
        let r = sh(
            &env,
            &[],
            "for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/interrupts; do \
               [ -e $f ] && printf '%s %s\\n' $f $(wc -c < $f); done; \
             ls -A /proc/acpi /sys/firmware | grep -v : | grep . ; \
             touch /sys/firmware/x 2>/dev/null && echo WROTE-FIRMWARE; \
             echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo WROTE-PROC-SYS; \
             echo h > /proc/sysrq-trigger 2>/dev/null && echo WROTE-SYSRQ; \
             touch /sys/x 2>/dev/null && echo WROTE-SYS; \
             grep -E ' /proc/(sys|irq|bus|fs) ' /proc/self/mountinfo | grep -vc ' ro,'",
        );
        assert!(!r.stdout.contains("WROTE"), "{:?}: {}", env.who, r.stdout);
        for line in r.stdout.lines().filter(|l| l.starts_with("/proc/")) {
            assert!(
                line.ends_with(" 0"),
                "{:?}: masked file has content: {line}",
                env.who
            );
        }
        assert!(
            r.stdout.lines().any(|l| l.starts_with("/proc/keys")),
            "{}",
            r.stdout
        );
        assert_eq!(r.stdout.lines().last(), Some("0"), "{}", r.stdout);
    }
}

#[test]
fn dev_holds_exactly_the_listed_entries() {
    for env in envs() {
        let r = sh(&env, &[], "ls -A /dev; echo --; ls -A /dev/pts; for l in ptmx fd stdin; do readlink /dev/$l; done; echo x > /dev/null && head -c 4 /dev/zero | wc -c; echo y > /dev/full || echo FULL");
        r.ok();
        let (dev, rest) = r.stdout.split_once("--\n").unwrap();
        let names: Vec<&str> = dev.lines().collect();
        assert_eq!(
            names,
            [
                "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
                "tty", "urandom", "zero"
            ],
            "{:?}",
            env.who
        );
        let rest: Vec<&str> = rest.lines().collect();
        assert_eq!(
            rest,
            [
                "ptmx",
                "pts/ptmx",
                "/proc/self/fd",
                "/proc/self/fd/0",
                "4",
                "FULL"
            ],
            "{:?}",
            env.who
        );
    }
}

/// Mode, owner and (with `ctime`) ctime of each of the host's nodes a box's /dev holds.
fn host_nodes(ctime: bool) -> Vec<(&'static str, u32, u32, u32, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    ["null", "zero", "full", "random", "urandom", "tty"]
        .into_iter()
        .map(|n| {
            let m = fs::metadata(format!("/dev/{n}")).unwrap();
            let (s, ns) = if ctime {
                (m.ctime(), m.ctime_nsec())
            } else {
                (0, 0)
            };
            (n, m.mode(), m.uid(), m.gid(), s, ns)
        })
        .collect()
}

/// With root's identity map a box's root would own bound host nodes: its chmod, chown or touch
/// must reach only nodes of its own.
#[test]
fn the_box_cannot_change_the_hosts_device_nodes() {
    for env in envs() {
        // A touch of a 0666 node is every host user's right (and a rootless box's); only a
        // root-run box must leave even the ctime alone.
        let ctime = env.who == Who::Root;
        let before = host_nodes(ctime);
        // First what cannot harm the host even where the nodes are its own: each node's own
        // mode and owner again, and a touch; only its ctime would show it.
        let r = sh(
            &env,
            &[],
            "for n in null zero full random urandom tty; do \
               chmod $(stat -c %a /dev/$n) /dev/$n; chown $(stat -c %u:%g /dev/$n) /dev/$n; \
               touch /dev/$n; done 2>/dev/null; \
             echo x > /dev/null && head -c 4 /dev/zero | wc -c; echo y > /dev/full || echo FULL; \
             head -c 4 /dev/urandom | wc -c; head -c 4 /dev/random | wc -c",
        );
        r.ok();
        assert_eq!(r.stdout, "4\nFULL\n4\n4\n", "{:?}", env.who);
        assert_eq!(
            host_nodes(ctime),
            before,
            "{:?}: the box changed the host's nodes",
            env.who
        );
        // Now they are known to be the box's own (or out of its reach): a real change.
        let r = sh(
            &env,
            &[],
            "chmod 0600 /dev/null /dev/zero; chown 1:1 /dev/null 2>/dev/null; \
             stat -c '%a %u' /dev/null; echo x > /dev/null && head -c 2 /dev/zero | wc -c",
        );
        r.ok();
        if env.who == Who::Root {
            assert_eq!(r.stdout, "600 1\n2\n", "the box's root owns its nodes");
        }
        assert_eq!(
            host_nodes(ctime),
            before,
            "{:?}: the box changed the host's nodes",
            env.who
        );
    }
}

#[test]
fn no_descriptors_beyond_stdio() {
    for env in envs() {
        for flags in [&[][..], &["--init"][..]] {
            // Not the last command: busybox sh would exec it in place of itself.
            let r = sh(&env, flags, "ls /proc/$$/fd; exit 0");
            r.ok();
            assert_eq!(r.stdout, "0\n1\n2\n", "{:?} {flags:?}", env.who);
        }
    }
}

#[test]
fn cwd_is_inside_the_new_root() {
    for env in envs() {
        let r = sh(
            &env,
            &[],
            "pwd; readlink /proc/self/cwd; readlink /proc/1/root",
        );
        r.ok();
        assert_eq!(r.stdout, "/\n/\n/\n", "{:?}", env.who);
        let r = sh(&env, &["-w", "/usr/bin"], "pwd; readlink /proc/self/cwd");
        r.ok();
        assert_eq!(r.stdout, "/usr/bin\n/usr/bin\n");
    }
}

/// A missing working directory is made, with its missing parents, owned by the box's user (as
/// podman does); `exec -w` into a missing one is refused, as podman's exec refuses it.
#[test]
fn a_missing_workdir_is_made_for_the_user() {
    for env in common::envs_with_busybox() {
        let r = sh(
            &env,
            &["-w", "/new/dir"],
            "pwd; stat -c '%u:%g %A' /new/dir /new",
        );
        r.ok();
        assert_eq!(
            r.stdout, "/new/dir\n0:0 drwxr-xr-x\n0:0 drwxr-xr-x\n",
            "{:?}",
            env.who
        );
        let r = sh(
            &env,
            &["-u", "1000:1000", "-w", "/work/here"],
            "pwd; stat -c '%u:%g' /work/here /work; touch f && echo writable",
        );
        r.ok();
        assert_eq!(
            r.stdout, "/work/here\n1000:1000\n1000:1000\nwritable\n",
            "{:?}",
            env.who
        );
        // Inside a bind mount too, on the host's side.
        let host = env.work().join("bound");
        fs::create_dir_all(&host).unwrap();
        let (uid, gid) = env.ids();
        std::os::unix::fs::chown(&host, Some(uid), Some(gid)).unwrap();
        let bind = format!("{}:/b", host.display());
        sh(&env, &["-v", &bind, "-w", "/b/sub"], "true").ok();
        assert!(host.join("sub").is_dir(), "{:?}", env.who);
        // A path through a file is still an error of the workdir steps.
        let r = sh(&env, &["-w", "/etc/passwd/x"], "true");
        r.assert_code(125);
        assert!(r.stderr.contains("/etc/passwd/x"), "{}", r.stderr);
        env.run(["run", "-d", "--name", "wd", "busybox", "sleep", "1000"])
            .ok();
        let r = env.run(["exec", "-w", "/not/here", "wd", "true"]);
        r.assert_code(125);
        assert!(r.stderr.contains("/not/here"), "{}", r.stderr);
        env.run(["exec", "wd", "test", "!", "-e", "/not"]).ok();
        env.run(["rm", "-f", "wd"]).ok();
    }
}

#[test]
fn nothing_of_the_host_filesystem_is_reachable() {
    for env in envs() {
        let canary = env.write("canary-7f3e91", "host secret");
        let host_path = canary.to_string_lossy().to_string();
        let r = sh(
            &env,
            &[],
            &format!(
                "cat {host_path} 2>/dev/null && echo SEEN; \
                 ls /proc/1/root/ | tr '\\n' ' '; echo; \
                 find / -xdev -name canary-7f3e91 2>/dev/null; \
                 cd /..; pwd"
            ),
        );
        r.ok();
        assert!(!r.stdout.contains("SEEN"), "{:?}: {}", env.who, r.stdout);
        assert!(!r.stdout.contains("canary"), "{:?}: {}", env.who, r.stdout);
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert!(
            lines[0].contains("bin") && lines[0].contains("etc"),
            "{}",
            r.stdout
        );
        assert!(
            !lines[0].contains("work") && !lines[0].contains("boot"),
            "{}",
            r.stdout
        );
        assert_eq!(lines[1], "/");
        // No mount from the host but the ones the box is made of.
        let r = boxed(&env, &[], &["cat", "/proc/self/mountinfo"]);
        r.ok();
        for l in r.stdout.lines() {
            let mp = l.split_whitespace().nth(4).unwrap();
            assert!(
                ["/", "/proc", "/dev", "/sys", "/etc"]
                    .iter()
                    .any(|p| mp == *p || mp.starts_with(&format!("{p}/"))),
                "{:?}: unexpected mount {l}",
                env.who
            );
        }
    }
}

#[test]
fn read_only_root_keeps_tmp_run_and_shm_writable() {
    for env in envs() {
        let r = sh(
            &env,
            &["--read-only"],
            "touch /etc/x 2>/dev/null && echo ROOT-WRITABLE; \
             touch /tmp/a /var/tmp/a /run/a /dev/shm/a && echo ok",
        );
        r.ok();
        assert_eq!(r.stdout, "ok\n", "{:?}", env.who);
    }
}

fn image_layers(env: &Env) -> Vec<std::path::PathBuf> {
    fs::read_dir(env.store().join("images/layers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().len() == 64)
        .collect()
}

#[test]
fn rootfs_changes_never_reach_the_image() {
    for env in envs() {
        let r = sh(
            &env,
            &[],
            "echo changed > /etc/foxbox-image && rm /bin/ls && touch /new-file && echo done",
        );
        r.ok();
        assert_eq!(r.stdout, "done\n");
        let layers = image_layers(&env);
        assert_eq!(layers.len(), 1, "{layers:?}");
        let l = &layers[0];
        assert_eq!(
            fs::read_to_string(l.join("etc/foxbox-image")).unwrap(),
            "busybox\n"
        );
        assert!(fs::symlink_metadata(l.join("bin/ls")).is_ok());
        assert!(!l.join("new-file").exists());
        let r = sh(
            &env,
            &[],
            "cat /etc/foxbox-image; ls /new-file 2>&1 >/dev/null | wc -l; ls /bin/ls",
        );
        r.ok();
        assert_eq!(r.stdout, "busybox\n1\n/bin/ls\n");
    }
}

#[test]
fn plan_mounts_bind_and_tmpfs() {
    for env in envs() {
        let dir = env.work().join("shared");
        fs::create_dir_all(&dir).unwrap();
        env.write("shared/in.txt", "from host");
        let d = dir.to_string_lossy().to_string();
        let r = sh(
            &env,
            &[
                "-v",
                &format!("{d}:/data"),
                "-v",
                &format!("{d}:/ro:ro"),
                "--tmpfs",
                "/scratch",
            ],
            "cat /data/in.txt; echo; echo out > /data/out.txt; \
             touch /ro/x 2>/dev/null && echo RO-WRITABLE; \
             touch /scratch/s && grep ' /scratch ' /proc/self/mountinfo | grep -c tmpfs",
        );
        r.ok();
        assert_eq!(r.stdout, "from host\n1\n", "{:?}", env.who);
        assert_eq!(fs::read_to_string(dir.join("out.txt")).unwrap(), "out\n");
    }
}

#[test]
fn named_volumes_outlive_the_box() {
    for env in envs() {
        sh(&env, &["-v", "den:/den"], "echo kept > /den/f").ok();
        let r = sh(
            &env,
            &["-v", "den:/data:ro"],
            "cat /data/f; touch /data/g 2>/dev/null || echo ro",
        );
        r.ok();
        assert_eq!(r.stdout, "kept\nro\n", "{:?}", env.who);
        let r = env.run(["volume", "ls", "--format", "json"]);
        r.ok();
        assert!(r.stdout.contains("\"den\""), "{}", r.stdout);
    }
}

/// The generated /etc files lie over the image's /etc (its own files stay beside them), the box
/// may change them, and a file the user binds over one of them wins over foxbox's.
#[test]
fn generated_etc_files_lie_over_the_image_and_yield_to_a_users_bind() {
    for env in envs() {
        let mine = env.write("my-hosts", "10.9.9.9\tmine\n");
        let bind = format!("{}:/etc/hosts:ro", mine.display());
        let r = sh(
            &env,
            &["--hostname", "den", "-v", &bind],
            "cat /etc/hosts; head -1 /etc/passwd; cat /etc/hostname; \
             echo 'search here' >> /etc/resolv.conf && tail -1 /etc/resolv.conf",
        );
        r.ok();
        assert_eq!(
            r.stdout, "10.9.9.9\tmine\nroot:x:0:0:root:/root:/bin/sh\nden\nsearch here\n",
            "{:?}",
            env.who
        );
    }
}

/// An image whose /etc is a symlink keeps it: the generated files are bound over the files it
/// leads to instead of hiding it under a directory of three.
#[test]
fn an_image_whose_etc_is_a_symlink_keeps_its_files() {
    for env in envs() {
        let tree = env.work().join("etc-link");
        fs::create_dir_all(&tree).unwrap();
        let untar = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(busybox_tarball())
            .arg("-C")
            .arg(&tree)
            .status()
            .unwrap();
        assert!(untar.success());
        fs::create_dir_all(tree.join("usr")).unwrap();
        fs::rename(tree.join("etc"), tree.join("usr/etc")).unwrap();
        std::os::unix::fs::symlink("usr/etc", tree.join("etc")).unwrap();
        let tarball = env.work().join("etc-link.tar");
        let pack = std::process::Command::new("tar")
            .arg("-cf")
            .arg(&tarball)
            .arg("-C")
            .arg(&tree)
            .arg(".")
            .status()
            .unwrap();
        assert!(pack.success());
        fs::set_permissions(
            &tarball,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let r = env.run([
            OsString::from("--log-level"),
            "error".into(),
            "run".into(),
            "--hostname".into(),
            "den".into(),
            tarball.into_os_string(),
            "/bin/sh".into(),
            "-c".into(),
            "readlink /etc; head -1 /etc/passwd; cat /usr/etc/hostname; grep -c den /etc/hosts"
                .into(),
        ]);
        r.ok();
        assert_eq!(
            r.stdout, "usr/etc\nroot:x:0:0:root:/root:/bin/sh\nden\n1\n",
            "{:?}",
            env.who
        );
    }
}

/// The fox starts with no signal ignored or blocked, whatever foxbox's caller ignored (a
/// shell's `trap ''`) and foxbox itself ignores or blocks while relaying.
#[test]
fn the_fox_inherits_no_ignored_or_blocked_signals() {
    for env in envs() {
        let script = format!(
            "trap '' HUP INT PIPE; exec {} --log-level error run {} grep -E '^Sig(Ign|Blk)' /proc/self/status",
            common::foxbox_bin().display(),
            busybox_tarball().display()
        );
        let out = env
            .command("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run sh");
        let r = common::Run::from(out);
        r.ok();
        assert_eq!(
            r.stdout, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
            "{:?}",
            env.who
        );
    }
}

/// `--network none` (the default): the box's own network namespace, owned by its user
/// namespace, holding only `lo`, up and usable. The namespace is made beside the set-up steps
/// (sys::netns), so this also checks that it is the one the fox ends up in.
#[test]
fn network_none_is_a_namespace_of_its_own_with_lo_up() {
    let host_ns = fs::read_link("/proc/self/ns/net").unwrap();
    for env in envs() {
        let r = sh(
            &env,
            &[],
            "readlink /proc/self/ns/net; ls /sys/class/net; cat /sys/class/net/lo/operstate; \
             grep -c : /proc/net/dev",
        );
        r.ok();
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_ne!(
            lines[0],
            host_ns.to_str().unwrap(),
            "{:?}: the host's",
            env.who
        );
        // operstate of lo reads "unknown" when up, "down" otherwise.
        assert_eq!(&lines[1..], ["lo", "unknown", "1"], "{:?}", env.who);
        // lo carries traffic: a listener and a client in the box, over 127.0.0.1.
        let r = sh(
            &env,
            &[],
            // A fresh listener each try: on a loaded machine one attempt can lose its data.
            "for i in $(seq 50); do nc -l -p 7001 > /tmp/got & l=$!; sleep 0.1; \
             echo fox | nc 127.0.0.1 7001 2>/dev/null; sleep 0.1; kill $l 2>/dev/null; \
             wait $l; [ \"$(cat /tmp/got)\" = fox ] && break; done; cat /tmp/got",
        );
        r.ok();
        assert_eq!(r.stdout.trim(), "fox", "{:?}", env.who);
        // Its owner is the box's user namespace: the box's root, given CAP_NET_ADMIN, may
        // change it (in a namespace another user namespace owned this is EPERM).
        let r = sh(
            &env,
            &["--cap-add", "NET_ADMIN"],
            "ip link set lo down && cat /sys/class/net/lo/operstate",
        );
        r.ok();
        assert_eq!(r.stdout.trim(), "down", "{:?}", env.who);
        // And no other box shares it: compared while both exist (the kernel reuses a freed
        // namespace's inode number, so two boxes one after the other may show the same).
        boxed(&env, &["-d", "--name", "ns-a"], &["sleep", "60"]).ok();
        let a = env.run(["exec", "ns-a", "readlink", "/proc/self/ns/net"]);
        a.ok();
        let b = sh(&env, &[], "readlink /proc/self/ns/net");
        env.run(["rm", "-f", "ns-a"]).ok();
        assert_ne!(a.stdout, b.stdout, "{:?}", env.who);
    }
}

/// A profile of our own: everything allowed but making device nodes.
const NO_MKNOD: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["mknod", "mknodat"], "action": "SCMP_ACT_ERRNO"}]}"#;

/// `foxbox exec` runs through the box's own process steps: the exec'd process's credentials,
/// capability sets, no_new_privs and seccomp mode are exactly those of the box's pid 1, for a
/// box with a narrowed capability set, one with a non-root user and added capabilities, and
/// both with a custom seccomp profile (installed before and after the user change).
#[test]
fn exec_gets_exactly_the_credentials_and_confinement_of_the_box() {
    const KEYS: &[&str] = &[
        "Uid",
        "Gid",
        "Groups",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
        "Seccomp_filters",
    ];
    let set = |names: &[&str]| {
        let mut s = CapSet::EMPTY;
        for n in names {
            s.insert(caps::parse(n).unwrap());
        }
        hex(s)
    };
    let narrow = set(&["KILL", "NET_RAW", "SETUID", "SETGID"]);
    let net_raw = set(&["NET_RAW"]);
    let none = set(&[]);
    for env in common::envs_with_busybox() {
        let profile = env.write("no-mknod.json", NO_MKNOD);
        let seccomp = format!("seccomp={}", profile.display());
        let cases: [(&str, Vec<&str>, &str, &String); 3] = [
            (
                "narrow",
                vec![
                    "--cap-drop",
                    "ALL",
                    "--cap-add",
                    "KILL,NET_RAW,SETUID,SETGID",
                ],
                "0",
                &narrow,
            ),
            (
                "fox",
                vec![
                    "-u",
                    "fox",
                    "--cap-add",
                    "NET_RAW",
                    "--security-opt",
                    &seccomp,
                    "--security-opt",
                    "no-new-privileges=false",
                ],
                "1000",
                &net_raw,
            ),
            (
                "fox-nnp",
                vec!["-u", "1000:1000", "--security-opt", &seccomp],
                "1000",
                &none,
            ),
        ];
        for (name, flags, uid, eff) in cases {
            let mut a = vec!["run", "-d", "--name", name];
            a.extend(flags.iter().copied());
            a.extend(["busybox", "sleep", "1000"]);
            env.run(&a).ok();
            let r = env.run([
                "exec",
                name,
                "sh",
                "-c",
                "cat /proc/self/status; echo ---; cat /proc/1/status",
            ]);
            r.ok();
            let (ours, box1) = r.stdout.split_once("---\n").expect("two status files");
            for key in KEYS {
                assert_eq!(
                    status_field(ours, key),
                    status_field(box1, key),
                    "{:?} {name}: {key}",
                    env.who
                );
            }
            // Not equal by being empty: the box's own values are the ones asked for.
            let id = status_field(box1, "Uid");
            assert!(id.starts_with(&format!("{uid}\t")), "{name}: Uid {id}");
            assert_eq!(&status_field(box1, "CapEff"), eff, "{:?} {name}", env.who);
            assert_eq!(status_field(box1, "Seccomp"), "2", "{name}");
            let mknod = env.run(["exec", name, "mknod", "/tmp/p", "p"]);
            if name != "narrow" {
                assert_ne!(
                    mknod.code, 0,
                    "{:?} {name}: mknod under the profile",
                    env.who
                );
            }
        }
        // With an added capability a non-root user gets it, and nothing else but the bounding set.
        let fox = env.run(["exec", "fox", "grep", "CapAmb", "/proc/self/status"]);
        fox.ok();
        assert!(
            fox.stdout.ends_with(&format!("{net_raw}\n")),
            "{}",
            fox.stdout
        );
        env.run(["rm", "-f", "narrow", "fox", "fox-nnp"]).ok();
    }
}

/// A process `foxbox exec` forks into a box runs the caller's program until it execs, and box
/// processes see it: /proc would show them the caller's command line with its `-e` values.
/// Held in its user step here (the box's /etc/passwd is a FIFO), it shows a title only. (Its
/// environment and memory are closed to them already: until its capabilities step it holds
/// every capability of the box's user namespace, more than any box process.)
#[test]
fn a_process_joining_a_box_shows_nothing_of_the_caller() {
    const SPY: &str = "rm /etc/passwd; mkfifo /etc/passwd; echo ready; \
        while [ -z \"$pid\" ]; do \
          for p in /proc/[0-9]*; do \
            case \"$(cat $p/comm 2>/dev/null)\" in foxbox*) pid=${p#/proc/};; esac; \
          done; sleep 0.05; \
        done; \
        sleep 1; \
        echo cmdline: $(tr '\\0' ' ' < /proc/$pid/cmdline); \
        echo comm: $(cat /proc/$pid/comm); \
        echo 'fox:x:1000:1000::/:/bin/sh' > /etc/passwd; echo done; sleep 1000";
    for env in common::envs_with_busybox() {
        env.run(["run", "-d", "--name", "spy", "busybox", "sh", "-c", SPY])
            .ok();
        common::eventually("the spy to be ready", || {
            env.run(["logs", "spy"]).stdout.contains("ready")
        });
        let out = env
            .foxbox([
                "exec",
                "-e",
                "API_TOKEN=hush-4711",
                "-u",
                "fox",
                "spy",
                "true",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{:?}: {out:?}", env.who);
        common::eventually("the spy to be done", || {
            env.run(["logs", "spy"]).stdout.contains("done")
        });
        let seen = env.run(["logs", "spy"]).stdout;
        for leak in ["hush-4711", "API_TOKEN", "spy true"] {
            assert!(!seen.contains(leak), "{:?}: {leak} in {seen}", env.who);
        }
        assert!(
            seen.contains("cmdline: foxbox-exec\n"),
            "{:?}: {seen}",
            env.who
        );
        assert!(
            seen.contains("comm: foxbox-exec\n"),
            "{:?}: {seen}",
            env.who
        );
        env.run(["rm", "-f", "spy"]).ok();
    }
}
