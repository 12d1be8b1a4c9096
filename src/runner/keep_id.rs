//! podman's `--userns=keep-id` for a box: its maps, and its root (a copy of the image with
//! the owners moved to those maps, with a passwd and group entry for the caller).
//!
//! Rootless, the caller's uid becomes the same number in the box and the subordinate range
//! goes around it ([`IdMaps::keep_id`]). The image's files were stored for the default maps
//! (box id n as the caller's namespace id n), so a `keep-id` box gets a copy whose owners are
//! moved to keep their box ids, as podman's copied layer is. As root the maps are the
//! identity, nothing moves and the image's layers serve as they are.

use std::path::Path;

use crate::image::EtcEntry;
use crate::plan::{Plan, Userns};
use crate::sys::idmap::{IdMaps, IdRange};

/// The maps a box of `plan` gets, from the caller's (`caller`).
pub fn box_maps(plan: &Plan, caller: &IdMaps) -> IdMaps {
    match plan.userns.value.kept_ids(super::box_plan::caller_ids()) {
        Some((uid, gid)) => caller.keep_id(uid, gid),
        None => caller.clone(),
    }
}

/// What a `keep-id` box's root needs: the owners' moves and the /etc entries. `None` when the
/// image's layers serve as they are (no `keep-id`, or root's identity maps).
pub struct MovedRootfs {
    pub moves: (Vec<IdRange>, Vec<IdRange>),
    pub etc: Vec<EtcEntry>,
}

pub fn moved_rootfs(plan: &Plan, caller: &IdMaps) -> Option<MovedRootfs> {
    let me = super::box_plan::caller_ids();
    let (uid, gid) = plan.userns.value.kept_ids(me)?;
    let moves = caller.keep_id_moves(uid, gid);
    if moves.0 == caller.uids && moves.1 == caller.gids {
        return None;
    }
    // podman adds the caller to the box's /etc files only for a bare `keep-id`.
    let bare = matches!(
        plan.userns.value,
        Userns::KeepId {
            uid: None,
            gid: None
        }
    );
    let etc = if bare && me.0 != 0 {
        caller_entries(plan, me)
    } else {
        Vec::new()
    };
    Some(MovedRootfs { moves, etc })
}

/// The caller's passwd line (and its group's), as podman writes them: its home is the box's
/// working directory unless the caller's own home (or a directory above it) is mounted in.
fn caller_entries(plan: &Plan, (uid, gid): (u32, u32)) -> Vec<EtcEntry> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let Some(user) = user else {
        return Vec::new();
    };
    let mounted = plan
        .mounts
        .iter()
        .any(|m| m.target != Path::new("/") && Path::new(&user.dir).starts_with(&m.target));
    let home = if mounted {
        user.dir.display().to_string()
    } else {
        plan.process.cwd.value.display().to_string()
    };
    let gecos = user.gecos.to_string_lossy().into_owned();
    let mut v = vec![EtcEntry {
        file: "passwd",
        name: user.name.clone(),
        id: uid,
        line: format!("{}:*:{uid}:{gid}:{gecos}:{home}:/bin/sh", user.name),
    }];
    if let Ok(Some(g)) = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
        v.push(EtcEntry {
            file: "group",
            name: g.name.clone(),
            id: gid,
            line: format!("{}:x:{gid}:{}", g.name, user.name),
        });
    }
    v
}
