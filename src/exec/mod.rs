//! The staged executor: a flat, ordered list of named steps, parent side and child side.
//!
//! Callers build a [`Launch`] (a plan, a rootfs, a name) and call [`start`] (a supervisor that
//! owns the box) or [`run_foreground`] (the attached `foxbox run`/`up`). [`join::run`] starts one
//! more process in a running box (`foxbox exec`) through the same process steps.

use std::collections::HashMap;
use std::path::PathBuf;

pub mod channel;
mod child;
pub mod error;
mod init;
pub mod join;
pub mod parent;
pub mod security_steps;
pub mod steps;
pub mod user;

pub use crate::fs::rootfs::{BoxRootfs, Layers, UpperDirs};
pub use error::{ExecError, StepError};
pub use parent::{run_foreground, start, Deadline, Finished, Started, Timing, TIMEOUT_GRACE};

use crate::plan::Plan;
use crate::security::seccomp::Program;
use crate::sys::idmap::IdMaps;
use crate::sys::mount::MsFlags;

/// Everything the executor needs to start one box. It does not know where the rootfs came
/// from (the image store, or anything else).
pub struct Launch<'a> {
    pub plan: &'a Plan,
    pub rootfs: BoxRootfs,
    /// The box's hostname (the plan's, else the box's name).
    pub hostname: String,
    /// Host directories of the named volumes the plan mounts.
    pub volumes: HashMap<String, PathBuf>,
    /// Give the box a pty (its own devpts) and relay it.
    pub tty: bool,
    pub id_maps: IdMaps,
    /// The plan's seccomp filter when the caller compiled it already (else [`start`] does).
    pub seccomp: Option<&'a Program>,
    /// Make the box's user namespace inside this holder's, maps and all (see
    /// [`crate::sys::holder`]); else the maps are written after the clone.
    pub holder: Option<crate::sys::holder::Holder>,
    /// The OCI runtime's create/start split: the set-up process reports ready, lets the
    /// starting process go, and reads one byte from this descriptor (inherited at the clone)
    /// before its exec. Such a box outlives the process that started it (no parent-death
    /// signal).
    pub start_gate: Option<std::os::fd::RawFd>,
    /// Descriptors 3..3+N stay open into the box's command (OCI `--preserve-fds`).
    pub preserve_fds: u32,
    /// Namespaces (`sys::process::ns` flags) the caller already joined: the clone makes no
    /// new one of these, the box shares the caller's.
    pub joined: u64,
    /// Paths to mask and to make read-only instead of podman's lists (an OCI config's).
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// The mounts are made in the order an OCI config lists them (/proc, then /dev): /dev is
    /// not made before the clone, whose mount would come first in the box's mountinfo.
    pub mounts_in_order: bool,
    /// Mount an mqueue on /dev/mqueue with /dev (an OCI config asks for one).
    pub dev_mqueue: bool,
    /// The command's supplementary groups instead of those /etc/group gives its user (an OCI
    /// config's `additionalGids`).
    pub additional_gids: Option<Vec<u32>>,
    /// A mount namespace (an open `/proc/PID/ns/mnt`, inherited at the clone) that the set-up
    /// process enters instead of a new one: the box's mounts are made there (an OCI config's
    /// `mount` namespace with a `path`). Needs `ns::MOUNT` in `joined`.
    pub join_mount: Option<std::os::fd::RawFd>,
    /// What foxbox adds to a box's rootfs besides the plan's mounts, as podman does: the
    /// generated /etc/hostname, hosts and resolv.conf, and a read-only root's writable /tmp,
    /// /var/tmp and /run. An OCI runtime, like runc, adds nothing: its caller binds what it
    /// wants (and a rootfs owned by an id the box does not map could take nothing).
    pub extras: bool,
    /// Propagation given to the plan's mounts at these targets and then to the new root, once
    /// pivoted into (an OCI config's mount `propagation` options and `rootfsPropagation`).
    /// Mounts stay private towards the host either way: the propagation step makes `/`
    /// rprivate before anything is mounted.
    pub mount_propagation: Vec<(PathBuf, MsFlags)>,
    pub root_propagation: Option<MsFlags>,
    /// Sysctls (`net.ipv4.ip_forward`, `kernel.domainname`) written under the box's own
    /// /proc/sys once it is the root's, before the read-only paths (an OCI config's).
    pub sysctls: Vec<(String, String)>,
    /// Device nodes made in the box after its /dev (an OCI config's `linux.devices`).
    pub devices: Vec<crate::fs::dev::Node>,
    /// Pause before pivot_root (the `before-pivot` step): the set-up process tells the parent
    /// its mounts are made and waits while the parent runs [`Helpers::before_pivot`], then
    /// runs [`InBox::before_pivot`] itself. Off (a box's launch): no message, no wait.
    pub before_pivot: bool,
    /// What the caller runs inside the set-up process (see [`InBox`]).
    pub in_box: Option<&'a dyn InBox>,
    /// With a start gate: where the set-up process writes why a step failed between the gate
    /// and its exec, when nobody follows it any more (see [`channel::report_after_gate`]).
    /// It must be close-on-exec: end of file without a report then means the command was
    /// exec'd (or the process was killed).
    pub start_report: Option<std::os::fd::RawFd>,
}

impl Launch<'_> {
    /// The box shares the caller's mount namespace (`ns::MOUNT` joined, not by path: an OCI
    /// config that lists no mount namespace). Its mounts are made in that namespace, below
    /// its root directory ([`crate::fs::rootfs::bind_in_place`]), which it then chroots into;
    /// they stay there when it ends, for the caller to unmount.
    pub fn host_mounts(&self) -> bool {
        self.joined & crate::sys::process::ns::MOUNT != 0 && self.join_mount.is_none()
    }
}

impl<'a> Launch<'a> {
    /// A launch with the caller's id maps, the plan's hostname or `name`, and no tty.
    pub fn new(plan: &'a Plan, rootfs: BoxRootfs, name: &str) -> Launch<'a> {
        let hostname = plan
            .hostname
            .as_ref()
            .map(|h| h.value.clone())
            .unwrap_or_else(|| name.to_string());
        Launch {
            plan,
            rootfs,
            hostname,
            volumes: HashMap::new(),
            tty: false,
            id_maps: IdMaps::for_caller(),
            seccomp: None,
            holder: None,
            start_gate: None,
            preserve_fds: 0,
            joined: 0,
            masked_paths: None,
            readonly_paths: None,
            mounts_in_order: false,
            dev_mqueue: false,
            additional_gids: None,
            join_mount: None,
            extras: true,
            mount_propagation: Vec::new(),
            root_propagation: None,
            sysctls: Vec::new(),
            devices: Vec::new(),
            before_pivot: false,
            in_box: None,
            start_report: None,
        }
    }
}

/// Parent-side steps that other parts of foxbox provide (cgroups, user-mode networking). Each
/// runs after the clone and the id maps, before the child is released, with the host pid of
/// the box's set-up process.
pub trait Helpers {
    /// The `cgroup` step: put `pid` into the box's cgroup with the plan's limits.
    fn cgroup(&mut self, plan: &Plan, pid: i32) -> Result<(), StepError> {
        let _ = pid;
        Err(refuse(plan, "cgroup limits"))
    }

    /// Whether [`Helpers::cgroup`] has a cgroup to move the box into even when the plan has no
    /// limits (an OCI container's cgroupsPath): the executor then runs the cgroup step.
    fn places_cgroup(&self) -> bool {
        false
    }

    /// The `network` step: start pasta/slirp4netns for `pid`'s network namespace.
    fn network(&mut self, plan: &Plan, pid: i32) -> Result<(), StepError> {
        let _ = pid;
        Err(refuse(plan, "user-mode networking"))
    }

    /// The set-up process (host pid `pid`) has made its mounts and waits before pivot_root
    /// ([`Launch::before_pivot`]): in the runtime's namespaces, with the box's namespaces
    /// made. An error kills the box.
    fn before_pivot(&mut self, pid: i32) -> Result<(), StepError> {
        let _ = pid;
        Ok(())
    }

    /// The set-up process (host pid `pid`) has been released and works on its own: the time
    /// to do what must be done before the fox runs but need not hold the set-up up (writing
    /// the box's record). An error kills the box.
    fn released(&mut self, pid: i32) -> Result<(), StepError> {
        let _ = pid;
        Ok(())
    }

    /// The fox has been exec'd as host pid `pid` (the box's pid 1).
    fn started(&mut self, pid: i32) {
        let _ = pid;
    }
}

/// Work a caller does inside a box's set-up process (an OCI runtime's hooks), at two points.
/// The process is a fork of the caller's, so the implementation's data is there as it was.
pub trait InBox {
    /// Before pivot_root ([`Launch::before_pivot`]), once the parent's
    /// [`Helpers::before_pivot`] is done: in the box's namespaces, where paths still resolve
    /// in the runtime's file system.
    fn before_pivot(&self) -> Result<(), StepError> {
        Ok(())
    }

    /// Once the start gate has opened, before the exec: inside the box's root, as its
    /// command's user with its capabilities and seccomp filter. An error ends the box before
    /// its command runs and is reported on [`Launch::start_report`].
    fn after_gate(&self) -> Result<(), StepError> {
        Ok(())
    }
}

fn refuse(_plan: &Plan, what: &str) -> StepError {
    StepError::msg(format!("{what} are not available in this build yet"))
        .with_hint("remove the setting, or wait for its support to land")
}

/// No helpers: a plan that needs one fails at that step with a clear message.
pub struct NoHelpers;

impl Helpers for NoHelpers {}
