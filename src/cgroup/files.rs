//! Reading and writing cgroupfs files, with errors that name the file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::CgroupError;

/// A directory and every directory below it, parents before children.
pub(crate) fn subtree(root: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let dir = out[i].clone();
        let rd = fs::read_dir(&dir).map_err(|source| CgroupError::Read {
            path: dir.clone(),
            source,
        })?;
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path());
            }
        }
        i += 1;
    }
    Ok(out)
}

pub(crate) fn read_file(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    let text = read_file(path)?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        what: format!("expected a number, got {:?}", text.trim()),
    })
}

/// A `key value` line of a flat-keyed file (memory.events, cpu.stat, memory.oom_control).
pub(crate) fn read_key(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let text = read_file(path)?;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            let v = it.next().unwrap_or("");
            return v.parse().map(Some).map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                what: format!("{key}: expected a number, got {v:?}"),
            });
        }
    }
    Ok(None)
}

/// Write a value with a single write(2): cgroupfs takes each write as one command. The file
/// must exist (cgroupfs cannot create files).
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = fs::OpenOptions::new().write(true).open(path).map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}
