//! The image store of one foxbox root: its records and index, opening, listing and removal.
//! The rest by concern: `names` (finding an image by what users write), `import` (tarballs,
//! recording images), `gc` (the pull guard and garbage collection), `users` (boxes that use
//! an image), `build` (build steps, the build cache and history).

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::archive::Unpacked;
use super::reference::ImageName;
use super::unpack::{self, Owners, UnpackError, Whiteouts};
use super::{inroot, ImageError};
use crate::oci::DirBlobStore;
use crate::plan::units::parse_size;
use crate::store::atomic;
use crate::store::clock::now_secs as now;
use crate::store::lock::{Lock, Mode};
use crate::store::paths::Paths;
use crate::sys::idmap::IdMaps;
use crate::sys::userns;

mod build;
mod gc;
mod import;
mod names;
mod users;

pub use build::{BuildStep, CopyItem, NewLayer};
use import::warn_stats;
pub use names::{docker_hub_name, has_registry};

/// The default size limit of an archive's uncompressed contents.
pub const DEFAULT_MAX_SIZE: u64 = 32 << 30;
/// The environment variable that overrides it (bytes, or with a K/M/G/T suffix).
pub const MAX_SIZE_ENV: &str = "FOXBOX_MAX_IMAGE_SIZE";

/// The run-time configuration an image carries (OCI's `config`); empty for a rootfs tarball.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The image manifest of a pulled or loaded image, as stored in `blobs/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// One image as the index records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<hex>`: for a tarball, the digest of the imported file; for an image pulled
    /// from a registry or loaded from an OCI layout, the digest of its config (podman's IMAGE
    /// ID: the same image pulled by tag, by index or by manifest digest has one id).
    pub id: String,
    /// `name:tag` references, possibly none (a tarball imported by a spec, or a moved tag).
    #[serde(default)]
    pub names: Vec<String>,
    /// Seconds since the epoch.
    pub created: u64,
    /// Bytes of file contents across the layers.
    pub size: u64,
    /// Layer digests (`sha256:<hex>`), bottom first.
    pub layers: Vec<String>,
    #[serde(default)]
    pub config: ImageConfig,
    /// The file it was imported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// Bytes of file contents of each layer (same order as `layers`; empty in old records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layer_sizes: Vec<u64>,
    /// Pulled and loaded images: the manifest `image save` writes (its blobs are stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestRef>,
    /// `name@sha256:<hex>` for each manifest or index digest the image was pulled by
    /// (podman's RepoDigests): `name@digest` pins match these as well as the id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// `os/arch[/variant]`, when the image says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Built images: the step behind each layer and configuration change, bottom first
    /// (`image history`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<build::HistoryEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Index {
    version: u32,
    pub(super) images: Vec<ImageRecord>,
}

/// An image ready for a box: what the executor needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub id: String,
    pub names: Vec<String>,
    pub created: u64,
    pub size: u64,
    /// Unpacked, read-only layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    pub layer_digests: Vec<String>,
    pub config: ImageConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// `name@sha256:<hex>` pins it is known by (pulled images).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// The digest of its image manifest (pulled and loaded images).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

impl Image {
    /// The id's hex digits (no `sha256:`).
    pub fn hex(&self) -> &str {
        self.id.strip_prefix("sha256:").unwrap_or(&self.id)
    }
}

/// What `remove` did to one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// Only the name went; the image has others.
    Untagged(String),
    /// The image went, with these names.
    Deleted { id: String, names: Vec<String> },
}

/// The image store of one foxbox root.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// `blobs/`: pulled and loaded blobs, by digest.
    pub(super) blobs: DirBlobStore,
    boxes: PathBuf,
    maps: IdMaps,
    max_size: u64,
    progress: bool,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A scratch directory of the store's `tmp/`, held by its lock; see `Store::scratch`.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    lock: Option<Lock>,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Files made in it by a user-namespace child belong to the caller: a plain delete.
        let _ = fs::remove_dir_all(&self.dir);
        if let Some(lock) = self.lock.take() {
            let _ = fs::remove_file(lock.path());
        }
    }
}

pub(super) fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// A digest as a file name: the hex of a sha256 (as layers have always been named), else
/// `<alg>-<hex>` (no `:`, which overlayfs's lowerdir list would need escaped).
fn file_name_of(digest: &str) -> String {
    match digest.strip_prefix("sha256:") {
        Some(hex) => hex.to_string(),
        None => digest.replace(':', "-"),
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = (t as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    hex::encode(b)
}

impl Store {
    /// Open (creating when missing) the store under `paths.images()`, and sweep what interrupted
    /// imports left behind.
    pub fn open(paths: &Paths) -> Result<Store, ImageError> {
        let store = Self::open_unswept(paths)?;
        if let Err(e) = store.sweep() {
            tracing::warn!("cannot clean up after interrupted imports: {e}");
        }
        Ok(store)
    }

    /// Open the store to start or remove a box: as [`Store::open`], without the sweep, which
    /// commands that write images do (it would add a lock and directory scans to every start).
    pub fn open_for_boxes(paths: &Paths) -> Result<Store, ImageError> {
        Self::open_unswept(paths)
    }

    fn open_unswept(paths: &Paths) -> Result<Store, ImageError> {
        let max_size = match std::env::var(MAX_SIZE_ENV) {
            Ok(v) if !v.is_empty() => parse_size(&v).map_err(|_| ImageError::BadSize(v))?,
            _ => DEFAULT_MAX_SIZE,
        };
        let dir = paths.images();
        let blobs =
            DirBlobStore::new(dir.join("blobs")).map_err(|e| ImageError::Blob(Box::new(e)))?;
        let store = Store {
            blobs,
            dir,
            boxes: paths.boxes(),
            maps: IdMaps::for_caller(),
            max_size,
            progress: false,
        };
        if !store.users_dir().is_dir() {
            store.create_dirs()?;
        } else {
            crate::store::private::tighten(&store.dir);
        }
        Ok(store)
    }

    /// Show a progress bar on a terminal during imports.
    pub fn set_progress(&mut self, on: bool) {
        self.progress = on;
    }

    /// The uncompressed size past which an archive is refused.
    pub fn set_max_size(&mut self, bytes: u64) {
        self.max_size = bytes;
    }

    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// The id maps this store's files are written with (the caller's).
    pub fn id_maps(&self) -> &IdMaps {
        &self.maps
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<root>/boxes`: a use marker counts while its box's directory is there.
    pub(super) fn boxes_dir(&self) -> &Path {
        &self.boxes
    }

    pub(super) fn lock_path(&self) -> PathBuf {
        self.dir.join(".lock")
    }
    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }
    pub(super) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }
    pub(super) fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers")
    }
    pub(super) fn users_dir(&self) -> PathBuf {
        self.dir.join("users")
    }

    /// Where the blob with this digest lives (`blobs/<alg>/<hex>`), for registry pulls.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        match digest.split_once(':') {
            Some((alg, hex)) => self.dir.join("blobs").join(alg).join(hex),
            None => self.dir.join("blobs/sha256").join(digest),
        }
    }

    /// Where the unpacked layer with this digest lives.
    pub fn layer_path(&self, digest: &str) -> PathBuf {
        self.layers_dir().join(file_name_of(digest))
    }

    fn create_dirs(&self) -> Result<(), ImageError> {
        // Owner only: layers hold setuid files owned by the box's ids, which no other host
        // user may reach (see the module docs).
        crate::store::private::create_dir(&self.dir).map_err(io_err("cannot create", &self.dir))?;
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        for d in [
            self.layers_dir(),
            self.tmp_dir(),
            self.users_dir(),
            self.dir.join("blobs/sha256"),
        ] {
            b.create(&d).map_err(io_err("cannot create", &d))?;
        }
        Ok(())
    }

    /// Remove the leftovers of imports and removals that died: every `tmp/NAME` whose
    /// `tmp/NAME.lock` nobody holds, temporary files of index writes, stale use markers, and
    /// unreferenced layers and blobs.
    pub(super) fn sweep(&self) -> Result<(), ImageError> {
        // `image rm` deletes under this lock: never sweep what it is still deleting.
        let _l = self.lock()?;
        let stale = self.stale_tmp()?;
        if !stale.is_empty() {
            let paths: Vec<PathBuf> = stale
                .iter()
                .map(|(p, _)| p.clone())
                .filter(|p| fs::symlink_metadata(p).is_ok())
                .collect();
            if !paths.is_empty() {
                self.as_root(move || -> Result<(), String> {
                    for p in &paths {
                        inroot::remove_tree(p)
                            .map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
                    }
                    Ok(())
                })?;
            }
            for (p, lock) in stale {
                let _ = fs::remove_file(lock.path());
                drop(lock);
                tracing::debug!("swept {}", p.display());
            }
        }
        // Index writes hold the lock: a temporary file now is one a killed write left.
        atomic::sweep_temp_files(&self.dir);
        self.sweep_users_locked(&_l)?;
        self.collect_garbage(&_l)
    }

    /// Entries of `tmp/` whose work died: `NAME` (or a lone `NAME.lock`) whose `NAME.lock`
    /// nobody holds, returned with that lock held.
    pub(super) fn stale_tmp(&self) -> Result<Vec<(PathBuf, Lock)>, ImageError> {
        let tmp = self.tmp_dir();
        let entries = fs::read_dir(&tmp).map_err(io_err("cannot read", &tmp))?;
        let mut names: Vec<String> = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let name = name.strip_suffix(".lock").unwrap_or(&name).to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let mut stale = Vec::new();
        for name in names {
            let lock_path = tmp.join(format!("{name}.lock"));
            match Lock::try_acquire(&lock_path, Mode::Exclusive) {
                Ok(Some(lock)) => stale.push((tmp.join(&name), lock)),
                Ok(None) => {}
                Err(e) => return Err(ImageError::Lock(e)),
            }
        }
        Ok(stale)
    }

    /// Run store work as root of the caller's user namespace (in-process for root).
    pub(super) fn as_root<T, E, F>(&self, f: F) -> Result<T, ImageError>
    where
        T: Serialize + serde::de::DeserializeOwned,
        E: std::fmt::Display,
        F: FnOnce() -> Result<T, E>,
    {
        userns::run_as_root(&self.maps, f).map_err(ImageError::from)
    }

    fn owners(&self) -> Owners {
        if nix::unistd::geteuid().is_root() || self.maps.has_range() {
            Owners::Keep
        } else {
            Owners::Ignore
        }
    }

    pub(super) fn read_index(&self) -> Result<Index, ImageError> {
        let p = self.index_path();
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| ImageError::BadIndex {
                path: p.clone(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index {
                version: 1,
                images: Vec::new(),
            }),
            Err(e) => Err(io_err("cannot read", &p)(e)),
        }
    }

    fn write_index(&self, index: &Index) -> Result<(), ImageError> {
        atomic::write_json(&self.index_path(), index).map_err(ImageError::Atomic)
    }

    pub(super) fn lock(&self) -> Result<Lock, ImageError> {
        Lock::acquire(&self.lock_path(), Mode::Exclusive).map_err(ImageError::Lock)
    }

    fn image(&self, r: &ImageRecord) -> Image {
        Image {
            id: r.id.clone(),
            names: r.names.clone(),
            created: r.created,
            size: r.size,
            layers: r.layers.iter().map(|d| self.layer_path(d)).collect(),
            layer_digests: r.layers.clone(),
            config: r.config.clone(),
            source: r.source.clone(),
            repo_digests: r.repo_digests.clone(),
            manifest: r.manifest.as_ref().map(|m| m.digest.clone()),
            platform: r.platform.clone(),
        }
    }

    /// A fresh directory `tmp/<what>-<random>` for work that must not outlive its process:
    /// removed when the [`Scratch`] is dropped, or by the next sweep if the process dies.
    pub(super) fn scratch(&self, what: &str) -> Result<Scratch, ImageError> {
        self.scratch_named(&format!("{what}-{}", random_suffix()))
    }

    /// [`Store::scratch`] under a name the caller makes unique.
    pub(super) fn scratch_named(&self, name: &str) -> Result<Scratch, ImageError> {
        let dir = self.tmp_dir().join(name);
        let lock_path = self.tmp_dir().join(format!("{name}.lock"));
        let lock = Lock::acquire(&lock_path, Mode::Exclusive).map_err(ImageError::Lock)?;
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&dir) {
            let _ = fs::remove_file(&lock_path);
            return Err(io_err("cannot create", &dir)(e));
        }
        Ok(Scratch {
            dir,
            lock: Some(lock),
        })
    }

    /// Every image record as the index has it.
    pub(super) fn list_records(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.read_index()?.images)
    }

    /// The record of one image by `name[:tag]`, `name@sha256:<hex>`, a full id or an id prefix.
    pub(super) fn record(&self, what: &str) -> Result<ImageRecord, ImageError> {
        let index = self.read_index()?;
        Ok(self.find(&index, what)?.clone())
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let mut v: Vec<Image> = self
            .read_index()?
            .images
            .iter()
            .map(|r| self.image(r))
            .collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// Unpack a pulled layer as layer `digest`, unless it is already there. `f` gets a fresh
    /// directory and the options to unpack with (OCI whiteouts become overlay ones) and runs
    /// as root of the store's user namespace: in a forked child for an unprivileged caller, so
    /// it opens its input itself. Returns the bytes unpacked, `None` when the layer was there.
    ///
    /// Call it with a [`Store::pull_guard`] held until the image is recorded, or the layer is
    /// a leftover for the next sweep.
    pub(super) fn unpack_layer<F>(&self, digest: &str, f: F) -> Result<Option<u64>, ImageError>
    where
        F: FnOnce(&Path, &unpack::Options) -> Result<unpack::Stats, UnpackError>,
    {
        if self.layer_path(digest).is_dir() {
            return Ok(None);
        }
        let opts = unpack::Options {
            whiteouts: Whiteouts::Overlay,
            owners: self.owners(),
            max_size: self.max_size,
        };
        let digest = digest.to_string();
        let bytes = self.as_root(|| -> Result<u64, ImageError> {
            let (unpacked, _store_lock) = self.unpack_to_layer(|tmp| {
                let stats = f(tmp, &opts)?;
                Ok(Unpacked {
                    digest: digest.clone(),
                    stats,
                })
            })?;
            warn_stats(&unpacked.stats);
            Ok(unpacked.stats.bytes)
        })?;
        Ok(Some(bytes))
    }

    /// Remove an image (or only the name, when `what` is a name and the image has others).
    /// Refused while a box uses it, unless `force`.
    pub fn remove(&self, what: &str, force: bool) -> Result<Removed, ImageError> {
        let _l = self.lock()?;
        let mut index = self.read_index()?;
        let rec = self.find(&index, what)?.clone();
        let by_name = ImageName::parse(what).ok().and_then(|r| {
            [
                r.full(),
                format!("{}:{}", docker_hub_name(r.name()), r.tag()),
            ]
            .into_iter()
            .find(|n| rec.names.contains(n))
        });
        if let Some(name) = &by_name {
            if rec.names.len() > 1 {
                for i in index.images.iter_mut().filter(|i| i.id == rec.id) {
                    i.names.retain(|n| n != name);
                }
                self.write_index(&index)?;
                return Ok(Removed::Untagged(name.clone()));
            }
        }
        let users = self.users(&rec.id);
        if !users.is_empty() && !force {
            return Err(ImageError::InUse {
                id: rec.id.clone(),
                boxes: users,
            });
        }
        index.images.retain(|i| i.id != rec.id);
        self.write_index(&index)?;
        crate::store::fault::point("image-rm.index-written");
        let _ = fs::remove_dir_all(self.users_dir().join(hex_of(&rec.id)));
        // Layers and blobs no other image has go now; while a pull runs (it may be about to
        // use them), at the next open or removal after it.
        self.collect_garbage(&_l)?;
        drop(_l);
        Ok(Removed::Deleted {
            id: rec.id,
            names: rec.names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        // The forms FOXBOX_MAX_IMAGE_SIZE has always taken (the spec's size parser since).
        assert_eq!(parse_size("1024").ok(), Some(1024));
        assert_eq!(parse_size("10K").ok(), Some(10240));
        assert_eq!(parse_size("2G").ok(), Some(2 << 30));
        assert_eq!(parse_size("3MiB").ok(), Some(3 << 20));
        assert_eq!(parse_size("x").ok(), None);
        assert_eq!(parse_size("").ok(), None);
    }
}
