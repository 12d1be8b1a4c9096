//! Paths in the box (absolute, normalised, never `..`) and paths on the host (relative to the
//! spec file's directory).

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path contains a NUL byte")]
    Nul,
    #[error("`{0}` is not absolute")]
    Relative(String),
    #[error("`{0}` contains `..`")]
    DotDot(String),
}

/// A path inside the box: absolute, `.` and repeated or trailing slashes removed. `..` is
/// refused rather than resolved, since what it means depends on symlinks inside the image.
pub fn box_path(text: &str) -> Result<PathBuf, PathError> {
    if text.is_empty() {
        return Err(PathError::Empty);
    }
    if text.contains('\0') {
        return Err(PathError::Nul);
    }
    if !text.starts_with('/') {
        return Err(PathError::Relative(text.to_string()));
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(text).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return Err(PathError::DotDot(text.to_string())),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// A path on the host: relative ones are joined to `base`, then `.` and `..` are resolved
/// lexically (the spec's own directory is the anchor, as a user reading the file expects).
pub fn host_path(text: &str, base: &Path) -> Result<PathBuf, PathError> {
    if text.is_empty() {
        return Err(PathError::Empty);
    }
    if text.contains('\0') {
        return Err(PathError::Nul);
    }
    let joined = if text.starts_with('/') {
        PathBuf::from(text)
    } else {
        base.join(text)
    };
    Ok(normalise(&joined))
}

/// Lexical normalisation of an absolute (or base-relative) path.
pub fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                // `/..` is `/`; popping the root would leave an empty path.
                if out.parent().is_some() {
                    out.pop();
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// `path` relative to `dir` when both are absolute (`../x` steps as needed).
pub(crate) fn relative_to(path: &Path, dir: &Path) -> PathBuf {
    let p: Vec<Component<'_>> = path.components().collect();
    let d: Vec<Component<'_>> = dir.components().collect();
    let common = p.iter().zip(&d).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return path.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..d.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_paths_are_normalised() {
        assert_eq!(box_path("/a//b/./c/"), Ok(PathBuf::from("/a/b/c")));
        assert_eq!(box_path("/"), Ok(PathBuf::from("/")));
        assert_eq!(box_path("a"), Err(PathError::Relative("a".into())));
        assert_eq!(
            box_path("/a/../b"),
            Err(PathError::DotDot("/a/../b".into()))
        );
        assert_eq!(box_path(""), Err(PathError::Empty));
        assert_eq!(box_path("/a\0"), Err(PathError::Nul));
    }

    #[test]
    fn host_paths_resolve_against_the_base() {
        let base = Path::new("/repo/specs");
        assert_eq!(
            host_path("./src", base),
            Ok(PathBuf::from("/repo/specs/src"))
        );
        assert_eq!(host_path("../src", base), Ok(PathBuf::from("/repo/src")));
        assert_eq!(host_path("/data/", base), Ok(PathBuf::from("/data")));
        assert_eq!(host_path("/../..", base), Ok(PathBuf::from("/")));
        assert_eq!(host_path(".", base), Ok(PathBuf::from("/repo/specs")));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to(Path::new("/r/base/x.tar"), Path::new("/r/app")),
            PathBuf::from("../base/x.tar")
        );
        assert_eq!(
            relative_to(Path::new("/r/app/x.tar"), Path::new("/r/app")),
            PathBuf::from("x.tar")
        );
    }
}
