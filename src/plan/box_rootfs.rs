//! The directories a box's root is made of: the one description the image store makes
//! ([`Layers`]), the runner completes with the box store's mountpoint ([`BoxRootfs`]) and the
//! executor mounts. Layers are listed bottom first everywhere; overlayfs's own option syntax
//! (top first) is made where it is written.

use std::path::PathBuf;

use serde::Serialize;

/// The box's root filesystem as the executor receives it (from the image store, or any other
/// source): it does not know where the directories came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoxRootfs {
    pub layers: Layers,
    /// An existing directory on the host. The box's mounts are made over it inside the box's
    /// own mount namespace, so the host never sees them and any number of boxes can share it.
    pub mountpoint: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layers {
    /// Read-only lower directories, bottom first, under a writable upper.
    Overlay {
        lower: Vec<PathBuf>,
        /// `None`: an ephemeral upper on the box's scratch tmpfs, gone when the box ends.
        upper: Option<UpperDirs>,
    },
    /// One directory, bind-mounted (read-write) as the root: a full copy of the image where
    /// overlayfs is unavailable, or a `keep-id` box's copy with its owners moved.
    Dir(PathBuf),
}

/// An overlay's upper and work directories (same filesystem).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpperDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The upper dir need not survive a crash (its box is removed when it ends): overlay's
    /// `volatile` skips syncing it, above all the journal commit on the upper filesystem
    /// that unmounting would otherwise cost every box's exit.
    pub volatile: bool,
}

impl Layers {
    /// With the upper dir `volatile` (or not), when there is one.
    pub fn volatile(mut self, volatile: bool) -> Layers {
        if let Layers::Overlay { upper: Some(u), .. } = &mut self {
            u.volatile = volatile;
        }
        self
    }
}
