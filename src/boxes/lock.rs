//! Locks on one box and on the name table: flocks, let go on drop or on the holder's death.

use std::fs::File;
use std::io;
use std::path::Path;

use super::{io_err, BoxError, Boxes};
use crate::store::lock::Mode;

/// An exclusive lock on one box (or on the name table), released on drop or process death.
pub use crate::store::lock::Lock;

pub(super) fn flock(path: &Path) -> Result<Lock, BoxError> {
    Lock::acquire(path, Mode::Exclusive).map_err(BoxError::Lock)
}

pub(super) fn lock_file(f: File, path: &Path) -> Result<Lock, BoxError> {
    Lock::acquire_open(f, path, Mode::Exclusive).map_err(BoxError::Lock)
}

impl Boxes {
    /// Lock one box against concurrent changes.
    pub fn lock(&self, id: &str) -> Result<Lock, BoxError> {
        // The directory itself is locked: no lock file to make and delete with every box.
        let dir = self.box_dir(id);
        let f = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BoxError::NotFound(id.to_string()))
            }
            Err(e) => return Err(io_err("cannot open", &dir)(e)),
        };
        lock_file(f, &dir)
    }
}
