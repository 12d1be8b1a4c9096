//! Mounts: the classic mount(2) family and the fd-based API (open_tree, move_mount,
//! mount_setattr, fsopen/fsconfig/fsmount, openat2), each wrapped once.
//!
//! The fd-based calls let the executor attach a mount onto a target it resolved safely inside
//! the box's root (an `O_PATH` fd), instead of handing the kernel a path that a symlink in the
//! image could redirect to the host.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use nix::mount::MsFlags;

pub(crate) fn cstr(p: impl AsRef<std::ffi::OsStr>) -> io::Result<CString> {
    CString::new(p.as_ref().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = cvt(ret)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The current directory as a "descriptor" for the *at calls.
pub fn at_cwd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is valid for the *at calls for the whole life of the process.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// mount(2) with paths.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> io::Result<()> {
    nix::mount::mount(source, target, fstype, flags, data).map_err(io::Error::from)
}

/// Detach a mount lazily (umount2 with MNT_DETACH).
pub fn umount_detach(target: &Path) -> io::Result<()> {
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)
}

/// Detach (MNT_DETACH) the mount whose root `fd` (an `O_PATH` fd) refers to, through its
/// /proc/self/fd link: no path is looked up again, so nothing swapped in the meantime (a
/// symlink) can redirect the unmount. EINVAL when `fd` is not a mount's root.
pub fn umount_fd_detach(fd: BorrowedFd<'_>) -> io::Result<()> {
    umount_detach(Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())))
}

/// pivot_root(2).
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    nix::unistd::pivot_root(new_root, put_old).map_err(io::Error::from)
}

/// Mount attributes for [`set_attr`] and `fs_mount`.
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
}

/// A copy of the mount tree at `path` (recursive), detached, ready for [`move_to`].
pub fn clone_tree(dirfd: Option<BorrowedFd<'_>>, path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let dfd = dirfd.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32;
    // SAFETY: open_tree reads a NUL-terminated path and returns a new fd or -1.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, dfd, c.as_ptr(), flags) })
}

/// A copy of the mount tree `fd` refers to (a detached mount or a mount's root dir).
pub fn clone_tree_fd(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = libc::OPEN_TREE_CLONE
        | libc::OPEN_TREE_CLOEXEC
        | libc::AT_RECURSIVE as u32
        | libc::AT_EMPTY_PATH as u32;
    // SAFETY: as in clone_tree, with an empty path relative to a valid fd.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) })
}

/// Attach the detached mount `tree` onto the file or directory that `target` refers to.
pub fn move_to(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both fds are valid for the call; empty paths select the fds themselves.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// Set (and clear) mount attributes on the mount `fd` refers to, optionally recursively.
pub fn set_attr_fd(fd: BorrowedFd<'_>, set: u64, clear: u64, recursive: bool) -> io::Result<()> {
    set_attr_raw(
        fd.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH,
        set,
        clear,
        recursive,
    )
}

/// Set mount attributes on the mount at `path`.
pub fn set_attr(path: &Path, set: u64, clear: u64, recursive: bool) -> io::Result<()> {
    let c = cstr(path)?;
    set_attr_raw(libc::AT_FDCWD, &c, 0, set, clear, recursive)
}

fn set_attr_raw(
    dfd: RawFd,
    path: &CStr,
    flags: libc::c_int,
    set: u64,
    clear: u64,
    recursive: bool,
) -> io::Result<()> {
    let mut a = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = flags | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `a` is a valid mount_attr of the size we pass; path is NUL-terminated.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dfd,
            path.as_ptr(),
            flags,
            &mut a as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
    .map(drop)
}

/// A filesystem context being configured (fsopen); [`FsContext::mount`] makes a detached mount.
pub struct FsContext(OwnedFd);

impl FsContext {
    pub fn open(fstype: &str) -> io::Result<FsContext> {
        let c = cstr(fstype)?;
        // SAFETY: fsopen reads a NUL-terminated name and returns a new fd or -1.
        owned(unsafe { libc::syscall(libc::SYS_fsopen, c.as_ptr(), libc::FSOPEN_CLOEXEC) })
            .map(FsContext)
    }

    /// `key=value`.
    pub fn set(&self, key: &str, value: &str) -> io::Result<()> {
        let k = cstr(key)?;
        let v = cstr(value)?;
        self.config(libc::FSCONFIG_SET_STRING, k.as_ptr(), v.as_ptr().cast())
    }

    /// A flag option (`ro`, `userxattr`, ...).
    pub fn flag(&self, key: &str) -> io::Result<()> {
        let k = cstr(key)?;
        self.config(libc::FSCONFIG_SET_FLAG, k.as_ptr(), std::ptr::null())
    }

    fn config(
        &self,
        cmd: libc::c_uint,
        key: *const libc::c_char,
        value: *const libc::c_void,
    ) -> io::Result<()> {
        // SAFETY: key/value are NUL-terminated strings (or null where the command takes none)
        // that outlive the call.
        cvt(unsafe { libc::syscall(libc::SYS_fsconfig, self.0.as_raw_fd(), cmd, key, value, 0) })
            .map(drop)
    }

    /// Create the superblock and a detached mount of it with the given attributes.
    pub fn mount(&self, attrs: u64) -> io::Result<OwnedFd> {
        self.config(
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null(),
            std::ptr::null(),
        )?;
        // SAFETY: fsmount on a created context returns a new fd or -1.
        owned(unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                self.0.as_raw_fd(),
                libc::FSMOUNT_CLOEXEC,
                attrs,
            )
        })
    }

    /// The kernel's own words about a failure (fsconfig errors are logged on the context fd).
    pub fn last_message(&self) -> Option<String> {
        let mut buf = [0u8; 512];
        // SAFETY: reading into a buffer we own, of the size we pass.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        (n > 0).then(|| {
            String::from_utf8_lossy(&buf[..n as usize])
                .trim()
                .to_string()
        })
    }
}

/// Resolution rules for [`openat2`].
pub mod resolve {
    pub const NO_XDEV: u64 = 0x01;
    pub const NO_MAGICLINKS: u64 = 0x02;
    pub const NO_SYMLINKS: u64 = 0x04;
    pub const BENEATH: u64 = 0x08;
    pub const IN_ROOT: u64 = 0x10;
}

/// openat2(2): open `path` relative to `dirfd` with `resolve` restrictions.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: libc::c_int,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // The kernel's struct open_how (libc's is non-exhaustive).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let mut how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    let mut tries = 0;
    loop {
        // SAFETY: `how` is a valid open_how of the size we pass; path is NUL-terminated.
        let r = owned(unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                c.as_ptr(),
                &mut how as *mut OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        });
        match r {
            // With RESOLVE_IN_ROOT, a ".." met while any rename or mount happened anywhere on
            // the host fails with EAGAIN, and openat2(2) says to try again.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < OPENAT2_TRIES => {
                tries += 1;
            }
            r => return r,
        }
    }
}

/// How often an openat2 that met a concurrent rename or mount is tried again.
const OPENAT2_TRIES: u32 = 64;

/// openat(2) of a single name relative to `dirfd` (close-on-exec).
pub fn openat(
    dirfd: BorrowedFd<'_>,
    name: &Path,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: openat reads a NUL-terminated path and returns a new fd or -1.
    owned(unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        ) as libc::c_long
    })
}

/// mkdirat(2); an existing entry is not an error.
pub fn mkdirat(dirfd: BorrowedFd<'_>, name: &Path, mode: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: mkdirat reads a NUL-terminated path.
    let r = unsafe { libc::mkdirat(dirfd.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    Ok(())
}

/// symlinkat(2).
pub fn symlinkat(target: &str, dirfd: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    let n = cstr(name)?;
    // SAFETY: both strings are NUL-terminated.
    let r = unsafe { libc::symlinkat(t.as_ptr(), dirfd.as_raw_fd(), n.as_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Renames elsewhere make a RESOLVE_IN_ROOT lookup through ".." fail with EAGAIN now and
    /// then; the wrapper tries again, so the lookup never fails for it.
    #[test]
    fn in_root_lookups_through_dotdot_survive_concurrent_renames() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("root/a")).unwrap();
        std::fs::write(t.path().join("root/f"), b"").unwrap();
        std::fs::write(t.path().join("x"), b"").unwrap();
        let root = std::fs::File::open(t.path().join("root")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let renamer = {
            let (stop, dir) = (stop.clone(), t.path().to_path_buf());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::rename(dir.join("x"), dir.join("y"));
                    let _ = std::fs::rename(dir.join("y"), dir.join("x"));
                }
            })
        };
        let start = std::time::Instant::now();
        let mut failures = Vec::new();
        while start.elapsed() < std::time::Duration::from_millis(500) {
            if let Err(e) = openat2(
                root.as_fd(),
                Path::new("a/../a/../f"),
                libc::O_PATH,
                0,
                resolve::IN_ROOT,
            ) {
                failures.push(e.to_string());
            }
        }
        stop.store(true, Ordering::Relaxed);
        renamer.join().unwrap();
        assert!(
            failures.is_empty(),
            "{} failures, first: {:?}",
            failures.len(),
            failures.first()
        );
    }
}
