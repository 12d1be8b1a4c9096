//! Habits a podman user brings, through the binary as root and as the unprivileged user:
//! `--env-file`, `--entrypoint`, `-v ...:z`, real-time signals for `kill`, podman's `ps
//! --format json` names and Go-template `--format` for `ps`, `image ls` and `inspect`, `-p`
//! without `--network`, with no host port and with ranges (loopback only).

mod common;

use common::{envs_with_busybox as envs, eventually, Env};

fn detach(env: &Env, flags: &[&str], cmd: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend(flags);
    a.push("busybox");
    a.extend(cmd);
    let r = env.run(&a);
    r.ok();
    r.stdout.trim().to_string()
}

#[test]
fn env_file_and_entrypoint() {
    for env in envs() {
        let f = env.write(
            "vars.env",
            "# a comment\n\nFROM_FILE=one two\nBOTH=file\nCOPIED\n",
        );
        let f = f.to_str().unwrap();
        let r = env
            .foxbox(["run", "--rm", "--env-file", f, "-e", "BOTH=flag", "busybox"])
            .args(["sh", "-c", "echo \"$FROM_FILE|$BOTH|$COPIED\""])
            .env("COPIED", "from-caller")
            .output()
            .unwrap();
        let r = common::Run::from(r);
        r.ok();
        assert_eq!(r.stdout, "one two|flag|from-caller\n");

        let bad = env.write("bad.env", "A=1\n=2\n");
        let r = env.run([
            "run",
            "--rm",
            "--env-file",
            bad.to_str().unwrap(),
            "busybox",
            "true",
        ]);
        r.assert_code(125);
        assert!(r.stderr.contains("bad.env:2"), "{}", r.stderr);
        let r = env.run([
            "run",
            "--rm",
            "--env-file",
            "/nonexistent.env",
            "busybox",
            "true",
        ]);
        r.assert_code(125);
        assert!(r.stderr.contains("/nonexistent.env"), "{}", r.stderr);

        let r = env.run([
            "run",
            "--rm",
            "--entrypoint",
            "/bin/echo",
            "busybox",
            "a",
            "b",
        ]);
        r.ok();
        assert_eq!(r.stdout, "a b\n");
        let r = env.run([
            "run",
            "--rm",
            "--entrypoint",
            r#"["/bin/sh","-c"]"#,
            "busybox",
            "echo $((6*7))",
        ]);
        r.ok();
        assert_eq!(r.stdout, "42\n");
    }
}

#[test]
fn selinux_volume_options_are_accepted_and_the_unsupported_ones_say_what_to_do() {
    for env in envs() {
        let src = env.write("vol/f", "hello\n");
        let dir = src.parent().unwrap().to_str().unwrap().to_string();
        let r = env.run([
            "--log-level",
            "debug",
            "run",
            "--rm",
            "-v",
            &format!("{dir}:/v:ro,z"),
            "busybox",
            "cat",
            "/v/f",
        ]);
        r.ok();
        assert_eq!(r.stdout, "hello\n");
        assert!(r.stderr.contains("SELinux"), "{}", r.stderr);
        for (opts, says) in [("O,ro", "does not go with `readonly`"), ("nope", "`U`")] {
            let r = env.run([
                "run",
                "--rm",
                "-v",
                &format!("{dir}:/v:{opts}"),
                "busybox",
                "true",
            ]);
            r.assert_code(125);
            assert!(r.stderr.contains(says), "{opts}: {}", r.stderr);
        }
    }
}

/// The host uid and gid box id `id` is stored as in a default box of `env`'s user.
fn host_id(env: &Env, id: u32) -> u32 {
    if env.who == common::Who::Root {
        return id;
    }
    let sub = std::fs::read_to_string("/etc/subuid").unwrap();
    let start: u32 = sub
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{}:", common::TEST_USER)))
        .and_then(|r| r.split(':').next())
        .and_then(|s| s.parse().ok())
        .expect("the test user's subordinate range");
    start + id - 1
}

fn owner(p: &std::path::Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn userns_keep_id_keeps_the_callers_ids() {
    for env in envs() {
        let (uid, gid) = env.ids();
        let dir = env.write("kept/.keep", "");
        let dir = dir.parent().unwrap();
        // Writable for box uid 200 too, which as root is host uid 200.
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let vol = format!("{}:/kept", dir.display());
        // The caller's own ids, its name from a passwd entry added as podman adds it, the
        // image's files still root's, and what the box writes to a bind mount the caller's.
        let r = env.run([
            "run",
            "--rm",
            "--userns=keep-id",
            "-v",
            &vol,
            "-w",
            "/kept",
            "busybox",
            "sh",
            "-c",
            "id -u; id -g; id -un; ls -ln /bin/busybox | awk '{print $3}'; echo $HOME; touch made",
        ]);
        r.ok();
        let name = if env.who == common::Who::Root {
            "root"
        } else {
            common::TEST_USER
        };
        let home = if env.who == common::Who::Root {
            "/root"
        } else {
            "/kept"
        };
        assert_eq!(r.stdout, format!("{uid}\n{gid}\n{name}\n0\n{home}\n"));
        assert_eq!(owner(&dir.join("made")), (uid, gid));

        // keep-id:uid=,gid=: the caller is those ids in the box (rootless: still the caller
        // on the host; root: the identity map, so the ids themselves).
        let r = env.run([
            "run",
            "--rm",
            "--userns=keep-id:uid=200,gid=210",
            "-v",
            &vol,
            "busybox",
            "sh",
            "-c",
            "id -u; id -g; touch /kept/made2",
        ]);
        r.ok();
        assert_eq!(r.stdout, "200\n210\n");
        let want = if env.who == common::Who::Root {
            (200, 210)
        } else {
            (uid, gid)
        };
        assert_eq!(owner(&dir.join("made2")), want);

        // -u wins over keep-id's user; exec runs as the box's user.
        let r = env.run([
            "run",
            "--rm",
            "--userns=keep-id",
            "-u",
            "0",
            "busybox",
            "id",
            "-u",
        ]);
        r.ok();
        assert_eq!(r.stdout, "0\n");
        detach(
            &env,
            &["--name", "kept", "--userns=keep-id"],
            &["sleep", "30"],
        );
        let r = env.run(["exec", "kept", "id", "-u"]);
        r.ok();
        assert_eq!(r.stdout, format!("{uid}\n"));
        env.run(["rm", "-f", "kept"]).ok();
        assert!(
            env.store_leftovers().is_empty(),
            "{:?}",
            env.store_leftovers()
        );

        // The spec's key is the same mode.
        let spec = env.write(
            "keep.toml",
            "[box]\nimage = \"busybox\"\ncommand = [\"id\", \"-u\"]\n\
             [security]\nuserns = \"keep-id\"\n",
        );
        let r = env.run(["plan".as_ref(), spec.as_os_str()]);
        r.ok();
        assert!(r.stdout.contains("keep-id"), "{}", r.stdout);
        let r = env.run(["up".as_ref(), spec.as_os_str()]);
        r.ok();
        assert_eq!(r.stdout, format!("{uid}\n"));

        let r = env.run(["run", "--rm", "--userns=auto", "busybox", "true"]);
        r.assert_code(125);
        assert!(
            r.stderr.contains("foxbox::habits::bad_userns") && r.stderr.contains("keep-id"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn volume_u_chowns_the_source_to_the_box_user() {
    for env in envs() {
        let f = env.write("owned/sub/f", "x");
        let dir = f.parent().unwrap().parent().unwrap().to_path_buf();
        let r = env.run([
            "run",
            "--rm",
            "-u",
            "1000:1000",
            "-v",
            &format!("{}:/u:U", dir.display()),
            "busybox",
            "sh",
            "-c",
            "ls -lnd /u/sub/f | awk '{print $3\":\"$4}'; echo more > /u/sub/f",
        ]);
        r.ok();
        assert_eq!(r.stdout, "1000:1000\n");
        let host = host_id(&env, 1000);
        for p in [dir.clone(), dir.join("sub"), f.clone()] {
            assert_eq!(owner(&p), (host, host), "{}", p.display());
        }
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "more\n");

        // Read-only: chowned first, then read-only.
        let ro = env.write("owned-ro/f", "x");
        let ro_dir = ro.parent().unwrap();
        let r = env.run([
            "run",
            "--rm",
            "-u",
            "1000:1000",
            "-v",
            &format!("{}:/u:ro,U", ro_dir.display()),
            "busybox",
            "sh",
            "-c",
            "echo no > /u/f",
        ]);
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("Read-only"), "{}", r.stderr);
        assert_eq!(owner(&ro), (host, host));

        // Under keep-id the box user is the caller: `U` gives the files back to the caller.
        let r = env.run([
            "run",
            "--rm",
            "--userns=keep-id",
            "-v",
            &format!("{}:/u:U", dir.display()),
            "busybox",
            "true",
        ]);
        r.ok();
        assert_eq!(owner(&f), env.ids());
    }
}

#[test]
fn volume_o_keeps_the_boxs_writes_in_the_box() {
    for env in envs() {
        let f = env.write("lower/f", "orig\n");
        let dir = f.parent().unwrap().to_path_buf();
        let vol = format!("{}:/o:O", dir.display());
        let r = env.run([
            "run",
            "--rm",
            "-v",
            &vol,
            "busybox",
            "sh",
            "-c",
            "echo new > /o/f; echo g > /o/g; rm -f /o/nothing; cat /o/f /o/g",
        ]);
        r.ok();
        assert_eq!(r.stdout, "new\ng\n");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "orig\n");
        assert!(!dir.join("g").exists());
        // The overlay's root is the source's (its owner and mode): the caller, as its own
        // box user under keep-id, writes at its top as in the source itself.
        let r = env.run([
            "run",
            "--rm",
            "--userns=keep-id",
            "-v",
            &vol,
            "busybox",
            "sh",
            "-c",
            "touch /o/mine && ls /o",
        ]);
        r.ok();
        assert_eq!(r.stdout, "f\nmine\n");
        assert!(!dir.join("mine").exists());

        // A detached box: the host never sees its writes, and its removal leaves nothing.
        detach(
            &env,
            &["--name", "ov", "-v", &vol],
            &["sh", "-c", "echo w > /o/f; touch /o/h; sleep 30"],
        );
        let r = env.run(["exec", "ov", "cat", "/o/f"]);
        r.ok();
        eventually("the box's write", || {
            env.run(["exec", "ov", "cat", "/o/f"]).stdout == "w\n"
        });
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "orig\n");
        assert!(!dir.join("h").exists());
        env.run(["rm", "-f", "ov"]).ok();
        assert!(
            env.store_leftovers().is_empty(),
            "{:?}",
            env.store_leftovers()
        );
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["f"]);

        let r = env.run([
            "run",
            "--rm",
            "-v",
            &format!("{}:/o:O", f.display()),
            "busybox",
            "true",
        ]);
        r.assert_code(125);
        assert!(r.stderr.contains("needs a directory"), "{}", r.stderr);
    }
}

#[test]
fn kill_sends_real_time_signals() {
    for env in envs() {
        // SIGRTMIN is 34 on Linux with glibc, as podman (Go) numbers it.
        detach(
            &env,
            &["--name", "rt"],
            &[
                "sh",
                "-c",
                "trap 'echo got35; exit 7' 35; echo ready; while :; do sleep 0.05; done",
            ],
        );
        eventually("the trap to be set", || {
            env.run(["logs", "rt"]).stdout == "ready\n"
        });
        env.run(["kill", "-s", "SIGRTMIN+1", "rt"]).ok();
        let w = env.run(["wait", "rt"]);
        w.ok();
        assert_eq!(w.stdout.trim(), "7");
        assert_eq!(env.run(["logs", "rt"]).stdout, "ready\ngot35\n");
        let r = env.run(["kill", "-s", "SIGRTMIN+99", "rt"]);
        r.assert_code(125);
        assert!(r.stderr.contains("SIGRTMIN+1"), "{}", r.stderr);
        env.run(["rm", "rt"]).ok();
    }
}

#[test]
fn ps_images_and_inspect_take_podman_formats() {
    for env in envs() {
        let id = detach(&env, &["--name", "fmt"], &["sh", "-c", "exit 3"]);
        env.run(["wait", "fmt"]).ok();

        let r = env.run(["ps", "-a", "--format", "json"]);
        r.ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v[0]["Names"], serde_json::json!(["fmt"]));
        assert_eq!(v[0]["ExitCode"], 3);
        assert_eq!(v[0]["Exited"], true);

        let r = env.run(["ps", "-a", "--format", "{{.Names}} {{.ExitCode}} {{.ID}}"]);
        r.ok();
        assert_eq!(r.stdout, format!("fmt 3 {}\n", &id[..12]));
        let r = env.run(["ps", "-a", "--format", "table {{.Names}}\\t{{.State}}"]);
        r.ok();
        assert_eq!(r.stdout, "NAMES  STATE\nfmt    exited\n");

        for ls in [&["image", "ls"][..], &["images"]] {
            let mut a = ls.to_vec();
            a.extend(["--format", "{{.Repository}}:{{.Tag}}"]);
            let r = env.run(a);
            r.ok();
            assert_eq!(r.stdout, "busybox:latest\n");
        }

        let r = env.run([
            "inspect",
            "--format",
            "{{.State.ExitCode}} {{json .Name}}",
            "fmt",
        ]);
        r.ok();
        assert_eq!(r.stdout, "3 \"fmt\"\n");
        let r = env.run(["inspect", "--format", "{{.Nope}}", "fmt"]);
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("`.Nope`"), "{}", r.stderr);
        env.run(["rm", "fmt"]).ok();
    }
}

fn http_get(port: u16) -> Result<String, String> {
    use std::io::{Read, Write};
    let start = std::time::Instant::now();
    let mut last = String::new();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        let got = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
            s.write_all(b"GET /f HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match got {
            Ok(b) if b.starts_with("HTTP/1.") => return Ok(b),
            Ok(b) => last = format!("answer {b:?}"),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(last)
}

/// A range of `n` ports free on 127.0.0.1 now (bound once, then let go).
fn free_range(n: u16) -> u16 {
    'next: loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        if base > 65000 {
            continue;
        }
        let mut held = vec![first];
        for p in base + 1..base + n {
            match std::net::TcpListener::bind(("127.0.0.1", p)) {
                Ok(l) => held.push(l),
                Err(_) => continue 'next,
            }
        }
        return base;
    }
}

#[test]
fn publish_without_network_any_host_port_and_ranges() {
    for env in envs() {
        let base = free_range(2);
        let r = env.run([
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            "127.0.0.1::8080",
            "-p",
            &format!("127.0.0.1:{base}-{}:8081-8082", base + 1),
            "busybox",
            "sh",
            "-c",
            "mkdir /w && echo hi > /w/f && for p in 8080 8081 8082; do httpd -p $p -h /w; done; \
             sleep 600",
        ]);
        r.ok();
        assert!(
            r.stderr.contains("pasta"),
            "a note says pasta was chosen: {}",
            r.stderr
        );

        let p = env.run(["port", "web"]);
        p.ok();
        let lines: Vec<&str> = p.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{}", p.stdout);
        let any = lines[0]
            .strip_prefix("8080/tcp -> 127.0.0.1:")
            .unwrap_or_else(|| panic!("{}", p.stdout));
        let any: u16 = any.parse().unwrap();
        assert_ne!(any, 0);
        assert_eq!(lines[1], format!("8081/tcp -> 127.0.0.1:{base}"));
        assert_eq!(lines[2], format!("8082/tcp -> 127.0.0.1:{}", base + 1));
        assert_eq!(
            env.run(["port", "web", "8080"]).stdout.trim(),
            format!("127.0.0.1:{any}")
        );
        let ps = env.run(["ps"]);
        assert!(
            ps.stdout.contains(&format!("127.0.0.1:{any}->8080/tcp")),
            "{}",
            ps.stdout
        );

        for port in [any, base, base + 1] {
            let got = http_get(port).unwrap_or_else(|e| panic!("port {port}: {e}"));
            assert!(got.ends_with("hi\n"), "{got}");
        }
        env.run(["rm", "-f", "web"]).ok();

        let r = env.run(["run", "--rm", "-p", "8000-8010:80", "busybox", "true"]);
        r.assert_code(125);
        assert!(r.stderr.contains("the box range 1"), "{}", r.stderr);
    }
}

/// An unprivileged user's low host port is refused with the reason, not "stop what holds it".
#[test]
fn a_privileged_port_refusal_says_why() {
    for env in envs().into_iter().filter(|e| e.ids().0 != 0) {
        let r = env.run([
            "run",
            "--rm",
            "--network",
            "pasta",
            "-p",
            "127.0.0.1:80:80",
            "busybox",
            "true",
        ]);
        r.assert_code(125);
        assert!(
            r.stderr.contains("ip_unprivileged_port_start"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("stop what holds"), "{}", r.stderr);
    }
}

/// A uid beyond the box's ids names the ids it has; a bad timeout says what a good one is, and
/// podman's whole seconds work.
#[test]
fn messages_name_what_is_possible() {
    for env in envs() {
        if env.ids().0 != 0 {
            let r = env.run(["run", "--rm", "-u", "70000", "busybox", "true"]);
            r.assert_code(125);
            assert!(r.stderr.contains("uids are 0-"), "{}", r.stderr);
            assert!(r.stderr.contains("/etc/subuid"), "{}", r.stderr);
        }
        let r = env.run(["run", "--rm", "--timeout", "1.5", "busybox", "true"]);
        r.assert_code(125);
        assert!(r.stderr.contains("give seconds (`30`)"), "{}", r.stderr);
        let r = env.run([
            "run",
            "--rm",
            "--timeout",
            "1",
            "--stop-timeout",
            "0",
            "busybox",
            "sleep",
            "5",
        ]);
        assert_eq!(r.code, 137, "{r:?}");
    }
}

/// `--tmpfs` is noexec (and nosuid, nodev) unless `exec` is asked for, as podman's; a spec's
/// tmpfs is executable unless `exec = false`.
#[test]
fn tmpfs_flags_are_noexec_by_default() {
    for env in envs() {
        let script = "cp /bin/busybox /t/true && grep ' /t ' /proc/mounts && /t/true";
        let r = env.run([
            "run", "--rm", "--tmpfs", "/t", "busybox", "sh", "-c", script,
        ]);
        assert_eq!(r.code, 126, "{r:?}");
        let line = r.stdout.lines().next().unwrap_or("");
        for o in ["noexec", "nosuid", "nodev"] {
            assert!(line.contains(o), "{o}: {line}");
        }
        let r = env.run([
            "run", "--rm", "--tmpfs", "/t:exec", "busybox", "sh", "-c", script,
        ]);
        r.ok();
        assert!(!r.stdout.contains("noexec"), "{}", r.stdout);

        let spec = env.write(
            "tmpfs.toml",
            format!(
                "[box]\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"{script}\"]\n\
                 [[mounts]]\ntype = \"tmpfs\"\ntarget = \"/t\"\n"
            ),
        );
        let r = env.run(["up", "--rm", spec.to_str().unwrap()]);
        r.ok();
        let spec = env.write(
            "tmpfs-noexec.toml",
            format!(
                "[box]\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"{script}\"]\n\
                 [[mounts]]\ntype = \"tmpfs\"\ntarget = \"/t\"\nexec = false\n"
            ),
        );
        let r = env.run(["up", "--rm", spec.to_str().unwrap()]);
        assert_eq!(r.code, 126, "{r:?}");
    }
}

/// `top` shows podman's default columns, and the descriptors asked for.
#[test]
fn top_has_podmans_columns_and_descriptors() {
    for env in envs() {
        detach(&env, &["--name", "tp"], &["sh", "-c", "sleep 1000 & wait"]);
        eventually("the sleep to run", || {
            env.run(["top", "tp"]).stdout.contains("sleep 1000\n")
        });
        let r = env.run(["top", "tp"]);
        r.ok();
        let lines: Vec<Vec<&str>> = r
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"],
            "{}",
            r.stdout
        );
        assert_eq!(lines[1][..3], ["root", "1", "0"], "{}", r.stdout);
        assert_eq!(lines[1][5], "?", "no terminal: {}", r.stdout);
        assert!(lines[1][4].ends_with('s'), "{}", r.stdout);
        assert_eq!(lines[2][0], "root", "{}", r.stdout);
        assert_eq!(lines[2][2], "1", "sleep's parent is pid 1: {}", r.stdout);
        let sleep_pid = lines[2][1].to_string();
        assert_eq!(lines[2][7..], ["sleep", "1000"], "{}", r.stdout);

        let r = env.run(["top", "tp", "pid", "comm,hpid"]);
        r.ok();
        let lines: Vec<Vec<&str>> = r
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], ["PID", "COMMAND", "HPID"]);
        assert_eq!(lines[2][..2], [sleep_pid.as_str(), "sleep"]);
        assert_ne!(lines[2][2], sleep_pid, "the host's pid: {}", r.stdout);

        let r = env.run(["top", "tp", "bogus"]);
        r.assert_code(125);
        assert!(r.stderr.contains("pcpu"), "{}", r.stderr);
        env.run(["rm", "-f", "tp"]).ok();
    }
}
