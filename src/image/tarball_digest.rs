//! The digest of a tarball a spec names by path, remembered as git's index remembers a file's
//! hash: keyed by (device, inode, size, mtime, ctime), so an unchanged file is not read again,
//! while any rewrite is noticed (a write always moves the ctime, which `touch -d` cannot set
//! back).
//!
//! A file changed within the same clock tick as it was hashed could keep all five values, so
//! (as git does with "racily clean" entries) a digest is remembered only for a file whose
//! ctime is safely older than the moment it was hashed; a fresher file is simply hashed again
//! next time. The file is stat'ed before and after hashing: one that changed meanwhile is not
//! remembered either.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::archive;
use crate::store::atomic;

/// How much older than the hashing a file's ctime must be for its digest to be kept: well
/// above any filesystem's timestamp granularity (ext4 and tmpfs take the kernel's coarse
/// clock, a few milliseconds).
const SETTLED: Duration = Duration::from_secs(2);

/// Entries kept at most; the oldest go first.
const MAX_ENTRIES: usize = 64;

/// What identifies a file's contents without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl Stamp {
    pub fn of(m: &fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }

    /// Whether the file's last change is far enough behind `now` for the stamp to be trusted.
    fn settled(&self, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        self.ctime_ns + SETTLED.as_nanos() as i128 <= now_ns
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    digest: String,
    /// When it was hashed (seconds), to drop the oldest first.
    hashed: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    /// By the tarball's path as given (canonical when it can be made so).
    entries: BTreeMap<String, Entry>,
}

/// The tarball's `sha256:` digest, from `cache` (a JSON file) when the file's stamp is the one
/// recorded, else by reading it (and recording it when the file is settled). A cache that
/// cannot be read or written only costs the reading.
pub fn digest(cache: &Path, tarball: &Path) -> std::io::Result<String> {
    let key = fs::canonicalize(tarball)
        .unwrap_or_else(|_| tarball.to_path_buf())
        .to_string_lossy()
        .into_owned();
    let before = Stamp::of(&fs::metadata(tarball)?);
    let mut c: Cache = fs::read(cache)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(e) = c.entries.get(&key) {
        if e.stamp == before {
            return Ok(e.digest.clone());
        }
    }
    let digest = archive::digest_file(tarball)?;
    let now = SystemTime::now();
    let after = fs::metadata(tarball).map(|m| Stamp::of(&m)).ok();
    if after == Some(before) && before.settled(now) {
        let hashed = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        c.entries.insert(
            key,
            Entry {
                stamp: before,
                digest: digest.clone(),
                hashed,
            },
        );
        while c.entries.len() > MAX_ENTRIES {
            let oldest = c
                .entries
                .iter()
                .min_by_key(|(_, e)| e.hashed)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => c.entries.remove(&k),
                None => break,
            };
        }
        if let Err(e) = atomic::write_json(cache, &c) {
            tracing::debug!("cannot remember the tarball's digest: {e}");
        }
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_file_is_not_trusted_a_settled_one_is() {
        let s = Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 0,
            ctime_ns: 10_000_000_000,
        };
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        assert!(!s.settled(at(10)));
        assert!(!s.settled(at(11)));
        assert!(s.settled(at(12)));
    }

    #[test]
    fn hits_misses_and_rewrites() {
        let d = tempfile::tempdir().unwrap();
        let (cache, tar) = (d.path().join("cache.json"), d.path().join("t.tar"));
        fs::write(&tar, b"one").unwrap();
        // Fresh: hashed, not remembered.
        let first = digest(&cache, &tar).unwrap();
        assert_eq!(first, archive::digest_file(&tar).unwrap());
        assert!(!cache.exists());
        // A remembered stamp is believed without reading: a planted digest comes back.
        let stamp = Stamp::of(&fs::metadata(&tar).unwrap());
        let mut c = Cache::default();
        let key = fs::canonicalize(&tar)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        c.entries.insert(
            key,
            Entry {
                stamp,
                digest: "sha256:planted".into(),
                hashed: 0,
            },
        );
        atomic::write_json(&cache, &c).unwrap();
        assert_eq!(digest(&cache, &tar).unwrap(), "sha256:planted");
        // Same size, any other stamp: read again.
        fs::write(&tar, b"two").unwrap();
        assert_eq!(
            digest(&cache, &tar).unwrap(),
            archive::digest_file(&tar).unwrap()
        );
    }
}
