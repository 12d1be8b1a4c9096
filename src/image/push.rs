//! `foxbox push`: an image of the store to a registry, as `image save` lays it out (one
//! packer, one manifest maker): each blob the registry lacks is uploaded (or mounted from the
//! repository the image was pulled from, on the same registry), the manifest last.

use std::fs;

use super::store::Store;
use super::ImageError;
use crate::oci::client::BlobPush;
use crate::oci::manifest::{ImageManifest, OCI_MANIFEST};
use crate::oci::{Client, Digest, Reference};

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: String,
    /// Blobs (config and layers) uploaded, mounted, and found there already.
    pub uploaded: usize,
    pub mounted: usize,
    pub present: usize,
}

fn client_err(e: crate::oci::ClientError) -> ImageError {
    ImageError::Registry(Box::new(e))
}

impl Store {
    /// Push the image `what` to `dest` (its tag; `latest` when it has none).
    pub fn push(
        &self,
        what: &str,
        dest: &Reference,
        client: &Client,
    ) -> Result<Pushed, ImageError> {
        let rec = self.record(what)?;
        let scratch = self.scratch("push")?;
        let layout = scratch.path().join("layout");
        let saved = self.save(what, &layout)?;
        let blob = |d: &Digest| {
            layout
                .join("blobs")
                .join(d.algorithm().name())
                .join(d.hex())
        };
        let manifest_digest: Digest = saved
            .manifest
            .parse()
            .map_err(|e| ImageError::Oci(format!("{e}")))?;
        let manifest_path = blob(&manifest_digest);
        let bytes = fs::read(&manifest_path).map_err(|source| ImageError::Io {
            what: "cannot read",
            path: manifest_path.clone(),
            source,
        })?;
        let manifest: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Oci(format!("the saved manifest cannot be read: {e}")))?;
        let media_type = manifest
            .media_type
            .clone()
            .or_else(|| rec.manifest.as_ref().map(|m| m.media_type.clone()))
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        // A repository of the same registry the image came from: its blobs can be mounted.
        let mount_from = rec.repo_digests.iter().find_map(|rd| {
            let name = rd.rsplit_once('@').map_or(rd.as_str(), |(n, _)| n);
            let (reg, repo) = name.split_once('/')?;
            (reg == dest.registry).then(|| repo.to_string())
        });
        let repo = client
            .repo(&dest.registry, &dest.repository)
            .map_err(client_err)?;
        let mut out = Pushed {
            digest: manifest_digest.to_string(),
            uploaded: 0,
            mounted: 0,
            present: 0,
        };
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            match repo
                .push_blob(&d.digest, &blob(&d.digest), mount_from.as_deref())
                .map_err(client_err)?
            {
                BlobPush::Present => out.present += 1,
                BlobPush::Mounted => out.mounted += 1,
                BlobPush::Uploaded => out.uploaded += 1,
            }
        }
        let tag = dest.tag.clone().unwrap_or_else(|| "latest".into());
        let said = repo
            .put_manifest(&tag, &media_type, &manifest_path)
            .map_err(client_err)?;
        if let Some(s) = said.filter(|s| *s != out.digest) {
            return Err(ImageError::Oci(format!(
                "the registry stored the manifest as {s}, not {}",
                out.digest
            )));
        }
        Ok(out)
    }
}
