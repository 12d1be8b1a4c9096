//! Reading the host: everything [`super::check_facts`] needs, gathered once, read-only.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::net::probe::{self, TunStatus};
use crate::plan::{ImageRef, MountKind, Plan};

/// A subordinate id range from /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubidRange {
    pub start: u64,
    pub count: u64,
}

/// What the host checks know about this machine and user.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub uid: u32,
    pub user_name: Option<String>,
    /// Why user namespaces cannot be created, when they cannot.
    pub userns_blocked: Option<String>,
    pub subuid: Option<SubidRange>,
    pub subgid: Option<SubidRange>,
    pub newuidmap: bool,
    pub newgidmap: bool,
    pub cpus: usize,
    pub pasta: bool,
    pub slirp4netns: bool,
    pub tun_usable: bool,
    pub unprivileged_port_start: u32,
    pub overlay_problem: Option<String>,
    /// Files and directories the plan names that this user cannot read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
}

fn read(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok()
}

fn read_trim(p: &str) -> Option<String> {
    read(Path::new(p)).map(|s| s.trim().to_string())
}

impl Facts {
    /// Read the host for `plan`.
    pub fn gather(plan: &Plan) -> Facts {
        let uid = nix::unistd::geteuid().as_raw();
        let user_name = nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| u.name);
        let ids = |file: &str| {
            read(Path::new(file)).and_then(|t| subid_range(&t, user_name.as_deref(), uid))
        };
        let net = probe::probe_host();
        Facts {
            uid,
            userns_blocked: userns_blocked(uid),
            subuid: ids("/etc/subuid"),
            subgid: ids("/etc/subgid"),
            user_name: user_name.clone(),
            newuidmap: in_path("newuidmap"),
            newgidmap: in_path("newgidmap"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pasta: net.pasta.path.is_some(),
            slirp4netns: net.slirp4netns.path.is_some(),
            // Opened read-write as this user, as the helpers will (root passes access(2) even
            // for a device it could not use).
            tun_usable: net.tun == TunStatus::Usable,
            unprivileged_port_start: read_trim("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1024),
            overlay_problem: overlay_problem(uid),
            unreadable: unreadable(plan),
        }
    }
}

fn userns_blocked(uid: u32) -> Option<String> {
    if read_trim("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some("user.max_user_namespaces is 0".into());
    }
    if uid == 0 {
        return None;
    }
    if read_trim("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some("kernel.unprivileged_userns_clone is 0".into());
    }
    if read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some("kernel.apparmor_restrict_unprivileged_userns is 1".into());
    }
    None
}

/// The first usable range for the user (by name or uid) in an /etc/subuid-style text.
pub fn subid_range(text: &str, name: Option<&str>, uid: u32) -> Option<SubidRange> {
    let uid_s = uid.to_string();
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        if who != uid_s && Some(who) != name {
            return None;
        }
        let start = f.next()?.parse().ok()?;
        let count: u64 = f.next()?.parse().ok()?;
        (count > 0).then_some(SubidRange { start, count })
    })
}

/// Whether an executable `name` is on PATH (or in the usual system directories).
pub fn in_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|d| {
            fs::metadata(d.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn overlay_problem(uid: u32) -> Option<String> {
    let release = read_trim("/proc/sys/kernel/osrelease").unwrap_or_default();
    let listed = read(Path::new("/proc/filesystems")).is_some_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
    });
    let module = Path::new("/lib/modules")
        .join(&release)
        .join("kernel/fs/overlayfs")
        .exists();
    if !listed && !module {
        return Some("the kernel has no overlay file system".into());
    }
    if uid != 0 {
        let mut v = release
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok());
        if let (Some(major), Some(minor)) = (v.next(), v.next()) {
            if (major, minor) < (5, 11) {
                return Some(format!(
                    "kernel {release} is older than 5.11, the first to allow overlayfs in a user namespace"
                ));
            }
        }
    }
    None
}

/// Check that this user can read a file (by opening it) or list a directory.
fn readable(p: &Path) -> Result<(), String> {
    let m = fs::metadata(p).map_err(|e| e.to_string())?;
    let r = if m.is_dir() {
        fs::read_dir(p).map(|_| ())
    } else {
        fs::File::open(p).map(|_| ())
    };
    r.map_err(|e| e.to_string())
}

fn unreadable(plan: &Plan) -> Vec<(PathBuf, String)> {
    let mut paths: Vec<&Path> = plan
        .mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Bind { source } => Some(source.as_path()),
            _ => None,
        })
        .collect();
    if let ImageRef::Tarball { path } = &plan.image.value {
        paths.push(path);
    }
    paths
        .into_iter()
        .filter_map(|p| readable(p).err().map(|e| (p.to_path_buf(), e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ranges_by_name_or_uid() {
        let t = "root:1:2\nfox:100000:65536\n1002:200000:0\n1003:300000:10\n";
        assert_eq!(
            subid_range(t, Some("fox"), 1001),
            Some(SubidRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            subid_range(t, None, 1002),
            None,
            "an empty range is no range"
        );
        assert_eq!(
            subid_range(t, Some("x"), 1003),
            Some(SubidRange {
                start: 300000,
                count: 10
            })
        );
        assert_eq!(subid_range("garbage\n::\n", Some("fox"), 1), None);
    }

    #[test]
    fn finds_programs() {
        assert!(in_path("sh"));
        assert!(!in_path("no-such-program-foxbox"));
    }
}
