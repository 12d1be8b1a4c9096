//! An OCI container's cgroup: `linux.cgroupsPath` and `linux.resources` (and `update`'s
//! resources) translated into [`crate::cgroup::Resources`], the cgroup made before the
//! container's process is cloned, and the executor's cgroup step that moves it in.
//!
//! runc's rules: an absolute cgroupsPath is relative to each hierarchy's root, a relative one
//! to the runtime's own cgroup; without one the container gets `/foxbox-runc/<id>` (under
//! another `--root` than the default, `/foxbox-runc/<hash of the root>/<id>`, so that two
//! runtime roots never share a container's cgroup), which must not exist yet. The
//! cgroup is made in the hierarchies of the controllers the resources use, and in the
//! freezer's (`pause`, `ps`, `kill --all`); `update` adds a hierarchy when it sets a
//! controller `create` did not. An unprivileged runtime that cannot write there does without a
//! cgroup (a warning when the config named a path) unless resources were asked for (an error),
//! as runc does rootless.

use std::collections::BTreeSet;

use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

use super::config::ConfigError;
use super::OciError;
use crate::cgroup::{
    self, CgroupError, Controller, DeviceRule, DeviceValue, Host, PathCgroup, Resources,
};
use crate::exec::{Helpers, StepError};
use crate::plan::Plan;

/// What a config asks of cgroups.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// `linux.cgroupsPath` (`None`: the default path).
    pub path: Option<String>,
    pub resources: Resources,
    /// Allow rules for the container's device nodes, put after its device rules.
    pub nodes: Vec<DeviceRule>,
}

/// The parent of containers' cgroups without a cgroupsPath, under each hierarchy's root.
pub const DEFAULT_PARENT: &str = "/foxbox-runc";

fn err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(path, message)
}

/// `linux.cgroupsPath`, `linux.resources` and the device nodes the device rules must allow.
pub fn translate(
    linux: &oci_spec::runtime::Linux,
    warnings: &mut Vec<String>,
) -> Result<Wanted, ConfigError> {
    let path = match linux.cgroups_path() {
        Some(p) if !p.as_os_str().is_empty() => {
            let text = p.to_string_lossy().into_owned();
            Some(cgroupfs_path(&text, warnings)?)
        }
        _ => None,
    };
    let resources = match linux.resources() {
        Some(r) => resources(r, "linux.resources")?,
        None => Resources::default(),
    };
    // As runc does: the nodes the container gets are allowed after the config's rules.
    let mut nodes: Vec<(char, i64, Option<i64>)> = DEFAULT_DEVICES.to_vec();
    for d in linux.devices().iter().flatten() {
        let kind = match d.typ() {
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            // A fifo is no device to the cgroup.
            _ => continue,
        };
        nodes.push((kind, d.major(), Some(d.minor())));
    }
    let nodes = nodes
        .into_iter()
        .map(|(kind, major, minor)| DeviceRule {
            allow: true,
            kind,
            major: Some(major),
            minor,
            access: "rwm".into(),
            field: "devices (foxbox's /dev)".into(),
        })
        .collect();
    Ok(Wanted {
        path,
        resources,
        nodes,
    })
}

/// The nodes foxbox's /dev holds: null, zero, full, random, urandom, tty, console, ptmx and
/// the ptys.
const DEFAULT_DEVICES: &[(char, i64, Option<i64>)] = &[
    ('c', 1, Some(3)),
    ('c', 1, Some(5)),
    ('c', 1, Some(7)),
    ('c', 1, Some(8)),
    ('c', 1, Some(9)),
    ('c', 5, Some(0)),
    ('c', 5, Some(1)),
    ('c', 5, Some(2)),
    ('c', 136, None),
];

/// A cgroupsPath as a cgroupfs path: systemd's `slice:prefix:name` (what a client configured
/// for systemd sends) becomes `/slice/prefix-name.scope`, since foxbox does not ask systemd.
fn cgroupfs_path(text: &str, warnings: &mut Vec<String>) -> Result<String, ConfigError> {
    let parts: Vec<&str> = text.split(':').collect();
    let path = if parts.len() == 3 && !text.starts_with('/') {
        let slice = if parts[0].is_empty() {
            "system.slice"
        } else {
            parts[0]
        };
        let p = format!("/{slice}/{}-{}.scope", parts[1], parts[2]);
        warnings.push(format!(
            "linux.cgroupsPath: {text:?} is systemd's form; foxbox does not ask systemd and uses \
             the cgroup {p}"
        ));
        p
    } else {
        text.to_string()
    };
    cgroup::parse_path(&path).map_err(|e| err("linux.cgroupsPath", e.to_string()))?;
    Ok(path)
}

/// A `LinuxResources` object (a config's `linux.resources`, `update --resources`'s file),
/// checked, every error at its JSON path under `at`.
pub fn resources(r: &LinuxResources, at: &str) -> Result<Resources, ConfigError> {
    let mut out = Resources::default();
    let field = |f: &str| {
        if at.is_empty() {
            f.to_string()
        } else {
            format!("{at}.{f}")
        }
    };
    if let Some(m) = r.memory() {
        let mm = &mut out.memory;
        for (name, v) in [
            ("limit", m.limit()),
            ("reservation", m.reservation()),
            ("swap", m.swap()),
            ("kernel", m.kernel()),
            ("kernelTCP", m.kernel_tcp()),
        ] {
            if v.is_some_and(|v| v < -1) {
                return Err(err(
                    field(&format!("memory.{name}")),
                    "below -1 (unlimited)",
                ));
            }
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l >= 0 && s >= 0 && s < l {
                return Err(err(
                    field("memory.swap"),
                    format!("{s} is below memory.limit {l} (swap counts memory + swap)"),
                ));
            }
        }
        if m.swappiness().is_some_and(|s| s > 100) {
            return Err(err(field("memory.swappiness"), "above 100"));
        }
        mm.limit = m.limit();
        mm.reservation = m.reservation();
        mm.swap = m.swap();
        mm.kernel = m.kernel();
        mm.kernel_tcp = m.kernel_tcp();
        mm.swappiness = m.swappiness();
        mm.disable_oom_killer = m.disable_oom_killer();
        mm.use_hierarchy = m.use_hierarchy();
    }
    if let Some(c) = r.cpu() {
        let cc = &mut out.cpu;
        // As runc: 0 leaves a value as it is.
        cc.shares = c.shares().filter(|v| *v != 0);
        cc.quota = c.quota().filter(|v| *v != 0);
        cc.period = c.period().filter(|v| *v != 0);
        cc.burst = c.burst();
        cc.realtime_runtime = c.realtime_runtime().filter(|v| *v != 0);
        cc.realtime_period = c.realtime_period().filter(|v| *v != 0);
        cc.idle = c.idle();
        if cc.quota.is_some_and(|q| q < -1) {
            return Err(err(field("cpu.quota"), "below -1 (unlimited)"));
        }
        for (name, v) in [("cpus", c.cpus()), ("mems", c.mems())] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                if !cpu_list(v) {
                    return Err(err(
                        field(&format!("cpu.{name}")),
                        format!("{v:?} is not a list like 0-3,5"),
                    ));
                }
                if name == "cpus" {
                    cc.cpus = Some(v.clone());
                } else {
                    cc.mems = Some(v.clone());
                }
            }
        }
    }
    if let Some(p) = r.pids() {
        // runc's rule: 0 leaves the limit alone, a negative one is `max`.
        out.pids = Some(p.limit()).filter(|l| *l != 0);
    }
    if let Some(b) = r.block_io() {
        let bb = &mut out.blkio;
        bb.weight = b.weight().filter(|v| *v != 0);
        bb.leaf_weight = b.leaf_weight().filter(|v| *v != 0);
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let at = field(&format!("blockIO.weightDevice[{i}]"));
            check_dev(&at, d.major(), d.minor())?;
            if let Some(wt) = d.weight() {
                bb.weight_device.push(DeviceValue {
                    major: d.major(),
                    minor: d.minor(),
                    value: u64::from(wt),
                });
            }
            if let Some(wt) = d.leaf_weight() {
                bb.leaf_weight_device.push(DeviceValue {
                    major: d.major(),
                    minor: d.minor(),
                    value: u64::from(wt),
                });
            }
        }
        let lists = [
            ("throttleReadBpsDevice", b.throttle_read_bps_device()),
            ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
            ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
            ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
        ];
        for (k, (name, list)) in lists.into_iter().enumerate() {
            for (i, d) in list.iter().flatten().enumerate() {
                check_dev(
                    &field(&format!("blockIO.{name}[{i}]")),
                    d.major(),
                    d.minor(),
                )?;
                let v = DeviceValue {
                    major: d.major(),
                    minor: d.minor(),
                    value: d.rate(),
                };
                match k {
                    0 => bb.read_bps.push(v),
                    1 => bb.write_bps.push(v),
                    2 => bb.read_iops.push(v),
                    _ => bb.write_iops.push(v),
                }
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let at = field(&format!("hugepageLimits[{i}]"));
        let size = h.page_size();
        let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &size[digits.len()..];
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || !["B", "KB", "MB", "GB", "TB"].contains(&unit)
        {
            return Err(err(
                format!("{at}.pageSize"),
                format!("{size:?} is not a page size like 2MB or 1GB"),
            ));
        }
        if !page_size_exists(digits, unit) {
            return Err(err(
                format!("{at}.pageSize"),
                format!(
                    "{size}: this kernel has no such huge page size (see /sys/kernel/mm/hugepages)"
                ),
            ));
        }
        let limit = u64::try_from(h.limit()).map_err(|_| err(format!("{at}.limit"), "negative"))?;
        out.hugepages.push((size.clone(), limit));
    }
    if let Some(n) = r.network() {
        out.class_id = n.class_id();
        for p in n.priorities().iter().flatten() {
            out.priorities.push((p.name().clone(), p.priority()));
        }
    }
    for (i, d) in r.devices().iter().flatten().enumerate() {
        let at = field(&format!("devices[{i}]"));
        let kind = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::C => 'c',
            other => {
                return Err(err(
                    format!("{at}.type"),
                    format!("{:?}: device cgroup rules take a, b or c", other.as_str()),
                ))
            }
        };
        let access = d.access().clone().unwrap_or_else(|| "rwm".into());
        if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
            return Err(err(
                format!("{at}.access"),
                format!("{access:?}: use r, w and m"),
            ));
        }
        for (name, v) in [("major", d.major()), ("minor", d.minor())] {
            if v.is_some_and(|v| v < -1) {
                return Err(err(format!("{at}.{name}"), "negative"));
            }
        }
        out.devices.push(DeviceRule {
            allow: d.allow(),
            kind,
            // -1 is the spec's wildcard as well as a missing number.
            major: d.major().filter(|v| *v >= 0),
            minor: d.minor().filter(|v| *v >= 0),
            access,
            // Relative, as the other fields of a write: error_at puts `at` before it.
            field: format!("devices[{i}]"),
        });
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(err(
            field("rdma"),
            "the rdma controller is not supported by foxbox",
        ));
    }
    let mut unified: Vec<(String, String)> = r
        .unified()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    unified.sort();
    out.unified = unified;
    Ok(out)
}

/// Whether /sys/kernel/mm/hugepages has `hugepages-<size in kB>kB` (true where it cannot tell).
fn page_size_exists(digits: &str, unit: &str) -> bool {
    let dir = std::path::Path::new("/sys/kernel/mm/hugepages");
    if !dir.is_dir() {
        return true;
    }
    let Ok(n) = digits.parse::<u64>() else {
        return false;
    };
    let kb = match unit {
        "B" => n / 1024,
        "KB" => n,
        "MB" => n.saturating_mul(1024),
        "GB" => n.saturating_mul(1024 * 1024),
        _ => n.saturating_mul(1024 * 1024 * 1024),
    };
    dir.join(format!("hugepages-{kb}kB")).is_dir()
}

fn check_dev(at: &str, major: i64, minor: i64) -> Result<(), ConfigError> {
    if major < 0 || minor < 0 {
        return Err(err(at, "a negative device number"));
    }
    Ok(())
}

/// `0-3,5`: what cpuset.cpus and cpuset.mems take.
fn cpu_list(v: &str) -> bool {
    v.split(',').all(|part| {
        let mut it = part.splitn(2, '-');
        let num = |s: Option<&str>| {
            s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        };
        let a = it.next();
        match it.next() {
            Some(b) => num(a) && num(Some(b)),
            None => num(a),
        }
    })
}

/// A cgroup error as the runtime reports it: a setting the kernel or this host refused
/// names its JSON path (under `at`), anything else is a cgroup error.
pub fn error_at(at: &str, e: CgroupError) -> OciError {
    match e {
        CgroupError::Setting { field, source } => OciError::Config(ConfigError::new(
            if at.is_empty() {
                field
            } else {
                format!("{at}.{field}")
            },
            source.to_string(),
        )),
        CgroupError::Unsupported { field, why } => OciError::Config(ConfigError::new(
            if at.is_empty() {
                field
            } else {
                format!("{at}.{field}")
            },
            why,
        )),
        e => OciError::Cgroup(e),
    }
}

/// On a hybrid host (v1 hierarchies and a cgroup2 mount beside them), a controller found only
/// on the cgroup2 mount is refused: using it would mean enabling it at that hierarchy's root
/// for every cgroup there. runc, too, keeps to v1 on such a host.
fn hybrid_v2(host: &Host, res: &Resources) -> Result<(), CgroupError> {
    let hybrid = host
        .hierarchies
        .iter()
        .any(|h| h.version == cgroup::Version::V1);
    for c in res.controllers() {
        let Some(h) = host.find(c).map(|i| &host.hierarchies[i]) else {
            continue;
        };
        if hybrid && h.version == cgroup::Version::V2 {
            let field = match c {
                Controller::Memory => "memory",
                Controller::Cpu => "cpu",
                Controller::Cpuset => "cpu.cpus",
                Controller::Pids => "pids",
                Controller::Blkio => "blockIO",
                Controller::Hugetlb => "hugepageLimits",
                Controller::Devices => "devices",
                Controller::NetCls => "network.classID",
                Controller::NetPrio => "network.priorities",
                Controller::Freezer | Controller::Cpuacct => "",
            };
            return Err(CgroupError::Unsupported {
                field: field.into(),
                why: format!(
                    "the {c} controller is only on this hybrid host's cgroup2 mount ({}), where \
                     foxbox makes no container cgroups (it would have to enable {c} at that \
                     hierarchy's root for every cgroup); no cgroup v1 hierarchy has it",
                    h.mount.display()
                ),
            });
        }
    }
    Ok(())
}

fn denied(e: &CgroupError) -> bool {
    matches!(
        e.errno(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    )
}

/// Make the container's cgroup and set its resources, before its process is cloned. `None`:
/// an unprivileged runtime without a writable cgroup and no resources asked for.
pub fn make(
    w: &Wanted,
    id: &str,
    root: &std::path::Path,
    euid: u32,
    warnings: &mut Vec<String>,
) -> Result<Option<PathCgroup>, OciError> {
    let path = w.path.clone().unwrap_or_else(|| default_path(root, id));
    let host = Host::detect()?;
    let mut res = w.resources.clone();
    // Root in a user namespace (rootless podman runs its runtime so) is unprivileged towards
    // the host's cgroups, as runc's rootless detection has it.
    let unprivileged = euid != 0 || super::in_user_namespace();
    if unprivileged && !res.devices.is_empty() {
        warnings.push(
            "linux.resources.devices: not applied by an unprivileged runtime (cgroup v1 needs \
             CAP_SYS_ADMIN; a user namespace cannot make device nodes anyway)"
                .into(),
        );
        res.devices.clear();
    }
    // Whatever this host lacks, before anything is made.
    hybrid_v2(&host, &res).map_err(|e| error_at("linux.resources", e))?;
    let mut ws = Vec::new();
    res.writes(
        |c| host.find(c).map(|h| host.hierarchies[h].version),
        &mut ws,
    )
    .map_err(|e| error_at("linux.resources", e))?;
    let required = res.controllers();
    let optional: BTreeSet<Controller> = [Controller::Freezer].into();
    // A cgroup the config names is joined when it exists (runc does); the default one is
    // this container's alone.
    let adopt = w.path.is_some();
    let mut pc = match PathCgroup::create(&host, &path, &required, &optional, adopt) {
        Ok(pc) => pc,
        Err(e) if unprivileged && denied(&e) => {
            if !res.is_empty() {
                return Err(OciError::Cgroup(CgroupError::Setting {
                    field: format!("linux.resources (cgroup {path})"),
                    source: Box::new(e),
                }));
            }
            if w.path.is_some() {
                warnings.push(format!(
                    "linux.cgroupsPath: {path} is not writable by uid {euid}; the container \
                     stays in the runtime's cgroup (pause, resume and update need one): {e}"
                ));
            }
            return Ok(None);
        }
        Err(e) => return Err(OciError::Cgroup(e)),
    };
    pc.device_nodes = w.nodes.clone();
    match pc.apply(&res) {
        Ok(more) => {
            warnings.extend(more.into_iter().map(|m| format!("linux.resources.{m}")));
            Ok(Some(pc))
        }
        Err(e) => {
            let _ = pc.destroy();
            Err(error_at("linux.resources", e))
        }
    }
}

/// The cgroup of a container whose config names none.
pub fn default_path(root: &std::path::Path, id: &str) -> String {
    if root == super::default_root() {
        return format!("{DEFAULT_PARENT}/{id}");
    }
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(root.as_os_str().as_encoded_bytes()));
    format!("{DEFAULT_PARENT}/{}/{id}", &h[..12])
}

/// Set `res` on a container's cgroup (`update`), adding the hierarchies it lacks.
pub fn update(pc: &mut PathCgroup, res: &Resources) -> Result<Vec<String>, OciError> {
    let host = Host::detect()?;
    hybrid_v2(&host, res)?;
    pc.add(&host, &res.controllers())?;
    Ok(pc.apply(res)?)
}

/// `update`'s flags (runc's): each sets one value of the resources, over `--resources`.
#[derive(Debug, Clone, Default)]
pub struct UpdateFlags {
    /// Sizes: bytes, or with a unit (`512m`, `1g`); `-1`: unlimited.
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_burst: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

/// The resources `update` sets: `file` (a `LinuxResources` JSON object, from `--resources`)
/// with the flags over it. Errors name the JSON path (or the flag).
pub fn update_resources(file: Option<&str>, f: &UpdateFlags) -> Result<Resources, OciError> {
    use serde_json::{json, Value};
    let usage = |path: &str, msg: String| {
        OciError::Usage(if path.is_empty() {
            format!("--resources: {msg}")
        } else {
            format!("--resources: {path}: {msg}")
        })
    };
    let mut v: Value = match file {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| usage("", format!("not valid JSON: {e}")))?
        }
        None => json!({}),
    };
    if !v.is_object() {
        return Err(usage("", "not a JSON object".into()));
    }
    let size = |flag: &str, s: &str| -> Result<i64, OciError> {
        if s.trim() == "-1" {
            return Ok(-1);
        }
        let n = crate::plan::units::parse_size(s)
            .map_err(|e| OciError::Usage(format!("--{flag} {s:?}: {e}")))?;
        i64::try_from(n).map_err(|_| OciError::Usage(format!("--{flag} {s:?}: too large")))
    };
    let mut set = |group: &str, key: &str, val: Value| {
        if let Some(obj) = v.as_object_mut() {
            let g = obj.entry(group).or_insert_with(|| json!({}));
            if let Some(g) = g.as_object_mut() {
                g.insert(key.into(), val);
            }
        }
    };
    for (flag, key, val) in [
        ("memory", "limit", &f.memory),
        ("memory-reservation", "reservation", &f.memory_reservation),
        ("memory-swap", "swap", &f.memory_swap),
        ("kernel-memory", "kernel", &f.kernel_memory),
        ("kernel-memory-tcp", "kernelTCP", &f.kernel_memory_tcp),
    ] {
        if let Some(s) = val {
            set("memory", key, json!(size(flag, s)?));
        }
    }
    let cpu: [(&str, Option<Value>); 9] = [
        ("shares", f.cpu_shares.map(Value::from)),
        ("period", f.cpu_period.map(Value::from)),
        ("quota", f.cpu_quota.map(Value::from)),
        ("burst", f.cpu_burst.map(Value::from)),
        ("realtimePeriod", f.cpu_rt_period.map(Value::from)),
        ("realtimeRuntime", f.cpu_rt_runtime.map(Value::from)),
        ("cpus", f.cpuset_cpus.clone().map(Value::from)),
        ("mems", f.cpuset_mems.clone().map(Value::from)),
        ("idle", None),
    ];
    for (key, val) in cpu {
        if let Some(val) = val {
            set("cpu", key, val);
        }
    }
    if let Some(p) = f.pids_limit {
        set("pids", "limit", json!(p));
    }
    if let Some(w) = f.blkio_weight {
        set("blockIO", "weight", json!(w));
    }
    let r: LinuxResources = serde_path_to_error::deserialize(&v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        usage(&path, e.into_inner().to_string())
    })?;
    resources(&r, "").map_err(|e| usage(&e.path, e.message))
}

/// The executor's cgroup step for an OCI container.
pub struct Place<'a>(pub Option<&'a PathCgroup>);

impl Helpers for Place<'_> {
    fn places_cgroup(&self) -> bool {
        self.0.is_some()
    }

    fn cgroup(&mut self, _plan: &Plan, pid: i32) -> Result<(), StepError> {
        match self.0 {
            Some(pc) => pc.cg.place(pid).map_err(|e| {
                let err = StepError::new(e.errno().unwrap_or(0), e.to_string());
                match e.help() {
                    Some(h) => err.with_hint(h),
                    None => err,
                }
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> Result<Resources, ConfigError> {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        resources(&r, "linux.resources")
    }

    #[test]
    fn bad_values_name_their_json_path() {
        for (json, path) in [
            (
                r#"{"memory":{"swappiness":101}}"#,
                "linux.resources.memory.swappiness",
            ),
            (
                r#"{"memory":{"limit":100,"swap":50}}"#,
                "linux.resources.memory.swap",
            ),
            (r#"{"cpu":{"cpus":"0-x"}}"#, "linux.resources.cpu.cpus"),
            (
                r#"{"devices":[{"allow":true,"access":"rwx"}]}"#,
                "linux.resources.devices[0].access",
            ),
            (
                r#"{"devices":[{"allow":true},{"allow":true,"type":"p"}]}"#,
                "linux.resources.devices[1].type",
            ),
            (
                r#"{"hugepageLimits":[{"pageSize":"2XB","limit":1}]}"#,
                "linux.resources.hugepageLimits[0].pageSize",
            ),
        ] {
            assert_eq!(res(json).unwrap_err().path, path, "{json}");
        }
        if std::path::Path::new("/sys/kernel/mm/hugepages").is_dir() {
            let e = res(r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#).unwrap_err();
            assert_eq!(e.path, "linux.resources.hugepageLimits[0].pageSize");
        }
    }

    #[test]
    fn values_carry_over() {
        let r = res(r#"{"memory":{"limit":1000,"swap":-1},"cpu":{"shares":0,"quota":5000,"cpus":"0-1"},"pids":{"limit":5},"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        assert_eq!(r.memory.limit, Some(1000));
        assert_eq!(r.cpu.shares, None, "0 leaves shares alone");
        assert_eq!(r.cpu.cpus.as_deref(), Some("0-1"));
        assert_eq!(r.pids, Some(5));
        assert_eq!(
            res(r#"{"pids":{"limit":0}}"#).unwrap().pids,
            None,
            "0 leaves it alone"
        );
        assert_eq!(r.devices[0].line(), "a *:* rwm");
        let c = r.controllers();
        for want in [
            Controller::Memory,
            Controller::Cpu,
            Controller::Cpuset,
            Controller::Pids,
            Controller::Devices,
        ] {
            assert!(c.contains(&want), "{want}");
        }
    }

    /// The rule's field is relative (`devices[1]`), as every write's: `error_at` adds the rest.
    #[test]
    fn a_device_rule_the_v2_program_cannot_take_names_its_json_path() {
        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":4294967296,"access":"r"}]}"#).unwrap();
        let e = r
            .writes(|_| Some(cgroup::Version::V2), &mut Vec::new())
            .unwrap_err();
        match error_at("linux.resources", e) {
            OciError::Config(c) => assert_eq!(c.path, "linux.resources.devices[1]"),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn systemd_paths_become_cgroupfs_paths() {
        let mut w = Vec::new();
        assert_eq!(
            cgroupfs_path("machine.slice:libpod:abc", &mut w).unwrap(),
            "/machine.slice/libpod-abc.scope"
        );
        assert_eq!(w.len(), 1);
        assert_eq!(cgroupfs_path("/a/b", &mut w).unwrap(), "/a/b");
        assert!(cgroupfs_path("/a/../b", &mut w).is_err());
    }
}
