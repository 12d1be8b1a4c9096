//! Image names as users write them ([`ImageName`], the one parser, with the plan's values),
//! and image ids.

pub use crate::plan::reference::{ImageName, NameError};

/// If `s` looks like an image id or a prefix of one (`[sha256:]<hex>`), the lowercase hex part.
pub fn id_prefix(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    let ok = !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| hex.to_ascii_lowercase())
}

/// The default image name for a tarball: its file name less `.tar`, `.tar.gz` or `.tgz`.
pub fn name_from_file(path: &std::path::Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = [".tar.gz", ".tgz", ".tar"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(file);
    Some(stem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_file_names() {
        assert_eq!(id_prefix("sha256:ABC1"), Some("abc1".into()));
        assert_eq!(id_prefix("busybox"), None);
        assert_eq!(
            name_from_file(std::path::Path::new("/x/debian.tar.gz")),
            Some("debian".into())
        );
        assert_eq!(
            name_from_file(std::path::Path::new("a.tar")),
            Some("a".into())
        );
    }
}
