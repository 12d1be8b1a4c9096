//! /proc/PID/mountinfo (proc(5)): one parser for every reader (cgroup hierarchies, the mounts
//! an OCI container left in the runtime's mount namespace).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// One mount, as a line of mountinfo describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    pub parent: u64,
    /// The directory of the filesystem that is mounted (4th field).
    pub root: PathBuf,
    /// Where, relative to the reading process's root (5th field).
    pub mount_point: PathBuf,
    pub fstype: String,
    pub super_opts: String,
}

/// One line; `None` for a line that does not parse.
pub fn parse_line(line: &str) -> Option<Entry> {
    let (pre, post) = line.split_once(" - ")?;
    let pre: Vec<&str> = pre.split(' ').collect();
    let mut post = post.split(' ');
    let fstype = post.next()?.to_string();
    let _source = post.next()?;
    let super_opts = post.next().unwrap_or("").to_string();
    Some(Entry {
        id: pre.first()?.parse().ok()?,
        parent: pre.get(1)?.parse().ok()?,
        root: PathBuf::from(unescape(pre.get(3)?)),
        mount_point: PathBuf::from(unescape(pre.get(4)?)),
        fstype,
        super_opts,
    })
}

/// Every mount of a mountinfo file (`/proc/self/mountinfo`, `/proc/PID/mountinfo`).
pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter_map(parse_line)
        .collect())
}

/// The id (mountinfo's first field) of the mount an open file is on, from
/// /proc/self/fdinfo (`mnt_id:`).
pub fn mount_id_of(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no mnt_id in fdinfo"))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape("/a\\040b\\011c"), "/a b\tc");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
        assert_eq!(unescape("\\"), "\\");
    }

    #[test]
    fn lines() {
        let e = parse_line(
            "224 223 0:40 / /tmp/a\\040b/proc rw,nosuid shared:5 - proc proc rw,hidepid=2",
        )
        .unwrap();
        assert_eq!((e.id, e.parent), (224, 223));
        assert_eq!(e.mount_point, Path::new("/tmp/a b/proc"));
        assert_eq!(e.root, Path::new("/"));
        assert_eq!(
            (e.fstype.as_str(), e.super_opts.as_str()),
            ("proc", "rw,hidepid=2")
        );
        assert_eq!(parse_line("x 1 0:1 / / rw - ext4 /dev/vda rw"), None);
        assert_eq!(parse_line("garbage"), None);
    }
}
