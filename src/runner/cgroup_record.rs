//! A box's cgroup as recorded in its directory: written before the cgroup is made (so that a
//! CLI killed while making it leaves something `rm` can clean up from), read back by `exec`
//! (to join it), `stats` (to read usage) and `rm`. The CLI goes through here, never to the
//! cgroup module itself.

use std::io;
use std::path::PathBuf;

use crate::boxes::BoxEntry;
use crate::cgroup::{BoxCgroup, CgroupError};

pub use crate::cgroup::Stats;

/// Why a running box's usage could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// No record: the box has no cgroup (it declares no limit).
    #[error("{0}")]
    NoCgroup(io::Error),
    #[error("{0}")]
    BadRecord(serde_json::Error),
    #[error("{0}")]
    Read(CgroupError),
}

/// What a running box uses now, and the cgroups it was read from.
#[derive(Debug)]
pub struct Usage {
    pub stats: Stats,
    pub cgroups: Vec<PathBuf>,
}

/// Why a box's cgroup could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot encode the box's cgroup record: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Write(#[from] crate::store::atomic::AtomicError),
}

/// Record `cg` as the box's cgroup (replacing any earlier record; the directory is not
/// fsynced, as for the box's other records).
pub fn write(entry: &BoxEntry, cg: &BoxCgroup) -> Result<(), RecordError> {
    let text = serde_json::to_vec(cg)?;
    crate::store::atomic::write_file_unsynced_dir(&entry.cgroup_path(), &text)?;
    Ok(())
}

/// The box's recorded cgroup; `None` when it has no record (a box without limits).
pub fn recorded(entry: &BoxEntry) -> Result<Option<BoxCgroup>, serde_json::Error> {
    match std::fs::read(entry.cgroup_path()) {
        Ok(text) => serde_json::from_slice(&text).map(Some),
        Err(_) => Ok(None),
    }
}

/// Read the box's usage from its recorded cgroup.
pub fn usage(entry: &BoxEntry) -> Result<Usage, UsageError> {
    let text = std::fs::read(entry.cgroup_path()).map_err(UsageError::NoCgroup)?;
    let cg: BoxCgroup = serde_json::from_slice(&text).map_err(UsageError::BadRecord)?;
    let stats = cg.stats().map_err(UsageError::Read)?;
    Ok(Usage {
        stats,
        cgroups: cg.paths(),
    })
}
