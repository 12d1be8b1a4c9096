//! Images from registries and OCI image layouts into the store, and the run path's way in:
//! [`Store::resolve_or_pull`].
//!
//! A pull (or a load) holds the store's pull guard from its first blob until its image is
//! recorded. Blobs go to `blobs/` through the registry client (verified as they stream, linked
//! in atomically; a blob already stored is never fetched again). Then each layer not yet
//! unpacked is unpacked once into `layers/<hex>` by the store's hostile-archive unpacker, with
//! OCI whiteouts as overlay ones (layers are the read-only lower directories of every box of
//! every image that has them), its uncompressed content checked against the config's diff id.
//! Last, the image is recorded under its name, its id being its config's digest. A refused or
//! killed pull records nothing; what it fetched or unpacked is deleted by the next store open
//! or removal that finds no pull running.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::archive::{read_chunk, ChannelReader, CHUNK};
use super::store::{Image, ImageConfig, ImageRecord, ManifestRef};
use super::unpack::{self, Stats, UnpackError};
use super::{ImageError, Store};
use crate::oci::layer::decompress;
use crate::oci::layout::OciLayout;
use crate::oci::manifest::Descriptor;
use crate::oci::{self, Client, Digest, Platform, Progress, PullOptions, PulledImage, Reference};
use crate::plan::reference::ImageName;
use crate::plan::ImageRef;
use crate::store::clock::now_secs as now;

/// When `run` pulls its image (podman's `--pull`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Always pull (a registry image; a tarball is imported as ever).
    Always,
    /// Pull when the store does not have it.
    #[default]
    Missing,
    /// Never pull: an image that is not stored is an error.
    Never,
    /// Pull, but use the stored image when the pull fails (the registry has the same or
    /// cannot be reached).
    Newer,
}

/// What a pull shows while it runs (a terminal's progress bars, or nothing).
pub trait StoreProgress: Progress {
    /// A layer's unpacking starts.
    fn unpacking(&self, _layer: &Descriptor) {}
    /// A layer is in the store; `reused` when it was already there.
    fn unpacked(&self, _layer: &Descriptor, _reused: bool) {}
    /// A line for the user: which image a short name meant.
    fn note(&self, msg: &str) {
        eprintln!("{msg}");
    }
}

/// No progress display; notes still go to stderr.
pub struct Quiet;
impl Progress for Quiet {}
impl StoreProgress for Quiet {}

/// How to pull: the registry client (settings, credentials), the platform to choose from an
/// index, what to show.
pub struct PullContext<'a> {
    pub client: &'a Client,
    /// `None`: this machine's.
    pub platform: Option<Platform>,
    pub progress: &'a dyn StoreProgress,
    /// Blobs fetched at once.
    pub jobs: usize,
}

impl<'a> PullContext<'a> {
    pub fn new(client: &'a Client) -> PullContext<'a> {
        PullContext {
            client,
            platform: None,
            progress: &Quiet,
            jobs: 3,
        }
    }

    fn options(&self) -> PullOptions<'a> {
        PullOptions {
            platform: self.platform.clone(),
            progress: self.progress,
            jobs: self.jobs,
        }
    }
}

/// A pulled or loaded image, and what the pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: Image,
    pub pulled: PulledImage,
    /// Layers unpacked by this pull (the others were in the store already).
    pub unpacked: Vec<Digest>,
    /// The names this pull or load gave it (the image may have others).
    pub names: Vec<String>,
}

impl Store {
    /// Pull `reference` from its registry into the store. The image is named `name:tag` when
    /// the reference has a tag, and known by `name@digest` for its manifest (and index) digest.
    pub fn pull(&self, reference: &Reference, ctx: &PullContext) -> Result<Pulled, ImageError> {
        let guard = self.pull_guard()?;
        let r = self.pull_guarded(reference, ctx);
        self.after_pull(guard, &r);
        r
    }

    /// [`Store::pull`] with the pull guard held.
    fn pull_guarded(&self, reference: &Reference, ctx: &PullContext) -> Result<Pulled, ImageError> {
        let pulled = oci::pull(ctx.client, reference, self, &ctx.options())
            .map_err(|e| ImageError::Pull(Box::new(e)))?;
        let repo = reference.name();
        let names: Vec<String> = reference
            .tag
            .iter()
            .map(|t| format!("{repo}:{t}"))
            .collect();
        let mut repo_digests = vec![format!("{repo}@{}", pulled.manifest_digest)];
        if let Some(i) = &pulled.index_digest {
            repo_digests.push(format!("{repo}@{i}"));
        }
        self.record_pulled(pulled, names, repo_digests, ctx.progress)
    }

    /// Load the image `which` (a `org.opencontainers.image.ref.name`, `@<digest>`, or `None`
    /// for the only one) of an OCI image layout, named `names`.
    pub fn load_from_layout(
        &self,
        layout: &OciLayout,
        which: Option<&str>,
        names: Vec<String>,
        ctx: &PullContext,
    ) -> Result<Pulled, ImageError> {
        let guard = self.pull_guard()?;
        let r = self.load_guarded(layout, which, names, ctx);
        self.after_pull(guard, &r);
        r
    }

    /// A pull or load is over: one that failed (a full disk, a bad blob, the network) leaves
    /// no blob or layer that no image refers to, unless another pull runs (it may use them;
    /// the next open or removal after it sweeps them).
    fn after_pull<T>(&self, guard: crate::store::lock::Lock, r: &Result<T, ImageError>) {
        drop(guard);
        if r.is_err() {
            if let Ok(l) = self.lock() {
                let _ = self.collect_garbage(&l);
            }
        }
    }

    /// [`Store::load_from_layout`] with the pull guard held.
    fn load_guarded(
        &self,
        layout: &OciLayout,
        which: Option<&str>,
        names: Vec<String>,
        ctx: &PullContext,
    ) -> Result<Pulled, ImageError> {
        let pulled = layout
            .load(which, self, &ctx.options())
            .map_err(|e| ImageError::Layout(Box::new(e)))?;
        let repo_digests = names
            .iter()
            .map(|n| format!("{}@{}", repo_part(n), pulled.manifest_digest))
            .collect();
        self.record_pulled(pulled, names, repo_digests, ctx.progress)
    }

    /// Unpack the layers of an image whose blobs are stored, and record it. The caller holds
    /// the pull guard.
    fn record_pulled(
        &self,
        pulled: PulledImage,
        names: Vec<String>,
        repo_digests: Vec<String>,
        progress: &dyn StoreProgress,
    ) -> Result<Pulled, ImageError> {
        let known = self.known_layer_sizes()?;
        let mut sizes: Vec<u64> = Vec::with_capacity(pulled.layers.len());
        let mut unpacked: Vec<Digest> = Vec::new();
        for (i, layer) in pulled.layers.iter().enumerate() {
            let digest = layer.digest.to_string();
            let diff_id = pulled.config.rootfs.diff_ids.get(i).cloned();
            let blob = self.blob_path(&digest);
            progress.unpacking(layer);
            let desc = layer.clone();
            let got = self.unpack_layer(&digest, move |dest, opts| {
                unpack_blob(&blob, &desc, diff_id.as_ref(), dest, opts)
            })?;
            progress.unpacked(layer, got.is_none());
            crate::store::fault::point("pull.between-layers");
            let size = match got {
                Some(bytes) => {
                    unpacked.push(layer.digest.clone());
                    bytes
                }
                None => known
                    .iter()
                    .find(|(d, _)| *d == digest)
                    .map_or(0, |(_, s)| *s),
            };
            sizes.push(size);
        }
        let c = &pulled.config;
        let platform = c.platform();
        let rec = ImageRecord {
            id: pulled.config_digest.to_string(),
            names: names.clone(),
            created: c
                .created
                .as_deref()
                .and_then(parse_created)
                .unwrap_or_else(now),
            size: sizes.iter().sum(),
            layers: pulled.layers.iter().map(|l| l.digest.to_string()).collect(),
            config: ImageConfig {
                env: c.config.env.clone().unwrap_or_default(),
                entrypoint: c.config.entrypoint.clone().unwrap_or_default(),
                cmd: c.config.cmd.clone().unwrap_or_default(),
                workdir: c.config.working_dir.clone().filter(|w| !w.is_empty()),
                user: c.config.user.clone().filter(|u| !u.is_empty()),
            },
            source: None,
            layer_sizes: sizes,
            manifest: Some(ManifestRef {
                digest: pulled.manifest_descriptor.digest.to_string(),
                media_type: pulled.manifest_descriptor.media_type.clone(),
                size: pulled.manifest_descriptor.size,
            }),
            repo_digests,
            platform: (!platform.os.is_empty() && !platform.architecture.is_empty())
                .then(|| platform.to_string()),
            history: Vec::new(),
        };
        crate::store::fault::point("pull.before-index");
        let image = self.add_image(rec)?;
        Ok(Pulled {
            image,
            pulled,
            unpacked,
            names,
        })
    }

    /// The unpacked size of every layer some image records it for.
    fn known_layer_sizes(&self) -> Result<Vec<(String, u64)>, ImageError> {
        Ok(self
            .list_records()?
            .into_iter()
            .filter(|r| r.layer_sizes.len() == r.layers.len())
            .flat_map(|r| r.layers.into_iter().zip(r.layer_sizes))
            .collect())
    }

    /// The image a plan names, for a box about to run:
    /// - a tarball: imported on first use ([`Store::resolve`]);
    /// - a stored image by `name:tag` (checked against a pinned digest);
    /// - a short name (no registry, e.g. `busybox`): the local image of that name, else the
    ///   local `docker.io/library/busybox`, else pulled from there, saying so through
    ///   `ctx.progress.note`;
    /// - a name with a registry (`127.0.0.1:5000/ns/app:1`, `registry.example/x`) that is not
    ///   stored: pulled. With `@sha256:<hex>` the pull is by that digest (and the image is
    ///   recorded under `name@digest`, not a tag, since the registry's tag may name another).
    pub fn resolve_or_pull(&self, r: &ImageRef, ctx: &PullContext) -> Result<Image, ImageError> {
        self.resolve_with(r, ctx, PullPolicy::Missing)
    }

    /// [`Store::resolve_or_pull`] with a pull policy (`run --pull`, as podman's): with
    /// `Always` a registry image is pulled even when stored, with `Newer` too, but a stored
    /// one is used when the pull fails; with `Never` nothing is pulled. Every pull says what
    /// it pulls first ("Trying to pull REFERENCE...", podman's words).
    pub fn resolve_with(
        &self,
        r: &ImageRef,
        ctx: &PullContext,
        policy: PullPolicy,
    ) -> Result<Image, ImageError> {
        let ImageRef::Stored(n) = r else {
            return self.resolve(r);
        };
        let (name, tag) = (n.name(), n.tag());
        let digest = n.digest().map(|d| d.to_string());
        let registry = n.registry().is_some();
        let local = match self.find_named(name, tag, digest.as_deref()) {
            Ok(found) => found,
            // The tag names another image here: fetch the pinned one.
            Err(ImageError::DigestMismatch { .. }) if registry && policy != PullPolicy::Never => {
                None
            }
            Err(e) => return Err(e),
        };
        match (policy, local) {
            (PullPolicy::Missing | PullPolicy::Never, Some((image, used))) => {
                if used != name {
                    ctx.progress.note(&format!(
                        "Resolved \"{name}\" as the local image {used}:{tag}"
                    ));
                }
                return Ok(image);
            }
            (PullPolicy::Never, None) => {
                return Err(ImageError::NotPulled(match &digest {
                    Some(d) => format!("{name}@{d}"),
                    None => format!("{name}:{tag}"),
                }))
            }
            (PullPolicy::Newer, Some((image, _))) => {
                return match self.pull_named(n, ctx) {
                    Ok(pulled) => Ok(pulled),
                    Err(e) => {
                        ctx.progress
                            .note(&format!("Using the stored image: the pull failed ({e})"));
                        Ok(image)
                    }
                };
            }
            _ => {}
        }
        self.pull_named(n, ctx)
    }

    /// Pull a stored-image name from its registry (a short name from docker.io), saying what
    /// it pulls.
    fn pull_named(&self, n: &ImageName, ctx: &PullContext) -> Result<Image, ImageError> {
        // Pinned: by the digest alone, since the registry's tag may name another image.
        let reference = Reference::from_name(n, n.digest().is_none())?;
        if n.registry().is_none() {
            ctx.progress.note(&format!(
                "Resolved \"{}\" as {reference}: a short name is pulled from docker.io, as no other registry is configured for short names",
                n.name()
            ));
        }
        ctx.progress.note(&format!("Trying to pull {reference}..."));
        Ok(self.pull(&reference, ctx)?.image)
    }
}

/// `name` of a `name:tag`.
pub(super) fn repo_part(full: &str) -> &str {
    let last_slash = full.rfind('/').map_or(0, |i| i + 1);
    match full[last_slash..].rfind(':') {
        Some(i) => &full[..last_slash + i],
        None => full,
    }
}

/// An image config's `created` (RFC 3339) in seconds since the epoch.
fn parse_created(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(s))
        .ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Unpack one stored layer blob into `dest`. Reading, decompressing and hashing (against the
/// diff id) run on a second thread beside the unpacker; the diff id is checked at the end of
/// the stream, so a layer whose content is not the one its config names fails (and the caller
/// drops what was unpacked).
fn unpack_blob(
    blob: &Path,
    layer: &Descriptor,
    diff_id: Option<&Digest>,
    dest: &Path,
    opts: &unpack::Options,
) -> Result<Stats, UnpackError> {
    let f = File::open(blob).map_err(UnpackError::Read)?;
    let mut reader = decompress(Box::new(f), &layer.digest, diff_id)
        .map_err(|e| UnpackError::Corrupt(e.to_string()))?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(16);
        let stop = &stop;
        let producer = scope.spawn(move || -> Result<(), UnpackError> {
            loop {
                let mut buf = vec![0u8; CHUNK];
                match read_chunk(&mut reader, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.send(Ok(buf)).is_err() {
                            // The unpacker is done: past the tar's end there is only padding,
                            // which still counts for the diff id; after a failure, nothing does.
                            if stop.load(Ordering::SeqCst) {
                                return Ok(());
                            }
                            break;
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        let _ = tx.send(Err(e));
                        return Err(UnpackError::Corrupt(format!(
                            "layer {}: {msg}",
                            layer.digest
                        )));
                    }
                }
            }
            drop(tx);
            reader
                .finish()
                .map_err(|e| UnpackError::Corrupt(format!("{e}: refused")))
        });
        let mut input = ChannelReader::new(rx);
        let stats = unpack::unpack(&mut input, dest, opts);
        if stats.is_err() {
            stop.store(true, Ordering::SeqCst);
        }
        // Hang up only now, so that the reading thread sees `stop` when its send fails.
        drop(input);
        let produced = producer
            .join()
            .map_err(|_| UnpackError::Read(std::io::Error::other("the reading thread panicked")))?;
        match (stats, produced) {
            (Ok(stats), Ok(())) => Ok(stats),
            // The reading side knows why (a corrupt stream, a diff id that does not match).
            (_, Err(e)) => Err(e),
            (Err(e), Ok(())) => Err(e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_times_and_repos() {
        assert_eq!(parse_created("1970-01-01T00:01:40Z"), Some(100));
        assert_eq!(
            parse_created("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_created("yesterday"), None);
        assert_eq!(
            repo_part("127.0.0.1:5000/ns/app:1"),
            "127.0.0.1:5000/ns/app"
        );
        assert_eq!(repo_part("busybox:latest"), "busybox");
    }
}
