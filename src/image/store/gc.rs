//! Leftovers: the guard every pull and load holds, and the garbage collection of blobs and
//! layers no image references once none runs.

use super::names::digest_of_repo_digest;
use super::{file_name_of, io_err, random_suffix, Store};
use crate::image::{inroot, ImageError};
use crate::store::lock::{Lock, Mode};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::PathBuf;

impl Store {
    pub(super) fn pulls_lock_path(&self) -> PathBuf {
        self.dir.join(".pulls.lock")
    }

    /// Held (shared) by every pull and load from before its first blob until its image is
    /// recorded. While any is held, blobs and layers that no image references yet may be a
    /// pull's work in progress; when none is, they are leftovers (of a killed pull, or of a
    /// removal that ran beside a pull), and [`Store::collect_garbage`] deletes them.
    pub(in crate::image) fn pull_guard(&self) -> Result<Lock, ImageError> {
        Lock::acquire(&self.pulls_lock_path(), Mode::Shared).map_err(ImageError::Lock)
    }

    /// Delete blobs and layers that no image references, unless a pull or load is running.
    /// Called with the store lock held (`_held`), so no import or removal is half done.
    pub(in crate::image) fn collect_garbage(&self, _held: &Lock) -> Result<(), ImageError> {
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
    pub(in crate::image) fn no_pulls(&self) -> Result<Option<Lock>, ImageError> {
        Lock::try_acquire(&self.pulls_lock_path(), Mode::Exclusive).map_err(ImageError::Lock)
    }

    /// Blobs and layer directories that no image in the index references.
    pub(in crate::image) fn unreferenced(
        &self,
    ) -> Result<(Vec<PathBuf>, Vec<PathBuf>), ImageError> {
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
}
