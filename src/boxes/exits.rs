//! Exit codes of boxes removed on exit (`--rm`), kept a while in the runtime directory.
//!
//! A `wait` that found such a box polls its record, and the record is gone moments after the
//! exit is known: without these, `run -d --rm ...; wait NAME` would learn the exit only when
//! its poll happened to fall in that moment. podman keeps removed containers' exit codes too.
//! They are runtime files (a tmpfs where `XDG_RUNTIME_DIR` is one): a reboot forgets them.
//!
//! A detached box's supervisor always keeps its code. A foreground `run --rm` keeps it only
//! when a `wait` asked for it ([`Exits::want`]): its caller already has the code, and a file
//! written after every such run cost the next one's start a tenth (measured in
//! `benches/start.sh`, with the runtime directory on disk).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::store::atomic;

/// How long an exit code stays after its box was removed (podman's retention).
const KEEP: Duration = Duration::from_secs(5 * 60);

/// How often [`Exits::sweep_now_and_then`] sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The exit codes of removed boxes, one file per box id.
pub struct Exits {
    dir: PathBuf,
}

impl Exits {
    /// The exit codes kept under the runtime directory `runtime`.
    pub fn new(runtime: &Path) -> Exits {
        Exits {
            dir: runtime.join("exits"),
        }
    }

    /// Keep box `id`'s exit code; called before its record is removed.
    pub fn record(&self, id: &str, code: i32) -> io::Result<()> {
        self.make_dir()?;
        // Whole or not at all for a reader; a temporary file a crash left is swept as old.
        atomic::write_file(&self.dir.join(id), code.to_string().as_bytes())
            .map_err(|e| io::Error::other(e.to_string()))?;
        let _ = fs::remove_file(self.want_path(id));
        Ok(())
    }

    /// Ask that box `id`'s code be kept even where that is not done for everyone.
    pub fn want(&self, id: &str) -> io::Result<()> {
        self.make_dir()?;
        fs::write(self.want_path(id), b"")
    }

    /// Whether a `wait` asked for box `id`'s code ([`Exits::want`]).
    pub fn wanted(&self, id: &str) -> bool {
        self.want_path(id).exists()
    }

    /// The directory and foxbox's runtime directory, but not what holds that (such as
    /// `XDG_RUNTIME_DIR`): a supervisor that outlives its whole world (a test's, deleted while
    /// its last box ended) must not bring it back.
    fn make_dir(&self) -> io::Result<()> {
        for d in [self.dir.parent(), Some(self.dir.as_path())]
            .into_iter()
            .flatten()
        {
            match fs::create_dir(d) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                r => r?,
            }
        }
        Ok(())
    }

    fn want_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.want"))
    }

    /// The exit code kept for the box whose full id is `id`, or whose id alone starts with it.
    pub fn get(&self, id: &str) -> Option<i32> {
        if id.is_empty() || id.contains('.') || id.contains('/') {
            return None;
        }
        if let Some(code) = self.read(id) {
            return Some(code);
        }
        let mut found = fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.contains('.') && n.starts_with(id));
        match (found.next(), found.next()) {
            (Some(only), None) => self.read(&only),
            _ => None,
        }
    }

    fn read(&self, name: &str) -> Option<i32> {
        fs::read_to_string(self.dir.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// `Exits::sweep` with `KEEP`, at most once a minute: a reaper calls this after every
    /// `run --rm`, beside the next box's start, and a scan of a directory holding the codes
    /// of minutes of such runs is not free.
    pub fn sweep_now_and_then(&self) {
        let marker = self.dir.join(".swept");
        let due = fs::metadata(&marker)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_none_or(|age| age >= SWEEP_EVERY);
        if due && fs::write(&marker, b"").is_ok() {
            self.sweep(KEEP);
        }
    }

    /// Forget codes older than `keep` (and files a writer left half made).
    fn sweep(&self, keep: Duration) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            if e.file_name() == ".swept" {
                continue;
            }
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > keep);
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_by_id_or_unique_prefix_and_swept_when_old() {
        let t = tempfile::tempdir().unwrap();
        let x = Exits::new(t.path());
        assert_eq!(x.get("abc"), None);
        x.record("abc123", 7).unwrap();
        x.record("abd456", 0).unwrap();
        x.record("abc123", 42).unwrap();
        assert_eq!(x.get("abc123"), Some(42));
        assert_eq!(x.get("abc"), Some(42));
        assert_eq!(x.get("abd"), Some(0));
        assert_eq!(x.get("ab"), None, "ambiguous");
        assert_eq!(x.get(""), None);
        assert_eq!(x.get("../x"), None);
        assert!(!x.wanted("abf000"));
        x.want("abf000").unwrap();
        assert!(x.wanted("abf000"));
        assert_eq!(x.get("abf"), None, "asked for, not kept yet");
        x.record("abf000", 2).unwrap();
        assert!(!x.wanted("abf000"), "the request goes once it is met");
        assert_eq!(x.get("abf"), Some(2));
        x.sweep(KEEP);
        assert_eq!(x.get("abc123"), Some(42), "fresh codes stay");
        std::thread::sleep(Duration::from_millis(20));
        x.sweep(Duration::from_millis(10));
        assert_eq!(x.get("abc123"), None);
        assert_eq!(fs::read_dir(t.path().join("exits")).unwrap().count(), 0);

        // foxbox's runtime directory is made when missing, but not what should hold it.
        let fresh = Exits::new(&t.path().join("fresh"));
        fresh.record("abc", 1).unwrap();
        assert_eq!(fresh.get("abc"), Some(1));
        let gone = Exits::new(&t.path().join("gone/foxbox"));
        assert!(gone.record("abc", 1).is_err());
        assert!(gone.want("abc").is_err());
        assert!(!t.path().join("gone").exists());

        // The occasional sweep leaves fresh codes alone, and marks when it ran.
        x.record("abe789", 1).unwrap();
        x.sweep_now_and_then();
        assert_eq!(x.get("abe789"), Some(1));
        assert!(t.path().join("exits/.swept").exists());
    }
}
