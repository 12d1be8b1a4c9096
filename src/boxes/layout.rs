//! A box's directory and the store's own entries: the one place their names are written.

use std::fs;
use std::path::{Path, PathBuf};

use super::{BoxEntry, Boxes};

pub(super) const TRASH_PREFIX: &str = ".trash-";
pub(super) const NAMES_DIR: &str = ".names";
pub(super) const NAMES_LOCK: &str = ".names.lock";
pub(super) const CONFIG: &str = "config.json";
pub(super) const STATE: &str = "state.json";
/// The box's output (see [`super::log`]).
pub(super) const LOG: &str = "log";
/// The box's cgroup, recorded before it is made so that `rm` can remove it.
pub(super) const CGROUP: &str = "cgroup.json";
/// In the boxes directory: the one directory every box mounts its root over.
pub(super) const MOUNTPOINT: &str = ".mnt";

/// The files of a box's directory: named here only.
impl BoxEntry {
    /// The box's output log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG)
    }

    /// The record of the box's cgroup (a box without limits has none).
    pub fn cgroup_path(&self) -> PathBuf {
        self.dir.join(CGROUP)
    }
}

impl Boxes {
    /// The directory every box mounts its root over, each inside its own mount namespace:
    /// nothing to make and delete per box.
    pub fn mountpoint(&self) -> PathBuf {
        self.dir.join(MOUNTPOINT)
    }

    /// The output log of box `id` (see [`BoxEntry::log_path`]).
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.box_dir(id).join(LOG)
    }
}

/// Delete a box's directory as far as the caller can (overlayfs leaves its inner work dirs
/// with mode 000: they are the caller's, so they are opened up first).
pub fn remove_box_tree(dir: &Path) {
    if fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return;
    }
    // overlayfs leaves directories without any permission in its work dir (work/work, and for
    // a volatile mount work/work/incompat/volatile): open up every directory of ours, then
    // try again. What belongs to a box's subordinate ids needs its user namespace
    // (`Store::remove_tree`).
    open_up(dir, nix::unistd::geteuid().as_raw());
    let _ = fs::remove_dir_all(dir);
}

fn open_up(dir: &Path, me: u32) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() || meta.uid() != me {
        return;
    }
    if meta.mode() & 0o700 != 0o700 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                open_up(&e.path(), me);
            }
        }
    }
}
