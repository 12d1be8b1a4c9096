use std::path::PathBuf;

use clap::Args;

use foxbox::runner::RunOptions;
use foxbox::spec::Overrides;

use super::run::{start, Mode};
use super::{CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The spec file (default: ./Foxbox.toml).
    #[arg(value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Name of the box (overrides the spec's box.name).
    #[arg(long)]
    pub name: Option<String>,
    /// Remove the box when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the box id.
    #[arg(short, long)]
    pub detach: bool,
    /// Print how long each executor step took.
    #[arg(long)]
    pub timings: bool,
    /// Parent cgroup for the box, relative to each hierarchy's root.
    #[arg(long, env = "FOXBOX_CGROUP_PARENT", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// When to pull the image: missing (when not stored), always, never, or newer (pull, but
    /// use the stored image when the pull fails).
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = super::Pull::Missing)]
    pub pull: super::Pull,
    /// Command to run instead of the spec's.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(a: UpArgs, ctx: &Ctx) -> CmdResult {
    let path = a.spec.unwrap_or_else(|| PathBuf::from("Foxbox.toml"));
    // Resolved with the spec, never written over the plan after: `foxbox plan` given the
    // same flags prints what runs.
    let overrides = Overrides {
        name: a.name,
        command: a.command,
    };
    let plan = super::plan::load_plan(&path, &overrides, ctx)?;
    let opts = RunOptions {
        auto_remove: a.rm,
        cgroup_parent: a.cgroup_parent,
        tty: None,
        pull: a.pull.into(),
        volatile_upper: false,
    };
    let mode = if a.detach {
        Mode::Detached
    } else {
        Mode::Attached { timings: a.timings }
    };
    start(&plan, opts, mode, ctx)
}
