//! Atomic file writes: a temporary file in the same directory, fsync, rename, fsync the directory.
//!
//! A reader sees either the old contents or the new, never a mix, and a crash at any point
//! leaves at worst a `.tmp-*` file that [`sweep_temp_files`] removes.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The prefix of the temporary files made here (swept by [`sweep_temp_files`]).
pub const TMP_PREFIX: &str = ".tmp-";

#[derive(Debug, thiserror::Error)]
pub enum AtomicError {
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot encode {path}: {source}")]
    Encode {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Replace `path` with `contents` atomically (and durably: data and directory are synced).
pub fn write_file(path: &Path, contents: &[u8]) -> Result<(), AtomicError> {
    write(path, contents, true)
}

/// [`write_file`] without the directory's fsync: after a power loss the file may be back to
/// its previous contents (whole, never a mix). For a box's records, which its liveness check
/// corrects after a crash anyway, and which every start of a box writes several times.
pub fn write_file_unsynced_dir(path: &Path, contents: &[u8]) -> Result<(), AtomicError> {
    write(path, contents, false)
}

fn write(path: &Path, contents: &[u8], durable_dir: bool) -> Result<(), AtomicError> {
    let io_err = |source| AtomicError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{TMP_PREFIX}{name}-"))
        .tempfile_in(dir)
        .map_err(io_err)?;
    tmp.write_all(contents).map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    crate::fault::before_rename(&name);
    // NamedTempFile creates 0600; a state file gets the usual 0644 less the umask's say.
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    if durable_dir {
        sync_dir(dir);
    }
    Ok(())
}

/// [`write_file`] with `value` as pretty JSON and a trailing newline.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), AtomicError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|source| AtomicError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    text.push(b'\n');
    write_file(path, &text)
}

/// fsync a directory so a rename inside it survives a crash. Best effort: some filesystems
/// refuse fsync on directories, and the rename itself already happened.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Flush everything written to the filesystem holding `path` (syncfs(2)): one journal commit
/// for a whole tree written without syncs, such as a build step's `volatile` upper dir.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let f = fs::File::open(path)?;
    rustix::fs::syncfs(&f)?;
    Ok(())
}

/// Remove `.tmp-*` files (not directories) left in `dir` by writes that crashed.
///
/// Call it while holding the lock that guards the directory's writers, or a live writer's
/// temporary file may go (its rename then fails and it reports an error, nothing worse).
pub fn sweep_temp_files(dir: &Path) {
    for p in temp_files(dir) {
        let _ = fs::remove_file(p);
    }
}

/// The `.tmp-*` files (not directories) in `dir`: writes under way, or left by a crash.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with(TMP_PREFIX)
                && e.file_type().is_ok_and(|t| t.is_file())
        })
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("index.json");
        write_file(&p, b"one").unwrap();
        write_json(&p, &vec![1, 2]).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "[\n  1,\n  2\n]\n");
        let names: Vec<_> = fs::read_dir(t.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn sweep_removes_only_temp_files() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join(".tmp-index.json-abc"), b"x").unwrap();
        fs::create_dir(t.path().join(".tmp-dir")).unwrap();
        fs::write(t.path().join("index.json"), b"x").unwrap();
        sweep_temp_files(t.path());
        assert!(!t.path().join(".tmp-index.json-abc").exists());
        assert!(t.path().join(".tmp-dir").exists());
        assert!(t.path().join("index.json").exists());
    }

    #[test]
    fn write_into_missing_dir_is_an_error_naming_the_path() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("nope/x.json");
        let e = write_file(&p, b"x").unwrap_err().to_string();
        assert!(e.contains("nope/x.json"), "{e}");
    }
}
