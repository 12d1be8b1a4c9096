use clap::Args;

use super::{CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(_a: SchemaArgs, _ctx: &Ctx) -> CmdResult {
    super::out(&foxbox::spec::schema::schema_json());
    Ok(0)
}
