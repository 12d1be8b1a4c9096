//! Registry references: an image name ([`ImageName`], the one parser) with Docker's
//! short-name rules applied: the registry to ask, the repository, a tag and/or a digest.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;
use crate::plan::reference::ImageName;
pub use crate::plan::reference::DEFAULT_TAG;

pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A fully qualified reference: registry, repository path, and a tag and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]` as written (docker.io for Docker Hub).
    pub registry: String,
    /// The repository path, e.g. `library/busybox`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// When given, the manifest fetched must have this digest.
    pub digest: Option<Digest>,
    /// Whether the registry was implied (a short name like `busybox`).
    pub short_name: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {input:?}: {why}")]
pub struct ReferenceError {
    pub input: String,
    pub why: String,
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl Reference {
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let name = ImageName::parse(input).map_err(|e| ReferenceError {
            input: input.to_string(),
            why: e.why,
        })?;
        Reference::from_name(&name, true)
    }

    /// The reference an image name makes with Docker's short-name rules (`busybox` is
    /// `docker.io/library/busybox`). `with_tag`: keep its tag beside a digest (a name with
    /// neither gets `latest`).
    pub fn from_name(n: &ImageName, with_tag: bool) -> Result<Reference, ReferenceError> {
        let err = |why: &str| ReferenceError {
            input: n.to_string(),
            why: why.to_string(),
        };
        let (registry, repository, short_name) = match n.registry() {
            Some((host, path)) => (host.to_string(), path.to_string(), false),
            None => (DOCKER_HUB.to_string(), n.name().to_string(), true),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.len() > 255 {
            return Err(err("repository name longer than 255 characters"));
        }
        let digest = n.digest().cloned();
        let tag = match (n.written_tag().filter(|_| with_tag), &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
            short_name,
        })
    }

    /// The host to talk HTTP to (Docker Hub's API lives elsewhere than its name).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// What to ask the manifests endpoint for: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Whether a registry is on this machine: plain HTTP is allowed for it.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_part(registry);
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// The host without the port (IPv6 brackets removed).
pub fn host_part(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn docker_hub_short_names_are_normalised() {
        let x = r("busybox");
        assert_eq!(x.to_string(), "docker.io/library/busybox:latest");
        assert!(x.short_name);
        assert_eq!(x.api_host(), "registry-1.docker.io");
        assert_eq!(r("user/app:1.0").to_string(), "docker.io/user/app:1.0");
        assert_eq!(
            r("index.docker.io/library/alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        assert!(!r("docker.io/library/alpine").short_name);
    }

    #[test]
    fn registries_ports_tags_and_digests() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let x = r(&format!("127.0.0.1:5000/ns/name:tag@{d}"));
        assert_eq!(x.registry, "127.0.0.1:5000");
        assert_eq!(x.repository, "ns/name");
        assert_eq!(x.tag.as_deref(), Some("tag"));
        assert_eq!(x.manifest_reference(), d);
        let x = r(&format!("localhost/name@{d}"));
        assert_eq!(x.registry, "localhost");
        assert_eq!(x.tag, None);
        let x = r("localhost:5000/a/b/c");
        assert_eq!(x.registry, "localhost:5000");
        assert_eq!(x.repository, "a/b/c");
        assert_eq!(x.tag.as_deref(), Some("latest"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5001"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("quay.io"));
        assert_eq!(r("[::1]:5000/x").registry, "[::1]:5000");
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:123",
            "host:99999/x",
            "a//b",
            "a/../b",
            "-a",
            "a--",
            "a:b:c",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Reference::parse("a--b").is_ok());
        assert!(Reference::parse("a__b.c_d").is_ok());
    }
}
