//! `foxbox build` of Containerfiles (the common subset) through the built binary, as root and
//! as the unprivileged user: realistic files give the images the same recipe as a Foxfile
//! would, and an unsupported instruction is a diagnostic at its line.

mod common;

use std::ffi::OsStr;

use common::{envs, Env, Who};

fn inspect(env: &Env, image: &str) -> serde_json::Value {
    let r = env.run(["image", "inspect", image]);
    r.ok();
    serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()[0].clone()
}

#[test]
fn entrypoint_cmd_env_workdir_user_and_a_continued_run() {
    for env in envs() {
        env.import_busybox();
        env.write(
            "app/greet.sh",
            "#!/bin/sh\necho \"$GREETING from $(pwd) as $(id -u)\" \"$@\"\n",
        );
        env.write(
            "app/Containerfile",
            r#"# A small service image.
FROM busybox
LABEL org.opencontainers.image.title="greeter" maintainer=fox
ENV GREETING=hello \
    MODE=prod
WORKDIR /srv
COPY --chmod=0755 greet.sh bin/
RUN mkdir -p data \
    && echo ready > data/state \
    && chown -R 1000:1000 data
USER 1000
WORKDIR data
EXPOSE 8080 53/udp
ENTRYPOINT ["/srv/bin/greet.sh"]
CMD ["world"]
"#,
        );
        let b = env.run(["build", "-t", "greeter:1", "app"]);
        b.ok();
        let r = env.run(["run", "--rm", "greeter:1"]);
        r.ok();
        assert_eq!(
            r.stdout, "hello from /srv/data as 1000 world\n",
            "{:?}",
            env.who
        );
        let c = &inspect(&env, "greeter:1")["config"];
        assert_eq!(
            c["entrypoint"],
            serde_json::json!(["/srv/bin/greet.sh"]),
            "{c}"
        );
        assert_eq!(c["cmd"], serde_json::json!(["world"]));
        assert_eq!(c["user"], "1000");
        assert_eq!(c["workdir"], "/srv/data");
        let r = env.run([
            "run",
            "--rm",
            "--entrypoint",
            "",
            "greeter:1",
            "sh",
            "-c",
            "cat state; stat -c '%u %a' /srv/bin/greet.sh; echo $MODE",
        ]);
        assert_eq!(
            r.stdout, "ready\n0 755\nprod\n",
            "{:?}: {}",
            env.who, r.stderr
        );
    }
}

#[test]
fn a_multi_stage_containerfile_copies_the_artefact_into_a_small_image() {
    for env in envs() {
        env.import_busybox();
        env.write("ms/src/main.txt", "source\n");
        env.write(
            "ms/Dockerfile",
            r#"ARG BASE=busybox
FROM ${BASE} AS build
ARG VERSION=1.0
WORKDIR /src
COPY src/ .
RUN ["sh", "-c", "mkdir -p /out && (cat main.txt; echo v$VERSION) > /out/app.txt"]

FROM scratch
COPY --from=build --chown=7:8 /out/app.txt /app.txt
COPY --from=build /bin/busybox /bin/busybox
CMD ["/bin/busybox", "cat", "/app.txt"]
"#,
        );
        let b = env.run(["build", "--build-arg", "VERSION=2", "-t", "small:1", "ms"]);
        b.ok();
        let r = env.run(["run", "--rm", "small:1"]);
        r.ok();
        assert_eq!(r.stdout, "source\nv2\n", "{:?}", env.who);
        let r = env.run([
            "run",
            "--rm",
            "small:1",
            "/bin/busybox",
            "stat",
            "-c",
            "%u:%g",
            "/app.txt",
        ]);
        assert_eq!(r.stdout, "7:8\n");
        // Only its own two layers: the build stage's stay out.
        assert_eq!(
            inspect(&env, "small:1")["layers"].as_array().unwrap().len(),
            2
        );
        // Built again: all cached.
        let b = env.run(["build", "--build-arg", "VERSION=2", "-t", "small:1", "ms"]);
        assert_eq!(b.stderr.matches("] CACHED").count(), 5, "{}", b.stderr);
    }
}

#[test]
fn unsupported_instructions_are_named_at_their_line() {
    let env = Env::new(Who::User);
    if !env.who.available() {
        return;
    }
    env.import_busybox();
    env.write(
        "bad/Containerfile",
        "FROM busybox\nRUN true\nHEALTHCHECK CMD wget -q localhost\nADD https://example.com/x /x\nSHELL [\"/bin/bash\", \"-c\"]\n",
    );
    let b = env.run(["build", "-t", "bad:1", "bad"]);
    b.assert_code(125);
    assert!(
        b.stderr.contains("foxbox::build::containerfile"),
        "{}",
        b.stderr
    );
    for (line, what) in [(3, "HEALTHCHECK"), (4, "ADD of a URL"), (5, "SHELL")] {
        assert!(
            b.stderr.contains(&format!("Containerfile:{line}:1")) && b.stderr.contains(what),
            "line {line} {what}: {}",
            b.stderr
        );
    }
    // Nothing ran, nothing was stored.
    assert_eq!(env.run(["ps", "-a", "-q"]).stdout, "");
    assert!(!env.run(["image", "ls"]).stdout.contains("bad"));
}

#[test]
fn a_debian_image_with_files_copied_and_users_added() {
    let Some(tarball) = common::debian_tarball() else {
        return;
    };
    for who in [Who::User, Who::Root] {
        let env = Env::new(who);
        if !env.who.available() {
            continue;
        }
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
        env.write("deb/etc/motd.d/fox", "welcome\n");
        env.write(
            "deb/Containerfile",
            "FROM debian\nRUN useradd -m -u 1234 -s /bin/sh fox && groupadd -g 2345 den && usermod -aG den fox\nCOPY --chown=1234:2345 etc/motd.d/ /home/fox/motd/\nUSER fox\nWORKDIR /home/fox\nCMD [\"sh\", \"-c\", \"id; cat motd/fox; stat -c '%U:%G' motd/fox\"]\n",
        );
        env.run(["build", "-t", "deb:1", "deb"]).ok();
        let r = env.run(["run", "--rm", "deb:1"]);
        r.ok();
        assert_eq!(
            r.stdout, "uid=1234(fox) gid=1234(fox) groups=1234(fox),2345(den)\nwelcome\nfox:den\n",
            "{:?}: {}",
            who, r.stderr
        );
    }
}
