//! The data root (images, boxes, volumes) and the runtime directory (pids, sockets).

use std::path::{Path, PathBuf};

/// Resolved locations for one user's foxbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Persistent state: `--root`, else `$FOXBOX_ROOT`, else `$XDG_DATA_HOME/foxbox`, else
    /// `~/.local/share/foxbox`.
    pub root: PathBuf,
    /// Runtime files: `$XDG_RUNTIME_DIR/foxbox`, else `<root>/run`.
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
        Self::resolve_with(explicit_root, |k| std::env::var_os(k))
    }

    fn resolve_with(
        explicit_root: Option<&Path>,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
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
        let runtime = match nonempty("XDG_RUNTIME_DIR") {
            // An explicit root gets its own runtime dir so two stores never share pids/sockets.
            Some(r) if explicit_root.is_none() && env("FOXBOX_ROOT").is_none() => r.join("foxbox"),
            _ => root.join("run"),
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
        let p = Paths::resolve_with(
            Some(Path::new("/x")),
            env(&[("FOXBOX_ROOT", "/y"), ("XDG_RUNTIME_DIR", "/run/user/1")]),
        )
        .unwrap();
        assert_eq!(p.root, PathBuf::from("/x"));
        assert_eq!(p.runtime, PathBuf::from("/x/run"));
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
        )
        .unwrap();
        assert_eq!(p.root, PathBuf::from("/d/foxbox"));
        assert_eq!(p.runtime, PathBuf::from("/run/user/1/foxbox"));
    }

    #[test]
    fn home_fallback_and_no_home_error() {
        let p = Paths::resolve_with(None, env(&[("HOME", "/h")])).unwrap();
        assert_eq!(p.root, PathBuf::from("/h/.local/share/foxbox"));
        assert_eq!(p.runtime, PathBuf::from("/h/.local/share/foxbox/run"));
        assert!(Paths::resolve_with(None, env(&[])).is_err());
    }
}
