//! A box's record: its fixed configuration (`config.json`) and its changing state
//! (`state.json`), read and written atomically.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::layout::{CONFIG, STATE};
use super::{io_err, BoxError, BoxState, Boxes, ProcId};
use crate::store::atomic;

/// What a box is, fixed when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxConfig {
    pub id: String,
    pub name: String,
    /// Milliseconds since the epoch.
    pub created: u64,
    /// The image as the user named it.
    pub image: String,
    /// The image id it resolved to, when known.
    #[serde(default)]
    pub image_id: Option<String>,
    pub command: Vec<String>,
    /// The spec file it came from, if any.
    #[serde(default)]
    pub spec: Option<PathBuf>,
    /// Published ports as `host_ip:host_port->box_port/proto`.
    #[serde(default)]
    pub ports: Vec<String>,
    /// Named volumes it uses.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Remove the box when it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// The resolved plan, as `foxbox plan --format json` prints it.
    #[serde(default)]
    pub plan: serde_json::Value,
    /// How `foxbox exec` runs a process the way the fox runs.
    #[serde(default)]
    pub exec: Option<super::execinfo::ExecInfo>,
    /// The process that created the box: its state until `state.json` is first written.
    #[serde(default)]
    pub creator: Option<ProcId>,
    /// The state the box had when it was recorded, for a box recorded once it was running or
    /// had failed (see `Boxes::record`): its state until `state.json` is first
    /// written, instead of "created by `creator`".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<BoxState>,
}

impl BoxConfig {
    /// The grace period between SIGTERM and SIGKILL its plan set (`limits.stop_timeout`), for
    /// `foxbox stop` without `--time`.
    pub fn stop_timeout(&self) -> Duration {
        self.plan
            .pointer("/limits/stop_timeout")
            .and_then(|v| v.as_str())
            .and_then(|s| humantime::parse_duration(s).ok())
            .unwrap_or(crate::plan::DEFAULT_STOP_TIMEOUT)
    }
}

/// One box as listed.
#[derive(Debug, Clone)]
pub struct BoxEntry {
    pub config: BoxConfig,
    /// Already observed (see [`BoxState::observed`]).
    pub state: BoxState,
    pub dir: PathBuf,
    /// Recorded as created or running, but every process of it is gone: it died without
    /// recording its end (see `Boxes::record_death`).
    pub died: bool,
}

/// A box's record, written atomically; the directory is not fsynced (see
/// [`atomic::write_file_unsynced_dir`]).
pub(super) fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), BoxError> {
    let bytes =
        serde_json::to_vec_pretty(v).map_err(|e| io_err("cannot encode", path)(e.into()))?;
    atomic::write_file_unsynced_dir(path, &bytes).map_err(|e| match e {
        atomic::AtomicError::Io { path, source } => BoxError::Io {
            what: "cannot write",
            path,
            source,
        },
        atomic::AtomicError::Encode { path, source } => {
            io_err("cannot encode", &path)(source.into())
        }
    })
}

impl Boxes {
    pub(super) fn read_config(&self, id: &str) -> Result<BoxConfig, BoxError> {
        let p = self.box_dir(id).join(CONFIG);
        let bytes = fs::read(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                BoxError::NotFound(id.to_string())
            } else {
                io_err("cannot read", &p)(e)
            }
        })?;
        serde_json::from_slice(&bytes).map_err(|source| BoxError::Corrupt {
            id: id.to_string(),
            file: CONFIG,
            source,
        })
    }

    /// The recorded state: `state.json`, or before that is first written, the state the config
    /// was recorded with, else "created" by the process the config names.
    pub(super) fn read_state(&self, id: &str, config: &BoxConfig) -> Result<BoxState, BoxError> {
        let p = self.box_dir(id).join(STATE);
        match fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| BoxError::Corrupt {
                id: id.to_string(),
                file: STATE,
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(config
                .initial
                .clone()
                .unwrap_or_else(|| BoxState::created(config.creator))),
            Err(e) => Err(io_err("cannot read", &p)(e)),
        }
    }

    /// Replace a box's state (the caller holds the box's lock).
    pub(super) fn write_state(&self, id: &str, state: &BoxState) -> Result<(), BoxError> {
        write_json(&self.box_dir(id).join(STATE), state)
    }

    /// Change a box's state under its lock: read, modify, write.
    #[cfg(test)]
    pub(super) fn update_state(
        &self,
        id: &str,
        f: impl FnOnce(&mut BoxState),
    ) -> Result<BoxState, BoxError> {
        let _lock = self.lock(id)?;
        let config = self.read_config(id)?;
        let mut state = self.read_state(id, &config)?;
        f(&mut state);
        self.write_state(id, &state)?;
        Ok(state)
    }

    /// Temporary files of interrupted record writes in box `id`'s directory.
    pub fn temp_files(&self, id: &str) -> Vec<PathBuf> {
        crate::store::atomic::temp_files(&self.box_dir(id))
    }

    /// Remove [`Boxes::temp_files`] of a box that does not run, under its lock (its writers
    /// hold it).
    pub fn sweep_temp_files(&self, id: &str) {
        if let Ok(_lock) = self.lock(id) {
            crate::store::atomic::sweep_temp_files(&self.box_dir(id));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::BoxConfig;

    /// A box's config for the store's tests.
    pub(crate) fn config() -> BoxConfig {
        BoxConfig {
            id: String::new(),
            name: String::new(),
            created: 0,
            image: "busybox".into(),
            image_id: None,
            command: vec!["true".into()],
            spec: None,
            ports: vec![],
            volumes: vec![],
            auto_remove: false,
            plan: serde_json::Value::Null,
            exec: None,
            creator: None,
            initial: None,
        }
    }
}
