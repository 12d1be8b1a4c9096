//! ps, top, port, inspect: what the stored boxes are and what runs in them.

use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use foxbox::boxes::{control, BoxEntry, Boxes, Status};
use foxbox::diag::codes;
use serde_json::json;

use super::ctx::{CmdResult, Ctx};
use super::fail::{Failure, OrFail};
use super::human;
use super::lifecycle::{find, open};
use super::template::ListFormat;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all boxes, not only running ones.
    #[arg(short, long)]
    pub all: bool,
    /// Print only ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    pub no_trunc: bool,
    /// `json`, or a Go template ('{{.Names}}', 'table {{.ID}}\t{{.Status}}').
    #[arg(long, default_value = "human", value_name = "FORMAT")]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub r#box: String,
    /// podman's descriptors (default: user pid ppid pcpu etime tty time args): also comm,
    /// state, nice, vsz, hpid, huser.
    pub descriptors: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    pub r#box: String,
    /// Only this box port: PORT[/PROTO].
    pub port: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// `json` (the default), or a Go template ('{{.State.Status}}', '{{json .Ports}}').
    #[arg(short, long, default_value = "json", value_name = "FORMAT")]
    pub format: ListFormat,
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

/// podman's STATUS column.
pub fn status_text(e: &BoxEntry) -> String {
    let s = &e.state;
    let secs = |ms: u64| ms / 1000;
    match s.status {
        Status::Created => "Created".to_string(),
        Status::Running => {
            let since = s.started.unwrap_or(e.config.created);
            format!(
                "Up {}",
                human::duration(human::now().saturating_sub(secs(since)))
            )
        }
        Status::Exited => {
            let code = s
                .exit_code
                .map_or_else(|| "unknown".to_string(), |c| c.to_string());
            let mut t = format!("Exited ({code})");
            if let Some(f) = s.finished {
                t.push(' ');
                t.push_str(&human::ago(secs(f)));
            }
            if s.oom_killed {
                t.push_str(" (OOM killed)");
            } else if s.timed_out {
                t.push_str(" (timed out)");
            }
            t
        }
    }
}

fn quote_command(cmd: &[String]) -> String {
    cmd.join(" ")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}

pub fn ps(a: PsArgs, ctx: &Ctx) -> CmdResult {
    let paths = ctx.paths()?;
    // The sweep `open` does is part of this one.
    let boxes = Boxes::open(paths.boxes()).or_fail(codes::boxes::LOOKUP)?;
    let list: Vec<BoxEntry> = foxbox::runner::check::sweep(&paths, &boxes)
        .or_fail(codes::boxes::LOOKUP)?
        .into_iter()
        .filter(|e| a.all || e.state.status == Status::Running)
        .collect();
    match &a.format {
        ListFormat::Json => {
            let v: Vec<_> = list.iter().map(ps_json).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&v).or_fail(codes::cli::OUTPUT)?
            );
            return Ok(0);
        }
        ListFormat::Template(t) => {
            let v: Vec<_> = list.iter().map(|e| ps_fields(e, a.no_trunc)).collect();
            print!(
                "{}",
                t.render(&v)
                    .map_err(|e| failure!(codes::cli::USAGE, "--format: {e}"))?
            );
            return Ok(0);
        }
        ListFormat::Human => {}
    }
    let id = |e: &BoxEntry| {
        if a.no_trunc {
            e.config.id.clone()
        } else {
            e.config.id[..12].to_string()
        }
    };
    if a.quiet {
        list.iter().for_each(|e| println!("{}", id(e)));
        return Ok(0);
    }
    let mut out = String::new();
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|e| {
            let cmd = quote_command(&e.config.command);
            [
                id(e),
                e.config.name.clone(),
                e.config.image.clone(),
                if a.no_trunc { cmd } else { truncate(&cmd, 24) },
                human::ago(e.config.created / 1000),
                status_text(e),
                e.config.ports.join(", "),
            ]
        })
        .collect();
    let head = [
        "BOX ID", "NAME", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
    ];
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(&head));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        out.push_str(&line(&cells));
    }
    print!("{out}");
    Ok(0)
}

fn rfc3339(ms: Option<u64>) -> serde_json::Value {
    ms.map_or(serde_json::Value::Null, |ms| {
        json!(humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string())
    })
}

/// podman's `ps --format json` names (`Names` a list, `ExitCode` always a number, `Exited`),
/// and foxbox's earlier `Name` kept for scripts that read it.
fn ps_json(e: &BoxEntry) -> serde_json::Value {
    json!({
        "Id": e.config.id,
        "Names": [e.config.name],
        "Name": e.config.name,
        "Image": e.config.image,
        "ImageID": e.config.image_id,
        "Command": e.config.command,
        "Created": e.config.created / 1000,
        "CreatedAt": rfc3339(Some(e.config.created)),
        "State": e.state.status,
        "Status": status_text(e),
        "Exited": e.state.status == Status::Exited,
        "ExitCode": e.state.exit_code.unwrap_or(0),
        "ExitedAt": e.state.finished.map_or(0, |ms| ms / 1000),
        "StartedAt": e.state.started.map_or(0, |ms| ms / 1000),
        "Pid": e.state.fox.map_or(0, |p| p.pid),
        "Ports": e.config.ports,
        "AutoRemove": e.config.auto_remove,
    })
}

/// What a `ps --format` template sees: podman's template fields (`.ID` short, `.Names` and
/// `.Command` as text).
fn ps_fields(e: &BoxEntry, no_trunc: bool) -> serde_json::Value {
    let mut v = ps_json(e);
    let id = if no_trunc {
        e.config.id.clone()
    } else {
        e.config.id[..12].to_string()
    };
    v["ID"] = json!(id);
    v["Names"] = json!(e.config.name);
    v["Command"] = json!(quote_command(&e.config.command));
    v["CreatedHuman"] = json!(human::ago(e.config.created / 1000));
    v["Ports"] = json!(e.config.ports.join(", "));
    v
}

pub fn inspect(a: InspectArgs, ctx: &Ctx) -> CmdResult {
    let boxes = open(ctx)?;
    // All or nothing, as podman: an unknown name fails before anything is printed.
    let entries = a
        .boxes
        .iter()
        .map(|b| find(ctx, &boxes, b))
        .collect::<Result<Vec<_>, Failure>>()?;
    let v: Vec<_> = entries
        .iter()
        .map(|e| {
            let s = &e.state;
            json!({
                "Id": e.config.id,
                "Name": e.config.name,
                "Created": rfc3339(Some(e.config.created)),
                "Image": e.config.image,
                "ImageId": e.config.image_id,
                "Command": e.config.command,
                "Spec": e.config.spec,
                "Ports": e.config.ports,
                "Volumes": e.config.volumes,
                "AutoRemove": e.config.auto_remove,
                "State": {
                    "Status": s.status,
                    "Running": s.status == Status::Running,
                    "Pid": s.fox.map(|p| p.pid),
                    "PidStartTime": s.fox.map(|p| p.start_time),
                    "SupervisorPid": s.supervisor.map(|p| p.pid),
                    "StartedAt": rfc3339(s.started),
                    "FinishedAt": rfc3339(s.finished),
                    "ExitCode": s.exit_code,
                    "OOMKilled": s.oom_killed,
                    "TimedOut": s.timed_out,
                    "Error": s.error,
                },
                "Paths": {
                    "Dir": e.dir,
                    "Rootfs": e.dir.join("rootfs"),
                    "Log": e.log_path(),
                },
                "Plan": e.config.plan,
            })
        })
        .collect();
    match &a.format {
        ListFormat::Template(t) => print!(
            "{}",
            t.render(&v)
                .map_err(|e| failure!(codes::cli::USAGE, "--format: {e}"))?
        ),
        _ => println!(
            "{}",
            serde_json::to_string_pretty(&v).or_fail(codes::cli::OUTPUT)?
        ),
    }
    Ok(0)
}

pub fn top(a: TopArgs, ctx: &Ctx) -> CmdResult {
    let boxes = open(ctx)?;
    let e = find(ctx, &boxes, &a.r#box)?;
    if e.state.status != Status::Running {
        return Err(failure!(
            codes::boxes::NOT_RUNNING,
            "box {} is not running",
            e.config.name
        ));
    }
    let cols = if a.descriptors.is_empty() {
        TOP_DEFAULT.iter().map(|d| d.to_string()).collect()
    } else {
        // podman takes them as separate words or comma-separated.
        a.descriptors
            .iter()
            .flat_map(|d| d.split(','))
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let cols = cols
        .iter()
        .map(|c| {
            TOP_COLUMNS.iter().find(|(d, _)| d == c).ok_or_else(|| {
                let known: Vec<&str> = TOP_COLUMNS.iter().map(|(d, _)| *d).collect();
                failure!(
                    codes::cli::USAGE,
                    help = format!("use any of: {}", known.join(", ")),
                    "unknown top descriptor {c:?}"
                )
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let mut rows = vec![cols.iter().map(|(_, h)| h.to_string()).collect::<Vec<_>>()];
    for p in control::processes(&e) {
        rows.push(cols.iter().map(|(d, _)| top_cell(d, &p)).collect());
    }
    print!("{}", super::template::columns(&rows));
    Ok(0)
}

/// podman's default `top` columns.
const TOP_DEFAULT: &[&str] = &[
    "user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args",
];

/// podman's descriptors foxbox knows, and their headers.
const TOP_COLUMNS: &[(&str, &str)] = &[
    ("user", "USER"),
    ("pid", "PID"),
    ("ppid", "PPID"),
    ("pcpu", "%CPU"),
    ("etime", "ELAPSED"),
    ("tty", "TTY"),
    ("time", "TIME"),
    ("args", "COMMAND"),
    ("comm", "COMMAND"),
    ("state", "STATE"),
    ("nice", "NI"),
    ("vsz", "VSZ"),
    ("hpid", "HPID"),
    ("huser", "HUSER"),
];

fn top_cell(descriptor: &str, p: &control::BoxProcess) -> String {
    match descriptor {
        "user" => p.user.clone(),
        "pid" => p.pid.to_string(),
        "ppid" => p.ppid.to_string(),
        "pcpu" => {
            let e = p.elapsed.as_secs_f64();
            let pct = if e > 0.0 {
                100.0 * p.cpu_time.as_secs_f64() / e
            } else {
                0.0
            };
            format!("{pct:.3}")
        }
        "etime" => go_duration(p.elapsed),
        "time" => go_duration(p.cpu_time),
        "tty" => match (
            (p.tty_nr >> 8) & 0xfff,
            (p.tty_nr & 0xff) | ((p.tty_nr >> 12) & 0xfff00),
        ) {
            (0, _) => "?".to_string(),
            (136..=143, minor) => format!("pts/{minor}"),
            (major, minor) => format!("{major}:{minor}"),
        },
        "args" => p.command.clone(),
        "comm" => p.comm.clone(),
        "state" => p.state.to_string(),
        "nice" => p.nice.to_string(),
        "vsz" => (p.vsz / 1024).to_string(),
        "hpid" => p.host_pid.to_string(),
        "huser" => p.host_uid.to_string(),
        _ => String::new(),
    }
}

/// A duration as Go prints one, as podman's `top` shows them: `0s`, `1.5s`, `2m3.25s`, `1h0m0s`.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let (h, m, s) = (
        ms / 3_600_000,
        ms / 60_000 % 60,
        (ms % 60_000) as f64 / 1000.0,
    );
    let secs = format!("{s}s");
    match (h, m) {
        (0, 0) if ms == 0 => "0s".to_string(),
        (0, 0) if ms < 1000 => format!("{ms}ms"),
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// podman's `port`: `80/tcp -> 0.0.0.0:8080` per forward, from the record's `HOST->BOX/PROTO`
/// (the host port the box got when it asked for any).
pub fn port(a: PortArgs, ctx: &Ctx) -> CmdResult {
    let boxes = open(ctx)?;
    let e = find(ctx, &boxes, &a.r#box)?;
    let want = a.port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    for fwd in &e.config.ports {
        let Some((host, boxed)) = fwd.rsplit_once("->") else {
            continue;
        };
        match &want {
            Some(w) if w != boxed => {}
            Some(_) => println!("{host}"),
            None => println!("{boxed} -> {host}"),
        }
    }
    Ok(0)
}
