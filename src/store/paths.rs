//! The data root (images, boxes, volumes) and the runtime directory (pids, sockets).

use std::path::{Path, PathBuf};

/// Resolved locations for one user's foxbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Persistent state: `--root`, else `$FOXBOX_ROOT`, else `$XDG_DATA_HOME/foxbox`, else
    /// `~/.local/share/foxbox`.
    pub root: PathBuf,
    /// Runtime files, on the runtime tmpfs (a reboot clears them, as podman's): for the
    /// default store `$XDG_RUNTIME_DIR/foxbox`, for one named by `--root` or `FOXBOX_ROOT`
    /// `$XDG_RUNTIME_DIR/foxbox-<hash of its path>` (two stores never share pids or sockets);
    /// root without `XDG_RUNTIME_DIR` uses `/run` in its place. Else `<root>/run`.
    pub runtime: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("cannot find a place for foxbox's data: none of --root, FOXBOX_ROOT, XDG_DATA_HOME or HOME is set")]
    NoHome,
}

impl Paths {
    /// Resolve from an explicit root (the `--root` flag) or the environment.
    pub fn resolve(explicit_root: Option<&Path>) -> Result<Paths, PathsError> {
        Self::resolve_with(
            explicit_root,
            |k| std::env::var_os(k),
            nix::unistd::geteuid().is_root(),
        )
    }

    fn resolve_with(
        explicit_root: Option<&Path>,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
        is_root: bool,
    ) -> Result<Paths, PathsError> {
        let nonempty = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = if let Some(r) = explicit_root {
            r.to_path_buf()
        } else if let Some(r) = nonempty("FOXBOX_ROOT") {
            r
        } else if let Some(d) = nonempty("XDG_DATA_HOME") {
            d.join("foxbox")
        } else if let Some(h) = nonempty("HOME") {
            h.join(".local/share/foxbox")
        } else {
            return Err(PathsError::NoHome);
        };
        let root = absolute(&root);
        let explicit = explicit_root.is_some() || nonempty("FOXBOX_ROOT").is_some();
        let tmpfs = nonempty("XDG_RUNTIME_DIR").or_else(|| is_root.then(|| PathBuf::from("/run")));
        let runtime = match tmpfs {
            Some(r) if explicit => r.join(format!("foxbox-{}", short_hash(&root))),
            Some(r) => r.join("foxbox"),
            None => root.join("run"),
        };
        Ok(Paths { root, runtime })
    }

    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    pub fn boxes(&self) -> PathBuf {
        self.root.join("boxes")
    }
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
}

/// 16 hex digits of the SHA-256 of a path: short, for unix socket paths below it.
fn short_hash(p: &Path) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(p.as_os_str().as_encoded_bytes());
    hex::encode(&d[..8])
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let m: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn explicit_root_wins_and_gets_its_own_runtime_dir() {
        let vars = [("FOXBOX_ROOT", "/y"), ("XDG_RUNTIME_DIR", "/run/user/1")];
        let p = Paths::resolve_with(Some(Path::new("/x")), env(&vars), false).unwrap();
        assert_eq!(p.root, PathBuf::from("/x"));
        let name = p
            .runtime
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(p.runtime.parent(), Some(Path::new("/run/user/1")));
        assert!(
            name.starts_with("foxbox-") && name.len() == 7 + 16,
            "{name}"
        );
        // Another store, another runtime dir; the same store, the same.
        let y = Paths::resolve_with(None, env(&vars), false).unwrap();
        assert_eq!(y.root, PathBuf::from("/y"));
        assert_ne!(y.runtime, p.runtime);
        let again = Paths::resolve_with(Some(Path::new("/x")), env(&vars), false).unwrap();
        assert_eq!(again.runtime, p.runtime);
        // Root without XDG_RUNTIME_DIR: /run, a tmpfs too.
        let r = Paths::resolve_with(Some(Path::new("/x")), env(&[]), true).unwrap();
        assert_eq!(r.runtime.parent(), Some(Path::new("/run")));
        let d = Paths::resolve_with(None, env(&[("HOME", "/h")]), true).unwrap();
        assert_eq!(d.runtime, PathBuf::from("/run/foxbox"));
    }

    #[test]
    fn xdg_dirs_are_used_when_nothing_else_is_set() {
        let p = Paths::resolve_with(
            None,
            env(&[
                ("XDG_DATA_HOME", "/d"),
                ("XDG_RUNTIME_DIR", "/run/user/1"),
                ("HOME", "/h"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(p.root, PathBuf::from("/d/foxbox"));
        assert_eq!(p.runtime, PathBuf::from("/run/user/1/foxbox"));
    }

    #[test]
    fn home_fallback_and_no_home_error() {
        let p = Paths::resolve_with(None, env(&[("HOME", "/h")]), false).unwrap();
        assert_eq!(p.root, PathBuf::from("/h/.local/share/foxbox"));
        assert_eq!(p.runtime, PathBuf::from("/h/.local/share/foxbox/run"));
        assert!(Paths::resolve_with(None, env(&[]), false).is_err());
    }
}
