//! Image references: `name[:tag][@sha256:<hex>]` in the store, or a rootfs tarball path.

use std::path::Path;

use super::paths;
use crate::plan::ImageRef;
use crate::registry::reference::{valid_component, valid_registry, valid_tag};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the image is empty")]
    Empty,
    #[error("`{0}` is not a valid image name (lowercase letters, digits and `._-` separators, components joined by `/`)")]
    Name(String),
    #[error("`{0}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128)")]
    Tag(String),
    #[error("`{0}` is not a valid digest (`sha256:` and 64 lowercase hex digits)")]
    Digest(String),
    #[error("bad tarball path: {0}")]
    Path(#[from] paths::PathError),
}

/// Whether `text` names a tarball rather than a stored image.
pub fn is_tarball(text: &str) -> bool {
    text.starts_with('/')
        || text.starts_with("./")
        || text.starts_with("../")
        || [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|ext| text.ends_with(ext))
}

/// Parse an image reference; tarball paths are resolved against `base`.
pub fn parse_image(text: &str, base: &Path) -> Result<ImageRef, ImageError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ImageError::Empty);
    }
    if is_tarball(t) {
        return Ok(ImageRef::Tarball {
            path: paths::host_path(t, base)?,
        });
    }
    let (rest, digest) = match t.split_once('@') {
        Some((r, d)) => {
            let ok = d.strip_prefix("sha256:").is_some_and(|h| {
                h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            });
            if !ok {
                return Err(ImageError::Digest(d.to_string()));
            }
            (r, Some(d.to_string()))
        }
        None => (t, None),
    };
    // A colon after the last slash starts the tag; one before it is a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], &rest[last_slash + i + 1..]),
        None => (rest, "latest"),
    };
    if !valid_name(name) {
        return Err(ImageError::Name(name.to_string()));
    }
    if !valid_tag(tag) {
        return Err(ImageError::Tag(tag.to_string()));
    }
    Ok(ImageRef::Stored {
        name: name.to_string(),
        tag: tag.to_string(),
        digest,
    })
}

/// A repository name with an optional registry host: the grammar the registry client parses,
/// so a spec accepts exactly the names `foxbox pull` does.
fn valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let parts: Vec<&str> = name.split('/').collect();
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return false,
    };
    let first_is_host =
        parts.len() > 1 && (first.contains('.') || first.contains(':') || *first == "localhost");
    if first_is_host {
        valid_registry(first) && rest.iter().all(|c| valid_component(c))
    } else {
        parts.iter().all(|c| valid_component(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn stored(name: &str, tag: &str, digest: Option<&str>) -> ImageRef {
        ImageRef::Stored {
            name: name.into(),
            tag: tag.into(),
            digest: digest.map(Into::into),
        }
    }

    #[test]
    fn parses_references() {
        let b = Path::new("/spec");
        assert_eq!(
            parse_image("busybox", b),
            Ok(stored("busybox", "latest", None))
        );
        assert_eq!(
            parse_image("busybox:1.36", b),
            Ok(stored("busybox", "1.36", None))
        );
        assert_eq!(
            parse_image("localhost:5000/my/app:v1", b),
            Ok(stored("localhost:5000/my/app", "v1", None))
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parse_image(&format!("busybox@{d}"), b),
            Ok(stored("busybox", "latest", Some(&d)))
        );
        assert_eq!(
            parse_image("../images/busybox.tar.gz", b),
            Ok(ImageRef::Tarball {
                path: PathBuf::from("/images/busybox.tar.gz")
            })
        );
        assert_eq!(
            parse_image("rootfs.tar", b),
            Ok(ImageRef::Tarball {
                path: PathBuf::from("/spec/rootfs.tar")
            })
        );
    }

    #[test]
    fn refuses_bad_references() {
        let b = Path::new("/");
        assert!(matches!(
            parse_image("BusyBox", b),
            Err(ImageError::Name(_))
        ));
        assert!(matches!(parse_image("a//b", b), Err(ImageError::Name(_))));
        assert!(matches!(parse_image("a:", b), Err(ImageError::Tag(_))));
        assert!(matches!(parse_image("a:-x", b), Err(ImageError::Tag(_))));
        assert!(matches!(
            parse_image("a@sha256:xyz", b),
            Err(ImageError::Digest(_))
        ));
        assert!(matches!(
            parse_image("a@md5:", b),
            Err(ImageError::Digest(_))
        ));
        assert!(matches!(parse_image("  ", b), Err(ImageError::Empty)));
        assert!(matches!(parse_image("a..b", b), Err(ImageError::Name(_))));
        assert!(valid_component("a__b"));
        assert!(valid_component("a---b"));
        assert!(!valid_component("a___b"));
    }
}
