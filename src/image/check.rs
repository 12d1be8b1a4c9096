//! The image store's part of `foxbox system check`: every indexed image's layers are there
//! with the size recorded at import, and nothing is left that no image or box refers to.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::store::{hex_of, Index};
use super::{ImageError, Store};
use crate::store::atomic;
use crate::store::check::{gone_boxes, Finding};
use crate::store::lock::{Lock, Mode};

impl Store {
    /// What is wrong with the image store. Looks under the store's lock, shared: no import or
    /// removal is half done meanwhile.
    pub fn check(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let index_path = self.dir().join("index.json");
        let _shared = match Lock::acquire(&self.lock_path(), Mode::Shared) {
            Ok(l) => l,
            Err(e) => {
                out.push(Finding::new("store-unreadable", self.dir(), e.to_string()));
                return out;
            }
        };
        let index = match self.read_index() {
            Ok(i) => i,
            Err(e) => {
                out.push(Finding::new("index-unreadable", index_path, e.to_string()));
                return out;
            }
        };
        out.extend(self.check_layers(&index));
        // Unreferenced blobs and layers may be a running pull's work in progress.
        if let Ok(Some(_no_pulls)) = self.no_pulls() {
            if let Ok((blobs, layers)) = self.unreferenced() {
                out.extend(
                    blobs
                        .into_iter()
                        .map(|p| Finding::new("blob-orphan", p, "no image refers to this blob")),
                );
                out.extend(
                    layers
                        .into_iter()
                        .map(|p| Finding::new("layer-orphan", p, "no image refers to this layer")),
                );
            }
        }
        if let Ok(stale) = self.stale_tmp() {
            out.extend(stale.into_iter().map(|(p, _)| {
                Finding::new(
                    "image-leftover",
                    p,
                    "left by an import, pull or removal that was interrupted",
                )
            }));
        }
        out.extend(atomic::temp_files(self.dir()).into_iter().map(|p| {
            Finding::new(
                "temp-file",
                p,
                "left by an index write that was interrupted",
            )
        }));
        out.extend(self.stale_users_of(&index).into_iter().map(|p| {
            Finding::new(
                "image-user-orphan",
                p,
                "marks an image as used by a box that does not exist",
            )
        }));
        out
    }

    /// Layers of indexed images that are missing or whose file bytes differ from the record.
    fn check_layers(&self, index: &Index) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut sized: Vec<(PathBuf, u64, String)> = Vec::new();
        let mut seen = HashSet::new();
        for rec in &index.images {
            for (i, digest) in rec.layers.iter().enumerate() {
                let p = self.layer_path(digest);
                if !p.is_dir() {
                    out.push(Finding::new(
                        "layer-missing",
                        &p,
                        format!("layer {digest} of image {} is not stored", short(&rec.id)),
                    ));
                } else if let Some(&want) = rec.layer_sizes.get(i) {
                    if seen.insert(p.clone()) {
                        sized.push((p, want, rec.id.clone()));
                    }
                }
            }
        }
        if sized.is_empty() {
            return out;
        }
        // Layers hold files of the box's ids: measured as root of the store's namespace.
        let dirs: Vec<PathBuf> = sized.iter().map(|(p, ..)| p.clone()).collect();
        let measured = self.as_root(move || -> Result<Vec<Option<u64>>, String> {
            Ok(dirs.iter().map(|d| file_bytes(d)).collect())
        });
        let Ok(measured) = measured else {
            return out;
        };
        for ((p, want, id), got) in sized.into_iter().zip(measured) {
            if let Some(got) = got.filter(|g| *g != want) {
                out.push(Finding::new(
                    "layer-size",
                    p,
                    format!(
                        "holds {got} bytes of files, image {} recorded {want}",
                        short(&id)
                    ),
                ));
            }
        }
        out
    }

    /// Use markers of boxes that do not exist, and marker directories of images that are not
    /// in the index.
    fn stale_users_of(&self, index: &Index) -> Vec<PathBuf> {
        let ids: HashSet<&str> = index.images.iter().map(|r| hex_of(&r.id)).collect();
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(self.users_dir()) else {
            return out;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !ids.contains(name.as_str()) {
                out.push(e.path());
                continue;
            }
            out.extend(gone_boxes(&e.path(), self.boxes_dir()));
        }
        out
    }

    /// Remove what [`Store::check`] finds and can safely go: leftovers of interrupted work,
    /// temporary files, unreferenced layers and blobs (unless a pull runs), stale markers.
    pub fn repair(&self) -> Result<(), ImageError> {
        self.sweep()
    }

    /// Remove stale use markers (see [`Store::check`]); the caller holds the store's lock.
    pub(super) fn sweep_users_locked(&self, _held: &Lock) -> Result<(), ImageError> {
        let index = self.read_index()?;
        for p in self.stale_users_of(&index) {
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
        Ok(())
    }

    /// Remove the use markers of boxes that do not exist (left by a start killed before its
    /// box was recorded): no lock is needed, as a box's directory outlives its markers.
    pub fn sweep_users(&self) {
        let Ok(entries) = fs::read_dir(self.users_dir()) else {
            return;
        };
        for e in entries.flatten() {
            for m in gone_boxes(&e.path(), self.boxes_dir()) {
                let _ = fs::remove_file(m);
            }
        }
    }
}

fn short(id: &str) -> &str {
    let hex = hex_of(id);
    &hex[..hex.len().min(12)]
}

/// Bytes of the regular files under `dir`, each inode once (as an import counts them);
/// `None` when part of it cannot be read.
fn file_bytes(dir: &Path) -> Option<u64> {
    let mut total = 0;
    let mut inodes = HashSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).ok()? {
            let e = e.ok()?;
            let m = e.path().symlink_metadata().ok()?;
            if m.is_dir() {
                todo.push(e.path());
            } else if m.is_file() && inodes.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    Some(total)
}
