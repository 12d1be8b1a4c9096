use clap::{Args, CommandFactory};
use clap_complete::Shell;
use foxbox::diag::codes;

use super::ctx::CmdResult;
use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print completions for.
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {}

pub fn completions(a: CompletionsArgs) -> CmdResult {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "foxbox", &mut std::io::stdout());
    Ok(0)
}

pub fn man(_: ManArgs) -> CmdResult {
    let man = clap_mangen::Man::new(Cli::command());
    man.render(&mut std::io::stdout())
        .map_err(|e| failure!(codes::cli::OUTPUT, "cannot write the man page: {e}"))?;
    Ok(0)
}
