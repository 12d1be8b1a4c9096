//! seccomp profiles: the built-in default, and OCI/Docker JSON profiles.
//!
//! SKELETON: the seccomp work replaces this with the real parser and compiler; the signatures of
//! `Profile`, `ProfileError` and `parse_profile` are the contract the spec validator uses.

use serde::Serialize;

/// A parsed, checked OCI/Docker seccomp profile, ready to compile for an architecture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub default_action: String,
}

/// One problem in a profile: what and, where known, the JSON pointer to it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProfileError {
    pub message: String,
    /// JSON pointer of the offending value (e.g. `/syscalls/3/names/0`), when known.
    pub pointer: Option<String>,
    pub help: Option<String>,
}

/// Parse and check a profile's JSON text. Every problem found is returned, not just the first.
pub fn parse_profile(text: &str) -> Result<Profile, Vec<ProfileError>> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        vec![ProfileError {
            message: format!("not valid JSON: {e}"),
            pointer: None,
            help: None,
        }]
    })?;
    let default_action = v
        .get("defaultAction")
        .and_then(|a| a.as_str())
        .unwrap_or("SCMP_ACT_ERRNO")
        .to_string();
    Ok(Profile { default_action })
}
