//! Imports: a rootfs tarball unpacked into a layer, and images recorded in the index.

use super::{io_err, random_suffix, Image, ImageConfig, ImageRecord, Store};
use crate::image::archive::{self, Unpacked};
use crate::image::reference::ImageName;
use crate::image::unpack::{self, Owners, UnpackError, Whiteouts};
use crate::image::{inroot, ImageError};
use crate::store::atomic;
use crate::store::clock::now_secs as now;
use crate::store::lock::{Lock, Mode};
use std::fs;
use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

pub(super) fn warn_stats(stats: &unpack::Stats) {
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

impl Store {
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
    pub(super) fn unpack_to_layer(
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
    pub(super) fn commit(
        &self,
        rec: ImageRecord,
        stats: &unpack::Stats,
    ) -> Result<ImageRecord, ImageError> {
        let l = self.lock()?;
        self.commit_locked(&l, rec, stats)
    }

    /// [`Store::commit`] with the store lock already held.
    pub(super) fn commit_locked(
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
        let before = index.clone();
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
        // An image stored again as it was (a no-op rebuild's) costs no write and no sync.
        if index != before {
            self.write_index(&index)?;
        }
        warn_stats(stats);
        Ok(out)
    }

    pub(super) fn warn_owners(&self) {
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
}
