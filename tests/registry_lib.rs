//! The registry library as the image store will call it: pull into a BlobStore, open layers as
//! verified tar streams, read what `skopeo copy ... oci:DIR` wrote, and write layouts that
//! skopeo reads.

mod common;
mod registry;

use std::process::Command;

use foxbox::oci::layer::open_layer;
use foxbox::oci::{
    pull, write_layout, write_layout_tar, BlobStore, Client, DirBlobStore, OciLayout, Platform,
    PullOptions, Reference, SaveImage, Settings,
};
use registry::registries;

fn client() -> Client {
    let mut s = Settings::default();
    s.auth_files.clear();
    Client::new(s)
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Entry names of every layer of a pulled image, each checked against its diff id.
fn layer_entries(store: &dyn BlobStore, img: &foxbox::oci::PulledImage) -> Vec<Vec<String>> {
    img.layers
        .iter()
        .zip(&img.config.rootfs.diff_ids)
        .map(|(l, diff)| {
            let mut r = open_layer(store, l, Some(diff)).unwrap();
            let mut names = Vec::new();
            {
                let mut a = tar::Archive::new(&mut r);
                for e in a.entries().unwrap() {
                    names.push(
                        e.unwrap()
                            .path()
                            .unwrap()
                            .display()
                            .to_string()
                            .trim_start_matches("./")
                            .trim_end_matches('/')
                            .to_string(),
                    );
                }
            }
            r.finish().unwrap();
            names
        })
        .collect()
}

#[test]
fn pulled_layers_open_as_verified_tar_streams() {
    let r = registries();
    let t = tempfile::tempdir().unwrap();
    let store = DirBlobStore::new(t.path().join("blobs")).unwrap();
    let c = client();
    let reference = Reference::parse(&format!("{}/layered:1", r.plain_host())).unwrap();
    let img = pull(&c, &reference, &store, &PullOptions::default()).unwrap();
    let entries = layer_entries(&store, &img);
    assert_eq!(entries.len(), 3);
    assert!(entries[0].iter().any(|n| n == "bin/busybox"));
    assert!(entries[2].iter().any(|n| n == "etc/.wh.removeme"));
    assert!(entries[2].iter().any(|n| n == "data/opq/.wh..wh..opq"));
    assert_eq!(img.config.config.cmd, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(img.config.config.working_dir.as_deref(), Some("/"));

    // zstd and uncompressed layers read the same way.
    for name in ["zstd", "plain"] {
        let reference = Reference::parse(&format!("{}/{name}:1", r.plain_host())).unwrap();
        let img = pull(&c, &reference, &store, &PullOptions::default()).unwrap();
        let e = layer_entries(&store, &img);
        assert!(!e[0].is_empty(), "{name}");
    }

    // A layer checked against the wrong diff id is refused at the end of the stream.
    let reference = Reference::parse(&format!("{}/busybox:1", r.plain_host())).unwrap();
    let img = pull(&c, &reference, &store, &PullOptions::default()).unwrap();
    let wrong = img.config_digest.clone();
    let mut reader = open_layer(&store, &img.layers[0], Some(&wrong)).unwrap();
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
    assert!(reader.finish().is_err());
}

#[test]
fn reads_a_layout_skopeo_wrote_and_writes_one_skopeo_reads() {
    let r = registries();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("from-skopeo");
    let dir_s = dir.display().to_string();
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{}/layered:1", r.plain_host()),
        &format!("oci:{dir_s}:layered"),
    ]);
    skopeo(&[
        "copy",
        "-q",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{}/multi:1", r.plain_host()),
        &format!("oci:{dir_s}:multi"),
    ]);
    let layout = OciLayout::open(&dir).unwrap();
    assert!(layout.find(None).is_err(), "two images: a name is needed");
    let store = DirBlobStore::new(t.path().join("blobs")).unwrap();
    let img = layout
        .load(Some("layered"), &store, &PullOptions::default())
        .unwrap();
    assert_eq!(
        img.layers
            .iter()
            .map(|l| l.digest.to_string())
            .collect::<Vec<_>>(),
        r.seeded.layered_layers
    );
    assert_eq!(layer_entries(&store, &img).len(), 3);
    let opts = PullOptions {
        platform: Some("linux/arm64".parse::<Platform>().unwrap()),
        ..Default::default()
    };
    let arm = layout.load(Some("multi"), &store, &opts).unwrap();
    assert_eq!(arm.manifest_digest.to_string(), r.seeded.multi_arm64);
    assert_eq!(
        arm.index_digest.as_ref().map(|d| d.to_string()),
        Some(r.seeded.multi_index.clone())
    );

    // Write both back out: skopeo inspects each and finds the same digests.
    let out = t.path().join("saved");
    write_layout(
        &out,
        &store,
        &[
            SaveImage {
                name: Some("layered".into()),
                manifest: img.manifest_descriptor.clone(),
            },
            SaveImage {
                name: Some("arm".into()),
                manifest: arm.manifest_descriptor.clone(),
            },
        ],
    )
    .unwrap();
    let out_s = out.display().to_string();
    let v: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", &format!("oci:{out_s}:layered")])).unwrap();
    assert_eq!(v["Digest"], img.manifest_digest.to_string());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 3);
    let v: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", &format!("oci:{out_s}:arm")])).unwrap();
    assert_eq!(v["Architecture"], "arm64");

    // Round trip through the registry: what we saved, pushed by skopeo, pulls back the same.
    skopeo(&[
        "copy",
        "-q",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{out_s}:layered"),
        &format!("docker://{}/roundtrip:1", r.plain_host()),
    ]);
    let fresh = DirBlobStore::new(t.path().join("blobs2")).unwrap();
    let back = pull(
        &client(),
        &Reference::parse(&format!("{}/roundtrip:1", r.plain_host())).unwrap(),
        &fresh,
        &PullOptions::default(),
    )
    .unwrap();
    assert_eq!(back.manifest_digest, img.manifest_digest);

    // The tar form is an oci-archive.
    let tarfile = t.path().join("saved.tar");
    write_layout_tar(
        &tarfile,
        &store,
        &[SaveImage {
            name: Some("layered".into()),
            manifest: img.manifest_descriptor.clone(),
        }],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("oci-archive:{}", tarfile.display()),
    ]))
    .unwrap();
    assert_eq!(v["Digest"], img.manifest_digest.to_string());

    // A corrupted blob in a layout is refused on load and not stored.
    let bad_store = DirBlobStore::new(t.path().join("blobs3")).unwrap();
    let victim = &img.layers[1].digest;
    let p = out.join("blobs/sha256").join(victim.hex());
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    let err = OciLayout::open(&out)
        .unwrap()
        .load(Some("layered"), &bad_store, &PullOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains(&victim.to_string()), "{err}");
    assert!(!bad_store.has(victim));
    assert!(!bad_store.has(&img.manifest_digest));
}
