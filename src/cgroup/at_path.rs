//! A cgroup at a path the caller names (an OCI container's `cgroupsPath`), in each hierarchy
//! serving a controller it needs: made with the parents it lacks, given resources, frozen and
//! thawed, grown by a hierarchy (`update` of a controller it did not use), and removed with
//! what was made for it. Serializable: `delete` in a later process removes what `create`
//! made.
//!
//! runc's rules for the path: an absolute path is relative to each hierarchy's root, a
//! relative one to the caller's own cgroup in that hierarchy. A cgroup that already exists is
//! joined (runc does so) and left in place afterwards; only what foxbox made is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::boxcg::{enable, BoxCgroup, BoxNode};
use super::devices_bpf;
use super::files::{read_file, write_file};
use super::node::CgroupNode;
use super::resources::{self, DeviceRule, Resources};
use super::stored::Node;
use super::{CgroupError, Controller, Host, Version};

/// A container's cgroup, as its state records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathCgroup {
    /// The path as given (`/a/b` or `a/b`).
    pub path: String,
    pub cg: BoxCgroup,
    /// The directories foxbox made for it, parents before children.
    #[serde(default)]
    pub made: Vec<PathBuf>,
    /// Allow rules for the container's own device nodes, which [`PathCgroup::apply`] puts
    /// after any device rules it is given (`create`'s and `update`'s alike), as runc does.
    #[serde(default)]
    pub device_nodes: Vec<DeviceRule>,
}

/// Check a cgroupsPath: `/`-separated names without `.` or `..`; returns whether it is
/// absolute and the path below its base.
pub fn parse_path(path: &str) -> Result<(bool, PathBuf), CgroupError> {
    let bad = |why| CgroupError::BadParent {
        parent: path.to_string(),
        why,
    };
    let mut rel = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => rel.push(n),
            _ => return Err(bad("`.` and `..` are not allowed")),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(bad("it names the root of the hierarchy"));
    }
    Ok((path.starts_with('/'), rel))
}

impl PathCgroup {
    /// Make the cgroup at `path` in the hierarchies serving `required` (each must exist here)
    /// and `optional` (where this host has them); `adopt`: join a cgroup that exists already,
    /// else that is an error. On failure whatever was made is removed.
    pub fn create(
        host: &Host,
        path: &str,
        required: &BTreeSet<Controller>,
        optional: &BTreeSet<Controller>,
        adopt: bool,
    ) -> Result<PathCgroup, CgroupError> {
        parse_path(path)?;
        let mut pc = PathCgroup {
            path: path.to_string(),
            cg: BoxCgroup { nodes: Vec::new() },
            made: Vec::new(),
            device_nodes: Vec::new(),
        };
        match pc.grow(host, required, optional, adopt) {
            Ok(()) => Ok(pc),
            Err(e) => {
                let _ = pc.destroy();
                Err(e)
            }
        }
    }

    /// Add the hierarchies serving controllers the cgroup does not have yet, at the same path
    /// (`update` of a resource `create` did not set); the container's processes move in.
    pub fn add(&mut self, host: &Host, wanted: &BTreeSet<Controller>) -> Result<(), CgroupError> {
        let missing: BTreeSet<Controller> = wanted
            .iter()
            .filter(|c| self.cg.node(**c).is_none())
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let procs = self.cg.procs()?;
        let before = self.cg.nodes.len();
        self.grow(host, &missing, &BTreeSet::new(), true)?;
        for n in &self.cg.nodes[before..] {
            for pid in &procs {
                match n.node.ops().place(*pid) {
                    // Gone meanwhile.
                    Err(e) if e.errno() == Some(libc::ESRCH) => {}
                    other => other?,
                }
            }
        }
        Ok(())
    }

    fn grow(
        &mut self,
        host: &Host,
        required: &BTreeSet<Controller>,
        optional: &BTreeSet<Controller>,
        adopt: bool,
    ) -> Result<(), CgroupError> {
        let (absolute, rel) = parse_path(&self.path)?;
        let mut by_hierarchy: BTreeMap<usize, BTreeSet<Controller>> = BTreeMap::new();
        for c in required {
            let h = host
                .find(*c)
                .ok_or(CgroupError::NoController { controller: *c })?;
            by_hierarchy.entry(h).or_default().insert(*c);
        }
        for c in optional {
            if let Some(h) = host.find(*c) {
                by_hierarchy.entry(h).or_default().insert(*c);
            }
        }
        for (h, controllers) in by_hierarchy {
            let hi = &host.hierarchies[h];
            if let Some(n) = self
                .cg
                .nodes
                .iter_mut()
                .find(|n| n.node.ops().path().starts_with(&hi.mount))
            {
                n.controllers.extend(controllers);
                continue;
            }
            let base = if absolute {
                hi.mount.clone()
            } else {
                hi.own_dir().ok_or(CgroupError::NoOwnCgroup {
                    controller: controllers.first().copied().unwrap_or(Controller::Freezer),
                    mount: hi.mount.clone(),
                })?
            };
            let dir = base.join(&rel);
            if !adopt && dir.is_dir() {
                return Err(CgroupError::Exists { path: dir });
            }
            let enable_names: Vec<&'static str> =
                controllers.iter().filter_map(|c| c.v2_name()).collect();
            let todo: Vec<PathBuf> = dir
                .ancestors()
                .take_while(|a| !a.is_dir())
                .map(Path::to_path_buf)
                .collect();
            if hi.version == Version::V2 {
                let existing = todo
                    .last()
                    .and_then(|p| p.parent())
                    .unwrap_or(dir.parent().unwrap_or(&hi.mount));
                enable(existing, &enable_names)?;
            }
            for d in todo.iter().rev() {
                match fs::create_dir(d) {
                    Ok(()) => self.made.push(d.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(source) => {
                        return Err(CgroupError::Create {
                            path: d.clone(),
                            source,
                        })
                    }
                }
                if hi.version == Version::V2 && d != &dir {
                    enable(d, &enable_names)?;
                }
                if hi.version == Version::V1 && controllers.contains(&Controller::Cpuset) {
                    inherit_cpuset(d)?;
                }
            }
            self.cg.nodes.push(BoxNode {
                node: Node::new(hi.version, dir),
                controllers,
            });
        }
        Ok(())
    }

    /// Set `r` (warnings: values the kernel ignored, or what this host's version lacks).
    /// Device rules get [`PathCgroup::device_nodes`] after them; on cgroup v2 they become a
    /// device program that replaces the one attached before.
    pub fn apply(&self, r: &Resources) -> Result<Vec<String>, CgroupError> {
        let mut with_nodes;
        let r = if r.devices.is_empty() {
            r
        } else {
            with_nodes = r.clone();
            with_nodes.devices.extend(self.device_nodes.iter().cloned());
            &with_nodes
        };
        let mut warnings = Vec::new();
        let writes = r.writes(|c| self.cg.node(c).map(|n| n.version()), &mut warnings)?;
        warnings.extend(resources::apply(&writes, |c| self.cg.node(c))?);
        if !r.devices.is_empty() {
            if let Some(n) = self.cg.node(Controller::Devices) {
                if n.version() == Version::V2 {
                    devices_bpf::apply(n.path(), &r.devices).map_err(|e| match e {
                        e @ CgroupError::Unsupported { .. } => e,
                        e => CgroupError::Setting {
                            field: "devices".into(),
                            source: Box::new(e),
                        },
                    })?;
                }
            }
        }
        Ok(warnings)
    }

    /// The node that freezes the container: v1's freezer hierarchy, or any v2 node.
    fn freezer(&self) -> Option<&dyn CgroupNode> {
        self.cg.node(Controller::Freezer).or_else(|| {
            self.cg
                .nodes
                .iter()
                .find(|n| n.node.ops().version() == Version::V2)
                .map(|n| n.node.ops())
        })
    }

    pub fn can_freeze(&self) -> bool {
        self.freezer().is_some()
    }

    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        self.freezer()
            .ok_or(CgroupError::NoController {
                controller: Controller::Freezer,
            })?
            .set_frozen(frozen)
    }

    /// `None`: no freezer here.
    pub fn is_frozen(&self) -> Option<bool> {
        self.freezer().and_then(|f| f.is_frozen().ok())
    }

    /// Kill what is left in the cgroups foxbox made and remove them, then the parents it
    /// made that are empty. A cgroup that existed before is left as it was.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first = None;
        for n in &self.cg.nodes {
            let ops = n.node.ops();
            // Not made here, or removed already (by hand, or a `delete` that failed later on).
            if !self.made.iter().any(|m| m == ops.path()) || !ops.path().is_dir() {
                continue;
            }
            // A frozen cgroup's processes cannot die until thawed.
            if ops.is_frozen().unwrap_or(false) {
                let _ = ops.set_frozen(false);
            }
            let r = ops
                .kill_all(Duration::from_secs(10))
                .and_then(|()| ops.remove(Duration::from_secs(10)));
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        for d in self.made.iter().rev() {
            match fs::remove_dir(d) {
                Ok(()) => {}
                // Not empty (another container's), or gone already.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::EBUSY)
                        || e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
                Err(source) => {
                    first.get_or_insert(CgroupError::Remove {
                        path: d.clone(),
                        source,
                    });
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// A new v1 cpuset cgroup has no cpus and no mems, and takes no process until given some:
/// it gets its parent's, as runc does.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        if read_file(&dir.join(f))?.trim().is_empty() {
            let v = read_file(&parent.join(f))?;
            write_file(&dir.join(f), v.trim())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/a/b").unwrap(), (true, PathBuf::from("a/b")));
        assert_eq!(parse_path("a/b/").unwrap(), (false, PathBuf::from("a/b")));
        for bad in ["/", "", "/a/../b", "./a"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }
}
