//! Test images as OCI image layouts, built here byte by byte (not with foxbox's own layout
//! writer, so that skopeo reading them checks the real format independently).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

#[derive(Clone, Debug)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Desc {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// A layer: compressed bytes as stored, and the digest of the uncompressed tar.
#[derive(Clone)]
pub struct Layer {
    pub media_type: &'static str,
    pub blob: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    pub fn gzip(tar: &[u8]) -> Layer {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(tar).unwrap();
        Layer {
            media_type: LAYER_GZIP,
            blob: e.finish().unwrap(),
            diff_id: sha256(tar),
        }
    }
    pub fn zstd(tar: &[u8]) -> Layer {
        Layer {
            media_type: LAYER_ZSTD,
            blob: zstd::encode_all(tar, 3).unwrap(),
            diff_id: sha256(tar),
        }
    }
    pub fn plain(tar: &[u8]) -> Layer {
        Layer {
            media_type: LAYER_TAR,
            blob: tar.to_vec(),
            diff_id: sha256(tar),
        }
    }
    /// An already gzipped tarball used as it is.
    pub fn from_gzip_file(p: &Path) -> Layer {
        let blob = fs::read(p).unwrap();
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(&blob[..])
            .read_to_end(&mut tar)
            .unwrap();
        Layer {
            media_type: LAYER_GZIP,
            diff_id: sha256(&tar),
            blob,
        }
    }
    pub fn digest(&self) -> String {
        sha256(&self.blob)
    }
}

/// A tar built from (path, content) entries; a trailing '/' makes a directory.
pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_cksum();
            b.append_data(&mut h, path, &[][..]).unwrap();
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

pub struct Layout {
    pub dir: PathBuf,
    refs: Vec<serde_json::Value>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
            refs: Vec::new(),
        }
    }

    pub fn blob(&self, media_type: &str, data: &[u8]) -> Desc {
        let digest = sha256(data);
        let p = self
            .dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        fs::write(p, data).unwrap();
        Desc {
            media_type: media_type.into(),
            digest,
            size: data.len(),
        }
    }

    /// An image manifest for `arch` with these layers and `cmd`.
    pub fn image(&self, arch: &str, variant: Option<&str>, layers: &[Layer], cmd: &[&str]) -> Desc {
        let config = serde_json::json!({
            "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": cmd,
            "WorkingDir": "/",
        });
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        self.image_with(arch, variant, layers, config, &diff_ids)
    }

    /// An image manifest with this `config` section and these diff ids in its config.
    pub fn image_with(
        &self,
        arch: &str,
        variant: Option<&str>,
        layers: &[Layer],
        config: serde_json::Value,
        diff_ids: &[String],
    ) -> Desc {
        self.manifest(self.config_blob(arch, variant, config, diff_ids), layers)
    }

    /// The config blob of an image.
    pub fn config_blob(
        &self,
        arch: &str,
        variant: Option<&str>,
        config: serde_json::Value,
        diff_ids: &[String],
    ) -> Desc {
        let mut doc = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        if let Some(v) = variant {
            doc["variant"] = v.into();
        }
        self.blob(OCI_CONFIG, &serde_json::to_vec(&doc).unwrap())
    }

    fn manifest(&self, cfg: Desc, layers: &[Layer]) -> Desc {
        let ls: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| self.blob(l.media_type, &l.blob).json())
            .collect();
        let man = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": cfg.json(),
            "layers": ls,
        });
        self.blob(OCI_MANIFEST, &serde_json::to_vec(&man).unwrap())
    }

    pub fn index(&self, entries: &[(Desc, &str, &str, Option<&str>)]) -> Desc {
        let ms: Vec<serde_json::Value> = entries
            .iter()
            .map(|(d, os, arch, variant)| {
                let mut j = d.json();
                j["platform"] = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    j["platform"]["variant"] = (*v).into();
                }
                j
            })
            .collect();
        let idx = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": ms});
        self.blob(OCI_INDEX, &serde_json::to_vec(&idx).unwrap())
    }

    pub fn tag(&mut self, name: &str, d: &Desc) {
        let mut j = d.json();
        j["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
        self.refs.push(j);
        let idx =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&idx).unwrap(),
        )
        .unwrap();
    }
}

/// Incompressible bytes of a given length (a xorshift stream), so a layer of that size takes
/// that long to transfer.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
