//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`): reading one
//! (what `skopeo copy ... oci:DIR` writes) into a [`BlobStore`], and writing images from a
//! store as one that skopeo and podman read.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::blobstore::{BlobError, BlobStore};
use super::client::FetchedManifest;
use super::digest::{Digest, VerifyingReader};
use super::manifest::{
    parse_manifest, Descriptor, ImageIndex, Manifest, MAX_MANIFEST_BYTES, OCI_INDEX,
};
use super::pull::{complete, PullError, PullOptions, PulledImage, Source};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_VERSION: &str = "1.0.0";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path} is not an OCI image layout: {why}")]
    NotALayout { path: PathBuf, why: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{dir}: no image named {name:?}; it has: {available}")]
    NoSuchRef {
        dir: PathBuf,
        name: String,
        available: String,
    },
    #[error("{dir} holds {count} images; name one of: {available}")]
    Ambiguous {
        dir: PathBuf,
        count: usize,
        available: String,
    },
    #[error("{dir} holds no image")]
    Empty { dir: PathBuf },
    #[error("{path} exists and is not an OCI image layout (nor an empty directory)")]
    Occupied { path: PathBuf },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("blob {digest} of the layout: {source}")]
    Manifest {
        digest: Digest,
        source: super::manifest::ManifestError,
    },
    #[error(transparent)]
    Pull(Box<PullError>),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LayoutError {
    let path = path.to_path_buf();
    move |source| LayoutError::Io { what, path, source }
}

/// An OCI image layout directory, opened for reading.
#[derive(Debug, Clone)]
pub struct OciLayout {
    dir: PathBuf,
    index: ImageIndex,
}

impl OciLayout {
    pub fn open(dir: impl Into<PathBuf>) -> Result<OciLayout, LayoutError> {
        let dir = dir.into();
        let not = |why: String| LayoutError::NotALayout {
            path: dir.clone(),
            why,
        };
        let marker = dir.join(LAYOUT_FILE);
        let text = fs::read(&marker).map_err(|e| not(format!("{LAYOUT_FILE}: {e}")))?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Marker {
            image_layout_version: String,
        }
        let m: Marker =
            serde_json::from_slice(&text).map_err(|e| not(format!("{LAYOUT_FILE}: {e}")))?;
        if !m.image_layout_version.starts_with("1.") {
            return Err(not(format!(
                "imageLayoutVersion {:?} is not 1.x",
                m.image_layout_version
            )));
        }
        let index_path = dir.join("index.json");
        let text = fs::read(&index_path).map_err(|e| not(format!("index.json: {e}")))?;
        let index: ImageIndex =
            serde_json::from_slice(&text).map_err(|source| LayoutError::Json {
                path: index_path.clone(),
                source,
            })?;
        Ok(OciLayout { dir, index })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The images `index.json` lists, with their `org.opencontainers.image.ref.name`.
    pub fn refs(&self) -> Vec<(Option<String>, Descriptor)> {
        self.index
            .manifests
            .iter()
            .map(|d| (d.annotations.get(REF_NAME).cloned(), d.clone()))
            .collect()
    }

    /// The descriptor named `name`, or the only one when `name` is None.
    pub fn find(&self, name: Option<&str>) -> Result<Descriptor, LayoutError> {
        let names = || {
            let v: Vec<String> = self
                .refs()
                .into_iter()
                .map(|(n, d)| n.unwrap_or_else(|| format!("@{d}", d = d.digest)))
                .collect();
            if v.is_empty() {
                "nothing".into()
            } else {
                v.join(", ")
            }
        };
        match name {
            Some(n) => self
                .index
                .manifests
                .iter()
                .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(n))
                .or_else(|| {
                    let dg = n.strip_prefix('@').unwrap_or(n);
                    self.index
                        .manifests
                        .iter()
                        .find(|d| d.digest.to_string() == dg)
                })
                .cloned()
                .ok_or_else(|| LayoutError::NoSuchRef {
                    dir: self.dir.clone(),
                    name: n.to_string(),
                    available: names(),
                }),
            None => match self.index.manifests.len() {
                0 => Err(LayoutError::Empty {
                    dir: self.dir.clone(),
                }),
                1 => Ok(self.index.manifests[0].clone()),
                count => Err(LayoutError::Ambiguous {
                    dir: self.dir.clone(),
                    count,
                    available: names(),
                }),
            },
        }
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    fn read_manifest(&self, d: &Digest) -> Result<Vec<u8>, PullError> {
        let p = self.blob_path(d);
        let f = File::open(&p).map_err(|e| PullError::Source(format!("{}: {e}", p.display())))?;
        let mut bytes = Vec::new();
        f.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| PullError::Source(format!("{}: {e}", p.display())))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(PullError::Source(format!(
                "{}: manifest larger than {MAX_MANIFEST_BYTES} bytes",
                p.display()
            )));
        }
        Ok(bytes)
    }

    /// Copy the image `name` (or the only one) into `store`, every blob verified, choosing a
    /// platform when it is an index. Blobs already stored are not copied again.
    pub fn load(
        &self,
        name: Option<&str>,
        store: &dyn BlobStore,
        opts: &PullOptions,
    ) -> Result<PulledImage, LayoutError> {
        let desc = self.find(name)?;
        let bytes = self
            .read_manifest(&desc.digest)
            .map_err(|e| LayoutError::Pull(Box::new(e)))?;
        let actual = desc.digest.same_alg_of(&bytes);
        if actual != desc.digest {
            return Err(LayoutError::Pull(Box::new(PullError::ChildMismatch {
                digest: desc.digest.clone(),
                why: format!("content is {actual}"),
            })));
        }
        let top = FetchedManifest {
            bytes,
            content_type: Some(desc.media_type.clone()).filter(|m| !m.is_empty()),
            header_digest: None,
        };
        let what = format!("{}:{}", self.dir.display(), name.unwrap_or(""));
        complete(self, &what, top, desc.digest, store, opts)
            .map_err(|e| LayoutError::Pull(Box::new(e)))
    }
}

impl Source for OciLayout {
    fn manifest_by_digest(&self, digest: &Digest) -> Result<FetchedManifest, PullError> {
        Ok(FetchedManifest {
            bytes: self.read_manifest(digest)?,
            content_type: None,
            header_digest: None,
        })
    }
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send>, PullError> {
        let p = self.blob_path(&desc.digest);
        let f = File::open(&p).map_err(|e| PullError::Source(format!("{}: {e}", p.display())))?;
        Ok(Box::new(f))
    }
}

/// One image to write into a layout: its manifest (or index) descriptor as stored, and the
/// name it gets in `index.json` (`org.opencontainers.image.ref.name`, e.g. `latest` or
/// `busybox:1`).
#[derive(Debug, Clone)]
pub struct SaveImage {
    pub name: Option<String>,
    pub manifest: Descriptor,
}

/// Write images from `store` as an OCI image layout at `dir` (created; an existing layout
/// gets the images added, replacing those of the same name). Every blob is verified as it is
/// copied, and `index.json` is replaced atomically last.
pub fn write_layout(
    dir: &Path,
    store: &dyn BlobStore,
    images: &[SaveImage],
) -> Result<(), LayoutError> {
    let mut index = if dir.join(LAYOUT_FILE).exists() {
        OciLayout::open(dir)?.index
    } else {
        match fs::read_dir(dir) {
            Ok(mut it) => {
                if it.next().is_some() {
                    return Err(LayoutError::Occupied {
                        path: dir.to_path_buf(),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(io_err("creating", dir))?
            }
            Err(e) => return Err(io_err("reading", dir)(e)),
        }
        ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: vec![],
            annotations: Default::default(),
        }
    };
    for img in images {
        copy_tree(dir, store, &img.manifest.digest, img.manifest.size)?;
        let mut d = img.manifest.clone();
        if let Some(n) = &img.name {
            d.annotations.insert(REF_NAME.to_string(), n.clone());
            index
                .manifests
                .retain(|m| m.annotations.get(REF_NAME) != Some(n));
        }
        index.manifests.push(d);
    }
    write_atomic(
        &dir.join(LAYOUT_FILE),
        format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}").as_bytes(),
    )?;
    let json = serde_json::to_vec(&index).map_err(|source| LayoutError::Json {
        path: dir.join("index.json"),
        source,
    })?;
    write_atomic(&dir.join("index.json"), &json)
}

/// Copy a manifest (or index) and everything it references.
fn copy_tree(
    dir: &Path,
    store: &dyn BlobStore,
    digest: &Digest,
    size: u64,
) -> Result<(), LayoutError> {
    let bytes = store.read_small(digest, MAX_MANIFEST_BYTES)?;
    let manifest = parse_manifest(None, &bytes).map_err(|source| LayoutError::Manifest {
        digest: digest.clone(),
        source,
    })?;
    match manifest {
        Manifest::Image(m) => {
            copy_blob(dir, store, &m.config.digest, m.config.size)?;
            for l in &m.layers {
                copy_blob(dir, store, &l.digest, l.size)?;
            }
        }
        Manifest::Index(idx) => {
            for child in &idx.manifests {
                copy_tree(dir, store, &child.digest, child.size)?;
            }
        }
    }
    copy_blob(dir, store, digest, size)
}

fn copy_blob(dir: &Path, store: &dyn BlobStore, d: &Digest, size: u64) -> Result<(), LayoutError> {
    let alg_dir = dir.join("blobs").join(d.algorithm().name());
    let dst = alg_dir.join(d.hex());
    if dst.is_file() {
        return Ok(());
    }
    fs::create_dir_all(&alg_dir).map_err(io_err("creating", &alg_dir))?;
    let src = store.open(d)?;
    let tmp = alg_dir.join(format!(".{}.tmp-{}", d.hex(), std::process::id()));
    let result = (|| {
        let mut out = File::create(&tmp).map_err(io_err("creating", &tmp))?;
        let mut v = VerifyingReader::new(src, d.clone(), Some(size));
        io::copy(&mut v, &mut out).map_err(io_err("copying to", &tmp))?;
        v.finish().map_err(|e| LayoutError::Blob(e.into()))?;
        out.sync_all().map_err(io_err("syncing", &tmp))?;
        fs::rename(&tmp, &dst).map_err(io_err("renaming to", &dst))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), LayoutError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
        f.write_all(data).map_err(io_err("writing", &tmp))?;
        f.sync_all().map_err(io_err("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("renaming to", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The same as [`write_layout`], packed as a tar archive at `file` (podman's `oci-archive`),
/// written to a temporary name and renamed into place.
pub fn write_layout_tar(
    file: &Path,
    store: &dyn BlobStore,
    images: &[SaveImage],
) -> Result<(), LayoutError> {
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".foxbox-save-")
        .tempdir_in(parent)
        .map_err(io_err("creating a temporary directory in", parent))?;
    let layout = staging.path().join("layout");
    write_layout(&layout, store, images)?;
    let tmp = staging.path().join("out.tar");
    let result = (|| -> Result<(), LayoutError> {
        let out = File::create(&tmp).map_err(io_err("creating", &tmp))?;
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Deterministic);
        b.append_dir_all(".", &layout)
            .map_err(io_err("archiving", &layout))?;
        let out = b.into_inner().map_err(io_err("writing", &tmp))?;
        out.sync_all().map_err(io_err("syncing", &tmp))?;
        Ok(())
    })();
    result?;
    fs::rename(&tmp, file).map_err(io_err("renaming to", file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::blobstore::DirBlobStore;
    use crate::oci::manifest::*;
    use crate::oci::platform::Platform;

    fn put(s: &DirBlobStore, data: &[u8]) -> Descriptor {
        let d = Digest::sha256_of(data);
        s.put(&d, Some(data.len() as u64), &mut &data[..]).unwrap();
        Descriptor {
            media_type: String::new(),
            digest: d,
            size: data.len() as u64,
            platform: None,
            annotations: Default::default(),
            urls: vec![],
        }
    }

    #[test]
    fn write_then_read_back_through_the_pull_path() {
        let t = tempfile::tempdir().unwrap();
        let s = DirBlobStore::new(t.path().join("store")).unwrap();
        let layer_tar = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_cksum();
            b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
            b.into_inner().unwrap()
        };
        let mut layer = put(&s, &layer_tar);
        layer.media_type = OCI_LAYER.into();
        let host = Platform::host();
        let cfg = format!(
            r#"{{"architecture":"{}","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            host.architecture, layer.digest
        );
        let mut cfg_d = put(&s, cfg.as_bytes());
        cfg_d.media_type = OCI_CONFIG.into();
        let man = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: cfg_d,
            layers: vec![layer.clone()],
            annotations: Default::default(),
        };
        let mut man_d = put(&s, &serde_json::to_vec(&man).unwrap());
        man_d.media_type = OCI_MANIFEST.into();

        let out = t.path().join("out");
        write_layout(
            &out,
            &s,
            &[SaveImage {
                name: Some("latest".into()),
                manifest: man_d.clone(),
            }],
        )
        .unwrap();
        let l = OciLayout::open(&out).unwrap();
        assert_eq!(l.refs()[0].0.as_deref(), Some("latest"));
        assert!(l.find(Some("nope")).is_err());

        let s2 = DirBlobStore::new(t.path().join("store2")).unwrap();
        let img = l.load(None, &s2, &PullOptions::default()).unwrap();
        assert_eq!(img.manifest_digest, man_d.digest);
        assert_eq!(img.config.config.cmd, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(img.fetched.len(), 2);
        // Loading again fetches nothing.
        let again = l
            .load(Some("latest"), &s2, &PullOptions::default())
            .unwrap();
        assert!(again.fetched.is_empty());

        // A non-empty, non-layout directory is refused; a tar is written.
        assert!(matches!(
            write_layout(t.path(), &s, &[]),
            Err(LayoutError::Occupied { .. })
        ));
        let tarfile = t.path().join("img.tar");
        write_layout_tar(
            &tarfile,
            &s,
            &[SaveImage {
                name: Some("x".into()),
                manifest: man_d,
            }],
        )
        .unwrap();
        let mut a = tar::Archive::new(File::open(&tarfile).unwrap());
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.iter().any(|n| n.ends_with("index.json")), "{names:?}");
    }
}
