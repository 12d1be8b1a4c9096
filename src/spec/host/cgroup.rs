//! Where this process's cgroups are, per controller, from /proc/self/mountinfo and
//! /proc/self/cgroup (cgroup v1, v2 or a hybrid of both). Read-only: nothing is created.
//!
//! The cgroup module may replace this detection with its own once it lands.

use std::path::{Path, PathBuf};

/// A cgroup file system mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// `None`: cgroup2; `Some(controllers)`: a v1 hierarchy with these controllers.
    pub controllers: Option<Vec<String>>,
    /// The path inside the hierarchy that is mounted (usually `/`).
    pub root: String,
    pub mountpoint: PathBuf,
}

/// One line of /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Empty for the v2 line (`0::/path`).
    pub controllers: Vec<String>,
    pub path: String,
}

/// Where a controller can be used, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// v1 or v2.
    pub version: u8,
    /// The directory that limits would be set in (or under).
    pub dir: PathBuf,
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(o) if b[i] == b'\\' => {
                let v = o.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(v as u8);
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup mounts in a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let (root, mountpoint) = (l.get(3)?, l.get(4)?);
            let (fstype, superopts) = (r.first()?, r.get(2).copied().unwrap_or(""));
            let controllers = match *fstype {
                "cgroup2" => None,
                "cgroup" => Some(
                    superopts
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                        .map(str::to_string)
                        .collect(),
                ),
                _ => return None,
            };
            Some(CgroupMount {
                controllers,
                root: unescape(root),
                mountpoint: PathBuf::from(unescape(mountpoint)),
            })
        })
        .collect()
}

/// The lines of a /proc/self/cgroup text.
pub fn parse_self_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// `path` (a cgroup path) under a mount whose root is `root`.
fn under(mount: &CgroupMount, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(mount.root.trim_end_matches('/'))
        .unwrap_or(path)
        .trim_start_matches('/');
    if rel.is_empty() {
        mount.mountpoint.clone()
    } else {
        mount.mountpoint.join(rel)
    }
}

/// Where `controller` is for this process: a v1 hierarchy that has it wins (a hybrid host binds
/// a controller to one hierarchy only), else cgroup v2 when our v2 cgroup offers it.
/// `parent` replaces the process's own cgroup path (the `--cgroup-parent` of `run`/`up`).
pub fn locate(
    controller: &str,
    mounts: &[CgroupMount],
    member: &[Membership],
    parent: Option<&str>,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Option<Location> {
    let v1 = mounts.iter().find(|m| {
        m.controllers
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c == controller))
    });
    if let Some(m) = v1 {
        let own = member
            .iter()
            .find(|l| l.controllers.iter().any(|c| c == controller))
            .map(|l| l.path.as_str())
            .unwrap_or("/");
        return Some(Location {
            version: 1,
            dir: under(m, parent.unwrap_or(own)),
        });
    }
    let v2 = mounts.iter().find(|m| m.controllers.is_none())?;
    let own = member.iter().find(|l| l.controllers.is_empty())?;
    let own_dir = under(v2, &own.path);
    let offered = read(&own_dir.join("cgroup.controllers"))?;
    if !offered.split_whitespace().any(|c| c == controller) {
        return None;
    }
    Some(Location {
        version: 2,
        dir: parent.map_or(own_dir, |p| under(v2, p)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:40 /sub /mnt/with\\040space rw - cgroup cgroup rw,cpuacct,cpu
";

    #[test]
    fn parses_mountinfo_and_self_cgroup() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 6);
        assert_eq!(m[0].controllers, Some(vec!["cpu".to_string()]));
        assert_eq!(
            m[3].controllers,
            Some(vec![]),
            "name= hierarchies have no controller"
        );
        assert_eq!(m[4].controllers, None);
        assert_eq!(m[5].mountpoint, PathBuf::from("/mnt/with space"));
        assert_eq!(m[5].root, "/sub");
        let c = parse_self_cgroup("4:memory:/a/b\n2:cpu,cpuacct:/\n0::/user.slice\n");
        assert_eq!(c[0].controllers, ["memory"]);
        assert_eq!(c[1].controllers, ["cpu", "cpuacct"]);
        assert!(c[2].controllers.is_empty());
        assert_eq!(c[2].path, "/user.slice");
    }

    #[test]
    fn locates_v1_then_v2() {
        let mounts = parse_mountinfo(HYBRID);
        let member = parse_self_cgroup("4:memory:/a/b\n0::/u\n");
        let read = |p: &Path| {
            (p == Path::new("/sys/fs/cgroup/unified/u/cgroup.controllers"))
                .then(|| "hugetlb io".to_string())
        };
        let l = locate("memory", &mounts, &member, None, &read).unwrap();
        assert_eq!(
            l,
            Location {
                version: 1,
                dir: "/sys/fs/cgroup/memory/a/b".into()
            }
        );
        let l = locate("memory", &mounts, &member, Some("/deleg"), &read).unwrap();
        assert_eq!(l.dir, PathBuf::from("/sys/fs/cgroup/memory/deleg"));
        let l = locate("io", &mounts, &member, None, &read).unwrap();
        assert_eq!(
            l,
            Location {
                version: 2,
                dir: "/sys/fs/cgroup/unified/u".into()
            }
        );
        assert_eq!(locate("rdma", &mounts, &member, None, &read), None);
    }
}
