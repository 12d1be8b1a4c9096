use std::path::PathBuf;

use clap::Args;

use super::{not_yet, CmdResult, Ctx, Format};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Spec files to check.
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<PathBuf>,
    /// Also check what this host cannot honour (user namespaces, id ranges, cgroups, network helpers, images).
    #[arg(long)]
    pub host: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(_a: CheckArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("check")
}
