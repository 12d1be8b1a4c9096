use std::path::PathBuf;

use clap::Args;

use super::{not_yet, CmdResult, Ctx, Format};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The spec file (default: ./Foxbox.toml).
    #[arg(value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(_a: PlanArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("plan")
}
