//! Removing a box and everything it holds: record, rootfs upper dir, log, volume markers.

use crate::store::paths::Paths;
use crate::volume::Volumes;

use super::{BoxEntry, BoxError, Boxes};

/// Remove a stopped box fully. Resources of other modules (cgroups, network helpers) are
/// released by their owners before this; what is left is files.
pub fn remove_box(paths: &Paths, boxes: &Boxes, entry: &BoxEntry) -> Result<(), BoxError> {
    if let Ok(vols) = Volumes::open(paths.volumes(), paths.boxes()) {
        for v in &entry.config.volumes {
            vols.remove_user(v, &entry.config.id);
        }
    }
    boxes.remove(&entry.config.id)?;
    Ok(())
}
