//! What `foxbox build` stores: one image per step (unnamed until tagged), its new layer made
//! from a box's overlay upper directory or from copied files, and the build cache (step key →
//! image id) in `build-cache.json`.
//!
//! A step's layer is written in OCI form (an uncompressed tar: overlay whiteouts become
//! `.wh.NAME` entries, opaque directories `.wh..wh..opq`, extended attributes such as file
//! capabilities PAX `SCHILY.xattr.*` records, hard links links) into `blobs/`, named by its
//! digest; the directory itself, already in overlay form, moves into `layers/` under that name.
//! Both happen as root of the store's user namespace (files keep the ids the box gave them)
//! and under the store lock together with the index record: a build killed at any moment
//! leaves either the whole step recorded or an unreferenced leftover that the next open sweeps.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_err, now, Image, ImageConfig, ImageRecord, Store};
use crate::image::reference::ImageName;
use crate::image::{inroot, layered, unpack, ImageError};
use crate::oci::blobstore::BlobStore;
use crate::oci::manifest::{ContainerConfig, ImageConfig as OciConfig, RootFs};
use crate::oci::{Digest, Platform};
use crate::store::atomic;

/// The build cache file under the images directory.
const CACHE_FILE: &str = "build-cache.json";

/// One file, directory or symlink a `copy` step puts into its layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyItem {
    /// The host path (in the context), not followed if a symlink.
    pub src: PathBuf,
    /// The absolute, normalised path in the image.
    pub dest: String,
}

/// The new layer of a step, if it makes one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum NewLayer {
    /// A step that only changes the configuration.
    None,
    /// A `run` step: the overlay upper directory of its box (moved into the store).
    Upper(PathBuf),
    /// A `copy` step.
    Copy {
        items: Vec<CopyItem>,
        /// Owner of every copied entry (inside the box); `None` keeps the source's (a copy
        /// out of another image).
        owner: Option<(u32, u32)>,
        chmod: Option<u32>,
        /// Tar archives unpacked (`extract`, a Containerfile's `ADD`): the host file and the
        /// absolute directory its entries go into, after the items.
        archives: Vec<(PathBuf, String)>,
        /// Owner of the unpacked entries; `None` keeps the archive's.
        archive_owner: Option<(u32, u32)>,
    },
    /// `merge`: layers the store has already (of other images), stacked as they are.
    Existing {
        digests: Vec<String>,
        sizes: Vec<u64>,
    },
}

/// Paths that images of a `merge` change differently: the path and the indices of the
/// images (in `merge` order) that change it.
pub type MergeConflicts = Vec<(String, Vec<usize>)>;

/// What one build step records.
#[derive(Debug, Clone)]
pub struct BuildStep {
    /// The cache key (a sha256 hex of the step and what it depends on).
    pub key: String,
    /// The image the step ran on (`None`: scratch).
    pub parent: Option<Image>,
    pub config: ImageConfig,
    pub labels: BTreeMap<String, String>,
    pub expose: Vec<String>,
    /// `name:tag`s to give the result.
    pub names: Vec<String>,
    pub layer: NewLayer,
    /// `SOURCE_DATE_EPOCH`: no time in the layer's tar is later than this.
    pub clamp_mtime: Option<u64>,
    /// The step as `image history` shows it (`RUN ...`); empty: none to show.
    pub created_by: String,
}

/// One line of an image's history: a step, and whether it made a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub created_by: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// Layers it added (0: configuration only; a `merge` adds several).
    pub layers: usize,
}

/// One row of `image history`, newest first: a layer (or a configuration step, without).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    pub layer: Option<String>,
    pub created: u64,
    pub created_by: String,
    /// Bytes of file contents of its layer.
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    version: u32,
    /// Step key → image id.
    steps: BTreeMap<String, String>,
}

/// A packed layer: its digest and the bytes of file contents in it.
impl Store {
    /// A scratch directory for a build's own files (a step's output log): under the store's
    /// `tmp/`, removed when dropped, and by the next sweep (`system check --repair`, any
    /// command that writes images) if the build is killed.
    ///
    /// Named after the step's box (`build-run-<box>`): its lock, held while the build lives,
    /// tells a later build whether a step box it finds is still some build's work
    /// ([`Store::build_box_abandoned`]).
    pub fn build_scratch(&self, box_name: &str) -> Result<super::Scratch, ImageError> {
        self.scratch_named(&format!("build-run-{box_name}"))
    }

    /// Whether the step box `box_name` belongs to no live build: its build's scratch lock is
    /// gone or nobody holds it.
    pub fn build_box_abandoned(&self, box_name: &str) -> bool {
        let lock = self.tmp_dir().join(format!("build-run-{box_name}.lock"));
        if !lock.exists() {
            return true;
        }
        matches!(
            crate::store::lock::Lock::try_acquire(&lock, crate::store::lock::Mode::Exclusive),
            Ok(Some(_))
        )
    }

    fn cache_path(&self) -> PathBuf {
        self.dir.join(CACHE_FILE)
    }

    fn read_cache(&self) -> Cache {
        fs::read(self.cache_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The image a step with this key made before, if the store still has it whole.
    pub fn find_build_step(&self, key: &str) -> Result<Option<Image>, ImageError> {
        let Some(id) = self.read_cache().steps.get(key).cloned() else {
            return Ok(None);
        };
        let index = self.read_index()?;
        Ok(index
            .images
            .iter()
            .find(|i| i.id == id)
            .filter(|r| r.layers.iter().all(|d| self.layer_path(d).is_dir()))
            .map(|r| self.image(r)))
    }

    /// Ids of images that are build steps (hidden from `image ls` while unnamed).
    pub fn build_step_ids(&self) -> std::collections::HashSet<String> {
        self.read_cache().steps.into_values().collect()
    }

    /// Record a build step: make its layer (if any), store it and the image, and remember the
    /// step's key. Runs as root of the store's user namespace.
    pub fn commit_build_step(&self, step: BuildStep) -> Result<Image, ImageError> {
        let rec: ImageRecord = self.as_root(|| self.commit_step_as_root(&step))?;
        Ok(self.image(&rec))
    }

    fn commit_step_as_root(&self, step: &BuildStep) -> Result<ImageRecord, ImageError> {
        // Only a step that makes a layer needs room for it (a no-op rebuild's last step
        // makes none: it costs no directory made and removed).
        let scratch = match step.layer {
            NewLayer::Upper(_) | NewLayer::Copy { .. } => Some(self.scratch("build")?),
            NewLayer::None | NewLayer::Existing { .. } => None,
        };
        let tar = scratch
            .as_ref()
            .map(|s| s.path().join("layer.tar"))
            .unwrap_or_default();
        // The layer directory and its packed form, made before the lock is taken.
        let made: Option<(PathBuf, crate::image::pack::Packed)> = match &step.layer {
            NewLayer::None => None,
            NewLayer::Upper(upper) => {
                // The step's box wrote it without syncing (`volatile`): make it durable before
                // it becomes a layer an index names.
                atomic::sync_filesystem(upper).map_err(io_err("cannot sync", upper))?;
                let packed = crate::image::pack::pack_dir(upper, &tar, false, step.clamp_mtime)
                    .map_err(ImageError::Oci)?;
                Some((upper.clone(), packed))
            }
            NewLayer::Existing { .. } => None,
            NewLayer::Copy {
                items,
                owner,
                chmod,
                archives,
                archive_owner,
            } => {
                let dir = tar.with_file_name("tree");
                let below = step
                    .parent
                    .as_ref()
                    .map(|p| p.layers.clone())
                    .unwrap_or_default();
                fs::create_dir(&dir).map_err(io_err("cannot create", &dir))?;
                copy_tree(&dir, items, *owner, *chmod, &below).map_err(ImageError::Oci)?;
                for (k, (file, into)) in archives.iter().enumerate() {
                    // A Copy layer always has its scratch (made above).
                    let x = tar.with_file_name(format!("unpacked-{k}"));
                    fs::create_dir(&x).map_err(io_err("cannot create", &x))?;
                    let opts = unpack::Options {
                        whiteouts: unpack::Whiteouts::Flatten,
                        owners: self.owners(),
                        max_size: self.max_size,
                    };
                    let what = |e: &dyn std::fmt::Display| {
                        ImageError::Oci(format!("cannot unpack {}: {e}", file.display()))
                    };
                    let tar = crate::image::archive::open_tar(file).map_err(|e| what(&e))?;
                    unpack::unpack(tar, &x, &opts).map_err(|e| what(&e))?;
                    let entries = tree_items(&x, into).map_err(|e| what(&e))?;
                    copy_tree(&dir, &entries, *archive_owner, None, &below)
                        .map_err(ImageError::Oci)?;
                }
                let packed = crate::image::pack::pack_dir(&dir, &tar, false, step.clamp_mtime)
                    .map_err(ImageError::Oci)?;
                Some((dir, packed))
            }
        };
        let mut layers = step
            .parent
            .as_ref()
            .map(|p| p.layer_digests.clone())
            .unwrap_or_default();
        let parent_rec = match &step.parent {
            Some(p) => Some(self.record(&p.id)?),
            None => None,
        };
        let mut sizes = parent_rec
            .as_ref()
            .map(|r| r.layer_sizes.clone())
            .unwrap_or_default();
        if sizes.len() != layers.len() {
            sizes = vec![0; layers.len()];
        }
        let sizes_before = layers.len();
        if let Some((_, packed)) = &made {
            layers.push(packed.digest.clone());
            sizes.push(packed.content);
        }
        if let NewLayer::Existing { digests, sizes: s } = &step.layer {
            layers.extend(digests.iter().cloned());
            sizes.extend(s.iter().copied());
        }
        let mut history = match &parent_rec {
            // The base's layers as one line: where they came from.
            Some(r) if r.history.is_empty() && !r.layers.is_empty() => vec![HistoryEntry {
                created_by: match (&r.source, r.names.first(), r.repo_digests.first()) {
                    (Some(p), _, _) => format!(
                        "FROM {} (imported from {})",
                        r.names.first().map_or(r.id.as_str(), String::as_str),
                        p.display()
                    ),
                    (None, _, Some(d)) => format!("FROM {d}"),
                    (None, Some(n), None) => format!("FROM {n}"),
                    (None, None, None) => format!("FROM {}", r.id),
                },
                created: r.created,
                layers: r.layers.len(),
            }],
            Some(r) => r.history.clone(),
            None => Vec::new(),
        };
        let added = layers.len() - sizes_before;
        if !step.created_by.is_empty() {
            history.push(HistoryEntry {
                created_by: step.created_by.clone(),
                created: now(),
                layers: added,
            });
        }
        let config_bytes = oci_config(step, &layers)?;
        let id = Digest::sha256_of(&config_bytes);

        // Blobs are stored under the lock too: a sweep collects those no image names.
        let lock = self.lock()?;
        // Content-addressed: a config stored before (a cached step's) is these bytes.
        if self.blobs.path(&id).is_none() {
            self.blobs
                .put(&id, Some(config_bytes.len() as u64), &mut &config_bytes[..])
                .map_err(|e| ImageError::Blob(Box::new(e)))?;
        }
        if let Some((dir, packed)) = &made {
            let dest = self.layer_path(&packed.digest);
            if !dest.exists() {
                fs::rename(dir, &dest).map_err(io_err("cannot move the layer to", &dest))?;
                atomic::sync_dir(&self.layers_dir());
            }
            let blob = self.blob_path(&packed.digest);
            if !blob.exists() {
                fs::rename(&tar, &blob).map_err(io_err("cannot store the layer blob", &blob))?;
                if let Some(d) = blob.parent() {
                    atomic::sync_dir(d);
                }
            }
        }
        crate::store::fault::point("build.layer-stored");
        let rec = ImageRecord {
            id: id.to_string(),
            names: step.names.clone(),
            created: now(),
            size: sizes.iter().sum(),
            layers,
            config: step.config.clone(),
            layer_sizes: sizes,
            platform: Some(Platform::host().to_string()),
            history,
            ..ImageRecord::default()
        };
        let rec = self.commit_locked(&lock, rec, &unpack::Stats::default())?;
        crate::store::fault::point("build.after-index");
        let mut cache = self.read_cache();
        cache.version = 1;
        if cache.steps.get(&step.key) != Some(&rec.id) {
            cache.steps.insert(step.key.clone(), rec.id.clone());
            atomic::write_json(&self.cache_path(), &cache).map_err(ImageError::Atomic)?;
        }
        drop(lock);
        Ok(rec)
    }

    /// The labels and exposed ports of an image's OCI config (built and pulled images keep it
    /// as a blob named by their id; an imported rootfs has none).
    pub fn labels_and_ports(&self, id: &str) -> (BTreeMap<String, String>, Vec<String>) {
        let config = fs::read(self.blob_path(id))
            .ok()
            .and_then(|b| serde_json::from_slice::<OciConfig>(&b).ok());
        match config {
            Some(c) => (
                c.config.labels.unwrap_or_default(),
                c.config
                    .exposed_ports
                    .map(|p| p.into_keys().collect())
                    .unwrap_or_default(),
            ),
            None => (BTreeMap::new(), Vec::new()),
        }
    }

    /// The contents of the file at the absolute `path` of an image (its layer directories
    /// `layers`, bottom first), if it has a regular file there of at most 1 MiB (a build's
    /// `chown` reads /etc/passwd and /etc/group with it).
    pub fn read_image_file(
        &self,
        layers: &[PathBuf],
        path: &str,
    ) -> Result<Option<Vec<u8>>, ImageError> {
        let (layers, path) = (layers.to_vec(), path.to_string());
        self.as_root(move || -> Result<_, String> {
            let Some(host) = layered::lookup(&layers, &comps(&path)) else {
                return Ok(None);
            };
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_file() && m.len() <= 1 << 20 => fs::read(&host)
                    .map(Some)
                    .map_err(|e| format!("cannot read {path}: {e}")),
                _ => Ok(None),
            }
        })
    }

    /// Where a build's cache mounts live: `build-mounts/<sha256 of the id>`, with the id in
    /// `<hex>.id` and a lock `<hex>.lock` that each step using it holds (shared, or exclusive
    /// for `locked` and `private` ones) and that `image prune --cache-mounts` takes.
    fn cache_mounts_dir(&self) -> PathBuf {
        self.dir.join("build-mounts")
    }

    fn cache_mount_hex(id: &str) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes()))
    }

    /// The lock of the cache mount `id`, to hold before [`Store::cache_mount`] and while a
    /// step uses it.
    pub fn cache_mount_lock(&self, id: &str) -> Result<PathBuf, ImageError> {
        let top = self.cache_mounts_dir();
        crate::store::private::create_dir(&top).map_err(io_err("cannot create", &top))?;
        Ok(top.join(format!("{}.lock", Self::cache_mount_hex(id))))
    }

    /// The directory of the cache mount `id`: made empty, owned by `owner` (ids in the box)
    /// with `mode`, when missing (also when a prune removed it between the caller's looking
    /// and locking).
    pub fn cache_mount(
        &self,
        id: &str,
        owner: (u32, u32),
        mode: u32,
    ) -> Result<PathBuf, ImageError> {
        let top = self.cache_mounts_dir();
        crate::store::private::create_dir(&top).map_err(io_err("cannot create", &top))?;
        let hex = Self::cache_mount_hex(id);
        let dir = top.join(&hex);
        if !dir.is_dir() {
            // Made aside and renamed: a cache is never seen with the wrong owner.
            let new = top.join(format!("{hex}.new-{}", super::random_suffix()));
            let made = new.clone();
            self.as_root(move || -> Result<(), String> {
                let e = |e: io::Error| format!("cannot make the cache {}: {e}", made.display());
                fs::create_dir(&made).map_err(e)?;
                std::os::unix::fs::lchown(&made, Some(owner.0), Some(owner.1)).map_err(|x| {
                    format!(
                        "cannot give the cache to {}:{} (ids this store's user namespace maps?): {x}",
                        owner.0, owner.1
                    )
                })?;
                fs::set_permissions(&made, fs::Permissions::from_mode(mode)).map_err(e)
            })
            .inspect_err(|_| {
                let _ = fs::remove_dir(&new);
            })?;
            if let Err(e) = fs::rename(&new, &dir) {
                let _ = fs::remove_dir(&new);
                if !dir.is_dir() {
                    return Err(io_err("cannot create", &dir)(e));
                }
            }
            atomic::write_file(&top.join(format!("{hex}.id")), id.as_bytes())
                .map_err(ImageError::Atomic)?;
        }
        Ok(dir)
    }

    /// Remove the build cache mounts no build is using; their ids.
    pub fn prune_cache_mounts(&self) -> Result<Vec<String>, ImageError> {
        use crate::store::lock::{Lock, Mode};
        let top = self.cache_mounts_dir();
        let Ok(entries) = fs::read_dir(&top) else {
            return Ok(Vec::new());
        };
        let mut gone = Vec::new();
        let all: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        // Caches half made by a build that was killed.
        let half: Vec<PathBuf> = all
            .iter()
            .filter(|n| n.contains(".new-"))
            .map(|n| top.join(n))
            .collect();
        if !half.is_empty() {
            self.as_root(move || -> Result<(), String> {
                for p in &half {
                    inroot::remove_tree(p)
                        .map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
                }
                Ok(())
            })?;
        }
        let mut names: Vec<String> = all
            .into_iter()
            .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        names.sort();
        for hex in names {
            let lock_path = top.join(format!("{hex}.lock"));
            let Some(held) =
                Lock::try_acquire(&lock_path, Mode::Exclusive).map_err(ImageError::Lock)?
            else {
                continue;
            };
            let id_path = top.join(format!("{hex}.id"));
            let id = fs::read_to_string(&id_path).unwrap_or_else(|_| hex.clone());
            let dir = top.join(&hex);
            self.as_root(move || -> Result<(), String> {
                inroot::remove_tree(&dir)
                    .map_err(|e| format!("cannot remove {}: {e}", dir.display()))
            })?;
            let _ = fs::remove_file(&id_path);
            let _ = fs::remove_file(&lock_path);
            drop(held);
            gone.push(id);
        }
        Ok(gone)
    }

    /// Remove from a step's overlay upper directory the mount points its box made for cache
    /// mounts (`targets`, absolute) that the image below (`below`) lacks, while empty, with
    /// parents made for them: the layer holds nothing of a cache.
    pub fn drop_mount_points(
        &self,
        upper: &Path,
        below: &[PathBuf],
        targets: &[String],
    ) -> Result<(), ImageError> {
        let (upper, below, targets) = (upper.to_path_buf(), below.to_vec(), targets.to_vec());
        self.as_root(move || -> Result<(), String> {
            for t in &targets {
                let c = comps(t);
                for k in (1..=c.len()).rev() {
                    if layered::lookup(&below, &c[..k]).is_some() {
                        break;
                    }
                    let p = upper.join(c[..k].join("/"));
                    let empty = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
                        && fs::read_dir(&p).is_ok_and(|mut d| d.next().is_none());
                    if !empty || fs::remove_dir(&p).is_err() {
                        break;
                    }
                }
            }
            Ok(())
        })
    }

    /// Expand the sources of a `copy` out of an image (its layer directories `layers`, bottom
    /// first) for `dest`, as a `copy` from the context expands: a directory brings its
    /// contents. A source the image lacks is refused with its index.
    pub fn copy_from_items(
        &self,
        layers: &[PathBuf],
        sources: &[String],
        dest: &str,
    ) -> Result<Result<Vec<CopyItem>, (usize, String)>, ImageError> {
        let (layers, sources, dest) = (layers.to_vec(), sources.to_vec(), dest.to_string());
        self.as_root(move || -> Result<_, String> {
            Ok(expand_from_image(&layers, &sources, &dest))
        })
    }

    /// What `merge` may stack: every image must have `base`'s layers (none: scratch) at its
    /// bottom (the index of the first that does not, else `Ok`), and the paths their own
    /// layers change differently.
    pub fn merge_conflicts(
        &self,
        base: Option<&Image>,
        images: &[Image],
    ) -> Result<Result<MergeConflicts, usize>, ImageError> {
        let base_len = base.map(|b| b.layer_digests.len()).unwrap_or(0);
        let base_digests = base.map(|b| b.layer_digests.clone()).unwrap_or_default();
        if let Some(k) = images
            .iter()
            .position(|i| !i.layer_digests.starts_with(&base_digests))
        {
            return Ok(Err(k));
        }
        let tops: Vec<Vec<PathBuf>> = images
            .iter()
            .map(|i| i.layers[base_len..].to_vec())
            .collect();
        self.as_root(move || -> Result<_, String> {
            let mut by_path: BTreeMap<String, Vec<(usize, layered::Change)>> = BTreeMap::new();
            for (k, layers) in tops.iter().enumerate() {
                let changes = layered::changes(layers).map_err(|e| e.to_string())?;
                for (p, c) in changes {
                    by_path.entry(p).or_default().push((k, c));
                }
            }
            Ok(Ok(by_path
                .into_iter()
                .filter(|(_, v)| v.len() > 1 && v.iter().any(|(_, c)| *c != v[0].1))
                .map(|(p, v)| (p, v.into_iter().map(|(k, _)| k).collect()))
                .collect()))
        })
    }

    /// An image's history, newest first: the steps of a build (each with its layer, if it
    /// made one), else a row per layer (how it came: imported, pulled).
    pub fn history(&self, what: &str) -> Result<Vec<HistoryRow>, ImageError> {
        let rec = self.record(what)?;
        let size = |k: usize| rec.layer_sizes.get(k).copied().unwrap_or(0);
        let mut rows = Vec::new();
        let mut k = 0;
        let covered: usize = rec.history.iter().map(|h| h.layers).sum();
        // Layers below the first recorded step (the base image's).
        let base = rec.layers.len().saturating_sub(covered);
        let how = match (&rec.source, rec.repo_digests.first()) {
            (Some(p), _) => format!("imported from {}", p.display()),
            (None, Some(r)) => format!("pulled as {r}"),
            (None, None) => String::new(),
        };
        while k < base {
            rows.push(HistoryRow {
                layer: Some(rec.layers[k].clone()),
                created: rec.created,
                created_by: how.clone(),
                size: size(k),
            });
            k += 1;
        }
        for h in &rec.history {
            if h.layers == 0 {
                rows.push(HistoryRow {
                    layer: None,
                    created: h.created,
                    created_by: h.created_by.clone(),
                    size: 0,
                });
            }
            for _ in 0..h.layers {
                rows.push(HistoryRow {
                    layer: rec.layers.get(k).cloned(),
                    created: h.created,
                    created_by: h.created_by.clone(),
                    size: size(k),
                });
                k += 1;
            }
        }
        rows.reverse();
        Ok(rows)
    }

    /// Remove the build cache's images that nothing needs: unnamed, used by no box; their
    /// cache entries go with them, and layers and blobs no image has then. The ids removed.
    pub fn prune_build_cache(&self) -> Result<Vec<String>, ImageError> {
        let lock = self.lock()?;
        let mut index = self.read_index()?;
        let mut cache = self.read_cache();
        let steps: std::collections::HashSet<String> = cache.steps.values().cloned().collect();
        let doomed: Vec<String> = index
            .images
            .iter()
            .filter(|r| r.names.is_empty() && steps.contains(&r.id) && self.users(&r.id).is_empty())
            .map(|r| r.id.clone())
            .collect();
        if doomed.is_empty() {
            return Ok(doomed);
        }
        index.images.retain(|r| !doomed.contains(&r.id));
        self.write_index(&index)?;
        // An entry whose image is gone is a miss anyway; dropped so the file does not grow.
        cache.steps.retain(|_, id| !doomed.contains(id));
        atomic::write_json(&self.cache_path(), &cache).map_err(ImageError::Atomic)?;
        for id in &doomed {
            let _ = fs::remove_dir_all(self.users_dir().join(super::hex_of(id)));
        }
        self.collect_garbage(&lock)?;
        Ok(doomed)
    }

    /// The content bytes of each of an image's layers, as recorded (zeros when unknown).
    pub fn layer_sizes(&self, id: &str) -> Result<Vec<u64>, ImageError> {
        let rec = self.record(id)?;
        Ok(if rec.layer_sizes.len() == rec.layers.len() {
            rec.layer_sizes
        } else {
            vec![0; rec.layers.len()]
        })
    }

    /// Give the image `source` the name `target` as well (moved off any image that had it).
    pub fn tag(&self, source: &str, target: &ImageName) -> Result<Image, ImageError> {
        let lock = self.lock()?;
        let index = self.read_index()?;
        let mut rec = self.find(&index, source)?.clone();
        rec.names = vec![target.full()];
        let rec = self.commit_locked(&lock, rec, &unpack::Stats::default())?;
        Ok(self.image(&rec))
    }
}

/// The OCI image config of a step's image: its id is this JSON's digest. No creation time and
/// nothing of the build host but its platform, so the same steps give the same id.
fn oci_config(step: &BuildStep, layers: &[String]) -> Result<Vec<u8>, ImageError> {
    let c = &step.config;
    let host = Platform::host();
    let diff_ids = layers
        .iter()
        .map(|d| d.parse::<Digest>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ImageError::Oci(e.to_string()))?;
    let config = OciConfig {
        architecture: host.architecture,
        os: host.os,
        variant: host.variant,
        created: None,
        config: ContainerConfig {
            user: c.user.clone(),
            env: (!c.env.is_empty()).then(|| c.env.clone()),
            entrypoint: (!c.entrypoint.is_empty()).then(|| c.entrypoint.clone()),
            cmd: (!c.cmd.is_empty()).then(|| c.cmd.clone()),
            working_dir: c.workdir.clone(),
            exposed_ports: (!step.expose.is_empty()).then(|| {
                step.expose
                    .iter()
                    .map(|p| (p.clone(), serde_json::json!({})))
                    .collect()
            }),
            labels: (!step.labels.is_empty()).then(|| step.labels.clone()),
            ..ContainerConfig::default()
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
    };
    serde_json::to_vec(&config).map_err(|e| ImageError::Oci(e.to_string()))
}

/// Components of an absolute image path (normalised by the builder: no `.` or `..`).
fn comps(p: &str) -> Vec<&str> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// Make the directory `rel` (components) under `root`, each missing parent with the metadata
/// the image below has at that path (else 0755 root), and anything in the way that is not a
/// directory replaced: nothing here is ever written through a symlink.
fn ensure_dir(root: &Path, rel: &[&str], below: &[PathBuf]) -> Result<PathBuf, String> {
    let mut p = root.to_path_buf();
    let mut sub = PathBuf::new();
    for c in rel {
        p.push(c);
        sub.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?,
            Err(_) => {}
        }
        fs::create_dir(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        let (mode, uid, gid) = below
            .iter()
            .rev()
            .find_map(|l| {
                fs::symlink_metadata(l.join(&sub))
                    .ok()
                    .filter(|m| m.is_dir())
            })
            .map(|m| (m.mode() & 0o7777, m.uid(), m.gid()))
            .unwrap_or((0o755, 0, 0));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", p.display()))?;
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown {}: {e}", p.display()))?;
    }
    Ok(p)
}

/// [`Store::copy_from_items`], as root of the store's namespace.
fn expand_from_image(
    layers: &[PathBuf],
    sources: &[String],
    dest: &str,
) -> Result<Vec<CopyItem>, (usize, String)> {
    let many = sources.len() > 1;
    let into_dir = many || dest.ends_with('/');
    let dest = format!("/{}", comps(dest).join("/"));
    let mut items = Vec::new();
    for (k, src) in sources.iter().enumerate() {
        let c = comps(src);
        if c.contains(&"..") {
            return Err((k, format!("`{src}` climbs out with `..`")));
        }
        let Some(host) = layered::lookup(layers, &c) else {
            return Err((k, format!("`{src}` is not in that image")));
        };
        let m = fs::symlink_metadata(&host).map_err(|e| (k, format!("`{src}`: {e}")))?;
        if m.is_dir() {
            // Its contents, parents before children.
            let mut stack: Vec<(Vec<String>, String)> =
                vec![(c.iter().map(|s| s.to_string()).collect(), dest.clone())];
            while let Some((at, to)) = stack.pop() {
                let refs: Vec<&str> = at.iter().map(String::as_str).collect();
                let list =
                    layered::list_dir(layers, &refs).map_err(|e| (k, format!("`{src}`: {e}")))?;
                let mut subdirs = Vec::new();
                for (name, path) in list {
                    let d = if to.ends_with('/') {
                        format!("{to}{name}")
                    } else {
                        format!("{to}/{name}")
                    };
                    if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                        let mut next = at.clone();
                        next.push(name);
                        subdirs.push((next, d.clone()));
                    }
                    items.push(CopyItem { src: path, dest: d });
                }
                stack.extend(subdirs.into_iter().rev());
            }
        } else {
            let d = if into_dir {
                format!(
                    "{}/{}",
                    dest.trim_end_matches('/'),
                    c.last().copied().unwrap_or_default()
                )
            } else {
                dest.clone()
            };
            items.push(CopyItem { src: host, dest: d });
        }
    }
    // Parents before children, whatever order the sources came in.
    Ok(items)
}

/// Every entry under `dir` as an item for `into` (parents before children, in name order).
fn tree_items(dir: &Path, into: &str) -> io::Result<Vec<CopyItem>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), into.trim_end_matches('/').to_string())];
    while let Some((at, to)) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(&at)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        let mut subdirs = Vec::new();
        for n in names {
            let src = at.join(&n);
            let dest = format!("{to}/{}", n.to_string_lossy());
            if fs::symlink_metadata(&src)?.is_dir() {
                subdirs.push((src.clone(), dest.clone()));
            }
            out.push(CopyItem { src, dest });
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

/// Build a `copy` step's layer under `root`.
fn copy_tree(
    root: &Path,
    items: &[CopyItem],
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
    below: &[PathBuf],
) -> Result<(), String> {
    for item in items {
        let c = comps(&item.dest);
        let Some((name, parents)) = c.split_last() else {
            // The image's root itself: only its metadata could change; a directory's contents
            // come as items of their own.
            continue;
        };
        let parent = ensure_dir(root, parents, below)?;
        let dst = parent.join(name);
        let e = |e: io::Error| format!("cannot copy {}: {e}", item.src.display());
        let m = fs::symlink_metadata(&item.src).map_err(e)?;
        match fs::symlink_metadata(&dst) {
            Ok(x) if x.is_dir() && m.is_dir() => {}
            Ok(x) if x.is_dir() => fs::remove_dir_all(&dst).map_err(e)?,
            Ok(_) => fs::remove_file(&dst).map_err(e)?,
            Err(_) => {}
        }
        let ft = m.file_type();
        if ft.is_dir() {
            if !dst.is_dir() {
                fs::create_dir(&dst).map_err(e)?;
            }
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&item.src).map_err(e)?, &dst).map_err(e)?;
        } else if ft.is_file() {
            let mut from = File::open(&item.src).map_err(e)?;
            let mut to = File::create(&dst).map_err(e)?;
            io::copy(&mut from, &mut to).map_err(e)?;
        } else {
            continue;
        }
        let (uid, gid) = owner.unwrap_or((m.uid(), m.gid()));
        std::os::unix::fs::lchown(&dst, Some(uid), Some(gid)).map_err(e)?;
        if !ft.is_symlink() {
            let mode = chmod.unwrap_or(m.mode() & 0o7777);
            fs::set_permissions(&dst, fs::Permissions::from_mode(mode)).map_err(e)?;
            let t = nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec());
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &dst,
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|x| e(x.into()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;
    use std::io::Read;

    type Entry = (String, tar::EntryType, Vec<(String, Vec<u8>)>);

    /// (path, type, pax records) of every entry of a tar.
    fn entries(tar_path: &Path) -> Vec<Entry> {
        let mut a = tar::Archive::new(File::open(tar_path).unwrap());
        let mut out = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let pax: Vec<(String, Vec<u8>)> = e
                .pax_extensions()
                .unwrap()
                .map(|it| {
                    it.map(|x| {
                        let x = x.unwrap();
                        (x.key().unwrap().to_string(), x.value_bytes().to_vec())
                    })
                    .collect()
                })
                .unwrap_or_default();
            let path = e.path().unwrap().display().to_string();
            let ty = e.header().entry_type();
            let mut sink = Vec::new();
            e.read_to_end(&mut sink).unwrap();
            out.push((path, ty, pax));
        }
        out
    }

    #[test]
    fn an_upper_dir_packs_as_an_oci_layer() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("upper");
        fs::create_dir_all(d.join("opq/sub")).unwrap();
        fs::write(d.join("opq/sub/f"), "x").unwrap();
        fs::write(d.join("a"), "a").unwrap();
        fs::hard_link(d.join("a"), d.join("hard")).unwrap();
        std::os::unix::fs::symlink("a", d.join("soft")).unwrap();
        let has_xattrs = rustix::fs::setxattr(
            d.join("a").as_path(),
            "user.fox",
            b"1",
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok()
            && rustix::fs::setxattr(
                d.join("opq").as_path(),
                crate::image::xattr::OPAQUE,
                b"y",
                rustix::fs::XattrFlags::empty(),
            )
            .is_ok();
        // A whiteout is a 0/0 character device: only root can make one.
        let root = nix::unistd::geteuid().is_root();
        if root {
            nix::sys::stat::mknod(
                &d.join("gone"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .unwrap();
        }
        let out = t.path().join("l.tar");
        let p = crate::image::pack::pack_dir(&d, &out, false, None).unwrap();
        let bytes = fs::read(&out).unwrap();
        assert_eq!(
            p.digest,
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
        );
        let e = entries(&out);
        let find = |name: &str| e.iter().find(|(p, _, _)| p.trim_end_matches('/') == name);
        assert_eq!(find("hard").unwrap().1, tar::EntryType::Link, "{e:?}");
        assert_eq!(find("soft").unwrap().1, tar::EntryType::Symlink);
        assert_eq!(find("opq/sub/f").unwrap().1, tar::EntryType::Regular);
        if has_xattrs {
            let a = find("a").unwrap();
            assert!(
                a.2.iter()
                    .any(|(k, v)| k == "SCHILY.xattr.user.fox" && v == b"1"),
                "{a:?}"
            );
            assert!(find("opq/.wh..wh..opq").is_some(), "{e:?}");
            // Overlay's own marks never reach the layer.
            assert!(!e
                .iter()
                .any(|(_, _, pax)| pax.iter().any(|(k, _)| k.contains("overlay"))));
        } else {
            eprintln!("SKIP (xattrs): this filesystem has no user xattrs");
        }
        if root {
            assert!(find(".wh.gone").is_some(), "{e:?}");
            assert!(find("gone").is_none());
        }
        // Packing again gives the same digest: entries in a fixed order.
        assert_eq!(
            crate::image::pack::pack_dir(&d, &t.path().join("l2.tar"), false, None)
                .unwrap()
                .digest,
            p.digest
        );
        // A file capability (cap_net_bind_service, permitted + effective; VFS v2) as root.
        let mut cap = vec![0u8; 20];
        cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
        cap[4..8].copy_from_slice(&(1u32 << 10).to_le_bytes());
        if root {
            rustix::fs::setxattr(
                d.join("a").as_path(),
                "security.capability",
                &cap,
                rustix::fs::XattrFlags::empty(),
            )
            .unwrap();
            crate::image::pack::pack_dir(&d, &out, false, None).unwrap();
            let e = entries(&out);
            let a = e.iter().find(|(p, _, _)| p == "a").unwrap();
            assert!(
                a.2.iter()
                    .any(|(k, v)| k == "SCHILY.xattr.security.capability" && *v == cap),
                "{a:?}"
            );
        }
    }
}
