//! Advisory whole-file locks (flock(2)) on a lock file.
//!
//! flock locks belong to the open file description: they are released when the [`Lock`] is
//! dropped or the process dies (a killed import never leaves the store locked), and a forked
//! child shares its parent's lock.

use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
#[error("cannot lock {path}: {source}")]
pub struct LockError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    _flock: Flock<fs::File>,
    path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One holder at a time: writers.
    Exclusive,
    /// Many holders at once, none while an exclusive holder exists: readers.
    Shared,
}

impl Lock {
    /// Wait for the lock on `path` (created when missing, mode 0600).
    pub fn acquire(path: &Path, mode: Mode) -> Result<Lock, LockError> {
        Self::acquire_open(open_lock_file(path)?, path, mode)
    }

    /// Take the lock only if it is free right now.
    pub fn try_acquire(path: &Path, mode: Mode) -> Result<Option<Lock>, LockError> {
        Self::try_acquire_open(open_lock_file(path)?, path, mode)
    }

    /// Wait for the lock on a file already open as `file` (a directory, say, which
    /// [`Lock::acquire`] cannot open for writing); `path` names it in errors.
    pub fn acquire_open(file: fs::File, path: &Path, mode: Mode) -> Result<Lock, LockError> {
        let arg = match mode {
            Mode::Exclusive => FlockArg::LockExclusive,
            Mode::Shared => FlockArg::LockShared,
        };
        // A blocking flock never reports EWOULDBLOCK; should a kernel do so, say it plainly.
        Self::lock_open(file, path, arg)?.ok_or_else(|| LockError {
            path: path.to_path_buf(),
            source: io::Error::from(io::ErrorKind::WouldBlock),
        })
    }

    /// [`Lock::acquire_open`], only if the lock is free right now.
    pub fn try_acquire_open(
        file: fs::File,
        path: &Path,
        mode: Mode,
    ) -> Result<Option<Lock>, LockError> {
        let arg = match mode {
            Mode::Exclusive => FlockArg::LockExclusiveNonblock,
            Mode::Shared => FlockArg::LockSharedNonblock,
        };
        Self::lock_open(file, path, arg)
    }

    fn lock_open(
        mut file: fs::File,
        path: &Path,
        arg: FlockArg,
    ) -> Result<Option<Lock>, LockError> {
        let err = |source| LockError {
            path: path.to_path_buf(),
            source,
        };
        loop {
            match Flock::lock(file, arg) {
                Ok(flock) => {
                    return Ok(Some(Lock {
                        _flock: flock,
                        path: path.to_path_buf(),
                    }))
                }
                Err((f, nix::errno::Errno::EINTR)) => file = f,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, e)) => return Err(err(e.into())),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for Lock {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self._flock.as_fd()
    }
}

fn open_lock_file(path: &Path) -> Result<fs::File, LockError> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| LockError {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_releases_on_drop() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("lock");
        let a = Lock::acquire(&p, Mode::Exclusive).unwrap();
        assert!(Lock::try_acquire(&p, Mode::Exclusive).unwrap().is_none());
        assert!(Lock::try_acquire(&p, Mode::Shared).unwrap().is_none());
        drop(a);
        let s1 = Lock::try_acquire(&p, Mode::Shared).unwrap();
        let s2 = Lock::try_acquire(&p, Mode::Shared).unwrap();
        assert!(s1.is_some() && s2.is_some());
        assert!(Lock::try_acquire(&p, Mode::Exclusive).unwrap().is_none());
    }

    #[test]
    fn a_directory_opened_read_only_locks_too() {
        let t = tempfile::tempdir().unwrap();
        let open = || fs::File::open(t.path()).unwrap();
        let held = Lock::acquire_open(open(), t.path(), Mode::Exclusive).unwrap();
        assert_eq!(held.path(), t.path());
        assert!(Lock::try_acquire_open(open(), t.path(), Mode::Exclusive)
            .unwrap()
            .is_none());
        drop(held);
        assert!(Lock::try_acquire_open(open(), t.path(), Mode::Exclusive)
            .unwrap()
            .is_some());
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let e = Lock::acquire(Path::new("/nonexistent-dir/lock"), Mode::Shared).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/lock"));
    }
}
