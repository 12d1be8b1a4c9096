use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{not_yet, CmdResult, Ctx, Format};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import a rootfs tarball (.tar, .tar.gz) as an image.
    Import(ImportArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove images.
    Rm(RmArgs),
    /// Show images in detail as JSON.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tarball.
    pub file: PathBuf,
    /// Name and tag (default: the file name without .tar/.tar.gz, tag latest).
    #[arg(long, value_name = "NAME[:TAG]")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print only image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Do not truncate ids.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Images by name[:tag] or id (prefix).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even when a box uses it.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(cmd: ImageCommand, _ctx: &Ctx) -> CmdResult {
    match cmd {
        ImageCommand::Import(_) => not_yet("image import"),
        ImageCommand::Ls(_) => not_yet("image ls"),
        ImageCommand::Rm(_) => not_yet("image rm"),
        ImageCommand::Inspect(_) => not_yet("image inspect"),
    }
}
