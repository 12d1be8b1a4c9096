//! `foxbox push`: an image of the store to a registry, as `image save` lays it out (one
//! packer, one manifest maker): each blob the registry lacks is uploaded (or mounted from
//! another repository of the same registry the image was pulled from or the blob was pushed
//! to), the manifest last. The manifest goes as stored, or converted to the OCI or Docker (v2 schema 2)
//! format; the config blob is the same JSON in both, so the image id stays.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::store::Store;
use super::ImageError;
use crate::oci::client::BlobPush;
use crate::oci::manifest::{
    Descriptor, ImageManifest, DOCKER_CONFIG, DOCKER_LAYER_FOREIGN_GZIP, DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_ZSTD,
    OCI_MANIFEST,
};
use crate::oci::{Client, Digest, Reference};

/// Docker's media type of an uncompressed layer (containers/image and distribution know it).
const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The manifest format a push sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// OCI image manifest.
    Oci,
    /// Docker image manifest v2, schema 2 (gzipped layers only).
    Docker,
}

/// How to push.
#[derive(Debug, Clone, Copy, Default)]
pub struct PushOptions {
    /// The manifest's format; `None`: as stored (OCI for what foxbox makes).
    pub format: Option<ManifestFormat>,
    /// Upload blobs larger than this in chunks of this many bytes; `None`: in one request.
    pub chunk_size: Option<u64>,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: String,
    /// Blobs (config and layers) uploaded, mounted, and found there already.
    pub uploaded: usize,
    pub mounted: usize,
    pub present: usize,
}

fn client_err(e: crate::oci::ClientError) -> ImageError {
    ImageError::Registry(Box::new(e))
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { what, path, source }
}

impl Store {
    /// Push the image `what` to `dest` (its tag; `latest` when it has none).
    pub fn push(
        &self,
        what: &str,
        dest: &Reference,
        client: &Client,
        opts: &PushOptions,
    ) -> Result<Pushed, ImageError> {
        let rec = self.record(what)?;
        let scratch = self.scratch("push")?;
        let layout = scratch.path().join("layout");
        let saved = self.save(what, &layout)?;
        let blobs = layout.join("blobs");
        let blob = |d: &Digest| blobs.join(d.algorithm().name()).join(d.hex());
        let manifest_digest: Digest = saved
            .manifest
            .parse()
            .map_err(|e| ImageError::Oci(format!("{e}")))?;
        let mut manifest_path = blob(&manifest_digest);
        let bytes = fs::read(&manifest_path).map_err(io_err("cannot read", &manifest_path))?;
        let mut manifest: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Oci(format!("the saved manifest cannot be read: {e}")))?;
        let mut media_type = manifest
            .media_type
            .clone()
            .or_else(|| rec.manifest.as_ref().map(|m| m.media_type.clone()))
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        let mut digest = manifest_digest.to_string();
        if let Some(format) = opts.format {
            let want = match format {
                ManifestFormat::Oci => OCI_MANIFEST,
                ManifestFormat::Docker => DOCKER_MANIFEST,
            };
            if media_type != want {
                manifest = convert(manifest, format, &blob, scratch.path())?;
                let bytes =
                    serde_json::to_vec(&manifest).map_err(|e| ImageError::Oci(e.to_string()))?;
                digest = Digest::sha256_of(&bytes).to_string();
                manifest_path = scratch.path().join("manifest.json");
                fs::write(&manifest_path, &bytes)
                    .map_err(io_err("cannot write", &manifest_path))?;
                media_type = want.to_string();
            }
        }
        // Repositories of the same registry the image came from or its blobs went to: a blob
        // one of them has is mounted rather than sent again.
        let mut known = BlobLocations::load(&self.dir().join(BLOB_LOCATIONS));
        let pulled_from: Vec<String> = rec
            .repo_digests
            .iter()
            .map(|rd| {
                rd.rsplit_once('@')
                    .map_or(rd.as_str(), |(n, _)| n)
                    .to_string()
            })
            .collect();
        let here = format!("{}/{}", dest.registry, dest.repository);
        let mount_from = |d: &Digest| {
            known
                .of(d)
                .iter()
                .chain(&pulled_from)
                .filter(|r| **r != here)
                .find_map(|r| {
                    let (reg, repo) = r.split_once('/')?;
                    (reg == dest.registry).then(|| repo.to_string())
                })
        };
        let repo = client
            .repo(&dest.registry, &dest.repository)
            .map_err(client_err)?;
        let mut out = Pushed {
            digest,
            uploaded: 0,
            mounted: 0,
            present: 0,
        };
        let mut sent = Vec::new();
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let from = mount_from(&d.digest);
            sent.push(d.digest.clone());
            match repo
                .push_blob(
                    &d.digest,
                    &blob(&d.digest),
                    from.as_deref(),
                    opts.chunk_size,
                )
                .map_err(client_err)?
            {
                BlobPush::Present => out.present += 1,
                BlobPush::Mounted => out.mounted += 1,
                BlobPush::Uploaded => out.uploaded += 1,
            }
        }
        let tag = dest.tag.clone().unwrap_or_else(|| "latest".into());
        let said = repo
            .put_manifest(&tag, &media_type, &manifest_path)
            .map_err(client_err)?;
        if let Some(s) = said.filter(|s| *s != out.digest) {
            return Err(ImageError::Oci(format!(
                "the registry stored the manifest as {s}, not {}",
                out.digest
            )));
        }
        for d in &sent {
            known.add(d, &here);
        }
        known.save();
        Ok(out)
    }
}

/// Where the store's pushes put blobs, by digest (`registry/repository`), for mounts: a cache
/// (a lost or unreadable file costs uploads, nothing else).
const BLOB_LOCATIONS: &str = "blob-locations.json";

#[derive(Debug, Default)]
struct BlobLocations {
    path: PathBuf,
    by_digest: BTreeMap<String, Vec<String>>,
    dirty: bool,
}

impl BlobLocations {
    fn load(path: &Path) -> BlobLocations {
        BlobLocations {
            path: path.to_path_buf(),
            by_digest: fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default(),
            dirty: false,
        }
    }

    fn of(&self, d: &Digest) -> &[String] {
        self.by_digest
            .get(&d.to_string())
            .map_or(&[], Vec::as_slice)
    }

    fn add(&mut self, d: &Digest, repo: &str) {
        let repos = self.by_digest.entry(d.to_string()).or_default();
        if !repos.iter().any(|r| r == repo) {
            repos.push(repo.to_string());
            self.dirty = true;
        }
    }

    fn save(&self) {
        if self.dirty {
            if let Err(e) = crate::store::atomic::write_json(&self.path, &self.by_digest) {
                tracing::debug!("cannot write {}: {e}", self.path.display());
            }
        }
    }
}

/// `manifest` in `format`: the media types of its config and layers changed; a layer Docker's
/// format has no type for (a plain tar, zstd) is gzipped into a new blob beside the others.
fn convert(
    mut manifest: ImageManifest,
    format: ManifestFormat,
    blob: &dyn Fn(&Digest) -> PathBuf,
    scratch: &Path,
) -> Result<ImageManifest, ImageError> {
    let docker = format == ManifestFormat::Docker;
    manifest.media_type = Some(
        if docker {
            DOCKER_MANIFEST
        } else {
            OCI_MANIFEST
        }
        .into(),
    );
    manifest.config.media_type = if docker { DOCKER_CONFIG } else { OCI_CONFIG }.into();
    if docker {
        // Docker's schema 2 has no annotations.
        manifest.annotations.clear();
    }
    for (i, layer) in manifest.layers.iter_mut().enumerate() {
        let m = layer.media_type.clone();
        let gzip = m == OCI_LAYER_GZIP || m == DOCKER_LAYER_GZIP;
        let foreign = m == OCI_LAYER_NONDIST_GZIP || m == DOCKER_LAYER_FOREIGN_GZIP;
        let plain = m == OCI_LAYER || m == DOCKER_LAYER_TAR;
        let zstd = m == OCI_LAYER_ZSTD;
        let to = match (docker, gzip, foreign) {
            (true, true, _) => DOCKER_LAYER_GZIP,
            (true, _, true) => DOCKER_LAYER_FOREIGN_GZIP,
            (true, ..) if plain || zstd => {
                let tmp = scratch.join(format!("layer-{i}.tar.gz"));
                *layer = gzipped(layer, zstd, blob, &tmp)?;
                DOCKER_LAYER_GZIP
            }
            (false, true, _) => OCI_LAYER_GZIP,
            (false, _, true) => OCI_LAYER_NONDIST_GZIP,
            (false, ..) if plain => OCI_LAYER,
            (false, ..) if zstd => OCI_LAYER_ZSTD,
            _ => {
                return Err(ImageError::Oci(format!(
                    "the layer {} is of the type {m:?}, which the {} format cannot carry",
                    layer.digest,
                    if docker { "docker" } else { "oci" }
                )))
            }
        };
        layer.media_type = to.into();
    }
    Ok(manifest)
}

/// The layer `layer` (a plain tar, or zstd) gzipped, as a blob of the layout `blob` names.
fn gzipped(
    layer: &Descriptor,
    zstd: bool,
    blob: &dyn Fn(&Digest) -> PathBuf,
    tmp: &Path,
) -> Result<Descriptor, ImageError> {
    let src = blob(&layer.digest);
    let f = BufReader::new(File::open(&src).map_err(io_err("cannot read", &src))?);
    let packed = if zstd {
        let d = zstd::stream::read::Decoder::with_buffer(f).map_err(io_err("cannot read", &src))?;
        super::pack::gzip_tar(d, tmp)
    } else {
        super::pack::gzip_tar(f, tmp)
    }
    .map_err(io_err("cannot compress", &src))?;
    let digest: Digest = packed
        .digest
        .parse()
        .map_err(|e| ImageError::Oci(format!("{e}")))?;
    let dest = blob(&digest);
    fs::rename(tmp, &dest).map_err(io_err("cannot move the compressed layer to", &dest))?;
    Ok(Descriptor {
        media_type: DOCKER_LAYER_GZIP.into(),
        digest,
        size: packed.size,
        platform: None,
        annotations: Default::default(),
        urls: vec![],
    })
}
