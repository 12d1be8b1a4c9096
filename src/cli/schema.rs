use clap::Args;

use super::ctx::{CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(_a: SchemaArgs, _ctx: &Ctx) -> CmdResult {
    super::ctx::out(&foxbox::spec::schema::schema_json());
    Ok(0)
}
