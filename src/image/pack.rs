//! The one layer packer: a layer directory in overlay form (as imports unpack and build steps
//! leave it) as an OCI layer tar, for `image save` (gzip) and build steps (plain tar).
//!
//! Entries go in name order, depth first; owners (as this namespace sees them), modes, times,
//! extended attributes (not overlay's own), hard links and symlinks as they are; overlay
//! whiteouts (0/0 character devices) and opaque directories in OCI form. Sockets and other
//! devices are not image content. With a clamp (`SOURCE_DATE_EPOCH`) no time is later than
//! it: the same files give the same tar whenever and wherever they were made.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// A packed layer (serializable: it comes back from a fork as root of the store's user
/// namespace).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Packed {
    /// The digest of the file written (the blob's).
    pub digest: String,
    /// The digest of the uncompressed tar (the config's diff id; the digest when not gzipped).
    pub diff_id: String,
    /// The size of the file written.
    pub size: u64,
    /// The bytes of file content in it (an image's size as `image ls` counts it).
    pub content: u64,
}

/// Pack `dir` at `out`, gzipped or not, with times clamped to `clamp`. The file is synced.
pub(crate) fn pack_dir(
    dir: &Path,
    out: &Path,
    gzip: bool,
    clamp: Option<u64>,
) -> Result<Packed, String> {
    let err = |e: io::Error| format!("cannot pack the layer {}: {e}", dir.display());
    let file = File::create(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let file = Hashing::new(io::BufWriter::new(file));
    if gzip {
        let gz = flate2::GzBuilder::new().write(file, flate2::Compression::new(6));
        let mut b = tar::Builder::new(Hashing::new(gz));
        let content = append_tree(&mut b, dir, clamp).map_err(err)?;
        let tar = b.into_inner().map_err(err)?;
        let diff_id = tar.digest_so_far();
        let file = tar.inner.finish().map_err(err)?;
        finish(file, diff_id, content).map_err(err)
    } else {
        let mut b = tar::Builder::new(file);
        let content = append_tree(&mut b, dir, clamp).map_err(err)?;
        let file = b.into_inner().map_err(err)?;
        let diff_id = file.digest_so_far();
        finish(file, diff_id, content).map_err(err)
    }
}

/// Gzip the tar read from `tar` into `out` as `pack_dir` does (same level, no name or time in
/// the header: the same tar gives the same blob). For a push in Docker's format, whose layers
/// are gzipped: a build step's plain tar or a zstd layer is compressed again.
pub(crate) fn gzip_tar(mut tar: impl io::Read, out: &Path) -> io::Result<Packed> {
    let file = Hashing::new(io::BufWriter::new(File::create(out)?));
    let gz = flate2::GzBuilder::new().write(file, flate2::Compression::new(6));
    let mut w = Hashing::new(gz);
    io::copy(&mut tar, &mut w)?;
    let diff_id = w.digest_so_far();
    let file = w.inner.finish()?;
    finish(file, diff_id, 0)
}

fn finish(
    mut file: Hashing<io::BufWriter<File>>,
    diff_id: String,
    content: u64,
) -> io::Result<Packed> {
    file.flush()?;
    let size = file.len;
    let digest = file.digest_so_far();
    let f = file.inner.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(Packed {
        digest,
        diff_id,
        size,
        content,
    })
}

/// Append the tree under `dir` to `b`; returns the bytes of file content appended.
fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    clamp: Option<u64>,
) -> io::Result<u64> {
    b.follow_symlinks(false);
    let mut bytes = 0u64;
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<(std::ffi::OsString, fs::Metadata)> = Vec::new();
        for e in fs::read_dir(dir.join(&rel))? {
            let e = e?;
            let m = fs::symlink_metadata(e.path())?;
            entries.push((e.file_name(), m));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (name, m) in entries {
            let r = rel.join(&name);
            let full = dir.join(&r);
            let ft = m.file_type();
            let mut h = tar::Header::new_gnu();
            h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
            clamp_time(&mut h, clamp);
            h.set_size(0);
            if ft.is_char_device() && m.rdev() == 0 {
                let mut wh = std::ffi::OsString::from(".wh.");
                wh.push(&name);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_uid(0);
                h.set_gid(0);
                b.append_data(&mut h, rel.join(wh), io::empty())?;
                continue;
            }
            let attrs = xattrs(&full)?;
            if !attrs.is_empty() {
                let pax: Vec<(String, &[u8])> = attrs
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                    .collect();
                b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))?;
            }
            if ft.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, &r, io::empty())?;
                if crate::image::xattr::is_opaque(&full) {
                    let mut o = tar::Header::new_gnu();
                    o.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
                    clamp_time(&mut o, clamp);
                    o.set_entry_type(tar::EntryType::Regular);
                    o.set_size(0);
                    o.set_mode(0o644);
                    b.append_data(&mut o, r.join(".wh..wh..opq"), io::empty())?;
                }
                subdirs.push(r);
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    if let Some(first) = links.get(&(m.dev(), m.ino())) {
                        h.set_entry_type(tar::EntryType::Link);
                        b.append_link(&mut h, &r, first)?;
                        continue;
                    }
                    links.insert((m.dev(), m.ino()), r.clone());
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(m.len());
                let f = File::open(&full)?;
                b.append_data(&mut h, &r, f)?;
                bytes += m.len();
            } else if ft.is_symlink() {
                let target = fs::read_link(&full)?;
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, &r, target)?;
            } else if ft.is_fifo() {
                h.set_entry_type(tar::EntryType::Fifo);
                b.append_data(&mut h, &r, io::empty())?;
            }
            // Sockets and device nodes are not image content (imports skip devices).
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(bytes)
}

fn clamp_time(h: &mut tar::Header, clamp: Option<u64>) {
    if let (Some(c), Ok(t)) = (clamp, h.mtime()) {
        if t > c {
            h.set_mtime(c);
        }
    }
}

/// A writer that hashes and counts what goes through it.
pub(crate) struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W> Hashing<W> {
    pub(crate) fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// `sha256:<hex>` of what went through so far.
    pub(crate) fn digest_so_far(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Overlay's own bookkeeping, never image content.
fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("user.overlay.") || name.starts_with("trusted.overlay.")
}

/// The extended attributes of `path` (not followed) that belong in a layer.
fn xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for raw in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let Ok(name) = std::str::from_utf8(raw) else {
            continue;
        };
        if is_overlay_xattr(name) {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        let len = rustix::fs::lgetxattr(path, name, &mut value[..])?;
        value.truncate(len);
        out.push((name.to_string(), value));
    }
    out.sort();
    Ok(out)
}
