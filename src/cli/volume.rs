use clap::{Args, Subcommand};
use foxbox::diag::codes;
use foxbox::volume::{Volume, Volumes};

use super::ctx::{CmdResult, Ctx, Format};
use super::fail::{Failure, OrFail};
use super::human;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a named volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes as JSON.
    Inspect(NamesArgs),
    /// Remove volumes (refused while a box uses one, unless --force).
    Rm(RmArgs),
    /// Remove every volume no box uses.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Volume name: a letter or digit, then letters, digits, '_', '.', '-'.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print only names.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Remove even when a box uses it.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {}

fn open(ctx: &Ctx) -> Result<Volumes, Failure> {
    foxbox::runner::remove::volumes(&ctx.paths()?).or_fail(codes::volume::VOLUME)
}

pub fn run(cmd: VolumeCommand, ctx: &Ctx) -> CmdResult {
    let paths = ctx.paths()?;
    // Listing writes nothing: a read-only store lists.
    let vols = match cmd {
        VolumeCommand::Ls(_) | VolumeCommand::Inspect(_) => {
            Volumes::open_read(paths.volumes(), paths.boxes())
        }
        _ => open(ctx)?,
    };
    match cmd {
        VolumeCommand::Create(a) => {
            let v = vols.create(&a.name).or_fail(codes::volume::VOLUME)?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let list = vols.list().or_fail(codes::volume::VOLUME)?;
            if a.format == Format::Json {
                print_json(&list)?;
            } else if a.quiet {
                list.iter().for_each(|v| println!("{}", v.name));
            } else {
                println!("{:<24} {:<16} USED BY", "VOLUME NAME", "CREATED");
                for v in &list {
                    println!(
                        "{:<24} {:<16} {}",
                        v.name,
                        human::ago(v.created),
                        v.users.len()
                    );
                }
            }
            Ok(0)
        }
        VolumeCommand::Inspect(a) => {
            // All or nothing: a missing name fails the command before anything is printed.
            let list = a
                .names
                .iter()
                .map(|n| vols.get(n))
                .collect::<Result<Vec<Volume>, _>>()
                .or_fail(codes::volume::VOLUME)?;
            print_json(&list)?;
            Ok(0)
        }
        VolumeCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.names {
                match vols.remove(n, a.force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        let d = foxbox::diag::Diagnostic::from_error(codes::volume::VOLUME, &e);
                        super::ctx::err(&Failure::new(d).render(ctx.color_stderr()));
                        failed = true;
                    }
                }
            }
            Ok(if failed { 125 } else { 0 })
        }
        VolumeCommand::Prune(_) => {
            for n in vols.prune().or_fail(codes::volume::VOLUME)? {
                println!("{n}");
            }
            Ok(0)
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).or_fail(codes::cli::OUTPUT)?
    );
    Ok(())
}
