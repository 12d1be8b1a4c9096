//! `foxbox pull` and `foxbox login` against real local registries, as root and as the
//! unprivileged user.

mod common;
mod registry;
// Pulls into the image store; one binary, so one set of registries for both files.
#[path = "registry_cli/store.rs"]
mod store;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use common::{Env, Who};
use registry::registries;
use serde_json::Value;

fn pull_json(env: &Env, args: &[&str]) -> Value {
    let mut a = vec!["pull", "--format", "json"];
    a.extend_from_slice(args);
    let r = env.run(&a);
    r.ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn blobs(env: &Env) -> std::path::PathBuf {
    env.store().join("images/blobs")
}

/// Every file under the blob store is a complete blob named by its digest; nothing else.
fn assert_store_clean(env: &Env) -> Vec<String> {
    let mut names = Vec::new();
    let root = blobs(env);
    if !root.exists() {
        return names;
    }
    for alg in fs::read_dir(&root).unwrap() {
        let alg = alg.unwrap();
        let an = alg.file_name().to_string_lossy().into_owned();
        assert!(
            an == "sha256" || an == "sha512",
            "stray entry {an} in the store"
        );
        for f in fs::read_dir(alg.path()).unwrap() {
            let f = f.unwrap();
            let name = f.file_name().to_string_lossy().into_owned();
            if an == "sha256" {
                let got = registry::images::sha256(&fs::read(f.path()).unwrap());
                assert_eq!(
                    got,
                    format!("sha256:{name}"),
                    "blob content does not match its name"
                );
            }
            names.push(format!("{an}:{name}"));
        }
    }
    names
}

fn layer_digests(v: &Value) -> Vec<String> {
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pull_anonymous_plain_http() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let v = pull_json(&env, &[&format!("{}/busybox:1", r.plain_host())]);
        assert_eq!(v["manifest"], r.seeded.busybox_manifest.as_str());
        assert_eq!(
            layer_digests(&v),
            std::slice::from_ref(&r.seeded.busybox_layer)
        );
        assert_eq!(v["layers"][0]["fetched"], true);
        assert_eq!(v["platform"], "linux/amd64");
        let stored = assert_store_clean(&env);
        assert!(stored.contains(&r.seeded.busybox_layer));

        let v = pull_json(&env, &[&format!("{}/layered:1", r.plain_host())]);
        assert_eq!(layer_digests(&v), r.seeded.layered_layers);
        // The busybox layer was stored by the first pull.
        let fetched: Vec<bool> = v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["fetched"].as_bool().unwrap())
            .collect();
        assert_eq!(fetched, [false, true, true]);
        assert_store_clean(&env);
    }
}

#[test]
fn shared_layers_are_not_fetched_twice() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        // A relay of our own, so that only this test's requests are counted.
        let relay = registry::relay::Relay::start(r.plain);
        let host = format!("127.0.0.1:{}", relay.port);
        let env = Env::new(who);
        pull_json(&env, &[&format!("{host}/sharea:1")]);
        assert_eq!(relay.blob_gets(&r.seeded.share_base), 1);
        let v = pull_json(&env, &[&format!("{host}/shareb:1")]);
        assert_eq!(v["layers"][0]["fetched"], false);
        assert_eq!(v["layers"][1]["fetched"], true);
        assert_eq!(
            relay.blob_gets(&r.seeded.share_base),
            1,
            "the shared layer was fetched again: {:#?}",
            relay.requests()
        );
        assert_eq!(relay.blob_gets(&r.seeded.share_a_top), 1);
        assert_eq!(relay.blob_gets(&r.seeded.share_b_top), 1);
        // ... and unpacked once: one directory, the lower layer of both images.
        let layers = |name: &str| -> Vec<Value> {
            let r = env.run(["image", "inspect", &format!("{host}/{name}:1")]);
            r.ok();
            let v: Value = serde_json::from_str(&r.stdout).unwrap();
            v[0]["layers"].as_array().unwrap().clone()
        };
        assert_eq!(layers("sharea")[0], layers("shareb")[0]);
        assert_eq!(
            fs::read_dir(env.store().join("images/layers"))
                .unwrap()
                .count(),
            3
        );
        // Pulling the same image again fetches no blob at all.
        let before = relay.requests().len();
        pull_json(&env, &[&format!("{host}/shareb:1")]);
        let again: Vec<String> = relay.requests()[before..]
            .iter()
            .filter(|l| l.contains("/blobs/"))
            .cloned()
            .collect();
        assert!(again.is_empty(), "{again:?}");
    }
}

#[test]
fn digest_pinning() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let good = format!("{}/busybox:1@{}", r.plain_host(), r.seeded.busybox_manifest);
        let v = pull_json(&env, &[&good]);
        assert_eq!(v["manifest"], r.seeded.busybox_manifest.as_str());
        // A digest the registry does not have under that name.
        let wrong = format!("{}/busybox@sha256:{}", r.plain_host(), "0".repeat(64));
        let out = env.run(["pull", &wrong]);
        out.assert_code(125);
        assert!(out.stderr.contains("not found"), "{}", out.stderr);
        // Another image's digest asked of this repository is also refused.
        let other = format!("{}/busybox@{}", r.plain_host(), r.seeded.multi_arm64);
        env.run(["pull", &other]).assert_code(125);
        // A malformed digest is a usage error that names it.
        let bad = env.run(["pull", &format!("{}/busybox@sha256:abc", r.plain_host())]);
        bad.assert_code(125);
        assert!(bad.stderr.contains("invalid"), "{}", bad.stderr);
        // Pinning an index's digest chooses from it.
        let v = pull_json(
            &env,
            &[&format!(
                "{}/multi@{}",
                r.plain_host(),
                r.seeded.multi_index
            )],
        );
        assert_eq!(v["index"], r.seeded.multi_index.as_str());
        assert_eq!(v["manifest"], r.seeded.multi_amd64.as_str());
    }
}

#[test]
fn corrupted_blob_is_refused_and_leaves_nothing() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let out = env.run(["pull", &format!("{}/corrupt:1", r.plain_host())]);
        out.assert_code(125);
        assert!(
            out.stderr.contains(&r.seeded.corrupt_layer) && out.stderr.contains("refused"),
            "{}",
            out.stderr
        );
        let stored = assert_store_clean(&env);
        assert!(!stored.contains(&r.seeded.corrupt_layer), "{stored:?}");
        // No manifest was recorded: only the config may be there.
        assert!(stored.len() <= 1, "{stored:?}");
    }
}

#[test]
fn killed_pull_leaves_nothing_visible_and_restarts() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let relay = registry::relay::Relay::start(r.plain);
        let env = Env::new(who);
        let image = format!("127.0.0.1:{}/big:1", relay.port);
        relay.kill_mid_way(env.foxbox(["pull", &image]));
        let stored = assert_store_clean(&env);
        assert!(!stored.contains(&r.seeded.big_layer), "{stored:?}");
        // Restart at full speed: it completes, and leaves only complete blobs.
        relay.set_rate(0);
        let v = pull_json(&env, &[&image]);
        assert_eq!(layer_digests(&v), std::slice::from_ref(&r.seeded.big_layer));
        let stored = assert_store_clean(&env);
        assert!(stored.contains(&r.seeded.big_layer));
    }
}

#[test]
fn multi_arch_selection_and_platform_flag() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let image = format!("{}/multi:1", r.plain_host());
        let v = pull_json(&env, &[&image]);
        assert_eq!(v["index"], r.seeded.multi_index.as_str());
        assert_eq!(v["manifest"], r.seeded.multi_amd64.as_str());
        assert_eq!(v["platform"], "linux/amd64");
        let v = pull_json(&env, &["--platform", "linux/arm64", &image]);
        assert_eq!(v["manifest"], r.seeded.multi_arm64.as_str());
        assert_eq!(v["platform"], "linux/arm64/v8");
        let v = pull_json(&env, &["--platform", "linux/arm64/v8", &image]);
        assert_eq!(v["manifest"], r.seeded.multi_arm64.as_str());
        let out = env.run(["pull", "--platform", "linux/s390x", &image]);
        out.assert_code(125);
        assert!(
            out.stderr.contains("linux/s390x") && out.stderr.contains("linux/arm64/v8"),
            "{}",
            out.stderr
        );
        env.run(["pull", "--platform", "linux", &image])
            .assert_code(125);
    }
}

#[test]
fn docker_media_types_zstd_and_uncompressed_layers() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let v = pull_json(&env, &[&format!("{}/busybox:1-docker", r.plain_host())]);
        assert_eq!(
            v["layers"][0]["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        let manifest = v["manifest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let m: Value =
            serde_json::from_slice(&fs::read(blobs(&env).join("sha256").join(manifest)).unwrap())
                .unwrap();
        assert_eq!(
            m["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        let v = pull_json(&env, &[&format!("{}/zstd:1", r.plain_host())]);
        assert_eq!(
            layer_digests(&v),
            std::slice::from_ref(&r.seeded.zstd_layer)
        );
        assert_eq!(
            v["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        let v = pull_json(&env, &[&format!("{}/plain:1", r.plain_host())]);
        assert_eq!(
            layer_digests(&v),
            std::slice::from_ref(&r.seeded.plain_layer)
        );
        assert_store_clean(&env);
    }
}

fn login(env: &Env, host: &str, user: &str, pass: &str) -> common::Run {
    let mut c = env.foxbox(["login", host, "-u", user, "--password-stdin"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{pass}\n").as_bytes())
        .unwrap();
    common::Run::from(child.wait_with_output().unwrap())
}

fn auth_file(env: &Env) -> std::path::PathBuf {
    env.dir.join("config/foxbox/auth.json")
}

#[test]
fn basic_auth_over_tls_with_login() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let image = format!("{}/busybox:1", r.basic_host());
        // Without the CA the certificate is refused (no fallback to plain HTTP).
        let out = env.run(["pull", &image]);
        out.assert_code(125);
        assert!(
            out.stderr.to_lowercase().contains("certificate"),
            "{}",
            out.stderr
        );
        registry::trust_ca(&env, r.basic);
        let out = env.run(["pull", &image]);
        out.assert_code(125);
        assert!(
            out.stderr.contains("authentication required"),
            "{}",
            out.stderr
        );

        let bad = login(&env, &r.basic_host(), registry::USER, "wrong");
        bad.assert_code(125);
        assert!(
            !auth_file(&env).exists(),
            "a refused login stored credentials"
        );

        login(&env, &r.basic_host(), registry::USER, registry::PASS).ok();
        let meta = fs::metadata(auth_file(&env)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let (uid, _) = env.ids();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), uid);
        let doc: Value = serde_json::from_slice(&fs::read(auth_file(&env)).unwrap()).unwrap();
        assert!(doc["auths"][r.basic_host()]["auth"].is_string(), "{doc}");

        let v = pull_json(&env, &[&image]);
        assert_eq!(v["manifest"], r.seeded.busybox_manifest.as_str());
    }
}

#[test]
fn credentials_from_containers_and_docker_files_and_cert_dir() {
    use base64::Engine as _;
    let r = registries();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        registry::USER,
        registry::PASS
    ));
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        for file in ["runtime/containers/auth.json", "home/.docker/config.json"] {
            let env = Env::new(who);
            env.write("certs/ca.crt", fs::read(&r.ca).unwrap());
            let p = env.dir.join(file);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(
                &p,
                format!(
                    r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
                    r.basic_host()
                ),
            )
            .unwrap();
            let (uid, gid) = env.ids();
            std::process::Command::new("chown")
                .arg("-R")
                .arg(format!("{uid}:{gid}"))
                .arg(&env.dir)
                .status()
                .unwrap();
            let certs = env.work().join("certs");
            let v = pull_json(
                &env,
                &[
                    "--cert-dir",
                    certs.to_str().unwrap(),
                    &format!("{}/busybox:1", r.basic_host()),
                ],
            );
            assert_eq!(v["manifest"], r.seeded.busybox_manifest.as_str(), "{file}");
        }
    }
}

/// The system's trust store is used: a CA given only through `SSL_CERT_FILE` (a bundle) or
/// `SSL_CERT_DIR` (a directory of certificates) is trusted without any certs.d entry.
#[test]
fn the_system_trust_store_is_honoured() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let bundle = env.write("bundle/ca-bundle.crt", fs::read(&r.ca).unwrap());
        let image = format!("{}/busybox:1", r.token_host());
        for (var, value) in [
            ("SSL_CERT_FILE", bundle.clone()),
            ("SSL_CERT_DIR", bundle.parent().unwrap().to_path_buf()),
        ] {
            let out = env
                .foxbox(["pull", "--format", "json", &image])
                .env(var, &value)
                .output()
                .unwrap();
            let out = common::Run::from(out);
            out.ok();
            let v: Value = serde_json::from_str(&out.stdout).unwrap();
            assert_eq!(v["manifest"], r.seeded.busybox_manifest.as_str(), "{var}");
            env.run(["image", "rm", &image]).ok();
        }
        // Without it the certificate is refused.
        let out = env.run(["pull", &image]);
        out.assert_code(125);
        assert!(out.stderr.contains("not trusted"), "{}", out.stderr);
    }
}

#[test]
fn bearer_token_auth() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        registry::trust_ca(&env, r.token);
        // Anonymous callers get pull tokens for public repositories.
        let v = pull_json(&env, &[&format!("{}/busybox:1", r.token_host())]);
        assert_eq!(v["manifest"], r.seeded.busybox_manifest.as_str());
        // ... and none for private ones.
        let private = format!("{}/private/layered:1", r.token_host());
        let out = env.run(["pull", &private]);
        out.assert_code(125);
        assert!(
            out.stderr.contains("authentication required"),
            "{}",
            out.stderr
        );
        login(&env, &r.token_host(), registry::USER, "nope").assert_code(125);
        assert!(!auth_file(&env).exists());
        login(&env, &r.token_host(), registry::USER, registry::PASS).ok();
        let v = pull_json(&env, &[&private]);
        assert_eq!(layer_digests(&v), r.seeded.layered_layers);
        // --creds wins over the stored credentials.
        let out = env.run(["pull", "--creds", "fox:wrong", &private]);
        out.assert_code(125);
        assert!(out.stderr.contains("command line"), "{}", out.stderr);
    }
}

#[test]
fn bad_references_and_flags_are_clear_errors() {
    let env = Env::new(Who::Root);
    for bad in ["", "UPPER/case", "host:99999/x", "a/b:c:d"] {
        let out = env.run(["pull", bad]);
        out.assert_code(125);
        assert!(out.stderr.contains("invalid"), "{bad}: {}", out.stderr);
    }
    let out = env.run(["login", "not a host", "-u", "x", "-p", "y"]);
    out.assert_code(125);
    assert!(!auth_file(&env).exists());
    let out = env.run(["login", "127.0.0.1:1", "-p", "y"]);
    out.assert_code(125);
    assert!(out.stderr.contains("username"), "{}", out.stderr);
    // Nothing listens on port 1: the error says which URL.
    let out = env.run(["pull", "127.0.0.1:1/x"]);
    out.assert_code(125);
    assert!(out.stderr.contains("127.0.0.1:1"), "{}", out.stderr);
    assert!(!Path::new(&env.store().join("images/blobs/sha256"))
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false));
}

/// `run` with an image that is not stored says what it pulls (podman's "Trying to pull ...")
/// and honours `--pull`: never (refused without a pull, nothing stored), missing (the
/// default: pulled once), always (pulled again), newer (a stored image is used when the
/// registry cannot be reached; always then fails).
#[test]
fn run_says_what_it_pulls_and_honours_pull_policies() {
    let r = registries();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let image = format!("{}/busybox:1", r.plain_host());
        let out = env.run(["run", "--rm", "--pull=never", &image, "true"]);
        out.assert_code(125);
        assert!(out.stderr.contains("--pull=never"), "{}", out.stderr);
        assert!(!out.stderr.contains("Trying to pull"), "{}", out.stderr);
        let out = env.run(["run", "--rm", "--pull=never", "nosuchimage", "true"]);
        out.assert_code(125);
        assert!(out.stderr.contains("--pull=never"), "{}", out.stderr);
        assert_eq!(env.run(["image", "ls", "-q"]).stdout, "");

        let trying = format!("Trying to pull {image}...");
        let out = env.run(["run", "--rm", &image, "true"]);
        out.ok();
        assert!(out.stderr.contains(&trying), "{}", out.stderr);
        for (policy, pulls) in [("missing", false), ("never", false), ("always", true)] {
            let out = env.run(["run", "--rm", &format!("--pull={policy}"), &image, "true"]);
            out.ok();
            assert_eq!(
                out.stderr.contains(&trying),
                pulls,
                "{policy}: {}",
                out.stderr
            );
        }

        let tar = common::busybox_tarball();
        let gone = "127.0.0.1:1/gone:1";
        env.run(["image", "import", "--name", gone, tar.to_str().unwrap()])
            .ok();
        let out = env.run(["run", "--rm", "--pull=newer", gone, "true"]);
        out.ok();
        assert!(
            out.stderr.contains("Trying to pull 127.0.0.1:1/gone:1...")
                && out.stderr.contains("Using the stored image"),
            "{}",
            out.stderr
        );
        env.run(["run", "--rm", "--pull=always", gone, "true"])
            .assert_code(125);
        let out = env.run(["run", "--rm", "--pull=sometimes", gone, "true"]);
        out.assert_code(125);
        assert!(
            out.stderr.contains("always, missing, never, newer"),
            "{}",
            out.stderr
        );
    }
}
