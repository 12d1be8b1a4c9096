//! The plan's own mounts: binds (and volumes, which are binds of a store directory) and
//! tmpfs, attached onto targets resolved inside the new root.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::dev::tmpfs;
use super::resolve::{self, Kind};
use crate::exec::error::{Context, StepError};
use crate::plan::{Mount, MountKind};
use crate::sys::mount::{self, attr};

/// Attach one mount. `source` is the host directory or file for binds and volumes.
pub fn apply(root: BorrowedFd<'_>, m: &Mount, source: Option<&Path>) -> Result<(), StepError> {
    let ro = if m.readonly { attr::RDONLY } else { 0 };
    let target = &m.target;
    match (&m.kind, source) {
        (MountKind::Tmpfs { size, mode }, _) => {
            let mut opts = String::new();
            if let Some(s) = size {
                opts.push_str(&format!("size={s},"));
            }
            opts.push_str(&format!("mode={:o}", mode.unwrap_or(0o1777)));
            let fs = tmpfs(&opts, ro | attr::NOSUID | attr::NODEV)?;
            let at = resolve::ensure(root, target, Kind::Dir)
                .ctx(|| format!("mount point {} in the box", target.display()))?;
            mount::move_to(fs.as_fd(), at.as_fd())
                .ctx(|| format!("attach tmpfs on {}", target.display()))
        }
        (_, Some(src)) => {
            let tree = mount::clone_tree(None, src)
                .ctx(|| format!("bind source {}", src.display()))
                .map_err(|e| missing_source_hint(e, src))?;
            let kind = if resolve::is_dir(tree.as_fd()).ctx(|| format!("stat {}", src.display()))? {
                Kind::Dir
            } else {
                Kind::File
            };
            if ro != 0 {
                mount::set_attr_fd(tree.as_fd(), ro, 0, true)
                    .ctx(|| format!("make {} read-only", target.display()))?;
            }
            let at = resolve::ensure(root, target, kind)
                .ctx(|| format!("mount point {} in the box", target.display()))?;
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
