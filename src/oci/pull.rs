//! Pulling an image into a [`BlobStore`]: resolve the manifest (choosing a platform from an
//! index), then fetch the config and every layer not yet stored, each verified as it streams.
//! The same path serves a registry and an OCI image layout on disk.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::blobstore::{BlobError, BlobStore};
use super::client::{Client, ClientError, FetchedManifest};
use super::digest::Digest;
use super::layer::{compression_of, LayerError};
use super::manifest::{
    parse_manifest, Descriptor, ImageConfig, ImageManifest, Manifest, ManifestError, DOCKER_CONFIG,
    MAX_MANIFEST_BYTES, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
use super::platform::Platform;
use super::reference::Reference;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("manifest of {reference} has digest {actual}, but {expected} was asked for: refused")]
    PinnedDigestMismatch {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("the registry says the manifest of {reference} is {header}, but its content is {actual}: refused")]
    HeaderDigestMismatch {
        reference: String,
        header: String,
        actual: Digest,
    },
    #[error("manifest {digest} is not the one its index describes ({why}): refused")]
    ChildMismatch { digest: Digest, why: String },
    #[error("{reference} has no image for {wanted}; it has: {available}")]
    NoPlatform {
        reference: String,
        wanted: Platform,
        available: String,
    },
    #[error("{reference}: an index inside an index is not supported")]
    NestedIndex { reference: String },
    #[error("{reference} is not a container image (config media type {media_type:?})")]
    NotAnImage {
        reference: String,
        media_type: String,
    },
    #[error("image config {digest} is malformed: {source}")]
    Config {
        digest: Digest,
        source: serde_json::Error,
    },
    #[error("image config {digest} lists {diff_ids} layer diff ids but the manifest has {layers} layers")]
    LayerCount {
        digest: Digest,
        diff_ids: usize,
        layers: usize,
    },
    #[error("{0}")]
    Source(String),
}

/// Layer-level progress, for a terminal display.
pub trait Progress: Sync {
    fn start(&self, _layer: &Descriptor) {}
    fn advance(&self, _layer: &Descriptor, _bytes: u64) {}
    /// `reused` when the blob was already stored and nothing was fetched.
    fn done(&self, _layer: &Descriptor, _reused: bool) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

pub struct PullOptions<'a> {
    /// The platform to choose from an index (default: this machine's).
    pub platform: Option<Platform>,
    pub progress: &'a dyn Progress,
    /// Layers fetched at once.
    pub jobs: usize,
}

impl Default for PullOptions<'_> {
    fn default() -> Self {
        PullOptions {
            platform: None,
            progress: &NoProgress,
            jobs: 3,
        }
    }
}

/// What a pull put into the store, and what the image store needs to record it.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The image manifest (platform-specific) and its descriptor: the image's identity.
    pub manifest_digest: Digest,
    pub manifest_descriptor: Descriptor,
    pub manifest: ImageManifest,
    /// When the reference named an index: its digest (also stored).
    pub index_digest: Option<Digest>,
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// Layers in application order (base first).
    pub layers: Vec<Descriptor>,
    /// Blobs fetched by this pull (config and layers), and those already stored.
    pub fetched: Vec<Digest>,
    pub reused: Vec<Digest>,
    /// Set when the image's config names another platform than the one wanted (only possible
    /// when the reference was a single manifest, not an index).
    pub platform_mismatch: Option<Platform>,
}

/// Where manifests and blobs come from.
pub trait Source: Sync {
    /// A manifest by digest (an index's child).
    fn manifest_by_digest(&self, digest: &Digest) -> Result<FetchedManifest, PullError>;
    /// A blob's content, unverified (the store verifies it).
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send>, PullError>;
}

struct RegistrySource {
    repo: super::client::Repo,
}

impl Source for RegistrySource {
    fn manifest_by_digest(&self, digest: &Digest) -> Result<FetchedManifest, PullError> {
        Ok(self.repo.manifest(&digest.to_string())?)
    }
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send>, PullError> {
        Ok(self.repo.blob(&desc.digest)?)
    }
}

/// Pull `reference` from its registry into `store`.
pub fn pull(
    client: &Client,
    reference: &Reference,
    store: &dyn BlobStore,
    opts: &PullOptions,
) -> Result<PulledImage, PullError> {
    let repo = client.repo(&reference.registry, &reference.repository)?;
    let top = repo.manifest(&reference.manifest_reference())?;
    let digest = match &reference.digest {
        Some(pinned) => {
            let actual = pinned.same_alg_of(&top.bytes);
            if &actual != pinned {
                return Err(PullError::PinnedDigestMismatch {
                    reference: reference.to_string(),
                    expected: pinned.clone(),
                    actual,
                });
            }
            actual
        }
        None => {
            let actual = Digest::sha256_of(&top.bytes);
            if let Some(h) = &top.header_digest {
                if let Ok(hd) = h.parse::<Digest>() {
                    if hd != hd.same_alg_of(&top.bytes) {
                        return Err(PullError::HeaderDigestMismatch {
                            reference: reference.to_string(),
                            header: h.clone(),
                            actual,
                        });
                    }
                }
            }
            actual
        }
    };
    let source = RegistrySource { repo };
    complete(&source, &reference.to_string(), top, digest, store, opts)
}

/// From a fetched top-level manifest (whose digest the caller verified) to a complete image
/// in the store.
pub fn complete(
    source: &dyn Source,
    what: &str,
    top: FetchedManifest,
    top_digest: Digest,
    store: &dyn BlobStore,
    opts: &PullOptions,
) -> Result<PulledImage, PullError> {
    let wanted = opts.platform.clone().unwrap_or_else(Platform::host);
    let parsed = parse_manifest(top.content_type.as_deref(), &top.bytes)?;
    let top_size = top.bytes.len() as u64;
    let (index_digest, manifest, manifest_descriptor, manifest_bytes, from_index) = match parsed {
        Manifest::Image(m) => {
            let mt = media_type_or(&m.media_type, &top.content_type, OCI_MANIFEST);
            let desc = plain_descriptor(mt, top_digest.clone(), top_size);
            (None, m, desc, top.bytes, false)
        }
        Manifest::Index(idx) => {
            let chosen = idx.for_platform(&wanted).ok_or_else(|| {
                let mut available: Vec<String> = idx
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                available.dedup();
                PullError::NoPlatform {
                    reference: what.to_string(),
                    wanted: wanted.clone(),
                    available: if available.is_empty() {
                        "no platforms listed".into()
                    } else {
                        available.join(", ")
                    },
                }
            })?;
            let child = source.manifest_by_digest(&chosen.digest)?;
            let actual = chosen.digest.same_alg_of(&child.bytes);
            if actual != chosen.digest {
                return Err(PullError::ChildMismatch {
                    digest: chosen.digest.clone(),
                    why: format!("content is {actual}"),
                });
            }
            if child.bytes.len() as u64 != chosen.size {
                return Err(PullError::ChildMismatch {
                    digest: chosen.digest.clone(),
                    why: format!(
                        "{} bytes, the index says {}",
                        child.bytes.len(),
                        chosen.size
                    ),
                });
            }
            let ct = child
                .content_type
                .clone()
                .or(Some(chosen.media_type.clone()));
            let m = match parse_manifest(ct.as_deref().filter(|c| !c.is_empty()), &child.bytes)? {
                Manifest::Image(m) => m,
                Manifest::Index(_) => {
                    return Err(PullError::NestedIndex {
                        reference: what.to_string(),
                    })
                }
            };
            let mt = media_type_or(&m.media_type, &ct, OCI_MANIFEST);
            let desc = Descriptor {
                media_type: mt,
                digest: chosen.digest.clone(),
                size: chosen.size,
                platform: chosen.platform.clone(),
                annotations: Default::default(),
                urls: vec![],
            };
            (
                Some((top_digest.clone(), top.bytes)),
                m,
                desc,
                child.bytes,
                true,
            )
        }
    };

    let config_desc = manifest.config.clone();
    if config_desc.media_type != OCI_CONFIG && config_desc.media_type != DOCKER_CONFIG {
        return Err(PullError::NotAnImage {
            reference: what.to_string(),
            media_type: config_desc.media_type,
        });
    }
    for l in &manifest.layers {
        compression_of(&l.media_type)?;
    }

    let mut fetched = Vec::new();
    let mut reused = Vec::new();
    // The config is small: fetch it first so a malformed image fails before the big downloads.
    if store.has(&config_desc.digest) {
        reused.push(config_desc.digest.clone());
    } else {
        if config_desc.size > MAX_MANIFEST_BYTES {
            return Err(PullError::Source(format!(
                "image config {} is {} bytes; more than the {MAX_MANIFEST_BYTES} allowed",
                config_desc.digest, config_desc.size
            )));
        }
        let mut r = source.blob(&config_desc)?;
        store.put(&config_desc.digest, Some(config_desc.size), &mut r)?;
        fetched.push(config_desc.digest.clone());
    }
    let config_bytes = store.read_small(&config_desc.digest, MAX_MANIFEST_BYTES)?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|source| PullError::Config {
            digest: config_desc.digest.clone(),
            source,
        })?;
    if !config.rootfs.diff_ids.is_empty() && config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(PullError::LayerCount {
            digest: config_desc.digest.clone(),
            diff_ids: config.rootfs.diff_ids.len(),
            layers: manifest.layers.len(),
        });
    }

    let (f, r) = fetch_layers(source, &manifest.layers, store, opts)?;
    fetched.extend(f);
    reused.extend(r);

    // The manifest goes in last: a stored manifest means a complete image.
    store.put(
        &manifest_descriptor.digest,
        Some(manifest_descriptor.size),
        &mut &manifest_bytes[..],
    )?;
    let index_digest = match index_digest {
        Some((d, bytes)) => {
            store.put(&d, Some(top_size), &mut &bytes[..])?;
            Some(d)
        }
        None => None,
    };

    let got = config.platform();
    let platform_mismatch = (!from_index
        && !got.os.is_empty()
        && !got.architecture.is_empty()
        && !wanted.matches(&got))
    .then_some(got);
    Ok(PulledImage {
        manifest_digest: manifest_descriptor.digest.clone(),
        manifest_descriptor,
        layers: manifest.layers.clone(),
        manifest,
        index_digest,
        config_digest: config_desc.digest,
        config,
        fetched,
        reused,
        platform_mismatch,
    })
}

fn media_type_or(field: &Option<String>, ct: &Option<String>, default: &str) -> String {
    let ct = ct
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| *c != OCI_INDEX && c.contains("manifest"));
    field
        .clone()
        .or(ct.map(String::from))
        .unwrap_or_else(|| default.to_string())
}

fn plain_descriptor(media_type: String, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type,
        digest,
        size,
        platform: None,
        annotations: Default::default(),
        urls: vec![],
    }
}

struct Counting<'a, R> {
    inner: R,
    layer: &'a Descriptor,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(self.layer, n as u64);
        Ok(n)
    }
}

type Fetched = (Vec<Digest>, Vec<Digest>);

/// Fetch every layer not already stored, a few at a time; the first failure stops the rest.
fn fetch_layers(
    source: &dyn Source,
    layers: &[Descriptor],
    store: &dyn BlobStore,
    opts: &PullOptions,
) -> Result<Fetched, PullError> {
    let mut unique: Vec<&Descriptor> = Vec::new();
    for l in layers {
        if !unique.iter().any(|u| u.digest == l.digest) {
            unique.push(l);
        }
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, Result<bool, PullError>)>> = Mutex::new(Vec::new());
    let jobs = opts.jobs.clamp(1, 8).min(unique.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= unique.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let l = unique[i];
                let r = fetch_one(source, l, store, opts.progress);
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let (mut fetched, mut reused) = (Vec::new(), Vec::new());
    for (i, r) in results {
        if r? {
            fetched.push(unique[i].digest.clone());
        } else {
            reused.push(unique[i].digest.clone());
        }
    }
    Ok((fetched, reused))
}

/// Ok(true) when fetched, Ok(false) when already stored.
fn fetch_one(
    source: &dyn Source,
    l: &Descriptor,
    store: &dyn BlobStore,
    progress: &dyn Progress,
) -> Result<bool, PullError> {
    if store.has(&l.digest) {
        progress.done(l, true);
        return Ok(false);
    }
    progress.start(l);
    let body = source.blob(l)?;
    let mut r = Counting {
        inner: body,
        layer: l,
        progress,
    };
    store.put(&l.digest, Some(l.size), &mut r)?;
    progress.done(l, false);
    Ok(true)
}
