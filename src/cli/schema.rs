use clap::Args;

use super::{not_yet, CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(_a: SchemaArgs, _ctx: &Ctx) -> CmdResult {
    not_yet("schema")
}
