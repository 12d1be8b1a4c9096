//! The image store of one foxbox root: the index, imports, lookups, removal, box references.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::archive::{self, Unpacked};
use super::reference::{self, ImageName};
use super::unpack::{self, Owners, UnpackError, Whiteouts};
use super::{inroot, ImageError};
use crate::oci::DirBlobStore;
use crate::plan::units::parse_size;
use crate::plan::ImageRef;
use crate::store::atomic;
use crate::store::clock::now_secs as now;
use crate::store::lock::{Lock, Mode};
use crate::store::paths::Paths;
use crate::sys::idmap::IdMaps;
use crate::sys::userns;

mod build;
pub use build::{BuildStep, CopyItem, NewLayer};

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

#[derive(Debug, Default, Serialize, Deserialize)]
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

/// A scratch directory of the store's `tmp/`, held by its lock; see [`Store::scratch`].
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

fn warn_stats(stats: &unpack::Stats) {
    if stats.devices_skipped > 0 {
        tracing::warn!(
            "skipped {} device node(s) (first: {}): a box gets its own /dev",
            stats.devices_skipped,
            stats.first_device.as_deref().unwrap_or("?")
        );
    }
    if stats.unmapped_owners > 0 {
        tracing::warn!(
            "{} entr(y/ies) (first: {}) are owned by ids outside this user's id range; they belong to the box's root",
            stats.unmapped_owners,
            stats.first_unmapped.as_deref().unwrap_or("?")
        );
    }
}

fn not_found(index: &Index, what: String) -> ImageError {
    let mut known: Vec<String> = index.images.iter().flat_map(|i| i.names.clone()).collect();
    known.sort();
    ImageError::NotFound { what, known }
}

/// Whether a name names a registry (`host.domain/...`, `host:port/...`, `localhost/...`).
pub fn has_registry(name: &str) -> bool {
    crate::plan::reference::registry_of(name).is_some()
}

/// Docker Hub's full name for a short name: `busybox` is `docker.io/library/busybox`.
pub fn docker_hub_name(name: &str) -> String {
    if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

/// The repository part of a `name:tag`.
fn repo_of(full: &str) -> &str {
    let last_slash = full.rfind('/').map_or(0, |i| i + 1);
    match full[last_slash..].rfind(':') {
        Some(i) => &full[..last_slash + i],
        None => full,
    }
}

/// `name:tag` as stored, pinned to `digest` when given (the id, or a manifest or index digest
/// the image was pulled by under that name).
fn find_exact<'a>(
    index: &'a Index,
    name: &str,
    tag: &str,
    digest: Option<&str>,
) -> Result<Option<&'a ImageRecord>, ImageError> {
    let full = format!("{name}:{tag}");
    let tagged = index.images.iter().find(|i| i.names.contains(&full));
    let Some(want) = digest else {
        return Ok(tagged);
    };
    let repo_digest = format!("{name}@{want}");
    let pinned = |i: &ImageRecord| i.id == want || i.repo_digests.contains(&repo_digest);
    if let Some(rec) = tagged.filter(|r| pinned(r)) {
        return Ok(Some(rec));
    }
    // Pulled by digest alone (no tag), or the tag has moved to another image since.
    if let Some(rec) = index.images.iter().find(|i| {
        i.repo_digests.contains(&repo_digest)
            || (i.id == want && i.names.iter().any(|n| repo_of(n) == name))
    }) {
        return Ok(Some(rec));
    }
    match tagged {
        Some(rec) => Err(ImageError::DigestMismatch {
            name: full,
            want: want.to_string(),
            have: rec.id.clone(),
        }),
        None => Ok(None),
    }
}

/// [`find_exact`], then for a short name its Docker Hub name; with the name used.
fn find_local<'a>(
    index: &'a Index,
    name: &str,
    tag: &str,
    digest: Option<&str>,
) -> Result<Option<(&'a ImageRecord, String)>, ImageError> {
    if let Some(rec) = find_exact(index, name, tag, digest)? {
        return Ok(Some((rec, name.to_string())));
    }
    if has_registry(name) {
        return Ok(None);
    }
    let hub = docker_hub_name(name);
    Ok(find_exact(index, &hub, tag, digest)?.map(|rec| (rec, hub)))
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

/// `alg:hex` of a `name@alg:hex` repo digest.
fn digest_of_repo_digest(rd: &str) -> &str {
    rd.rsplit_once('@').map_or(rd, |(_, d)| d)
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

    fn pulls_lock_path(&self) -> PathBuf {
        self.dir.join(".pulls.lock")
    }

    /// Held (shared) by every pull and load from before its first blob until its image is
    /// recorded. While any is held, blobs and layers that no image references yet may be a
    /// pull's work in progress; when none is, they are leftovers (of a killed pull, or of a
    /// removal that ran beside a pull), and [`Store::collect_garbage`] deletes them.
    pub(super) fn pull_guard(&self) -> Result<Lock, ImageError> {
        Lock::acquire(&self.pulls_lock_path(), Mode::Shared).map_err(ImageError::Lock)
    }

    /// Delete blobs and layers that no image references, unless a pull or load is running.
    /// Called with the store lock held (`_held`), so no import or removal is half done.
    pub(super) fn collect_garbage(&self, _held: &Lock) -> Result<(), ImageError> {
        let Some(_no_pulls) = self.no_pulls()? else {
            return Ok(());
        };
        let (blobs, layers) = self.unreferenced()?;
        for b in blobs {
            let _ = fs::remove_file(&b);
            tracing::debug!("removed unreferenced blob {}", b.display());
        }
        let doomed: Vec<(PathBuf, PathBuf)> = layers
            .into_iter()
            .map(|from| {
                let name = from
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let to = self
                    .tmp_dir()
                    .join(format!("rm-{name}-{}", random_suffix()));
                (from, to)
            })
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        // Renamed away first (so a crash mid-delete leaves a leftover for the sweep, never a
        // half-deleted layer under its name), then deleted. Renaming a directory to another
        // parent needs write access to it: root of the namespace has that over layers owned by
        // the box's ids.
        self.as_root(move || -> Result<(), String> {
            for (from, to) in &doomed {
                match fs::rename(from, to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(format!("cannot remove {}: {e}", from.display())),
                }
                inroot::remove_tree(to)
                    .map_err(|e| format!("cannot delete {}: {e}", to.display()))?;
            }
            Ok(())
        })
    }

    /// Held while no pull or load runs (`None`: one does): then blobs and layers no image
    /// references are leftovers, not a pull's work in progress.
    pub(super) fn no_pulls(&self) -> Result<Option<Lock>, ImageError> {
        Lock::try_acquire(&self.pulls_lock_path(), Mode::Exclusive).map_err(ImageError::Lock)
    }

    /// Blobs and layer directories that no image in the index references.
    pub(super) fn unreferenced(&self) -> Result<(Vec<PathBuf>, Vec<PathBuf>), ImageError> {
        let index = self.read_index()?;
        let mut blobs: HashSet<String> = HashSet::new();
        let mut layers: HashSet<String> = HashSet::new();
        for rec in &index.images {
            for l in &rec.layers {
                blobs.insert(l.clone());
                layers.insert(file_name_of(l));
            }
            blobs.insert(rec.id.clone());
            if let Some(m) = &rec.manifest {
                blobs.insert(m.digest.clone());
            }
            for rd in &rec.repo_digests {
                blobs.insert(digest_of_repo_digest(rd).to_string());
            }
        }
        let blob_root = self.dir.join("blobs");
        let mut unused_blobs = Vec::new();
        for alg in ["sha256", "sha512"] {
            let Ok(entries) = fs::read_dir(blob_root.join(alg)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !blobs.contains(&format!("{alg}:{name}")) {
                    unused_blobs.push(e.path());
                }
            }
        }
        let mut unused_layers = Vec::new();
        let entries =
            fs::read_dir(self.layers_dir()).map_err(io_err("cannot read", &self.layers_dir()))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !layers.contains(&name) {
                unused_layers.push(e.path());
            }
        }
        Ok((unused_blobs, unused_layers))
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

    /// Import a `.tar` or `.tar.gz` rootfs as an image, named `name:tag` (none: no name).
    /// Importing the same file again reuses the unpacked layer and moves the name to it.
    pub fn import(&self, file: &Path, name: Option<&ImageName>) -> Result<Image, ImageError> {
        self.import_with(file, name, ImageConfig::default())
    }

    /// [`Store::import`] with a config of its own (`import --change`). Such an image's id is
    /// the layer's digest hashed with its config, so that it never stands in for the plain
    /// tarball (whose id is the layer's digest).
    pub fn import_with(
        &self,
        file: &Path,
        name: Option<&ImageName>,
        config: ImageConfig,
    ) -> Result<Image, ImageError> {
        let f = File::open(file).map_err(io_err("cannot open", file))?;
        let meta = f.metadata().map_err(io_err("cannot read", file))?;
        if !meta.is_file() {
            return Err(ImageError::NotAFile(file.to_path_buf()));
        }
        let source = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let label = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let progress = if self.progress {
            archive::progress_bar(meta.len(), &label)
        } else {
            None
        };
        let opts = unpack::Options {
            whiteouts: Whiteouts::Flatten,
            owners: self.owners(),
            max_size: self.max_size,
        };
        let full_name = name.map(|n| n.full());
        let record: ImageRecord = self.as_root(|| -> Result<ImageRecord, ImageError> {
            let (unpacked, lock) =
                self.unpack_to_layer(|dest| archive::unpack_file(f, dest, &opts, progress))?;
            crate::store::fault::point("import.after-layer");
            let Unpacked { digest, stats } = unpacked;
            let id = if config == ImageConfig::default() {
                digest.clone()
            } else {
                use sha2::Digest;
                let json = serde_json::to_string(&config).unwrap_or_default();
                let sum = sha2::Sha256::digest(format!("{digest}\n{json}").as_bytes());
                format!("sha256:{}", hex::encode(sum))
            };
            let rec = ImageRecord {
                id,
                names: full_name.clone().into_iter().collect(),
                created: now(),
                size: stats.bytes,
                layers: vec![digest],
                config: config.clone(),
                source: Some(source.clone()),
                layer_sizes: vec![stats.bytes],
                ..ImageRecord::default()
            };
            let rec = self.commit_locked(&lock, rec, &stats)?;
            crate::store::fault::point("import.after-index");
            Ok(rec)
        })?;
        self.warn_owners();
        Ok(self.image(&record))
    }

    /// Unpack into a fresh temporary directory with `f`, then move it into `layers/` under the
    /// store lock (unless an import that finished first already put it there). Runs as root of
    /// the store's user namespace.
    fn unpack_to_layer(
        &self,
        f: impl FnOnce(&Path) -> Result<Unpacked, UnpackError>,
    ) -> Result<(Unpacked, Lock), ImageError> {
        let name = format!("import-{}", random_suffix());
        let tmp = self.tmp_dir().join(&name);
        let lock_path = self.tmp_dir().join(format!("{name}.lock"));
        // Held until the directory is gone or renamed: a sweep leaves a live import alone.
        let lock = Lock::acquire(&lock_path, Mode::Exclusive).map_err(ImageError::Lock)?;
        let cleanup = |tmp: &Path| {
            let _ = inroot::remove_tree(tmp);
            let _ = fs::remove_file(&lock_path);
        };
        if let Err(e) = fs::DirBuilder::new().mode(0o755).create(&tmp) {
            cleanup(&tmp);
            return Err(io_err("cannot create", &tmp)(e));
        }
        crate::store::fault::point("import.tmp-made");
        let unpacked = match f(&tmp) {
            Ok(u) => {
                crate::store::fault::point("import.unpacked");
                u
            }
            Err(e) => {
                cleanup(&tmp);
                return Err(ImageError::Unpack(e));
            }
        };
        let dest = self.layer_path(&unpacked.digest);
        let store_lock = match self.lock() {
            Ok(l) => l,
            Err(e) => {
                cleanup(&tmp);
                return Err(e);
            }
        };
        if dest.exists() {
            cleanup(&tmp);
        } else if let Err(e) = fs::rename(&tmp, &dest) {
            cleanup(&tmp);
            return Err(io_err("cannot move the unpacked layer to", &dest)(e));
        } else {
            let _ = fs::remove_file(&lock_path);
            atomic::sync_dir(&self.layers_dir());
        }
        drop(lock);
        // The store lock stays held until the caller has recorded the layer in the index, so
        // an `image rm` cannot delete a layer between its arrival and its first reference.
        Ok((unpacked, store_lock))
    }

    /// Add or update the image record (by id), moving its names off other images.
    fn commit(&self, rec: ImageRecord, stats: &unpack::Stats) -> Result<ImageRecord, ImageError> {
        let l = self.lock()?;
        self.commit_locked(&l, rec, stats)
    }

    /// [`Store::commit`] with the store lock already held.
    fn commit_locked(
        &self,
        _held: &Lock,
        rec: ImageRecord,
        stats: &unpack::Stats,
    ) -> Result<ImageRecord, ImageError> {
        for d in &rec.layers {
            if !self.layer_path(d).is_dir() {
                return Err(ImageError::MissingLayer(d.clone()));
            }
        }
        let mut index = self.read_index()?;
        index.version = 1;
        for other in index.images.iter_mut().filter(|i| i.id != rec.id) {
            other.names.retain(|n| !rec.names.contains(n));
        }
        let out = match index.images.iter_mut().find(|i| i.id == rec.id) {
            Some(existing) => {
                for n in &rec.names {
                    if !existing.names.contains(n) {
                        existing.names.push(n.clone());
                    }
                }
                for d in &rec.repo_digests {
                    if !existing.repo_digests.contains(d) {
                        existing.repo_digests.push(d.clone());
                    }
                }
                if existing.source.is_none() {
                    existing.source = rec.source.clone();
                }
                if existing.history.is_empty() {
                    existing.history = rec.history.clone();
                }
                if existing.manifest.is_none() {
                    existing.manifest = rec.manifest.clone();
                }
                if existing.platform.is_none() {
                    existing.platform = rec.platform.clone();
                }
                if existing.layer_sizes.len() != existing.layers.len() {
                    existing.layer_sizes = rec.layer_sizes.clone();
                }
                existing.clone()
            }
            None => {
                index.images.push(rec.clone());
                rec
            }
        };
        self.write_index(&index)?;
        warn_stats(stats);
        Ok(out)
    }

    fn warn_owners(&self) {
        if self.owners() == Owners::Ignore {
            let user = crate::sys::idmap::user_name(nix::unistd::geteuid().as_raw())
                .unwrap_or_else(|| nix::unistd::geteuid().to_string());
            tracing::warn!(
                "no subordinate id range for {user} (/etc/subuid, /etc/subgid, newuidmap): every file of the image belongs to the box's root"
            );
        }
    }

    /// Register an image whose layers are already in the store (a registry pull).
    pub fn add_image(&self, rec: ImageRecord) -> Result<Image, ImageError> {
        let rec = self.commit(rec, &unpack::Stats::default())?;
        Ok(self.image(&rec))
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

    /// Find one image by `name[:tag]`, `name@sha256:<hex>`, a full id or an id prefix.
    pub fn lookup(&self, what: &str) -> Result<Image, ImageError> {
        let index = self.read_index()?;
        let rec = self.find(&index, what)?;
        Ok(self.image(rec))
    }

    fn find<'a>(&self, index: &'a Index, what: &str) -> Result<&'a ImageRecord, ImageError> {
        if let Ok(r) = ImageName::parse(what) {
            let digest = r.digest().map(|d| d.to_string());
            if let Some((rec, _)) = find_local(index, r.name(), r.tag(), digest.as_deref())? {
                return Ok(rec);
            }
        }
        if let Some(prefix) = reference::id_prefix(what) {
            let hits: Vec<&ImageRecord> = index
                .images
                .iter()
                .filter(|i| hex_of(&i.id).starts_with(&prefix))
                .collect();
            match hits.as_slice() {
                [one] => return Ok(one),
                [] => {}
                many => {
                    return Err(ImageError::Ambiguous {
                        what: what.to_string(),
                        ids: many.iter().map(|i| i.id.clone()).collect(),
                    })
                }
            }
        }
        Err(not_found(index, what.to_string()))
    }

    /// The stored image `name:tag` (pinned to `digest` when given), with the name it was
    /// found under: a short name (no registry) means the local image of that name, else the
    /// local `docker.io/library/NAME`. `None` when the store has neither.
    pub fn find_named(
        &self,
        name: &str,
        tag: &str,
        digest: Option<&str>,
    ) -> Result<Option<(Image, String)>, ImageError> {
        let index = self.read_index()?;
        Ok(find_local(&index, name, tag, digest)?.map(|(rec, used)| (self.image(rec), used)))
    }

    /// The image a plan names: a stored one by name (checked against a pinned digest), or a
    /// tarball, imported on first use and found by its digest after. Nothing is pulled: see
    /// [`Store::resolve_or_pull`].
    pub fn resolve(&self, r: &ImageRef) -> Result<Image, ImageError> {
        match r {
            ImageRef::Stored(n) => {
                let index = self.read_index()?;
                let digest = n.digest().map(|d| d.to_string());
                match find_local(&index, n.name(), n.tag(), digest.as_deref())? {
                    Some((rec, _)) => Ok(self.image(rec)),
                    None => Err(not_found(&index, n.full())),
                }
            }
            ImageRef::Tarball { path } => {
                // Not read again while unchanged (its stamp is the one recorded).
                let digest =
                    super::tarball_digest::digest(&self.dir.join("tarball-digests.json"), path)
                        .map_err(io_err("cannot read", path))?;
                let index = self.read_index()?;
                if let Some(rec) = index.images.iter().find(|i| i.id == digest) {
                    if rec.layers.iter().all(|d| self.layer_path(d).is_dir()) {
                        return Ok(self.image(rec));
                    }
                }
                self.import(path, None)
            }
        }
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

    /// Record that box `box_id` uses image `image_id` (`image rm` refuses it then), and
    /// confirm that the image is still stored.
    ///
    /// The image was resolved before this record existed, so an `image rm` may have read the
    /// users in between and be removing it. `remove` holds the exclusive lock from reading the
    /// users until its layers are gone: under the shared lock, the image is either still in the
    /// index (and any later `image rm` sees this box), or gone, and the box must not start.
    pub fn add_user(&self, image_id: &str, box_id: &str) -> Result<(), ImageError> {
        let dir = self.users_dir().join(hex_of(image_id));
        fs::create_dir_all(&dir).map_err(io_err("cannot create", &dir))?;
        let p = dir.join(box_id);
        fs::write(&p, b"").map_err(io_err("cannot write", &p))?;
        let still_there = Lock::acquire(&self.lock_path(), Mode::Shared)
            .map_err(ImageError::Lock)
            .and_then(|_shared| self.read_index())
            .map(|index| index.images.iter().any(|i| i.id == image_id));
        match still_there {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.remove_user(image_id, box_id);
                Err(ImageError::RemovedWhileStarting(image_id.to_string()))
            }
            Err(e) => {
                self.remove_user(image_id, box_id);
                Err(e)
            }
        }
    }

    /// Forget that box `box_id` uses image `image_id`.
    pub fn remove_user(&self, image_id: &str, box_id: &str) {
        // The image's directory stays (until `image rm`) for its next box.
        let _ = fs::remove_file(self.users_dir().join(hex_of(image_id)).join(box_id));
    }

    /// Boxes that use the image and still exist (`<root>/boxes/<id>`).
    pub fn users(&self, image_id: &str) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.users_dir().join(hex_of(image_id))) else {
            return Vec::new();
        };
        let mut v: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|id| self.boxes.join(id).exists())
            .collect();
        v.sort();
        v
    }

    /// Remove a directory tree written by a box or the store (owned by the box's ids), as root
    /// of the store's user namespace.
    pub fn remove_tree(&self, path: &Path) -> Result<(), ImageError> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        let p = path.to_path_buf();
        self.as_root(move || -> Result<(), String> {
            inroot::remove_tree(&p).map_err(|e| format!("cannot delete {}: {e}", p.display()))
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
