//! Image references: `name[:tag][@sha256:<hex>]` in the store, or a rootfs tarball path.

use std::path::Path;

use super::paths;
use crate::plan::reference::{ImageName, Part};
use crate::plan::ImageRef;

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
    match ImageName::parse(t) {
        Ok(n) => Ok(ImageRef::Stored(n)),
        Err(e) => Err(match e.part {
            Part::Empty => ImageError::Empty,
            Part::Name | Part::Registry => ImageError::Name(e.text),
            Part::Tag => ImageError::Tag(e.text),
            Part::Digest => ImageError::Digest(e.text),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A stored reference's name, tag (defaulted) and digest.
    fn stored(r: Result<ImageRef, ImageError>) -> (String, String, Option<String>) {
        match r {
            Ok(ImageRef::Stored(n)) => (
                n.name().into(),
                n.tag().into(),
                n.digest().map(|d| d.to_string()),
            ),
            other => panic!("not stored: {other:?}"),
        }
    }

    fn want(name: &str, tag: &str, digest: Option<&str>) -> (String, String, Option<String>) {
        (name.into(), tag.into(), digest.map(Into::into))
    }

    #[test]
    fn parses_references() {
        let b = Path::new("/spec");
        assert_eq!(
            stored(parse_image("busybox", b)),
            want("busybox", "latest", None)
        );
        assert_eq!(
            stored(parse_image("busybox:1.36", b)),
            want("busybox", "1.36", None)
        );
        assert_eq!(
            stored(parse_image("localhost:5000/my/app:v1", b)),
            want("localhost:5000/my/app", "v1", None)
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            stored(parse_image(&format!("busybox@{d}"), b)),
            want("busybox", "latest", Some(&d))
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
    }
}
