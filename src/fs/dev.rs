//! The box's /dev: a tmpfs holding only the harmless devices (bind-mounted from the host, since
//! no user namespace may mknod), a devpts of its own, shm and the fd links.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::resolve::{self, Kind};
use crate::step_error::{Context, StepError};
use crate::sys::mount::{self, attr, FsContext};

/// Device nodes bound from the host's /dev.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Symlinks: name -> target.
pub const LINKS: &[(&str, &str)] = &[
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Build /dev. `tty_gid`: the gid pty slaves get (5, "tty") when the box maps it.
pub fn populate(root: BorrowedFd<'_>, tty_gid: Option<u32>) -> Result<(), StepError> {
    let target = resolve::ensure(root, Path::new("/dev"), Kind::Dir).ctx(|| "/dev".into())?;
    let dev = tmpfs("mode=0755,size=65536k", attr::NOSUID | attr::NOEXEC)?;
    // Fill it while it is still detached: nothing in the image can interfere.
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
    for dir in ["pts", "shm"] {
        mount::mkdirat(dev.as_fd(), Path::new(dir), 0o755).ctx(|| format!("create /dev/{dir}"))?;
    }
    for (name, to) in LINKS {
        mount::symlinkat(to, dev.as_fd(), Path::new(name))
            .ctx(|| format!("link /dev/{name} -> {to}"))?;
    }
    mount::move_to(dev.as_fd(), target.as_fd()).ctx(|| "attach /dev".into())?;

    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        let node = mount::clone_tree(None, &host).ctx(|| format!("bind {}", host.display()))?;
        let at = mount::openat(
            dev.as_fd(),
            Path::new(name),
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
        )
        .ctx(|| format!("open /dev/{name}"))?;
        mount::move_to(node.as_fd(), at.as_fd()).ctx(|| format!("attach /dev/{name}"))?;
    }

    let mut pts_opts = "newinstance,ptmxmode=0666,mode=0620".to_string();
    if let Some(g) = tty_gid {
        pts_opts.push_str(&format!(",gid={g}"));
    }
    let fc = FsContext::open("devpts").ctx(|| "create a devpts instance".into())?;
    for opt in pts_opts.split(',') {
        configure(&fc, opt).ctx(|| format!("devpts option {opt}"))?;
    }
    let pts = fc
        .mount(attr::NOSUID | attr::NOEXEC)
        .ctx(|| "mount devpts".into())?;
    attach_under(&dev, "pts", &pts)?;

    let shm = tmpfs(
        "mode=1777,size=65536k",
        attr::NOSUID | attr::NODEV | attr::NOEXEC,
    )?;
    attach_under(&dev, "shm", &shm)
}

fn attach_under(dev: &OwnedFd, name: &str, m: &OwnedFd) -> Result<(), StepError> {
    let at = mount::openat(
        dev.as_fd(),
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

/// A detached tmpfs with comma-separated options.
pub(crate) fn tmpfs(opts: &str, attrs: u64) -> Result<OwnedFd, StepError> {
    let fc = FsContext::open("tmpfs").ctx(|| "create a tmpfs".into())?;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        configure(&fc, opt).ctx(|| format!("tmpfs option {opt}"))?;
    }
    fc.mount(attrs).ctx(|| "mount a tmpfs".into())
}
