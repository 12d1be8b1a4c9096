//! `foxbox pull` and `foxbox login` against real local registries, as root and as the
//! unprivileged user.

mod common;
mod registry;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

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
    env.store().join("blobs")
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
        assert!(an == "sha256" || an == "sha512", "stray entry {an} in the store");
        for f in fs::read_dir(alg.path()).unwrap() {
            let f = f.unwrap();
            let name = f.file_name().to_string_lossy().into_owned();
            if an == "sha256" {
                let got = registry::images::sha256(&fs::read(f.path()).unwrap());
                assert_eq!(got, format!("sha256:{name}"), "blob content does not match its name");
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
        assert_eq!(layer_digests(&v), [r.seeded.busybox_layer.clone()]);
        assert_eq!(v["layers"][0]["fetched"], true);
        assert_eq!(v["platform"], "linux/amd64");
        let stored = assert_store_clean(&env);
        assert!(stored.contains(&r.seeded.busybox_layer.replace("sha256:", "sha256:")));

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
