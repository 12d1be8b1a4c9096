//! The plan's own mounts: binds (and volumes, which are binds of a store directory) and
//! tmpfs, attached onto targets resolved inside the new root; and the writable scratch
//! directories of a read-only root.
//!
//! A target below an earlier mount of the plan is resolved inside *that* mount, as if it were
//! `/`: a volume is shared with other boxes, which may swap a directory in it for a symlink
//! (to `/`, or to a host path) while this box starts, and the mount must still land inside the
//! volume.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::dev::tmpfs;
use super::resolve::{self, Kind};
use crate::plan::{Mount, MountKind};
use crate::step_error::{Context, StepError};
use crate::sys::mount::{self, attr};

/// Directories a read-only root keeps writable (tmpfs each), as podman's `--read-only` does,
/// with their modes. /dev/shm is writable anyway (a tmpfs of the box's /dev).
pub const READONLY_ROOT_SCRATCH: &[(&str, &str)] =
    &[("/tmp", "1777"), ("/var/tmp", "1777"), ("/run", "0755")];

/// Where an overlay mount ([`Mount::overlay`]) keeps its upper and work directories: `dir`
/// on the box's scratch tmpfs (`scratch`, mounted on `mountpoint`), gone with the box.
pub struct OverlayScratch<'a> {
    pub mountpoint: &'a Path,
    pub scratch: BorrowedFd<'a>,
    pub dir: String,
}

/// Attach mount `m`; `earlier` are the plan's mounts already attached (in order). `source` is
/// the host directory or file for binds and volumes; `overlay` where an overlay over it keeps
/// its writes.
pub fn apply(
    root: BorrowedFd<'_>,
    m: &Mount,
    earlier: &[Mount],
    source: Option<&Path>,
    overlay: Option<OverlayScratch<'_>>,
) -> Result<(), StepError> {
    // A mount to chown is made read-only once chowned (see [`chown_mount`]).
    let ro = if m.readonly && !m.chown {
        attr::RDONLY
    } else {
        0
    };
    let target = &m.target;
    let at = |kind: Kind| {
        target_fd(root, target, earlier, kind)
            .ctx(|| format!("mount point {} in the box", target.display()))
            .map_err(|e| target_hint(e, target))
    };
    match (&m.kind, source) {
        (MountKind::Tmpfs { size, mode, noexec }, _) => {
            let mut opts = String::from("source=tmpfs,");
            if let Some(s) = size {
                opts.push_str(&format!("size={s},"));
            }
            opts.push_str(&format!("mode={:o}", mode.unwrap_or(0o1777)));
            let exec = if *noexec { attr::NOEXEC } else { 0 };
            let fs = tmpfs(&opts, ro | exec | attr::NOSUID | attr::NODEV)?;
            let at = at(Kind::Dir)?;
            mount::move_to(fs.as_fd(), at.as_fd())
                .ctx(|| format!("attach tmpfs on {}", target.display()))
        }
        (_, Some(src)) => {
            let tree = match (m.overlay, overlay) {
                (true, Some(o)) => {
                    let meta = std::fs::metadata(src)
                        .ctx(|| format!("overlay source {}", src.display()))
                        .map_err(|e| missing_source_hint(e, src))?;
                    if !meta.is_dir() {
                        return Err(StepError::new(
                            libc::ENOTDIR,
                            format!("an overlay over {}: not a directory", src.display()),
                        )
                        .with_hint("`:O` (`overlay = true`) needs a directory as its source"));
                    }
                    super::rootfs::scratch_overlay(
                        o.mountpoint,
                        o.scratch,
                        &o.dir,
                        &[src.to_path_buf()],
                        Some(src),
                    )?
                }
                (true, None) => {
                    return Err(StepError::msg(
                        "an overlay mount needs the box's scratch tmpfs, which is not mounted",
                    ))
                }
                (false, _) => mount::clone_tree(None, src)
                    .ctx(|| format!("bind source {}", src.display()))
                    .map_err(|e| missing_source_hint(e, src))?,
            };
            let kind = if resolve::is_dir(tree.as_fd()).ctx(|| format!("stat {}", src.display()))? {
                Kind::Dir
            } else {
                Kind::File
            };
            if ro != 0 {
                // Recursive: every submount of the source (a tmpfs or another disk mounted
                // below it on the host) turns read-only with it, in one call.
                mount::set_attr_fd(tree.as_fd(), ro, 0, true)
                    .ctx(|| format!("make {} read-only", target.display()))?;
            }
            let at = at(kind)?;
            mount::move_to(tree.as_fd(), at.as_fd())
                .ctx(|| format!("attach {} on {}", src.display(), target.display()))
        }
        (MountKind::Volume { name }, None) => Err(StepError::msg(format!(
            "volume {name:?} has no directory (it was not resolved before start)"
        ))),
        (MountKind::Bind { source }, None) => Err(StepError::msg(format!(
            "bind source {} was not resolved before start",
            source.display()
        ))),
    }
}

/// The mount point for `target`: resolved (and created) inside the innermost earlier mount
/// that contains it, else inside the root.
fn target_fd(
    root: BorrowedFd<'_>,
    target: &Path,
    earlier: &[Mount],
    kind: Kind,
) -> std::io::Result<OwnedFd> {
    let parent = earlier
        .iter()
        .enumerate()
        .filter(|(_, e)| e.target != target && target.starts_with(&e.target))
        .max_by_key(|(_, e)| e.target.components().count());
    match parent {
        None => resolve::ensure(root, target, kind),
        Some((i, p)) => {
            // The earlier mount's root, itself resolved inside whatever contains it.
            let base = target_fd(root, &p.target, &earlier[..i], Kind::Dir)?;
            let rest = target.strip_prefix(&p.target).unwrap_or(target);
            resolve::ensure(base.as_fd(), rest, kind)
        }
    }
}

fn target_hint(e: StepError, target: &Path) -> StepError {
    match e.errno {
        libc::ENOENT | libc::ENOTDIR | libc::ELOOP => e.with_hint(format!(
            "{} is (or passes through) a dangling symlink or a file in the box; mount targets \
             are resolved inside the box and never follow a link out of it",
            target.display()
        )),
        libc::EROFS => e.with_hint(
            "the mount point does not exist and its parent is read-only: create it in the image, \
             or mount the parent read-write",
        ),
        _ => e,
    }
}

fn missing_source_hint(e: StepError, src: &Path) -> StepError {
    if e.errno == libc::ENOENT {
        e.with_hint(format!(
            "create {} on the host, or fix the mount's source",
            src.display()
        ))
    } else {
        e
    }
}

/// podman's `:U`, run in the box once its root is in place: chown the mount on `target` (a
/// path in the box), and all below it on the same filesystem, to `uid`:`gid` (box ids; the
/// kernel stores the host ids they map to). Symlinks are chowned, not followed. A read-only
/// mount becomes read-only only now.
pub fn chown_mount(target: &Path, readonly: bool, uid: u32, gid: u32) -> Result<(), StepError> {
    use std::os::unix::fs::MetadataExt;
    let top = std::fs::symlink_metadata(target).ctx(|| format!("stat {}", target.display()))?;
    let mut todo = vec![target.to_path_buf()];
    while let Some(p) = todo.pop() {
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
            .ctx(|| format!("chown {} to {uid}:{gid}", p.display()))
            .map_err(|e| {
                if e.errno == libc::EPERM || e.errno == libc::EINVAL {
                    e.with_hint(
                        "the file belongs to an id the box does not map, or the user's ids \
                         are not mapped: chown it on the host first",
                    )
                } else {
                    e
                }
            })?;
        let meta = std::fs::symlink_metadata(&p).ctx(|| format!("stat {}", p.display()))?;
        if meta.is_dir() && meta.dev() == top.dev() {
            for e in std::fs::read_dir(&p).ctx(|| format!("read {}", p.display()))? {
                let e = e.ctx(|| format!("read {}", p.display()))?;
                todo.push(e.path());
            }
        }
    }
    if readonly {
        mount::set_attr(target, attr::RDONLY, 0, true)
            .ctx(|| format!("make {} read-only", target.display()))?;
    }
    Ok(())
}

/// For a read-only root: a tmpfs on /tmp, /var/tmp and /run, before the plan's mounts (so a
/// plan mount below them lands on the tmpfs and stays visible). A directory the plan mounts
/// something on itself is left to that mount; /var/tmp only when the image has it.
pub fn readonly_root_scratch(root: BorrowedFd<'_>, plan_mounts: &[Mount]) -> Result<(), StepError> {
    for (p, mode) in READONLY_ROOT_SCRATCH {
        let path = Path::new(p);
        if plan_mounts.iter().any(|m| m.target == path) {
            continue;
        }
        let at = if *p == "/var/tmp" {
            match resolve::open(root, path) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e).ctx(|| format!("open {p} in the box")),
            }
        } else {
            resolve::ensure(root, path, Kind::Dir).ctx(|| format!("create {p} in the box"))?
        };
        if !resolve::is_dir(at.as_fd()).ctx(|| format!("stat {p}"))? {
            continue;
        }
        let fs = tmpfs(&format!("mode={mode}"), attr::NOSUID | attr::NODEV)?;
        mount::move_to(fs.as_fd(), at.as_fd()).ctx(|| format!("tmpfs on {p}"))?;
    }
    Ok(())
}

/// After pivot_root: / itself read-only (not recursive: /proc, /dev, the scratch tmpfs and
/// the plan's mounts keep their own flags).
pub fn remount_root_readonly() -> Result<(), StepError> {
    mount::set_attr(Path::new("/"), attr::RDONLY, 0, false).ctx(|| "remount / read-only".into())
}
