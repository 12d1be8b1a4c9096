//! Disk space: a full disk said the same way everywhere ("no space left on the device holding
//! `<path>`"), and what a tree uses (`system df`, `system prune`).

use std::io;
use std::path::Path;

/// True for an error that means the filesystem (or the user's quota on it) is full.
pub fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// What to say when a write under `path` found its disk full.
pub fn no_space(path: &Path) -> String {
    format!("no space left on the device holding {}", path.display())
}

/// The OS's own words for ENOSPC, as `io::Error` and `Errno` print them.
const OS_WORDS: [&str; 2] = [
    "No space left on device (os error 28)",
    "ENOSPC: No space left on device",
];

/// `text` (an error message) with the OS's words for a full disk replaced by [`no_space`] of
/// `path`, the directory the failed write was under. `None` when `text` is not about one.
pub fn explain(text: &str, path: &Path) -> Option<String> {
    let words = OS_WORDS.iter().find(|w| text.contains(*w))?;
    Some(text.replace(words, &no_space(path)))
}

/// Disk space a tree uses (allocated blocks; a file with several links counted once; what
/// cannot be read, such as a directory of a box's other ids without search permission, is
/// left out). 0 when `path` does not exist.
pub fn used_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut todo = vec![path.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        total += m.blocks() * 512;
        if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                todo.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_words_become_the_device_and_path() {
        let p = Path::new("/s/images");
        assert_eq!(
            explain("cannot write: No space left on device (os error 28)", p).as_deref(),
            Some("cannot write: no space left on the device holding /s/images")
        );
        assert_eq!(
            explain("cannot write: Permission denied (os error 13)", p),
            None
        );
        assert!(is_full(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(!is_full(&io::Error::from_raw_os_error(libc::EIO)));
    }

    #[test]
    fn used_bytes_counts_a_tree_and_links_once() {
        let t = tempfile::tempdir().unwrap();
        let empty = used_bytes(t.path());
        std::fs::write(t.path().join("a"), vec![1u8; 64 << 10]).unwrap();
        let one = used_bytes(t.path());
        assert!(one >= empty + (64 << 10), "{empty} {one}");
        std::fs::hard_link(t.path().join("a"), t.path().join("b")).unwrap();
        assert_eq!(used_bytes(t.path()), one);
        assert_eq!(used_bytes(&t.path().join("none")), 0);
    }
}
