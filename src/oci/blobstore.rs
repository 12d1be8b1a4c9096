//! Where pulled blobs go: a small trait the image store implements, and a plain directory
//! implementation of it (`<dir>/sha256/<hex>`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::digest::{Digest, VerifyError, VerifyingReader};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("reading the content of {digest}: {source}")]
    Read { digest: Digest, source: io::Error },
    #[error("blob {0} is not in the store")]
    Missing(Digest),
}

/// Content-addressed storage for blobs. `put` must make a blob visible only once it was
/// verified against `digest` (and `size` when given), atomically, so that a killed writer
/// leaves nothing a reader could mistake for content.
pub trait BlobStore: Sync {
    fn has(&self, digest: &Digest) -> bool;
    /// Stream `reader` into the store; returns the blob's path.
    fn put(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<PathBuf, BlobError>;
    /// The stored blob's path, when present.
    fn path(&self, digest: &Digest) -> Option<PathBuf>;

    fn open(&self, digest: &Digest) -> Result<File, BlobError> {
        let p = self
            .path(digest)
            .ok_or_else(|| BlobError::Missing(digest.clone()))?;
        File::open(&p).map_err(|source| BlobError::Io {
            what: "opening",
            path: p,
            source,
        })
    }

    /// A small blob (manifest, config) read whole, size-limited.
    fn read_small(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, BlobError> {
        let f = self.open(digest)?;
        let mut buf = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|source| BlobError::Read {
                digest: digest.clone(),
                source,
            })?;
        if buf.len() as u64 > limit {
            return Err(BlobError::Read {
                digest: digest.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, "larger than allowed"),
            });
        }
        Ok(buf)
    }
}

/// Blobs as files `<dir>/<alg>/<hex>`, written through an anonymous `O_TMPFILE` that is linked
/// into place only after verification and fsync: a killed pull leaves no file at all.
#[derive(Debug, Clone)]
pub struct DirBlobStore {
    dir: PathBuf,
}

impl DirBlobStore {
    pub fn new(dir: impl Into<PathBuf>) -> Result<DirBlobStore, BlobError> {
        let dir = dir.into();
        for alg in ["sha256", "sha512"] {
            let p = dir.join(alg);
            fs::create_dir_all(&p).map_err(|source| BlobError::Io {
                what: "creating",
                path: p,
                source,
            })?;
        }
        let store = DirBlobStore { dir };
        store.sweep_named_temps();
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.algorithm().name()).join(digest.hex())
    }

    /// Named temporaries exist only where O_TMPFILE is not supported; they carry the writer's
    /// pid, and those of writers that are gone are removed.
    fn sweep_named_temps(&self) {
        let tmp = self.dir.join(".tmp");
        let Ok(entries) = fs::read_dir(&tmp) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            if pid.is_none_or(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    fn io(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BlobError {
        let path = path.to_path_buf();
        move |source| BlobError::Io { what, path, source }
    }
}

/// A temporary file that is removed unless it was linked into place.
enum Temp {
    Anonymous(File),
    Named(File, PathBuf),
}

impl Temp {
    fn create(dir: &Path, alg_dir: &Path) -> Result<Temp, BlobError> {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(alg_dir)
        {
            Ok(f) => return Ok(Temp::Anonymous(f)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {}
            Err(e) => return Err(DirBlobStore::io("creating a temporary file in", alg_dir)(e)),
        }
        let tmp = dir.join(".tmp");
        fs::create_dir_all(&tmp).map_err(DirBlobStore::io("creating", &tmp))?;
        let mut rnd = [0u8; 8];
        File::open("/dev/urandom")
            .and_then(|mut u| u.read_exact(&mut rnd))
            .map_err(DirBlobStore::io("reading", Path::new("/dev/urandom")))?;
        let p = tmp.join(format!("{}-{}", std::process::id(), hex::encode(rnd)));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&p)
            .map_err(DirBlobStore::io("creating", &p))?;
        Ok(Temp::Named(f, p))
    }

    fn file(&mut self) -> &mut File {
        match self {
            Temp::Anonymous(f) | Temp::Named(f, _) => f,
        }
    }

    /// Give the verified content its name; an existing blob of that name is the same content.
    fn link(self, dst: &Path) -> Result<(), BlobError> {
        match &self {
            Temp::Anonymous(f) => {
                let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(f));
                match nix::unistd::linkat(
                    nix::fcntl::AT_FDCWD,
                    proc_path.as_str(),
                    nix::fcntl::AT_FDCWD,
                    dst,
                    nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
                    Err(e) => Err(DirBlobStore::io("linking", dst)(e.into())),
                }
            }
            Temp::Named(_, p) => fs::rename(p, dst).map_err(DirBlobStore::io("renaming to", dst)),
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Temp::Named(_, p) = self {
            // After a successful rename this finds nothing, which is fine.
            let _ = fs::remove_file(p);
        }
    }
}

impl BlobStore for DirBlobStore {
    fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    fn path(&self, digest: &Digest) -> Option<PathBuf> {
        let p = self.blob_path(digest);
        p.is_file().then_some(p)
    }

    fn put(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<PathBuf, BlobError> {
        let dst = self.blob_path(digest);
        let alg_dir = self.dir.join(digest.algorithm().name());
        let mut temp = Temp::create(&self.dir, &alg_dir)?;
        let mut v = VerifyingReader::new(reader, digest.clone(), size);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match v.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    // A size overrun surfaces as an I/O error carrying the VerifyError.
                    if let Some(ve) = source
                        .get_ref()
                        .and_then(|i| i.downcast_ref::<VerifyError>())
                    {
                        return Err(ve.clone().into());
                    }
                    return Err(BlobError::Read {
                        digest: digest.clone(),
                        source,
                    });
                }
            };
            temp.file()
                .write_all(&buf[..n])
                .map_err(Self::io("writing a temporary file for", &dst))?;
        }
        v.finish()?;
        temp.file()
            .sync_all()
            .map_err(Self::io("syncing a temporary file for", &dst))?;
        temp.link(&dst)?;
        if let Ok(d) = File::open(&alg_dir) {
            let _ = d.sync_all();
        }
        Ok(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_verifies_and_links_atomically() {
        let t = tempfile::tempdir().unwrap();
        let s = DirBlobStore::new(t.path().join("blobs")).unwrap();
        let data = b"some layer bytes".to_vec();
        let d = Digest::sha256_of(&data);
        assert!(!s.has(&d));
        let p = s.put(&d, Some(data.len() as u64), &mut &data[..]).unwrap();
        assert_eq!(fs::read(&p).unwrap(), data);
        assert!(s.has(&d));
        // Again: already there, still fine.
        s.put(&d, None, &mut &data[..]).unwrap();

        let other = Digest::sha256_of(b"other");
        assert!(s.put(&other, None, &mut &data[..]).is_err());
        assert!(!s.has(&other));
        assert!(s.put(&other, Some(3), &mut &b"other"[..]).is_err());
        assert!(!s.has(&other));
        let names: Vec<_> = fs::read_dir(t.path().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(s.read_small(&d, 100).unwrap(), data);
        assert!(s.read_small(&d, 3).is_err());
    }
}
