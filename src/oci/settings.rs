//! Where the registry client looks for its configuration: insecure registries, CA
//! certificates, and credentials.
//!
//! - `$XDG_CONFIG_HOME/foxbox/registries.toml` (else `~/.config/foxbox/registries.toml`):
//!   `insecure = ["host:port", ...]`; `$FOXBOX_INSECURE_REGISTRIES` (comma-separated) adds to
//!   it. An insecure registry is reached over HTTPS without certificate verification, or over
//!   plain HTTP when it does not speak TLS. Loopback registries (`localhost`, `127.*`, `::1`)
//!   may use plain HTTP without being listed, but their certificates are still verified when
//!   they speak TLS.
//! - CA certificates: every `*.crt` in `certs.d/<host:port>/` under `$XDG_CONFIG_HOME/foxbox`,
//!   `/etc/foxbox`, `/etc/containers` and `/etc/docker` (containers' layout), plus those in a
//!   `--cert-dir`, added to the system roots: the bundle `$SSL_CERT_FILE` names, else the
//!   distribution's (`/etc/ssl/certs/ca-certificates.crt` and the like), and the certificates
//!   in the directories `$SSL_CERT_DIR` lists. ureq's bundled web roots only when the system
//!   has none.
//! - Credentials: `$REGISTRY_AUTH_FILE`, then `$XDG_CONFIG_HOME/foxbox/auth.json` (where
//!   `foxbox login` writes), `$XDG_RUNTIME_DIR/containers/auth.json`,
//!   `$XDG_CONFIG_HOME/containers/auth.json`, `~/.docker/config.json`.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `$XDG_CONFIG_HOME/foxbox`, when a home or XDG dir is known.
    pub config_dir: Option<PathBuf>,
    /// Auth files to read, in order.
    pub auth_files: Vec<PathBuf>,
    /// Registries (`host[:port]`) marked insecure.
    pub insecure: Vec<String>,
    /// Roots of `certs.d` trees.
    pub certs_d: Vec<PathBuf>,
    /// A directory whose `*.crt` files are CAs for every registry (`--cert-dir`).
    pub cert_dir: Option<PathBuf>,
    /// Do not verify TLS certificates for any registry (`--tls-verify=false`).
    pub tls_verify_off: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Toml { path: PathBuf, message: String },
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistriesToml {
    #[serde(default)]
    insecure: Vec<String>,
}

impl Settings {
    /// From the process environment and the files it names.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Self::from_vars(|k| std::env::var_os(k).filter(|v| !v.is_empty()))
    }

    pub fn from_vars(
        var: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Settings, SettingsError> {
        let home = var("HOME").map(PathBuf::from);
        let xdg_config = var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".config")));
        let config_dir = xdg_config.as_ref().map(|c| c.join("foxbox"));
        let mut auth_files = Vec::new();
        if let Some(f) = var("REGISTRY_AUTH_FILE") {
            auth_files.push(PathBuf::from(f));
        }
        if let Some(c) = &config_dir {
            auth_files.push(c.join("auth.json"));
        }
        if let Some(r) = var("XDG_RUNTIME_DIR") {
            auth_files.push(PathBuf::from(r).join("containers/auth.json"));
        }
        if let Some(c) = &xdg_config {
            auth_files.push(c.join("containers/auth.json"));
        }
        if let Some(h) = &home {
            auth_files.push(h.join(".docker/config.json"));
        }
        let mut certs_d = Vec::new();
        if let Some(c) = &config_dir {
            certs_d.push(c.join("certs.d"));
        }
        for sys in [
            "/etc/foxbox/certs.d",
            "/etc/containers/certs.d",
            "/etc/docker/certs.d",
        ] {
            certs_d.push(PathBuf::from(sys));
        }
        let mut insecure = Vec::new();
        if let Some(c) = &config_dir {
            insecure.extend(read_registries_toml(&c.join("registries.toml"))?.insecure);
        }
        if let Some(v) = var("FOXBOX_INSECURE_REGISTRIES") {
            insecure.extend(
                v.to_string_lossy()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        Ok(Settings {
            config_dir,
            auth_files,
            insecure,
            certs_d,
            cert_dir: None,
            tls_verify_off: false,
        })
    }

    /// Where `foxbox login` stores credentials.
    pub fn login_auth_file(&self) -> Option<PathBuf> {
        self.config_dir.as_ref().map(|c| c.join("auth.json"))
    }

    pub fn is_insecure(&self, registry: &str) -> bool {
        self.tls_verify_off || self.insecure.iter().any(|r| r == registry)
    }

    /// The PEM files holding extra CAs for `registry`.
    pub fn ca_files(&self, registry: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.certs_d.iter().map(|d| d.join(registry)).collect();
        if let Some(d) = &self.cert_dir {
            dirs.push(d.clone());
        }
        let mut out = Vec::new();
        for d in dirs {
            // certs.d keys are host[:port]; a path separator in one would escape the tree.
            if registry.contains('/') || registry.starts_with('.') {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "crt"))
                .collect();
            files.sort();
            out.extend(files);
        }
        out
    }
}

fn read_registries_toml(path: &Path) -> Result<RegistriesToml, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(source) => {
            return Err(SettingsError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    toml::from_str(&text).map_err(|e| SettingsError::Toml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    #[test]
    fn locations_and_insecure_list() {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("cfg");
        std::fs::create_dir_all(cfg.join("foxbox/certs.d/127.0.0.1:5001")).unwrap();
        std::fs::write(cfg.join("foxbox/certs.d/127.0.0.1:5001/ca.crt"), "x").unwrap();
        std::fs::write(cfg.join("foxbox/certs.d/127.0.0.1:5001/c.key"), "x").unwrap();
        std::fs::write(cfg.join("foxbox/registries.toml"), "insecure = [\"a:1\"]\n").unwrap();
        let vars: HashMap<&str, OsString> = [
            ("HOME", OsString::from("/h")),
            ("XDG_CONFIG_HOME", cfg.clone().into_os_string()),
            ("XDG_RUNTIME_DIR", OsString::from("/run/user/7")),
            ("FOXBOX_INSECURE_REGISTRIES", OsString::from("b:2, c")),
        ]
        .into_iter()
        .collect();
        let s = Settings::from_vars(|k| vars.get(k).cloned()).unwrap();
        assert_eq!(s.insecure, ["a:1", "b:2", "c"]);
        assert!(s.is_insecure("c") && !s.is_insecure("d"));
        assert_eq!(s.login_auth_file(), Some(cfg.join("foxbox/auth.json")));
        assert_eq!(
            s.auth_files,
            [
                cfg.join("foxbox/auth.json"),
                PathBuf::from("/run/user/7/containers/auth.json"),
                cfg.join("containers/auth.json"),
                PathBuf::from("/h/.docker/config.json"),
            ]
        );
        assert_eq!(
            s.ca_files("127.0.0.1:5001"),
            [cfg.join("foxbox/certs.d/127.0.0.1:5001/ca.crt")]
        );
        assert!(s.ca_files("../x").is_empty());

        std::fs::write(cfg.join("foxbox/registries.toml"), "insecur = []\n").unwrap();
        assert!(Settings::from_vars(|k| vars.get(k).cloned()).is_err());
    }
}
