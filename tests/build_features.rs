//! `foxbox build`'s cache mounts, `ADD` of local archives, `ARG` before `FROM`, `chown` by
//! name and the configuration of `merge`d images, through the built binary as root and as the
//! unprivileged user (with a subordinate id range).

mod common;

use common::{envs, Env, Who};

/// Build `recipe` written as `dir/file` (a Foxfile.toml or a Containerfile), with `extra` flags.
fn build(env: &Env, dir: &str, file: &str, recipe: &str, tag: &str, extra: &[&str]) -> common::Run {
    let path = env.write(&format!("{dir}/{file}"), recipe);
    let path = path.display().to_string();
    let mut args = vec!["build", "--progress", "plain", "-f", &path, "-t", tag];
    args.extend_from_slice(extra);
    args.push(dir);
    env.run(args)
}

/// What `sh -c script` prints in a box of `image`.
fn output(env: &Env, image: &str, script: &str) -> String {
    let r = env.run(["run", "--rm", image, "sh", "-c", script]);
    r.ok();
    r.stdout
}

const COUNTER: &str = r#"
[build]
from = "busybox"

[[build.steps]]
run = "n=$(cat /var/cache/fox/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /var/cache/fox/count; echo $n > /seen"
cache = ["/var/cache/fox"]

[[build.steps]]
run = "echo shared >> /c2/log; wc -l < /c2/log > /lines"
cache = [{ target = "/c2", id = "log", sharing = "locked" }]
"#;

#[test]
fn cache_mounts_persist_between_builds_and_stay_out_of_the_image() {
    for env in envs() {
        env.import_busybox();
        let b = build(&env, "a", "Foxfile.toml", COUNTER, "counter:1", &[]);
        b.ok();
        let seen = "cat /seen /lines; test -e /var/cache/fox && echo leaked; test -e /c2 && echo leaked2; true";
        assert_eq!(output(&env, "counter:1", seen), "1\n1\n", "{:?}", env.who);
        // Run again: the step sees what the first build left in the cache.
        build(
            &env,
            "a",
            "Foxfile.toml",
            COUNTER,
            "counter:1",
            &["--no-cache"],
        )
        .ok();
        assert_eq!(output(&env, "counter:1", seen), "2\n2\n", "{:?}", env.who);
        // A store holding cache mounts is whole.
        env.run(["system", "check"]).ok();
        // The cache mounts are no part of the cache key: changing them runs nothing.
        let other = COUNTER.replace("sharing = \"locked\"", "sharing = \"shared\"");
        let b = build(&env, "a", "Foxfile.toml", &other, "counter:1", &[]);
        b.ok();
        assert_eq!(b.stderr.matches("] CACHED").count(), 2, "{}", b.stderr);
        // A Containerfile's RUN --mount=type=cache names the same cache by its target.
        let cf = "FROM busybox\nRUN --mount=type=cache,target=/var/cache/fox cat /var/cache/fox/count > /got\n";
        build(&env, "c", "Containerfile", cf, "cf:1", &[]).ok();
        assert_eq!(output(&env, "cf:1", "cat /got"), "2\n", "{:?}", env.who);
        // `image prune --cache-mounts` drops them: the next run starts from nothing.
        let p = env.run(["image", "prune", "--cache-mounts"]);
        p.ok();
        assert!(
            p.stdout.contains("cache mount /var/cache/fox\n"),
            "{}",
            p.stdout
        );
        assert!(p.stdout.contains("cache mount log\n"), "{}", p.stdout);
        build(
            &env,
            "a",
            "Foxfile.toml",
            COUNTER,
            "counter:1",
            &["--no-cache"],
        )
        .ok();
        assert_eq!(output(&env, "counter:1", seen), "1\n1\n", "{:?}", env.who);
        // `system prune` drops them as well.
        let p = env.run(["system", "prune", "-f"]);
        p.ok();
        assert!(
            p.stdout.contains("Deleted Build Cache Mounts\n"),
            "{}",
            p.stdout
        );
        // A cache made for a user of the box: its owner and mode as the step sees them.
        let owned = "[build]\nfrom = \"busybox\"\n[[build.steps]]\nuser = \"1000:1000\"\n[[build.steps]]\nrun = \"echo mine > /u/f && stat -c '%u:%g %a' /u > /tmp/owner\"\ncache = [{ target = \"/u\", id = \"user-cache\", uid = 1000, gid = 1000, mode = \"0750\" }]\n";
        let b = build(&env, "o", "Foxfile.toml", owned, "owned:1", &[]);
        b.ok();
        assert_eq!(
            output(&env, "owned:1", "cat /tmp/owner"),
            "1000:1000 750\n",
            "{:?}",
            env.who
        );
        // A relative target and an unknown sharing are diagnostics at their place.
        let bad = "[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"true\"\ncache = [\"rel\", { target = \"/x\", sharing = \"sometimes\" }]\n";
        let b = build(&env, "bad", "Foxfile.toml", bad, "bad:1", &[]);
        assert_ne!(b.code, 0);
        assert!(b.stderr.contains("bad cache `target`"), "{}", b.stderr);
        assert!(
            b.stderr
                .contains("`sharing` must be shared, locked or private, not `sometimes`"),
            "{}",
            b.stderr
        );
        let cf = "FROM busybox\nRUN --mount=type=bind,target=/x true\n";
        let b = build(&env, "c2", "Containerfile", cf, "cf:2", &[]);
        assert_ne!(b.code, 0);
        assert!(
            b.stderr.contains("foxbox::build::containerfile")
                && b.stderr.contains("--mount=type=bind is not supported"),
            "{}",
            b.stderr
        );
    }
}

/// A tar archive of `files` (path, contents, uid, gid), raw names allowed (`../x`).
fn tar_of(files: &[(&str, &str, u64, u64)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body, uid, gid) in files {
        let mut h = tar::Header::new_ustar();
        h.as_mut_bytes()[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_uid(*uid);
        h.set_gid(*gid);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append(&h, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn add_unpacks_local_archives_and_keeps_their_entries_inside() {
    for env in envs() {
        env.import_busybox();
        let app = tar_of(&[
            ("bin/hello", "hello from the archive\n", 7, 8),
            ("etc/app.conf", "conf\n", 0, 0),
        ]);
        env.write("d/app.tar.gz", gzip(&app));
        env.write("d/plain.tar", tar_of(&[("plain.txt", "plain\n", 0, 0)]));
        env.write("d/notes.txt", "not an archive\n");
        let cf = "FROM busybox\nADD app.tar.gz /opt/app/\nADD plain.tar notes.txt /opt/\nCOPY app.tar.gz /copied/\n";
        build(&env, "d", "Containerfile", cf, "add:1", &[]).ok();
        let got = output(
            &env,
            "add:1",
            "cat /opt/app/bin/hello /opt/app/etc/app.conf /opt/plain.txt /opt/notes.txt; stat -c '%u:%g' /opt/app/bin/hello; test -f /copied/app.tar.gz && echo kept",
        );
        assert_eq!(
            got, "hello from the archive\nconf\nplain\nnot an archive\n7:8\nkept\n",
            "{:?}",
            env.who
        );
        // The TOML recipe's `extract`, with `chown` over the archive's owners.
        let toml = "[build]\nfrom = \"busybox\"\n[[build.steps]]\ncopy = \"app.tar.gz\"\ndest = \"/srv\"\nextract = true\nchown = \"5:6\"\n";
        build(&env, "d", "Foxfile.toml", toml, "add:2", &[]).ok();
        let got = output(
            &env,
            "add:2",
            "stat -c '%u:%g %n' /srv/bin/hello /srv/etc/app.conf",
        );
        assert_eq!(
            got, "5:6 /srv/bin/hello\n5:6 /srv/etc/app.conf\n",
            "{:?}",
            env.who
        );

        // An entry that climbs out is refused; nothing is written outside.
        env.write("e/evil.tar", tar_of(&[("../../escape", "x", 0, 0)]));
        let b = build(
            &env,
            "e",
            "Containerfile",
            "FROM busybox\nADD evil.tar /x/\n",
            "evil:1",
            &[],
        );
        b.assert_code(125);
        assert!(b.stderr.contains("refused entry"), "{}", b.stderr);
        assert!(!env.work().join("escape").exists());
        assert!(!env.run(["image", "ls"]).stdout.contains("evil"));
        // xz is named, before anything runs; a URL at its line.
        env.write("e/data.tar.xz", b"\xfd7zXZ\x00rest");
        let b = build(
            &env,
            "e",
            "Containerfile",
            "FROM busybox\nRUN echo ran\nADD data.tar.xz /x/\n",
            "xz:1",
            &[],
        );
        b.assert_code(125);
        assert!(
            b.stderr.contains("foxbox::build::archive")
                && b.stderr.contains("data.tar.xz is compressed with xz"),
            "{}",
            b.stderr
        );
        assert!(!b.stderr.contains("done in"), "nothing ran: {}", b.stderr);
        let b = build(
            &env,
            "e",
            "Containerfile",
            "FROM busybox\nADD http://example.com/a.tar /x/\n",
            "url:1",
            &[],
        );
        assert_ne!(b.code, 0);
        assert!(
            b.stderr
                .contains("of a URL (http://example.com/a.tar) is not supported"),
            "{}",
            b.stderr
        );
        assert!(b.stderr.contains(":2:1"), "{}", b.stderr);
    }
}

#[test]
fn arg_before_from_names_the_base_and_build_arg_overrides_it() {
    for env in envs() {
        env.import_busybox();
        let base2 =
            "[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"echo other > /marker\"\n";
        build(&env, "b", "Foxfile.toml", base2, "base2:1", &[]).ok();
        let cf = "ARG BASE=busybox\nFROM ${BASE}\nRUN cat /marker 2>/dev/null > /got || echo none > /got\n";
        build(&env, "c", "Containerfile", cf, "argfrom:1", &[]).ok();
        assert_eq!(output(&env, "argfrom:1", "cat /got"), "none\n");
        build(
            &env,
            "c",
            "Containerfile",
            cf,
            "argfrom:2",
            &["--build-arg", "BASE=base2:1"],
        )
        .ok();
        assert_eq!(
            output(&env, "argfrom:2", "cat /got"),
            "other\n",
            "{:?}",
            env.who
        );
        let b = build(
            &env,
            "c",
            "Containerfile",
            cf,
            "argfrom:3",
            &["--build-arg", "BASE=nope:1"],
        );
        b.assert_code(125);
        assert!(
            b.stderr.contains("foxbox::build::from") && b.stderr.contains("nope:1"),
            "{}",
            b.stderr
        );
        // The TOML recipe's `from` takes arguments too; an undeclared one is refused.
        let toml = "[build]\nfrom = \"${BASE}\"\n[build.args]\nBASE = \"busybox\"\n[[build.steps]]\nrun = \"cat /marker > /got\"\n";
        build(
            &env,
            "t",
            "Foxfile.toml",
            toml,
            "argfrom:4",
            &["--build-arg", "BASE=base2:1"],
        )
        .ok();
        assert_eq!(output(&env, "argfrom:4", "cat /got"), "other\n");
        let bad = "[build]\nfrom = \"${NOPE}\"\n";
        let b = build(&env, "u", "Foxfile.toml", bad, "argfrom:5", &[]);
        assert_ne!(b.code, 0);
        assert!(
            b.stderr
                .contains("`from` uses `${NOPE}`, which is not a build argument"),
            "{}",
            b.stderr
        );
    }
}

#[test]
fn chown_by_name_is_looked_up_in_the_image() {
    for env in envs() {
        env.import_busybox();
        env.write("n/f", "f\n");
        let cf = "FROM busybox\nRUN echo vixen:x:1234:1235::/home/vixen:/bin/sh >> /etc/passwd && echo vixen:x:1235: >> /etc/group && echo staff2:x:50: >> /etc/group\nCOPY --chown=vixen f /a/f\nCOPY --chown=vixen:staff2 f /b/f\n";
        build(&env, "n", "Containerfile", cf, "own:1", &[]).ok();
        let got = output(&env, "own:1", "stat -c '%u:%g' /a/f /b/f");
        assert_eq!(got, "1234:1235\n1234:50\n", "{:?}", env.who);
        let toml = "[build]\nfrom = \"own:1\"\n[[build.steps]]\ncopy = \"f\"\ndest = \"/c/f\"\nchown = \"vixen:vixen\"\n";
        build(&env, "n", "Foxfile.toml", toml, "own:2", &[]).ok();
        assert_eq!(output(&env, "own:2", "stat -c '%u:%g' /c/f"), "1234:1235\n");
        // A name the image lacks: a diagnostic at the step.
        let cf = "FROM busybox\nCOPY --chown=nobody2 f /d/f\n";
        let b = build(&env, "n", "Containerfile", cf, "own:3", &[]);
        b.assert_code(125);
        assert!(
            b.stderr.contains("foxbox::build::chown")
                && b.stderr
                    .contains("user \"nobody2\" is not in the image's /etc/passwd"),
            "{}",
            b.stderr
        );
        assert!(b.stderr.contains("COPY --chown=nobody2"), "{}", b.stderr);
        let cf = "FROM busybox\nCOPY --chown=1:fox f /d/f\n";
        let b = build(&env, "n", "Containerfile", cf, "own:4", &[]);
        assert_ne!(b.code, 0);
        assert!(
            b.stderr.contains("mixes a number and a name"),
            "{}",
            b.stderr
        );
    }
}

/// The OCI config of the image a build printed the id of.
fn config_of(env: &Env, b: &common::Run) -> serde_json::Value {
    let hex = b.stdout.trim().trim_start_matches("sha256:").to_string();
    let text = std::fs::read_to_string(env.store().join("images/blobs/sha256").join(hex))
        .expect("the image's config blob");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn a_merged_image_brings_its_env_labels_and_ports() {
    for env in envs() {
        env.import_busybox();
        let a = r#"[build]
from = "busybox"
cmd = ["echo", "a"]
env = { PATH = "/opt/a/bin:/usr/sbin:/usr/bin:/sbin:/bin", A = "1", SHARED = "a" }
labels = { "org.a" = "1", shared = "a" }
expose = [80]
[[build.steps]]
run = "mkdir -p /opt/a/bin && printf '#!/bin/sh\necho tool-a\n' > /opt/a/bin/tool-a && chmod +x /opt/a/bin/tool-a"
"#;
        let b = r#"[build]
from = "busybox"
workdir = "/b"
env = { B = "2", SHARED = "b" }
labels = { "org.b" = "2", shared = "b" }
expose = ["53/udp", "80"]
[[build.steps]]
run = "echo b > /b.txt"
"#;
        build(&env, "a", "Foxfile.toml", a, "cfg-a:1", &[]).ok();
        build(&env, "b", "Foxfile.toml", b, "cfg-b:1", &[]).ok();
        let m = "[build]\nfrom = \"busybox\"\nmerge = [\"cfg-a:1\", \"cfg-b:1\"]\nlabels = { own = \"m\" }\n";
        let r = build(&env, "m", "Foxfile.toml", m, "cfg-m:1", &[]);
        r.ok();
        let c = config_of(&env, &r);
        let cfg = &c["config"];
        let envs: Vec<&str> = cfg["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(envs.contains(&"A=1") && envs.contains(&"B=2"), "{envs:?}");
        assert!(envs.contains(&"SHARED=b"), "the later image's: {envs:?}");
        let path = envs.iter().find(|e| e.starts_with("PATH=")).unwrap();
        assert!(path.starts_with("PATH=/opt/a/bin:"), "{path}");
        assert_eq!(cfg["Labels"]["org.a"], "1");
        assert_eq!(cfg["Labels"]["org.b"], "2");
        assert_eq!(cfg["Labels"]["shared"], "b");
        assert_eq!(cfg["Labels"]["own"], "m");
        let ports: Vec<&String> = cfg["ExposedPorts"].as_object().unwrap().keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        // Both set SHARED: the later one's value, with a warning at its name.
        assert!(
            r.stderr.contains("foxbox::build::merge_env")
                && r.stderr.contains("`cfg-b:1` sets SHARED to another value"),
            "{}",
            r.stderr
        );
        // What runs stays `from`'s: busybox's command, no working directory of cfg-b's.
        assert!(cfg.get("WorkingDir").is_none(), "{cfg}");
        assert_ne!(cfg["Cmd"], serde_json::json!(["echo", "a"]), "{cfg}");
        // The box finds the merged image's tool on its PATH, and its files.
        let got = output(&env, "cfg-m:1", "tool-a; cat /b.txt; echo $A$B");
        assert_eq!(got, "tool-a\nb\n12\n", "{:?}", env.who);
    }
}

#[test]
fn cache_mounts_and_add_work_without_a_subordinate_range() {
    let env = Env::new(Who::UserNoSubids);
    env.import_busybox();
    env.write("d/app.tar", tar_of(&[("bin/hello", "hello\n", 7, 8)]));
    let cf = "FROM busybox\nADD app.tar /opt/\nRUN --mount=type=cache,target=/c,id=nosub sh -c 'echo x >> /c/log; wc -l < /c/log > /n'\n";
    build(&env, "d", "Containerfile", cf, "nosub:1", &[]).ok();
    build(&env, "d", "Containerfile", cf, "nosub:1", &["--no-cache"]).ok();
    // One id only: the archive's owners are the box's root.
    let got = output(
        &env,
        "nosub:1",
        "cat /opt/bin/hello /n; stat -c '%u:%g' /opt/bin/hello",
    );
    assert_eq!(got, "hello\n2\n0:0\n");
}

#[test]
fn prune_leaves_a_cache_mount_a_running_build_uses() {
    for env in envs() {
        env.import_busybox();
        env.write(
            "p/Foxfile.toml",
            "[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"echo mine > /c/f; sleep 2; cat /c/f > /got\"\ncache = [\"/c\"]\n",
        );
        let mut child = env
            .foxbox(["build", "-t", "held:1", "p"])
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The step's box exists once its caches are held.
        common::eventually("the step box", || {
            !env.run(["ps", "-a", "-q"]).stdout.trim().is_empty()
        });
        let p = env.run(["image", "prune", "--cache-mounts"]);
        p.ok();
        assert!(
            !p.stdout.contains("cache mount /c"),
            "{:?}: {}",
            env.who,
            p.stdout
        );
        assert!(child.wait().unwrap().success());
        assert_eq!(
            output(&env, "held:1", "cat /got"),
            "mine\n",
            "{:?}",
            env.who
        );
        let p = env.run(["image", "prune", "--cache-mounts"]);
        assert!(
            p.stdout.contains("cache mount /c\n"),
            "{:?}: {}",
            env.who,
            p.stdout
        );
    }
}
