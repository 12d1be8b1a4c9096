//! Where a box's cgroup can go in one hierarchy, and whether this user may put it there.
//!
//! Rules the kernel applies, which these checks mirror:
//! - making a cgroup needs write access to the parent directory; its files then belong to the
//!   maker (v1 and v2), so the box's own limit files are writable by whoever created it;
//! - v1: moving a process needs write access to the destination's cgroup.procs and the same
//!   uid as the process (root excepted);
//! - v2: moving a process needs write access to the cgroup.procs of the common ancestor of
//!   source and destination; a controller is usable in a cgroup only when it is listed in the
//!   parent's cgroup.subtree_control, and a non-root cgroup with processes of its own cannot
//!   enable any ("no internal processes").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};
use serde::Serialize;

use super::files::read_file;
use super::{CgroupError, Controller, Host, Version};

/// How the parent cgroup was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentSource {
    /// `--cgroup-parent` / FOXBOX_CGROUP_PARENT.
    Given,
    /// root's default: `foxbox` under the hierarchy's root.
    RootDefault,
    /// The caller's own cgroup, or the nearest delegated cgroup above it.
    Delegated,
}

/// Where a box's cgroup goes in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    /// Index into `Host::hierarchies`.
    pub hierarchy: usize,
    pub version: Version,
    pub mount: PathBuf,
    /// The parent cgroup's directory; created (never removed) when missing.
    pub parent: PathBuf,
    pub source: ParentSource,
    /// v2: controllers to enable along the way down to the box (cgroup.subtree_control).
    pub enable: Vec<&'static str>,
}

/// Find the parent for a box's cgroup in hierarchy `h` that can serve `need`.
///
/// `parent` is a path already checked by `parse_parent`. Without one, root uses
/// `<root>/foxbox`; anyone else the caller's own cgroup or the nearest ancestor that is
/// delegated to them. The error is the one for the first place tried, which names the cgroup
/// the user would most naturally delegate.
pub fn locate(
    host: &Host,
    h: usize,
    parent: Option<&Path>,
    need: &BTreeSet<Controller>,
) -> Result<Site, CgroupError> {
    let hi = &host.hierarchies[h];
    let site = |dir: PathBuf, source| Site {
        hierarchy: h,
        version: hi.version,
        mount: hi.mount.clone(),
        parent: dir,
        source,
        enable: Vec::new(),
    };
    if let Some(rel) = parent {
        return check(host, h, site(hi.mount.join(rel), ParentSource::Given), need);
    }
    if host.uid == 0 {
        return check(
            host,
            h,
            site(hi.mount.join("foxbox"), ParentSource::RootDefault),
            need,
        );
    }
    let any = need.iter().next().copied().unwrap_or(Controller::Pids);
    let own = hi.own_dir().ok_or_else(|| CgroupError::NoOwnCgroup {
        controller: any,
        mount: hi.mount.clone(),
    })?;
    let mut first_err = None;
    let mut dir = own.as_path();
    while dir.starts_with(&hi.mount) && dir != hi.mount {
        match check(
            host,
            h,
            site(dir.to_path_buf(), ParentSource::Delegated),
            need,
        ) {
            Ok(s) => return Ok(s),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => break,
        }
    }
    Err(first_err.unwrap_or(CgroupError::NotDelegated {
        controller: any,
        version: hi.version,
        mount: hi.mount.clone(),
        path: own,
        uid: host.uid,
    }))
}

fn writable(p: &Path) -> bool {
    access(p, AccessFlags::W_OK).is_ok()
}

fn check(
    host: &Host,
    h: usize,
    mut site: Site,
    need: &BTreeSet<Controller>,
) -> Result<Site, CgroupError> {
    let hi = &host.hierarchies[h];
    let any = need.iter().next().copied().unwrap_or(Controller::Pids);
    let not_delegated = |path: &Path| CgroupError::NotDelegated {
        controller: any,
        version: hi.version,
        mount: hi.mount.clone(),
        path: path.to_path_buf(),
        uid: host.uid,
    };
    // The parent may not exist yet: then the nearest existing ancestor must take the mkdir.
    let existing = site
        .parent
        .ancestors()
        .find(|a| a.is_dir())
        .unwrap_or(&hi.mount)
        .to_path_buf();
    if !writable(&existing) {
        return Err(not_delegated(&existing));
    }
    if hi.version == Version::V1 {
        return Ok(site);
    }

    // v2: the controllers must reach the box, enabled at `existing` and every level below.
    let listed = read_file(&existing.join("cgroup.controllers"))?;
    let listed: BTreeSet<&str> = listed.split_whitespace().collect();
    let enabled = read_file(&existing.join("cgroup.subtree_control"))?;
    let enabled: BTreeSet<&str> = enabled.split_whitespace().collect();
    let mut missing = false;
    for c in need {
        let Some(name) = c.v2_name() else { continue };
        if !listed.contains(name) {
            return Err(CgroupError::NotEnabled {
                controller: *c,
                mount: hi.mount.clone(),
                path: existing.clone(),
            });
        }
        site.enable.push(name);
        missing |= !enabled.contains(name);
    }
    if missing {
        let procs = read_file(&existing.join("cgroup.procs"))?;
        if existing != hi.mount && !procs.trim().is_empty() {
            let c = need
                .iter()
                .find(|c| c.v2_name().is_some_and(|n| !enabled.contains(n)))
                .copied()
                .unwrap_or(any);
            return Err(CgroupError::InternalProcesses {
                controller: c,
                mount: hi.mount.clone(),
                path: existing,
            });
        }
        let sc = existing.join("cgroup.subtree_control");
        if !writable(&sc) {
            return Err(not_delegated(&sc));
        }
    }
    // Moving the box's first process from our cgroup into the box's needs the common
    // ancestor's cgroup.procs.
    if host.uid != 0 {
        if let Some(own) = hi.own_dir() {
            let common = common_ancestor(&own, &site.parent);
            let procs = common.join("cgroup.procs");
            if !writable(&procs) {
                return Err(not_delegated(&procs));
            }
        }
    }
    Ok(site)
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for (x, y) in a.components().zip(b.components()) {
        if x != y {
            break;
        }
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_ancestors() {
        assert_eq!(
            common_ancestor(Path::new("/c/a/b/init"), Path::new("/c/a/b")),
            Path::new("/c/a/b")
        );
        assert_eq!(
            common_ancestor(Path::new("/c/x/y"), Path::new("/c/a/b")),
            Path::new("/c")
        );
    }
}
