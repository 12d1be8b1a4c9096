//! What `foxbox exec` needs to run a process the way the box's fox runs (`exec.json`, written
//! when the box is made): its capability set, no_new_privs, seccomp filter, environment, user,
//! working directory and hostname. The plan itself is stored for people (`inspect`), not for
//! reading back; this is the part that must round-trip.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{write_json, BoxError};
use crate::plan::{NetMode, Plan, Seccomp, User};
use crate::security::caps::CapSet;

pub const FILE: &str = "exec.json";

/// Where the box's seccomp filter came from, so that `exec` can compile it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeccompSource {
    Default,
    Unconfined,
    Profile { path: PathBuf },
}

/// The box's user as the plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UserSpec {
    Id { uid: u32, gid: Option<u32> },
    Name { user: String, group: Option<String> },
}

impl From<&User> for UserSpec {
    fn from(u: &User) -> UserSpec {
        match u {
            User::Id { uid, gid } => UserSpec::Id {
                uid: *uid,
                gid: *gid,
            },
            User::Name { user, group } => UserSpec::Name {
                user: user.clone(),
                group: group.clone(),
            },
        }
    }
}

impl From<&UserSpec> for User {
    fn from(u: &UserSpec) -> User {
        match u {
            UserSpec::Id { uid, gid } => User::Id {
                uid: *uid,
                gid: *gid,
            },
            UserSpec::Name { user, group } => User::Name {
                user: user.clone(),
                group: group.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecInfo {
    /// Bit N = capability N: the fox's five sets.
    pub capabilities: u64,
    pub no_new_privs: bool,
    pub seccomp: SeccompSource,
    /// The filter the box got, as compiled then (JSON of the program). `exec` compiles the
    /// source again and refuses to run when the result differs (a profile edited since).
    pub seccomp_program: Option<serde_json::Value>,
    /// The plan's variables, in order.
    pub env: Vec<(String, String)>,
    pub user: UserSpec,
    pub cwd: PathBuf,
    pub hostname: String,
    /// The box shares the host's network namespace.
    pub host_network: bool,
}

impl ExecInfo {
    /// `program` is the box's compiled seccomp filter, serialised (`None` when unconfined).
    pub fn from_plan(plan: &Plan, hostname: &str, program: Option<serde_json::Value>) -> ExecInfo {
        ExecInfo {
            capabilities: plan.capabilities.value.0,
            no_new_privs: plan.no_new_privs,
            seccomp: match &plan.seccomp.value {
                Seccomp::Default => SeccompSource::Default,
                Seccomp::Unconfined => SeccompSource::Unconfined,
                Seccomp::Profile { path, .. } => SeccompSource::Profile { path: path.clone() },
            },
            seccomp_program: program,
            env: plan.process.env.clone(),
            user: UserSpec::from(&plan.process.user.value),
            cwd: plan.process.cwd.value.clone(),
            hostname: hostname.to_string(),
            host_network: plan.network.mode.value == NetMode::Host,
        }
    }

    pub fn caps(&self) -> CapSet {
        CapSet(self.capabilities)
    }

    pub fn save(&self, box_dir: &Path) -> Result<(), BoxError> {
        write_json(&box_dir.join(FILE), self)
    }

    pub fn load(box_dir: &Path) -> Result<ExecInfo, BoxError> {
        let p = box_dir.join(FILE);
        let bytes = std::fs::read(&p).map_err(|source| BoxError::Io {
            what: "cannot read",
            path: p.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| BoxError::Corrupt {
            id: box_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            file: FILE,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_file() {
        let t = tempfile::tempdir().unwrap();
        let info = ExecInfo {
            capabilities: CapSet::podman_default().0,
            no_new_privs: true,
            seccomp: SeccompSource::Profile {
                path: "/etc/p.json".into(),
            },
            seccomp_program: Some(serde_json::json!({"arch": "x86_64"})),
            env: vec![("PATH".into(), "/bin".into()), ("A".into(), "b c".into())],
            user: UserSpec::Name {
                user: "fox".into(),
                group: Some("wheel".into()),
            },
            cwd: "/work".into(),
            hostname: "den".into(),
            host_network: false,
        };
        info.save(t.path()).unwrap();
        assert_eq!(ExecInfo::load(t.path()).unwrap(), info);
        let u: User = (&info.user).into();
        assert_eq!(UserSpec::from(&u), info.user);
    }
}
