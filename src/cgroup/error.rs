//! What can go wrong with cgroups, each case naming the path (and the errno through the
//! `io::Error` it carries), with a help line saying how to fix it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::{Controller, Version};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove cgroup {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {path} already exists; foxbox will not adopt a cgroup it did not create")]
    Exists { path: PathBuf },
    #[error("cgroup {path} still has processes {pids:?} after {waited:?}")]
    Busy {
        path: PathBuf,
        pids: Vec<i32>,
        waited: Duration,
    },
    #[error("cannot signal process {pid} of cgroup {path}: {source}")]
    Kill {
        pid: i32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot parse {path}: {what}")]
    Parse { path: PathBuf, what: String },
    #[error("the {controller} controller is not available on this host: no cgroup v1 hierarchy has it and no cgroup2 mount lists it in cgroup.controllers")]
    NoController { controller: Controller },
    #[error("the {controller} controller is on cgroup v2 at {mount}, but it is not enabled for {path}: it is missing from {path}/cgroup.controllers")]
    NotEnabled {
        controller: Controller,
        mount: PathBuf,
        path: PathBuf,
    },
    #[error("the {controller} controller is on cgroup {version} at {mount}; {path} is not writable by uid {uid}")]
    NotDelegated {
        controller: Controller,
        version: Version,
        mount: PathBuf,
        /// The file or directory that would have to be writable.
        path: PathBuf,
        uid: u32,
    },
    #[error("the {controller} controller is on cgroup v2 at {mount}; it cannot be enabled below {path}: the cgroup has processes of its own and cgroup v2 allows controllers only in cgroups without them")]
    InternalProcesses {
        controller: Controller,
        mount: PathBuf,
        path: PathBuf,
    },
    #[error("the swap limit cannot be enforced: {path} does not exist (the kernel does not account swap per cgroup; boot with swapaccount=1)")]
    NoSwapAccounting { path: PathBuf },
    #[error("invalid box id {id:?} for a cgroup name: it must be one non-empty path component")]
    BadBoxId { id: String },
    #[error("invalid cgroup parent {parent:?}: {why}")]
    BadParent { parent: String, why: &'static str },
    #[error("{field}: {why}")]
    Unsupported { field: String, why: String },
    #[error("{field}: {source}")]
    Setting {
        field: String,
        #[source]
        source: Box<CgroupError>,
    },
    #[error("cgroup {path}: cannot {what}: {source}")]
    DeviceProgram {
        path: PathBuf,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot find this process's cgroup in the {controller} hierarchy at {mount} (from /proc/self/cgroup)")]
    NoOwnCgroup {
        controller: Controller,
        mount: PathBuf,
    },
}

impl CgroupError {
    /// The errno underneath, when a system call failed.
    pub fn errno(&self) -> Option<i32> {
        match self {
            CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Create { source, .. }
            | CgroupError::Remove { source, .. }
            | CgroupError::Kill { source, .. }
            | CgroupError::DeviceProgram { source, .. } => source.raw_os_error(),
            CgroupError::Setting { source, .. } => source.errno(),
            _ => None,
        }
    }

    /// The same refusal about another controller of the same hierarchy (one undelegated v2
    /// cgroup refuses memory, cpu and pids alike); `None` for errors that are not about one.
    pub fn for_controller(&self, c: Controller) -> Option<CgroupError> {
        match self {
            CgroupError::NotDelegated {
                version,
                mount,
                path,
                uid,
                ..
            } => Some(CgroupError::NotDelegated {
                controller: c,
                version: *version,
                mount: mount.clone(),
                path: path.clone(),
                uid: *uid,
            }),
            CgroupError::InternalProcesses { mount, path, .. } => {
                Some(CgroupError::InternalProcesses {
                    controller: c,
                    mount: mount.clone(),
                    path: path.clone(),
                })
            }
            CgroupError::NoOwnCgroup { mount, .. } => Some(CgroupError::NoOwnCgroup {
                controller: c,
                mount: mount.clone(),
            }),
            _ => None,
        }
    }

    /// How to fix it, for the `help:` line of a diagnostic.
    pub fn help(&self) -> Option<String> {
        match self {
            CgroupError::NotDelegated {
                version: Version::V1,
                mount,
                uid,
                ..
            } => Some(format!(
                "delegate a cgroup v1 subtree to the user, as root: `mkdir -p {m}/foxbox-{uid} && chown -R {uid} {m}/foxbox-{uid}` \
                 (likewise in each controller's hierarchy under /sys/fs/cgroup), then pass `--cgroup-parent foxbox-{uid}` \
                 or set FOXBOX_CGROUP_PARENT=foxbox-{uid}; or set `enforce = \"best-effort\"` in [limits] to run without the limit",
                m = mount.display()
            )),
            CgroupError::NotDelegated {
                version: Version::V2,
                ..
            }
            | CgroupError::InternalProcesses { .. } => Some(
                "run foxbox inside a delegated cgroup, e.g. `systemd-run --user --scope -p Delegate=yes foxbox ...` \
                 (systemd delegates user@UID.service to the user), or give `--cgroup-parent` a delegated cgroup \
                 without processes of its own that contains foxbox's cgroup; or set `enforce = \"best-effort\"` \
                 in [limits] to run without the limit"
                    .to_string(),
            ),
            CgroupError::NotEnabled { controller, .. } => Some(format!(
                "enable it along the path, as the owner of the parent cgroup: `echo +{} > PARENT/cgroup.subtree_control` \
                 (systemd: Delegate=yes or Delegate={} on the unit)",
                controller.v2_name().unwrap_or("cpu"),
                controller.v2_name().unwrap_or("cpu")
            )),
            CgroupError::NoController { controller } => Some(format!(
                "the kernel must be built with the {controller} controller and it must be mounted (see /proc/cgroups)"
            )),
            CgroupError::Exists { path } => Some(format!(
                "another box with this id exists, or an earlier run left it behind: remove {} if it is yours",
                path.display()
            )),
            CgroupError::Busy { .. } => Some(
                "a process in the box did not die from SIGKILL (stuck in the kernel?); retry `foxbox rm` later"
                    .to_string(),
            ),
            CgroupError::Setting { source, .. } => source.help(),
            CgroupError::DeviceProgram { source, .. }
                if source.raw_os_error() == Some(libc::EPERM) =>
            {
                Some(
                    "device rules on cgroup v2 are an eBPF program, which only root (CAP_SYS_ADMIN) \
                     can load and attach"
                        .to_string(),
                )
            }
            CgroupError::BadParent { .. } => Some(
                "give a path relative to each hierarchy's root, like podman's --cgroup-parent: e.g. `foxbox-1001` or `/user.slice/foxbox`"
                    .to_string(),
            ),
            CgroupError::Write { source, .. } | CgroupError::Create { source, .. }
                if source.raw_os_error() == Some(libc::EACCES)
                    || source.raw_os_error() == Some(libc::EPERM) =>
            {
                Some("the cgroup is not delegated to this user: see `foxbox check --host`".to_string())
            }
            _ => None,
        }
    }
}
