use clap::{Args, Subcommand};

use super::{not_yet, CmdResult, Ctx};

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a named volume.
    Create(NameArgs),
    /// List volumes.
    Ls(NoArgs),
    /// Show volumes as JSON.
    Inspect(NameArgs),
    /// Remove volumes (refused while a box uses one).
    Rm(NameArgs),
    /// Remove every volume no box uses.
    Prune(NoArgs),
}

#[derive(Debug, Args)]
pub struct NameArgs {
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NoArgs {}

pub fn run(_cmd: VolumeCommand, _ctx: &Ctx) -> CmdResult {
    not_yet("volume")
}
