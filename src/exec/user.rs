//! The fox's user: numeric ids, or names looked up in the box's own /etc/passwd and
//! /etc/group (read after pivot_root, so they are the image's files, never the host's).

use crate::exec::error::StepError;
use crate::plan::User;

/// Who the fox runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership of the user's name).
    pub groups: Vec<u32>,
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd_entries(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn group_entries(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let members = f[3]
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolve the plan's user against the box's passwd and group texts (empty when missing).
pub fn resolve(user: &User, passwd: &str, group: &str) -> Result<Identity, StepError> {
    let users = passwd_entries(passwd);
    let groups = group_entries(group);
    let (entry, uid, explicit_gid) = match user {
        User::Id { uid, gid } => (users.iter().find(|u| u.uid == *uid), *uid, *gid),
        User::Name { user, group } => {
            let e = users.iter().find(|u| &u.name == user).ok_or_else(|| {
                StepError::msg(format!("user {user:?} is not in the box's /etc/passwd"))
                    .with_hint("use a name the image defines, or a numeric uid[:gid]")
            })?;
            let gid = match group {
                None => None,
                Some(g) => Some(match g.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => groups
                        .iter()
                        .find(|(n, _, _)| n == g)
                        .map(|(_, id, _)| *id)
                        .ok_or_else(|| {
                            StepError::msg(format!("group {g:?} is not in the box's /etc/group"))
                                .with_hint("use a group the image defines, or a numeric gid")
                        })?,
                }),
            };
            (Some(e), e.uid, gid)
        }
    };
    let gid = explicit_gid.or(entry.map(|e| e.gid)).unwrap_or(uid);
    let mut sup = Vec::new();
    if let Some(e) = entry {
        for (_, id, members) in &groups {
            if members.contains(&e.name) && *id != gid && !sup.contains(id) {
                sup.push(*id);
            }
        }
    }
    let home = entry.map(|e| e.home.clone()).unwrap_or_else(|| {
        if uid == 0 {
            "/root".into()
        } else {
            "/".into()
        }
    });
    Ok(Identity {
        uid,
        gid,
        groups: sup,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nfox:x:1000:1000:fox:/home/fox:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:fox\nfox:x:1000:\n";

    #[test]
    fn names_resolve_with_primary_and_supplementary_groups() {
        let u = User::Name {
            user: "fox".into(),
            group: None,
        };
        let id = resolve(&u, PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.groups.clone()), (1000, 1000, vec![10]));
        assert_eq!(id.home, "/home/fox");
    }

    #[test]
    fn numeric_ids_need_no_entry() {
        let id = resolve(&User::Id { uid: 42, gid: None }, PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (42, 42, "/"));
        let root = resolve(
            &User::Id {
                uid: 0,
                gid: Some(7),
            },
            "",
            "",
        )
        .unwrap();
        assert_eq!((root.gid, root.home.as_str()), (7, "/root"));
    }

    #[test]
    fn unknown_names_are_errors() {
        let u = User::Name {
            user: "nobody-here".into(),
            group: None,
        };
        assert!(resolve(&u, PASSWD, GROUP).is_err());
        let g = User::Name {
            user: "fox".into(),
            group: Some("nope".into()),
        };
        assert!(resolve(&g, PASSWD, GROUP).is_err());
    }
}
