//! Images from OCI registries and OCI image layouts.
//!
//! - [`mod@reference`]: `[registry/]ns/name[:tag][@digest]`, Docker Hub short names.
//! - [`client`]: the distribution protocol (HTTPS, or plain HTTP for loopback and insecure
//!   registries), anonymous / Basic / Bearer authentication; [`settings`] says where its
//!   configuration and credentials come from, [`auth`] reads and writes `auth.json`.
//! - [`mod@pull`]: manifest → platform → config → layers into a [`BlobStore`], every blob
//!   verified as it streams, blobs already stored never fetched again.
//! - [`layout`]: reading and writing OCI image layouts (`image load` / `image save`).
//! - [`layer`]: a stored layer as a decompressed, diff-id-checked tar stream for the unpacker.
//!
//! The image store implements [`BlobStore`]; [`DirBlobStore`] is a plain directory one.

pub mod auth;
pub mod blobstore;
pub mod client;
pub mod digest;
pub mod layer;
pub mod layout;
pub mod manifest;
pub mod platform;
pub mod pull;
pub mod reference;
pub mod settings;

pub use blobstore::{BlobError, BlobStore, DirBlobStore};
pub use client::{Client, ClientError};
pub use digest::Digest;
pub use layer::{open_layer, LayerReader};
pub use layout::{write_layout, write_layout_tar, OciLayout, SaveImage};
pub use manifest::{Descriptor, ImageConfig, ImageManifest};
pub use platform::Platform;
pub use pull::{pull, Progress, PullError, PullOptions, PulledImage};
pub use reference::Reference;
pub use settings::Settings;
