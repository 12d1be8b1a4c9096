//! `foxbox system check`: the store's invariants, checked across its parts, and `--repair`.
//!
//! Each part of the store finds its own problems ([`Store::check`], [`Volumes::check`], the
//! box store's listings); here they are put together with what only the runner knows: which
//! boxes still run, their cgroups and their runtime files. A repair removes only what nothing
//! uses, under the same locks as the sweeps that commands do on the way: a box that is being
//! made holds its lock, a running one has live processes, an import holds its scratch lock.

use std::fs;

use super::lifecycle::{free_leftovers, settle_dead};
use super::remove;
use super::{box_run_dir, RUN_DIR_ID};
use crate::boxes::{control, BoxEntry, BoxError, Boxes, Status};
use crate::image::Store;
use crate::store::check::Finding;
use crate::store::paths::Paths;
use crate::volume::Volumes;

/// Every problem of the store under `paths`, without changing anything.
pub fn check(paths: &Paths) -> Vec<Finding> {
    let mut out = Vec::new();
    match Boxes::open_unswept(paths.boxes()) {
        Ok(boxes) => out.extend(check_boxes(paths, &boxes)),
        Err(e) => out.push(Finding::new(
            "store-unreadable",
            paths.boxes(),
            e.to_string(),
        )),
    }
    match Store::open_for_boxes(paths) {
        Ok(store) => out.extend(store.check()),
        Err(e) => out.push(Finding::new(
            "store-unreadable",
            paths.images(),
            e.to_string(),
        )),
    }
    out.extend(Volumes::open_unswept(paths.volumes(), paths.boxes()).check());
    out
}

/// A box that nothing of runs, nor is about to: its cgroup and runtime files are leftovers.
fn at_rest(e: &BoxEntry) -> bool {
    e.state.status != Status::Running && !control::has_live_process(e)
}

fn check_boxes(paths: &Paths, boxes: &Boxes) -> Vec<Finding> {
    let mut out = Vec::new();
    let ids = boxes.ids().unwrap_or_default();
    let abandoned = boxes.abandoned();
    for id in &ids {
        let dir = boxes.box_dir(id);
        let e = match boxes.load(id) {
            Ok(e) => e,
            Err(BoxError::NotFound(_)) => {
                if abandoned.contains(id) {
                    out.push(Finding::new(
                        "box-half-made",
                        dir,
                        "a box's directory without a record, left by a start that was killed",
                    ));
                }
                continue;
            }
            Err(e) => {
                out.push(Finding::new("box-unreadable", dir, e.to_string()));
                continue;
            }
        };
        if e.died {
            out.push(Finding::new(
                "box-dead",
                &dir,
                format!(
                    "box {} is recorded as {} but none of its processes lives",
                    e.config.name,
                    if e.config.auto_remove {
                        "running (and to be removed on exit)"
                    } else {
                        "running"
                    }
                ),
            ));
        }
        if !at_rest(&e) {
            continue;
        }
        for p in boxes.temp_files(id) {
            out.push(Finding::new(
                "temp-file",
                p,
                "left by a record write that was interrupted",
            ));
        }
        if let Ok(Some(cg)) = super::cgroup_record::recorded(&e) {
            for p in cg.paths().into_iter().filter(|p| p.is_dir()) {
                out.push(Finding::new(
                    "cgroup",
                    p,
                    format!("box {} does not run", e.config.name),
                ));
            }
        }
        let run = box_run_dir(paths, id);
        if run.exists() {
            out.push(Finding::new(
                "runtime-orphan",
                run,
                format!("box {} does not run", e.config.name),
            ));
        }
    }
    for p in boxes.dangling_names() {
        out.push(Finding::new(
            "name-dangling",
            p,
            "the name of a box that does not exist",
        ));
    }
    for p in boxes.trash() {
        out.push(Finding::new(
            "trash",
            p,
            "a removed box whose deletion was interrupted",
        ));
    }
    for p in runtime_orphans(paths, &ids) {
        out.push(Finding::new(
            "runtime-orphan",
            p,
            "runtime files of a box that does not exist",
        ));
    }
    out
}

/// Runtime directories of boxes whose directory is gone.
fn runtime_orphans(paths: &Paths, ids: &[String]) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(&paths.runtime) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            is_box_prefix(&name) && !ids.iter().any(|id| id.starts_with(&name))
        })
        .map(|e| e.path())
        .collect()
}

/// A box runtime directory's name: the start of a box id.
fn is_box_prefix(name: &str) -> bool {
    name.len() == RUN_DIR_ID && name.chars().all(|c| c.is_ascii_hexdigit())
}

/// Fix what can safely be fixed: remove what nothing refers to, record dead boxes as exited
/// (removing those that were to be removed on exit), release what boxes at rest hold.
pub fn repair(paths: &Paths) {
    if let Ok(boxes) = Boxes::open(paths.boxes()) {
        let _ = sweep(paths, &boxes);
        forget_gone_boxes(paths);
        boxes.sweep_names();
        for id in boxes.ids().unwrap_or_default() {
            match boxes.load(&id) {
                Ok(e) if at_rest(&e) => free_leftovers(paths, &boxes, &e),
                _ => {}
            }
        }
        for p in runtime_orphans(paths, &boxes.ids().unwrap_or_default()) {
            let _ = fs::remove_dir_all(p);
        }
    }
    if let Ok(store) = Store::open(paths) {
        if let Err(e) = store.repair() {
            tracing::warn!("cannot repair the image store: {e}");
        }
    }
    if let Ok(vols) = remove::volumes(paths) {
        vols.repair();
    }
}

/// What listing every box (`ps`) sweeps on the way, beside the box store's own sweep: trash
/// (what only the store's user namespace can delete, too), half-made boxes and what they had
/// claimed, and boxes that died without recording it ([`settle_dead`]). Returns the listing, as
/// it is after that.
pub fn sweep(paths: &Paths, boxes: &Boxes) -> Result<Vec<BoxEntry>, BoxError> {
    remove::sweep_trash(paths, boxes);
    let (list, reaped) = boxes.list_reaping()?;
    if reaped {
        // Markers (and runtime files of a box with a network helper) are only ever left by
        // boxes that were never recorded.
        forget_gone_boxes(paths);
        for p in runtime_orphans(paths, &boxes.ids().unwrap_or_default()) {
            let _ = fs::remove_dir_all(p);
        }
    }
    Ok(list
        .into_iter()
        .filter_map(|e| {
            if e.died {
                settle_dead(paths, boxes, &e).ok().flatten()
            } else {
                Some(e)
            }
        })
        .collect())
}

/// Remove the image and volume use markers of boxes that do not exist.
fn forget_gone_boxes(paths: &Paths) {
    if let Ok(store) = Store::open_for_boxes(paths) {
        store.sweep_users();
    }
    // Opening the volume store sweeps its markers.
    let _ = Volumes::open(paths.volumes(), paths.boxes());
}
