//! Every named fault point (`src/fault.rs`), as root and as the unprivileged user: the
//! command that reaches it is killed there (SIGKILL, by `FOXBOX_FAULT`); afterwards `system
//! check` reports only what `system check --repair` then fixes, the next command of the same
//! kind succeeds, and what the store held before (an image, a box, a volume's data) is intact.
//!
//! Needs the binary built with the points: `cargo test --features fault-injection --test
//! fault_points` (Cargo.toml's `required-features` leaves it out of a plain `cargo test`).

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{eventually, Env, Run, Who};

/// What a point's command is, and so how it is set up and what "the next one" is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Import,
    Load,
    Start,
    Rm,
    VolumeRm,
    ImageRm,
    Build,
    /// `foxbox oci create`, whose leftovers `oci delete` removes (not `system check`).
    OciCreate,
}

/// Every point with the command that reaches it.
fn walk() -> Vec<(&'static str, Kind)> {
    use Kind::*;
    vec![
        ("import.tmp-made", Import),
        ("import.unpacked", Import),
        ("import.after-layer", Import),
        ("before-rename:index.json", Import),
        ("import.after-index", Import),
        ("pull.between-layers", Load),
        ("pull.before-index", Load),
        ("start.staged", Start),
        ("start.recorded", Start),
        ("start.cgroup-recorded", Start),
        ("before-rename:config.json", Start),
        ("start.after-clone", Start),
        ("start.after-network", Start),
        ("start.before-running", Start),
        ("before-rename:state.json", Start),
        ("start.after-running", Start),
        ("rm.before-retire", Rm),
        ("rm.retired", Rm),
        ("volume-rm.renamed", VolumeRm),
        ("image-rm.index-written", ImageRm),
        ("build.step-ran", Build),
        ("build.layer-stored", Build),
        ("build.after-index", Build),
        ("oci-create.cgroup-made", OciCreate),
        ("oci-create.process-released", OciCreate),
        ("oci-create.host-mounted", OciCreate),
        ("oci-create.before-state", OciCreate),
    ]
}

/// The command every box of this test runs.
const SLEEP: &str = "sleep 98792";

struct World {
    env: Env,
    /// `--cgroup-parent` and its directories (root only): every box cgroup there is ours.
    parent: Option<(String, Vec<PathBuf>)>,
    fired: PathBuf,
    n: usize,
}

impl World {
    fn new(who: Who) -> World {
        let env = Env::new(who);
        env.import_busybox();
        let parent = (who == Who::Root).then(|| common::own_cgroup_parent("faulttest"));
        let fired = env.work().join("fired");
        World {
            env,
            parent,
            fired,
            n: 0,
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.env.run(args)
    }

    fn faulted(&self, point: &str, args: &[&str]) -> Run {
        let out = self
            .env
            .foxbox(args)
            .env("FOXBOX_FAULT", point)
            .env("FOXBOX_FAULT_FIRED", &self.fired)
            .output()
            .expect("run foxbox");
        Run::from(out)
    }

    /// A tarball image of its own (a layer no other image has), in the work dir.
    fn unique_tar(&self, tag: &str) -> String {
        let dir = format!("rootfs-{tag}");
        self.env.write(&format!("{dir}/id"), tag);
        let tar = self.env.work().join(format!("{tag}.tar"));
        self.env.sh(&format!(
            "tar -C {w}/{dir} -cf {t} .",
            w = self.env.work().display(),
            t = tar.display()
        ));
        tar.display().to_string()
    }

    fn start_args<'a>(&'a self, point: &str, name: &'a str) -> Vec<&'a str> {
        let mut a = vec!["run", "-d", "--name", name];
        if let Some((parent, _)) = &self.parent {
            a.extend(["--pids-limit", "64", "--cgroup-parent", parent.as_str()]);
        }
        if point == "start.after-network" {
            a.extend(["--network", "slirp4netns"]);
        }
        a.extend(["busybox", "sleep", "98792"]);
        a
    }

    fn ps_names(&self) -> Vec<String> {
        let r = self.run(&["ps", "-a", "--format", "json"]);
        r.ok();
        let v: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("ps json");
        v.iter()
            .filter_map(|b| (b["Names"][0].as_str().or(b["Names"].as_str())).or(b["Name"].as_str()))
            .map(str::to_string)
            .collect()
    }

    /// `system check` until clean, repairing in between; every problem it reported must be one
    /// that `--repair` fixed. Returns the kinds reported.
    fn check_and_repair(&self, what: &str) -> Vec<String> {
        let start = Instant::now();
        let mut kinds = Vec::new();
        loop {
            let c = self.run(&["system", "check"]);
            if c.code == 0 {
                assert_eq!(c.stdout, "", "{what}: check exits 0 but says {}", c.stdout);
                return kinds;
            }
            assert_eq!(c.code, 1, "{what}: system check: {c:?}");
            for l in c.stdout.lines() {
                let k = l.split_whitespace().next().unwrap_or_default().to_string();
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            let r = self.run(&["system", "check", "--repair"]);
            // A box's processes may take a moment to die after its supervisor; what is left
            // then is retried, but never for long.
            assert!(
                r.code == 0 || start.elapsed() < Duration::from_secs(10),
                "{what}: --repair left problems:\n{}\n(check said:\n{})",
                r.stdout,
                c.stdout
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the store held before every point is still there and works.
    fn nothing_lost(&self, what: &str) {
        assert!(
            self.ps_names().contains(&"keep".to_string()),
            "{what}: box keep lost"
        );
        let r = self.run(&["image", "ls"]);
        r.ok();
        assert!(
            r.stdout.contains("busybox"),
            "{what}: image lost: {}",
            r.stdout
        );
        let r = self.run(&["run", "--rm", "-v", "keepvol:/v", "busybox", "cat", "/v/f"]);
        r.ok();
        assert_eq!(r.stdout, "kept\n", "{what}: volume data lost");
    }

    fn point(&mut self, point: &'static str, kind: Kind) {
        self.n += 1;
        let tag = format!("p{}", self.n);
        let what = format!("{:?} {point}", self.env.who);
        let _ = fs::remove_file(&self.fired);
        let mut reported: Vec<String>;
        let faulted = match kind {
            Kind::Import => {
                let tar = self.unique_tar(&tag);
                let r = self.faulted(point, &["image", "import", "--name", &tag, &tar]);
                self.assert_fired(&what, point);
                reported = self.check_and_repair(&what);
                self.run(&["image", "import", "--name", &tag, &tar]).ok();
                self.run(&["image", "rm", &tag]).ok();
                r
            }
            Kind::Load => {
                let tar = self.unique_tar(&tag);
                self.run(&["image", "import", "--name", &tag, &tar]).ok();
                let saved = self.env.work().join(format!("{tag}-oci.tar"));
                let saved = saved.display().to_string();
                self.run(&["image", "save", &tag, "-o", &saved]).ok();
                self.run(&["image", "rm", &tag]).ok();
                let r = self.faulted(point, &["image", "load", "-q", "-i", &saved]);
                self.assert_fired(&what, point);
                reported = self.check_and_repair(&what);
                self.run(&["image", "load", "-q", "-i", &saved]).ok();
                self.run(&["image", "rm", &tag]).ok();
                r
            }
            Kind::Start => {
                let args = self.start_args(point, &tag);
                let r = self.faulted(point, &args);
                self.assert_fired(&what, point);
                reported = self.check_and_repair(&what);
                // Kept (as exited) or gone, the box's name is free again once it is removed.
                if self.ps_names().contains(&tag) {
                    self.run(&["rm", "-f", &tag]).ok();
                }
                self.run(&args).ok();
                self.run(&["rm", "-f", &tag]).ok();
                // The same point in a foreground `run --rm`, whose CLI is the box's parent.
                let _ = fs::remove_file(&self.fired);
                let fg = format!("{tag}-fg");
                // A short box: on this path a point may not be reached (a foreground box is
                // recorded once, with its running state: no state.json at start).
                let mut args = self.start_args(point, &fg);
                args.retain(|a| *a != "-d" && *a != "98792");
                args.insert(1, "--rm");
                args.push("3");
                self.faulted(point, &args);
                let fired = fs::read_to_string(&self.fired).unwrap_or_default();
                assert!(
                    fired.lines().any(|l| l == point) || point == "before-rename:state.json",
                    "{what}: not reached by a foreground run --rm"
                );
                reported.extend(self.check_and_repair(&format!("{what} (foreground)")));
                if self.ps_names().contains(&fg) {
                    self.run(&["rm", "-f", &fg]).ok();
                }
                let mut args = self.start_args(point, &fg);
                args.retain(|a| *a != "-d" && *a != "98792");
                args.push("0");
                self.run(&args).ok();
                self.run(&["rm", "-f", &fg]).ok();
                r
            }
            Kind::Rm => {
                self.run(&self.start_args(point, &tag)).ok();
                let r = self.faulted(point, &["rm", "-f", &tag]);
                self.assert_fired(&what, point);
                reported = self.check_and_repair(&what);
                if self.ps_names().contains(&tag) {
                    self.run(&["rm", "-f", &tag]).ok();
                }
                self.run(&self.start_args(point, &tag)).ok();
                self.run(&["rm", "-f", &tag]).ok();
                r
            }
            Kind::VolumeRm => {
                self.run(&["volume", "create", &tag]).ok();
                let r = self.faulted(point, &["volume", "rm", &tag]);
                self.assert_fired(&what, point);
                reported = self.check_and_repair(&what);
                self.run(&["volume", "create", &tag]).ok();
                self.run(&["volume", "rm", &tag]).ok();
                r
            }
            Kind::ImageRm => {
                let tar = self.unique_tar(&tag);
                self.run(&["image", "import", "--name", &tag, &tar]).ok();
                let r = self.faulted(point, &["image", "rm", &tag]);
                self.assert_fired(&what, point);
                reported = self.check_and_repair(&what);
                self.run(&["image", "import", "--name", &tag, &tar]).ok();
                self.run(&["image", "rm", &tag]).ok();
                r
            }
            Kind::Build => {
                // A step of its own (never cached), then one more after it.
                let dir = format!("build-{tag}");
                self.env.write(
                    &format!("{dir}/Foxfile.toml"),
                    format!(
                        "[build]\nfrom = \"busybox\"\n[[build.steps]]\nrun = \"echo {tag} > /id\"\n[[build.steps]]\nrun = \"echo two > /two\"\n"
                    ),
                );
                let r = self.faulted(point, &["build", "-t", &tag, &dir]);
                self.assert_fired(&what, point);
                reported = self.check_and_repair(&what);
                self.run(&["build", "-t", &tag, &dir]).ok();
                let r2 = self.run(&["run", "--rm", &tag, "cat", "/id", "/two"]);
                r2.ok();
                assert_eq!(r2.stdout, format!("{tag}\ntwo\n"), "{what}");
                // The dead build's step box went with the next build.
                assert!(
                    !self.ps_names().iter().any(|n| n.starts_with("build-")),
                    "{what}: a step box is left: {:?}",
                    self.ps_names()
                );
                self.run(&["image", "rm", &tag]).ok();
                r
            }
            Kind::OciCreate => {
                let r = self.oci_create_killed(point, &format!("oc-{tag}"), true);
                // Plain `delete` too: a create that never finished counts as stopped.
                self.oci_create_killed(point, &format!("oc-{tag}-plain"), false);
                reported = Vec::new();
                r
            }
        };
        assert_ne!(faulted.code, 0, "{what}: the killed command exited 0");
        eprintln!(
            "{what}: exit {}, check reported {:?}",
            faulted.code, reported
        );
        assert_eq!(
            self.run(&["system", "check"]).stdout,
            "",
            "{what}: not clean"
        );
        self.nothing_lost(&what);
        self.no_box_cgroups(&what);
        eventually(&format!("{what}: no box process left"), || {
            common::processes_running(SLEEP).is_empty()
        });
    }

    /// A busybox bundle for `oci create` (made once): as root without any namespace, so that
    /// its mounts are made in the runtime's mount namespace, and in a cgroup of its own; as the
    /// user, `spec --rootless`'s (no cgroup, no host mounts). Returns (bundle, cgroupsPath).
    fn oci_bundle(&self) -> (PathBuf, Option<String>) {
        let b = self.env.work().join("ocib");
        let cg = (self.env.who == Who::Root).then(|| format!("/ftleaks-{}", std::process::id()));
        if b.join("config.json").exists() {
            return (b, cg);
        }
        self.env.sh(&format!(
            "mkdir -p {r} && tar -xzf {t} -C {r}",
            r = b.join("rootfs").display(),
            t = common::busybox_tarball().display()
        ));
        let d = b.display().to_string();
        let mut spec = vec!["oci", "spec", "--bundle", &d];
        if self.env.who != Who::Root {
            spec.push("--rootless");
        }
        self.run(&spec).ok();
        let mut cfg: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(b.join("config.json")).unwrap()).unwrap();
        cfg["process"]["terminal"] = serde_json::json!(false);
        cfg["process"]["args"] = serde_json::json!(["sleep", "98792"]);
        if let Some(cg) = &cg {
            cfg["linux"]["namespaces"] = serde_json::json!([]);
            cfg.as_object_mut().unwrap().remove("hostname");
            cfg["linux"]["cgroupsPath"] = serde_json::json!(cg);
            cfg["linux"]["resources"] = serde_json::json!({"pids": {"limit": 64}});
        }
        self.env.write(
            "ocib/config.json",
            serde_json::to_string_pretty(&cfg).unwrap(),
        );
        (b, cg)
    }

    /// `oci create` killed at `point`; then `list` shows the container, a second `create` of
    /// it is refused with the way out, `delete` (`--force` or not) removes it and all it made:
    /// its directory, cgroup, mounts below the bundle and process. Returns the killed create.
    fn oci_create_killed(&self, point: &str, id: &str, force: bool) -> Run {
        let what = format!("{:?} {point} {id}", self.env.who);
        let (b, cg) = self.oci_bundle();
        let bs = b.display().to_string();
        let _ = fs::remove_file(&self.fired);
        let root = self.env.work().join("ocir");
        let err = self.env.work().join("oci-faulted.err");
        let out = self
            .env
            .foxbox(["oci", "--root", &root.display().to_string()])
            .args(["create", "--bundle", &bs, id])
            .env("FOXBOX_FAULT", point)
            .env("FOXBOX_FAULT_FIRED", &self.fired)
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&err).unwrap())
            .status()
            .expect("run foxbox");
        let faulted = Run {
            code: out.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: fs::read_to_string(&err).unwrap_or_default(),
        };
        self.assert_fired(&what, point);
        // Should an assertion fail: no container of this test outlives it.
        let _guard = ForceDelete(&self.env, root.clone(), id);
        let mine = || processes_with(&[id, "create"]);
        let root_s = root.display().to_string();
        let oci = |args: &[&str]| {
            let mut all = vec!["oci", "--root", root_s.as_str()];
            all.extend(args);
            self.run(&all)
        };
        // Once create has seen it ready (after the set-up): released but left alone, it may
        // end by itself when it finds its parent gone.
        if matches!(point, "oci-create.host-mounted" | "oci-create.before-state") {
            assert!(
                !mine().is_empty(),
                "{what}: the container's process is not running"
            );
        }
        if point == "oci-create.host-mounted" && cg.is_some() {
            assert!(
                !common::mounts_below(&b).is_empty(),
                "{what}: no host mounts made"
            );
        }
        let list = oci(&["list", "--format", "json"]);
        list.ok();
        let v: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).expect("list json");
        let listed = v.iter().find(|c| c["id"] == id);
        assert_eq!(
            listed.map(|c| c["status"].clone()),
            Some(serde_json::json!("stopped")),
            "{what}: list: {}",
            list.stdout
        );
        let st = oci(&["state", id]);
        st.ok();
        assert!(
            st.stdout.contains("\"stopped\""),
            "{what}: state {}",
            st.stdout
        );
        if point == "oci-create.before-state" && force {
            self.while_its_create_lives(&root, id, &what);
        }
        let again = self.oci_again(&bs, id);
        again.assert_code(1);
        assert!(
            again.stderr.contains(&format!("delete {id}")),
            "{what}: a second create says {}",
            again.stderr
        );
        let del = if force {
            oci(&["delete", "--force", id])
        } else {
            oci(&["delete", id])
        };
        del.ok();
        assert!(!root.join(id).exists(), "{what}: state dir left");
        if let Some(cg) = &cg {
            for ctrl in [
                "memory", "cpu", "pids", "freezer", "devices", "cpuset", "blkio",
            ] {
                let d = PathBuf::from("/sys/fs/cgroup").join(ctrl).join(&cg[1..]);
                assert!(!d.exists(), "{what}: cgroup {} left", d.display());
            }
        }
        assert_eq!(
            common::mounts_below(&b),
            Vec::<String>::new(),
            "{what}: mounts left"
        );
        eventually(&format!("{what}: no process left"), || mine().is_empty());
        // The id is free again.
        let r = self.oci_again(&bs, id);
        r.ok();
        oci(&["delete", "--force", id]).ok();
        assert!(
            !root.join(id).exists(),
            "{what}: state dir left after a clean create"
        );
        faulted
    }

    /// Named as its creator in `creating.json` (as if its `create` were still at work), this
    /// test's process makes the container `creating`, which `delete --force` leaves alone.
    fn while_its_create_lives(&self, root: &std::path::Path, id: &str, what: &str) {
        let path = root.join(id).join("creating.json");
        let saved = fs::read_to_string(&path).expect("creating.json");
        let mut v: serde_json::Value = serde_json::from_str(&saved).unwrap();
        let stat = fs::read_to_string("/proc/self/stat").unwrap();
        let start: u64 = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(19)
            .unwrap()
            .parse()
            .unwrap();
        v["creator"] = serde_json::json!({"pid": std::process::id(), "start_time": start});
        fs::write(&path, v.to_string()).unwrap();
        let root_s = root.display().to_string();
        let st = self.run(&["oci", "--root", &root_s, "state", id]);
        st.ok();
        assert!(
            st.stdout.contains("\"creating\""),
            "{what}: state {}",
            st.stdout
        );
        let del = self.run(&["oci", "--root", &root_s, "delete", "--force", id]);
        del.assert_code(1);
        assert!(
            del.stderr.contains("still running"),
            "{what}: {}",
            del.stderr
        );
        assert!(path.exists(), "{what}: deleted while its create lives");
        fs::write(&path, saved).unwrap();
    }

    fn oci_again(&self, bundle: &str, id: &str) -> Run {
        let root = self.env.work().join("ocir").display().to_string();
        let err = self.env.work().join("oci.err");
        let out = self
            .env
            .foxbox(["oci", "--root", &root, "create", "--bundle", bundle, id])
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&err).unwrap())
            .status()
            .expect("run foxbox");
        Run {
            code: out.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: fs::read_to_string(&err).unwrap_or_default(),
        }
    }

    /// The point was reached (a supervisor may reach it after the CLI returned).
    fn assert_fired(&self, what: &str, point: &str) {
        eventually(&format!("{what}: the point to be reached"), || {
            fs::read_to_string(&self.fired).is_ok_and(|s| s.lines().any(|l| l == point))
        });
    }

    /// No box runs between points, so no box cgroup may exist below the test's parent.
    fn no_box_cgroups(&self, what: &str) {
        let Some((_, dirs)) = &self.parent else {
            return;
        };
        for d in dirs {
            let left: Vec<_> = fs::read_dir(d)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.file_name())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                left.is_empty(),
                "{what}: cgroups left in {}: {left:?}",
                d.display()
            );
        }
    }
}

/// `oci delete --force` of a container when dropped.
struct ForceDelete<'a>(&'a Env, PathBuf, &'a str);

impl Drop for ForceDelete<'_> {
    fn drop(&mut self) {
        let root = self.1.display().to_string();
        let _ = self
            .0
            .run(["oci", "--root", &root, "delete", "--force", self.2]);
    }
}

/// Live (not zombie) processes whose command line has every one of `needles` as an argument:
/// an OCI container's set-up process is a clone of `create`, with its argv.
fn processes_with(needles: &[&str]) -> Vec<i32> {
    common::live_pids_whose_argv(|argv| needles.iter().all(|n| argv.contains(n)))
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some((_, dirs)) = &self.parent {
            for d in dirs {
                let _ = fs::remove_dir(d);
            }
        }
    }
}

fn walk_every_point(who: Who) {
    if !who.available() {
        return;
    }
    let listed: Vec<&str> = walk().iter().map(|(p, _)| *p).collect();
    assert_eq!(
        listed,
        foxbox::fault::POINTS,
        "the test walks every point of src/fault.rs"
    );
    let mut w = World::new(who);
    w.run(&["volume", "create", "keepvol"]).ok();
    w.run(&[
        "run",
        "--name",
        "keep",
        "-v",
        "keepvol:/v",
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/f",
    ])
    .ok();
    // FOXBOX_FAULT_ONLY=PREFIX walks only the points whose names start with it.
    let only = std::env::var("FOXBOX_FAULT_ONLY").unwrap_or_default();
    for (point, kind) in walk() {
        if !point.starts_with(&only) {
            continue;
        }
        // Rootless boxes here get no cgroup: the point is root's.
        if point == "start.cgroup-recorded" && who != Who::Root {
            continue;
        }
        w.point(point, kind);
    }
}

#[test]
fn every_point_as_root() {
    walk_every_point(Who::Root);
}

#[test]
fn every_point_as_the_unprivileged_user() {
    walk_every_point(Who::User);
}
