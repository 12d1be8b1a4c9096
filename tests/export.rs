//! `foxbox export`, through the binary as root and as the unprivileged user: an OCI bundle runs
//! under runc (and crun, as root) with the isolation `foxbox up` gives the same spec, and
//! runtime-tools' validator accepts it; a Pod manifest validates against Kubernetes' Pod schema
//! and `podman kube play` runs it; bad input fails cleanly and leaves nothing behind.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, Run, Who};

/// What the comparisons look at: capability sets, seccomp mode, no_new_privs, ids, two masked
/// paths (/proc/interrupts is never empty unmasked; /sys/firmware has entries on a host with
/// firmware tables, and is an empty tmpfs masked), the hostname, and one verdict of the
/// seccomp filter (the default profile refuses unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN).
const PROBE: &str = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; \
     echo ids=$(id -u):$(id -g); echo interrupts=$(wc -c < /proc/interrupts); \
     echo firmware=$(ls /sys/firmware | wc -l); echo host=$(hostname); \
     unshare -U true 2>/dev/null; echo unshare-user=$?";

fn spec(extra: &str) -> String {
    format!(
        "[box]\nimage = \"busybox\"\nname = \"exported\"\ncommand = [\"sh\", \"-c\", {PROBE:?}]\n{extra}"
    )
}

/// The specs compared: foxbox's defaults, and a non-root user with an added capability, no
/// seccomp filter and no_new_privs off (the added-capabilities rule and both switches).
fn specs() -> Vec<(&'static str, String)> {
    vec![
        ("defaults", spec("")),
        (
            "non-root",
            spec(
                "user = \"1000:1000\"\n[capabilities]\nadd = [\"NET_RAW\"]\n\
                 [seccomp]\nprofile = \"unconfined\"\n[security]\nno_new_privileges = false\n",
            ),
        ),
    ]
}

fn text(r: &Run) -> String {
    r.stdout.trim_end().to_string()
}

/// `runc` (or crun) run of a bundle as the env's user, with its state under the env.
fn run_runtime(env: &Env, runtime: &str, bundle: &Path, id: &str) -> Run {
    let state = env.dir.join(format!("{runtime}-state"));
    let args = [
        "--root".to_string(),
        state.display().to_string(),
        "run".into(),
        "--bundle".into(),
        bundle.display().to_string(),
        id.into(),
    ];
    let out = if runtime == "crun" {
        // crun 1.8 refuses this host's hybrid cgroup layout (cgroup v1 controllers beside a
        // v2 hierarchy at /sys/fs/cgroup/unified: "cgroups in hybrid mode not supported, drop
        // all controllers from cgroupv2"). Its wrapper: a private mount namespace with an
        // empty tmpfs over /sys/fs/cgroup/unified, so crun sees cgroup v1 only (as
        // benches/start.sh runs it). The host's mounts are untouched.
        let script = format!(
            "mount -t tmpfs tmpfs /sys/fs/cgroup/unified && exec crun {}",
            args.join(" ")
        );
        env.command("unshare")
            .args(["-m", "sh", "-c", &script])
            .output()
    } else {
        env.command(runtime).args(&args).output()
    };
    Run::from(out.expect("run the runtime"))
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_bundle_runs_under_runc_and_crun_as_up_runs_the_spec() {
    if !have("runc") {
        eprintln!("SKIP: runc is not installed (scripts/setup.sh installs it)");
        return;
    }
    for env in common::envs_with_busybox() {
        for (what, text_of_spec) in specs() {
            let spec_path = env.write(&format!("{what}/Foxbox.toml"), &text_of_spec);
            let up = env.run(["up", "--rm", spec_path.to_str().unwrap()]);
            up.ok();
            let bundle = env.work().join(format!("{what}-bundle"));
            env.run([
                "export",
                spec_path.to_str().unwrap(),
                "--oci-bundle",
                bundle.to_str().unwrap(),
            ])
            .ok();
            for f in ["config.json", "rootfs/bin/busybox", "etc/hostname"] {
                assert!(bundle.join(f).exists(), "{what}: no {f} in the bundle");
            }
            let want = text(&up);
            assert!(want.contains("interrupts=0"), "{what}: {want}");
            assert!(want.contains("firmware=0"), "{what}: {want}");
            assert!(want.contains("host=exported"), "{what}: {want}");
            let runc = run_runtime(&env, "runc", &bundle, &format!("fx-{what}"));
            runc.ok();
            assert_eq!(
                text(&runc),
                want,
                "{what} as {:?}: runc's box differs from foxbox's",
                env.who
            );
            if env.who == Who::Root && have("crun") && have("unshare") {
                let crun = run_runtime(&env, "crun", &bundle, &format!("fx-c-{what}"));
                crun.ok();
                assert_eq!(
                    text(&crun),
                    want,
                    "{what}: crun's box differs from foxbox's"
                );
            }
        }
    }
}

/// The non-root spec really is different: a comparison that cannot fail would prove nothing.
#[test]
fn the_compared_specs_differ_in_what_is_compared() {
    let env = Env::new(Who::Root);
    env.import_busybox();
    let outs: Vec<String> = specs()
        .into_iter()
        .map(|(what, s)| {
            let p = env.write(&format!("{what}/Foxbox.toml"), s);
            text(env.run(["up", "--rm", p.to_str().unwrap()]).ok())
        })
        .collect();
    assert_ne!(outs[0], outs[1]);
    assert!(outs[1].contains("Seccomp:\t0"), "{}", outs[1]);
    assert!(outs[1].contains("ids=1000:1000"), "{}", outs[1]);
    assert!(outs[0].contains("unshare-user=1"), "{}", outs[0]);
    assert!(outs[1].contains("unshare-user=0"), "{}", outs[1]);
}

/// Where runtime-tools' source is: ../shared beside the checkout (or its parent's, for a
/// worktree), or FOXBOX_SHARED_DIR.
fn shared_dir() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates: Vec<PathBuf> = std::env::var_os("FOXBOX_SHARED_DIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push(here.join("../shared"));
    candidates.push(here.join("../../shared"));
    candidates
        .into_iter()
        .find(|d| d.join("testinfra/oci-validation/build.sh").is_file())
}

/// `oci-runtime-tool`, built once into the test scratch dir (kept across runs).
fn oci_runtime_tool() -> Option<PathBuf> {
    static TOOL: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    TOOL.get_or_init(|| {
        let Some(shared) = shared_dir() else {
            eprintln!("SKIP: no ../shared/testinfra/oci-validation (runtime-tools' source)");
            return None;
        };
        let base = std::env::var_os("FOXBOX_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("foxbox-tests"));
        let dir = base.join("oci-runtime-tool");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oci-runtime-tool.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(&dir)
            .arg(&shared)
            .output()
            .expect("build oci-runtime-tool");
        assert!(
            out.status.success(),
            "building oci-runtime-tool failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
    .clone()
}

/// Validate `bundle` with oci-runtime-tool. The tool handles only the runtime-spec version it
/// was built with (1.3.0) and refuses any other ("validate currently only handles version
/// 1.3.0"); foxbox writes 1.1.0, the oldest version with every field it uses, which crun 1.8
/// still takes. A 1.1 config is a 1.3 config (minor versions only add), so the copy it checks
/// claims 1.3.0, beside the same rootfs.
fn validate(tool: &Path, bundle: &Path) -> Run {
    let copy = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(bundle.join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ociVersion"], "1.1.0");
    v["ociVersion"] = "1.3.0".into();
    fs::write(
        copy.path().join("config.json"),
        serde_json::to_string(&v).unwrap(),
    )
    .unwrap();
    std::os::unix::fs::symlink(bundle.join("rootfs"), copy.path().join("rootfs")).unwrap();
    let out = Command::new(tool)
        .args(["validate", "--path"])
        .arg(copy.path())
        .output()
        .unwrap();
    Run::from(out)
}

#[test]
fn runtime_tools_validates_the_bundle() {
    let Some(tool) = oci_runtime_tool() else {
        return;
    };
    for env in common::envs_with_busybox() {
        for (what, s) in specs() {
            let p = env.write(&format!("v-{what}/Foxbox.toml"), s);
            let bundle = env.work().join(format!("v-{what}-bundle"));
            env.run([
                "export",
                p.to_str().unwrap(),
                "--oci-bundle",
                bundle.to_str().unwrap(),
            ])
            .ok();
            let r = validate(&tool, &bundle);
            assert!(
                r.code == 0 && r.stdout.contains("Bundle validation succeeded"),
                "{what} as {:?}: {r:?}",
                env.who
            );
            // The validator does refuse a broken config.
            let cfg = bundle.join("config.json");
            let good = fs::read_to_string(&cfg).unwrap();
            fs::write(&cfg, good.replace("\"uts\"", "\"utz\"")).unwrap();
            let bad = validate(&tool, &bundle);
            assert_ne!(bad.code, 0, "{bad:?}");
            assert!(bad.stderr.contains("namespaces"), "{bad:?}");
        }
    }
}

fn yaml_to_json(yaml: &str) -> serde_json::Value {
    serde_norway::from_str(yaml).expect("the manifest is YAML")
}

/// Validate a Pod (as JSON) against the committed Kubernetes v1.32 Pod schema with
/// python3-jsonschema; `Err` carries the validator's message.
fn validate_pod(pod: &serde_json::Value) -> Result<(), String> {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/kubernetes-pod-v1.32.2-standalone-strict.json");
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("pod.json");
    fs::write(&doc, serde_json::to_string(pod).unwrap()).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))",
        ])
        .arg(&schema)
        .arg(&doc)
        .output()
        .expect("python3");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

const RICH: &str = r#"[box]
image = "busybox"
name = "Rich_Box"
command = ["sh", "-c", "echo hi"]
user = "1000:1000"
workdir = "/srv"
hostname = "rich"
env = { GREETING = "hello" }
[limits]
memory = "64MiB"
cpus = 0.5
pids = 50
timeout = "1m"
stop_timeout = "5s"
[capabilities]
drop = ["ALL"]
add = ["NET_BIND_SERVICE"]
[seccomp]
profile = "./profile.json"
[network]
mode = "pasta"
ports = ["8080:80", "127.0.0.1:5353:53/udp"]
[rootfs]
readonly = true

[[mounts]]
type = "bind"
source = "./src"
target = "/src"
readonly = true

[[mounts]]
type = "tmpfs"
target = "/scratch"
size = "16m"

[[mounts]]
type = "volume"
source = "data"
target = "/data"
"#;

#[test]
fn a_pod_validates_against_the_kubernetes_schema() {
    for env in common::envs() {
        env.write("rich/src/x", "x");
        let profile = fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seccomp-docker-style.json"),
        )
        .unwrap();
        env.write("rich/profile.json", profile);
        let spec = env.write("rich/Foxbox.toml", RICH);
        env.write("out/.keep", "");
        let out = env.work().join("out/pod.yaml");
        let r = env.run([
            "export",
            "--kube",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        r.ok();
        // Warnings name the spec line: the bind mount is a hostPath.
        assert!(
            r.stderr.contains("foxbox::export::host_path"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("Foxbox.toml:26:1]"), "{}", r.stderr);
        let yaml = fs::read_to_string(&out).unwrap();
        for want in [
            "name: rich-box",
            "runAsUser: 1000",
            "workingDir: /srv",
            "memory: 64Mi",
            "cpu: 500m",
            "# pids limit 50",
            "activeDeadlineSeconds: 60",
            "terminationGracePeriodSeconds: 5",
            "readOnlyRootFilesystem: true",
            "type: Localhost",
            "localhostProfile: profile.json",
            "- NET_BIND_SERVICE",
            "hostPort: 8080",
            "protocol: UDP",
            "claimName: data",
            "medium: Memory",
            "sizeLimit: 16Mi",
            "hostname: rich",
        ] {
            assert!(yaml.contains(want), "{want:?} not in\n{yaml}");
        }
        // The profile went beside the manifest, as the Pod names it.
        assert!(out.parent().unwrap().join("profile.json").is_file());
        let pod = yaml_to_json(&yaml);
        validate_pod(&pod).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        // The schema is strict: a field a Pod does not have fails it.
        let mut bad = pod.clone();
        bad["spec"]["containers"][0]["memoryLimit"] = "64Mi".into();
        assert!(validate_pod(&bad).is_err());

        // Host network, and the plain defaults (to stdout), validate too.
        let host = env.write(
            "host/Foxbox.toml",
            "[box]\nimage = \"busybox\"\n[network]\nmode = \"host\"\n",
        );
        let r = env.run(["export", "--kube", host.to_str().unwrap()]);
        r.ok();
        assert!(r.stdout.contains("hostNetwork: true"), "{}", r.stdout);
        validate_pod(&yaml_to_json(&r.stdout)).unwrap();
        // `none` is the default: only a spec that writes it is told a Pod has a network.
        let plain = env.write("plain/Foxbox.toml", "[box]\nimage = \"busybox\"\n");
        let r = env.run(["export", "--kube", plain.to_str().unwrap()]);
        r.ok();
        assert!(!r.stderr.contains("has no equivalent"), "{}", r.stderr);
        validate_pod(&yaml_to_json(&r.stdout)).unwrap();
        let none = env.write(
            "none/Foxbox.toml",
            "[box]\nimage = \"busybox\"\n[network]\nmode = \"none\"\n",
        );
        let r = env.run(["export", "--kube", none.to_str().unwrap()]);
        r.ok();
        assert!(r.stderr.contains("Foxbox.toml:4:"), "{}", r.stderr);
        assert!(
            r.stderr.contains("`mode = \"none\"` has no equivalent"),
            "{}",
            r.stderr
        );
    }
}

/// Whether this process has CAP_SYS_RESOURCE: rootful podman raises the nofile and nproc hard
/// limits of every container (its pod's infra container included) to 1048576/4194304, which
/// root without it cannot (this kind of host's root lacks it: "setrlimit RLIMIT_NOFILE:
/// Operation not permitted").
fn has_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

#[test]
fn podman_kube_play_runs_the_exported_pod() {
    if !(have("podman") && have("runc") && have("catatonit")) {
        eprintln!("SKIP: podman, runc or catatonit is missing (scripts/setup.sh installs them)");
        return;
    }
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        if who == Who::Root && !has_sys_resource() {
            eprintln!(
                "SKIP (root): rootful podman raises rlimits that root here cannot (no \
                 CAP_SYS_RESOURCE); the rootless run below covers kube play"
            );
            continue;
        }
        let env = Env::new(who);
        env.import_busybox();
        let archive = env.work().join("busybox.tar");
        env.run(["image", "save", "busybox", "-o", archive.to_str().unwrap()])
            .ok();
        let runroot = env.short_dir();
        let podman = |args: &[&str]| -> Run {
            // runc: podman's default runtime, crun 1.8, refuses this host's hybrid cgroups.
            let out = env
                .command("podman")
                .args(["--root"])
                .arg(env.dir.join("podman-root"))
                .arg("--runroot")
                .arg(runroot.path())
                .args([
                    "--storage-driver",
                    "vfs",
                    "--runtime",
                    "runc",
                    "--cgroup-manager",
                    "cgroupfs",
                    "--events-backend",
                    "file",
                ])
                .args(args)
                .output()
                .expect("podman");
            Run::from(out)
        };
        podman(&["load", "-q", "-i", archive.to_str().unwrap()]).ok();
        let spec = env.write(
            "kube/Foxbox.toml",
            "[box]\nimage = \"busybox\"\nname = \"kubebox\"\n\
             command = [\"sh\", \"-c\", \"echo kube-$((6*7)) $GREETING; \
             grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; id -u\"]\n\
             user = \"1000:1000\"\nenv = { GREETING = \"hello\" }\n",
        );
        let pod = env.work().join("kube/pod.yaml");
        env.run([
            "export",
            "--kube",
            "--image",
            "localhost/busybox:latest",
            spec.to_str().unwrap(),
            "-o",
            pod.to_str().unwrap(),
        ])
        .ok();
        // No network: a rootful play would otherwise create a CNI network and bridge on the
        // host (podman-default-kube-network), outside the test's own directories.
        let play = podman(&["kube", "play", "--network", "none", pod.to_str().unwrap()]);
        let exited = || {
            podman(&[
                "ps",
                "-a",
                "--filter",
                "name=kubebox-kubebox",
                "--format",
                "{{.Status}}",
            ])
            .stdout
            .starts_with("Exited")
        };
        if play.code == 0 {
            common::eventually("the pod's container to exit", exited);
        }
        let logs = podman(&["logs", "kubebox-kubebox"]);
        podman(&["kube", "down", pod.to_str().unwrap()]);
        // Rootless podman leaves a pause process holding its user namespace: end it.
        if let Ok(pid) = fs::read_to_string(env.dir.join("runtime/libpod/tmp/pause.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: kill(2) on the pid podman recorded for this env's pause process.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        play.ok();
        let out = format!("{}{}", logs.stdout, logs.stderr);
        assert!(out.contains("kube-42 hello"), "{who:?}: {out}");
        assert!(out.contains("Seccomp:\t2"), "{who:?}: {out}");
        assert!(out.contains("NoNewPrivs:\t1"), "{who:?}: {out}");
        assert!(out.lines().any(|l| l.trim() == "1000"), "{who:?}: {out}");
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".export-"))
        .collect()
}

#[test]
fn bad_input_fails_cleanly_and_leaves_nothing() {
    for env in common::envs() {
        let work = env.work();
        // No spec.
        let r = env.run(["export", "--kube", "missing.toml"]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("cannot read"), "{}", r.stderr);
        // Neither format: a usage error.
        let spec = env.write("Foxbox.toml", "[box]\nimage = \"busybox\"\n");
        let r = env.run(["export", spec.to_str().unwrap()]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(
            r.stderr.contains("<--kube|--oci-bundle <DIR>>"),
            "{}",
            r.stderr
        );
        // An -o in a directory that does not exist.
        let out = work.join("nodir/pod.yaml");
        let r = env.run(["export", "--kube", "-o", out.to_str().unwrap()]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("foxbox::export::output"), "{}", r.stderr);
        assert!(!work.join("nodir").exists());
        // A tarball image has no reference a cluster can pull.
        let tar = env.write("t/Foxbox.toml", "[box]\nimage = \"./rootfs.tar\"\n");
        let r = env.run(["export", "--kube", tar.to_str().unwrap()]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("foxbox::export::image"), "{}", r.stderr);
        // The image is not in the store yet.
        let bundle = work.join("b");
        let r = env.run(["export", "--oci-bundle", bundle.to_str().unwrap()]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("foxbox::export::image"), "{}", r.stderr);
        assert!(!bundle.exists());
        env.import_busybox();
        // A directory with something in it is left alone.
        env.write("full/keep.txt", "mine");
        let r = env.run([
            "export",
            "--oci-bundle",
            work.join("full").to_str().unwrap(),
        ]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("not an empty directory"), "{}", r.stderr);
        let names: Vec<_> = fs::read_dir(work.join("full")).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        // A failure after the rootfs was copied (a user the image does not know) leaves no
        // bundle and no half-made temporary sibling, though the rootfs's files belong to the
        // store's subordinate ids.
        let nouser = env.write(
            "u/Foxbox.toml",
            "[box]\nimage = \"busybox\"\nuser = \"nobody-here\"\n",
        );
        let b2 = work.join("u/bundle");
        let r = env.run([
            "export",
            nouser.to_str().unwrap(),
            "--oci-bundle",
            b2.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("nobody-here"), "{}", r.stderr);
        assert!(!b2.exists());
        assert_eq!(leftovers(&work.join("u")), Vec::<String>::new());
        // An empty directory is taken.
        env.sh(&format!("mkdir {}", work.join("empty").display()));
        env.run([
            "export",
            "--oci-bundle",
            work.join("empty").to_str().unwrap(),
        ])
        .ok();
        assert!(work.join("empty/config.json").is_file());
        assert_eq!(leftovers(&work), Vec::<String>::new());
    }
}

/// What only foxbox's own set-up does (`keep-id`, `:U`, `:O`) is a warning at its spec line in
/// both formats, and an `:O` source is exported read-only: a bundle or a Pod must not write
/// through to the host what foxbox kept in the box.
#[test]
fn foxbox_only_options_warn_and_an_overlay_source_stays_read_only() {
    for env in common::envs() {
        env.import_busybox();
        env.write("src/x", "x");
        let spec = env.write(
            "only/Foxbox.toml",
            "[box]\nimage = \"busybox\"\n\n[security]\nuserns = \"keep-id\"\n\n\
             [[mounts]]\ntype = \"bind\"\nsource = \"../src\"\ntarget = \"/o\"\noverlay = true\n\n\
             [[mounts]]\ntype = \"bind\"\nsource = \"../src\"\ntarget = \"/u\"\nchown = true\n",
        );
        let r = env.run(["export", "--kube", spec.to_str().unwrap()]);
        r.ok();
        for (line, what) in [(5, "keep-id"), (7, "`:O`"), (13, "`:U`")] {
            assert!(
                r.stderr.contains(&format!("Foxbox.toml:{line}:")) && r.stderr.contains(what),
                "{line} {what}: {}",
                r.stderr
            );
        }
        let pod = yaml_to_json(&r.stdout);
        let mounts = pod["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap();
        let ro = |path: &str| {
            mounts
                .iter()
                .find(|m| m["mountPath"] == path)
                .map(|m| m["readOnly"] == true)
        };
        assert_eq!((ro("/o"), ro("/u")), (Some(true), Some(false)), "{pod}");

        let bundle = env.work().join("only-bundle");
        let r = env.run([
            "export",
            "--oci-bundle",
            bundle.to_str().unwrap(),
            spec.to_str().unwrap(),
        ]);
        r.ok();
        assert!(r.stderr.contains("a bundle has no overlay"), "{}", r.stderr);
        let config: serde_json::Value =
            serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
        let opts = |dest: &str| {
            config["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == dest)
                .map(|m| m["options"].clone())
                .unwrap()
        };
        assert!(
            opts("/o").as_array().unwrap().contains(&"ro".into()),
            "{config}"
        );
        assert!(
            opts("/u").as_array().unwrap().contains(&"rw".into()),
            "{config}"
        );
    }
}
