//! Pulls into the real image store, through the built binary as root and as the unprivileged
//! user: what `image ls`/`inspect`/`rm` show of pulled images, layers shared and unpacked once,
//! whiteouts merged by a real overlay mount, `image save`/`load` with skopeo on the other side,
//! and refused or killed pulls that leave the store exactly as it was.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{Env, Who};
use crate::registry::{self, registries};
use crate::{blobs, pull_json};

fn json(env: &Env, args: &[&str]) -> Value {
    let r = env.run(args);
    r.ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", r.stdout))
}

fn inspect(env: &Env, what: &str) -> Value {
    json(env, &["image", "inspect", what])[0].clone()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn layer_dirs(env: &Env) -> Vec<String> {
    listing(&env.store().join("images/layers"))
}

fn blob_files(env: &Env) -> Vec<String> {
    listing(&blobs(env).join("sha256"))
}

/// The store's visible state: the index, the unpacked layers, the blobs, scratch entries.
fn snapshot(env: &Env) -> (String, Vec<String>, Vec<String>, Vec<String>) {
    (
        fs::read_to_string(env.store().join("images/index.json")).unwrap_or_default(),
        layer_dirs(env),
        blob_files(env),
        listing(&env.store().join("images/tmp")),
    )
}

fn hex(d: &str) -> &str {
    d.trim_start_matches("sha256:")
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: both strings are NUL-terminated; buf is writable for its length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

/// Run `script` in a new user and mount namespace as a box's root would be: root maps to the
/// caller, and for the unprivileged user box ids 1.. to its subordinate range.
fn in_userns(env: &Env, script: &str) -> String {
    let mut cmd = env.command("unshare");
    cmd.args(["--user", "--map-root-user"]);
    if env.who != Who::Root {
        cmd.args(["--map-users=100000,1,65536", "--map-groups=100000,1,65536"]);
    }
    let out = cmd.args(["--mount", "sh", "-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pulled_images_are_listed_inspected_and_removed_with_their_unshared_layers() {
    let r = registries();
    let host = r.plain_host();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let bb_name = format!("{host}/busybox:1");
        let bb = pull_json(&env, &[&bb_name]);
        // The id is the config's digest, as podman's IMAGE ID.
        assert_eq!(bb["id"], bb["config"]);
        assert_eq!(strs(&bb["names"]), [bb_name.as_str()]);
        assert_eq!(bb["layers"][0]["unpacked"], true);
        assert_eq!(layer_dirs(&env), [hex(&r.seeded.busybox_layer)]);

        let ly_name = format!("{host}/layered:1");
        let ly = pull_json(&env, &[&ly_name]);
        // The base layer is busybox's: neither fetched nor unpacked again.
        assert_eq!(ly["layers"][0]["fetched"], false);
        assert_eq!(ly["layers"][0]["unpacked"], false);
        assert_eq!(ly["layers"][2]["unpacked"], true);
        assert_eq!(layer_dirs(&env).len(), 3);
        let wc_name = format!("{host}/withcfg:1");
        let wc = pull_json(&env, &[&wc_name]);
        assert_eq!(wc["id"], r.seeded.withcfg_config.as_str());
        assert_eq!(layer_dirs(&env).len(), 3);

        // image ls shows them as podman does.
        let out = env.run(["image", "ls"]);
        out.ok();
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{host}/busybox ")))
            .unwrap_or_else(|| panic!("{}", out.stdout));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], "1", "{line}");
        assert_eq!(cols[2], &hex(bb["id"].as_str().unwrap())[..12], "{line}");
        let all = json(&env, &["image", "ls", "--format", "json"]);
        assert_eq!(all.as_array().unwrap().len(), 3, "{all:#}");

        // inspect: the config's defaults, the manifest, the shared layer directory.
        let i = inspect(&env, &bb_name);
        assert_eq!(i["id"], bb["id"]);
        assert_eq!(strs(&i["config"]["cmd"]), ["/bin/sh"]);
        assert_eq!(
            strs(&i["config"]["env"]),
            ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        );
        assert_eq!(i["config"]["workdir"], "/");
        assert_eq!(i["manifest"], r.seeded.busybox_manifest.as_str());
        assert_eq!(i["platform"], "linux/amd64");
        let pin = format!("{host}/busybox@{}", r.seeded.busybox_manifest);
        assert!(strs(&i["repo_digests"]).contains(&pin), "{i:#}");
        assert!(i["size"].as_u64().unwrap() > 500_000, "{i:#}");
        let li = inspect(&env, &ly_name);
        assert_eq!(
            li["layers"][0], i["layers"][0],
            "one directory for the shared layer"
        );
        assert!(Path::new(i["layers"][0].as_str().unwrap())
            .join("bin/busybox")
            .exists());
        // Pins: the manifest digest the image was pulled by, or its id; another is refused.
        assert_eq!(inspect(&env, &pin)["id"], bb["id"]);
        let by_id = format!("{host}/busybox:1@{}", bb["id"].as_str().unwrap());
        assert_eq!(inspect(&env, &by_id)["id"], bb["id"]);
        let wrong = format!("{host}/busybox:1@sha256:{}", "0".repeat(64));
        env.run(["image", "inspect", &wrong]).assert_code(125);

        let c = inspect(&env, &wc_name)["config"].clone();
        assert_eq!(strs(&c["entrypoint"]), ["/bin/echo"]);
        assert_eq!(strs(&c["cmd"]), ["hello", "world"]);
        assert_eq!(
            strs(&c["env"]),
            ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FOO=bar baz"]
        );
        assert_eq!(c["workdir"], "/tmp");
        assert_eq!(c["user"], "1000:1000");

        // rm: the layers other images use stay, as do their blobs; its own blobs go.
        let out = env.run(["image", "rm", &bb_name]);
        out.ok();
        assert!(
            out.stdout
                .contains(&format!("Deleted: {}", hex(bb["id"].as_str().unwrap()))),
            "{}",
            out.stdout
        );
        assert_eq!(layer_dirs(&env).len(), 3);
        let blobs_now = blob_files(&env);
        assert!(!blobs_now.contains(&hex(&r.seeded.busybox_manifest).to_string()));
        assert!(!blobs_now.contains(&hex(bb["id"].as_str().unwrap()).to_string()));
        assert!(blobs_now.contains(&hex(&r.seeded.busybox_layer).to_string()));
        env.run(["image", "inspect", &bb_name]).assert_code(125);
        env.run(["image", "rm", &ly_name]).ok();
        assert_eq!(layer_dirs(&env), [hex(&r.seeded.busybox_layer)]);
        env.run(["image", "rm", &wc_name]).ok();
        assert!(layer_dirs(&env).is_empty());
        assert!(blob_files(&env).is_empty(), "{:?}", blob_files(&env));
        assert_eq!(env.run(["image", "ls", "-q"]).stdout, "");
    }
}

#[test]
fn whiteouts_and_opaque_dirs_merge_in_a_userxattr_overlay() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let name = format!("{}/layered:1", r.plain_host());
        pull_json(&env, &[&name]);
        let layers = strs(&inspect(&env, &name)["layers"]);
        assert_eq!(layers.len(), 3);
        // On disk: overlay whiteouts and the user.* opaque mark, for root too.
        let top = Path::new(&layers[2]);
        let wh = fs::symlink_metadata(top.join("etc/removeme")).unwrap();
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
        assert!(!top.join("etc/.wh.removeme").exists());
        assert_eq!(
            xattr(&top.join("data/opq"), "user.overlay.opaque"),
            Some(b"y".to_vec())
        );
        if who == Who::Root {
            assert_eq!(xattr(&top.join("data/opq"), "trusted.overlay.opaque"), None);
        }
        // Merged by the kernel as a box's root is: a user namespace, userxattr.
        let merged = env.work().join("merged");
        fs::create_dir_all(&merged).unwrap();
        let lower: Vec<&str> = layers.iter().rev().map(String::as_str).collect();
        let m = merged.display();
        let script = format!(
            "set -e; mount -t overlay overlay -o lowerdir={},userxattr {m}; \
             ls {m}/etc; echo --; ls -A {m}/data/opq; echo --; cat {m}/etc/hostname {m}/data/b; \
             test -x {m}/bin/busybox && echo busybox",
            lower.join(":")
        );
        let out = in_userns(&env, &script);
        let parts: Vec<&str> = out.split("--\n").collect();
        assert_eq!(parts.len(), 3, "{out}");
        let etc: Vec<&str> = parts[0].lines().collect();
        assert!(etc.contains(&"hostname"), "{out}");
        assert!(
            !etc.contains(&"removeme"),
            "the whited-out file shows: {out}"
        );
        assert_eq!(
            parts[1], "new\n",
            "the opaque dir shows what is below it: {out}"
        );
        assert_eq!(parts[2], "layer2\nb from layer2\nbusybox\n", "{out}");
    }
}

#[test]
fn resolve_or_pull_uses_local_images_and_pulls_registry_names() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let relay = registry::relay::Relay::start(r.plain);
        let host = format!("127.0.0.1:{}", relay.port);
        let env = Env::new(who);
        let name = format!("{host}/busybox:1");
        let first = json(&env, &["image", "resolve", &name]);
        assert_eq!(first["manifest"], r.seeded.busybox_manifest.as_str());
        assert!(!relay.requests().is_empty());
        // Stored now: no request at all, by tag, by the pinned manifest digest, by id.
        let seen = relay.requests().len();
        let pinned = format!("{host}/busybox@{}", r.seeded.busybox_manifest);
        for again in [name.clone(), pinned] {
            assert_eq!(json(&env, &["image", "resolve", &again])["id"], first["id"]);
        }
        assert_eq!(relay.requests().len(), seen, "{:#?}", relay.requests());
        // A pinned digest not stored is pulled by digest, and known by it (an index's too).
        let multi = format!("{host}/multi@{}", r.seeded.multi_index);
        let m = json(&env, &["image", "resolve", &multi]);
        assert_eq!(m["manifest"], r.seeded.multi_amd64.as_str());
        assert!(strs(&m["repo_digests"]).contains(&multi), "{m:#}");
        let seen = relay.requests().len();
        assert_eq!(json(&env, &["image", "resolve", &multi])["id"], m["id"]);
        assert_eq!(relay.requests().len(), seen);
        // Without a tag, it gets no name: the registry's tag may name another image.
        let v: Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{host}/plain:1"),
        ]))
        .unwrap();
        let plain = format!("{host}/plain@{}", v["Digest"].as_str().unwrap());
        let p = json(&env, &["image", "resolve", &plain]);
        assert!(p["names"].as_array().is_none_or(|n| n.is_empty()), "{p:#}");
        let out = env.run(["image", "ls"]);
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{host}/plain ")) && l.contains("<none>")),
            "{}",
            out.stdout
        );
        // Short names: the local image of that name, else the local docker.io one (said so).
        env.import_busybox();
        let local = json(&env, &["image", "resolve", "busybox"]);
        assert!(local["source"].is_string(), "{local:#}");
        let tar = crate::common::busybox_tarball();
        env.run([
            "image",
            "import",
            "--name",
            "docker.io/library/hubonly:1",
            tar.to_str().unwrap(),
        ])
        .ok();
        let out = env.run(["image", "resolve", "hubonly:1"]);
        out.ok();
        assert!(
            out.stderr
                .contains("Resolved \"hubonly\" as the local image docker.io/library/hubonly:1"),
            "{}",
            out.stderr
        );
        // A registry that is not there: a clear error naming it, nothing stored.
        let before = snapshot(&env);
        let out = env.run(["image", "resolve", "127.0.0.1:1/nothing:1"]);
        out.assert_code(125);
        assert!(out.stderr.contains("127.0.0.1:1"), "{}", out.stderr);
        assert_eq!(snapshot(&env), before);
    }
}

/// A directory every test user can read, holding what skopeo wrote.
fn shared_dir(name: &str) -> tempfile::TempDir {
    let base = std::env::temp_dir().join("foxbox-tests");
    fs::create_dir_all(&base).unwrap();
    let d = tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn chmod_readable(p: &Path) {
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(p)
        .status()
        .unwrap();
}

#[test]
fn image_save_is_read_by_skopeo_and_loads_back_with_the_same_id() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let name = format!("{}/layered:1", r.plain_host());
        let pulled = pull_json(&env, &[&name]);
        let id = pulled["id"].as_str().unwrap().to_string();
        let dir = env.work().join("saved");
        let tar = env.work().join("saved.tar");
        let dir_s = dir.to_str().unwrap();
        let tar_s = tar.to_str().unwrap();
        env.run(["image", "save", &name, "-o", dir_s]).ok();
        env.run(["image", "save", &name, "-o", tar_s]).ok();
        for src in [format!("oci:{dir_s}"), format!("oci-archive:{tar_s}")] {
            let v: Value = serde_json::from_str(&skopeo(&["inspect", &src])).unwrap();
            assert_eq!(v["Digest"], pulled["manifest"], "{src}");
            assert_eq!(v["Layers"].as_array().unwrap().len(), 3, "{src}");
            assert_eq!(strs(&v["Layers"]), r.seeded.layered_layers, "{src}");
        }
        // Removed, then loaded back from each: the same id, name and layers.
        for input in [dir_s, tar_s] {
            env.run(["image", "rm", &name]).ok();
            assert!(layer_dirs(&env).is_empty());
            let out = env.run(["image", "load", "-i", input]);
            out.ok();
            assert_eq!(
                out.stdout,
                format!("Loaded image: {name} ({})\n", hex(&id)),
                "{input}"
            );
            let i = inspect(&env, &name);
            assert_eq!(i["id"], id.as_str());
            assert_eq!(i["manifest"], pulled["manifest"]);
            assert_eq!(layer_dirs(&env).len(), 3);
        }
        // Loading what is already stored changes nothing.
        let before = snapshot(&env);
        env.run(["image", "load", "-i", dir_s]).ok();
        assert_eq!(snapshot(&env), before);

        // A tarball-imported image: its layer packed again, with a generated config.
        env.import_busybox();
        let tb = inspect(&env, "busybox");
        let bb_dir = env.work().join("bb");
        let bb_s = bb_dir.to_str().unwrap();
        env.run(["image", "save", "busybox", "-o", bb_s]).ok();
        let v: Value = serde_json::from_str(&skopeo(&["inspect", &format!("oci:{bb_s}")])).unwrap();
        assert_eq!(v["Layers"].as_array().unwrap().len(), 1, "{v:#}");
        assert_eq!(v["Architecture"], "amd64");
        let out = env.run(["image", "load", "-i", bb_s]);
        out.ok();
        let loaded = inspect(&env, "busybox");
        assert_ne!(loaded["id"], tb["id"], "a new image: its config's digest");
        assert!(loaded["manifest"].is_string());
        let layer = Path::new(loaded["layers"][0].as_str().unwrap());
        assert_eq!(
            fs::read_to_string(layer.join("etc/foxbox-image")).unwrap(),
            "busybox\n"
        );
        let bin = fs::symlink_metadata(layer.join("bin/busybox")).unwrap();
        let orig =
            fs::symlink_metadata(Path::new(tb["layers"][0].as_str().unwrap()).join("bin/busybox"))
                .unwrap();
        assert_eq!(
            (bin.uid(), bin.mode(), bin.len()),
            (orig.uid(), orig.mode(), orig.len())
        );

        // Bad input: a clear error, the store untouched.
        let before = snapshot(&env);
        let junk = env.write("work/junk.tar", b"not a tar at all");
        let out = env.run(["image", "load", "-i", junk.to_str().unwrap()]);
        out.assert_code(125);
        assert!(out.stderr.contains("junk.tar"), "{}", out.stderr);
        env.run([
            "image",
            "save",
            "nosuch",
            "-o",
            env.work().join("x").to_str().unwrap(),
        ])
        .assert_code(125);
        assert!(!env.work().join("x").exists());
        assert_eq!(snapshot(&env), before);
    }
}

#[test]
fn load_reads_what_skopeo_copy_wrote() {
    let r = registries();
    let shared = shared_dir("skopeo-layouts-");
    let dir = shared.path().join("oci");
    let dir_s = dir.to_str().unwrap();
    let archive = shared.path().join("bb.tar");
    let plain = |n: &str| format!("docker://{}/{n}:1", r.plain_host());
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &plain("layered"),
        &format!("oci:{dir_s}:layered"),
    ]);
    skopeo(&[
        "copy",
        "-q",
        "--all",
        "--src-tls-verify=false",
        &plain("multi"),
        &format!("oci:{dir_s}:multi"),
    ]);
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &plain("busybox"),
        &format!("oci-archive:{}:bb", archive.display()),
    ]);
    chmod_readable(shared.path());
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let out = env.run(["image", "load", "-i", dir_s]);
        out.ok();
        assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
        let l = inspect(&env, "layered");
        assert_eq!(strs(&l["names"]), ["layered:latest"]);
        assert_eq!(l["layers"].as_array().unwrap().len(), 3);
        let m = inspect(&env, "multi:latest");
        assert_eq!(
            m["manifest"],
            r.seeded.multi_amd64.as_str(),
            "the host's platform"
        );
        // The same image pulled from the registry is the same image: one id, two names.
        let pulled = pull_json(&env, &[&format!("{}/layered:1", r.plain_host())]);
        assert_eq!(pulled["id"], l["id"]);
        assert!(pulled["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["fetched"] == false && x["unpacked"] == false));
        assert_eq!(
            inspect(&env, "layered")["names"].as_array().unwrap().len(),
            2
        );
        let out = env.run(["image", "load", "-i", archive.to_str().unwrap()]);
        out.ok();
        assert!(
            out.stdout.starts_with("Loaded image: bb:latest ("),
            "{}",
            out.stdout
        );
        assert_eq!(
            inspect(&env, "bb")["manifest"],
            r.seeded.busybox_manifest.as_str()
        );
        // Another platform of the index.
        let env2 = Env::new(who);
        env2.run(["image", "load", "--platform", "linux/arm64", "-i", dir_s])
            .ok();
        assert_eq!(
            inspect(&env2, "multi")["manifest"],
            r.seeded.multi_arm64.as_str()
        );
    }
}

#[test]
fn refused_and_killed_pulls_leave_the_store_as_it_was() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let relay = registry::relay::Relay::start(r.plain);
        let env = Env::new(who);
        pull_json(&env, &[&format!("{}/busybox:1", r.plain_host())]);
        let before = snapshot(&env);
        assert_eq!(before.1.len(), 1);
        assert!(before.3.is_empty(), "{:?}", before.3);

        // A blob whose bytes are not its digest: refused while it streams.
        let out = env.run(["pull", &format!("{}/corrupt:1", r.plain_host())]);
        out.assert_code(125);
        assert!(
            out.stderr.contains(&r.seeded.corrupt_layer),
            "{}",
            out.stderr
        );
        env.run(["image", "ls"]).ok();
        assert_eq!(snapshot(&env), before, "after a corrupt blob");

        // A layer whose content is not its config's diff id: refused after unpacking it.
        let out = env.run(["pull", &format!("{}/baddiff:1", r.plain_host())]);
        out.assert_code(125);
        assert!(out.stderr.contains("diff id"), "{}", out.stderr);
        env.run(["image", "ls"]).ok();
        assert_eq!(
            snapshot(&env),
            before,
            "after a layer with the wrong diff id"
        );

        // Killed while downloading.
        let image = format!("127.0.0.1:{}/big:1", relay.port);
        relay.kill_mid_way(env.foxbox(["pull", &image]));
        env.run(["image", "ls"]).ok();
        assert_eq!(snapshot(&env), before, "after a killed pull");
        // And it restarts cleanly.
        relay.set_rate(0);
        let v = pull_json(&env, &[&image]);
        assert_eq!(v["layers"][0]["unpacked"], true);
        assert_eq!(layer_dirs(&env).len(), 2);
    }
}

/// A pull onto a full disk (a small tmpfs as the store, root's and the user's): it fails naming
/// the store's device, and leaves a store that `system check` finds clean and as empty as it
/// was. (The other full-disk cases are in tests/full_disk.rs.)
#[test]
fn a_pull_onto_a_full_disk_fails_naming_the_device() {
    if !crate::common::root_or_skip("mounting a tmpfs needs root") {
        return;
    }
    let r = registries();
    for who in Who::BOTH {
        let env = Env::new(who);
        let at = env.store();
        fs::create_dir_all(&at).expect("mountpoint");
        let (uid, gid) = env.ids();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size=1m,mode=0700,uid={uid},gid={gid}"))
            .args([Path::new("tmpfs"), &at])
            .status()
            .expect("mount");
        assert!(st.success());
        let out = env.run(["pull", &format!("{}/busybox:1", r.plain_host())]);
        let check = env.run(["system", "check"]);
        let layers = layer_dirs(&env);
        let _ = Command::new("umount").arg(&at).status();
        assert_eq!(out.code, 125, "{who:?}: {out:?}");
        // The renderer wraps long lines behind "  | ", anywhere, even inside a path.
        let squeeze = |t: &str| -> String {
            t.chars()
                .filter(|c| !c.is_whitespace() && *c != '|')
                .collect()
        };
        let said = format!("no space left on the device holding {}", at.display());
        assert!(
            squeeze(&out.stderr).contains(&squeeze(&said)),
            "{who:?}: {}",
            out.stderr
        );
        assert_eq!((check.code, check.stdout.as_str()), (0, ""), "{who:?}");
        assert!(layers.is_empty(), "{who:?}: {layers:?}");
    }
}
