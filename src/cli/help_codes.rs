//! `foxbox codes`: every diagnostic code foxbox reports, from the one registry.

use clap::Args;

use foxbox::diag::codes::ALL;

use super::ctx::{CmdResult, Format};
use super::fail::OrFail;

#[derive(Debug, Args)]
pub struct CodesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(a: CodesArgs) -> CmdResult {
    match a.format {
        Format::Json => {
            let text =
                serde_json::to_string_pretty(ALL).or_fail(foxbox::diag::codes::cli::OUTPUT)?;
            super::ctx::out(&format!("{text}\n"));
        }
        Format::Human => {
            let mut out = String::new();
            for c in ALL {
                let about = c.about.split_whitespace().collect::<Vec<_>>().join(" ");
                out.push_str(&format!("{:<36} {about}\n", c.code));
            }
            super::ctx::out(&out);
        }
    }
    Ok(0)
}
