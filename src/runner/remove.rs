//! Removing a box and everything it holds: cgroup, rootfs upper dir (owned by the box's ids,
//! so deleted from inside its user namespace), image and volume use markers, runtime files and
//! the record itself.

use crate::boxes::{BoxEntry, BoxError, Boxes};
use crate::cgroup::BoxCgroup;
use crate::image::Store;
use crate::store::paths::Paths;
use crate::volume::Volumes;

/// Remove a box that no longer runs. What cannot be removed is reported after the rest is
/// done; the record goes last, so a failed removal can be retried with `rm`.
pub fn remove(paths: &Paths, boxes: &Boxes, entry: &BoxEntry) -> Result<(), BoxError> {
    let id = &entry.config.id;
    if let Ok(text) = std::fs::read(entry.dir.join("cgroup.json")) {
        if let Ok(cg) = serde_json::from_slice::<BoxCgroup>(&text) {
            let _ = cg.destroy();
        }
    }
    if let Ok(store) = Store::open_for_boxes(paths) {
        // Most boxes leave only files owned by the caller (the box's root): delete those
        // directly, and enter the store's user namespace only for what that cannot remove.
        let rootfs = entry.dir.join("rootfs");
        // overlayfs leaves its inner work dir with mode 000; it is ours, so open it up first.
        let _ = std::fs::set_permissions(
            rootfs.join("work/work"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        );
        if std::fs::remove_dir_all(&rootfs).is_err() && rootfs.exists() {
            let _ = store.remove_box_rootfs(&entry.dir);
        }
        if let Some(image) = &entry.config.image_id {
            store.remove_user(image, id);
        }
    }
    if let Ok(vols) = Volumes::open(paths.volumes(), paths.boxes()) {
        for v in &entry.config.volumes {
            vols.remove_user(v, id);
        }
    }
    let _ = std::fs::remove_dir_all(paths.runtime.join(&id[..id.len().min(12)]));
    boxes.remove(id)?;
    Ok(())
}
