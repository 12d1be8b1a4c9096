//! A bundle's `config.json` → foxbox's [`Plan`] and the few values a launch takes besides it.
//!
//! The container then runs through the same executor steps as a box. What the executor cannot
//! honour is an error naming the JSON path, or a warning in [`Translation::warnings`] (which
//! the runtime prints and logs); nothing is dropped silently. The README's "OCI runtime mode"
//! section lists each.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Spec};

use super::config::ConfigError;
use crate::plan::caps::{self, CapSet};
use crate::plan::{
    Enforce, ImageRef, Limits, Mount, MountKind, NetMode, Network, Origin, Plan, Process, Rootfs,
    Seccomp, Spanned, User,
};
use crate::sys::idmap::{IdMaps, IdRange};
use crate::sys::mount::MsFlags;
use crate::sys::process::ns;

/// What a container runs: the plan, and what the launch needs besides it.
#[derive(Debug)]
pub struct Translation {
    pub plan: Plan,
    /// The container's root directory (absolute).
    pub rootfs: PathBuf,
    pub hostname: String,
    pub id_maps: IdMaps,
    /// Namespaces to enter (by path) before the clone, with their `ns` flag.
    pub joins: Vec<(PathBuf, u64)>,
    /// The namespaces the container shares with the runtime (joined, or not asked for).
    pub joined: u64,
    /// A mount namespace to join (by path): the container's set-up process enters it.
    pub join_mount: Option<PathBuf>,
    /// The user namespace is joined by path: its maps are read once it is (the config's must
    /// match them).
    pub user_by_path: bool,
    /// Mount `propagation` options (by target) and `linux.rootfsPropagation`, applied once the
    /// container's root is pivoted into.
    pub mount_propagation: Vec<(PathBuf, MsFlags)>,
    pub root_propagation: Option<MsFlags>,
    /// `linux.sysctl` (checked: namespaced ones only) and `domainname` (as
    /// `kernel.domainname`), written in the container.
    pub sysctls: Vec<(String, String)>,
    /// `linux.devices`: nodes made in the container.
    pub devices: Vec<crate::fs::dev::Node>,
    /// Applied to the runtime before the clone: the container inherits them.
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub umask: Option<u32>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    pub tty: bool,
    /// An mqueue on /dev/mqueue (made with /dev).
    pub dev_mqueue: bool,
    /// `process.user.additionalGids` (`None`: the groups /etc/group gives the uid).
    pub additional_gids: Option<Vec<u32>>,
    pub annotations: BTreeMap<String, String>,
    /// `linux.cgroupsPath` and `linux.resources` (see [`super::cgroups`]).
    pub cgroups: super::cgroups::Wanted,
    pub warnings: Vec<String>,
    /// The config has a `process` (`start` needs one).
    pub has_process: bool,
}

/// What a config without `process` runs as until `start` refuses it: nothing, as uid 0 in /,
/// with no capabilities, rlimits or variables of its own.
fn no_process() -> oci_spec::runtime::Process {
    let mut p = oci_spec::runtime::Process::default();
    p.set_args(None);
    p.set_env(None);
    p.set_capabilities(None);
    p.set_rlimits(None);
    p.set_no_new_privileges(None);
    p
}

fn err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(path, message)
}

/// An absolute path without `..`, as the executor's mount targets must be.
fn clean_destination(path: &str, d: &Path) -> Result<PathBuf, ConfigError> {
    if !d.is_absolute() {
        return Err(err(
            path,
            format!("{} is not an absolute path", d.display()),
        ));
    }
    if d.components().any(|c| c == Component::ParentDir) {
        return Err(err(
            path,
            format!(
                "{} holds `..`, which could leave the container's root",
                d.display()
            ),
        ));
    }
    Ok(d.components().collect())
}

/// Translate `spec` (the bundle's config, `raw` its JSON) for a runtime whose effective uid
/// is `euid`.
pub fn translate(
    spec: &Spec,
    raw: &serde_json::Value,
    bundle: &Path,
    euid: u32,
) -> Result<Translation, ConfigError> {
    let mut warnings = Vec::new();
    check_version(spec.version())?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| err("root", "missing: the container needs a root filesystem"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        if root.path().components().any(|c| c == Component::ParentDir) {
            return Err(err(
                "root.path",
                format!(
                    "{} leaves the bundle: a relative root must stay inside it",
                    root.path().display()
                ),
            ));
        }
        bundle.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(err(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    // `process` is optional at create (the runtime-spec: `start` needs it, and refuses
    // without it): such a container waits at its gate as uid 0 with no capabilities.
    let unset = no_process();
    let has_process = spec.process().is_some();
    let process = spec.process().as_ref().unwrap_or(&unset);
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() && has_process {
        return Err(err("process.args", "empty: nothing to run"));
    }
    if process.command_line().is_some() {
        return Err(err("process.commandLine", "a Windows field; use args"));
    }
    let env = process_env(process)?;
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(err(
            "process.cwd",
            format!("{} is not absolute", cwd.display()),
        ));
    }
    let user = process.user();
    let additional_gids = user.additional_gids().clone();
    if user.username().is_some() {
        warnings.push("process.user.username: ignored on Linux (uid and gid are used)".into());
    }

    // Capabilities: the bounding set bounds every process; uid 0 gets it in all five sets,
    // another uid its effective set (within it).
    let cap_set = |path: &str, names: &Option<oci_spec::runtime::Capabilities>| {
        let mut set = CapSet::EMPTY;
        for c in names.iter().flatten() {
            let name = c.to_string();
            match caps::parse(&name) {
                Some(n) => set.insert(n),
                None => {
                    return Err(err(path, format!("unknown capability {name}")));
                }
            }
        }
        Ok(set)
    };
    let (mut bounding, mut effective) = match process.capabilities() {
        Some(c) => (
            cap_set("process.capabilities.bounding", c.bounding())?,
            cap_set("process.capabilities.effective", c.effective())?,
        ),
        None => (CapSet::EMPTY, CapSet::EMPTY),
    };
    if let Some(c) = process.capabilities() {
        let sets = [c.effective(), c.permitted(), c.inheritable(), c.ambient()];
        let differs = sets
            .iter()
            .any(|s| cap_set("", s).is_ok_and(|s| s != bounding && s != CapSet::EMPTY));
        if user.uid() == 0 && differs {
            warnings.push(
                "process.capabilities: uid 0 gets the bounding set in its effective, permitted, \
                 inheritable and ambient sets"
                    .into(),
            );
        }
    }

    for (path, set) in [
        (
            "process.apparmorProfile",
            process.apparmor_profile().is_some(),
        ),
        ("process.selinuxLabel", process.selinux_label().is_some()),
    ] {
        if set {
            warnings.push(format!(
                "{path}: not applied (this runtime has no LSM label support)"
            ));
        }
    }
    if process.io_priority().is_some() {
        return Err(err("process.ioPriority", "not supported by foxbox"));
    }
    if process.scheduler().is_some() {
        return Err(err("process.scheduler", "not supported by foxbox"));
    }
    if process.exec_cpu_affinity().is_some() {
        return Err(err("process.execCPUAffinity", "not supported by foxbox"));
    }

    let mut rlimits = Vec::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        rlimits.push((rlimit_resource(r.typ()), r.soft(), r.hard()));
        if r.soft() > r.hard() {
            return Err(err(
                format!("process.rlimits[{i}]"),
                "soft limit above the hard limit",
            ));
        }
    }

    let linux = spec.linux().as_ref();
    // Namespaces. One the config does not list is the runtime's (the runtime-spec: "the
    // container MUST inherit the runtime namespace of that type"); network and user are
    // decided below.
    let mut joins = Vec::new();
    let mut joined = ns::IPC | ns::UTS | ns::PID | ns::MOUNT | ns::CGROUP;
    let mut by_path = 0;
    let mut join_mount = None;
    let mut net = NetMode::Host;
    let mut userns = false;
    let mut seen = Vec::new();
    for (i, n) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("linux.namespaces[{i}]");
        if seen.contains(&n.typ()) {
            return Err(err(path, format!("namespace {:?} given twice", n.typ())));
        }
        seen.push(n.typ());
        let flag = match n.typ() {
            LinuxNamespaceType::Pid => ns::PID,
            LinuxNamespaceType::Ipc => ns::IPC,
            LinuxNamespaceType::Uts => ns::UTS,
            LinuxNamespaceType::Network => ns::NET,
            LinuxNamespaceType::Mount => ns::MOUNT,
            LinuxNamespaceType::Cgroup => ns::CGROUP,
            LinuxNamespaceType::User => ns::USER,
            LinuxNamespaceType::Time => {
                return Err(err(path, "time namespaces are not supported by foxbox"))
            }
        };
        match (n.path(), n.typ()) {
            (Some(p), _) => {
                if !p.is_absolute() {
                    return Err(err(format!("{path}.path"), "not an absolute path"));
                }
                if flag == ns::NET {
                    net = NetMode::Host;
                }
                match flag {
                    // The child joins it (see `exec::Launch::join_mount`): `create` itself stays
                    // in its own, where the state and the pid file are written.
                    ns::MOUNT => join_mount = Some(p.clone()),
                    // First, as runc's nsexec does: the other joins then need capabilities in
                    // the namespace that owns them, this one.
                    ns::USER => joins.insert(0, (p.clone(), flag)),
                    _ => joins.push((p.clone(), flag)),
                }
                by_path |= flag;
                joined |= flag;
            }
            (None, LinuxNamespaceType::Network) => net = NetMode::None,
            (None, LinuxNamespaceType::User) => userns = true,
            (None, _) => joined &= !flag,
        }
    }
    // The container's mounts are then made in the runtime's own mount namespace, under its
    // root (see `exec::Launch::host_mounts`), which only a runtime that owns that namespace
    // can do: not an unprivileged one.
    let shares_mount = joined & ns::MOUNT != 0 && by_path & ns::MOUNT == 0;
    let shares_pid = joined & ns::PID != 0 && by_path & ns::PID == 0;
    if shares_mount && euid != 0 {
        return Err(err(
            "linux.namespaces",
            "no mount namespace: an unprivileged runtime cannot mount the container's /proc, \
             /dev and binds in its own mount namespace; add {\"type\": \"mount\"}",
        ));
    }

    let id_maps = id_maps(linux, userns, by_path & ns::USER != 0, euid)?;
    // Without a user namespace, root's container stays in the runtime's (as runc's does): so
    // namespaces it joins by path, which the host's user namespace owns, can be mounted in
    // (a pid namespace's /proc, an ipc namespace's mqueue).
    // Except for capabilities the runtime itself lacks (this kind of host's root has no
    // CAP_SYS_RESOURCE): they exist only in a user namespace of the container's own, so one
    // asking for them gets that (the identity map) unless it joins the host's namespaces or
    // shares the runtime's mount or pid namespace (a user namespace of its own could mount
    // nothing there).
    let own = crate::security::capset::current()
        .map(|s| s.bounding)
        .unwrap_or(CapSet(u64::MAX));
    let lacking = CapSet(bounding.0 & !own.0);
    if !userns && by_path & ns::USER == 0 {
        if euid == 0 && lacking != CapSet::EMPTY && by_path == 0 && !shares_mount && !shares_pid {
            warnings.push(format!(
                "process.capabilities: the runtime itself lacks {}; the container gets a user \
                 namespace of its own (the identity map) to have them there",
                lacking.names().join(", ")
            ));
        } else {
            joined |= ns::USER;
        }
    }
    if joined & ns::USER != 0 && lacking != CapSet::EMPTY && by_path & ns::USER == 0 {
        warnings.push(format!(
            "process.capabilities: {} not granted: the runtime itself lacks them, and the \
             container shares its user namespace",
            lacking.names().join(", ")
        ));
        bounding = CapSet(bounding.0 & own.0);
        effective = CapSet(effective.0 & own.0);
    }

    if shares_mount && std::fs::canonicalize(&rootfs).is_ok_and(|r| r == Path::new("/")) {
        return Err(err(
            "root.path",
            "the runtime's own root, without a mount namespace: the container's mounts would \
             cover the host's /proc, /dev and /sys; add {\"type\": \"mount\"} to \
             linux.namespaces",
        ));
    }

    // In a user namespace other than the runtime's, nothing can be mounted in the runtime's
    // mount namespace, nor a /proc for its pid namespace (both belong to the runtime's user
    // namespace).
    if joined & ns::USER == 0 || by_path & ns::USER != 0 {
        if shares_mount {
            return Err(err(
                "linux.namespaces",
                "no mount namespace: a container in a user namespace cannot mount in the \
                 runtime's mount namespace; add {\"type\": \"mount\"}",
            ));
        }
        if shares_pid {
            return Err(err(
                "linux.namespaces",
                "no pid namespace: a container in a user namespace cannot mount a /proc for \
                 the runtime's pid namespace; add {\"type\": \"pid\"}",
            ));
        }
    }

    let hostname = match spec.hostname() {
        Some(h) if !seen.contains(&LinuxNamespaceType::Uts) => {
            return Err(err(
                "hostname",
                format!("{h:?} needs a uts namespace of the container's own"),
            ))
        }
        Some(h) => h.clone(),
        // Shared or joined: left as it is (the executor sets no empty name).
        None if joined & ns::UTS != 0 => String::new(),
        None => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
    };
    // Written with the sysctls, once the container's /proc is its root's.
    let mut sysctls = Vec::new();
    if let Some(d) = spec.domainname() {
        if !seen.contains(&LinuxNamespaceType::Uts) {
            return Err(err(
                "domainname",
                format!("{d:?} needs a uts namespace of the container's own"),
            ));
        }
        sysctls.push(("kernel.domainname".to_string(), d.clone()));
    }

    // Mounts: the kernel filesystems the executor makes itself are left to it.
    let mut mounts = Vec::new();
    let mut dev_mqueue = false;
    let mut mount_propagation = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let path = format!("mounts[{i}]");
        let dest = clean_destination(&format!("{path}.destination"), m.destination())?;
        let typ = m.typ().clone().unwrap_or_default();
        let options = m.options().clone().unwrap_or_default();
        let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        let d = dest.to_string_lossy();
        let own = matches!(
            (typ.as_str(), d.as_ref()),
            ("proc", "/proc")
                | ("sysfs", "/sys")
                | ("tmpfs", "/dev")
                | ("devpts", "/dev/pts")
                | ("tmpfs", "/dev/shm")
                | ("shm", "/dev/shm")
        );
        if own && !is_bind {
            continue;
        }
        if !is_bind && typ == "mqueue" && d == "/dev/mqueue" {
            dev_mqueue = true;
            continue;
        }
        if !is_bind && matches!(typ.as_str(), "mqueue" | "cgroup" | "cgroup2") {
            warnings.push(format!(
                "{path}: {typ} on {d} is not mounted (foxbox has no {typ} mount yet)"
            ));
            continue;
        }
        let mut readonly = false;
        let mut ignored = Vec::new();
        let mut size = None;
        let mut mode = None;
        let mut noexec = false;
        let mut propagation = None;
        for o in &options {
            match o.as_str() {
                "ro" => readonly = true,
                "rw" | "bind" | "rbind" | "defaults" => {}
                "noexec" => noexec = true,
                "nosuid" | "nodev" | "suid" | "dev" | "exec" | "relatime" | "strictatime"
                | "norelatime" | "noatime" => {
                    if is_bind {
                        ignored.push(o.as_str());
                    }
                }
                o if o.starts_with("size=") && !is_bind => {
                    size = Some(
                        crate::plan::units::parse_size(&o[5..])
                            .map_err(|e| err(format!("{path}.options"), format!("{o}: {e}")))?,
                    );
                }
                o if o.starts_with("mode=") && !is_bind => {
                    mode = Some(u32::from_str_radix(&o[5..], 8).map_err(|_| {
                        err(format!("{path}.options"), format!("{o}: not an octal mode"))
                    })?);
                }
                o if !is_bind
                    && (o.starts_with("nr_inodes=")
                        || o.starts_with("gid=")
                        || o.starts_with("uid=")
                        || o.starts_with("newinstance")
                        || o.starts_with("ptmxmode=")) =>
                {
                    ignored.push(o)
                }
                o if propagation_flags(o).is_some() => {
                    if let Some(f) = propagation_flags(o) {
                        propagation = Some(f);
                    }
                }
                other => ignored.push(other),
            }
        }
        if !ignored.is_empty() {
            warnings.push(format!(
                "{path}: options {} on {d} are not applied",
                ignored.join(",")
            ));
        }
        let kind = if is_bind {
            let source = m
                .source()
                .as_ref()
                .ok_or_else(|| err(format!("{path}.source"), "a bind mount needs a source"))?;
            let source = if source.is_absolute() {
                source.clone()
            } else {
                bundle.join(source)
            };
            MountKind::Bind { source }
        } else if typ == "tmpfs" {
            MountKind::Tmpfs { size, mode, noexec }
        } else {
            return Err(err(
                format!("{path}.type"),
                format!(
                    "mount type {typ:?} on {d} is not supported by foxbox (bind and tmpfs are)"
                ),
            ));
        };
        if let Some(f) = propagation {
            mount_propagation.push((dest.clone(), f));
        }
        mounts.push(Mount {
            kind,
            target: dest,
            readonly,
            chown: false,
            overlay: false,
            span: None,
        });
    }

    let mut seccomp = Seccomp::Unconfined;
    let mut cgroups = super::cgroups::Wanted::default();
    let mut masked_paths = None;
    let mut readonly_paths = None;
    let mut root_propagation = None;
    let mut devices = Vec::new();
    let oom_score_adj = process.oom_score_adj();
    if let Some(l) = linux {
        if let Some(s) = raw.pointer("/linux/seccomp") {
            let text = s.to_string();
            let profile = crate::security::seccomp::parse_profile(&text).map_err(|errs| {
                let first = errs.first();
                let ptr = first.and_then(|e| e.pointer.clone()).unwrap_or_default();
                let msg = errs
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                err(format!("linux.seccomp{}", ptr.replace('/', ".")), msg)
            })?;
            seccomp = Seccomp::Profile {
                path: bundle.join("config.json"),
                profile: Box::new(profile),
            };
        }
        masked_paths = l.masked_paths().clone();
        readonly_paths = l.readonly_paths().clone();
        for (i, p) in masked_paths.iter().flatten().enumerate() {
            clean_destination(&format!("linux.maskedPaths[{i}]"), Path::new(p))?;
        }
        for (i, p) in readonly_paths.iter().flatten().enumerate() {
            clean_destination(&format!("linux.readonlyPaths[{i}]"), Path::new(p))?;
        }
        for (key, value) in l.sysctl().iter().flatten() {
            check_sysctl(key, &seen)?;
            sysctls.push((key.clone(), value.clone()));
        }
        if l.intel_rdt().is_some() {
            return Err(err(
                "linux.intelRdt",
                "Intel RDT is not supported by foxbox",
            ));
        }
        if l.personality().is_some() {
            return Err(err("linux.personality", "not supported by foxbox"));
        }
        if l.time_offsets().is_some() {
            return Err(err("linux.timeOffsets", "not supported by foxbox"));
        }
        if l.mount_label().is_some() {
            warnings.push("linux.mountLabel: not applied (no SELinux support)".into());
        }
        if let Some(p) = l.rootfs_propagation().as_deref().filter(|p| !p.is_empty()) {
            root_propagation = Some(propagation_flags(p).ok_or_else(|| {
                err(
                    "linux.rootfsPropagation",
                    format!(
                        "{p:?} is not one of shared, slave, private, unbindable (or r-prefixed)"
                    ),
                )
            })?);
        }
        for (i, d) in l.devices().iter().flatten().enumerate() {
            devices.push(device_node(&format!("linux.devices[{i}]"), d)?);
        }
        // cgroups: their own module.
        cgroups = super::cgroups::translate(l, &mut warnings)?;
        if oom_score_adj.is_some_and(|v| !(-1000..=1000).contains(&v)) {
            return Err(err("process.oomScoreAdj", "outside -1000..=1000"));
        }
    }

    let uid = user.uid();
    let plan = Plan {
        origin: Origin::Spec {
            path: bundle.join("config.json"),
            dir: bundle.to_path_buf(),
            text: String::new(),
        },
        name: None,
        image: Spanned::bare(ImageRef::Tarball {
            path: rootfs.clone(),
        }),
        process: Process {
            args: Spanned::bare(args),
            argv: Default::default(),
            env,
            cwd: Spanned::bare(cwd.clone()),
            user: Spanned::bare(User::Id {
                uid,
                gid: Some(user.gid()),
            }),
            tty: Some(process.terminal().unwrap_or(false)),
            init: false,
            given: crate::plan::Given {
                cwd: true,
                user: true,
            },
        },
        hostname: Some(Spanned::bare(hostname.clone())),
        limits: Limits::new(Enforce::Strict),
        capabilities: Spanned::bare(bounding),
        added_capabilities: CapSet(effective.0 & bounding.0),
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        seccomp: Spanned::bare(seccomp),
        network: Network {
            mode: Spanned::bare(net),
            ports: Vec::new(),
            allow_host_loopback: false,
        },
        mounts,
        rootfs: Rootfs {
            readonly: Spanned::bare(root.readonly().unwrap_or(false)),
        },
        // The bundle's own uid/gid mappings say how ids map (see `id_maps`).
        userns: Spanned::bare(crate::plan::Userns::Default),
    };
    let annotations = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(Translation {
        plan,
        rootfs,
        hostname,
        id_maps,
        joins,
        joined,
        join_mount,
        mount_propagation,
        root_propagation,
        sysctls,
        devices,
        user_by_path: by_path & ns::USER != 0,
        rlimits,
        oom_score_adj,
        umask: user.umask(),
        masked_paths,
        readonly_paths,
        tty: process.terminal().unwrap_or(false),
        dev_mqueue,
        additional_gids,
        annotations,
        cgroups,
        warnings,
        has_process,
    })
}

/// A sysctl the container may set: one its own namespaces scope (runc's list), given that
/// namespace is in `namespaces` (new or joined by path, as runc's check).
fn check_sysctl(key: &str, namespaces: &[LinuxNamespaceType]) -> Result<(), ConfigError> {
    let path = format!("linux.sysctl.{key}");
    if key.is_empty() || key.contains('/') || key.split('.').any(|p| p.is_empty() || p == "..") {
        return Err(err(
            path,
            "not a sysctl name (dot-separated, like net.ipv4.ip_forward)",
        ));
    }
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (ns, name) = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        (LinuxNamespaceType::Ipc, "ipc")
    } else if key.starts_with("net.") {
        (LinuxNamespaceType::Network, "network")
    } else if key == "kernel.domainname" || key == "kernel.hostname" {
        (LinuxNamespaceType::Uts, "uts")
    } else {
        return Err(err(
            path,
            "not in a namespace of the container's own: it would change the host (only \
             kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*, kernel.domainname and \
             kernel.hostname are allowed)",
        ));
    };
    if !namespaces.contains(&ns) {
        return Err(err(
            path,
            format!(
                "would change the host's {name} namespace: add {{\"type\": \"{name}\"}} to \
                 linux.namespaces"
            ),
        ));
    }
    Ok(())
}

/// One of `linux.devices` (at `path`) as the node the executor makes.
fn device_node(
    path: &str,
    d: &oci_spec::runtime::LinuxDevice,
) -> Result<crate::fs::dev::Node, ConfigError> {
    use nix::sys::stat::SFlag;
    use oci_spec::runtime::LinuxDeviceType as T;
    let target = clean_destination(&format!("{path}.path"), d.path())?;
    if target.parent().is_none() {
        return Err(err(format!("{path}.path"), "not a file path"));
    }
    let kind = match d.typ() {
        T::C | T::U => SFlag::S_IFCHR,
        T::B => SFlag::S_IFBLK,
        T::P => SFlag::S_IFIFO,
        T::A => {
            return Err(err(
                format!("{path}.type"),
                "\"a\" is for device cgroup rules; a node is c, b, u or p",
            ))
        }
    };
    let number = |what: &str, n: i64| {
        u64::try_from(n).map_err(|_| err(format!("{path}.{what}"), format!("{n} is negative")))
    };
    Ok(crate::fs::dev::Node {
        path: target,
        kind,
        major: number("major", d.major())?,
        minor: number("minor", d.minor())?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// A propagation option's mount flags (`rshared`: recursively), as runc maps them.
fn propagation_flags(o: &str) -> Option<MsFlags> {
    let (rec, kind) = match o.strip_prefix('r') {
        Some(k) => (MsFlags::MS_REC, k),
        None => (MsFlags::empty(), o),
    };
    let f = match kind {
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "private" => MsFlags::MS_PRIVATE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(f | rec)
}

/// `ociVersion`: SemVer 2.0.0, major 1 (what this runtime implements).
fn check_version(v: &str) -> Result<(), ConfigError> {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !numeric {
        return Err(err(
            "ociVersion",
            format!("{v:?} is not a SemVer version (like 1.2.0)"),
        ));
    }
    if parts[0] != "1" {
        return Err(err(
            "ociVersion",
            format!("{v}: foxbox implements runtime-spec 1.x"),
        ));
    }
    Ok(())
}

/// The user namespace's maps: the config's, or (as root, without a user namespace) the
/// identity, which is how the runtime's own namespace maps the ids the container uses. For a
/// namespace joined by path, the config's as given (maybe none): see [`joined_user_maps`].
fn id_maps(
    linux: Option<&oci_spec::runtime::Linux>,
    userns: bool,
    user_by_path: bool,
    euid: u32,
) -> Result<IdMaps, ConfigError> {
    let ranges = |path: &str, m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| {
                if r.size() == 0 {
                    return Err(err(format!("{path}[{i}].size"), "0: an empty range"));
                }
                Ok(IdRange {
                    inside: r.container_id(),
                    outside: r.host_id(),
                    count: r.size(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let uids = ranges(
        "linux.uidMappings",
        &linux.and_then(|l| l.uid_mappings().clone()),
    )?;
    let gids = ranges(
        "linux.gidMappings",
        &linux.and_then(|l| l.gid_mappings().clone()),
    )?;
    if user_by_path {
        // The joined namespace's maps are read once it is joined; these (if any) must match.
        return Ok(IdMaps {
            uids,
            gids,
            via_helpers: false,
        });
    }
    if !userns {
        if !uids.is_empty() || !gids.is_empty() {
            return Err(err(
                "linux.uidMappings",
                "mappings without a user namespace in linux.namespaces",
            ));
        }
        if euid != 0 {
            return Err(err(
                "linux.namespaces",
                "running as an unprivileged user needs a user namespace with mappings \
                 (see `foxbox oci spec --rootless`)",
            ));
        }
        return Ok(IdMaps::for_caller());
    }
    if uids.is_empty() || gids.is_empty() {
        return Err(err(
            "linux.uidMappings",
            "a user namespace needs uidMappings and gidMappings",
        ));
    }
    // Only one's own id needs no helper; a wider map goes through newuidmap/newgidmap.
    let own = |r: &[IdRange], id: u32| r.len() == 1 && r[0].count == 1 && r[0].outside == id;
    let via_helpers =
        euid != 0 && !(own(&uids, euid) && own(&gids, nix::unistd::getegid().as_raw()));
    Ok(IdMaps {
        uids,
        gids,
        via_helpers,
    })
}

/// The maps of the user namespace the runtime has just joined (by path), which the config's,
/// when it gives any, must equal.
pub fn joined_user_maps(given: &IdMaps) -> Result<IdMaps, ConfigError> {
    let have = IdMaps::of_process(std::process::id() as i32).map_err(|e| {
        err(
            "linux.namespaces",
            format!("reading the joined user namespace's maps: {e}"),
        )
    })?;
    for (path, given, have) in [
        ("linux.uidMappings", &given.uids, &have.uids),
        ("linux.gidMappings", &given.gids, &have.gids),
    ] {
        if !given.is_empty() && given != have {
            return Err(err(
                path,
                format!(
                    "{} differ from those of the user namespace joined by path ({})",
                    crate::sys::idmap::describe(given),
                    crate::sys::idmap::describe(have)
                ),
            ));
        }
    }
    Ok(have)
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// One process of `exec --process`: what [`translate`] takes of `process`.
pub struct OneProcess {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub user: User,
    pub tty: bool,
    /// (bounding, effective), when given.
    pub capabilities: Option<(CapSet, CapSet)>,
    pub no_new_privs: bool,
}

/// A `process` object alone (`exec --process FILE`).
pub fn process_only(p: &oci_spec::runtime::Process) -> Result<OneProcess, ConfigError> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(err("process.args", "empty: nothing to run"));
    }
    let env = process_env(p)?;
    if !p.cwd().is_absolute() {
        return Err(err("process.cwd", "not absolute"));
    }
    let capabilities = match p.capabilities() {
        Some(c) => {
            let set = |path: &str, names: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = CapSet::EMPTY;
                for c in names.iter().flatten() {
                    let name = c.to_string();
                    let n = caps::parse(&name)
                        .ok_or_else(|| err(path, format!("unknown capability {name}")))?;
                    s.insert(n);
                }
                Ok::<CapSet, ConfigError>(s)
            };
            let b = set("process.capabilities.bounding", c.bounding())?;
            let e = set("process.capabilities.effective", c.effective())?;
            Some((b, CapSet(e.0 & b.0)))
        }
        None => None,
    };
    Ok(OneProcess {
        args,
        env,
        cwd: p.cwd().clone(),
        user: User::Id {
            uid: p.user().uid(),
            gid: Some(p.user().gid()),
        },
        tty: p.terminal().unwrap_or(false),
        capabilities,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
    })
}

/// `process.env` as (key, value) pairs; an entry that is not `KEY=VALUE` is an error at its index.
fn process_env(p: &oci_spec::runtime::Process) -> Result<Vec<(String, String)>, ConfigError> {
    let mut env = Vec::new();
    for (i, kv) in p.env().iter().flatten().enumerate() {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
            _ => {
                return Err(err(
                    format!("process.env[{i}]"),
                    format!("{kv:?} is not KEY=VALUE"),
                ))
            }
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_semver_1() {
        for ok in ["1.0.0", "1.2.0", "1.0.2-dev", "1.3.0+x"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["invalid", "", "1.0", "2.0.0", "1.x.0"] {
            assert_eq!(check_version(bad).unwrap_err().path, "ociVersion", "{bad}");
        }
    }

    #[test]
    fn only_namespaced_sysctls_with_their_namespace() {
        use LinuxNamespaceType as T;
        let all = [T::Ipc, T::Network, T::Uts];
        for ok in [
            "kernel.shmmax",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "net.ipv4.ip_forward",
            "kernel.domainname",
        ] {
            assert!(check_sysctl(ok, &all).is_ok(), "{ok}");
        }
        for (bad, have) in [
            ("kernel.pid_max", &all[..]),
            ("vm.swappiness", &all[..]),
            ("net.ipv4.ip_forward", &[T::Ipc, T::Uts][..]),
            ("kernel.shmmax", &[T::Network][..]),
            ("kernel.hostname", &[T::Ipc][..]),
            ("net..x", &all[..]),
            ("net/../x", &all[..]),
        ] {
            let e = check_sysctl(bad, have).unwrap_err();
            assert_eq!(e.path, format!("linux.sysctl.{bad}"));
        }
    }

    #[test]
    fn propagation_options_map_as_runc_s() {
        assert_eq!(propagation_flags("shared"), Some(MsFlags::MS_SHARED));
        assert_eq!(
            propagation_flags("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(
            propagation_flags("runbindable"),
            Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC)
        );
        for not in ["ro", "rw", "rbind", "bind", "sideways", ""] {
            assert_eq!(propagation_flags(not), None, "{not}");
        }
    }

    #[test]
    fn destinations_are_absolute_without_dotdot() {
        assert_eq!(
            clean_destination("m", Path::new("/a/./b/")).unwrap(),
            PathBuf::from("/a/b")
        );
        assert!(clean_destination("m", Path::new("a/b")).is_err());
        let e = clean_destination("mounts[3].destination", Path::new("/a/../../etc")).unwrap_err();
        assert_eq!(e.path, "mounts[3].destination");
    }
}
