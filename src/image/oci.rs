//! `image save` and `image load`: the store's images as OCI image layouts (a directory, or a
//! tar of one: podman's and skopeo's `oci:` and `oci-archive:`), and back.
//!
//! A pulled or loaded image is saved as it was pulled: its manifest, config and layer blobs,
//! byte for byte, so loading the layout again gives the same id. A tarball-imported image has
//! no blobs: its layer is packed again (a gzip tar of the unpacked layer, ids as the box sees
//! them) with a generated config holding its defaults; loading that gives an image whose id is
//! that config's digest. A built image (`foxbox build`) is saved the same way, its steps'
//! layers as the tar blobs the build stored and its configuration from its stored config.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Component, Path, PathBuf};

use super::pull::{PullContext, Pulled};
use super::reference::ImageName;
use super::store::{docker_hub_name, ImageRecord};
use super::{ImageError, Store};
use crate::oci::blobstore::{BlobStore, DirBlobStore};
use crate::oci::layout::{write_layout, write_layout_tar, OciLayout, SaveImage};
use crate::oci::manifest::{
    ContainerConfig, Descriptor, ImageConfig as OciConfig, ImageManifest, RootFs, OCI_CONFIG,
    OCI_LAYER_GZIP, OCI_MANIFEST,
};
use crate::oci::{Digest, Platform};

/// What `image save` wrote.
#[derive(Debug, Clone)]
pub struct Saved {
    pub id: String,
    /// The manifest digest in the layout.
    pub manifest: String,
    /// Its `org.opencontainers.image.ref.name`.
    pub name: Option<String>,
}

/// Whether `out` names an archive (`*.tar`) rather than a layout directory.
pub fn is_archive(out: &Path) -> bool {
    out.extension().is_some_and(|e| e == "tar")
}

fn blob_err(e: crate::oci::BlobError) -> ImageError {
    ImageError::Blob(Box::new(e))
}

fn layout_err(e: crate::oci::layout::LayoutError) -> ImageError {
    ImageError::Layout(Box::new(e))
}

impl Store {
    /// Write the image `what` as an OCI image layout at `out` (a directory; a `*.tar` file
    /// gets the layout as a tar archive). Its name in the layout is the name it was asked by,
    /// else its first name.
    pub fn save(&self, what: &str, out: &Path) -> Result<Saved, ImageError> {
        let rec = self.record(what)?;
        let name = save_name(&rec, what);
        let write = |store: &dyn BlobStore, manifest: Descriptor| -> Result<(), ImageError> {
            let images = [SaveImage {
                name: name.clone(),
                manifest,
            }];
            if is_archive(out) {
                write_layout_tar(out, store, &images)
            } else {
                write_layout(out, store, &images)
            }
            .map_err(layout_err)
        };
        if let Some(m) = &rec.manifest {
            let desc = descriptor(&m.media_type, &m.digest, m.size)?;
            write(self, desc)?;
            return Ok(Saved {
                id: rec.id.clone(),
                manifest: m.digest.clone(),
                name,
            });
        }
        let scratch = self.scratch("save")?;
        let staging = DirBlobStore::new(scratch.path().join("blobs")).map_err(blob_err)?;
        let manifest = self.generate_blobs(&rec, scratch.path(), &staging)?;
        write(&staging, manifest.clone())?;
        Ok(Saved {
            id: rec.id,
            manifest: manifest.digest.to_string(),
            name,
        })
    }

    /// Layers, a config and a manifest for an image with no stored manifest, into `staging`;
    /// the manifest's descriptor. A layer whose blob the store has (a built image's steps) is
    /// written as it is; one it has only unpacked (a tarball import) is packed as a gzip tar.
    /// A stored config (a built image's) gives the configuration, labels and ports included.
    fn generate_blobs(
        &self,
        rec: &ImageRecord,
        scratch: &Path,
        staging: &DirBlobStore,
    ) -> Result<Descriptor, ImageError> {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for (i, layer) in rec.layers.iter().enumerate() {
            let stored = self.blob_path(layer);
            if stored.is_file() {
                let digest: Digest = layer.parse().map_err(bad_digest)?;
                let (media, diff_id) = stored_layer(&stored, layer)?;
                let size = fs::metadata(&stored).map(|m| m.len()).unwrap_or(0);
                let mut f = File::open(&stored).map_err(|source| ImageError::Io {
                    what: "cannot read",
                    path: stored.clone(),
                    source,
                })?;
                staging.put(&digest, Some(size), &mut f).map_err(blob_err)?;
                layers.push(descriptor(media, layer, size)?);
                diff_ids.push(diff_id.parse().map_err(bad_digest)?);
                continue;
            }
            let dir = self.layer_path(layer);
            if !dir.is_dir() {
                return Err(ImageError::MissingLayer(layer.clone()));
            }
            let tmp = scratch.join(format!("layer-{i}.tar.gz"));
            let out = tmp.clone();
            // Read as root of the store's user namespace: the layer's files belong to the box's
            // ids, and the tar records them as the box sees them.
            let packed = self.as_root(move || super::pack::pack_dir(&dir, &out, true, None))?;
            let layer_digest: Digest = packed.digest.parse().map_err(bad_digest)?;
            let blob = staging.dir().join("sha256").join(layer_digest.hex());
            fs::rename(&tmp, &blob).map_err(|source| ImageError::Io {
                what: "cannot move the packed layer to",
                path: blob.clone(),
                source,
            })?;
            layers.push(descriptor(OCI_LAYER_GZIP, &packed.digest, packed.size)?);
            diff_ids.push(packed.diff_id.parse().map_err(bad_digest)?);
        }
        let c = &rec.config;
        let host = Platform::host();
        let stored_config: Option<OciConfig> = rec
            .id
            .parse::<Digest>()
            .ok()
            .and_then(|d| self.blobs.read_small(&d, 1 << 20).ok())
            .and_then(|b| serde_json::from_slice(&b).ok());
        let config = OciConfig {
            architecture: host.architecture,
            os: host.os,
            variant: host.variant,
            created: Some(humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(rec.created),
            ))
            .map(|t| t.to_string()),
            config: stored_config
                .map(|s| s.config)
                .unwrap_or_else(|| ContainerConfig {
                    user: c.user.clone(),
                    env: (!c.env.is_empty()).then(|| c.env.clone()),
                    entrypoint: (!c.entrypoint.is_empty()).then(|| c.entrypoint.clone()),
                    cmd: (!c.cmd.is_empty()).then(|| c.cmd.clone()),
                    working_dir: c.workdir.clone(),
                    ..ContainerConfig::default()
                }),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids,
            },
        };
        let config_desc = put_json(staging, OCI_CONFIG, &config)?;
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: config_desc,
            layers,
            annotations: Default::default(),
        };
        put_json(staging, OCI_MANIFEST, &manifest)
    }

    /// Load every image of an OCI image layout (a directory, or a tar of one: what
    /// `image save` and `skopeo copy ... oci:DIR` / `oci-archive:FILE` write), each named
    /// after its `org.opencontainers.image.ref.name` when that is a valid image name (a bare
    /// `NAME` gets the tag `latest`). An index chooses `ctx.platform` (default: this machine's).
    pub fn load(&self, input: &Path, ctx: &PullContext) -> Result<Vec<Pulled>, ImageError> {
        let meta = fs::metadata(input).map_err(|source| ImageError::Io {
            what: "cannot read",
            path: input.to_path_buf(),
            source,
        })?;
        let scratch;
        let dir = if meta.is_dir() {
            input.to_path_buf()
        } else {
            scratch = self.scratch("load")?;
            extract_layout(input, scratch.path())?;
            if !scratch.path().join("oci-layout").is_file() {
                return Err(ImageError::Oci(format!(
                    "{} is not an OCI image archive: it has no oci-layout file",
                    input.display()
                )));
            }
            scratch.path().to_path_buf()
        };
        let layout = OciLayout::open(&dir).map_err(layout_err)?;
        let refs = layout.refs();
        if refs.is_empty() {
            return Err(ImageError::Oci(format!(
                "{} holds no image",
                input.display()
            )));
        }
        let mut out = Vec::new();
        for (ref_name, desc) in refs {
            let which = ref_name
                .clone()
                .unwrap_or_else(|| format!("@{}", desc.digest));
            let names: Vec<String> = ref_name
                .as_deref()
                .and_then(|n| match ImageName::parse(n) {
                    Ok(r) => Some(r.full()),
                    Err(e) => {
                        tracing::warn!("{}: left unnamed ({e})", input.display());
                        None
                    }
                })
                .into_iter()
                .collect();
            out.push(self.load_from_layout(&layout, Some(&which), names, ctx)?);
        }
        Ok(out)
    }
}

/// The name an image is saved under: the one it was asked by when that is one of its names,
/// else its first.
fn save_name(rec: &ImageRecord, what: &str) -> Option<String> {
    if let Ok(r) = ImageName::parse(what) {
        for n in [
            r.full(),
            format!("{}:{}", docker_hub_name(r.name()), r.tag()),
        ] {
            if rec.names.contains(&n) {
                return Some(n);
            }
        }
    }
    rec.names.first().cloned()
}

fn bad_digest(e: crate::oci::digest::DigestParseError) -> ImageError {
    ImageError::Oci(e.to_string())
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Result<Descriptor, ImageError> {
    Ok(Descriptor {
        media_type: media_type.to_string(),
        digest: digest.parse().map_err(bad_digest)?,
        size,
        platform: None,
        annotations: Default::default(),
        urls: vec![],
    })
}

fn put_json<T: serde::Serialize>(
    store: &DirBlobStore,
    media_type: &str,
    value: &T,
) -> Result<Descriptor, ImageError> {
    let bytes = serde_json::to_vec(value).map_err(|e| ImageError::Oci(e.to_string()))?;
    let digest = Digest::sha256_of(&bytes);
    store
        .put(&digest, Some(bytes.len() as u64), &mut &bytes[..])
        .map_err(blob_err)?;
    descriptor(media_type, &digest.to_string(), bytes.len() as u64)
}

/// A stored layer blob's media type and diff id: a plain tar (a build step's) is its own diff
/// id; a compressed one is read through to find it.
fn stored_layer(blob: &Path, digest: &str) -> Result<(&'static str, String), ImageError> {
    let io = |source: io::Error| ImageError::Io {
        what: "cannot read",
        path: blob.to_path_buf(),
        source,
    };
    let mut f = File::open(blob).map_err(io)?;
    let mut magic = [0u8; 4];
    let n = io::Read::read(&mut f, &mut magic).map_err(io)?;
    let f = File::open(blob).map_err(io)?;
    let mut hasher = super::pack::Hashing::new(io::sink());
    let media = match &magic[..n] {
        [0x1f, 0x8b, ..] => {
            io::copy(
                &mut flate2::read::GzDecoder::new(BufReader::new(f)),
                &mut hasher,
            )
            .map_err(io)?;
            OCI_LAYER_GZIP
        }
        [0x28, 0xb5, 0x2f, 0xfd] => {
            let mut d = zstd::stream::read::Decoder::new(f).map_err(io)?;
            io::copy(&mut d, &mut hasher).map_err(io)?;
            crate::oci::manifest::OCI_LAYER_ZSTD
        }
        _ => return Ok((crate::oci::manifest::OCI_LAYER, digest.to_string())),
    };
    Ok((media, hasher.digest_so_far()))
}

/// The parts of an OCI archive a layout is made of: `oci-layout`, `index.json` and
/// `blobs/<alg>/<hex>`, as regular files under `dest`. Anything else (other files, links,
/// devices, paths leaving the archive) is skipped; the blobs are verified when loaded.
fn extract_layout(file: &Path, dest: &Path) -> Result<(), ImageError> {
    let io_err = |what: &'static str| {
        let path = file.to_path_buf();
        move |source: io::Error| ImageError::Io { what, path, source }
    };
    let f = File::open(file).map_err(io_err("cannot open"))?;
    let mut archive = tar::Archive::new(BufReader::new(f));
    for entry in archive.entries().map_err(io_err("cannot read"))? {
        let mut e = entry.map_err(io_err("cannot read"))?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = e.path().map_err(io_err("cannot read"))?.into_owned();
        let Some(rel) = layout_member(&path) else {
            continue;
        };
        let target = dest.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err("cannot unpack"))?;
        }
        let mut out = File::create(&target).map_err(io_err("cannot unpack"))?;
        io::copy(&mut e, &mut out).map_err(io_err("cannot unpack"))?;
    }
    Ok(())
}

/// `path` as one of a layout's files (relative, normalised), or `None`.
fn layout_member(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => parts.push(p.to_str()?.to_string()),
            _ => return None,
        }
    }
    let ok = match parts.as_slice() {
        [f] => f == "oci-layout" || f == "index.json",
        [b, alg, hex] => {
            b == "blobs"
                && (alg == "sha256" || alg == "sha512")
                && !hex.is_empty()
                && hex.bytes().all(|c| c.is_ascii_hexdigit())
        }
        _ => false,
    };
    ok.then(|| parts.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_layout_files_are_extracted() {
        let hex = "ab".repeat(32);
        assert_eq!(
            layout_member(Path::new("./index.json")),
            Some(PathBuf::from("index.json"))
        );
        assert_eq!(
            layout_member(Path::new(&format!("blobs/sha256/{hex}"))),
            Some(PathBuf::from(format!("blobs/sha256/{hex}")))
        );
        for bad in [
            "../index.json",
            "/index.json",
            "blobs/sha256/../../x",
            "blobs/md5/00",
            "blobs/sha256/xyz",
            "etc/passwd",
            "blobs/sha256",
        ] {
            assert_eq!(layout_member(Path::new(bad)), None, "{bad}");
        }
        assert!(is_archive(Path::new("/x/a.tar")));
        assert!(!is_archive(Path::new("/x/dir")));
    }

    #[test]
    fn packs_a_tree_with_links_in_name_order() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("l");
        fs::create_dir_all(d.join("b/c")).unwrap();
        fs::write(d.join("b/c/f"), "x").unwrap();
        fs::hard_link(d.join("b/c/f"), d.join("a")).unwrap();
        std::os::unix::fs::symlink("b/c/f", d.join("s")).unwrap();
        let out = t.path().join("l.tar.gz");
        let p = super::super::pack::pack_dir(&d, &out, true, None).unwrap();
        let bytes = fs::read(&out).unwrap();
        assert_eq!(p.size, bytes.len() as u64);
        use sha2::Digest as _;
        let hex = |b: &[u8]| format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)));
        assert_eq!(p.digest, hex(&bytes));
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut tar)
            .unwrap();
        assert_eq!(p.diff_id, hex(&tar));
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let got: Vec<(String, tar::EntryType)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path()
                        .unwrap()
                        .display()
                        .to_string()
                        .trim_end_matches('/')
                        .to_string(),
                    e.header().entry_type(),
                )
            })
            .collect();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "s", "b/c", "b/c/f"]);
        assert_eq!(got[4].1, tar::EntryType::Link, "{got:?}");
        assert_eq!(got[2].1, tar::EntryType::Symlink);
    }
}
