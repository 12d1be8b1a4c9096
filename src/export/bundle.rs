//! A plan as an OCI runtime bundle (`foxbox export --oci-bundle DIR`): `DIR/rootfs`, a copy of
//! the image's root filesystem, `DIR/config.json` (runtime-spec, through the `oci-spec` types)
//! and `DIR/etc/` with the box's hostname, hosts and resolv.conf, bound over the image's as
//! `foxbox up` lays them over it.
//!
//! [`config_from_plan`] is pure: everything of the host it needs (id maps, the user's ids read
//! from the image, volume directories, rlimits) comes in a [`BundleContext`]. [`write_bundle`]
//! gathers those and writes the bundle beside `DIR` before renaming it into place.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch as OciArch, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, LinuxSeccomp, LinuxSeccompAction,
    LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscallBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::ExportError;
use crate::diag::{codes, Diagnostic};
use crate::plan::caps::CapSet;
use crate::plan::seccomp_profile::{Action, CmpOp, FilterFlag, Profile};
use crate::plan::{BoxPlan, MountKind, NetMode, Plan, Seccomp};
use crate::security::seccomp::{self, Target};
use crate::sys::idmap::{IdMaps, IdRange};

/// The runtime-spec version the config claims: the oldest that has every field it uses
/// (`defaultErrnoRet` came in 1.1.0), so older runtimes take it too (crun 1.8 refuses 1.2 and
/// newer as "unknown version").
pub const OCI_VERSION: &str = "1.1.0";

/// What [`config_from_plan`] needs of the host and the image.
#[derive(Debug, Clone)]
pub struct BundleContext {
    /// The box's user namespace maps (the caller's, as `foxbox up` makes them).
    pub maps: IdMaps,
    /// The process's ids, resolved in the image's /etc/passwd and /etc/group.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
    pub hostname: String,
    /// Bundle-relative files bound over /etc/hostname, /etc/hosts, /etc/resolv.conf (`None`:
    /// leave the image's).
    pub etc_files: Option<[(&'static str, PathBuf); 3]>,
    /// The host directory of each named-volume mount, by index in `plan.mounts`.
    pub volume_dirs: Vec<Option<PathBuf>>,
    /// Resource limits the process starts with (the caller's: a box inherits them).
    pub rlimits: Vec<PosixRlimit>,
}

fn oci_err(e: impl std::fmt::Display) -> ExportError {
    ExportError::Other(format!("cannot build config.json: {e}"))
}

fn caps_of(set: CapSet) -> HashSet<Capability> {
    set.names()
        .into_iter()
        .filter_map(|n| serde_json::from_value(serde_json::Value::String(n)).ok())
        .collect()
}

fn mappings(ranges: &[IdRange]) -> Result<Vec<LinuxIdMapping>, ExportError> {
    ranges
        .iter()
        .map(|r| {
            LinuxIdMappingBuilder::default()
                .container_id(r.inside)
                .host_id(r.outside)
                .size(r.count)
                .build()
                .map_err(oci_err)
        })
        .collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, ExportError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(oci_err)
}

fn maps_id(ranges: &[IdRange], id: u32) -> bool {
    ranges
        .iter()
        .any(|r| id >= r.inside && u64::from(id) < u64::from(r.inside) + u64::from(r.count))
}

fn action(a: Action) -> (LinuxSeccompAction, Option<u32>) {
    match a {
        Action::KillProcess => (LinuxSeccompAction::ScmpActKillProcess, None),
        Action::KillThread => (LinuxSeccompAction::ScmpActKillThread, None),
        Action::Trap { .. } => (LinuxSeccompAction::ScmpActTrap, None),
        Action::Errno { errno } => (LinuxSeccompAction::ScmpActErrno, Some(u32::from(errno))),
        Action::Trace { data } => (LinuxSeccompAction::ScmpActTrace, Some(u32::from(data))),
        Action::Log => (LinuxSeccompAction::ScmpActLog, None),
        Action::Allow => (LinuxSeccompAction::ScmpActAllow, None),
    }
}

fn operator(op: CmpOp) -> LinuxSeccompOperator {
    match op {
        CmpOp::Ne => LinuxSeccompOperator::ScmpCmpNe,
        CmpOp::Lt => LinuxSeccompOperator::ScmpCmpLt,
        CmpOp::Le => LinuxSeccompOperator::ScmpCmpLe,
        CmpOp::Eq => LinuxSeccompOperator::ScmpCmpEq,
        CmpOp::Ge => LinuxSeccompOperator::ScmpCmpGe,
        CmpOp::Gt => LinuxSeccompOperator::ScmpCmpGt,
        CmpOp::MaskedEq => LinuxSeccompOperator::ScmpCmpMaskedEq,
    }
}

/// The profile as runtime-spec JSON, resolved the way foxbox resolves it before compiling:
/// for the native architecture, the box's capability set and the running kernel (OCI profiles
/// have no `includes`/`excludes`). One entry per distinct (action, arguments), names in
/// syscall-number order, each call's rules most restrictive first.
pub fn seccomp_for(profile: &Profile, caps: CapSet) -> Result<LinuxSeccomp, ExportError> {
    let target = Target::native(caps).ok_or_else(|| {
        ExportError::Other(format!(
            "seccomp: foxbox has no system call table for {}",
            std::env::consts::ARCH
        ))
    })?;
    let rules = seccomp::resolve(profile, &target);
    let mut groups: Vec<(
        Action,
        Vec<crate::plan::seccomp_profile::ArgCond>,
        Vec<String>,
    )> = Vec::new();
    for (nr, rs) in rules.iter() {
        let Some(name) = target.arch.syscall_name(nr) else {
            continue;
        };
        for r in rs {
            match groups
                .iter_mut()
                .find(|(a, c, _)| *a == r.action && *c == r.conds)
            {
                Some(g) => g.2.push(name.to_string()),
                None => groups.push((r.action, r.conds.clone(), vec![name.to_string()])),
            }
        }
    }
    let mut syscalls = Vec::with_capacity(groups.len());
    for (a, conds, names) in groups {
        let (act, errno) = action(a);
        let mut b = LinuxSyscallBuilder::default().names(names).action(act);
        if let Some(e) = errno {
            b = b.errno_ret(e);
        }
        if !conds.is_empty() {
            let args = conds
                .iter()
                .map(|c| {
                    let mut a = LinuxSeccompArgBuilder::default()
                        .index(usize::from(c.index))
                        .value(c.value)
                        .op(operator(c.op));
                    if c.op == CmpOp::MaskedEq {
                        a = a.value_two(c.value_two);
                    }
                    a.build().map_err(oci_err)
                })
                .collect::<Result<Vec<_>, _>>()?;
            b = b.args(args);
        }
        syscalls.push(b.build().map_err(oci_err)?);
    }
    let (default, default_errno) = action(profile.default_action);
    let arch: OciArch =
        serde_json::from_value(serde_json::Value::String(target.arch.scmp_name().into()))
            .map_err(oci_err)?;
    let flags: Vec<LinuxSeccompFilterFlag> = profile
        .flags
        .iter()
        .map(|f| match f {
            FilterFlag::Tsync => LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
            FilterFlag::Log => LinuxSeccompFilterFlag::SeccompFilterFlagLog,
            FilterFlag::SpecAllow => LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        })
        .collect();
    let mut b = LinuxSeccompBuilder::default()
        .default_action(default)
        .architectures(vec![arch])
        .syscalls(syscalls);
    if let Some(e) = default_errno {
        b = b.default_errno_ret(e);
    }
    if !flags.is_empty() {
        b = b.flags(flags);
    }
    b.build().map_err(oci_err)
}

/// The runtime-spec config of a box of `plan`, and a warning for each thing of the plan a
/// bundle cannot carry (at its spec line).
pub fn config_from_plan(
    plan: &BoxPlan,
    cx: &BundleContext,
) -> Result<(Spec, Vec<Diagnostic>), ExportError> {
    let mut warnings = Vec::new();
    let mut warn = |span, msg: &str| {
        warnings.push(Diagnostic::warning(codes::export::NO_EQUIVALENT, msg).with_span(span))
    };
    for (span, msg) in super::foxbox_only(plan, "a bundle") {
        warn(span, &msg);
    }
    let p = &plan.process;
    let host_net = plan.network.mode.value == NetMode::Host;
    match plan.network.mode.value {
        NetMode::Pasta | NetMode::Slirp4netns => warn(
            plan.network.mode.span,
            "a bundle's network namespace has loopback only: user-mode networking is started \
             by foxbox, not by an OCI runtime",
        ),
        NetMode::None | NetMode::Host => {}
    }
    for f in &plan.network.ports {
        warn(
            f.span,
            "a bundle has no port forwards (the engine that runs it publishes ports)",
        );
    }
    if p.init {
        warn(
            None,
            "a bundle has no init process: `init = true` is not exported",
        );
    }
    let l = &plan.limits;
    if let Some(t) = l.timeout() {
        warn(
            t.span,
            "a bundle has no time limit: the engine that runs it stops it",
        );
    }
    if let Some(t) = l.stop_timeout() {
        warn(
            t.span,
            "a bundle has no stop timeout: the engine that runs it stops it",
        );
    }

    // Environment as the executor completes it at start.
    let mut env: Vec<(String, String)> = p.env.clone();
    for (k, v) in [
        ("HOSTNAME", cx.hostname.clone()),
        ("HOME", cx.home.clone()),
        ("TERM", "xterm".to_string()),
    ] {
        if k == "TERM" && p.tty != Some(true) {
            continue;
        }
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.to_string(), v));
        }
    }
    // The image's entrypoint and command joined with the plan's, as a box runs them.
    let args = p.args.value.clone();
    if args.is_empty() {
        return Err(ExportError::Other(
            "no command: the spec names none, the image has no default and no /bin/sh".into(),
        ));
    }
    let all = plan.capabilities.value;
    // uid 0 gets the box's set in all five; any other uid the added ones (bounding: all).
    let others = if cx.uid == 0 {
        all
    } else {
        plan.added_capabilities
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps_of(all))
        .effective(caps_of(others))
        .permitted(caps_of(others))
        .inheritable(caps_of(others))
        .ambient(caps_of(others))
        .build()
        .map_err(oci_err)?;
    let mut user = UserBuilder::default().uid(cx.uid).gid(cx.gid);
    // runc refuses any additional group in a rootless container ("cannot set any additional
    // groups in a rootless container"), even where newgidmap made setgroups possible.
    let rootless = !cx.maps.uids.iter().any(|r| r.outside == 0);
    if !cx.groups.is_empty() && rootless {
        warn(
            p.user.span,
            "a rootless bundle keeps no supplementary groups (runc refuses them): the user's \
             groups from the image's /etc/group are left out",
        );
    } else if !cx.groups.is_empty() {
        user = user.additional_gids(cx.groups.clone());
    }
    let mut process = ProcessBuilder::default()
        .terminal(p.tty == Some(true))
        .user(user.build().map_err(oci_err)?)
        .args(args)
        .env(
            env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .cwd(p.cwd.value.clone())
        .capabilities(capabilities)
        .no_new_privileges(plan.no_new_privs);
    if !cx.rlimits.is_empty() {
        process = process.rlimits(cx.rlimits.clone());
    }

    // The kernel file systems as the executor mounts them.
    let mut pts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    if maps_id(&cx.maps.gids, 5) {
        pts.push("gid=5");
    }
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount("/dev/pts", "devpts", "devpts", &pts)?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        if host_net {
            // A sysfs shows its mounter's network namespace: the host's, which a user
            // namespace may not mount afresh. Bound read-only, as the executor does.
            mount(
                "/sys",
                "bind",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            )?
        } else {
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            )?
        },
    ];
    if let Some(files) = &cx.etc_files {
        for (name, src) in files {
            mounts.push(mount(
                &format!("/etc/{name}"),
                "bind",
                &src.to_string_lossy(),
                &["bind", "ro", "nosuid", "nodev", "noexec"],
            )?);
        }
    }
    if plan.rootfs.readonly.value {
        for d in ["/tmp", "/var/tmp", "/run"] {
            mounts.push(mount(
                d,
                "tmpfs",
                "tmpfs",
                &["nosuid", "nodev", "mode=1777"],
            )?);
        }
    }
    for (i, m) in plan.mounts.iter().enumerate() {
        let target = m.target.to_string_lossy();
        // An overlay's writes stayed in the box: as a plain bind they would reach the host.
        let ro = if m.readonly || m.overlay { "ro" } else { "rw" };
        match &m.kind {
            MountKind::Bind { source } => mounts.push(mount(
                &target,
                "bind",
                &source.to_string_lossy(),
                &["rbind", "rprivate", ro],
            )?),
            MountKind::Volume { name } => {
                let Some(dir) = cx.volume_dirs.get(i).and_then(Option::as_ref) else {
                    return Err(ExportError::Other(format!(
                        "no directory for the volume {name:?}"
                    )));
                };
                mounts.push(mount(
                    &target,
                    "bind",
                    &dir.to_string_lossy(),
                    &["rbind", "rprivate", ro],
                )?)
            }
            MountKind::Tmpfs { size, mode, noexec } => {
                let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), ro.into()];
                if *noexec {
                    o.push("noexec".into());
                }
                if let Some(s) = size {
                    o.push(format!("size={s}"));
                }
                if let Some(md) = mode {
                    o.push(format!("mode={md:o}"));
                }
                let o: Vec<&str> = o.iter().map(String::as_str).collect();
                mounts.push(mount(&target, "tmpfs", "tmpfs", &o)?)
            }
        }
    }

    let mut namespaces = Vec::new();
    for t in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Network,
    ] {
        if t == LinuxNamespaceType::Network && host_net {
            continue;
        }
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(t)
                .build()
                .map_err(oci_err)?,
        );
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .uid_mappings(mappings(&cx.maps.uids)?)
        .gid_mappings(mappings(&cx.maps.gids)?)
        .masked_paths(
            crate::fs::masks::MASKED
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            crate::fs::masks::READONLY
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        );
    match &plan.seccomp.value {
        Seccomp::Unconfined => {}
        Seccomp::Default => linux = linux.seccomp(seccomp_for(seccomp::default_profile(), all)?),
        Seccomp::Profile { profile, .. } => linux = linux.seccomp(seccomp_for(profile, all)?),
    }
    if l.needs_cgroup() {
        let mut r = LinuxResourcesBuilder::default();
        if l.memory().is_some() || l.memory_swap().is_some() {
            let mut m = LinuxMemoryBuilder::default();
            if let Some(v) = l.memory() {
                m = m.limit(i64::try_from(v.value.bytes()).unwrap_or(i64::MAX));
            }
            if let Some(v) = l.memory_swap() {
                m = m.swap(i64::try_from(v.value.bytes()).unwrap_or(i64::MAX));
            }
            r = r.memory(m.build().map_err(oci_err)?);
        }
        if let Some(c) = l.cpus() {
            let period: u64 = 100_000;
            let quota = (c.value.cores() * period as f64).ceil() as i64;
            r = r.cpu(
                LinuxCpuBuilder::default()
                    .period(period)
                    .quota(quota.max(1000))
                    .build()
                    .map_err(oci_err)?,
            );
        }
        if let Some(pl) = l.pids() {
            r = r.pids(
                LinuxPidsBuilder::default()
                    .limit(i64::try_from(pl.value.count()).unwrap_or(i64::MAX))
                    .build()
                    .map_err(oci_err)?,
            );
        }
        linux = linux.resources(r.build().map_err(oci_err)?);
    }

    let spec = SpecBuilder::default()
        .version(OCI_VERSION)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(plan.rootfs.readonly.value)
                .build()
                .map_err(oci_err)?,
        )
        .mounts(mounts)
        .process(process.build().map_err(oci_err)?)
        .hostname(cx.hostname.clone())
        .linux(linux.build().map_err(oci_err)?)
        .build()
        .map_err(oci_err)?;
    Ok((spec, warnings))
}

/// config.json's text: capability sets sorted (the `oci-spec` types keep them in hash sets),
/// so the same plan gives the same file.
pub fn config_json(spec: &Spec) -> Result<String, ExportError> {
    let mut v = serde_json::to_value(spec).map_err(oci_err)?;
    if let Some(caps) = v
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for set in caps.values_mut() {
            if let Some(a) = set.as_array_mut() {
                a.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&v).map_err(oci_err)?;
    text.push('\n');
    Ok(text)
}

/// The calling process's open-files limit: what a box started from here inherits.
fn caller_rlimits() -> Vec<PosixRlimit> {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(soft)
            .hard(hard)
            .build()
            .ok()
            .into_iter()
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Read a file of the rootfs at `comps`, confined to it (a symlink never leads to the host's).
fn read_in_root(rootfs: &Path, comps: &[&[u8]]) -> String {
    use std::io::Read;
    let Ok(root) = crate::image::inroot::Root::open(rootfs) else {
        return String::new();
    };
    let Ok(fd) = root.open_in_root(
        comps,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
    ) else {
        return String::new();
    };
    let mut s = String::new();
    let _ = std::fs::File::from(fd).read_to_string(&mut s);
    s
}

/// What [`write_bundle`] made.
#[derive(Debug)]
pub struct Written {
    pub warnings: Vec<Diagnostic>,
    pub image: String,
}

/// Write the bundle of `plan` at `dest` (missing, or an empty directory), with the image from
/// the store. Nothing appears at `dest` unless all of it was written.
pub fn write_bundle(
    paths: &crate::store::paths::Paths,
    plan: &Plan,
    dest: &Path,
) -> Result<Written, ExportError> {
    match std::fs::read_dir(dest) {
        Ok(mut d) => {
            if d.next().is_some() {
                return Err(ExportError::NotEmpty {
                    path: dest.to_path_buf(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(ExportError::NotEmpty {
                path: dest.to_path_buf(),
            })
        }
        Err(e) => return Err(ExportError::io("cannot read", dest)(e)),
    }
    let name = dest
        .file_name()
        .ok_or_else(|| ExportError::Other(format!("{} names no directory", dest.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let store = crate::image::Store::open(paths).map_err(|e| ExportError::Image(e.to_string()))?;
    let image = store.resolve(&plan.image.value).map_err(|e| {
        ExportError::Image(format!(
            "{}: {e} (`foxbox pull` it first)",
            crate::runner::image_label(&plan.image.value)
        ))
    })?;
    let boxed: BoxPlan = crate::runner::box_plan::box_plan(plan, &image);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.export-"))
        .tempdir_in(&parent)
        .map_err(ExportError::io("cannot create a directory in", &parent))?
        .keep();
    let result = fill(&store, &image, paths, &boxed, &tmp).and_then(|w| {
        std::fs::rename(&tmp, dest)
            .map_err(ExportError::io("cannot rename the bundle to", dest))?;
        Ok(w)
    });
    if result.is_err() {
        // The rootfs holds files of the store's subordinate ids: removed as their owner.
        let _ = store.remove_tree(&tmp);
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn fill(
    store: &crate::image::Store,
    image: &crate::image::Image,
    paths: &crate::store::paths::Paths,
    plan: &BoxPlan,
    dir: &Path,
) -> Result<Written, ExportError> {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    let rootfs = dir.join("rootfs");
    store
        .copy_rootfs(image, &rootfs)
        .map_err(|e| ExportError::Other(format!("cannot copy the image's rootfs: {e}")))?;
    let passwd = read_in_root(&rootfs, &[b"etc", b"passwd"]);
    let group = read_in_root(&rootfs, &[b"etc", b"group"]);
    let id =
        crate::exec::user::resolve(&plan.process.user.value, &passwd, &group).map_err(|e| {
            let hint = e.hint.map(|h| format!(" ({h})")).unwrap_or_default();
            ExportError::Other(format!("the box's user: {}{hint}", e.message))
        })?;
    let hostname = plan
        .hostname
        .as_ref()
        .map(|h| h.value.clone())
        .or_else(|| plan.name.as_ref().map(|n| n.value.clone()))
        .unwrap_or_else(|| "foxbox".to_string());
    let etc = dir.join("etc");
    std::fs::create_dir(&etc).map_err(ExportError::io("cannot create", &etc))?;
    let contents = crate::fs::etc::contents(&hostname, &plan.network);
    for (file, text) in &contents {
        let p = etc.join(file);
        std::fs::write(&p, text).map_err(ExportError::io("cannot write", &p))?;
    }
    let etc_files = contents.map(|(file, _)| (file, PathBuf::from("etc").join(file)));
    let mut volume_dirs = Vec::new();
    let volumes = plan
        .mounts
        .iter()
        .any(|m| matches!(m.kind, MountKind::Volume { .. }))
        .then(|| crate::volume::Volumes::open(paths.volumes(), paths.boxes()))
        .transpose()
        .map_err(|e| ExportError::Other(e.to_string()))?;
    for m in &plan.mounts {
        volume_dirs.push(match (&m.kind, &volumes) {
            (MountKind::Volume { name }, Some(v)) => Some(
                v.ensure(name)
                    .map_err(|e| ExportError::Other(e.to_string()))?
                    .mountpoint,
            ),
            _ => None,
        });
    }
    let cx = BundleContext {
        maps: store.id_maps().clone(),
        uid: id.uid,
        gid: id.gid,
        groups: id.groups,
        home: id.home,
        hostname,
        etc_files: Some(etc_files),
        volume_dirs,
        rlimits: caller_rlimits(),
    };
    let (spec, warnings) = config_from_plan(plan, &cx)?;
    let text = config_json(&spec)?;
    let cfg = dir.join("config.json");
    std::fs::write(&cfg, text).map_err(ExportError::io("cannot write", &cfg))?;
    Ok(Written {
        warnings,
        image: crate::runner::image_label(&plan.image.value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::idmap::IdRange;

    fn plan(text: &str) -> Plan {
        let (plan, diags) =
            crate::spec::check_str(text, Path::new("Foxbox.toml"), Path::new("/repo"));
        plan.unwrap_or_else(|| panic!("{diags:?}"))
    }

    fn cx(uid: u32, root_maps: bool) -> BundleContext {
        let outside = if root_maps { 0 } else { 1000 };
        let r = IdRange {
            inside: 0,
            outside,
            count: 1,
        };
        BundleContext {
            maps: IdMaps {
                uids: vec![r],
                gids: vec![r],
                via_helpers: false,
            },
            uid,
            gid: uid,
            groups: vec![10],
            home: "/home/x".into(),
            hostname: "h".into(),
            etc_files: None,
            volume_dirs: vec![None, Some(PathBuf::from("/store/volumes/data"))],
            rlimits: Vec::new(),
        }
    }

    fn json(p: &Plan, c: &BundleContext) -> (serde_json::Value, Vec<Diagnostic>) {
        let image = crate::plan::ImageDefaults {
            shell: true,
            ..Default::default()
        };
        let p = BoxPlan::new(p.clone(), &image, (0, 0));
        let (spec, w) = config_from_plan(&p, c).unwrap();
        (
            serde_json::from_str(&config_json(&spec).unwrap()).unwrap(),
            w,
        )
    }

    #[test]
    fn a_config_from_a_plan() {
        let p = plan(
            "[box]\nimage = \"busybox\"\nuser = \"1000:1000\"\ncommand = [\"true\"]\n\
             [capabilities]\nadd = [\"NET_RAW\"]\n[limits]\nmemory = \"64m\"\ncpus = 0.5\n\
             pids = 10\ntimeout = \"5s\"\n[rootfs]\nreadonly = true\n[network]\nmode = \"host\"\n\
             [[mounts]]\ntype = \"tmpfs\"\ntarget = \"/t\"\nsize = \"1m\"\n\
             [[mounts]]\ntype = \"volume\"\nsource = \"data\"\ntarget = \"/data\"\n",
        );
        let (v, w) = json(&p, &cx(1000, true));
        assert_eq!(v["ociVersion"], OCI_VERSION);
        assert_eq!(v["process"]["user"]["uid"], 1000);
        assert_eq!(v["process"]["user"]["additionalGids"][0], 10);
        // A non-root user: the added capability in four sets, the whole set bounding.
        let caps = &v["process"]["capabilities"];
        assert_eq!(caps["effective"], serde_json::json!(["CAP_NET_RAW"]));
        assert_eq!(caps["ambient"], serde_json::json!(["CAP_NET_RAW"]));
        assert_eq!(caps["bounding"].as_array().unwrap().len(), 12);
        assert_eq!(v["root"]["readonly"], true);
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        for d in ["/proc", "/dev/pts", "/sys", "/tmp", "/run", "/t", "/data"] {
            assert!(dests.contains(&d), "{d} not in {dests:?}");
        }
        let sys = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert_eq!(sys["type"], "bind", "host network: the host's /sys, bound");
        let data = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/data")
            .unwrap();
        assert_eq!(data["source"], "/store/volumes/data");
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(!ns.contains(&"network") && ns.contains(&"user"), "{ns:?}");
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["pids"]["limit"], 10);
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&"/proc/kcore".into()));
        // The timeout has no bundle equivalent: a warning at its line.
        assert!(w
            .iter()
            .any(|d| d.message.contains("time limit") && d.span.is_some()));

        // Rootless: no supplementary groups, and a warning saying so.
        let (v, w) = json(&p, &cx(1000, false));
        assert!(v["process"]["user"].get("additionalGids").is_none());
        assert!(w.iter().any(|d| d.message.contains("supplementary groups")));

        // uid 0 gets the whole set in all five; unconfined means no seccomp at all.
        let p = plan("[box]\nimage = \"busybox\"\n[seccomp]\nprofile = \"unconfined\"\n");
        let (v, _) = json(&p, &cx(0, true));
        let caps = &v["process"]["capabilities"];
        assert_eq!(caps["effective"], caps["bounding"]);
        assert_eq!(caps["effective"].as_array().unwrap().len(), 11);
        assert!(v["linux"].get("seccomp").is_none());
        assert_eq!(v["process"]["args"], serde_json::json!(["/bin/sh"]));
    }
}
