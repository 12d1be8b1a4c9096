//! `foxbox system`: the store as a whole.

use clap::{Args, Subcommand};

use super::{out, CmdResult, Ctx};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check the store: images' layers, box records, and nothing left that nothing refers to.
    ///
    /// Prints one problem a line (`KIND PATH: what is wrong`; KIND is a stable word) and exits
    /// 1 when there is one, 0 when the store is clean.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Fix what can safely be fixed (remove leftovers nothing refers to, record dead boxes as
    /// exited, release what boxes that do not run hold) and say what was done; exits 1 when
    /// problems remain.
    #[arg(long)]
    pub repair: bool,
}

pub fn run(cmd: SystemCommand, ctx: &Ctx) -> CmdResult {
    match cmd {
        SystemCommand::Check(a) => check(a, ctx),
    }
}

fn check(a: CheckArgs, ctx: &Ctx) -> CmdResult {
    let paths = ctx.paths()?;
    let found = foxbox::runner::check::check(&paths);
    if !a.repair {
        let text: String = found.iter().map(|f| format!("{f}\n")).collect();
        out(&text);
        return Ok(u8::from(!found.is_empty()));
    }
    foxbox::runner::check::repair(&paths);
    let left = foxbox::runner::check::check(&paths);
    let mut text = String::new();
    for f in found.iter().filter(|f| !left.contains(f)) {
        text.push_str(&format!("repaired {f}\n"));
    }
    for f in &left {
        text.push_str(&format!("{f}\n"));
    }
    out(&text);
    Ok(u8::from(!left.is_empty()))
}
