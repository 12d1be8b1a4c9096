//! The mounts of a container that shares the runtime's mount namespace (a config without a
//! `mount` namespace, see `exec::Launch::host_mounts`): its /proc, /dev, /sys, binds and
//! masks are made in the runtime's namespace, below its root bound onto itself, and stay there
//! when it ends. `delete` unmounts them, and so does a `create` that fails, so that none is
//! left on the host.
//!
//! Which mounts are the container's comes from the runtime's /proc/self/mountinfo: the tree
//! below the container's root mount (recorded at `create`), or, when `create` fails before
//! that is known, every mount at or below the root directory that was not there before it
//! began. Each is unmounted deepest first, through an fd opened below the root directory
//! without following symlinks and checked to be that very mount: the container's root user
//! can change its files while it runs, and no path it could redirect is handed to umount.

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OciError;
use crate::sys::mount::{self, resolve};
use crate::sys::mountinfo::{self, Entry};

const SELF: &str = "/proc/self/mountinfo";

/// What `state.json` records of such a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMounts {
    /// The container's root directory (canonical: as mountinfo shows it).
    pub rootfs: PathBuf,
    /// The id of its root mount, the bind of `rootfs` onto itself.
    pub root_mount: u64,
}

fn read(path: &str) -> Result<Vec<Entry>, OciError> {
    mountinfo::read(Path::new(path)).map_err(OciError::io(format!("read {path}")))
}

/// The ids of the runtime's mounts, taken before the container's set-up process mounts
/// anything.
pub fn snapshot() -> Result<BTreeSet<u64>, OciError> {
    Ok(read(SELF)?.into_iter().map(|e| e.id).collect())
}

/// The container's root mount, once its set-up process (`pid`) has chrooted: the mount at `/`
/// of `pid`'s mountinfo, which lists only the mounts below its root.
pub fn root_of(pid: i32, rootfs: &Path) -> Result<HostMounts, OciError> {
    let theirs = read(&format!("/proc/{pid}/mountinfo"))?;
    let ids: BTreeSet<u64> = theirs.iter().map(|e| e.id).collect();
    let root = theirs
        .iter()
        .find(|e| e.mount_point == Path::new("/") && !ids.contains(&e.parent))
        .ok_or_else(|| OciError::Io {
            what: format!("the root mount of the container's process {pid}"),
            source: std::io::Error::other("not in its mountinfo"),
        })?;
    Ok(HostMounts {
        rootfs: rootfs.to_path_buf(),
        root_mount: root.id,
    })
}

/// `delete`: unmount the container's root mount and every mount below it.
pub fn remove(h: &HostMounts) -> Result<(), OciError> {
    let all = read(SELF)?;
    // Gone already, or the id now names another mount: nothing of the container's is left.
    if !all
        .iter()
        .any(|e| e.id == h.root_mount && e.mount_point == h.rootfs)
    {
        return Ok(());
    }
    let mut tree: BTreeSet<u64> = BTreeSet::from([h.root_mount]);
    // Parents come before their children in mountinfo unless a mount was moved: repeat until
    // nothing is added.
    loop {
        let before = tree.len();
        for e in &all {
            if tree.contains(&e.parent) {
                tree.insert(e.id);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    let set = all.into_iter().filter(|e| tree.contains(&e.id)).collect();
    unmount(set, &h.rootfs)
}

/// A failed `create`: unmount what appeared at or below `rootfs` since `before`.
pub fn remove_new(before: &BTreeSet<u64>, rootfs: &Path) -> Result<(), OciError> {
    let set = read(SELF)?
        .into_iter()
        .filter(|e| !before.contains(&e.id) && e.mount_point.starts_with(rootfs))
        .collect();
    unmount(set, rootfs)
}

/// Unmount `set` (mounts of the runtime's namespace), children before their parents; an error
/// when any is left.
fn unmount(set: Vec<Entry>, rootfs: &Path) -> Result<(), OciError> {
    let ids: BTreeSet<u64> = set.iter().map(|e| e.id).collect();
    let depth = |e: &Entry| {
        let mut d = 0;
        let mut parent = e.parent;
        while let Some(p) = set.iter().find(|x| x.id == parent) {
            d += 1;
            parent = p.parent;
            if d > set.len() {
                break;
            }
        }
        d
    };
    let mut order: Vec<(usize, &Entry)> = set.iter().map(|e| (depth(e), e)).collect();
    // Deepest first; of one depth, the later mount first (it may sit on top of the other).
    order.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.id.cmp(&a.1.id)));
    for (_, e) in &order {
        // Never anything outside the container's root.
        let Ok(rel) = e.mount_point.strip_prefix(rootfs) else {
            continue;
        };
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        // Opened again each time: the top of the root may be one of the mounts detached.
        let fd = mount::openat2(
            mount::at_cwd(),
            rootfs,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            0,
        )
        .and_then(|top| {
            mount::openat2(
                top.as_fd(),
                rel,
                libc::O_PATH,
                0,
                resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS,
            )
        });
        // Not reachable at its path (covered by a later mount): detached with its parent.
        let Ok(fd) = fd else { continue };
        if mountinfo::mount_id_of(fd.as_fd()).ok() == Some(e.id) {
            let _ = mount::umount_fd_detach(fd.as_fd());
        }
    }
    let left: Vec<String> = read(SELF)?
        .into_iter()
        .filter(|e| ids.contains(&e.id))
        .map(|e| e.mount_point.display().to_string())
        .collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(OciError::Io {
            what: format!("unmount the container's mounts below {}", rootfs.display()),
            source: std::io::Error::other(format!("still mounted: {}", left.join(", "))),
        })
    }
}
