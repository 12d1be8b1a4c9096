//! uid/gid maps for a box's user namespace.
//!
//! - root: the identity map over the whole id space. The box is in a user namespace of its own,
//!   so its capabilities never reach the host's, yet files keep their real owners.
//! - an unprivileged user with a subordinate range (/etc/subuid, /etc/subgid) and
//!   newuidmap/newgidmap installed: the user's own id becomes the box's 0 and the range becomes
//!   1..=count, as podman does.
//! - otherwise: only the user's own id, as the box's 0.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

/// One line of a uid_map/gid_map: `count` ids from `inside` map to ids from `outside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The maps for one user namespace, and how to install them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdMaps {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
    /// Install through the setuid helpers newuidmap/newgidmap (needed for a subordinate range).
    pub via_helpers: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot run {helper}: {source}")]
    Spawn {
        helper: &'static str,
        source: io::Error,
    },
    #[error("{helper} {args} failed: {stderr}")]
    Helper {
        helper: &'static str,
        args: String,
        stderr: String,
    },
}

/// The full id space less the invalid id (u32::MAX is "-1").
const ALL_IDS: u32 = u32::MAX;

pub const NEWUIDMAP: &str = "newuidmap";
pub const NEWGIDMAP: &str = "newgidmap";

impl IdMaps {
    /// The maps for a box started by the calling process. Worked out once per process: the
    /// caller's ids and the id files do not change while a command runs, and several steps
    /// (image store, executor) ask.
    pub fn for_caller() -> IdMaps {
        static MAPS: std::sync::OnceLock<IdMaps> = std::sync::OnceLock::new();
        MAPS.get_or_init(|| {
            let uid = nix::unistd::geteuid().as_raw();
            let gid = nix::unistd::getegid().as_raw();
            if uid == 0 {
                // Root maps the whole id space itself: no helpers, no id files to read.
                return IdMaps::compute(0, gid, None, "", "", false);
            }
            let name = user_name(uid);
            let helpers = find_in_path(NEWUIDMAP).is_some() && find_in_path(NEWGIDMAP).is_some();
            let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
            let subgid = fs::read_to_string("/etc/subgid").unwrap_or_default();
            IdMaps::compute(uid, gid, name.as_deref(), &subuid, &subgid, helpers)
        })
        .clone()
    }

    /// Pure form of [`IdMaps::for_caller`], for tests and `check --host`.
    pub fn compute(
        uid: u32,
        gid: u32,
        name: Option<&str>,
        subuid: &str,
        subgid: &str,
        helpers: bool,
    ) -> IdMaps {
        if uid == 0 {
            let all = vec![IdRange {
                inside: 0,
                outside: 0,
                count: ALL_IDS,
            }];
            return IdMaps {
                uids: all.clone(),
                gids: all,
                via_helpers: false,
            };
        }
        let own = |id| IdRange {
            inside: 0,
            outside: id,
            count: 1,
        };
        let su = subordinate_ranges(subuid, name, uid);
        let sg = subordinate_ranges(subgid, name, uid);
        if helpers && !su.is_empty() && !sg.is_empty() {
            IdMaps {
                uids: stack(own(uid), &su),
                gids: stack(own(gid), &sg),
                via_helpers: true,
            }
        } else {
            IdMaps {
                uids: vec![own(uid)],
                gids: vec![own(gid)],
                via_helpers: false,
            }
        }
    }

    /// The maps of the user namespace process `pid` is in, as /proc shows them to the caller
    /// (ids inside, and the caller's ids they stand for).
    pub fn of_process(pid: i32) -> io::Result<IdMaps> {
        let read = |kind: &str| -> io::Result<Vec<IdRange>> {
            let text = fs::read_to_string(format!("/proc/{pid}/{kind}_map"))?;
            Ok(parse_map(&text))
        };
        Ok(IdMaps {
            uids: read("uid")?,
            gids: read("gid")?,
            via_helpers: false,
        })
    }

    /// True when the box has more than one id (a subordinate range, or root's identity map).
    pub fn has_range(&self) -> bool {
        self.uids.iter().map(|r| r.count as u64).sum::<u64>() > 1
    }

    /// The host uid that box uid `inside` is stored as, if it is mapped.
    pub fn host_uid(&self, inside: u32) -> Option<u32> {
        map_one(&self.uids, inside)
    }

    /// The host gid that box gid `inside` is stored as, if it is mapped.
    pub fn host_gid(&self, inside: u32) -> Option<u32> {
        map_one(&self.gids, inside)
    }

    /// Install the maps for the process `pid`, which has just unshared its user namespace and
    /// waits. Must run in the parent user namespace.
    pub fn write(&self, pid: i32) -> Result<(), IdMapError> {
        if self.via_helpers {
            return run_helpers(pid, &self.uids, &self.gids);
        }
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        if nix::unistd::geteuid().as_raw() != 0 {
            // An unprivileged writer may only map its own gid once setgroups is denied.
            write_file(&proc_dir.join("setgroups"), "deny")?;
        }
        write_file(&proc_dir.join("uid_map"), &map_text(&self.uids))?;
        write_file(&proc_dir.join("gid_map"), &map_text(&self.gids))?;
        Ok(())
    }
}

impl IdMaps {
    /// podman's `keep-id` maps, made from the caller's maps (`self`): the caller's ids become
    /// box ids `uid` and `gid`; rootless, box ids below them come from the start of the
    /// subordinate range and the ones above from the rest (podman's
    /// `getRootlessKeepIDMapping`). Root's maps (the identity) stay as they are, as podman's.
    pub fn keep_id(&self, uid: u32, gid: u32) -> IdMaps {
        let (u, g) = self.keep_id_moves(uid, gid);
        IdMaps {
            uids: through(&u, &self.uids),
            gids: through(&g, &self.gids),
            via_helpers: self.via_helpers,
        }
    }

    /// The `keep-id` maps as moves within the caller's maps (`self`): each range takes box
    /// ids (`inside`) to the ids they are in the caller's maps (`outside`, an `inside` of
    /// `self`). A file an image stores as box id `n` must be stored as that id to keep its
    /// owner in a `keep-id` box.
    pub fn keep_id_moves(&self, uid: u32, gid: u32) -> (Vec<IdRange>, Vec<IdRange>) {
        let moves = |own: u32, ranges: &[IdRange]| {
            let total: u64 = ranges.iter().map(|r| u64::from(r.count)).sum();
            if ranges
                == [IdRange {
                    inside: 0,
                    outside: 0,
                    count: ALL_IDS,
                }]
            {
                return ranges.to_vec();
            }
            // The caller's maps have the caller at 0 and the subordinate ids at 1..=size.
            let size = u32::try_from(total.saturating_sub(1)).unwrap_or(ALL_IDS - 1);
            let mut v = Vec::new();
            if size > 0 && own != 0 {
                v.push(IdRange {
                    inside: 0,
                    outside: 1,
                    count: own.min(size),
                });
            }
            v.push(IdRange {
                inside: own,
                outside: 0,
                count: 1,
            });
            if size > own {
                v.push(IdRange {
                    inside: own + 1,
                    outside: own + 1,
                    count: size - own,
                });
            }
            v
        };
        (moves(uid, &self.uids), moves(gid, &self.gids))
    }
}

/// `moves` (box ids to ids of `parent`'s inside) carried through `parent`: box ids to the ids
/// `parent` maps them to.
fn through(moves: &[IdRange], parent: &[IdRange]) -> Vec<IdRange> {
    overlaps(moves, parent, |p| (p.inside, p.outside))
}

/// A namespace's maps (`maps`, box ids to host ids) as seen from a parent namespace whose
/// maps are `parent`: box ids to the parent's ids (what a process in the parent writes).
pub fn nested(maps: &[IdRange], parent: &[IdRange]) -> Vec<IdRange> {
    overlaps(maps, parent, |p| (p.outside, p.inside))
}

/// Each range of `ranges` split where the ranges of `other` end: the part whose `outside`
/// falls in `other`'s `from` ids, sent to its `to` ids (`key` gives a range's (from, to)).
fn overlaps(
    ranges: &[IdRange],
    other: &[IdRange],
    key: impl Fn(&IdRange) -> (u32, u32),
) -> Vec<IdRange> {
    let mut v = Vec::new();
    for r in ranges {
        let (r_lo, r_hi) = (
            u64::from(r.outside),
            u64::from(r.outside) + u64::from(r.count),
        );
        for o in other {
            let (from, to) = key(o);
            let (o_lo, o_hi) = (u64::from(from), u64::from(from) + u64::from(o.count));
            let (lo, hi) = (r_lo.max(o_lo), r_hi.min(o_hi));
            if lo >= hi {
                continue;
            }
            // Every value below fits: each lies within a range of u32 ids.
            v.push(IdRange {
                inside: (u64::from(r.inside) + lo - r_lo) as u32,
                outside: (u64::from(to) + lo - o_lo) as u32,
                count: (hi - lo) as u32,
            });
        }
    }
    v.sort_by_key(|r| r.inside);
    v
}

/// The ids a map gives the box, as a person reads them: `0-65536`, or `0, 5-9`.
pub fn describe(ranges: &[IdRange]) -> String {
    let mut spans: Vec<(u64, u64)> = ranges
        .iter()
        .filter(|r| r.count > 0)
        .map(|r| {
            (
                u64::from(r.inside),
                u64::from(r.inside) + u64::from(r.count) - 1,
            )
        })
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (lo, hi) in spans {
        match merged.last_mut() {
            Some(last) if lo <= last.1 + 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn map_one(ranges: &[IdRange], inside: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let off = inside.checked_sub(r.inside)?;
        (off < r.count).then(|| r.outside + off)
    })
}

fn stack(own: IdRange, subs: &[(u32, u32)]) -> Vec<IdRange> {
    let mut v = vec![own];
    let mut next = 1u32;
    for &(start, count) in subs {
        v.push(IdRange {
            inside: next,
            outside: start,
            count,
        });
        next = next.saturating_add(count);
    }
    v
}

/// The lines of a uid_map/gid_map file.
fn parse_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some(IdRange {
                inside: f.next()??,
                outside: f.next()??,
                count: f.next()??,
            })
        })
        .collect()
}

/// The ranges `(start, count)` in a /etc/subuid-format text for a user, by name or by uid.
pub fn subordinate_ranges(text: &str, name: Option<&str>, uid: u32) -> Vec<(u32, u32)> {
    let uid_s = uid.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let who = f.next()?;
            let start: u32 = f.next()?.trim().parse().ok()?;
            let count: u32 = f.next()?.trim().parse().ok()?;
            let matches = who == uid_s || Some(who) == name;
            (matches && count > 0).then_some((start, count))
        })
        .collect()
}

fn map_text(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

fn write_file(path: &Path, text: &str) -> Result<(), IdMapError> {
    fs::write(path, text).map_err(|source| IdMapError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn helper_args(pid: i32, ranges: &[IdRange]) -> Vec<String> {
    let mut args = vec![pid.to_string()];
    for r in ranges {
        args.extend([
            r.inside.to_string(),
            r.outside.to_string(),
            r.count.to_string(),
        ]);
    }
    args
}

/// Run newuidmap and newgidmap side by side (each is a setuid exec of its own; together they
/// are most of a rootless box's start-up time).
fn run_helpers(pid: i32, uids: &[IdRange], gids: &[IdRange]) -> Result<(), IdMapError> {
    let spawn = |helper: &'static str, args: &[String]| {
        Command::new(helper)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| IdMapError::Spawn { helper, source })
    };
    let uargs = helper_args(pid, uids);
    let gargs = helper_args(pid, gids);
    let u = spawn(NEWUIDMAP, &uargs)?;
    let g = spawn(NEWGIDMAP, &gargs);
    let ur = finish(NEWUIDMAP, &uargs, u);
    let gr = g.and_then(|g| finish(NEWGIDMAP, &gargs, g));
    ur.and(gr)
}

fn finish(
    helper: &'static str,
    args: &[String],
    child: std::process::Child,
) -> Result<(), IdMapError> {
    let out = child
        .wait_with_output()
        .map_err(|source| IdMapError::Spawn { helper, source })?;
    if !out.status.success() {
        return Err(IdMapError::Helper {
            helper,
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The login name of a uid from /etc/passwd.
pub fn user_name(uid: u32) -> Option<String> {
    // /etc/passwd first: the name service would load its modules for the same answer on
    // every start. Users it does not list (LDAP, say) go to the name service.
    let uid_s = uid.to_string();
    let local = fs::read_to_string("/etc/passwd").ok().and_then(|text| {
        text.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid_s).then(|| name.to_string())
        })
    });
    local.or_else(|| {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    })
}

/// A program's path in $PATH (or the usual system dirs when PATH is unset).
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "alice:100000:65536\n1002:200000:1000\nbob:300000:0\n";

    #[test]
    fn proc_maps_parse_with_their_padding() {
        let m = parse_map("         0       1000          1\n         1     100000      65536\n");
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[1],
            IdRange {
                inside: 1,
                outside: 100000,
                count: 65536
            }
        );
        assert!(parse_map("junk\n").is_empty());
    }

    #[test]
    fn user_names_come_from_passwd() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn root_gets_the_identity_map() {
        let m = IdMaps::compute(0, 0, Some("root"), SUB, SUB, true);
        assert_eq!(
            m.uids,
            vec![IdRange {
                inside: 0,
                outside: 0,
                count: u32::MAX
            }]
        );
        assert!(!m.via_helpers);
        assert_eq!(m.host_uid(1234), Some(1234));
    }

    #[test]
    fn user_with_range_by_name_stacks_it_after_their_own_id() {
        let m = IdMaps::compute(1001, 1001, Some("alice"), SUB, SUB, true);
        assert!(m.via_helpers);
        assert_eq!(m.host_uid(0), Some(1001));
        assert_eq!(m.host_uid(1), Some(100000));
        assert_eq!(m.host_uid(65536), Some(165535));
        assert_eq!(m.host_uid(65537), None);
        assert!(m.has_range());
    }

    #[test]
    fn user_matched_by_uid_and_zero_count_ignored() {
        let m = IdMaps::compute(1002, 1002, Some("carol"), SUB, SUB, true);
        assert_eq!(m.host_gid(1000), Some(200999));
        let b = IdMaps::compute(1003, 1003, Some("bob"), SUB, SUB, true);
        assert!(!b.has_range());
    }

    #[test]
    fn without_helpers_only_the_own_id_is_mapped() {
        let m = IdMaps::compute(1001, 1001, Some("alice"), SUB, SUB, false);
        assert_eq!(
            m.uids,
            vec![IdRange {
                inside: 0,
                outside: 1001,
                count: 1
            }]
        );
        assert!(!m.via_helpers);
        assert_eq!(map_text(&m.uids), "0 1001 1\n");
    }

    #[test]
    fn keep_id_maps_as_podman_makes_them() {
        let caller = IdMaps::compute(1001, 1001, Some("alice"), SUB, SUB, true);
        let k = caller.keep_id(1001, 1001);
        // podman: 0..uid from the range's start, uid itself, the rest of the range above.
        assert_eq!(
            k.uids,
            vec![
                IdRange {
                    inside: 0,
                    outside: 100000,
                    count: 1001
                },
                IdRange {
                    inside: 1001,
                    outside: 1001,
                    count: 1
                },
                IdRange {
                    inside: 1002,
                    outside: 101001,
                    count: 64535
                },
            ]
        );
        assert_eq!(k.host_uid(1001), Some(1001));
        assert_eq!(k.host_uid(0), Some(100000));
        assert_eq!(
            describe(&k.uids),
            describe(&caller.uids),
            "the same box ids"
        );
        // keep-id:uid=11, podman's own example: 0 1 11, 11 0 1, 12 12 65525.
        let (moves, _) = caller.keep_id_moves(11, 11);
        assert_eq!(map_text(&moves), "0 1 11\n11 0 1\n12 12 65525\n");
        // Seen from the holder (the caller's maps), the maps are those moves again.
        assert_eq!(nested(&caller.keep_id(11, 11).uids, &caller.uids), moves);
        assert_eq!(nested(&caller.uids, &caller.uids), identity(&caller.uids));
        // An id beyond the range: only the range below it, and the caller.
        let (moves, _) = caller.keep_id_moves(70000, 70000);
        assert_eq!(map_text(&moves), "0 1 65536\n70000 0 1\n");
        // Without a range only the caller, at its new id; root keeps the identity.
        let alone = IdMaps::compute(1001, 1001, Some("alice"), SUB, SUB, false);
        assert_eq!(map_text(&alone.keep_id(1001, 1001).uids), "1001 1001 1\n");
        let root = IdMaps::compute(0, 0, Some("root"), "", "", false);
        assert_eq!(root.keep_id(0, 0), root);
    }

    fn identity(r: &[IdRange]) -> Vec<IdRange> {
        r.iter()
            .map(|r| IdRange {
                inside: r.inside,
                outside: r.inside,
                count: r.count,
            })
            .collect()
    }

    #[test]
    fn describes_the_ids_a_box_has() {
        let m = IdMaps::compute(
            1000,
            1000,
            Some("u"),
            "u:100000:65536\n",
            "u:100000:65536\n",
            true,
        );
        assert_eq!(describe(&m.uids), "0-65536");
        let r = |inside, count| IdRange {
            inside,
            outside: 7,
            count,
        };
        assert_eq!(describe(&[r(0, 1), r(5, 5)]), "0, 5-9");
        assert_eq!(describe(&[r(0, u32::MAX)]), "0-4294967294");
    }
}
