use std::path::{Path, PathBuf};

use clap::Args;

use foxbox::runner::RunOptions;
use foxbox::spec::Overrides;

use foxbox::plan::ImageRef;
use foxbox::spec::codes;

use super::build::{BuildArgs, ProgressMode};
use super::ctx::{CmdResult, Ctx};
use super::run::{start, Mode};

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
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = super::ctx::Pull::Missing)]
    pub pull: super::ctx::Pull,
    /// Build the spec's image first. A spec with a `[build]` table is built before every
    /// `up` anyway (its cached steps make that a no-op when nothing changed); `--build` says so
    /// explicitly, as Compose's flag does.
    #[arg(long)]
    pub build: bool,
    /// Run this instead of the spec's or the image's entrypoint, as `run --entrypoint`: a
    /// program, or a JSON array; '' clears it. The image's command is dropped: give one
    /// after `--`.
    #[arg(long, value_name = "PROGRAM|JSON")]
    pub entrypoint: Option<String>,
    /// Command to run instead of the spec's (after the entrypoint, the spec's or the image's).
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
        entrypoint: super::plan::entrypoint_override(a.entrypoint.as_deref())?,
    };
    let plan = super::plan::load_plan(&path, &overrides, ctx)?;
    if a.build || foxbox::spec::build::has_recipe(&path) {
        let code = build_first(&path, &plan, ctx)?;
        if code != 0 {
            return Ok(code);
        }
    }
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

/// Build the image a spec with `[build]` runs (its `box.image`), from the spec's recipe: a
/// stale image (a copied file or a step changed) is rebuilt from the first changed step, an
/// unchanged one costs the cache lookups.
fn build_first(path: &Path, plan: &foxbox::plan::Plan, ctx: &Ctx) -> CmdResult {
    if !foxbox::spec::build::has_recipe(path) {
        return Err(failure!(
            codes::BUILD_NO_RECIPE,
            help = "add a [build] table to the spec, or drop --build",
            "`up --build`: {} has no [build] table",
            path.display()
        ));
    }
    let ImageRef::Stored(name) = &plan.image.value else {
        return Err(failure!(
            codes::BAD_IMAGE,
            help = "name the image the [build] table makes in box.image, e.g. image = \"app:1\"",
            "a spec with [build] runs the image it builds: box.image must be a name, not a tarball"
        ));
    };
    let args = BuildArgs {
        file: Some(path.to_path_buf()),
        tags: vec![name.full()],
        no_cache: false,
        build_args: Vec::new(),
        target: None,
        reproducible: false,
        progress: ProgressMode::Auto,
        context: None,
    };
    super::build::build_image(args, ctx, false)
}
