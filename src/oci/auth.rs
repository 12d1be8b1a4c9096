//! Credentials (containers' `auth.json` / Docker's `config.json`) and `WWW-Authenticate`
//! challenges.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <hidden>)", self.username)
    }
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid auth file: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: the entry for {key:?} is not base64 of USER:PASSWORD")]
    BadEntry { path: PathBuf, key: String },
}

/// Credentials for `registry` (and optionally a repository inside it) from the first auth file
/// that has an entry. More specific keys (`host/ns/repo`, `host/ns`) win over `host`, as in
/// containers' auth.json; Docker Hub is also looked up under its legacy index URL.
pub fn find_credentials(
    files: &[PathBuf],
    registry: &str,
    repository: &str,
) -> Result<Option<(Credentials, PathBuf)>, AuthFileError> {
    let mut keys: Vec<String> = Vec::new();
    let parts: Vec<&str> = repository.split('/').collect();
    for n in (1..=parts.len()).rev() {
        keys.push(format!("{registry}/{}", parts[..n].join("/")));
    }
    keys.push(registry.to_string());
    if registry == super::reference::DOCKER_HUB {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
        keys.push("registry-1.docker.io".into());
    }
    for file in files {
        let entries = match read_auths(file)? {
            Some(e) => e,
            None => continue,
        };
        for key in &keys {
            let found = entries.iter().find(|(k, _)| normalise_key(k) == *key);
            if let Some((k, entry)) = found {
                let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) else {
                    continue;
                };
                if auth.is_empty() {
                    continue;
                }
                let bad = || AuthFileError::BadEntry {
                    path: file.clone(),
                    key: k.clone(),
                };
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| bad())?;
                let raw = String::from_utf8(raw).map_err(|_| bad())?;
                let (u, p) = raw.split_once(':').ok_or_else(bad)?;
                return Ok(Some((
                    Credentials {
                        username: u.to_string(),
                        password: p.to_string(),
                    },
                    file.clone(),
                )));
            }
        }
    }
    Ok(None)
}

/// `https://host/v1/` style keys (Docker's) compare as `host`.
fn normalise_key(k: &str) -> String {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.strip_suffix("/v1/").unwrap_or(k);
    let k = k.strip_suffix("/v2/").unwrap_or(k);
    k.trim_end_matches('/').to_string()
}

fn read_auths(file: &Path) -> Result<Option<BTreeMap<String, serde_json::Value>>, AuthFileError> {
    let text = match fs::read(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthFileError::Io {
                what: "reading",
                path: file.to_path_buf(),
                source,
            })
        }
    };
    let v: serde_json::Value =
        serde_json::from_slice(&text).map_err(|source| AuthFileError::Json {
            path: file.to_path_buf(),
            source,
        })?;
    Ok(v.get("auths")
        .and_then(|a| a.as_object())
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
}

/// Record credentials for `registry` in `file` (containers' auth.json format), keeping every
/// other entry. The file is written 0600 to a temporary name and renamed into place.
pub fn store_credentials(
    file: &Path,
    registry: &str,
    creds: &Credentials,
) -> Result<(), AuthFileError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| AuthFileError::Io { what, path, source }
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("creating", dir))?;
    let mut doc: serde_json::Value = match fs::read(file) {
        Ok(t) => serde_json::from_slice(&t).map_err(|source| AuthFileError::Json {
            path: file.to_path_buf(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(io("reading", file)(e)),
    };
    if !doc.is_object() {
        doc = serde_json::json!({});
    }
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    if let Some(obj) = doc.as_object_mut() {
        let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
        if !auths.is_object() {
            *auths = serde_json::json!({});
        }
        if let Some(a) = auths.as_object_mut() {
            a.insert(registry.to_string(), serde_json::json!({ "auth": auth }));
        }
    }
    let text = serde_json::to_vec_pretty(&doc).map_err(|source| AuthFileError::Json {
        path: file.to_path_buf(),
        source,
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut f: File = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("creating", &tmp))?;
        // The mode given to open is masked by the umask; credentials must never be wider.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(io("chmod", &tmp))?;
        f.write_all(&text).map_err(io("writing", &tmp))?;
        f.write_all(b"\n").map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
        fs::rename(&tmp, file).map_err(io("renaming to", file))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parse `Basic realm="x"` or `Bearer realm="..",service="..",scope=".."`. Unknown schemes and
/// a Bearer challenge without a realm give None.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                // Push whole characters, not bytes, so non-ASCII survives.
                let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
                val.push_str(&s[i..i + ch_len]);
                i += ch_len;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="foxreg-basic""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://h:5003/token",service="foxreg",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://h:5003/token".into(),
                service: Some("foxreg".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge("Negotiate"), None);
        assert!(parse_challenge(r#"Bearer realm="é\"x"#).is_some());
    }

    #[test]
    fn store_then_find_keeps_other_entries_and_mode() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("sub/auth.json");
        fs::create_dir_all(t.path().join("sub")).unwrap();
        fs::write(
            &f,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="}},"credHelpers":{}}"#,
        )
        .unwrap();
        let c = Credentials {
            username: "fox".into(),
            password: "pa:ss".into(),
        };
        store_credentials(&f, "127.0.0.1:5001", &c).unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let files = vec![t.path().join("missing.json"), f.clone()];
        let (got, from) = find_credentials(&files, "127.0.0.1:5001", "busybox")
            .unwrap()
            .unwrap();
        assert_eq!(got, c);
        assert_eq!(from, f);
        let (hub, _) = find_credentials(&files, "docker.io", "library/busybox")
            .unwrap()
            .unwrap();
        assert_eq!(hub.username, "hub");
        assert!(find_credentials(&files, "quay.io", "x").unwrap().is_none());
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        assert!(v.get("credHelpers").is_some());
        fs::write(&f, "{").unwrap();
        assert!(find_credentials(&files, "quay.io", "x").is_err());
    }
}
