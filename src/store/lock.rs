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
    ///
    /// A holder may unlink its lock file before it lets go (a sweep does, once it removed what
    /// the lock guarded): whoever waited on that file then holds a lock nobody else can see,
    /// and a later locker would make a new file and get the "same" lock too. So a lock taken
    /// on a file that no longer is `path` is dropped and taken again on the new one.
    pub fn acquire(path: &Path, mode: Mode) -> Result<Lock, LockError> {
        loop {
            let lock = Self::acquire_open(open_lock_file(path)?, path, mode)?;
            if lock.still_at(path)? {
                return Ok(lock);
            }
        }
    }

    /// Take the lock only if it is free right now (with [`Lock::acquire`]'s check that the
    /// file is still `path`'s).
    pub fn try_acquire(path: &Path, mode: Mode) -> Result<Option<Lock>, LockError> {
        loop {
            match Self::try_acquire_open(open_lock_file(path)?, path, mode)? {
                Some(lock) if !lock.still_at(path)? => continue,
                other => return Ok(other),
            }
        }
    }

    /// Whether the locked file is still the one `path` names.
    fn still_at(&self, path: &Path) -> Result<bool, LockError> {
        use std::os::unix::fs::MetadataExt;
        let held = self._flock.metadata().map_err(|source| LockError {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(match fs::metadata(path) {
            Ok(now) => (now.dev(), now.ino()) == (held.dev(), held.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(source) => {
                return Err(LockError {
                    path: path.to_path_buf(),
                    source,
                })
            }
        })
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
    fn a_lock_on_an_unlinked_file_is_taken_again_on_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let first = Lock::acquire(&p, Mode::Exclusive).unwrap();
        // A waiter that opened the file before the holder unlinked it.
        let waiter = std::thread::spawn({
            let p = p.clone();
            move || Lock::acquire(&p, Mode::Exclusive).unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        fs::remove_file(&p).unwrap();
        drop(first);
        let second = waiter.join().unwrap();
        // The waiter holds the lock on the file that `p` names now, so a third locker waits.
        assert!(second.still_at(&p).unwrap());
        assert!(Lock::try_acquire(&p, Mode::Exclusive).unwrap().is_none());
    }

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
