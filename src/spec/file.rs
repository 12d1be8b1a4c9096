//! A spec file on disk: how much of it foxbox reads, and where its relative paths start.

use std::path::{Path, PathBuf};

use super::paths;

/// The largest spec foxbox reads: a spec is a hand-written file, and anything bigger is a mistake.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

/// Read a spec file's text (a regular file, at most [`MAX_SPEC_BYTES`]).
pub fn read_spec(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SPEC_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(std::io::Error::other("larger than 1 MiB"));
    }
    Ok(text)
}

/// The absolute directory of a spec file: where its relative paths start.
pub fn spec_dir(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new(""));
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(dir)
    };
    paths::normalise(&abs)
}

/// `base_dir` made absolute (against the working directory) and normalised.
pub(crate) fn absolute_dir(base_dir: &Path) -> PathBuf {
    if base_dir.is_absolute() {
        paths::normalise(base_dir)
    } else {
        spec_dir(&base_dir.join("x"))
    }
}
