//! Manifests, indexes and image configs: the OCI and Docker v2 schema 2 JSON documents.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::platform::Platform;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every manifest kind we can read, for the Accept header.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest or config we read into memory.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A content descriptor: what a manifest says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// The first manifest for `platform` (attestations, whose platform is `unknown/unknown`,
    /// never match).
    pub fn for_platform(&self, platform: &Platform) -> Option<&Descriptor> {
        // An exact variant match first, then any compatible one.
        self.manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| p == platform))
            .or_else(|| {
                self.manifests
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
            })
    }
}

/// The part of an image config that becomes a box's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// An image config (OCI and Docker share this shape); unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub rootfs: RootFs,
}

impl ImageConfig {
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// A parsed manifest document of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{0} is the Docker schema 1 format, which foxbox does not read (push it again with a current client)")]
    Schema1(String),
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedType(String),
    #[error("malformed {kind}: {source}")]
    Json {
        kind: &'static str,
        source: serde_json::Error,
    },
    #[error("manifest has schemaVersion {0}, expected 2")]
    SchemaVersion(u32),
}

/// The kind of a manifest from its Content-Type, falling back to its own `mediaType` field,
/// then to its shape (an OCI manifest may omit mediaType).
pub fn parse_manifest(content_type: Option<&str>, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
        kind: "manifest",
        source,
    })?;
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "text/plain");
    let kind = match (ct, probe.media_type.as_deref()) {
        (Some(c), _) => c.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) if probe.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    if probe.schema_version == Some(1) || kind == DOCKER_SCHEMA1 || kind == DOCKER_SCHEMA1_SIGNED {
        return Err(ManifestError::Schema1(kind));
    }
    let m = match kind.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let m: ImageManifest =
                serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                    kind: "image manifest",
                    source,
                })?;
            if m.schema_version != 2 {
                return Err(ManifestError::SchemaVersion(m.schema_version));
            }
            Manifest::Image(m)
        }
        OCI_INDEX | DOCKER_LIST => {
            let m: ImageIndex =
                serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                    kind: "image index",
                    source,
                })?;
            if m.schema_version != 2 {
                return Err(ManifestError::SchemaVersion(m.schema_version));
            }
            Manifest::Index(m)
        }
        other => return Err(ManifestError::UnsupportedType(other.to_string())),
    };
    Ok(m)
}

pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_content_type_field_or_shape() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let man = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":0}},"layers":[]}}"#
        );
        assert!(matches!(
            parse_manifest(None, man.as_bytes()),
            Ok(Manifest::Image(_))
        ));
        assert!(matches!(
            parse_manifest(Some(DOCKER_MANIFEST), man.as_bytes()),
            Ok(Manifest::Image(_))
        ));
        let idx = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            parse_manifest(Some("application/json"), idx.as_bytes()),
            Ok(Manifest::Index(_))
        ));
        assert!(matches!(
            parse_manifest(None, br#"{"schemaVersion":1,"fsLayers":[]}"#),
            Err(ManifestError::Schema1(_))
        ));
        assert!(parse_manifest(Some("text/html"), idx.as_bytes()).is_err());
        assert!(parse_manifest(None, b"not json").is_err());
    }

    #[test]
    fn index_manifest_for_a_platform() {
        let d = |p: &str| Descriptor {
            media_type: String::new(),
            digest: Digest::sha256_of(p.as_bytes()),
            size: 0,
            platform: Some(p.parse().unwrap()),
            annotations: Default::default(),
            urls: vec![],
        };
        let idx = ImageIndex {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                d("unknown/unknown"),
                d("linux/amd64"),
                d("linux/arm/v6"),
                d("linux/arm/v7"),
                d("linux/arm64/v8"),
            ],
            annotations: Default::default(),
        };
        let ms = &idx.manifests;
        let pick = |p: &str| idx.for_platform(&p.parse().unwrap()).cloned();
        assert_eq!(pick("linux/amd64"), Some(ms[1].clone()));
        assert_eq!(pick("linux/arm/v7"), Some(ms[3].clone()));
        assert_eq!(pick("linux/arm64"), Some(ms[4].clone()));
        assert_eq!(pick("linux/s390x"), None);
    }
}
