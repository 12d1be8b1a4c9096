//! The content-addressed image store and safe archive unpacking.
//!
//! # Layout (under `Paths::images()`, mode 0700)
//! ```text
//! index.json            every image: id, names (name:tag), created, size, layer digests, config,
//!                       and for pulled/loaded images their manifest and repo digests
//! .lock                 flock held by every writer of the index (imports, rm, sweeps)
//! .pulls.lock           flock held (shared) by every pull and load while it runs
//! layers/<hex>/         an unpacked layer, named by its digest; read-only once there, shared
//! blobs/sha256/<hex>    blobs by digest (pulled and loaded images: manifests, configs, layers)
//! tmp/<name>/           an import in progress (with tmp/<name>.lock held), or a layer being deleted
//! users/<image hex>/<box id>   a box that uses the image (counts while <root>/boxes/<box id> exists)
//! ```
//! An import unpacks into `tmp/`, then renames into `layers/` and writes the index under the
//! lock: a refused or killed import leaves nothing visible, and `Store::open` sweeps the
//! leftovers (a `tmp/` entry whose lock nobody holds). Two imports of one archive race to the
//! rename; the loser drops its copy and both record the same image.
//!
//! # Ids
//! A tarball's image id, and its layer's digest, is the sha256 of the file as stored
//! (compressed or not): `sha256sum busybox.tar.gz` gives the id to pin with
//! `busybox@sha256:<hex>`.
//!
//! A pulled (or loaded) image's id is its config's digest, as podman's IMAGE ID: the same
//! image pulled by tag, through an index or by its manifest digest is one image. Its layers
//! are named by their (compressed) blob digests, as the manifest lists them; `name@sha256:<hex>`
//! pins match the id and every manifest or index digest it was pulled by (`repo_digests`).
//!
//! # Pulls ([`pull`], [`oci`])
//! Blobs stream into `blobs/` verified (an anonymous temporary file linked in only once its
//! digest matched); each layer not yet unpacked is unpacked once, through the same
//! hostile-archive unpacker, with OCI whiteouts turned into overlayfs ones (0/0 character
//! devices, `user.overlay.opaque`: boxes mount their overlay in a user namespace with
//! `userxattr`, root's boxes too) and its content checked against the config's diff id; then
//! the image is recorded. A pull holds `.pulls.lock` (shared) throughout; blobs and layers no
//! image references (a refused or killed pull's, or those an `image rm` could not delete while
//! a pull ran) are deleted by the next open or removal that finds no pull running, so such a
//! pull leaves the store as it was. Blobs stay after unpacking: `image save` writes them back
//! byte for byte, and a second pull of a shared layer fetches nothing.
//!
//! # Ownership
//! - root: files keep the archive's uids and gids.
//! - an unprivileged user with a subordinate range: unpacking runs as root of a user namespace
//!   with the box's maps (`IdMaps::for_caller`, via [`crate::sys::userns`]), so files keep
//!   their ids *inside the box*; on disk, box id `n` is host id `IdMaps::host_uid(n)`. Ids
//!   the range cannot hold become the box's root, with a warning. Removing such files needs the
//!   same namespace: `Store::remove`, `Store::remove_tree` and `Store::remove_box_rootfs` use it.
//! - without a range: everything belongs to the user, i.e. the box's root; one warning.
//!
//! # setuid and setgid
//! Kept, as root and rootless: images need them (`su`, `passwd`), and they only mean something
//! inside a box. foxbox never unpacks as root on behalf of another user (each user has their
//! own store, and root's boxes run with root's identity map), so a setuid file in root's store
//! is root's own. What keeps other host users from running a setuid file of a store directly
//! is the store itself: `images/` is 0700, so nobody but its owner (and root) can reach a layer.
//!
//! # The API the executor calls
//! ```text
//! let store = Store::open(&paths)?;                         // sweeps leftovers
//! let client = registry::Client::new(registry::Settings::from_env()?);
//! let mut pctx = PullContext::new(&client);                 // platform: this machine's; quiet
//! pctx.progress = &bars;                                    // per-layer bars on a terminal (cli::pull::Bars)
//! let image = store.resolve_or_pull(&plan.image.value, &pctx)?;
//!     // Image { id, layers (bottom first), config: ImageConfig { entrypoint, cmd, env,
//!     //         workdir, user } (the image's defaults; empty for a tarball), .. }
//!     // (store.resolve(..) is the same without pulling)
//! store.add_user(&image.id, &box_id)?;                      // `image rm` refuses it while the box exists;
//!                                                           // RemovedWhileStarting if an `image rm` beat it
//! let layers = store.prepare_box_rootfs(&image, &box_dir)?; // plan::box_rootfs::Layers:
//! //   Overlay { lower (bottom first), upper: Some(UpperDirs { upper, work, .. }) }, or Dir(copy)
//! // executor, inside the box's user + mount namespaces: an overlay (userxattr), or a bind of
//! //   the copy
//! store.remove_box_rootfs(&box_dir)?;                       // on box removal (runs in the user namespace)
//! store.remove_user(&image.id, &box_id);
//! ```
//! These fork (a user-namespace child for an unprivileged caller): call them while the process
//! is single-threaded.
//!
//! Layers are shared between images, one directory each. [`unpack::unpack`] with
//! `Whiteouts::Apply` applies a layer onto a directory that holds the layers below
//! (flattening). The copy fallback honours overlay whiteouts and opaque marks.

pub mod archive;
mod blobs;
pub mod change;
mod check;
pub mod inroot;
pub mod layered;
pub mod oci;
mod pack;
pub mod pull;
pub mod push;
pub mod reference;
pub mod rootfs;
pub mod store;
pub mod tarball_digest;
pub mod unpack;
pub mod xattr;

use std::io;
use std::path::PathBuf;

pub use pull::{PullContext, PullPolicy, StoreProgress};
pub use reference::ImageName;
pub use rootfs::{overlay_supported, EtcEntry};
pub use store::{Image, ImageConfig, ImageRecord, ManifestRef, Removed, Store};
pub use unpack::{Owners, UnpackError, Whiteouts};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    #[error(transparent)]
    Lock(#[from] crate::store::lock::LockError),
    #[error(transparent)]
    Atomic(#[from] crate::store::atomic::AtomicError),
    #[error("the image index {path} is corrupt: {source}")]
    BadIndex {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid FOXBOX_MAX_IMAGE_SIZE {0:?}: give bytes, or a number with K, M, G or T")]
    BadSize(String),
    #[error(transparent)]
    Name(#[from] reference::NameError),
    #[error("no image {what:?} in the store ({})", known_list(known))]
    NotFound { what: String, known: Vec<String> },
    #[error("{what:?} matches several images: {}", ids.join(", "))]
    Ambiguous { what: String, ids: Vec<String> },
    #[error("image {name} is {have}, but the spec pins {want}")]
    DigestMismatch {
        name: String,
        want: String,
        have: String,
    },
    #[error("image {id} is in use by box(es) {} (use -f to remove it anyway)", boxes.join(", "))]
    InUse { id: String, boxes: Vec<String> },
    #[error("image {0} is not stored, and --pull=never forbids pulling it (foxbox pull it first)")]
    NotPulled(String),
    #[error("image {0} was removed while the box was starting")]
    RemovedWhileStarting(String),
    #[error("layer {0} is missing from the store")]
    MissingLayer(String),
    #[error("{0}")]
    Userns(String),
    #[error(transparent)]
    Blob(Box<crate::oci::BlobError>),
    #[error(transparent)]
    Pull(Box<crate::oci::PullError>),
    #[error(transparent)]
    Layout(Box<crate::oci::layout::LayoutError>),
    #[error(transparent)]
    Reference(#[from] crate::oci::reference::ReferenceError),
    #[error("{0}")]
    Oci(String),
    #[error(transparent)]
    Registry(Box<crate::oci::ClientError>),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "the store has no named images; import one with `foxbox image import FILE`".into()
    } else {
        format!("it has: {}", known.join(", "))
    }
}

impl From<crate::sys::userns::UsernsError> for ImageError {
    fn from(e: crate::sys::userns::UsernsError) -> Self {
        ImageError::Userns(e.to_string())
    }
}
