//! Parsing the command line without building every command's arguments.
//!
//! clap builds the arguments of all commands before it parses one, about a quarter of a
//! millisecond: a few per cent of a box's start. The commands that start boxes (`run`, `up`,
//! `exec`) are first parsed with a tree that holds only themselves and the global options. Their
//! arguments are the same types, so a successful parse means the same either way; anything else
//! (help, version, a mistake, every other command) goes through the whole tree, so what a person
//! sees never differs.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use super::{exec, run_flags, up, Cli, Command, Globals};

/// The command line, parsed.
pub fn parse() -> Result<Cli, clap::Error> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let fast = match command_name(&args) {
        Some("run") => quick::<OnlyRun>(&args),
        Some("up") => quick::<OnlyUp>(&args),
        Some("exec") => quick::<OnlyExec>(&args),
        _ => None,
    };
    match fast {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(args),
    }
}

/// The first argument that is not a global option or its value: the command, if any.
fn command_name(args: &[OsString]) -> Option<&str> {
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        let a = a.to_str()?;
        if !a.starts_with('-') {
            return Some(a);
        }
        let takes_value = ["--root", "--log-level", "--color"].contains(&a);
        if takes_value {
            rest.next();
        } else if !["--root=", "--log-level=", "--color="]
            .iter()
            .any(|p| a.starts_with(p))
        {
            // Any other option before the command (--help, --version, a typo): the whole tree.
            return None;
        }
    }
    None
}

fn quick<S: Subcommand + Into<Command>>(args: &[OsString]) -> Option<Cli> {
    let one = One::<S>::try_parse_from(args).ok()?;
    Some(Cli {
        globals: one.globals,
        command: one.command.into(),
    })
}

/// The global options and one command.
#[derive(Debug, Parser)]
#[command(name = "foxbox")]
struct One<S: Subcommand> {
    #[command(flatten)]
    globals: Globals,

    #[command(subcommand)]
    command: S,
}

#[derive(Debug, Subcommand)]
enum OnlyRun {
    Run(Box<run_flags::RunArgs>),
}

#[derive(Debug, Subcommand)]
enum OnlyUp {
    Up(up::UpArgs),
}

#[derive(Debug, Subcommand)]
enum OnlyExec {
    Exec(exec::ExecArgs),
}

impl From<OnlyRun> for Command {
    fn from(c: OnlyRun) -> Command {
        let OnlyRun::Run(a) = c;
        Command::Run(a)
    }
}

impl From<OnlyUp> for Command {
    fn from(c: OnlyUp) -> Command {
        let OnlyUp::Up(a) = c;
        Command::Up(a)
    }
}

impl From<OnlyExec> for Command {
    fn from(c: OnlyExec) -> Command {
        let OnlyExec::Exec(a) = c;
        Command::Exec(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_command_is_found_after_global_options() {
        let name = |v: &[&str]| command_name(&os(v)).map(str::to_string);
        assert_eq!(name(&["foxbox", "run", "img"]).as_deref(), Some("run"));
        assert_eq!(
            name(&["foxbox", "--root", "/r", "--color=never", "up"]).as_deref(),
            Some("up")
        );
        assert_eq!(
            name(&["foxbox", "--log-level", "run", "ps"]).as_deref(),
            Some("ps")
        );
        assert_eq!(name(&["foxbox", "--help", "run"]), None);
        assert_eq!(name(&["foxbox"]), None);
    }

    /// The quick parse and the whole tree agree on what they both accept, and the quick one
    /// refuses what it must leave to the whole tree.
    #[test]
    fn quick_parses_match_the_whole_tree() {
        let lines: &[&[&str]] = &[
            &[
                "foxbox", "run", "--rm", "-e", "A=1", "img", "sh", "-c", "echo hi",
            ],
            &["foxbox", "--root", "/r", "run", "-it", "--name", "x", "img"],
            &[
                "foxbox",
                "run",
                "--log-level",
                "debug",
                "img",
                "--",
                "ls",
                "-l",
            ],
            &["foxbox", "up", "spec.toml", "--rm", "--", "sh"],
            &["foxbox", "--color", "never", "exec", "-it", "box", "sh"],
        ];
        for l in lines {
            let full = Cli::try_parse_from(os(l)).expect("whole tree");
            let fast = match l.iter().find(|a| ["run", "up", "exec"].contains(a)) {
                Some(&"run") => quick::<OnlyRun>(&os(l)),
                Some(&"up") => quick::<OnlyUp>(&os(l)),
                _ => quick::<OnlyExec>(&os(l)),
            }
            .expect("quick");
            assert_eq!(format!("{full:?}"), format!("{fast:?}"), "{l:?}");
        }
        for l in [
            &["foxbox", "run", "--help"][..],
            &["foxbox", "run", "--version"],
            &["foxbox", "run", "--no-such-flag", "img"],
            &["foxbox", "run"],
        ] {
            assert!(quick::<OnlyRun>(&os(l)).is_none(), "{l:?}");
        }
    }
}
