//! Removal's first half: a box leaves the store in one rename, to a trash directory named
//! after the process that deletes it; trash whose deleter died is swept.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::layout::TRASH_PREFIX;
use super::{io_err, BoxEntry, BoxError, Boxes};

impl Boxes {
    /// Delete trash whose deleter died (trash that cannot be deleted, files owned by
    /// subordinate ids, is left for [`Boxes::trash`]'s caller).
    pub(super) fn sweep(&self) {
        for t in self.trash() {
            let _ = fs::remove_dir_all(t);
        }
    }

    /// Leftover trash directories whose deleter is gone (to delete with more privilege, e.g.
    /// in a user namespace).
    pub fn trash(&self) -> Vec<PathBuf> {
        let owner_gone = |name: &str| {
            name.strip_prefix(TRASH_PREFIX)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        };
        fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| owner_gone(&e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Take a box out of the store in one step ([`super::Event::Remove`]): its name is
    /// released and its directory is renamed to trash, which is returned for the caller to
    /// delete. Its name never changes once it is recorded: the caller's entry says it.
    /// `owner` is the process that will delete it: sweeps leave it alone while that one lives.
    pub(crate) fn retire(&self, entry: &BoxEntry, owner: u32) -> Result<PathBuf, BoxError> {
        let (id, name) = (entry.config.id.as_str(), entry.config.name.as_str());
        let _lock = self.lock(id)?;
        self.release_name(name, id)?;
        let dir = self.box_dir(id);
        let trash = self.trash_path(owner, id);
        fs::rename(&dir, &trash).map_err(|e| {
            // A parallel removal moved it away while this one waited for the lock.
            if e.kind() == io::ErrorKind::NotFound {
                BoxError::NotFound(id.to_string())
            } else {
                io_err("cannot remove", &dir)(e)
            }
        })?;
        Ok(trash)
    }

    /// Where `Boxes::retire` run by process `owner` puts box `id`.
    pub fn trash_path(&self, owner: u32, id: &str) -> PathBuf {
        self.dir.join(format!("{TRASH_PREFIX}{owner}-{id}"))
    }
}
