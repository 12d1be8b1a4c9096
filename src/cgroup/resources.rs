//! A container's resources (an OCI config's `linux.resources`, `update`'s flags) as writes to
//! the cgroup files of whichever version each controller is on here.
//!
//! Each value keeps the name of its field (`memory.limit`, `devices[2]`), so that an error
//! says which setting the kernel refused. What the host's version cannot do is an error
//! ([`CgroupError::Unsupported`]) or, where the setting has no effect to lose, a warning.

use std::collections::BTreeSet;

use super::files::{read_file, write_file};
use super::node::CgroupNode;
use super::{CgroupError, Controller, Version};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub limit: Option<i64>,
    pub reservation: Option<i64>,
    /// Memory + swap, as the runtime-spec (and cgroup v1) count it.
    pub swap: Option<i64>,
    pub kernel: Option<i64>,
    pub kernel_tcp: Option<i64>,
    pub swappiness: Option<u64>,
    pub disable_oom_killer: Option<bool>,
    pub use_hierarchy: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub burst: Option<u64>,
    pub period: Option<u64>,
    pub realtime_runtime: Option<i64>,
    pub realtime_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub idle: Option<i64>,
}

/// A device's `major:minor` and a value (a weight, a rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceValue {
    pub major: i64,
    pub minor: i64,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blkio {
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
    pub weight_device: Vec<DeviceValue>,
    pub leaf_weight_device: Vec<DeviceValue>,
    pub read_bps: Vec<DeviceValue>,
    pub write_bps: Vec<DeviceValue>,
    pub read_iops: Vec<DeviceValue>,
    pub write_iops: Vec<DeviceValue>,
}

/// One device cgroup rule: `kind` is `a`, `b` or `c`; `None` numbers are `*`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
    /// The rule's field name (`devices[3]`), or a note for rules the runtime adds.
    pub field: String,
}

impl DeviceRule {
    /// The rule as devices.allow/devices.deny take it: `c 1:3 rwm`.
    pub fn line(&self) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory: Memory,
    pub cpu: Cpu,
    /// `<= 0`: no limit (`max`).
    pub pids: Option<i64>,
    pub blkio: Blkio,
    /// (page size as in `hugetlb.<size>.*`, e.g. `2MB`; bytes).
    pub hugepages: Vec<(String, u64)>,
    pub class_id: Option<u32>,
    pub priorities: Vec<(String, u32)>,
    /// In order: the kernel applies them one after the other.
    pub devices: Vec<DeviceRule>,
    /// v2 files by name (`unified`).
    pub unified: Vec<(String, String)>,
}

/// How a write is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Plain,
    /// The kernel may accept and ignore it (kernel memory): read back, warn when it differs.
    Checked,
    /// One of a pair bounded by each other (memory and memory+swap, cfs period and quota):
    /// when the kernel refuses it (EINVAL), the next write goes first.
    PairFirst,
}

/// One value for one cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: Controller,
    pub file: String,
    pub value: String,
    /// The setting's name, for errors: `memory.limit`.
    pub field: String,
    pub kind: WriteKind,
}

fn w(controller: Controller, file: &str, value: impl ToString, field: &str) -> Write {
    Write {
        controller,
        file: file.to_string(),
        value: value.to_string(),
        field: field.to_string(),
        kind: WriteKind::Plain,
    }
}

fn unsupported(field: &str, why: impl Into<String>) -> CgroupError {
    CgroupError::Unsupported {
        field: field.to_string(),
        why: why.into(),
    }
}

impl Resources {
    /// The controllers these resources need.
    pub fn controllers(&self) -> BTreeSet<Controller> {
        let mut c = BTreeSet::new();
        let m = &self.memory;
        if m != &Memory::default() {
            c.insert(Controller::Memory);
        }
        let cpu = &self.cpu;
        if cpu.shares.is_some()
            || cpu.quota.is_some()
            || cpu.period.is_some()
            || cpu.burst.is_some()
            || cpu.realtime_period.is_some()
            || cpu.realtime_runtime.is_some()
            || cpu.idle.is_some()
        {
            c.insert(Controller::Cpu);
        }
        if cpu.cpus.is_some() || cpu.mems.is_some() {
            c.insert(Controller::Cpuset);
        }
        if self.pids.is_some() {
            c.insert(Controller::Pids);
        }
        if self.blkio != Blkio::default() {
            c.insert(Controller::Blkio);
        }
        if !self.hugepages.is_empty() {
            c.insert(Controller::Hugetlb);
        }
        if self.class_id.is_some() {
            c.insert(Controller::NetCls);
        }
        if !self.priorities.is_empty() {
            c.insert(Controller::NetPrio);
        }
        if !self.devices.is_empty() {
            c.insert(Controller::Devices);
        }
        c
    }

    pub fn is_empty(&self) -> bool {
        self.controllers().is_empty() && self.unified.is_empty()
    }

    /// The writes that set these resources, `version` saying where each controller is
    /// (`None`: this host lacks it). Warnings go to `warnings`.
    pub fn writes(
        &self,
        version: impl Fn(Controller) -> Option<Version>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Write>, CgroupError> {
        let mut out = Vec::new();
        let need = |c: Controller, field: &str| {
            version(c).ok_or_else(|| CgroupError::Setting {
                field: field.to_string(),
                source: Box::new(CgroupError::NoController { controller: c }),
            })
        };
        self.memory_writes(&need, &mut out, warnings)?;
        self.cpu_writes(&need, &mut out)?;
        if let Some(p) = self.pids {
            need(Controller::Pids, "pids.limit")?;
            let v = if p > 0 { p.to_string() } else { "max".into() };
            out.push(w(Controller::Pids, "pids.max", v, "pids.limit"));
        }
        self.blkio_writes(&need, &mut out)?;
        for (i, (size, limit)) in self.hugepages.iter().enumerate() {
            let field = format!("hugepageLimits[{i}]");
            let file = match need(Controller::Hugetlb, &field)? {
                Version::V1 => format!("hugetlb.{size}.limit_in_bytes"),
                Version::V2 => format!("hugetlb.{size}.max"),
            };
            out.push(w(Controller::Hugetlb, &file, limit, &field));
        }
        if let Some(id) = self.class_id {
            need(Controller::NetCls, "network.classID")?;
            out.push(w(
                Controller::NetCls,
                "net_cls.classid",
                id,
                "network.classID",
            ));
        }
        for (i, (name, prio)) in self.priorities.iter().enumerate() {
            let field = format!("network.priorities[{i}]");
            need(Controller::NetPrio, &field)?;
            out.push(w(
                Controller::NetPrio,
                "net_prio.ifpriomap",
                format!("{name} {prio}"),
                &field,
            ));
        }
        if !self.devices.is_empty() {
            match need(Controller::Devices, "devices")? {
                Version::V1 => {
                    for d in &self.devices {
                        let file = if d.allow {
                            "devices.allow"
                        } else {
                            "devices.deny"
                        };
                        out.push(w(Controller::Devices, file, d.line(), &d.field));
                    }
                }
                // v2 has no files for them: PathCgroup::apply attaches them as an eBPF
                // program, compiled here too so that a rule it cannot take fails early.
                Version::V2 => {
                    super::devices_bpf::program(&self.devices)?;
                }
            }
        }
        for (key, value) in &self.unified {
            let field = format!("unified.{key}");
            if key.contains('/') || key.starts_with('.') || key.is_empty() {
                return Err(unsupported(&field, "not a cgroup file name"));
            }
            let ctrl = key.split('.').next().unwrap_or_default();
            let c = [
                Controller::Memory,
                Controller::Cpu,
                Controller::Pids,
                Controller::Cpuset,
                Controller::Blkio,
                Controller::Hugetlb,
            ]
            .into_iter()
            .find(|c| c.v2_name() == Some(ctrl))
            .unwrap_or(Controller::Freezer);
            if version(c) != Some(Version::V2) {
                return Err(unsupported(
                    &field,
                    format!("the {ctrl} files are not on cgroup v2 on this host"),
                ));
            }
            out.push(w(c, key, value, &field));
        }
        Ok(out)
    }

    fn memory_writes(
        &self,
        need: &dyn Fn(Controller, &str) -> Result<Version, CgroupError>,
        out: &mut Vec<Write>,
        warnings: &mut Vec<String>,
    ) -> Result<(), CgroupError> {
        let m = &self.memory;
        if m == &Memory::default() {
            return Ok(());
        }
        let c = Controller::Memory;
        let v = need(c, "memory")?;
        // Unlimited memory without a word on swap means unlimited swap too (runc's rule).
        let swap = match (m.limit, m.swap) {
            (Some(-1), None) => Some(-1),
            (_, s) => s,
        };
        match v {
            Version::V1 => {
                if let Some(l) = m.limit {
                    let mut lw = w(c, "memory.limit_in_bytes", l, "memory.limit");
                    if swap.is_some() {
                        lw.kind = WriteKind::PairFirst;
                    }
                    out.push(lw);
                }
                if let Some(s) = swap {
                    out.push(w(c, "memory.memsw.limit_in_bytes", s, "memory.swap"));
                }
                if let Some(r) = m.reservation {
                    out.push(w(c, "memory.soft_limit_in_bytes", r, "memory.reservation"));
                }
                if let Some(k) = m.kernel {
                    let mut kw = w(c, "memory.kmem.limit_in_bytes", k, "memory.kernel");
                    kw.kind = WriteKind::Checked;
                    out.push(kw);
                }
                if let Some(k) = m.kernel_tcp {
                    out.push(w(
                        c,
                        "memory.kmem.tcp.limit_in_bytes",
                        k,
                        "memory.kernelTCP",
                    ));
                }
                if let Some(s) = m.swappiness {
                    out.push(w(c, "memory.swappiness", s, "memory.swappiness"));
                }
                if let Some(d) = m.disable_oom_killer {
                    out.push(w(
                        c,
                        "memory.oom_control",
                        u8::from(d),
                        "memory.disableOOMKiller",
                    ));
                }
                if let Some(h) = m.use_hierarchy {
                    out.push(w(
                        c,
                        "memory.use_hierarchy",
                        u8::from(h),
                        "memory.useHierarchy",
                    ));
                }
            }
            Version::V2 => {
                let max = |v: i64| {
                    if v < 0 {
                        "max".to_string()
                    } else {
                        v.to_string()
                    }
                };
                if let Some(l) = m.limit {
                    out.push(w(c, "memory.max", max(l), "memory.limit"));
                }
                if let Some(s) = swap {
                    // v2 limits swap alone; the spec's value is memory + swap.
                    let v = match (s, m.limit) {
                        (-1, _) => "max".to_string(),
                        (s, Some(l)) if l >= 0 && s >= l => (s - l).to_string(),
                        (_, Some(l)) if l >= 0 => {
                            return Err(unsupported(
                                "memory.swap",
                                "below memory.limit (the spec counts memory + swap)",
                            ))
                        }
                        _ => {
                            return Err(unsupported(
                                "memory.swap",
                                "cgroup v2 limits swap alone: give memory.limit too",
                            ))
                        }
                    };
                    out.push(w(c, "memory.swap.max", v, "memory.swap"));
                }
                if let Some(r) = m.reservation {
                    out.push(w(c, "memory.low", max(r), "memory.reservation"));
                }
                if m.kernel.is_some() || m.kernel_tcp.is_some() {
                    warnings.push(
                        "memory.kernel/kernelTCP: ignored on cgroup v2 (kernel memory is \
                         counted in memory.max)"
                            .into(),
                    );
                }
                if m.swappiness.is_some() {
                    return Err(unsupported(
                        "memory.swappiness",
                        "cgroup v2 has no per-cgroup swappiness",
                    ));
                }
                if m.disable_oom_killer == Some(true) {
                    return Err(unsupported(
                        "memory.disableOOMKiller",
                        "cgroup v2 cannot disable the OOM killer",
                    ));
                }
                if m.use_hierarchy == Some(false) {
                    return Err(unsupported(
                        "memory.useHierarchy",
                        "cgroup v2 is always hierarchical",
                    ));
                }
            }
        }
        Ok(())
    }

    fn cpu_writes(
        &self,
        need: &dyn Fn(Controller, &str) -> Result<Version, CgroupError>,
        out: &mut Vec<Write>,
    ) -> Result<(), CgroupError> {
        let p = &self.cpu;
        let c = Controller::Cpu;
        let cs = Controller::Cpuset;
        if let Some(cpus) = &p.cpus {
            need(cs, "cpu.cpus")?;
            out.push(w(cs, "cpuset.cpus", cpus, "cpu.cpus"));
        }
        if let Some(mems) = &p.mems {
            need(cs, "cpu.mems")?;
            out.push(w(cs, "cpuset.mems", mems, "cpu.mems"));
        }
        let any = p.shares.is_some()
            || p.quota.is_some()
            || p.period.is_some()
            || p.burst.is_some()
            || p.realtime_period.is_some()
            || p.realtime_runtime.is_some()
            || p.idle.is_some();
        if !any {
            return Ok(());
        }
        match need(c, "cpu")? {
            Version::V1 => {
                if let Some(s) = p.shares {
                    out.push(w(c, "cpu.shares", s, "cpu.shares"));
                }
                if let Some(per) = p.period {
                    let mut pw = w(c, "cpu.cfs_period_us", per, "cpu.period");
                    if p.quota.is_some() {
                        pw.kind = WriteKind::PairFirst;
                    }
                    out.push(pw);
                }
                if let Some(q) = p.quota {
                    out.push(w(c, "cpu.cfs_quota_us", q, "cpu.quota"));
                }
                if let Some(b) = p.burst {
                    out.push(w(c, "cpu.cfs_burst_us", b, "cpu.burst"));
                }
                if let Some(per) = p.realtime_period {
                    out.push(w(c, "cpu.rt_period_us", per, "cpu.realtimePeriod"));
                }
                if let Some(r) = p.realtime_runtime {
                    out.push(w(c, "cpu.rt_runtime_us", r, "cpu.realtimeRuntime"));
                }
            }
            Version::V2 => {
                if let Some(s) = p.shares.filter(|s| *s > 0) {
                    // runc's mapping of shares (2..262144) onto weight (1..10000).
                    let weight = 1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142;
                    out.push(w(c, "cpu.weight", weight, "cpu.shares"));
                }
                if p.quota.is_some() || p.period.is_some() {
                    let quota = match p.quota {
                        Some(q) if q > 0 => q.to_string(),
                        _ => "max".into(),
                    };
                    let v = match p.period {
                        Some(per) => format!("{quota} {per}"),
                        None => quota,
                    };
                    out.push(w(c, "cpu.max", v, "cpu.quota"));
                }
                if let Some(b) = p.burst {
                    out.push(w(c, "cpu.max.burst", b, "cpu.burst"));
                }
                if p.realtime_period.is_some() || p.realtime_runtime.is_some() {
                    return Err(unsupported(
                        "cpu.realtimeRuntime",
                        "cgroup v2 has no realtime bandwidth",
                    ));
                }
            }
        }
        if let Some(i) = p.idle {
            out.push(w(c, "cpu.idle", i, "cpu.idle"));
        }
        Ok(())
    }

    fn blkio_writes(
        &self,
        need: &dyn Fn(Controller, &str) -> Result<Version, CgroupError>,
        out: &mut Vec<Write>,
    ) -> Result<(), CgroupError> {
        let b = &self.blkio;
        if b == &Blkio::default() {
            return Ok(());
        }
        let c = Controller::Blkio;
        let dev = |d: &DeviceValue| format!("{}:{} {}", d.major, d.minor, d.value);
        match need(c, "blockIO")? {
            Version::V1 => {
                if let Some(v) = b.weight {
                    out.push(w(c, "blkio.weight", v, "blockIO.weight"));
                }
                if let Some(v) = b.leaf_weight {
                    out.push(w(c, "blkio.leaf_weight", v, "blockIO.leafWeight"));
                }
                let lists = [
                    ("blkio.weight_device", &b.weight_device, "weightDevice"),
                    (
                        "blkio.leaf_weight_device",
                        &b.leaf_weight_device,
                        "weightDevice",
                    ),
                    (
                        "blkio.throttle.read_bps_device",
                        &b.read_bps,
                        "throttleReadBpsDevice",
                    ),
                    (
                        "blkio.throttle.write_bps_device",
                        &b.write_bps,
                        "throttleWriteBpsDevice",
                    ),
                    (
                        "blkio.throttle.read_iops_device",
                        &b.read_iops,
                        "throttleReadIOPSDevice",
                    ),
                    (
                        "blkio.throttle.write_iops_device",
                        &b.write_iops,
                        "throttleWriteIOPSDevice",
                    ),
                ];
                for (file, list, name) in lists {
                    for (i, d) in list.iter().enumerate() {
                        out.push(w(c, file, dev(d), &format!("blockIO.{name}[{i}]")));
                    }
                }
            }
            Version::V2 => {
                if let Some(v) = b.weight {
                    out.push(w(c, "io.weight", v, "blockIO.weight"));
                }
                if b.leaf_weight.is_some() || !b.leaf_weight_device.is_empty() {
                    return Err(unsupported(
                        "blockIO.leafWeight",
                        "cgroup v2 has no leaf weights",
                    ));
                }
                for (i, d) in b.weight_device.iter().enumerate() {
                    out.push(w(
                        c,
                        "io.weight",
                        dev(d),
                        &format!("blockIO.weightDevice[{i}]"),
                    ));
                }
                let lists = [
                    ("rbps", &b.read_bps, "throttleReadBpsDevice"),
                    ("wbps", &b.write_bps, "throttleWriteBpsDevice"),
                    ("riops", &b.read_iops, "throttleReadIOPSDevice"),
                    ("wiops", &b.write_iops, "throttleWriteIOPSDevice"),
                ];
                for (key, list, name) in lists {
                    for (i, d) in list.iter().enumerate() {
                        out.push(w(
                            c,
                            "io.max",
                            format!("{}:{} {key}={}", d.major, d.minor, d.value),
                            &format!("blockIO.{name}[{i}]"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Make `writes` in the nodes `node_of` gives. Returns warnings (values the kernel accepted
/// and ignored); the first refusal is an error naming the field.
pub fn apply<'a>(
    writes: &[Write],
    node_of: impl Fn(Controller) -> Option<&'a dyn CgroupNode>,
) -> Result<Vec<String>, CgroupError> {
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < writes.len() {
        let wr = &writes[i];
        let node = node_of(wr.controller).ok_or_else(|| CgroupError::Setting {
            field: wr.field.clone(),
            source: Box::new(CgroupError::NoController {
                controller: wr.controller,
            }),
        })?;
        let one = |wr: &Write| {
            write_file(&node.path().join(&wr.file), &wr.value).map_err(|e| CgroupError::Setting {
                field: wr.field.clone(),
                source: Box::new(e),
            })
        };
        match (one(wr), wr.kind, writes.get(i + 1)) {
            (Ok(()), WriteKind::Checked, _) => {
                let got = read_file(&node.path().join(&wr.file)).unwrap_or_default();
                if got.trim() != wr.value {
                    warnings.push(format!(
                        "{}: this kernel accepts {} and ignores it (it reads back {})",
                        wr.field,
                        wr.value,
                        got.trim()
                    ));
                }
            }
            (Ok(()), _, _) => {}
            (Err(e), WriteKind::PairFirst, Some(next)) if e.errno() == Some(libc::EINVAL) => {
                one(next)?;
                one(wr)?;
                i += 1;
            }
            (Err(e), _, _) => return Err(e),
        }
        i += 1;
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(_: Controller) -> Option<Version> {
        Some(Version::V1)
    }

    #[test]
    fn memory_on_both_versions() {
        let r = Resources {
            memory: Memory {
                limit: Some(100),
                swap: Some(300),
                ..Memory::default()
            },
            ..Resources::default()
        };
        let mut warn = Vec::new();
        let ws = r.writes(v1, &mut warn).unwrap();
        assert_eq!(ws[0].file, "memory.limit_in_bytes");
        assert_eq!(ws[0].kind, WriteKind::PairFirst);
        assert_eq!(ws[1].file, "memory.memsw.limit_in_bytes");
        let ws = r.writes(|_| Some(Version::V2), &mut warn).unwrap();
        assert_eq!(ws[1].file, "memory.swap.max");
        assert_eq!(ws[1].value, "200", "v2 counts swap alone");
        let no_memory = r.writes(|_| None, &mut warn).unwrap_err();
        assert!(no_memory.to_string().starts_with("memory: "), "{no_memory}");
    }

    #[test]
    fn devices_in_order_on_v1_and_no_files_on_v2() {
        let rule = |allow, kind, major, access: &str| DeviceRule {
            allow,
            kind,
            major,
            minor: None,
            access: access.into(),
            field: "devices".into(),
        };
        let r = Resources {
            devices: vec![
                rule(false, 'a', None, "rwm"),
                rule(true, 'c', Some(1), "rw"),
            ],
            ..Resources::default()
        };
        let mut warn = Vec::new();
        let ws = r.writes(v1, &mut warn).unwrap();
        assert_eq!(
            ws.iter()
                .map(|w| format!("{} {}", w.file, w.value))
                .collect::<Vec<_>>(),
            ["devices.deny a *:* rwm", "devices.allow c 1:* rw"]
        );
        assert!(warn.is_empty());
        assert!(r
            .writes(|_| Some(Version::V2), &mut warn)
            .unwrap()
            .is_empty());
        assert!(warn.is_empty(), "{warn:?}");
    }

    #[test]
    fn cpu_shares_map_to_v2_weight() {
        let r = Resources {
            cpu: Cpu {
                shares: Some(1024),
                quota: Some(50_000),
                period: Some(100_000),
                ..Cpu::default()
            },
            ..Resources::default()
        };
        let ws = r.writes(|_| Some(Version::V2), &mut Vec::new()).unwrap();
        assert_eq!(ws[0].value, "39");
        assert_eq!(ws[1].value, "50000 100000");
        let ws = r.writes(v1, &mut Vec::new()).unwrap();
        let files: Vec<&str> = ws.iter().map(|w| w.file.as_str()).collect();
        assert_eq!(
            files,
            ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"]
        );
    }
}
