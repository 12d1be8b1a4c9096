use std::path::PathBuf;

use clap::Args;

use foxbox::diag::codes;
use foxbox::plan::{Origin, User};
use foxbox::runner::{exec_request, RunError};

use super::ctx::{CmdResult, Ctx};
use super::fail::{Failure, OrFail};

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

/// `uid[:gid]` with numbers, or `name[:group]` from the box's /etc files.
fn parse_user(s: &str) -> Result<User, Failure> {
    User::parse(s).map_err(|_| {
        failure!(
            codes::cli::USAGE,
            help = "write uid[:gid] (e.g. 1000:1000) or name[:group]",
            "--user {s:?} is not a valid user"
        )
    })
}

pub fn run(a: ExecArgs, ctx: &Ctx) -> CmdResult {
    let boxes = super::lifecycle::open(ctx)?;
    let id = boxes.resolve(&a.r#box).or_fail(codes::boxes::LOOKUP)?;
    let e = boxes.load(&id).or_fail(codes::boxes::LOOKUP)?;
    let fail = |err: RunError| Failure::against(err.diagnostics, &Origin::CommandLine, err.exit);
    let mut box_ = exec_request::joinable(&e, a.command).map_err(fail)?;
    let req = &mut box_.request;
    req.tty = a.tty;
    req.stdin = a.interactive || a.tty;
    for kv in &a.env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => req.set_env(k, v),
            Some(_) => {
                return Err(failure!(
                    codes::cli::USAGE,
                    "--env {kv:?}: expected KEY=VALUE"
                ))
            }
            // KEY alone copies the caller's value, as podman does; unset means skipped.
            None => {
                if let Ok(v) = std::env::var(kv) {
                    req.set_env(kv, &v);
                }
            }
        }
    }
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            return Err(failure!(
                codes::cli::USAGE,
                help = "give an absolute path inside the box",
                "--workdir {w:?} is not absolute"
            ));
        }
        req.cwd = PathBuf::from(w);
    }
    if let Some(u) = &a.user {
        req.user = parse_user(u)?;
    }
    let exit = box_.join().map_err(fail)?;
    Ok(exit.shell_code().clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse_as_podman_takes_them() {
        assert_eq!(
            parse_user("1000").unwrap(),
            User::Id {
                uid: 1000,
                gid: None
            }
        );
        assert_eq!(
            parse_user("1:2").unwrap(),
            User::Id {
                uid: 1,
                gid: Some(2)
            }
        );
        assert_eq!(
            parse_user("fox:wheel").unwrap(),
            User::Name {
                user: "fox".into(),
                group: Some("wheel".into())
            }
        );
        assert!(parse_user("").is_err());
        assert!(parse_user("1:").is_err());
        assert!(parse_user("1:wheel").is_err());
        assert!(parse_user("99999999999").is_err());
    }
}
