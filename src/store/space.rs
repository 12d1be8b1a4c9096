//! A full disk, said the same way everywhere: "no space left on the device holding <path>".

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
}
