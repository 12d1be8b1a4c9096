//! The name table: `.names/NAME -> ID` symlinks, whose creation reserves a name among any
//! number of racing creations.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::layout::{NAMES_DIR, NAMES_LOCK};
use super::lock::flock;
use super::staging::no_random;
use super::{io_err, names, BoxConfig, BoxError, Boxes};

impl Boxes {
    /// Name links whose box directory is gone: left by a crash between a box's staging and
    /// its record, once its half-made directory was swept.
    pub fn dangling_names(&self) -> Vec<PathBuf> {
        fs::read_dir(self.dir.join(NAMES_DIR))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| self.dangling(p))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn dangling(&self, link: &Path) -> bool {
        // A box's directory is made before its name is reserved, and its name released
        // before its directory goes: a name whose directory is missing holds nothing.
        Self::name_holder(link)
            .is_some_and(|id| !names::validate_id(&id) || !self.box_dir(&id).is_dir())
    }

    /// Remove [`Boxes::dangling_names`] under the name table's lock; returns what went.
    pub fn sweep_names(&self) -> Vec<PathBuf> {
        let found = self.dangling_names();
        if found.is_empty() {
            return found;
        }
        let Ok(_lock) = flock(&self.dir.join(NAMES_LOCK)) else {
            return Vec::new();
        };
        found
            .into_iter()
            .filter(|p| self.dangling(p) && fs::remove_file(p).is_ok())
            .collect()
    }

    /// Reserve the generated name the config holds, or another one when it is taken.
    pub(super) fn reserve_generated(&self, config: &mut BoxConfig) -> Result<(), BoxError> {
        let mut last = None;
        for attempt in 0..=64 {
            let name = match attempt {
                0 => config.name.clone(),
                64 => format!("fox-{}", &config.id[..12]),
                _ => names::generate_name().map_err(no_random)?,
            };
            match self.reserve_name(&name, &config.id) {
                Ok(()) => {
                    config.name = name;
                    return Ok(());
                }
                Err(e @ BoxError::NameInUse { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| BoxError::NotFound(config.name.clone())))
    }

    /// The box id a name file points at: a symlink to the id (or, as older stores wrote it, a
    /// file holding the id).
    pub(super) fn name_holder(path: &Path) -> Option<String> {
        match fs::read_link(path) {
            Ok(t) => Some(t.to_string_lossy().into_owned()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                fs::read_to_string(path).ok().map(|s| s.trim().to_string())
            }
            Err(_) => None,
        }
    }

    pub(super) fn reserve_name(&self, name: &str, id: &str) -> Result<(), BoxError> {
        let path = self.dir.join(NAMES_DIR).join(name);
        // The symlink's creation is the reservation: atomic, and exclusive among racers.
        match std::os::unix::fs::symlink(id, &path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("cannot reserve the name at", &path)(e)),
        }
        let _lock = flock(&self.dir.join(NAMES_LOCK))?;
        if let Some(holder) = Self::name_holder(&path) {
            // A name whose box directory is gone was left by a crash: it is free again.
            if holder == id {
                return Ok(());
            }
            if names::validate_id(&holder)
                && self.box_dir(&holder).is_dir()
                && !self.reap_abandoned(&holder)
            {
                return Err(BoxError::NameInUse {
                    name: name.to_string(),
                    id: holder,
                });
            }
        }
        let _ = fs::remove_file(&path);
        std::os::unix::fs::symlink(id, &path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                let holder = Self::name_holder(&path).unwrap_or_default();
                BoxError::NameInUse {
                    name: name.to_string(),
                    id: holder,
                }
            } else {
                io_err("cannot reserve the name at", &path)(e)
            }
        })
    }

    pub(super) fn release_name(&self, name: &str, id: &str) -> Result<(), BoxError> {
        let _lock = flock(&self.dir.join(NAMES_LOCK))?;
        let path = self.dir.join(NAMES_DIR).join(name);
        if Self::name_holder(&path).is_some_and(|h| h == id) {
            fs::remove_file(&path).map_err(io_err("cannot remove", &path))?;
        }
        Ok(())
    }
}
