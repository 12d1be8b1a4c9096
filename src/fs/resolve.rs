//! Paths inside the box's root, resolved by the kernel as if the root were `/` (openat2 with
//! RESOLVE_IN_ROOT): a symlink in the image such as `/etc -> /host/etc` can never lead a mount
//! out of the new root onto the host.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::sys::mount::{mkdirat, openat, openat2, resolve};

/// What a mount target must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// An O_PATH fd for `path` inside `root`, which must exist.
pub fn open(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let rel = relative(path);
    if rel.as_os_str().is_empty() {
        return openat(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0);
    }
    openat2(
        root,
        &rel,
        libc::O_PATH,
        0,
        resolve::IN_ROOT | resolve::NO_MAGICLINKS,
    )
}

/// An O_PATH fd for `path` inside `root`, creating it (and missing parent directories, mode
/// 0755) when it does not exist: a directory, or an empty file for `Kind::File`.
pub fn ensure(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> io::Result<OwnedFd> {
    match open(root, path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    let rel = relative(path);
    let mut comps: Vec<&std::ffi::OsStr> = rel.iter().collect();
    let Some(last) = comps.pop() else {
        return open(root, path);
    };
    // Each parent is resolved inside the root, then the next name is created under that fd
    // (mkdirat/openat do not follow a symlink in the final component they create).
    let mut dir: OwnedFd = openat(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0)?;
    let mut so_far = PathBuf::new();
    for c in comps {
        so_far.push(c);
        dir = match open(root, &so_far) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                mkdirat(dir.as_fd(), Path::new(c), 0o755)?;
                open(root, &so_far)?
            }
            Err(e) => return Err(e),
        };
    }
    let name = Path::new(last);
    match kind {
        Kind::Dir => mkdirat(dir.as_fd(), name, 0o755)?,
        Kind::File => {
            let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW;
            // Dropped at once: only the file's existence matters.
            drop(openat(dir.as_fd(), name, flags, 0o644)?);
        }
    }
    open(root, path)
}

/// Whether the O_PATH fd refers to a directory.
pub fn is_dir(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let st = nix::sys::stat::fstat(fd).map_err(io::Error::from)?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}
