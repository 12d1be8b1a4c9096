//! The store is its owner's alone: its root and the directories right under it (`images/`,
//! `boxes/`, `volumes/`) are 0700, box directories 0700, logs and records 0600, for every user,
//! root included. What a box printed, its config (environment, bind sources) and the image
//! layers (setuid files among them) are nobody else's business. A store made by an older
//! foxbox, with 0755 directories, is tightened when it is opened: the root and the directory
//! opened are enough, since nothing under a 0700 directory can be reached by another user.
//!
//! Nothing else needs the way in: a rootless box's overlay, binds and image unpacking act as
//! the box's root, which is the store's owner.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// The mode of the store's directories.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the store's files.
pub const FILE_MODE: u32 = 0o600;

/// Create `dir`, a directory right under the store's root, and the root, both private; or
/// tighten them when they exist (see [`tighten`]).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if let Some(root) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Some(above) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(above)?;
        }
        make(root)?;
    }
    make(dir)
}

/// Tighten `dir` and the store's root above it when they exist and let others in: for readers,
/// which create nothing. Best effort: a read-only store stays as it is.
pub fn tighten(dir: &Path) {
    if let Some(root) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        tighten_one(root);
    }
    tighten_one(dir);
}

fn make(dir: &Path) -> io::Result<()> {
    // The umask can only narrow 0700.
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            tighten_one(dir);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn tighten_one(dir: &Path) {
    let Ok(meta) = fs::metadata(dir) else {
        return;
    };
    if meta.is_dir() && meta.mode() & 0o077 != 0 && meta.uid() == nix::unistd::geteuid().as_raw() {
        if let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)) {
            tracing::debug!("cannot make {} private: {e}", dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn creates_private_and_tightens_what_exists() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("a/foxbox");
        create_dir(&root.join("boxes")).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("boxes")), 0o700);
        assert_eq!(mode(&t.path().join("a")) & 0o700, 0o700);

        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(root.join("boxes"), fs::Permissions::from_mode(0o751)).unwrap();
        create_dir(&root.join("boxes")).unwrap();
        assert_eq!((mode(&root), mode(&root.join("boxes"))), (0o700, 0o700));

        fs::set_permissions(&root, fs::Permissions::from_mode(0o750)).unwrap();
        fs::create_dir(root.join("volumes")).unwrap();
        fs::set_permissions(root.join("volumes"), fs::Permissions::from_mode(0o705)).unwrap();
        tighten(&root.join("volumes"));
        assert_eq!((mode(&root), mode(&root.join("volumes"))), (0o700, 0o700));
        // Nothing is made by a reader.
        tighten(&root.join("images"));
        assert!(!root.join("images").exists());
    }
}
