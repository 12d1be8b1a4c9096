use clap::Args;

use super::{not_yet, CmdResult, Ctx, Format};

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
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub r#box: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow until the box exits.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines newer than this (e.g. 10m, or an RFC 3339 time).
    #[arg(long)]
    pub since: Option<String>,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<usize>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    pub r#box: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds (or a duration) to wait before SIGKILL.
    #[arg(short, long, default_value = "10s")]
    pub time: String,
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Stop and remove running boxes too.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub boxes: Vec<String>,
}

pub fn ps(_a: PsArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("ps")
}
pub fn top(_a: TopArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("top")
}
pub fn logs(_a: LogsArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("logs")
}
pub fn inspect(_a: InspectArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("inspect")
}
pub fn stop(_a: StopArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("stop")
}
pub fn kill(_a: KillArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("kill")
}
pub fn rm(_a: RmArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("rm")
}
pub fn wait(_a: WaitArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("wait")
}
