//! `system df` and `system prune`: the store's disk use by kind (images, boxes, volumes), and
//! removing what nothing uses, as podman's commands of the same names.

use std::collections::HashMap;

use crate::boxes::{control, BoxError, Boxes, Status};
use crate::image::{ImageError, Store};
use crate::store::paths::Paths;
use crate::store::space::used_bytes;
use crate::volume::VolumeError;

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(transparent)]
    Box(#[from] BoxError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
}

/// One line of `system df`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    #[serde(rename = "Total")]
    pub total: usize,
    #[serde(rename = "Active")]
    pub active: usize,
    /// Bytes of disk used.
    #[serde(rename = "Size")]
    pub size: u64,
    /// Bytes `system prune` (with `-a --volumes`) would free.
    #[serde(rename = "Reclaimable")]
    pub reclaimable: u64,
}

/// Images (active: used by a box; a layer shared by several counted once), boxes (active:
/// running) and volumes (active: used by a box).
pub fn df(paths: &Paths) -> Result<Vec<Usage>, SystemError> {
    let boxes = Boxes::open(paths.boxes())?;
    let list = super::check::sweep(paths, &boxes)?;
    let store = Store::open(paths)?;
    let images = store.list()?;
    let mut layers: HashMap<&str, (u64, bool)> = HashMap::new();
    let mut active_images = 0;
    for i in &images {
        let active = !store.users(&i.id).is_empty();
        active_images += usize::from(active);
        for (d, p) in i.layer_digests.iter().zip(&i.layers) {
            let e = layers.entry(d).or_insert_with(|| (used_bytes(p), false));
            e.1 |= active;
        }
    }
    let image_size = layers.values().map(|(b, _)| b).sum();
    let image_free = layers.values().filter(|(_, a)| !a).map(|(b, _)| b).sum();

    let (mut box_size, mut box_free, mut running) = (0, 0, 0);
    for e in &list {
        let b = used_bytes(&e.dir);
        box_size += b;
        if e.state.is_running() {
            running += 1;
        } else {
            box_free += b;
        }
    }

    let vols = super::remove::volumes(paths)?.list()?;
    let (mut vol_size, mut vol_free, mut used) = (0, 0, 0);
    for v in &vols {
        let b = v.mountpoint.parent().map_or(0, used_bytes);
        vol_size += b;
        if v.users.is_empty() {
            vol_free += b;
        } else {
            used += 1;
        }
    }
    Ok(vec![
        Usage {
            kind: "Images",
            total: images.len(),
            active: active_images,
            size: image_size,
            reclaimable: image_free,
        },
        Usage {
            kind: "Boxes",
            total: list.len(),
            active: running,
            size: box_size,
            reclaimable: box_free,
        },
        Usage {
            kind: "Local Volumes",
            total: vols.len(),
            active: used,
            size: vol_size,
            reclaimable: vol_free,
        },
    ])
}

/// What `system prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Box ids.
    pub boxes: Vec<String>,
    pub volumes: Vec<String>,
    /// Image ids (hex).
    pub images: Vec<String>,
    /// Ids of build cache mounts no running build used.
    pub cache_mounts: Vec<String>,
    /// Bytes of the store freed.
    pub reclaimed: u64,
}

/// Remove exited boxes, then images no box uses (only unnamed ones unless `all`), then (with
/// `volumes`) volumes no box uses. An image or volume that a box took meanwhile stays.
pub fn prune(paths: &Paths, all: bool, volumes: bool) -> Result<Pruned, SystemError> {
    let before = used_bytes(&paths.root);
    let mut out = Pruned::default();
    let boxes = Boxes::open(paths.boxes())?;
    for e in super::check::sweep(paths, &boxes)? {
        if e.state.status == Status::Running || control::has_live_process(&e) {
            continue;
        }
        match super::remove::remove(paths, &boxes, &e) {
            Ok(()) => out.boxes.push(e.config.id.clone()),
            // Removed by another process meanwhile.
            Err(BoxError::NotFound(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    if volumes {
        out.volumes = super::remove::volumes(paths)?.prune()?;
    }
    let store = Store::open(paths)?;
    for i in store.list()? {
        if (!all && !i.names.is_empty()) || !store.users(&i.id).is_empty() {
            continue;
        }
        match store.remove(&i.id, false) {
            Ok(_) => out.images.push(i.hex().to_string()),
            Err(ImageError::InUse { .. } | ImageError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The build cache's images went with the unnamed ones; its cache mounts go too.
    out.cache_mounts = store.prune_cache_mounts()?;
    out.reclaimed = before.saturating_sub(used_bytes(&paths.root));
    Ok(out)
}
