//! INTERIM rootfs source until the image store lands (then this file is deleted): an image
//! argument that is a directory is the single lower layer; a .tar/.tar.gz is unpacked once with
//! `tar` into `<data root>/interim/<sha256 of path+mtime>`. The upper layer is ephemeral.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::{BoxRootfs, Layers};

pub fn rootfs(image: &Path, data_root: &Path) -> Result<BoxRootfs, String> {
    let base = data_root.join("interim");
    let mountpoint = base.join("mnt");
    fs::create_dir_all(&mountpoint).map_err(|e| format!("create {}: {e}", mountpoint.display()))?;
    let meta = fs::metadata(image).map_err(|e| format!("image {}: {e}", image.display()))?;
    let lower = if meta.is_dir() {
        image.to_path_buf()
    } else {
        unpack(image, &meta, &base)?
    };
    Ok(BoxRootfs {
        layers: Layers::Overlay {
            lower: vec![lower],
            upper: None,
        },
        mountpoint,
    })
}

fn unpack(tar: &Path, meta: &fs::Metadata, base: &Path) -> Result<PathBuf, String> {
    let mut h = Sha256::new();
    h.update(tar.as_os_str().as_encoded_bytes());
    h.update(meta.mtime().to_le_bytes());
    h.update(meta.mtime_nsec().to_le_bytes());
    let dir = base.join(hex::encode(h.finalize()));
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = base.join(format!(".tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let out = Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(&tmp)
        .arg("--same-permissions")
        .output()
        .map_err(|e| format!("run tar: {e}"))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(format!(
            "unpack {}: {}",
            tar.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    match fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another run unpacked it first.
        Err(_) if dir.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(format!("rename into {}: {e}", dir.display())),
    }
}
