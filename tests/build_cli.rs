//! `foxbox build` through the built binary, as root and as the unprivileged user (with a
//! subordinate id range): the issue's example, the cache, layers that delete and replace files
//! of the base, owners, and refused input.

mod common;
mod registry;

use common::{envs, Env, Who};

/// The issue's example recipe, over the busybox test image (which has no /etc/motd, so the
/// file the second step deletes is one it has; nor adduser, so the user is added by hand).
const EXAMPLE: &str = r#"
[build]
from = "busybox"
context = "."
cmd = ["cat", "/app/hello.txt"]

[[build.steps]]
copy = ["hello.txt", "src/"]
dest = "/app/"

[[build.steps]]
run = "echo built > /app/built.txt && rm /etc/foxbox-image"

[[build.steps]]
run = ["sh", "-c", "echo fox:x:1234:1234::/home/fox:/bin/sh >> /etc/passwd && chown 1234 /app/built.txt"]
"#;

fn example(env: &Env) {
    env.import_busybox();
    env.write("hello.txt", "hello from the context\n");
    env.write("src/main.c", "int main(void) { return 0; }\n");
    env.write("Foxfile.toml", EXAMPLE);
}

/// How many steps a build's progress reports as taken from the cache, and as made.
fn counts(stderr: &str) -> (usize, usize) {
    let cached = stderr.lines().filter(|l| l.ends_with("] CACHED")).count();
    let made = stderr.lines().filter(|l| l.contains("] done in ")).count();
    (cached, made)
}

#[test]
fn the_example_builds_and_its_image_runs() {
    for env in envs() {
        example(&env);
        let b = env.run(["build", "-f", "Foxfile.toml", "-t", "app:1", "."]);
        b.ok();
        assert_eq!(counts(&b.stderr), (0, 3), "{:?}: {}", env.who, b.stderr);
        assert!(b.stdout.trim().starts_with("sha256:"), "{}", b.stdout);
        let r = env.run(["run", "--rm", "app:1"]);
        r.ok();
        assert_eq!(r.stdout, "hello from the context\n", "{:?}", env.who);
        let r = env.run([
            "run",
            "--rm",
            "app:1",
            "sh",
            "-c",
            "cat /app/built.txt /app/main.c; stat -c '%u %n' /app/built.txt; test -e /etc/foxbox-image || echo gone",
        ]);
        r.ok();
        assert_eq!(
            r.stdout, "built\nint main(void) { return 0; }\n1234 /app/built.txt\ngone\n",
            "{:?}",
            env.who
        );
        // The steps' images stay out of `image ls`; the named one is there.
        let ls = env.run(["image", "ls"]);
        ls.ok();
        assert!(ls.stdout.contains("app "), "{}", ls.stdout);
        assert_eq!(ls.stdout.lines().count(), 3, "{}", ls.stdout);
        // No step box is left behind.
        let ps = env.run(["ps", "-a", "-q"]);
        assert_eq!(ps.stdout.trim(), "", "{:?}", env.who);
        // `image tag` names it again.
        env.run(["image", "tag", "app:1", "app:2"]).ok();
        let r = env.run(["run", "--rm", "app:2"]);
        assert_eq!(r.stdout, "hello from the context\n");
    }
}

const CACHED: &str = r#"
[build]
from = "busybox"
cmd = ["cat", "/app/greeting.txt"]

[build.args]
GREETING = "hi"

[[build.steps]]
run = "echo base > /base.txt"

[[build.steps]]
copy = "hello.txt"
dest = "/app/"

[[build.steps]]
run = "echo ${GREETING} > /app/greeting.txt"
"#;

#[test]
fn steps_are_cached_until_what_they_depend_on_changes() {
    for env in envs() {
        env.import_busybox();
        env.write("hello.txt", "one\n");
        env.write("Foxfile.toml", CACHED);
        let build = |extra: &[&str]| {
            let mut args = vec!["build", "-t", "c:1"];
            args.extend_from_slice(extra);
            args.push(".");
            let b = env.run(args);
            b.ok();
            counts(&b.stderr)
        };
        assert_eq!(build(&[]), (0, 3), "{:?}", env.who);
        assert_eq!(build(&[]), (3, 0), "a second build runs nothing");
        env.write("hello.txt", "two\n");
        assert_eq!(build(&[]), (1, 2), "the copy and the steps after it");
        assert_eq!(
            build(&["--build-arg", "GREETING=yo"]),
            (2, 1),
            "only the user"
        );
        let r = env.run(["run", "--rm", "c:1"]);
        assert_eq!(r.stdout, "yo\n");
        assert_eq!(build(&["--no-cache"]), (0, 3));
        // An argument the recipe does not declare: a warning, and nothing else changes.
        let b = env.run(["build", "-t", "c:1", "--build-arg", "NOPE=1", "."]);
        b.ok();
        assert!(
            b.stderr.contains("foxbox::build::unknown_arg") && b.stderr.contains("NOPE"),
            "{}",
            b.stderr
        );
        assert_eq!(counts(&b.stderr), (3, 0));
    }
}

#[test]
fn a_run_step_deletes_and_replaces_files_of_the_layers_below() {
    for env in envs() {
        env.import_busybox();
        env.write("old.txt", "old\n");
        env.write("keep.txt", "keep\n");
        env.write(
            "Foxfile.toml",
            r#"
[build]
from = "busybox"

[[build.steps]]
copy = ["old.txt", "keep.txt"]
dest = "/srv/data/"

[[build.steps]]
run = "rm -r /srv/data && mkdir /srv/data && echo new > /srv/data/new.txt && rm /etc/foxbox-image"
"#,
        );
        env.run(["build", "-t", "wh:1", "."]).ok();
        let r = env.run([
            "run",
            "--rm",
            "wh:1",
            "sh",
            "-c",
            "ls /srv/data; ls /etc | grep -c passwd; test -e /etc/foxbox-image || echo gone",
        ]);
        r.ok();
        // The replaced directory shows only its new contents; /etc keeps the rest.
        assert_eq!(r.stdout, "new.txt\n1\ngone\n", "{:?}", env.who);

        // Saved as an OCI layout, skopeo reads it (and checks every blob's digest); loaded
        // back from it (whiteouts and opaque marks unpacked by the pull code), it is the same.
        let out = env.work().join("wh-oci");
        env.run(["image", "save", "-o", out.to_str().unwrap(), "wh:1"])
            .ok();
        let layout = format!("oci:{}", out.display());
        let inspect = std::process::Command::new("skopeo")
            .args(["inspect", &layout])
            .output()
            .unwrap();
        assert!(inspect.status.success(), "{inspect:?}");
        let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(v["Layers"].as_array().unwrap().len(), 3, "{v}");
        let copied = env.work().join("wh-copy");
        let copy = std::process::Command::new("skopeo")
            .args(["copy", &layout, &format!("dir:{}", copied.display())])
            .output()
            .unwrap();
        assert!(copy.status.success(), "{copy:?}");
        env.run(["image", "rm", "wh:1"]).ok();
        env.run(["image", "load", "-i", out.to_str().unwrap()]).ok();
        let again = env.run([
            "run",
            "--rm",
            "wh:1",
            "sh",
            "-c",
            "ls /srv/data; ls /etc | grep -c passwd; test -e /etc/foxbox-image || echo gone",
        ]);
        assert_eq!(again.stdout, r.stdout, "{:?}: {}", env.who, again.stderr);
    }
}

#[test]
fn owners_links_and_modes_of_a_run_step_are_kept() {
    for env in envs() {
        env.import_busybox();
        env.write(
            "Foxfile.toml",
            r#"
[build]
from = "busybox"

[[build.steps]]
run = """
mkdir /o && cd /o && touch a b c && chown 1:2 a && chown 1000:1000 b && chown 65534:65534 c \
&& chmod 4750 b && ln a hard && ln -s c soft && mkfifo pipe
"""
"#,
        );
        env.run(["build", "-t", "own:1", "."]).ok();
        let r = env.run([
            "run",
            "--rm",
            "own:1",
            "sh",
            "-c",
            "cd /o && stat -c '%n %u:%g %a %h' a b c && readlink soft && test -p pipe && echo fifo",
        ]);
        r.ok();
        assert_eq!(
            r.stdout, "a 1:2 644 2\nb 1000:1000 4750 1\nc 65534:65534 644 1\nc\nfifo\n",
            "{:?}",
            env.who
        );
    }
}

#[test]
fn a_copy_from_outside_the_context_is_refused_before_anything_runs() {
    for env in envs() {
        env.import_busybox();
        std::fs::create_dir_all(env.work().join("ctx")).unwrap();
        env.write("secret.txt", "s\n");
        env.write("ctx/in.txt", "in\n");
        std::os::unix::fs::symlink("/etc", env.work().join("ctx/etc-link")).unwrap();
        for (src, code) in [
            ("../secret.txt", "foxbox::build::copy_outside"),
            ("/etc/passwd", "foxbox::build::copy_outside"),
            ("etc-link/passwd", "foxbox::build::copy_outside"),
            ("nothing-*.txt", "foxbox::build::copy_source"),
        ] {
            env.write(
                "ctx/Foxfile.toml",
                format!(
                    "[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"touch /ran\"\n[[build.steps]]\ncopy = [\"in.txt\", \"{src}\"]\ndest = \"/x/\"\n"
                ),
            );
            let b = env.run(["build", "-t", "bad:1", "ctx"]);
            b.assert_code(125);
            assert!(b.stderr.contains(code), "{src}: {}", b.stderr);
            assert!(b.stderr.contains("step 2"), "{src}: {}", b.stderr);
            assert!(!b.stderr.contains("[1/2]"), "a step ran: {}", b.stderr);
        }
        // The store is as it was: no image, no cached step.
        let ls = env.run(["image", "ls", "-q"]);
        assert_eq!(ls.stdout.lines().count(), 1, "{}", ls.stdout);
        assert!(!env.store().join("images/build-cache.json").exists());
        // A missing base image is named.
        env.write("ctx/Foxfile.toml", "[build]\nfrom = \"nosuch:7\"\n");
        let b = env.run(["build", "ctx"]);
        b.assert_code(125);
        assert!(
            b.stderr.contains("foxbox::build::from") && b.stderr.contains("nosuch:7"),
            "{}",
            b.stderr
        );
    }
}

/// The context's directory in messages, made machine-independent.
fn redact(env: &Env, s: &str) -> String {
    let work = std::fs::canonicalize(env.work()).unwrap();
    s.replace(&work.display().to_string(), "[CONTEXT]")
}

#[test]
fn diagnostics_of_a_failing_step_and_a_copy_from_outside() {
    let env = Env::new(if common::is_root() {
        Who::Root
    } else {
        Who::User
    });
    env.import_busybox();
    env.write(
        "Foxfile.toml",
        r#"[build]
from = "busybox"

[[build.steps]]
env = { STAGE = "test" }

[[build.steps]]
run = "echo preparing $STAGE && echo 'no such thing' >&2 && exit 3"
"#,
    );
    let b = env.run(["build", "--progress", "quiet", "."]);
    b.assert_code(125);
    insta::assert_snapshot!("failing_run_step", redact(&env, &b.stderr));

    env.write(
        "Foxfile.toml",
        r#"[build]
from = "busybox"

[[build.steps]]
copy = ["../outside.txt"]
dest = "/app/"
"#,
    );
    let b = env.run(["build", "--progress", "quiet", "."]);
    b.assert_code(125);
    insta::assert_snapshot!("copy_outside", redact(&env, &b.stderr));
}

/// Entries of a directory (none when it is missing).
fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_build_killed_mid_step_leaves_the_store_usable_and_its_finished_steps_cached() {
    for env in envs() {
        env.import_busybox();
        env.write(
            "Foxfile.toml",
            "[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"echo one > /one\"\n[[build.steps]]\nrun = \"sleep 2\"\n",
        );
        // Whatever the build keeps outside the store would land here.
        let tmpdir = env.work().join("tmpdir");
        env.sh(&format!("mkdir -p {}", tmpdir.display()));
        let mut child = env
            .foxbox(["build", "-t", "k:1", "."])
            .env("TMPDIR", &tmpdir)
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The second step's box exists once the first step is stored.
        let t = std::time::Instant::now();
        let cache = env.store().join("images/build-cache.json");
        while !cache.exists() || env.run(["ps", "-a", "-q"]).stdout.trim().is_empty() {
            assert!(t.elapsed().as_secs() < 20, "the step box never appeared");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // What the killed build left is the store's to find and clean: its scratch dir under
        // the store's tmp/, nothing in TMPDIR.
        assert_eq!(entries(&tmpdir), Vec::<String>::new(), "{:?}", env.who);
        common::eventually("the step's box to end", || {
            !env.run(["ps", "-a"]).stdout.contains("Up ")
        });
        let c = env.run(["system", "check"]);
        for l in c.stdout.lines() {
            assert!(
                l.starts_with("image-leftover "),
                "{:?}: {}",
                env.who,
                c.stdout
            );
        }
        env.run(["system", "check", "--repair"]).ok();
        let b = env
            .foxbox(["build", "-t", "k:1", "."])
            .env("TMPDIR", &tmpdir)
            .output()
            .unwrap();
        let b = common::Run::from(b);
        b.ok();
        assert_eq!(counts(&b.stderr), (1, 1), "{:?}: {}", env.who, b.stderr);
        env.run(["run", "--rm", "k:1", "cat", "/one"]).ok();
        // Nothing is left: no step box (the dead build's is removed by the next), no scratch,
        // nothing in TMPDIR, and the store checks clean.
        assert_eq!(
            env.run(["ps", "-a", "-q"]).stdout.trim(),
            "",
            "{:?}",
            env.who
        );
        assert_eq!(
            entries(&env.store().join("images/tmp")),
            Vec::<String>::new()
        );
        assert_eq!(entries(&tmpdir), Vec::<String>::new(), "{:?}", env.who);
        let c = env.run(["system", "check"]);
        assert_eq!((c.code, c.stdout.as_str()), (0, ""), "{:?}", env.who);
        // Every stored layer belongs to an image: none is half there.
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.store().join("images/index.json")).unwrap())
                .unwrap();
        let known: Vec<String> = index["images"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["layers"].as_array().unwrap().clone())
            .map(|d| {
                d.as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
                    .to_string()
            })
            .collect();
        for name in entries(&env.store().join("images/layers")) {
            assert!(known.contains(&name), "layer {name} is not indexed");
        }
    }
}

#[test]
fn configuration_steps_shape_the_later_steps_and_the_image() {
    for env in envs() {
        env.import_busybox();
        env.write(
            "Foxfile.toml",
            r#"
[build]
from = "busybox"
entrypoint = ["/bin/sh", "-c"]
cmd = ["echo $MODE from $(pwd) as $(id -u)"]
labels = { "org.example.fox" = "yes" }
expose = [8080, "53/udp"]

[[build.steps]]
env = { MODE = "prod" }

[[build.steps]]
workdir = "/srv"

[[build.steps]]
run = "echo $MODE > mode.txt && pwd > pwd.txt"

[[build.steps]]
user = "1000"

[[build.steps]]
run = "id -u > /tmp/uid"
"#,
        );
        let b = env.run(["build", "-t", "cfg:1", "."]);
        b.ok();
        // The image's OCI config (its id is the config's digest) holds what the store's
        // record has no place for.
        let id = b.stdout.trim().trim_start_matches("sha256:").to_string();
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(env.store().join("images/blobs/sha256").join(&id)).unwrap(),
        )
        .unwrap();
        let c = &config["config"];
        assert_eq!(c["Labels"]["org.example.fox"], "yes", "{config}");
        assert!(c["ExposedPorts"].get("8080/tcp").is_some(), "{config}");
        assert!(c["ExposedPorts"].get("53/udp").is_some(), "{config}");
        assert_eq!(c["User"], "1000");
        assert_eq!(c["WorkingDir"], "/srv");
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
        let r = env.run(["run", "--rm", "cfg:1"]);
        r.ok();
        assert_eq!(r.stdout, "prod from /srv as 1000\n", "{:?}", env.who);
        // The words after the image replace its command and go to its `sh -c` entrypoint.
        let r = env.run([
            "run",
            "--rm",
            "cfg:1",
            "cat /srv/mode.txt /srv/pwd.txt /tmp/uid",
        ]);
        assert_eq!(
            r.stdout, "prod\n/srv\n1000\n",
            "{:?}: {}",
            env.who, r.stderr
        );
    }
}

#[test]
fn copies_keep_to_the_context_its_ignore_file_and_the_owner_asked() {
    for env in envs() {
        env.import_busybox();
        env.write("site/index.html", "<p>fox</p>\n");
        env.write("site/secret.key", "k\n");
        env.write("site/drafts/a.html", "draft\n");
        env.write(".dockerignore", "# Docker's rules\n**/*.key\nsite/drafts\n");
        env.write(
            ".foxignore",
            "# read first: .dockerignore is then not used\n*.key\n**/*.key\nsite/drafts\n!site/drafts/keep.html\n",
        );
        env.write("site/drafts/keep.html", "keep\n");
        env.write(
            "Foxfile.toml",
            r#"
[build]
from = "busybox"

[[build.steps]]
copy = "site/"
dest = "/www"
chown = "1000:1001"
chmod = "0640"
"#,
        );
        env.run(["build", "-t", "www:1", "."]).ok();
        let r = env.run([
            "run",
            "--rm",
            "www:1",
            "sh",
            "-c",
            "cd /www && find . -type f | sort && stat -c '%u:%g %a' index.html",
        ]);
        r.ok();
        assert_eq!(
            r.stdout, "./drafts/keep.html\n./index.html\n1000:1001 640\n",
            "{:?}",
            env.who
        );
        // Naming an ignored file is refused, saying why.
        env.write(
            "Foxfile.toml",
            "[build]\nfrom = \"busybox\"\n[[build.steps]]\ncopy = \"site/secret.key\"\ndest = \"/k\"\n",
        );
        let b = env.run(["build", "."]);
        b.assert_code(125);
        assert!(
            b.stderr.contains("foxbox::build::copy_source") && b.stderr.contains(".foxignore"),
            "{}",
            b.stderr
        );
    }
}

#[test]
fn builds_without_a_subordinate_range_from_a_tarball() {
    if !common::is_root() {
        eprintln!("SKIP: the user without a range is made by root");
        return;
    }
    let env = Env::new(Who::UserNoSubids);
    env.write(
        "rootfs.tar.gz",
        std::fs::read(common::busybox_tarball()).unwrap(),
    );
    env.write("hello.txt", "hi\n");
    env.write(
        "Foxfile.toml",
        "[build]\nfrom = \"./rootfs.tar.gz\"\ncmd = [\"cat\", \"/hello.txt\", \"/made\"]\n[[build.steps]]\ncopy = \"hello.txt\"\ndest = \"/\"\n[[build.steps]]\nrun = \"echo made > /made\"\n",
    );
    let b = env.run(["build", "-t", "nosub:1", "."]);
    b.ok();
    let r = env.run(["run", "--rm", "nosub:1"]);
    r.ok();
    assert_eq!(r.stdout, "hi\nmade\n");
    let b = env.run(["build", "-t", "nosub:1", "."]);
    assert_eq!(counts(&b.stderr), (2, 0), "{}", b.stderr);
}

#[test]
fn check_reads_a_foxfile() {
    let env = Env::new(Who::Root);
    env.write("Foxfile.toml", EXAMPLE);
    env.run(["check", "Foxfile.toml"]).ok();
    env.write(
        "Foxfile.toml",
        "[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"true\"\ndest = \"/x\"\n",
    );
    let c = env.run(["check", "Foxfile.toml"]);
    c.assert_code(1);
    assert!(
        c.stderr.contains("foxbox::build::bad_step") && c.stderr.contains("Foxfile.toml:5:"),
        "{}",
        c.stderr
    );
}

#[test]
fn a_registry_reference_is_pulled_when_the_store_lacks_it() {
    let r = registry::registries();
    for env in envs() {
        env.write(
            "Foxfile.toml",
            format!(
                "[build]\nfrom = \"{}/busybox:1\"\ncmd = [\"cat\", \"/x\"]\n[[build.steps]]\nrun = \"echo pulled > /x\"\n",
                r.plain_host()
            ),
        );
        env.run(["build", "-t", "p:1", "."]).ok();
        let out = env.run(["run", "--rm", "p:1"]);
        assert_eq!(out.stdout, "pulled\n", "{:?}: {}", env.who, out.stderr);
    }
}

#[test]
fn a_foxbox_toml_builds_the_image_its_box_runs() {
    for env in envs() {
        env.import_busybox();
        env.write("hello.txt", "from the spec\n");
        env.write(
            "Foxbox.toml",
            "[box]\nimage = \"sp:1\"\n\n[build]\nfrom = \"busybox\"\ncmd = [\"cat\", \"/app/hello.txt\"]\n\n[[build.steps]]\ncopy = [\"hello.txt\"]\ndest = \"/app/\"\n",
        );
        // No -f: the Foxbox.toml in the context, there being no Foxfile.toml.
        env.run(["build", "-t", "sp:1"]).ok();
        let up = env.run(["up", "--rm"]);
        up.ok();
        assert_eq!(up.stdout, "from the spec\n", "{:?}", env.who);
        // `up` builds first: nothing changed, every step is cached and stdout is the box's.
        assert_eq!(counts(&up.stderr), (1, 0), "{:?}: {}", env.who, up.stderr);
        // A copied file changed: the image is stale, and `up` rebuilds that step.
        env.write("hello.txt", "changed\n");
        let up = env.run(["up", "--rm", "--build"]);
        up.ok();
        assert_eq!(up.stdout, "changed\n", "{:?}", env.who);
        assert_eq!(counts(&up.stderr), (0, 1), "{:?}: {}", env.who, up.stderr);
        // A detached box prints only its id.
        let d = env.run(["up", "-d", "--name", "built"]);
        d.ok();
        assert_eq!(d.stdout.trim().len(), 64, "{:?}: {}", env.who, d.stdout);
        env.run(["rm", "-f", "built"]).ok();
        // --build on a spec without [build], and a [build] spec whose image is a tarball.
        let plain = env.write("plain/Foxbox.toml", "[box]\nimage = \"busybox\"\n");
        let r = env.run(["up", "--rm", "--build", plain.to_str().unwrap()]);
        r.assert_code(125);
        assert!(r.stderr.contains("has no [build] table"), "{}", r.stderr);
        let tar = env.write(
            "tar/Foxbox.toml",
            format!(
                "[box]\nimage = \"{}\"\n\n[build]\nfrom = \"busybox\"\n",
                common::busybox_tarball().display()
            ),
        );
        let r = env.run(["up", "--rm", tar.to_str().unwrap()]);
        r.assert_code(125);
        assert!(r.stderr.contains("must be a name"), "{}", r.stderr);
    }
}

/// A stage's recipe in its own directory; the build's stderr on failure.
fn build_in(env: &Env, dir: &str, recipe: &str, tag: &str) -> common::Run {
    env.write(&format!("{dir}/Foxfile.toml"), recipe);
    env.run(["build", "--progress", "plain", "-t", tag, dir])
}

#[test]
fn a_stage_builds_an_artefact_that_the_image_copies() {
    for env in envs() {
        env.import_busybox();
        let recipe = r#"
[build]
from = "busybox"
cmd = ["cat", "/opt/app"]

[[build.steps]]
copy = "/out/"
from = "builder"
dest = "/opt/"

[[build.stage]]
name = "builder"
from = "busybox"

[[build.stage.steps]]
run = "mkdir -p /out && echo artefact > /out/app && chown 1000:1001 /out/app && chmod 0750 /out/app && echo junk > /junk"
"#;
        let b = build_in(&env, "ms", recipe, "ms:1");
        b.ok();
        assert_eq!(counts(&b.stderr), (0, 2), "{:?}: {}", env.who, b.stderr);
        let r = env.run([
            "run",
            "--rm",
            "ms:1",
            "sh",
            "-c",
            "cat /opt/app; stat -c '%u:%g %a' /opt/app; test -e /junk || echo no-junk",
        ]);
        r.ok();
        assert_eq!(
            r.stdout, "artefact\n1000:1001 750\nno-junk\n",
            "{:?}",
            env.who
        );
        // Again: every step (of both stages) from the cache.
        let b = build_in(&env, "ms", recipe, "ms:1");
        b.ok();
        assert_eq!(counts(&b.stderr), (2, 0), "{:?}: {}", env.who, b.stderr);
        // --target stops at the stage, which becomes the image.
        let t = env.run(["build", "--target", "builder", "-t", "stage:1", "ms"]);
        t.ok();
        let r = env.run(["run", "--rm", "stage:1", "cat", "/junk"]);
        assert_eq!(r.stdout, "junk\n", "{:?}", env.who);
        let t = env.run(["build", "--target", "nope", "ms"]);
        t.assert_code(125);
        assert!(t.stderr.contains("foxbox::build::stage"), "{}", t.stderr);
        assert!(t.stderr.contains("builder"), "{}", t.stderr);
    }
}

#[test]
fn stages_that_need_each_other_and_missing_copy_sources_are_refused() {
    let env = Env::new(Who::User);
    if !env.who.available() {
        return;
    }
    env.import_busybox();
    let cycle = r#"
[build]
from = "a"
[[build.stage]]
name = "a"
from = "b"
[[build.stage]]
name = "b"
from = "busybox"
[[build.stage.steps]]
copy = "/x"
from = "a"
dest = "/x"
"#;
    let b = build_in(&env, "cy", cycle, "cy:1");
    b.assert_code(125);
    assert!(b.stderr.contains("foxbox::build::stage"), "{}", b.stderr);
    assert!(b.stderr.contains("cycle"), "{}", b.stderr);
    assert_eq!(env.run(["ps", "-a", "-q"]).stdout, "");
    let missing = r#"
[build]
from = "busybox"
[[build.steps]]
copy = ["/bin/busybox", "/no/such"]
from = "busybox"
dest = "/x/"
"#;
    let b = build_in(&env, "mi", missing, "mi:1");
    b.assert_code(125);
    assert!(
        b.stderr.contains("foxbox::build::copy_from"),
        "{}",
        b.stderr
    );
    assert!(b.stderr.contains("/no/such"), "{}", b.stderr);
    // A copy out of a plain image (not a stage) works, owners kept.
    let plain = "[build]\nfrom = \"busybox\"\n[[build.steps]]\ncopy = \"/bin/busybox\"\nfrom = \"busybox\"\ndest = \"/opt/\"\n";
    build_in(&env, "pl", plain, "pl:1").ok();
    let r = env.run(["run", "--rm", "pl:1", "/opt/busybox", "echo", "copied"]);
    assert_eq!(r.stdout, "copied\n");
}

#[test]
fn merge_stacks_images_of_one_base_and_refuses_conflicts_and_other_bases() {
    for env in envs() {
        env.import_busybox();
        let one = |dir: &str, tag: &str, run: &str| {
            build_in(
                &env,
                dir,
                &format!("[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"{run}\"\n"),
                tag,
            )
            .ok();
        };
        one(
            "a",
            "img-a:1",
            "echo a > /a.txt && echo A > /etc/shared && rm /etc/foxbox-image",
        );
        one(
            "b",
            "img-b:1",
            "echo b > /b.txt && mkdir -p /etc/b && echo B > /etc/b/conf",
        );
        one("c", "img-c:1", "echo C > /etc/shared");
        let merged = "[build]\nfrom = \"busybox\"\nmerge = [\"img-a:1\", \"img-b:1\"]\n[[build.steps]]\nrun = \"cat /a.txt /b.txt /etc/b/conf > /all\"\n";
        let b = build_in(&env, "m", merged, "merged:1");
        b.ok();
        assert!(b.stderr.contains("[merge] img-a:1 img-b:1"), "{}", b.stderr);
        let r = env.run([
            "run",
            "--rm",
            "merged:1",
            "sh",
            "-c",
            "cat /all /etc/shared; test -e /etc/foxbox-image || echo deleted",
        ]);
        r.ok();
        assert_eq!(r.stdout, "a\nb\nB\nA\ndeleted\n", "{:?}", env.who);

        // Both change /etc/shared: refused, naming the path and the images.
        let clash = "[build]\nfrom = \"busybox\"\nmerge = [\"img-a:1\", \"img-c:1\"]\n";
        let b = build_in(&env, "cl", clash, "clash:1");
        b.assert_code(125);
        assert!(
            b.stderr.contains("foxbox::build::merge_conflict"),
            "{}",
            b.stderr
        );
        assert!(
            b.stderr
                .contains("/etc/shared (changed by img-a:1, img-c:1)"),
            "{}",
            b.stderr
        );
        assert!(!env.run(["image", "ls"]).stdout.contains("clash"));
        // Settled by the later image.
        let settled = format!("{clash}merge_conflicts = \"last-wins\"\n");
        build_in(&env, "cl", &settled, "clash:1").ok();
        let r = env.run(["run", "--rm", "clash:1", "cat", "/etc/shared", "/a.txt"]);
        assert_eq!(r.stdout, "C\na\n", "{:?}", env.who);

        // An image on another base is refused with the reason.
        build_in(
            &env,
            "s",
            "[build]\nfrom = \"scratch\"\n[[build.steps]]\ncopy = \"f\"\ndest = \"/f\"\n",
            "other:1",
        );
        env.write("s/f", "f");
        build_in(
            &env,
            "s",
            "[build]\nfrom = \"scratch\"\n[[build.steps]]\ncopy = \"f\"\ndest = \"/f\"\n",
            "other:1",
        )
        .ok();
        let b = build_in(
            &env,
            "ob",
            "[build]\nfrom = \"busybox\"\nmerge = [\"img-a:1\", \"other:1\"]\n",
            "ob:1",
        );
        b.assert_code(125);
        assert!(
            b.stderr.contains("foxbox::build::merge_base"),
            "{}",
            b.stderr
        );
        assert!(
            b.stderr.contains("`other:1` is not built on `busybox`"),
            "{}",
            b.stderr
        );
    }
}

/// `skopeo` as root against a test registry (its CA trusted).
fn skopeo(args: &[&str]) -> std::process::Output {
    let r = registry::registries();
    std::process::Command::new("skopeo")
        .args(args)
        .env("SSL_CERT_FILE", &r.ca)
        .output()
        .expect("skopeo")
}

#[test]
fn a_built_image_is_pushed_and_other_tools_read_it() {
    if !common::is_root() {
        eprintln!("SKIP: skopeo and podman run as root here");
        return;
    }
    let r = registry::registries();
    for env in envs() {
        example(&env);
        env.run(["build", "-t", "app:1", "."]).ok();
        let who = format!("{:?}", env.who).to_lowercase();
        // Plain HTTP (loopback), then TLS + Basic, then TLS + Bearer tokens.
        let plain = format!("{}/pushed-{who}:1", r.plain_host());
        let p = env.run(["push", "app:1", &plain]);
        p.ok();
        let digest = p.stdout.trim().to_string();
        assert!(digest.starts_with("sha256:"), "{}", p.stdout);
        assert!(p.stderr.contains("uploaded"), "{}", p.stderr);
        // Again: every blob is there already, the manifest is the same.
        let again = env.run(["image", "push", "app:1", &plain]);
        again.ok();
        assert_eq!(again.stdout.trim(), digest);
        assert!(
            again.stderr.contains("0 blob(s) uploaded"),
            "{}",
            again.stderr
        );
        let out = skopeo(&[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{plain}"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Digest"], digest.as_str(), "{v}");
        let layout = env.dir.join(format!("oci-{who}"));
        let out = skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{plain}"),
            &format!("oci:{}:app", layout.display()),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        registry::trust_ca(&env, r.basic);
        let basic = format!("{}/pushed-{who}:1", r.basic_host());
        let creds = format!("{}:{}", registry::USER, registry::PASS);
        env.run(["push", "--creds", &creds, "app:1", &basic]).ok();
        let nocreds = env.run(["push", "app:1", &basic]);
        nocreds.assert_code(125);
        assert!(
            nocreds.stderr.contains("foxbox::build::push"),
            "{}",
            nocreds.stderr
        );
        registry::trust_ca(&env, r.token);
        let token = format!("{}/pushed-{who}:1", r.token_host());
        let t = env.run(["push", "--creds", &creds, "app:1", &token]);
        t.ok();
        assert_eq!(t.stdout.trim(), digest);
        let out = skopeo(&["inspect", "--creds", &creds, &format!("docker://{token}")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        assert_eq!(podman_prints(&env, &plain), "hello from the context\n");
    }
}

/// What `podman run IMAGE` prints (pulled over plain HTTP into its own storage in the env's
/// dir, removed after).
fn podman_prints(env: &Env, image: &str) -> String {
    let store = env.dir.join("podman");
    let runroot = env.short_dir();
    let podman = |args: &[&str]| {
        std::process::Command::new("podman")
            .arg("--root")
            .arg(store.join("root"))
            .arg("--runroot")
            .arg(runroot.path())
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .expect("podman")
    };
    let out = podman(&["pull", "-q", "--tls-verify=false", image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // This host refuses crun its rlimits (any value, `--ulimit host` too); runc given
    // explicit ones runs the box.
    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--runtime",
        "runc",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        image,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let printed = if stderr.contains("rlimit") {
        // Still refused: the file is read from a created container instead.
        eprintln!("podman cannot run containers here ({stderr}): reading the file with podman cp");
        let c = podman(&["create", image]);
        assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
        let id = String::from_utf8_lossy(&c.stdout).trim().to_string();
        let cp = podman(&["cp", &format!("{id}:/app/hello.txt"), "-"]);
        assert!(
            cp.status.success(),
            "{}",
            String::from_utf8_lossy(&cp.stderr)
        );
        let mut a = tar::Archive::new(&cp.stdout[..]);
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        text
    } else {
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let _ = std::process::Command::new("rm")
        .arg("-rf")
        .arg(&store)
        .status();
    assert!(
        out.status.success() || stderr.contains("rlimit"),
        "{stderr}"
    );
    printed
}

/// The manifest `skopeo inspect --raw` reads for `image` (plain HTTP).
fn raw_manifest(image: &str) -> serde_json::Value {
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn push_in_docker_format_in_chunks_and_mounted_from_another_repository() {
    if !common::is_root() {
        eprintln!("SKIP: skopeo and podman run as root here");
        return;
    }
    let r = registry::registries();
    for env in envs() {
        example(&env);
        env.run(["build", "-t", "app:1", "."]).ok();
        let who = format!("{:?}", env.who).to_lowercase();
        // A relay of our own: the requests of this push only.
        let relay = registry::relay::Relay::start(r.plain);
        let host = format!("127.0.0.1:{}", relay.port);
        let sent = |repo: &str, how: &str| {
            let needle = format!("{how} /v2/{repo}/blobs/uploads/");
            relay
                .requests()
                .iter()
                .filter(|l| l.starts_with(&needle))
                .count()
        };

        // Docker's format, in chunks of 128 KiB (busybox's layer takes several).
        let dock = format!("{host}/dock-{who}:1");
        let p = env.run([
            "push",
            "--format",
            "docker",
            "--chunk-size",
            "128k",
            "app:1",
            &dock,
        ]);
        p.ok();
        let docker_digest = p.stdout.trim().to_string();
        // The config and four layers (busybox's and one per step).
        assert!(p.stderr.contains("5 blob(s) uploaded"), "{}", p.stderr);
        assert!(
            sent(&format!("dock-{who}"), "PATCH") > 2,
            "{:?}",
            relay.requests()
        );
        let m = raw_manifest(&dock);
        assert_eq!(
            m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
            "{m}"
        );
        assert_eq!(
            m["config"]["mediaType"], "application/vnd.docker.container.image.v1+json",
            "{m}"
        );
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 4, "{m}");
        for l in layers {
            assert_eq!(
                l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "{m}"
            );
        }
        let out = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{dock}")]);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Digest"], docker_digest.as_str(), "{v}");

        // The OCI manifest of the same image: another digest, the same config blob and base
        // layer (mounted from the Docker push's repository), the steps' plain tar layers.
        let oci = format!("{host}/oci-{who}:1");
        let p = env.run(["push", "--format", "oci", "app:1", &oci]);
        p.ok();
        assert_ne!(p.stdout.trim(), docker_digest);
        assert!(
            p.stderr.contains("3 blob(s) uploaded, 2 mounted"),
            "{}",
            p.stderr
        );
        let o = raw_manifest(&oci);
        assert_eq!(
            o["mediaType"], "application/vnd.oci.image.manifest.v1+json",
            "{o}"
        );
        assert_eq!(o["config"]["digest"], m["config"]["digest"]);

        // A third repository of the registry: every blob mounted, none sent.
        let copy = format!("{host}/copy-{who}:1");
        let p = env.run(["push", "app:1", &copy]);
        p.ok();
        assert!(
            p.stderr.contains("0 blob(s) uploaded, 5 mounted"),
            "{}",
            p.stderr
        );
        let repo = format!("copy-{who}");
        assert_eq!(sent(&repo, "PATCH") + sent(&repo, "PUT"), 0);
        assert_eq!(sent(&repo, "POST"), 5, "{:?}", relay.requests());

        // Other tools and foxbox itself read the Docker-format image.
        assert_eq!(podman_prints(&env, &dock), "hello from the context\n");
        env.run(["pull", &dock]).ok();
        let run = env.run(["run", "--rm", &dock]);
        run.ok();
        assert_eq!(run.stdout, "hello from the context\n");
    }
}

#[test]
fn the_same_inputs_build_the_same_image_anywhere_with_source_date_epoch() {
    let build = |env: &Env, epoch: Option<&str>, dir: &str| {
        let mut c = env.foxbox(["build", "--progress", "quiet", dir]);
        if let Some(e) = epoch {
            c.env("SOURCE_DATE_EPOCH", e);
        }
        let r = common::Run::from(c.output().unwrap());
        r.ok();
        r.stdout.trim().to_string()
    };
    let mut ids = Vec::new();
    let mut plain = Vec::new();
    // Two machines (stores), two checkouts (directories) made on different days.
    for (who, dir, day) in [
        (Who::User, "one", "2020-01-02 03:04:05"),
        (Who::Root, "elsewhere/two", "2024-06-07 08:09:10"),
    ] {
        let env = Env::new(who);
        if !env.who.available() {
            return;
        }
        env.import_busybox();
        env.write(&format!("{dir}/hello.txt"), "hello from the context\n");
        env.write(
            &format!("{dir}/src/main.c"),
            "int main(void) { return 0; }\n",
        );
        env.write(&format!("{dir}/Foxfile.toml"), EXAMPLE);
        env.sh(&format!(
            "find {}/{dir} -exec touch -h -d '{day}' {{}} +",
            env.work().display()
        ));
        ids.push(build(&env, Some("1000000000"), dir));
        plain.push(build(&env, None, dir));
        // A second build of the first env's kind runs later still: the clock moved on.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(ids[0], ids[1], "SOURCE_DATE_EPOCH builds differ");
    assert_ne!(plain[0], plain[1], "without it, the times are the layers'");
    assert_ne!(ids[0], plain[0]);
}

#[test]
fn history_shows_the_steps_and_prune_empties_the_build_cache() {
    for env in envs() {
        example(&env);
        env.run(["build", "-t", "app:1", "."]).ok();
        let h = env.run(["image", "history", "--no-trunc", "app:1"]);
        h.ok();
        let lines: Vec<&str> = h.stdout.lines().collect();
        assert!(lines[0].starts_with("LAYER"), "{}", h.stdout);
        // Newest first: the two runs, the copy, then the base.
        assert!(
            lines[1].contains("RUN sh -c echo fox:x:1234"),
            "{}",
            h.stdout
        );
        assert!(
            lines[2].contains("RUN echo built > /app/built.txt"),
            "{}",
            h.stdout
        );
        assert!(
            lines[3].contains("COPY hello.txt src/ /app/"),
            "{}",
            h.stdout
        );
        assert!(lines[4].contains("FROM busybox:latest"), "{}", h.stdout);
        assert_eq!(lines.len(), 5, "{}", h.stdout);
        let j = env.run(["image", "history", "--format", "json", "app:1"]);
        let rows: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
        assert_eq!(rows[2]["size"], 52, "{rows}");

        // `image ls -a` shows the steps' images; prune removes them, not the named image.
        let all = env.run(["image", "ls", "-a", "-q"]).stdout.lines().count();
        let named = env.run(["image", "ls", "-q"]).stdout.lines().count();
        assert_eq!(all, named + 3, "{:?}", env.who);
        let p = env.run(["image", "prune"]);
        p.ok();
        assert_eq!(p.stdout.lines().count(), 3, "{}", p.stdout);
        assert_eq!(
            env.run(["image", "ls", "-a", "-q"]).stdout.lines().count(),
            named
        );
        let r = env.run(["run", "--rm", "app:1"]);
        assert_eq!(r.stdout, "hello from the context\n");
        let c = env.run(["system", "check"]);
        assert_eq!((c.code, c.stdout.as_str()), (0, ""));
        // The cache is gone: the next build runs every step again, to the same image.
        let b = env.run(["build", "-t", "app:1", "."]);
        assert_eq!(counts(&b.stderr), (0, 3), "{}", b.stderr);
    }
}

#[test]
fn a_file_changed_in_place_to_the_same_size_is_copied_again() {
    let env = Env::new(Who::User);
    if !env.who.available() {
        return;
    }
    env.import_busybox();
    env.write(
        "Foxfile.toml",
        "[build]\nfrom = \"busybox\"\n[[build.steps]]\ncopy = \"f\"\ndest = \"/f\"\n",
    );
    env.write("f", "aaaa");
    env.run(["build", "-t", "s:1", "."]).ok();
    // Same size, at once (the same mtime second): the remembered digest must not stand.
    env.write("f", "bbbb");
    let b = env.run(["build", "-t", "s:1", "."]);
    assert_eq!(counts(&b.stderr), (0, 1), "{}", b.stderr);
    assert_eq!(env.run(["run", "--rm", "s:1", "cat", "/f"]).stdout, "bbbb");
    let b = env.run(["build", "-t", "s:1", "."]);
    assert_eq!(counts(&b.stderr), (1, 0), "{}", b.stderr);
}

#[test]
fn on_a_terminal_a_steps_output_is_a_window_folded_when_it_succeeds() {
    for env in envs() {
        env.import_busybox();
        env.write(
            "Foxfile.toml",
            "[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"for i in 1 2 3 4 5 6 7 8; do echo line$i; done\"\n[[build.steps]]\nrun = \"echo bad; exit 4\"\n",
        );
        let on_tty = |progress: &str| {
            let cmd = format!(
                "{} build --no-cache --progress {progress} -t w:1 . 2>&1",
                common::foxbox_bin().display()
            );
            let mut c = env.command("script");
            c.args(["-qec", &cmd, "/dev/null"]).current_dir(env.work());
            String::from_utf8_lossy(&c.output().expect("script").stdout).into_owned()
        };
        let out = on_tty("auto");
        // The last six lines in the window (dim), then erased once the step succeeded.
        let window: String = (3..=8)
            .map(|i| format!("\x1b[2m  line{i}\x1b[0m\r\n"))
            .collect();
        assert!(
            out.contains(&format!("{window}\x1b[6A\x1b[J[1/2] done in")),
            "{:?}: {out:?}",
            env.who
        );
        // A failing step's window stays, and the diagnostic follows it.
        let failed = out
            .split("[2/2] RUN")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        assert!(
            failed.contains("\x1b[2m  bad\x1b[0m") && !failed.contains("\x1b[1A\x1b[J"),
            "{:?}: {failed:?}",
            env.who
        );
        assert!(failed.contains("exit code 4"), "{failed:?}");
        // Plain: every line as it came, nothing redrawn.
        let out = on_tty("plain");
        assert!(out.contains("line1\r\nline2"), "{:?}: {out:?}", env.who);
        assert!(!out.contains("\x1b[J"), "{:?}: {out:?}", env.who);
    }
}

/// The racy cases git's index guards against: a file rewritten to the same size with its
/// mtime put back (`touch -r`), and one replaced by a rename with the same size and mtime.
/// Only the change time and the inode tell: each must still rebuild the copy.
#[test]
fn a_file_changed_with_its_size_and_mtime_kept_is_copied_again() {
    for env in envs() {
        env.import_busybox();
        env.write(
            "Foxfile.toml",
            "[build]\nfrom = \"busybox\"\n[[build.steps]]\ncopy = [\"f\", \"d/\"]\ndest = \"/c/\"\n",
        );
        env.write("f", "aaaa");
        env.write("d/g", "1111");
        let build = || {
            let b = env.run(["build", "-t", "m:1", "."]);
            b.ok();
            counts(&b.stderr)
        };
        let cat = || {
            env.run(["run", "--rm", "m:1", "cat", "/c/f", "/c/g"])
                .stdout
        };
        let sh = |script: &str| {
            let ok = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(env.work())
                .status()
                .unwrap()
                .success();
            assert!(ok, "{script}");
        };
        assert_eq!(build(), (0, 1), "{:?}", env.who);
        assert_eq!(build(), (1, 0));
        // Rewritten in place, mtime restored to the nanosecond: only ctime moved.
        sh("cp -p f ref && printf bbbb > f && touch -r ref f && rm ref");
        assert_eq!(build(), (0, 1), "{:?}: an in-place edit", env.who);
        assert_eq!(cat(), "bbbb1111");
        // Replaced by a rename (another inode), size and mtime as before, inside a directory.
        sh("cp -p d/g ref && printf 2222 > d/new && touch -r ref d/new && mv d/new d/g && rm ref");
        assert_eq!(build(), (0, 1), "{:?}: a rename over it", env.who);
        assert_eq!(cat(), "bbbb2222");
        assert_eq!(build(), (1, 0));
    }
}

/// A no-op rebuild (every step cached, the tag already on the image) changes nothing in the
/// store: no index, cache or blob written, nothing synced (its time is then the context's
/// `stat`s, not the disk's).
#[test]
fn a_no_op_rebuild_writes_nothing_to_the_store() {
    use std::os::unix::fs::MetadataExt;
    for env in envs() {
        example(&env);
        env.run(["build", "-t", "app:1", "."]).ok();
        let images = env.store().join("images");
        let seen = || {
            ["index.json", "build-cache.json", "blobs/sha256", "tmp"]
                .iter()
                .map(|p| {
                    let m = std::fs::metadata(images.join(p)).unwrap();
                    (p.to_string(), m.ino(), m.mtime(), m.mtime_nsec())
                })
                .collect::<Vec<_>>()
        };
        let before = seen();
        let b = env.run(["build", "-t", "app:1", "."]);
        b.ok();
        assert_eq!(counts(&b.stderr), (3, 0), "{}", b.stderr);
        assert_eq!(seen(), before, "{:?}", env.who);
        // A new tag is a change: the index is written.
        env.run(["build", "-t", "app:2", "."]).ok();
        assert_ne!(seen()[0], before[0]);
    }
}
