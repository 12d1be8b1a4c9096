//! Removing a box and everything it holds: cgroup, rootfs upper dir (owned by the box's ids,
//! so deleted from inside its user namespace), image and volume use markers, runtime files and
//! the record itself.
//!
//! A removal has two halves. What others can see goes at once: the box's claims on images and
//! volumes, its name, and its record, renamed away in one step ([`Boxes::retire`]). Deleting
//! the files left in that trash comes second; `run --rm` hands it to a process of its own so
//! that the caller need not wait for the disk. Trash whose deleter died is swept later.

use std::path::Path;

use crate::boxes::{BoxEntry, BoxError, Boxes};
use crate::cgroup::BoxCgroup;
use crate::image::Store;
use crate::store::paths::Paths;
use crate::sys::process as p;
use crate::volume::Volumes;

/// Remove a box that no longer runs, and wait until its files are deleted.
pub fn remove(paths: &Paths, boxes: &Boxes, entry: &BoxEntry) -> Result<(), BoxError> {
    let trash = retire(paths, boxes, entry)?;
    delete_trash(paths, &trash);
    Ok(())
}

/// Remove a box that no longer runs; its files are deleted by a detached process (or here,
/// when none can be started). The caller must be single-threaded: it forks.
pub fn remove_in_background(
    paths: &Paths,
    boxes: &Boxes,
    entry: &BoxEntry,
) -> Result<(), BoxError> {
    let trash = retire(paths, boxes, entry)?;
    match p::fork() {
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            detach_from_caller();
            let trash = boxes.adopt_trash(&trash);
            delete_trash(paths, &trash);
            sweep_trash(paths, boxes);
            // Nothing of the parent's (buffered output, destructors) may run twice.
            p::exit_now(0)
        }
        Err(_) => {
            delete_trash(paths, &trash);
            Ok(())
        }
    }
}

/// Release everything others can see of the box; returns where its files now lie.
fn retire(paths: &Paths, boxes: &Boxes, entry: &BoxEntry) -> Result<std::path::PathBuf, BoxError> {
    let id = &entry.config.id;
    if let Ok(text) = std::fs::read(entry.dir.join("cgroup.json")) {
        if let Ok(cg) = serde_json::from_slice::<BoxCgroup>(&text) {
            let _ = cg.destroy();
        }
    }
    if let Some(image) = &entry.config.image_id {
        if let Ok(store) = Store::open_for_boxes(paths) {
            store.remove_user(image, id);
        }
    }
    if !entry.config.volumes.is_empty() {
        if let Ok(vols) = Volumes::open(paths.volumes(), paths.boxes()) {
            for v in &entry.config.volumes {
                vols.remove_user(v, id);
            }
        }
    }
    let _ = std::fs::remove_dir_all(paths.runtime.join(&id[..id.len().min(12)]));
    boxes.retire(id)
}

/// Delete a retired box's directory. Most boxes leave only files owned by the caller (the
/// box's root): those go directly, and the store's user namespace is entered only for what
/// that cannot remove.
fn delete_trash(paths: &Paths, trash: &Path) {
    // overlayfs leaves its inner work dirs with mode 000; they are ours, so open them up first.
    for d in ["rootfs/work/work", "rootfs/work/incompat"] {
        let _ = std::fs::set_permissions(
            trash.join(d),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        );
    }
    if std::fs::remove_dir_all(trash).is_ok() || !trash.exists() {
        return;
    }
    if let Ok(store) = Store::open_for_boxes(paths) {
        if let Err(e) = store.remove_tree(trash) {
            tracing::warn!("cannot delete {}: {e}", trash.display());
        }
    }
}

/// Delete trash that earlier removals left (their deleter died, or lacked the namespace).
fn sweep_trash(paths: &Paths, boxes: &Boxes) {
    for t in boxes.trash() {
        delete_trash(paths, &t);
    }
}

/// In the forked deleter: no terminal, no signals meant for the caller's job, no hold on the
/// caller's output pipes (a shell reading them would wait for us), and low priority.
fn detach_from_caller() {
    let _ = nix::unistd::setsid();
    p::stdio_to_null();
    p::lower_priority();
}
