//! The `foxbox` command: parse arguments, run the command, turn its outcome into an exit code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // A holder of the caller's user namespace is this binary started again (never returns).
    foxbox::runner::holder::serve_if_asked();
    // runc's command line: as `foxbox oci ...`, or through a link named `foxbox-runc`.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(args) = cli::oci::wanted(&argv) {
        return ExitCode::from(cli::oci::main(args));
    }
    let args = match cli::parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            // podman's convention: 125 for errors of foxbox itself, usage errors included.
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    ExitCode::from(cli::main(args))
}
