//! `foxbox stats`: what a running box uses now, read from its cgroups (podman's
//! `stats --no-stream`): memory (current, peak, limit), cpu time, processes.

use std::time::Duration;

use clap::Args;
use foxbox::boxes::{BoxEntry, Status};
use foxbox::diag::codes;
use foxbox::runner::cgroup_record::{self, Stats, UsageError};
use serde_json::json;

use super::ctx::{CmdResult, Ctx, Format};
use super::fail::{Failure, OrFail};
use super::lifecycle;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Boxes (names or ids).
    #[arg(required = true)]
    pub boxes: Vec<String>,
    /// Accepted for podman compatibility: foxbox always prints one sample.
    #[arg(long)]
    pub no_stream: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// One box's sample.
struct Sample {
    entry: BoxEntry,
    stats: Stats,
    memory_limit: Option<u64>,
    cgroups: Vec<std::path::PathBuf>,
}

pub fn run(a: StatsArgs, ctx: &Ctx) -> CmdResult {
    let boxes = lifecycle::open(ctx)?;
    // All or nothing, as podman: one box that cannot be read fails the command before output.
    let samples = a
        .boxes
        .iter()
        .map(|what| {
            let id = boxes.resolve(what).or_fail(codes::boxes::LOOKUP)?;
            let entry = boxes.load(&id).or_fail(codes::boxes::LOOKUP)?;
            sample(entry)
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    match a.format {
        Format::Json => {
            let v: Vec<_> = samples.iter().map(to_json).collect();
            super::ctx::out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&v).or_fail(codes::cli::OUTPUT)?
            ));
        }
        Format::Human => super::ctx::out(&table(&samples)),
    }
    Ok(0)
}

fn sample(entry: BoxEntry) -> Result<Sample, Failure> {
    let name = &entry.config.name;
    if entry.state.status != Status::Running {
        return Err(failure!(codes::boxes::NOT_RUNNING,
            "box {name} is not running: usage is read from its cgroup, which exists only while it runs"
        ));
    }
    let usage = cgroup_record::usage(&entry).map_err(|e| match e {
        UsageError::NoCgroup(e) => failure!(
            codes::boxes::STATS,
            help = "foxbox makes a cgroup for a box that declares a limit (memory, cpus, pids)",
            "box {name} has no cgroup to read usage from ({e})"
        ),
        UsageError::BadRecord(e) => failure!(
            codes::boxes::STATS,
            "box {name}: cannot read its cgroup.json: {e}"
        ),
        UsageError::Read(e) => failure!(
            codes::boxes::STATS,
            "box {name}: cannot read its cgroup usage: {e}"
        ),
    })?;
    let memory_limit = entry.config.plan["limits"]["memory"].as_u64();
    Ok(Sample {
        cgroups: usage.cgroups,
        entry,
        stats: usage.stats,
        memory_limit,
    })
}

fn to_json(s: &Sample) -> serde_json::Value {
    let st = &s.stats;
    json!({
        "Id": s.entry.config.id,
        "Name": s.entry.config.name,
        "MemUsage": st.memory.map(|m| m.current),
        "MemPeak": st.memory.and_then(|m| m.peak),
        "MemLimit": s.memory_limit,
        "CpuNanos": st.cpu.map(|d| d.as_nanos() as u64),
        "Pids": st.pids,
        "OomKills": st.oom_kills,
        "Cgroups": s.cgroups,
    })
}

/// Bytes the way podman's stats prints them (decimal units: "1.5MB").
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", UNITS[u]).replace(".000", "")
    }
}

fn cpu_time(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

fn table(samples: &[Sample]) -> String {
    let dash = || "--".to_string();
    let head = [
        "ID",
        "NAME",
        "CPU TIME",
        "MEM USAGE / LIMIT",
        "MEM PEAK",
        "PIDS",
    ];
    let rows: Vec<[String; 6]> = samples
        .iter()
        .map(|s| {
            let st = &s.stats;
            let usage = st.memory.map_or_else(dash, |m| bytes(m.current));
            let limit = s.memory_limit.map_or_else(|| "--".to_string(), bytes);
            [
                s.entry.config.id[..12].to_string(),
                s.entry.config.name.clone(),
                st.cpu.map_or_else(dash, cpu_time),
                format!("{usage} / {limit}"),
                st.memory.and_then(|m| m.peak).map_or_else(dash, bytes),
                st.pids.map_or_else(dash, |p| p.to_string()),
            ]
        })
        .collect();
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            l.push_str(&format!("{c:<w$}  ", w = widths[i]));
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(&head);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        out.push_str(&line(&cells));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_podman() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(999), "999B");
        assert_eq!(bytes(1000), "1kB");
        assert_eq!(bytes(1_536_000), "1.536MB");
        assert_eq!(bytes(67_108_864), "67.109MB");
    }
}
