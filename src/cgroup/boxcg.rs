//! A box's cgroups: one directory per hierarchy it uses, made, limited, filled, read, killed
//! and removed together. Serializable, so `rm` in a later process removes what `up` made.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::delegate::Site;
use super::files::{read_file, write_file};
use super::limits::LimitPlan;
use super::node::{CgroupNode, MemoryUsage};
use super::stored::Node;
use super::{CgroupError, Controller, Version};

/// How long `kill_all` and `remove` wait for processes to go.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The box's cgroup in one hierarchy and the controllers foxbox uses there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxNode {
    pub node: Node,
    pub controllers: BTreeSet<Controller>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxCgroup {
    pub nodes: Vec<BoxNode>,
}

/// Usage read from the box's cgroups; `None` where no cgroup of the box has the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Stats {
    pub memory: Option<MemoryUsage>,
    #[serde(serialize_with = "ser_duration_opt")]
    pub cpu: Option<Duration>,
    pub pids: Option<u64>,
    /// Processes killed by the memory limit's OOM killer.
    pub oom_kills: Option<u64>,
}

fn ser_duration_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_nanos()),
        None => s.serialize_none(),
    }
}

/// The directory name of a box's cgroup.
pub fn cgroup_name(box_id: &str) -> Result<String, CgroupError> {
    let ok = !box_id.is_empty()
        && box_id.len() <= 200
        && box_id != "."
        && box_id != ".."
        && !box_id.contains(['/', '\n', '\0']);
    if ok {
        Ok(format!("foxbox-{box_id}"))
    } else {
        Err(CgroupError::BadBoxId {
            id: box_id.to_string(),
        })
    }
}

impl BoxCgroup {
    /// Make the box's cgroup in every planned place and set the planned limits. On any failure
    /// whatever was made is removed again. An existing cgroup of the same name is an error.
    pub fn create(plan: &LimitPlan, box_id: &str) -> Result<BoxCgroup, CgroupError> {
        let name = cgroup_name(box_id)?;
        let mut cg = BoxCgroup { nodes: Vec::new() };
        let res = (|| {
            for (site, controllers) in &plan.sites {
                let dir = make_parent(site)?.join(&name);
                fs::create_dir(&dir).map_err(|source| {
                    if source.kind() == io::ErrorKind::AlreadyExists {
                        CgroupError::Exists { path: dir.clone() }
                    } else {
                        CgroupError::Create {
                            path: dir.clone(),
                            source,
                        }
                    }
                })?;
                cg.nodes.push(BoxNode {
                    node: Node::new(site.version, dir),
                    controllers: controllers.clone(),
                });
            }
            cg.apply(plan)
        })();
        match res {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.remove(Duration::from_secs(1));
                Err(e)
            }
        }
    }

    fn apply(&self, plan: &LimitPlan) -> Result<(), CgroupError> {
        if let Some(m) = plan.memory {
            self.need(Controller::Memory)?
                .set_memory(m.limit, m.swap_total)?;
        }
        if let Some(c) = plan.cpu {
            self.need(Controller::Cpu)?
                .set_cpu(c.quota_us, c.period_us)?;
        }
        if let Some(p) = plan.pids {
            self.need(Controller::Pids)?.set_pids(p)?;
        }
        Ok(())
    }

    /// The node serving a controller.
    pub fn node(&self, c: Controller) -> Option<&dyn CgroupNode> {
        self.nodes
            .iter()
            .find(|n| n.controllers.contains(&c))
            .map(|n| n.node.ops())
    }

    fn need(&self, c: Controller) -> Result<&dyn CgroupNode, CgroupError> {
        self.node(c)
            .ok_or(CgroupError::NoController { controller: c })
    }

    /// The box's cgroup directories.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .map(|n| n.node.ops().path().to_path_buf())
            .collect()
    }

    /// Put a process (with all its threads) in every cgroup of the box. Call it for the box's
    /// first process before it runs anything of the box's: its children inherit the cgroups.
    pub fn place(&self, pid: i32) -> Result<(), CgroupError> {
        for n in &self.nodes {
            n.node.ops().place(pid)?;
        }
        Ok(())
    }

    pub fn stats(&self) -> Result<Stats, CgroupError> {
        Ok(Stats {
            memory: self
                .node(Controller::Memory)
                .map(|n| n.memory_usage())
                .transpose()?,
            cpu: self
                .node(Controller::Cpuacct)
                .or_else(|| {
                    // On v2 cpu time is in the core, in whichever node there is.
                    self.nodes
                        .iter()
                        .find(|n| n.node.ops().version() == Version::V2)
                        .map(|n| n.node.ops())
                })
                .map(|n| n.cpu_usage())
                .transpose()?,
            pids: self
                .node(Controller::Pids)
                .map(|n| n.pids_current())
                .transpose()?,
            oom_kills: match self.node(Controller::Memory) {
                Some(n) => n.oom_kills()?,
                None => None,
            },
        })
    }

    /// Processes the memory limit's OOM killer killed in the box (`None`: cannot tell here).
    pub fn oom_kills(&self) -> Result<Option<u64>, CgroupError> {
        match self.node(Controller::Memory) {
            Some(n) => n.oom_kills(),
            None => Ok(None),
        }
    }

    /// Every process in the box, from whichever cgroup knows them.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let mut all = BTreeSet::new();
        for n in &self.nodes {
            all.extend(n.node.ops().procs()?);
        }
        Ok(all.into_iter().collect())
    }

    /// SIGKILL every process of the box and wait until none is left.
    pub fn kill_all(&self, wait: Duration) -> Result<(), CgroupError> {
        for n in &self.nodes {
            n.node.ops().kill_all(wait)?;
        }
        Ok(())
    }

    /// Remove the box's cgroups (only those: parents stay). Processes must be gone (see
    /// `kill_all`); retries while the kernel reports busy, up to `wait`. Tries every
    /// hierarchy and returns the first error.
    pub fn remove(&self, wait: Duration) -> Result<(), CgroupError> {
        let mut first = None;
        for n in &self.nodes {
            if let Err(e) = n.node.ops().remove(wait) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// `kill_all` then `remove`: what `rm` of a box does.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let killed = self.kill_all(DEFAULT_WAIT);
        let removed = self.remove(DEFAULT_WAIT);
        killed.and(removed)
    }
}

/// Make the site's parent when missing (it stays: it may hold other boxes) and, on v2, enable
/// the controllers at the nearest existing ancestor and every level made here.
fn make_parent(site: &Site) -> Result<PathBuf, CgroupError> {
    let parent = site.parent.clone();
    let mut todo: Vec<&Path> = parent.ancestors().take_while(|a| !a.is_dir()).collect();
    todo.reverse();
    let existing = todo
        .first()
        .and_then(|p| p.parent())
        .unwrap_or(&parent)
        .to_path_buf();
    if site.version == Version::V2 {
        enable(&existing, &site.enable)?;
    }
    for dir in todo {
        match fs::create_dir(dir) {
            Ok(()) => {}
            // Another box made it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::Create {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
        if site.version == Version::V2 {
            enable(dir, &site.enable)?;
        }
    }
    Ok(parent)
}

pub(crate) fn enable(dir: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
    let sc = dir.join("cgroup.subtree_control");
    let on = read_file(&sc)?;
    let on: BTreeSet<&str> = on.split_whitespace().collect();
    let add: Vec<String> = controllers
        .iter()
        .filter(|c| !on.contains(*c))
        .map(|c| format!("+{c}"))
        .collect();
    if add.is_empty() {
        return Ok(());
    }
    write_file(&sc, &add.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(cgroup_name("abc123").unwrap(), "foxbox-abc123");
        for bad in ["", ".", "..", "a/b", "a\nb"] {
            assert!(cgroup_name(bad).is_err(), "{bad:?}");
        }
        assert!(cgroup_name(&"x".repeat(201)).is_err());
    }
}
