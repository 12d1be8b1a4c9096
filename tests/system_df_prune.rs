//! `foxbox system df` and `system prune [-a] [--volumes] [-f]`, as root and as the
//! unprivileged user: df counts images, boxes and volumes (total, in use, size, what prune
//! would free) in podman's shape; prune removes exited boxes, unnamed images (all unused
//! ones with -a) and unused volumes (with --volumes), never what a running box uses, prints
//! what it removed and the space freed, and asks first unless -f.

mod common;

use common::{envs_with_busybox as envs, Env};
use serde_json::Value;

fn df(env: &Env) -> Vec<Value> {
    let r = env.run(["system", "df", "--format", "json"]);
    r.ok();
    serde_json::from_str(&r.stdout).expect("df json")
}

/// (total, active, size, reclaimable) of one kind.
fn line(v: &[Value], kind: &str) -> (u64, u64, u64, u64) {
    let l = v.iter().find(|l| l["Type"] == kind).expect(kind);
    let n = |k: &str| l[k].as_u64().expect(k);
    (n("Total"), n("Active"), n("Size"), n("Reclaimable"))
}

/// A tarball image of its own (content `tag`), returned as a path.
fn tar(env: &Env, tag: &str) -> String {
    env.write(&format!("{tag}/id"), tag);
    let w = env.work().display().to_string();
    env.sh(&format!("tar -C {w}/{tag} -cf {w}/{tag}.tar ."));
    format!("{w}/{tag}.tar")
}

fn image_ids(env: &Env) -> Vec<String> {
    let r = env.run(["image", "ls", "-q", "--no-trunc"]);
    r.ok();
    r.stdout
        .lines()
        .map(|l| l.trim_start_matches("sha256:").to_string())
        .collect()
}

#[test]
fn df_and_prune() {
    for env in envs() {
        let who = format!("{:?}", env.who);
        let busybox = env.image_hex();
        // A dangling image: "t" moves from the first tarball's image to the second's.
        let imp = |t: &str| {
            let r = env.run(["image", "import", "--name", "t", &tar(&env, t)]);
            r.ok();
            r.stdout.trim().to_string()
        };
        let dangling = imp("a");
        let named = imp("b");
        assert_ne!(dangling, named, "{who}");
        assert!(
            image_ids(&env).contains(&dangling),
            "{who}: {:?}",
            image_ids(&env)
        );

        env.run(["volume", "create", "idle"]).ok();
        env.run([
            "run",
            "--name",
            "ex",
            "busybox",
            "sh",
            "-c",
            "head -c 300000 /dev/urandom > /big",
        ])
        .ok();
        env.run([
            "run", "-d", "--name", "up", "-v", "held:/v", "busybox", "sleep", "600",
        ])
        .ok();

        let human = env.run(["system", "df"]);
        human.ok();
        let rows: Vec<Vec<&str>> = human
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
            "{who}"
        );
        assert_eq!(
            rows[1][..3],
            ["Images", "3", "1"],
            "{who}: {}",
            human.stdout
        );
        assert_eq!(rows[2][..3], ["Boxes", "2", "1"], "{who}: {}", human.stdout);
        assert_eq!(
            rows[3][..4],
            ["Local", "Volumes", "2", "1"],
            "{who}: {}",
            human.stdout
        );
        let v = df(&env);
        let (_, _, size, free) = line(&v, "Boxes");
        assert!(free >= 300_000 && size > free, "{who}: boxes {size} {free}");
        let (_, _, size, free) = line(&v, "Images");
        assert!(size > free && free > 0, "{who}: images {size} {free}");

        // Asked, and not answered yes: nothing goes.
        let r = env.run(["system", "prune"]);
        assert_eq!(r.code, 125, "{who}: {r:?}");
        assert!(r.stderr.contains("nothing removed"), "{who}: {r:?}");
        assert_eq!(line(&df(&env), "Boxes").0, 2, "{who}");

        // Exited boxes and the dangling image.
        let r = env.run(["system", "prune", "-f"]);
        r.ok();
        assert!(
            r.stdout.starts_with("Deleted Boxes\n"),
            "{who}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains(&format!("Deleted Images\n{dangling}\n")),
            "{who}: {}",
            r.stdout
        );
        assert!(!r.stdout.contains("Deleted Volumes"), "{who}: {}", r.stdout);
        assert!(
            r.stdout.contains("Total reclaimed space: "),
            "{who}: {}",
            r.stdout
        );
        assert!(
            !r.stdout.contains("Total reclaimed space: 0B"),
            "{who}: {}",
            r.stdout
        );
        let ids = image_ids(&env);
        assert!(
            !ids.contains(&dangling) && ids.contains(&named),
            "{who}: {ids:?}"
        );
        assert!(!env.run(["ps", "-a"]).stdout.contains(" ex "), "{who}");

        // -a --volumes: every image and volume no box uses, but not the running box's.
        let r = env.run(["system", "prune", "-a", "-f", "--volumes"]);
        r.ok();
        assert!(
            r.stdout.contains("Deleted Volumes\nidle\n"),
            "{who}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains(&format!("Deleted Images\n{named}\n")),
            "{who}: {}",
            r.stdout
        );
        assert_eq!(image_ids(&env), std::slice::from_ref(&busybox), "{who}");
        let vols = env.run(["volume", "ls", "-q"]).stdout;
        assert_eq!(vols, "held\n", "{who}");
        assert!(
            env.run(["ps"]).stdout.contains("up"),
            "{who}: the running box stays"
        );

        env.run(["rm", "-f", "up"]).ok();
        let r = env.run(["system", "prune", "-a", "-f", "--volumes"]);
        r.ok();
        assert!(r.stdout.contains(&busybox), "{who}: {}", r.stdout);
        for kind in ["Images", "Boxes", "Local Volumes"] {
            assert_eq!(line(&df(&env), kind), (0, 0, 0, 0), "{who}: {kind}");
        }
        let c = env.run(["system", "check"]);
        assert_eq!((c.code, c.stdout.as_str()), (0, ""), "{who}");
    }
}

/// `system prune` also empties the build cache, as podman's does: the images of a build's
/// steps (shown by `image ls -a` only) go, the image the build named stays and still runs.
#[test]
fn prune_removes_the_build_cache() {
    for env in envs() {
        let who = format!("{:?}", env.who);
        env.write("ctx/hello.txt", "hello\n");
        env.write(
            "ctx/Foxfile.toml",
            "[build]\nfrom = \"busybox\"\ncmd = [\"cat\", \"/hello.txt\"]\n\n\
             [[build.steps]]\ncopy = [\"hello.txt\"]\ndest = \"/\"\n\n\
             [[build.steps]]\nrun = \"echo more >> /hello.txt\"\n",
        );
        let ctx = env.work().join("ctx");
        env.run(["build", "-t", "app:1", ctx.to_str().unwrap()])
            .ok();
        let count = |all: bool| {
            let mut a = vec!["image", "ls", "-q"];
            if all {
                a.push("-a");
            }
            env.run(a).stdout.lines().count()
        };
        assert!(count(true) > count(false), "{who}: no build cache to prune");
        let r = env.run(["system", "prune", "-f"]);
        r.ok();
        assert!(r.stdout.contains("Deleted Images\n"), "{who}: {}", r.stdout);
        assert_eq!(count(true), count(false), "{who}: the build cache stayed");
        let out = env.run(["run", "--rm", "app:1"]);
        assert_eq!(out.stdout, "hello\nmore\n", "{who}: {out:?}");
        let c = env.run(["system", "check"]);
        assert_eq!((c.code, c.stdout.as_str()), (0, ""), "{who}");
    }
}
