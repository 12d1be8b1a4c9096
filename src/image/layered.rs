//! An image's files as its box would see them, read straight from its overlay-form layer
//! directories (top layer first: a whiteout, a 0/0 character device, hides a path below; an
//! opaque directory hides everything below it; a non-directory hides what is under its path).
//!
//! For `copy` steps with `from` (what a path is, and the entries of a directory) and for
//! `merge` (what each image changes above a base). Symlinks are never followed: a path is
//! looked up in the layers as written.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Whether `m` is an overlay whiteout.
pub fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Where `comps` (a path in the image, as components) is, in the layers `layers` (bottom
/// first): the host path in the top-most layer that has it, or `None` when the image does not
/// have it.
pub fn lookup(layers: &[PathBuf], comps: &[&str]) -> Option<PathBuf> {
    for layer in layers.iter().rev() {
        let mut p = layer.clone();
        let mut hides_below = false;
        for (k, c) in comps.iter().enumerate() {
            p.push(c);
            let Ok(m) = fs::symlink_metadata(&p) else {
                break;
            };
            if is_whiteout(&m) {
                return None;
            }
            if k + 1 == comps.len() {
                return Some(p);
            }
            if !m.is_dir() {
                // A file or symlink here: nothing lies under its path in this image.
                return None;
            }
            if super::xattr::is_opaque(&p) {
                hides_below = true;
            }
        }
        if hides_below {
            return None;
        }
    }
    // The root itself.
    comps.is_empty().then(|| layers.last().cloned()).flatten()
}

/// The entries of the directory `comps` as the image shows it: name → host path of the
/// top-most layer's entry, whiteouts and hidden entries left out.
pub fn list_dir(layers: &[PathBuf], comps: &[&str]) -> io::Result<BTreeMap<String, PathBuf>> {
    let mut seen: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    'layers: for layer in layers.iter().rev() {
        let mut p = layer.clone();
        let mut opaque = false;
        for c in comps {
            p.push(c);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => opaque |= super::xattr::is_opaque(&p),
                // A whiteout or a non-directory: the directory ends here, lower layers are
                // hidden.
                Ok(_) => break 'layers,
                Err(_) => continue 'layers,
            }
        }
        for e in fs::read_dir(&p)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if seen.contains_key(&name) {
                continue;
            }
            let m = fs::symlink_metadata(e.path())?;
            seen.insert(name, (!is_whiteout(&m)).then(|| e.path()));
        }
        if opaque {
            break;
        }
    }
    Ok(seen
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// What a path is in a layer, to tell whether two layers change it the same way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    Deleted,
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Link(String),
    /// A regular file (or a fifo): mode, owner, size and a digest of its contents.
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        size: u64,
        sha256: String,
    },
}

/// Every path the layers (bottom first; a stack of one image's layers above a base) change,
/// with what it becomes: the top-most layer's version of each.
pub fn changes(layers: &[PathBuf]) -> io::Result<BTreeMap<String, Change>> {
    let mut out = BTreeMap::new();
    for layer in layers.iter().rev() {
        let mut stack = vec![(layer.clone(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            for e in fs::read_dir(&dir)? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                let path = format!("{rel}/{name}");
                let m = fs::symlink_metadata(e.path())?;
                if m.is_dir() {
                    stack.push((e.path(), path.clone()));
                }
                if out.contains_key(&path) {
                    continue;
                }
                out.insert(path, change_of(&e.path(), &m)?);
            }
        }
    }
    Ok(out)
}

fn change_of(p: &Path, m: &fs::Metadata) -> io::Result<Change> {
    let ft = m.file_type();
    let mode = m.mode() & 0o7777;
    Ok(if is_whiteout(m) {
        Change::Deleted
    } else if ft.is_dir() {
        Change::Dir {
            mode,
            uid: m.uid(),
            gid: m.gid(),
        }
    } else if ft.is_symlink() {
        Change::Link(fs::read_link(p)?.to_string_lossy().into_owned())
    } else {
        let mut h = Sha256::new();
        if ft.is_file() {
            let mut f = fs::File::open(p)?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match io::Read::read(&mut f, &mut buf)? {
                    0 => break,
                    n => h.update(&buf[..n]),
                }
            }
        }
        Change::File {
            mode,
            uid: m.uid(),
            gid: m.gid(),
            size: m.len(),
            sha256: hex::encode(h.finalize()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layers_win_and_opaque_dirs_hide() {
        let t = tempfile::tempdir().unwrap();
        let l0 = t.path().join("0");
        let l1 = t.path().join("1");
        fs::create_dir_all(l0.join("d/sub")).unwrap();
        fs::write(l0.join("d/a"), "a0").unwrap();
        fs::write(l0.join("d/sub/x"), "x").unwrap();
        fs::create_dir_all(l1.join("d")).unwrap();
        fs::write(l1.join("d/a"), "a1").unwrap();
        fs::write(l1.join("d/b"), "b").unwrap();
        let layers = vec![l0.clone(), l1.clone()];
        assert_eq!(lookup(&layers, &["d", "a"]), Some(l1.join("d/a")));
        assert_eq!(
            lookup(&layers, &["d", "sub", "x"]),
            Some(l0.join("d/sub/x"))
        );
        assert_eq!(lookup(&layers, &["d", "nope"]), None);
        let names: Vec<String> = list_dir(&layers, &["d"]).unwrap().into_keys().collect();
        assert_eq!(names, ["a", "b", "sub"]);
        // A file over a directory hides what was under it.
        let l2 = t.path().join("2");
        fs::create_dir_all(&l2).unwrap();
        fs::write(l2.join("d"), "file now").unwrap();
        let layers = vec![l0.clone(), l1.clone(), l2.clone()];
        assert_eq!(lookup(&layers, &["d", "a"]), None);
        assert_eq!(lookup(&layers, &["d"]), Some(l2.join("d")));
        if rustix::fs::setxattr(
            l1.join("d").as_path(),
            crate::image::xattr::OPAQUE,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok()
        {
            let layers = vec![l0.clone(), l1.clone()];
            let names: Vec<String> = list_dir(&layers, &["d"]).unwrap().into_keys().collect();
            assert_eq!(names, ["a", "b"], "the opaque dir hides sub/");
            assert_eq!(lookup(&layers, &["d", "sub", "x"]), None);
        }
        let c = changes(&[l1]).unwrap();
        assert!(matches!(c["/d/a"], Change::File { size: 2, .. }), "{c:?}");
        assert!(matches!(c["/d"], Change::Dir { .. }));
    }
}
