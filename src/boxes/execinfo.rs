//! What `foxbox exec` needs to run a process the way the box's fox runs (part of the box's
//! config, written when the box is made): its capability set, no_new_privs, seccomp filter,
//! environment, user, working directory and hostname. The plan itself is stored for people
//! (`inspect`), not for reading back; this is the part that must round-trip.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plan::caps::CapSet;
use crate::plan::{NetMode, Plan, Seccomp, User};

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
    /// Bit N = capability N: the box's set (the bounding set, and uid 0's five sets).
    pub capabilities: u64,
    /// The part of it added explicitly: a non-root user's sets (see
    /// [`crate::plan::Plan::added_capabilities`]). Records written before it hold none.
    #[serde(default)]
    pub added_capabilities: u64,
    pub no_new_privs: bool,
    pub seccomp: SeccompSource,
    /// The digest of the filter the box got ([`crate::security::seccomp::Program::digest`]).
    /// `exec` compiles the source again and refuses to run when the result differs (a profile
    /// edited since).
    pub seccomp_digest: Option<String>,
    /// The plan's variables, in order.
    pub env: Vec<(String, String)>,
    pub user: UserSpec,
    pub cwd: PathBuf,
    /// `None`: the box's name.
    pub hostname: Option<String>,
    /// The box shares the host's network namespace.
    pub host_network: bool,
}

impl ExecInfo {
    /// `digest` is the box's compiled seccomp filter's (`None` when unconfined).
    pub fn from_plan(plan: &Plan, digest: Option<String>) -> ExecInfo {
        ExecInfo {
            capabilities: plan.capabilities.value.0,
            added_capabilities: plan.added_capabilities.0,
            no_new_privs: plan.no_new_privs,
            seccomp: match &plan.seccomp.value {
                Seccomp::Default => SeccompSource::Default,
                Seccomp::Unconfined => SeccompSource::Unconfined,
                Seccomp::Profile { path, .. } => SeccompSource::Profile { path: path.clone() },
            },
            seccomp_digest: digest,
            env: plan.process.env.clone(),
            user: UserSpec::from(&plan.process.user.value),
            cwd: plan.process.cwd.value.clone(),
            hostname: plan.hostname.as_ref().map(|h| h.value.clone()),
            host_network: plan.network.mode.value == NetMode::Host,
        }
    }

    pub fn caps(&self) -> CapSet {
        CapSet(self.capabilities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let info = ExecInfo {
            capabilities: CapSet::podman_default().0,
            added_capabilities: 1 << 10,
            no_new_privs: true,
            seccomp: SeccompSource::Profile {
                path: "/etc/p.json".into(),
            },
            seccomp_digest: Some("sha256:00".into()),
            env: vec![("PATH".into(), "/bin".into()), ("A".into(), "b c".into())],
            user: UserSpec::Name {
                user: "fox".into(),
                group: Some("wheel".into()),
            },
            cwd: "/work".into(),
            hostname: Some("den".into()),
            host_network: false,
        };
        let text = serde_json::to_string(&info).unwrap();
        assert_eq!(serde_json::from_str::<ExecInfo>(&text).unwrap(), info);
        let u: User = (&info.user).into();
        assert_eq!(UserSpec::from(&u), info.user);
    }
}
