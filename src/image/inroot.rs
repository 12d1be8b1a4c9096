//! Path resolution confined to a directory: every lookup made while unpacking an archive goes
//! through here, so no entry can reach outside the layer it is unpacked into.
//!
//! Two ways in, with the same semantics (those of openat2's `RESOLVE_IN_ROOT`: an absolute
//! symlink restarts at the layer root, `..` at the root stays at the root):
//! - [`Root::open_dir`]: the kernel resolves the whole path with `openat2(RESOLVE_IN_ROOT |
//!   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`; the fast path when the directory exists.
//! - [`Root::make_dir`]: the same walk done here one component at a time with `O_NOFOLLOW`
//!   lookups, creating missing directories, so that an entry under `var/run/` lands in the
//!   layer's `run/` when `var/run -> /run` and `run/` does not exist yet.
//!
//! Only the final component of an entry is then touched, with `*at` calls on the parent's fd
//! that never follow it.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::sys::mount::{self, resolve};

/// The kernel's limit on symlinks followed in one lookup (ELOOP past it).
const MAX_SYMLINKS: usize = 40;

/// A directory that lookups may not leave.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

/// Why a lookup failed: the errno, and for a refused path a reason to show the user.
#[derive(Debug)]
pub enum LookupError {
    /// A component is not a directory (and not a symlink to one).
    NotDir,
    /// More than 40 symlinks on the way.
    Loop,
    Sys(Errno),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NotDir => f.write_str("a parent is not a directory"),
            LookupError::Loop => f.write_str("too many levels of symbolic links"),
            LookupError::Sys(e) => write!(f, "{}", e.desc()),
        }
    }
}

impl From<Errno> for LookupError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::ENOTDIR => LookupError::NotDir,
            Errno::ELOOP => LookupError::Loop,
            e => LookupError::Sys(e),
        }
    }
}

/// A directory by a path whose every component, the last included, is followed in the root.
fn dir_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// One component already known to be a real directory.
fn real_dir_flags() -> OFlag {
    dir_flags() | OFlag::O_NOFOLLOW
}

/// The confinement of every whole-path lookup here.
const IN_ROOT: u64 = resolve::IN_ROOT | resolve::NO_MAGICLINKS | resolve::NO_XDEV;

/// Join components with `/` for a kernel lookup.
pub fn join(comps: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(comps.iter().map(|c| c.len() + 1).sum());
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(c);
    }
    v
}

impl Root {
    /// Open `dir` (which must be a real directory, not a symlink) as a root.
    pub fn open(dir: &Path) -> Result<Root, Errno> {
        let fd = nix::fcntl::open(dir, real_dir_flags(), Mode::empty())?;
        Ok(Root { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// An `O_PATH` fd of the existing directory at `comps` (empty: the root itself).
    pub fn open_dir(&self, comps: &[&[u8]]) -> Result<OwnedFd, LookupError> {
        self.open_in_root(comps, dir_flags())
    }

    /// Open `comps` resolved inside the root with `flags` (O_NOFOLLOW applies to the last
    /// component only).
    pub fn open_in_root(&self, comps: &[&[u8]], flags: OFlag) -> Result<OwnedFd, LookupError> {
        let path = if comps.is_empty() {
            b".".to_vec()
        } else {
            join(comps)
        };
        mount::openat2(
            self.fd.as_fd(),
            Path::new(OsStr::from_bytes(&path)),
            flags.bits(),
            0,
            IN_ROOT,
        )
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)).into())
    }

    /// The directory at `comps`, created (mode 0755) with any missing parents. Symlinks on the
    /// way are followed inside the root, dangling ones included: their target is created.
    pub fn make_dir(&self, comps: &[&[u8]]) -> Result<OwnedFd, LookupError> {
        match self.open_dir(comps) {
            Err(LookupError::Sys(Errno::ENOENT)) => {}
            other => return other,
        }
        // The slow walk: a stack of real directories from the root down, never a symlink.
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut todo: Vec<Vec<u8>> = comps.iter().rev().map(|c| c.to_vec()).collect();
        let mut links = 0usize;
        while let Some(comp) = todo.pop() {
            let cur = stack.last().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
            match comp.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let name = comp.as_slice();
            match fstatat(cur, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
                    if kind == SFlag::S_IFDIR {
                        let fd = openat(cur, name, real_dir_flags(), Mode::empty())?;
                        stack.push(fd);
                    } else if kind == SFlag::S_IFLNK {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(LookupError::Loop);
                        }
                        let target = readlinkat(cur, name)?;
                        let target = target.as_bytes();
                        if target.first() == Some(&b'/') {
                            stack.clear();
                        }
                        for c in target.split(|b| *b == b'/').rev() {
                            todo.push(c.to_vec());
                        }
                    } else {
                        return Err(LookupError::NotDir);
                    }
                }
                Err(Errno::ENOENT) => {
                    match mkdirat(cur, name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    let fd = openat(cur, name, real_dir_flags(), Mode::empty())?;
                    stack.push(fd);
                }
                Err(e) => return Err(e.into()),
            }
        }
        match stack.pop() {
            Some(fd) => Ok(fd),
            None => Ok(self.open_dir(&[])?),
        }
    }
}

/// What is at `name` in `dir`, not following a symlink; `None` when nothing is.
pub fn kind_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<SFlag>, Errno> {
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remove whatever is at `name` in `dir` (a whole tree for a directory), never following a
/// symlink. Nothing there is not an error.
pub fn remove_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    match kind_at(dir, name)? {
        None => Ok(()),
        Some(SFlag::S_IFDIR) => {
            empty_dir_at(dir, name)?;
            unlinkat(dir, name, UnlinkatFlags::RemoveDir)
        }
        Some(_) => match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
            Err(Errno::ENOENT) => Ok(()),
            other => other,
        },
    }
}

/// Remove everything inside the directory `name` in `dir`, keeping the directory.
pub fn empty_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    empty_dir(fd)
}

/// Remove everything inside the open directory `fd` (depth first, iterative on the heap so a
/// deep tree cannot overflow the stack).
pub fn empty_dir(fd: OwnedFd) -> Result<(), Errno> {
    // Each frame: the directory's fd, and the name it has in its parent (to rmdir it after).
    let mut frames: Vec<(OwnedFd, Option<Vec<u8>>)> = vec![(fd, None)];
    while let Some((dfd, _)) = frames.last() {
        let mut subdir: Option<Vec<u8>> = None;
        let names = list_dir(dfd.as_fd())?;
        for (name, is_dir) in names {
            if is_dir {
                subdir = Some(name);
                break;
            }
            match unlinkat(dfd.as_fd(), name.as_slice(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                // A name listed as a non-directory that is one after all (d_type lied).
                Err(Errno::EISDIR) => {
                    subdir = Some(name);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        match subdir {
            Some(name) => {
                let child = openat(
                    dfd.as_fd(),
                    name.as_slice(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                frames.push((child, Some(name)));
            }
            None => {
                // This directory is empty now: remove it from its parent (the root frame stays).
                let Some((done, name)) = frames.pop() else {
                    break;
                };
                drop(done);
                match (name, frames.last()) {
                    (Some(name), Some((parent, _))) => {
                        match unlinkat(parent.as_fd(), name.as_slice(), UnlinkatFlags::RemoveDir) {
                            Ok(()) | Err(Errno::ENOENT) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

/// The names in a directory (without `.` and `..`), each with whether it is a directory.
pub fn list_dir(dir: BorrowedFd<'_>) -> Result<Vec<(Vec<u8>, bool)>, Errno> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = match e.file_type() {
            Some(nix::dir::Type::Directory) => true,
            Some(_) => false,
            None => kind_at(dir, name)? == Some(SFlag::S_IFDIR),
        };
        out.push((name.to_vec(), is_dir));
    }
    Ok(out)
}

/// Remove a directory tree by path without following symlinks inside it.
pub fn remove_tree(path: &Path) -> Result<(), Errno> {
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => return Err(Errno::EINVAL),
    };
    let pfd = nix::fcntl::open(
        if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        },
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    remove_at(pfd.as_fd(), OsStr::as_bytes(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn make_dir_follows_absolute_symlinks_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root_dir = t.path().join("root");
        fs::create_dir_all(root_dir.join("var")).unwrap();
        symlink("/run", root_dir.join("var/run")).unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        symlink(&outside, root_dir.join("esc")).unwrap();
        symlink("../../../..", root_dir.join("up")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        root.make_dir(&[b"var", b"run", b"lock"]).unwrap();
        assert!(root_dir.join("run/lock").is_dir());
        root.make_dir(&[b"esc", b"x"]).unwrap();
        assert!(root_dir
            .join(outside.strip_prefix("/").unwrap())
            .join("x")
            .is_dir());
        root.make_dir(&[b"up", b"y"]).unwrap();
        assert!(root_dir.join("y").is_dir());
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn symlink_loops_and_files_in_the_way_are_errors() {
        let t = tempfile::tempdir().unwrap();
        symlink("b", t.path().join("a")).unwrap();
        symlink("a", t.path().join("b")).unwrap();
        fs::write(t.path().join("f"), b"").unwrap();
        let root = Root::open(t.path()).unwrap();
        assert!(matches!(
            root.make_dir(&[b"a", b"x"]),
            Err(LookupError::Loop)
        ));
        assert!(matches!(
            root.make_dir(&[b"f", b"x"]),
            Err(LookupError::NotDir)
        ));
    }

    #[test]
    fn remove_at_removes_trees_without_following_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let keep = t.path().join("keep");
        fs::create_dir(&keep).unwrap();
        fs::write(keep.join("k"), b"").unwrap();
        let doomed = t.path().join("doomed");
        fs::create_dir_all(doomed.join("a/b/c")).unwrap();
        fs::write(doomed.join("a/b/c/f"), b"").unwrap();
        symlink(&keep, doomed.join("a/link")).unwrap();
        remove_tree(&doomed).unwrap();
        assert!(!doomed.exists());
        assert!(keep.join("k").exists());
    }
}
