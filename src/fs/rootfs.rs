//! The box's root: an overlay of the image layers (or a bound directory) mounted inside the
//! box's user and mount namespaces, on a small scratch tmpfs that also holds the box's
//! generated /etc files (the overlay's top layer, or bound over the image's; see [`etc`]).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{cwd, etc};
use crate::step_error::{Context, StepError};
use crate::sys::mount::{self, FsContext};

pub use crate::plan::box_rootfs::{BoxRootfs, Layers, UpperDirs};

/// The mounted new root.
pub struct NewRoot {
    /// An O_PATH fd on the root of the mounted rootfs.
    pub root: OwnedFd,
    /// A directory fd on the scratch tmpfs (for generated files); `None` for a root bound in
    /// place ([`bind_in_place`]), which has none.
    pub scratch: Option<OwnedFd>,
}

const ROOT: &str = "root";

/// Mount the scratch tmpfs on the mountpoint and the rootfs inside it, with the generated
/// /etc files (`etc_files`) in place.
pub fn mount_rootfs(
    rootfs: &BoxRootfs,
    etc_files: &[(&'static str, String)],
) -> Result<NewRoot, StepError> {
    let mp = &rootfs.mountpoint;
    let mp_fd = mount::openat2(cwd(), mp, libc::O_PATH | libc::O_DIRECTORY, 0, 0)
        .ctx(|| format!("open the mountpoint {}", mp.display()))?;
    let fc = FsContext::open("tmpfs").ctx(|| "create a tmpfs".into())?;
    fc.set("mode", "0755")
        .ctx(|| "configure the scratch tmpfs".into())?;
    let scratch_mnt = fc.mount(0).ctx(|| "mount the scratch tmpfs".into())?;
    mount::move_to(scratch_mnt.as_fd(), mp_fd.as_fd())
        .ctx(|| format!("attach the scratch tmpfs on {}", mp.display()))?;
    let scratch = reopen_dir(mp).ctx(|| format!("open {}", mp.display()))?;
    mount::mkdirat(scratch.as_fd(), Path::new(ROOT), 0o755).ctx(|| "create the root dir".into())?;
    let root_dir = mount::openat(
        scratch.as_fd(),
        Path::new(ROOT),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .ctx(|| "open the root dir".into())?;

    let mut etc_layered = false;
    let tree = match &rootfs.layers {
        Layers::Overlay { lower, upper } => {
            let top_first: Vec<&Path> = lower.iter().rev().map(|p| p.as_path()).collect();
            let mut lower = lower.clone();
            if let Some(like) = etc::layer_fits(&top_first) {
                etc::write_layer(scratch.as_fd(), etc_files, &like)?;
                lower.push(mp.join(etc::LAYER));
                etc_layered = true;
            }
            match upper {
                Some(u) => overlay(&lower, u)?,
                None => scratch_overlay(mp, scratch.as_fd(), "", &lower, None)?,
            }
        }
        Layers::Dir(dir) => {
            mount::clone_tree(None, dir).ctx(|| format!("bind {}", dir.display()))?
        }
    };
    mount::move_to(tree.as_fd(), root_dir.as_fd()).ctx(|| "attach the rootfs".into())?;
    // Re-open: the earlier fd names the directory under the mount, not the mount's root.
    let root = mount::openat(
        scratch.as_fd(),
        Path::new(ROOT),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .ctx(|| "open the new root".into())?;
    if !etc_layered {
        etc::install(scratch.as_fd(), root.as_fd(), etc_files).map_err(|e| {
            if e.errno == libc::EACCES || e.errno == libc::EPERM {
                e.with_hint(
                    "the image's /etc belongs to an id the box does not map \
                     (was it unpacked by another user?)",
                )
            } else {
                e
            }
        })?;
    }
    Ok(NewRoot {
        root,
        scratch: Some(scratch),
    })
}

/// The root directory `dir` bound (recursively) onto itself in the caller's own mount
/// namespace, for a box that has none of its own (an OCI config without one): what the box
/// mounts is mounted below it, then it chroots into it. The bind is made private (with every
/// mount copied into it) before anything is mounted there, so that nothing below it
/// propagates to the host's mounts or to their peers in other namespaces; the host's own
/// mounts are left as they are.
pub fn bind_in_place(dir: &Path) -> Result<NewRoot, StepError> {
    use crate::sys::mount::MsFlags;
    // Bound onto itself, the caller's own root would take every mount of the box.
    if std::fs::canonicalize(dir).map_or(true, |d| d == Path::new("/")) {
        return Err(StepError::new(
            libc::EINVAL,
            format!(
                "{} is the caller's own root (or cannot be resolved): it cannot be bound in place",
                dir.display()
            ),
        ));
    }
    mount::mount(
        Some(dir),
        dir,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .ctx(|| format!("bind {} onto itself", dir.display()))?;
    mount::mount(None, dir, None, MsFlags::MS_PRIVATE | MsFlags::MS_REC, None)
        .ctx(|| format!("make the bind on {} private", dir.display()))?;
    let root = mount::openat2(cwd(), dir, libc::O_PATH | libc::O_DIRECTORY, 0, 0)
        .ctx(|| format!("open {}", dir.display()))?;
    Ok(NewRoot {
        root,
        scratch: None,
    })
}

fn reopen_dir(p: &Path) -> io::Result<OwnedFd> {
    mount::openat2(cwd(), p, libc::O_RDONLY | libc::O_DIRECTORY, 0, 0)
}

/// An overlay of `lower` (bottom first) whose upper and work directories are made in `dir`
/// on the box's scratch tmpfs (mounted on `mp`): what is written to it goes with the box.
/// The overlay's root takes the upper dir's owner and mode: `like`'s, when given (the
/// directory the overlay stands for), else root's 0755.
pub fn scratch_overlay(
    mp: &Path,
    scratch: BorrowedFd<'_>,
    dir: &str,
    lower: &[PathBuf],
    like: Option<&Path>,
) -> Result<OwnedFd, StepError> {
    let base = Path::new(dir);
    if !base.as_os_str().is_empty() {
        mount::mkdirat(scratch, base, 0o755).ctx(|| format!("create the scratch dir {dir}"))?;
    }
    for d in ["upper", "work"] {
        mount::mkdirat(scratch, &base.join(d), 0o755)
            .ctx(|| format!("create the scratch {d} dir"))?;
    }
    // On the scratch tmpfs, gone with the box: nothing there is worth syncing.
    let dirs = UpperDirs {
        upper: mp.join(base).join("upper"),
        work: mp.join(base).join("work"),
        volatile: true,
    };
    if let Some(m) = like.and_then(|p| std::fs::metadata(p).ok()) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // An owner the box does not map cannot own it: root's it stays.
        let _ = std::os::unix::fs::chown(&dirs.upper, Some(m.uid()), Some(m.gid()));
        std::fs::set_permissions(
            &dirs.upper,
            std::fs::Permissions::from_mode(m.mode() & 0o7777),
        )
        .ctx(|| format!("give {} its source's mode", dirs.upper.display()))?;
    }
    overlay(lower, &dirs)
}

fn overlay(lower: &[PathBuf], upper: &UpperDirs) -> Result<OwnedFd, StepError> {
    if lower.is_empty() {
        return Err(StepError::msg("the image has no layers"));
    }
    let (up, work, volatile) = (upper.upper.clone(), upper.work.clone(), upper.volatile);
    let fc = FsContext::open("overlay").ctx(|| "create an overlay".into())?;
    let set = |key: &str, value: &str, what: String| {
        fc.set(key, value)
            .ctx(|| what.clone())
            .map_err(|e| kernel_says(&fc, &what, e))
    };
    // The top layer comes first. `lowerdir+` (Linux 6.8) takes one layer at a time and needs
    // no escaping; older kernels get the joined, escaped form.
    let mut appended = true;
    for (i, l) in lower.iter().rev().enumerate() {
        if let Err(e) = fc.set("lowerdir+", &l.to_string_lossy()) {
            if i == 0 && e.raw_os_error() == Some(libc::EINVAL) {
                appended = false;
                break;
            }
            let what = format!("overlay lower layer {}", l.display());
            return Err(kernel_says(
                &fc,
                &what,
                StepError::new(e.raw_os_error().unwrap_or(0), format!("{what}: {e}")),
            ));
        }
    }
    if !appended {
        let joined: Vec<String> = lower.iter().rev().map(|l| escape(l)).collect();
        set("lowerdir", &joined.join(":"), "overlay lower layers".into())?;
    }
    set(
        "upperdir",
        &up.to_string_lossy(),
        format!("overlay upper dir {}", up.display()),
    )?;
    set(
        "workdir",
        &work.to_string_lossy(),
        format!("overlay work dir {}", work.display()),
    )?;
    if volatile {
        fc.flag("volatile")
            .ctx(|| "overlay volatile".into())
            .map_err(|e| kernel_says(&fc, "overlay volatile", e))?;
    }
    // Inside a user namespace overlay keeps its whiteout/opaque marks in user.* xattrs.
    fc.flag("userxattr")
        .ctx(|| "overlay userxattr".into())
        .map_err(|e| kernel_says(&fc, "overlay userxattr", e))?;
    fc.mount(0)
        .ctx(|| "mount the overlay".into())
        .map_err(|e| kernel_says(&fc, "mount the overlay", e))
}

/// The kernel logs the reason for an fsconfig failure on the context: use its words.
fn kernel_says(fc: &FsContext, what: impl std::fmt::Display, e: StepError) -> StepError {
    match fc.last_message() {
        Some(m) => StepError {
            message: format!("{what}: {m}"),
            ..e
        },
        None => e,
    }
}

/// Escape `:` and `\` for the classic lowerdir list.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ':' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
