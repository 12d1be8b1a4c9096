//! Finding images by what users write: names (Docker Hub's short forms included), ids and
//! id prefixes, repo digests; a plan's image reference resolved to a stored image.

use super::{hex_of, io_err, Image, ImageRecord, Index, Store};
use crate::image::reference::{self, ImageName};
use crate::image::ImageError;
use crate::plan::ImageRef;

pub(super) fn not_found(index: &Index, what: String) -> ImageError {
    let mut known: Vec<String> = index.images.iter().flat_map(|i| i.names.clone()).collect();
    known.sort();
    ImageError::NotFound { what, known }
}

/// Whether a name names a registry (`host.domain/...`, `host:port/...`, `localhost/...`).
pub fn has_registry(name: &str) -> bool {
    crate::plan::reference::registry_of(name).is_some()
}

/// Docker Hub's full name for a short name: `busybox` is `docker.io/library/busybox`.
pub fn docker_hub_name(name: &str) -> String {
    if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

/// The repository part of a `name:tag`.
pub(super) fn repo_of(full: &str) -> &str {
    let last_slash = full.rfind('/').map_or(0, |i| i + 1);
    match full[last_slash..].rfind(':') {
        Some(i) => &full[..last_slash + i],
        None => full,
    }
}

/// `name:tag` as stored, pinned to `digest` when given (the id, or a manifest or index digest
/// the image was pulled by under that name).
pub(super) fn find_exact<'a>(
    index: &'a Index,
    name: &str,
    tag: &str,
    digest: Option<&str>,
) -> Result<Option<&'a ImageRecord>, ImageError> {
    let full = format!("{name}:{tag}");
    let tagged = index.images.iter().find(|i| i.names.contains(&full));
    let Some(want) = digest else {
        return Ok(tagged);
    };
    let repo_digest = format!("{name}@{want}");
    let pinned = |i: &ImageRecord| i.id == want || i.repo_digests.contains(&repo_digest);
    if let Some(rec) = tagged.filter(|r| pinned(r)) {
        return Ok(Some(rec));
    }
    // Pulled by digest alone (no tag), or the tag has moved to another image since.
    if let Some(rec) = index.images.iter().find(|i| {
        i.repo_digests.contains(&repo_digest)
            || (i.id == want && i.names.iter().any(|n| repo_of(n) == name))
    }) {
        return Ok(Some(rec));
    }
    match tagged {
        Some(rec) => Err(ImageError::DigestMismatch {
            name: full,
            want: want.to_string(),
            have: rec.id.clone(),
        }),
        None => Ok(None),
    }
}

/// [`find_exact`], then for a short name its Docker Hub name; with the name used.
pub(super) fn find_local<'a>(
    index: &'a Index,
    name: &str,
    tag: &str,
    digest: Option<&str>,
) -> Result<Option<(&'a ImageRecord, String)>, ImageError> {
    if let Some(rec) = find_exact(index, name, tag, digest)? {
        return Ok(Some((rec, name.to_string())));
    }
    if has_registry(name) {
        return Ok(None);
    }
    let hub = docker_hub_name(name);
    Ok(find_exact(index, &hub, tag, digest)?.map(|rec| (rec, hub)))
}

/// `alg:hex` of a `name@alg:hex` repo digest.
pub(super) fn digest_of_repo_digest(rd: &str) -> &str {
    rd.rsplit_once('@').map_or(rd, |(_, d)| d)
}

impl Store {
    /// Find one image by `name[:tag]`, `name@sha256:<hex>`, a full id or an id prefix.
    pub fn lookup(&self, what: &str) -> Result<Image, ImageError> {
        let index = self.read_index()?;
        let rec = self.find(&index, what)?;
        Ok(self.image(rec))
    }

    pub(super) fn find<'a>(
        &self,
        index: &'a Index,
        what: &str,
    ) -> Result<&'a ImageRecord, ImageError> {
        if let Ok(r) = ImageName::parse(what) {
            let digest = r.digest().map(|d| d.to_string());
            if let Some((rec, _)) = find_local(index, r.name(), r.tag(), digest.as_deref())? {
                return Ok(rec);
            }
        }
        if let Some(prefix) = reference::id_prefix(what) {
            let hits: Vec<&ImageRecord> = index
                .images
                .iter()
                .filter(|i| hex_of(&i.id).starts_with(&prefix))
                .collect();
            match hits.as_slice() {
                [one] => return Ok(one),
                [] => {}
                many => {
                    return Err(ImageError::Ambiguous {
                        what: what.to_string(),
                        ids: many.iter().map(|i| i.id.clone()).collect(),
                    })
                }
            }
        }
        Err(not_found(index, what.to_string()))
    }

    /// The stored image `name:tag` (pinned to `digest` when given), with the name it was
    /// found under: a short name (no registry) means the local image of that name, else the
    /// local `docker.io/library/NAME`. `None` when the store has neither.
    pub fn find_named(
        &self,
        name: &str,
        tag: &str,
        digest: Option<&str>,
    ) -> Result<Option<(Image, String)>, ImageError> {
        let index = self.read_index()?;
        Ok(find_local(&index, name, tag, digest)?.map(|(rec, used)| (self.image(rec), used)))
    }

    /// The image a plan names: a stored one by name (checked against a pinned digest), or a
    /// tarball, imported on first use and found by its digest after. Nothing is pulled: see
    /// [`Store::resolve_or_pull`].
    pub fn resolve(&self, r: &ImageRef) -> Result<Image, ImageError> {
        match r {
            ImageRef::Stored(n) => {
                let index = self.read_index()?;
                let digest = n.digest().map(|d| d.to_string());
                match find_local(&index, n.name(), n.tag(), digest.as_deref())? {
                    Some((rec, _)) => Ok(self.image(rec)),
                    None => Err(not_found(&index, n.full())),
                }
            }
            ImageRef::Tarball { path } => {
                // Not read again while unchanged (its stamp is the one recorded).
                let digest = crate::image::tarball_digest::digest(
                    &self.dir.join("tarball-digests.json"),
                    path,
                )
                .map_err(io_err("cannot read", path))?;
                let index = self.read_index()?;
                if let Some(rec) = index.images.iter().find(|i| i.id == digest) {
                    if rec.layers.iter().all(|d| self.layer_path(d).is_dir()) {
                        return Ok(self.image(rec));
                    }
                }
                self.import(path, None)
            }
        }
    }
}
