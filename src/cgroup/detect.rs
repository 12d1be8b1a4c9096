//! Where each controller lives: on a cgroup v1 hierarchy (a `cgroup` mount in mountinfo whose
//! super options name it) or on cgroup v2 (listed in a `cgroup2` mount's cgroup.controllers),
//! and where this process sits in each hierarchy (/proc/self/cgroup).

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CgroupError;

/// The controllers foxbox uses. `Cpuacct` is for cpu time usage: its own controller on v1, the
/// always-present `cpu.stat` on v2. Boxes use the first four; an OCI container's resources
/// (`linux.resources`) the others too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Controller {
    Memory,
    Cpu,
    Cpuacct,
    Pids,
    Cpuset,
    /// `io` on v2.
    Blkio,
    /// v2: an eBPF program, not a controller.
    Devices,
    /// v2: `cgroup.freeze` in every cgroup.
    Freezer,
    Hugetlb,
    /// v1 only.
    NetCls,
    /// v1 only.
    NetPrio,
}

impl Controller {
    pub const ALL: [Controller; 4] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Pids,
    ];

    /// The name in /proc/cgroups and in v1 mount options.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Pids => "pids",
            Controller::Cpuset => "cpuset",
            Controller::Blkio => "blkio",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
        }
    }

    /// The name in v2's cgroup.controllers; `None` for what v2 has in its core (cpu time,
    /// freezing, device rules) or lacks (see [`Controller::on_v2`]).
    pub fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Cpuacct
            | Controller::Devices
            | Controller::Freezer
            | Controller::NetCls
            | Controller::NetPrio => None,
            Controller::Blkio => Some("io"),
            c => Some(c.name()),
        }
    }

    /// Whether cgroup v2 has it at all (net_cls and net_prio are v1 only).
    pub fn on_v2(self) -> bool {
        !matches!(self, Controller::NetCls | Controller::NetPrio)
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hierarchy {
    pub version: Version,
    /// Where it is mounted, e.g. /sys/fs/cgroup/memory.
    pub mount: PathBuf,
    /// The cgroup the mount shows as its root (mountinfo's 4th field; `/` unless this process
    /// is in a cgroup namespace or the mount is a bind of a sub-cgroup).
    pub mount_root: PathBuf,
    /// v1: the controllers bound to it (`cpu`, `cpuacct` when co-mounted); v2: the root's
    /// cgroup.controllers.
    pub controllers: BTreeSet<String>,
    /// This process's cgroup in the hierarchy, as /proc/self/cgroup gives it.
    pub own: Option<PathBuf>,
}

impl Hierarchy {
    /// The directory of a cgroup given by its path in the hierarchy (as in /proc/PID/cgroup).
    pub fn dir_of(&self, cgroup: &Path) -> Option<PathBuf> {
        let rel = cgroup.strip_prefix(&self.mount_root).ok()?;
        if rel.as_os_str().is_empty() {
            // join("") would add a trailing slash, and paths are compared and shown.
            return Some(self.mount.clone());
        }
        Some(self.mount.join(rel))
    }

    /// This process's cgroup directory.
    pub fn own_dir(&self) -> Option<PathBuf> {
        self.dir_of(self.own.as_deref()?)
    }

    pub fn has(&self, c: Controller) -> bool {
        match self.version {
            Version::V1 => self.controllers.contains(c.name()),
            Version::V2 => match c.v2_name() {
                Some(n) => self.controllers.contains(n),
                None => c.on_v2(),
            },
        }
    }
}

/// The cgroup layout of this host as this process sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    pub hierarchies: Vec<Hierarchy>,
    /// The real uid of the caller (delegation is checked for it).
    pub uid: u32,
}

impl Host {
    /// Read /proc/self/mountinfo, /proc/self/cgroup and the cgroup2 roots' cgroup.controllers.
    pub fn detect() -> Result<Host, CgroupError> {
        let mountinfo = read("/proc/self/mountinfo")?;
        let own = read("/proc/self/cgroup")?;
        Ok(Host::from_parts(
            &mountinfo,
            &own,
            |mount| fs::read_to_string(mount.join("cgroup.controllers")).ok(),
            nix::unistd::getuid().as_raw(),
        ))
    }

    /// Build the layout from the text of mountinfo and /proc/self/cgroup; `v2_controllers`
    /// gives a cgroup2 mount's cgroup.controllers.
    pub fn from_parts(
        mountinfo: &str,
        proc_cgroup: &str,
        v2_controllers: impl Fn(&Path) -> Option<String>,
        uid: u32,
    ) -> Host {
        let own = parse_proc_cgroup(proc_cgroup);
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for m in mountinfo
            .lines()
            .filter_map(crate::sys::mountinfo::parse_line)
        {
            let h = match m.fstype.as_str() {
                "cgroup" => {
                    let controllers: BTreeSet<String> = m
                        .super_opts
                        .split(',')
                        .filter(|o| KNOWN_V1.contains(o))
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() {
                        continue; // name=systemd and friends: no controller of ours
                    }
                    let own = own
                        .iter()
                        .find(|(ctrls, _)| ctrls.split(',').any(|c| controllers.contains(c)))
                        .map(|(_, p)| p.clone());
                    Hierarchy {
                        version: Version::V1,
                        mount: m.mount_point,
                        mount_root: m.root,
                        controllers,
                        own,
                    }
                }
                "cgroup2" => {
                    let controllers = v2_controllers(&m.mount_point)
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    let own = own
                        .iter()
                        .find(|(ctrls, _)| ctrls.is_empty())
                        .map(|(_, p)| p.clone());
                    Hierarchy {
                        version: Version::V2,
                        mount: m.mount_point,
                        mount_root: m.root,
                        controllers,
                        own,
                    }
                }
                _ => continue,
            };
            // The same hierarchy can be mounted twice (bind mounts, nested runtimes): keep the
            // first mount showing its whole tree.
            if let Some(prev) = hierarchies
                .iter_mut()
                .find(|p| p.version == h.version && p.controllers == h.controllers)
            {
                if prev.mount_root != Path::new("/") && h.mount_root == Path::new("/") {
                    *prev = h;
                }
                continue;
            }
            hierarchies.push(h);
        }
        Host { hierarchies, uid }
    }

    /// Which hierarchy serves a controller: a v1 hierarchy that has it bound, else the cgroup2
    /// mount that lists it (cpu time: any cgroup2 mount, it is in v2's core).
    pub fn find(&self, c: Controller) -> Option<usize> {
        let v1 = self
            .hierarchies
            .iter()
            .position(|h| h.version == Version::V1 && h.has(c));
        v1.or_else(|| {
            let v2 = |pred: &dyn Fn(&Hierarchy) -> bool| {
                self.hierarchies
                    .iter()
                    .position(|h| h.version == Version::V2 && pred(h))
            };
            match c.v2_name() {
                _ if !c.on_v2() => None,
                Some(n) => v2(&|h| h.controllers.contains(n)),
                // cpu time from cpu.stat: prefer the mount that also has the cpu controller.
                None => v2(&|h| h.controllers.contains("cpu")).or_else(|| v2(&|_| true)),
            }
        })
    }

    pub fn hierarchy(&self, c: Controller) -> Result<&Hierarchy, CgroupError> {
        self.find(c)
            .map(|i| &self.hierarchies[i])
            .ok_or(CgroupError::NoController { controller: c })
    }
}

/// v1 controllers foxbox may meet in mount options (others are ignored).
const KNOWN_V1: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

fn read(path: &str) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.into(),
        source,
    })
}

/// /proc/PID/cgroup: `hierarchy-id:controllers:path` lines; v2 has empty controllers.
fn parse_proc_cgroup(text: &str) -> Vec<(String, PathBuf)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?.to_string();
            let path = it.next()?;
            Some((ctrls, PathBuf::from(path)))
        })
        .collect()
}

/// Check a `--cgroup-parent` value: a path relative to each hierarchy's root (a leading `/` is
/// allowed, as podman does), without `..` or `.` components.
pub fn parse_parent(parent: &str) -> Result<PathBuf, CgroupError> {
    let bad = |why| CgroupError::BadParent {
        parent: parent.to_string(),
        why,
    };
    if parent.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut rel = PathBuf::new();
    for c in Path::new(parent).components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => rel.push(n),
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(bad("`.` and `..` are not allowed"))
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(bad("it names the root of the hierarchy"));
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/e5f8
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn hybrid_host_puts_our_controllers_on_v1() {
        let h = Host::from_parts(
            HYBRID_MOUNTINFO,
            HYBRID_CGROUP,
            |_| Some("hugetlb\n".into()),
            1001,
        );
        for c in Controller::ALL {
            let hi = h.hierarchy(c).unwrap();
            assert_eq!(hi.version, Version::V1, "{c}");
            assert_eq!(hi.mount, Path::new("/sys/fs/cgroup").join(c.name()));
        }
        let mem = h.hierarchy(Controller::Memory).unwrap();
        assert_eq!(mem.own.as_deref(), Some(Path::new("/process_api/e5f8")));
        assert_eq!(
            mem.own_dir().unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/e5f8")
        );
        assert_eq!(
            h.hierarchies.len(),
            5,
            "systemd's named hierarchy is skipped"
        );
    }

    #[test]
    fn pure_v2_host_and_comounted_v1() {
        let h = Host::from_parts(
            "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n",
            |p| {
                assert_eq!(p, Path::new("/sys/fs/cgroup"));
                Some("cpuset cpu io memory pids\n".into())
            },
            1000,
        );
        for c in Controller::ALL {
            assert_eq!(h.hierarchy(c).unwrap().version, Version::V2);
        }
        let h = Host::from_parts(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             33 31 0:30 /sub /mnt/x\\040y rw - cgroup cgroup rw,cpu,cpuacct\n",
            "3:cpu,cpuacct:/a/b\n",
            |_| None,
            0,
        );
        assert_eq!(h.hierarchies.len(), 1, "one hierarchy mounted twice");
        assert_eq!(h.find(Controller::Cpu), h.find(Controller::Cpuacct));
        assert_eq!(h.find(Controller::Memory), None);
        assert!(matches!(
            h.hierarchy(Controller::Pids),
            Err(CgroupError::NoController { .. })
        ));
    }

    #[test]
    fn v2_mount_without_a_controller_does_not_serve_it() {
        let h = Host::from_parts(HYBRID_MOUNTINFO, HYBRID_CGROUP, |_| Some(String::new()), 0);
        let only_v2 = Host {
            hierarchies: h
                .hierarchies
                .into_iter()
                .filter(|h| h.version == Version::V2)
                .collect(),
            uid: 0,
        };
        assert_eq!(only_v2.find(Controller::Memory), None);
        assert_eq!(
            only_v2.find(Controller::Cpuacct),
            Some(0),
            "cpu.stat is core"
        );
    }

    #[test]
    fn parent_paths() {
        assert_eq!(
            parse_parent("foxbox-1001").unwrap(),
            Path::new("foxbox-1001")
        );
        assert_eq!(parse_parent("/a/b/").unwrap(), Path::new("a/b"));
        assert!(parse_parent("../x").is_err());
        assert!(parse_parent("a/../../x").is_err());
        assert!(parse_parent("/").is_err());
        assert!(parse_parent("").is_err());
    }
}
