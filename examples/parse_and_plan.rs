//! Parse a spec with the foxbox library, show its diagnostics, and print the plan's steps.
//!
//! cargo run --example parse_and_plan -- examples/web-server.toml

use std::path::PathBuf;
use std::process::ExitCode;

use foxbox::diag;
use foxbox::spec::{self, LoadError};

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("examples/web-server.toml"));
    match spec::load(&path) {
        Ok(loaded) => {
            // Warnings do not stop a spec; show them against its text.
            eprint!(
                "{}",
                diag::render(&loaded.warnings, &loaded.plan.origin, false)
            );
            println!("{} resolves into:", path.display());
            for (i, step) in foxbox::exec::steps::describe(&loaded.plan)
                .iter()
                .enumerate()
            {
                println!(
                    "{:>3}. {:?} {:<15} {}",
                    i + 1,
                    step.side,
                    step.name,
                    step.detail
                );
            }
            ExitCode::SUCCESS
        }
        Err(LoadError::Invalid {
            diagnostics,
            origin,
        }) => {
            eprint!("{}", diag::render(&diagnostics, &origin, false));
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(125)
        }
    }
}
