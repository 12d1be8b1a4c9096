//! Reading a bundle's `config.json` into the runtime-spec types of the `oci-spec` crate, with
//! every error naming the JSON path of the value at fault.

use std::path::Path;

use oci_spec::runtime::Spec;

/// A problem with `config.json`: where (a JSON path such as `process.user.uid`) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config.json: {path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The parsed config and its raw JSON (kept for what `oci-spec` types do not carry as
/// written: the seccomp profile is handed to foxbox's own profile parser).
pub struct Config {
    pub spec: Spec,
    pub raw: serde_json::Value,
}

/// Read and parse `BUNDLE/config.json`.
pub fn load(bundle: &Path) -> Result<Config, ConfigError> {
    let file = bundle.join("config.json");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", file.display())))?;
    parse(&text)
}

/// Parse config.json text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ConfigError::new("", format!("not valid JSON: {e}")))?;
    if !raw.is_object() {
        return Err(ConfigError::new("", "the top level is not a JSON object"));
    }
    let spec: Spec = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(path, e.into_inner().to_string())
    })?;
    Ok(Config { spec, raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_type_names_its_json_path() {
        let e =
            parse(r#"{"ociVersion":"1.0.2","process":{"user":{"uid":"zero","gid":0},"cwd":"/"}}"#)
                .err()
                .unwrap();
        assert_eq!(e.path, "process.user.uid");
        assert!(e.message.contains("expected u32"), "{e}");
        let e = parse(r#"{"ociVersion":"1.0.2","process":{"user":{"uid":-1,"gid":0},"cwd":"/"}}"#)
            .err()
            .unwrap();
        assert_eq!(e.path, "process.user.uid");
        let e =
            parse(r#"{"ociVersion":"1","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#)
                .err()
                .unwrap();
        assert_eq!(e.path, "linux.namespaces[1].type");
    }

    #[test]
    fn not_json_or_not_an_object_is_refused() {
        assert!(parse("{").is_err());
        assert!(parse("[]").is_err());
    }
}
