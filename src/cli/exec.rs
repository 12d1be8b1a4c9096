use clap::Args;

use super::{not_yet, CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the box.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User to run as.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// The box (name or id prefix).
    pub r#box: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(_a: ExecArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("exec")
}
