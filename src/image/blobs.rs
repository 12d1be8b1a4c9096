//! The store's `blobs/<alg>/<hex>` as the registry client's [`BlobStore`]: a pull streams each
//! blob through a verifying reader into an anonymous temporary file in the same directory,
//! linked under its digest only once the digest (and size) matched, so that a refused or
//! killed download leaves no file at all.

use std::io::Read;
use std::path::PathBuf;

use super::store::Store;
use crate::oci::{BlobError, BlobStore, Digest};

impl BlobStore for Store {
    fn has(&self, digest: &Digest) -> bool {
        self.blobs.has(digest)
    }

    fn put(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<PathBuf, BlobError> {
        self.blobs.put(digest, size, reader)
    }

    fn path(&self, digest: &Digest) -> Option<PathBuf> {
        self.blobs.path(digest)
    }
}
