//! The box's /dev: a tmpfs holding only the harmless devices, a devpts of its own, shm and the
//! fd links.
//!
//! The devices are nodes of the box's own when foxbox runs as real root: the parent makes the
//! tmpfs and its nodes in the host's user namespace (only there may mknod make a device) before
//! the clone, as podman does ([`private`]). Binding the host's nodes would hand them to the box:
//! with root's identity map the box's root owns them, and its chmod, chown or touch would change
//! the host's /dev. Where the box's root is not the host's (rootless), the nodes are bound from
//! the host, which is all a user namespace can have: the box cannot change what it does not own.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::stat::{fchmodat, makedev, mknodat, FchmodatFlags, Mode, SFlag};

use super::resolve::{self, Kind};
use crate::step_error::{Context, StepError};
use crate::sys::idmap::IdMaps;
use crate::sys::mount::{self, attr, FsContext};

/// The device nodes of the box's /dev.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Major and minor numbers of [`DEVICES`], in order (devices.txt).
const NUMBERS: [(u64, u64); 6] = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)];

/// Whether a box started with `maps` gets device nodes of its own ([`private`]): its root is
/// the host's root.
pub fn wants_private_nodes(maps: &IdMaps) -> bool {
    maps.host_uid(0) == Some(0)
}

/// The box's /dev tmpfs, detached, with nodes of its own made by mknod, for [`populate`]. Run
/// by real root in the host's user namespace, before the box's set-up process is cloned.
/// `Ok(None)` when mknod is refused (foxbox's root is itself in a user namespace): the box then
/// gets the host's nodes bound, as a rootless one does.
pub fn private() -> Result<Option<OwnedFd>, StepError> {
    let dev = skeleton()?;
    for (name, (major, minor)) in DEVICES.iter().zip(NUMBERS) {
        let made = mknodat(
            dev.as_fd(),
            Path::new(name),
            SFlag::S_IFCHR,
            Mode::empty(),
            makedev(major, minor),
        );
        match made {
            Err(nix::errno::Errno::EPERM) => {
                tracing::debug!("mknod refused: the box's /dev gets the host's nodes bound");
                return Ok(None);
            }
            r => r
                .map_err(std::io::Error::from)
                .ctx(|| format!("mknod /dev/{name}"))?,
        }
        // Not through mknod's mode, which the umask trims.
        fchmodat(
            dev.as_fd(),
            Path::new(name),
            Mode::from_bits_truncate(0o666),
            FchmodatFlags::NoFollowSymlink,
        )
        .map_err(std::io::Error::from)
        .ctx(|| format!("chmod /dev/{name}"))?;
    }
    Ok(Some(dev))
}

/// A detached /dev tmpfs with its directories and links, still without devices.
fn skeleton() -> Result<OwnedFd, StepError> {
    let dev = tmpfs(
        "source=tmpfs,mode=0755,size=65536k",
        attr::NOSUID | attr::NOEXEC,
    )?;
    for dir in ["pts", "shm"] {
        mount::mkdirat(dev.as_fd(), Path::new(dir), 0o755).ctx(|| format!("create /dev/{dir}"))?;
    }
    for (name, to) in LINKS {
        mount::symlinkat(to, dev.as_fd(), Path::new(name))
            .ctx(|| format!("link /dev/{name} -> {to}"))?;
    }
    Ok(dev)
}

/// Symlinks: name -> target.
pub const LINKS: &[(&str, &str)] = &[
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Build /dev: `private`, the tmpfs [`private`] made, or else one with the host's nodes bound.
/// `tty_gid`: the gid pty slaves get (5, "tty") when the box maps it.
pub fn populate(
    root: BorrowedFd<'_>,
    tty_gid: Option<u32>,
    private: Option<BorrowedFd<'_>>,
) -> Result<(), StepError> {
    let target = resolve::ensure(root, Path::new("/dev"), Kind::Dir).ctx(|| "/dev".into())?;
    let Some(dev) = private else {
        // Filled while it is still detached: nothing in the image can interfere.
        let dev = skeleton()?;
        for name in DEVICES {
            let f = mount::openat(
                dev.as_fd(),
                Path::new(name),
                libc::O_CREAT | libc::O_WRONLY,
                0o666,
            )
            .ctx(|| format!("create /dev/{name}"))?;
            drop(f);
        }
        mount::move_to(dev.as_fd(), target.as_fd()).ctx(|| "attach /dev".into())?;
        bind_host_nodes(dev.as_fd())?;
        return finish(dev.as_fd(), tty_gid);
    };
    mount::move_to(dev, target.as_fd()).ctx(|| "attach /dev".into())?;
    finish(dev, tty_gid)
}

fn bind_host_nodes(dev: BorrowedFd<'_>) -> Result<(), StepError> {
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        let node = mount::clone_tree(None, &host).ctx(|| format!("bind {}", host.display()))?;
        let at = mount::openat(dev, Path::new(name), libc::O_PATH | libc::O_NOFOLLOW, 0)
            .ctx(|| format!("open /dev/{name}"))?;
        mount::move_to(node.as_fd(), at.as_fd()).ctx(|| format!("attach /dev/{name}"))?;
    }
    Ok(())
}

/// The devpts and shm mounts of an attached /dev.
fn finish(dev: BorrowedFd<'_>, tty_gid: Option<u32>) -> Result<(), StepError> {
    let mut pts_opts = "newinstance,ptmxmode=0666,mode=0620".to_string();
    if let Some(g) = tty_gid {
        pts_opts.push_str(&format!(",gid={g}"));
    }
    let fc = FsContext::open("devpts").ctx(|| "create a devpts instance".into())?;
    // The source /proc/self/mountinfo shows (runc's and podman's name it so too).
    fc.set("source", "devpts").ctx(|| "devpts source".into())?;
    for opt in pts_opts.split(',') {
        configure(&fc, opt).ctx(|| format!("devpts option {opt}"))?;
    }
    let pts = fc
        .mount(attr::NOSUID | attr::NOEXEC)
        .ctx(|| "mount devpts".into())?;
    attach_under(dev, "pts", &pts)?;

    let shm = tmpfs(
        "source=shm,mode=1777,size=65536k",
        attr::NOSUID | attr::NODEV | attr::NOEXEC,
    )?;
    attach_under(dev, "shm", &shm)
}

fn attach_under(dev: BorrowedFd<'_>, name: &str, m: &OwnedFd) -> Result<(), StepError> {
    let at = mount::openat(
        dev,
        Path::new(name),
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
    .ctx(|| format!("open /dev/{name}"))?;
    mount::move_to(m.as_fd(), at.as_fd()).ctx(|| format!("attach /dev/{name}"))
}

/// `key=value` or a bare flag.
pub(crate) fn configure(fc: &FsContext, opt: &str) -> std::io::Result<()> {
    match opt.split_once('=') {
        Some((k, v)) => fc.set(k, v),
        None => fc.flag(opt),
    }
}

/// An mqueue (of the box's ipc namespace) on /dev/mqueue, as an OCI config's mounts ask.
pub fn mount_mqueue(root: BorrowedFd<'_>) -> Result<(), StepError> {
    let target = super::resolve::ensure(root, Path::new("/dev/mqueue"), super::resolve::Kind::Dir)
        .ctx(|| "/dev/mqueue".into())?;
    let fc = FsContext::open("mqueue").ctx(|| "create an mqueue instance".into())?;
    fc.set("source", "mqueue").ctx(|| "mqueue source".into())?;
    let m = fc
        .mount(attr::NOSUID | attr::NODEV | attr::NOEXEC)
        .ctx(|| "mount mqueue".into())?;
    mount::move_to(m.as_fd(), target.as_fd()).ctx(|| "attach mqueue on /dev/mqueue".into())
}

/// A detached tmpfs with comma-separated options.
pub(crate) fn tmpfs(opts: &str, attrs: u64) -> Result<OwnedFd, StepError> {
    let fc = FsContext::open("tmpfs").ctx(|| "create a tmpfs".into())?;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        configure(&fc, opt).ctx(|| format!("tmpfs option {opt}"))?;
    }
    fc.mount(attrs).ctx(|| "mount a tmpfs".into())
}

/// A device node a box asks for (an OCI config's `linux.devices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Absolute, inside the box.
    pub path: std::path::PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Make `nodes` inside `root`: mknod (real root in the host's user namespace, or a fifo),
/// then their mode and owner; where mknod of a device is refused (a user namespace), the
/// host's node at the same path is bound, as runc does. A node that is there already with
/// the same type and numbers (a default device) is left as it is.
pub fn make_nodes(root: BorrowedFd<'_>, nodes: &[Node]) -> Result<(), StepError> {
    for n in nodes {
        let shown = n.path.display();
        let (Some(parent), Some(name)) = (n.path.parent(), n.path.file_name()) else {
            return Err(StepError::msg(format!("device {shown}: not a file path")));
        };
        let name = Path::new(name);
        let dir =
            resolve::ensure(root, parent, Kind::Dir).ctx(|| format!("{}", parent.display()))?;
        let made = mknodat(
            dir.as_fd(),
            name,
            n.kind,
            Mode::empty(),
            makedev(n.major, n.minor),
        );
        match made {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => {
                let st = nix::sys::stat::fstatat(
                    dir.as_fd(),
                    name,
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(std::io::Error::from)
                .ctx(|| format!("device {shown}"))?;
                let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
                if kind == n.kind && st.st_rdev == makedev(n.major, n.minor) {
                    continue;
                }
                return Err(StepError::new(
                    libc::EEXIST,
                    format!("device {shown}: something else is there already"),
                ));
            }
            Err(nix::errno::Errno::EPERM) if n.kind != SFlag::S_IFIFO => {
                let at =
                    resolve::ensure(root, &n.path, Kind::File).ctx(|| format!("device {shown}"))?;
                let host = mount::clone_tree(None, &n.path)
                    .ctx(|| format!("bind the host's {shown} (a user namespace cannot mknod)"))?;
                mount::move_to(host.as_fd(), at.as_fd()).ctx(|| format!("attach {shown}"))?;
                continue;
            }
            Err(e) => {
                return Err(std::io::Error::from(e)).ctx(|| format!("mknod {shown}"));
            }
        }
        // Not through mknod's mode, which the umask trims.
        fchmodat(
            dir.as_fd(),
            name,
            Mode::from_bits_truncate(n.mode),
            FchmodatFlags::NoFollowSymlink,
        )
        .map_err(std::io::Error::from)
        .ctx(|| format!("chmod {shown}"))?;
        nix::unistd::fchownat(
            dir.as_fd(),
            name,
            Some(nix::unistd::Uid::from_raw(n.uid)),
            Some(nix::unistd::Gid::from_raw(n.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(std::io::Error::from)
        .ctx(|| format!("chown {shown} to {}:{}", n.uid, n.gid))?;
    }
    Ok(())
}
