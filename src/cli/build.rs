//! `foxbox build`: podman's shape, a TOML recipe or a Containerfile.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};

use foxbox::build::{self, Progress};
use foxbox::diag::{self, Diagnostic, RenderOptions, Source};
use foxbox::plan::Origin;
use foxbox::spec::build::Action;
use foxbox::spec::codes;

use super::ctx::{CmdResult, Ctx};

/// The recipe looked for in the context when `-f` is not given, in order.
const DEFAULT_FILES: &[&str] = &["Foxfile.toml", "Foxbox.toml", "Containerfile", "Dockerfile"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProgressMode {
    /// On a terminal: each `run` step's output in a window of its last lines, folded away
    /// when the step succeeds; off a terminal: plain.
    #[default]
    Auto,
    /// One line per step start and end, with each `run` step's output.
    Plain,
    /// Nothing but errors and the image id.
    Quiet,
}

/// Build an image from a recipe: a Foxfile.toml, the [build] table of a Foxbox.toml, or a
/// Containerfile/Dockerfile (the common subset).
///
/// Each step is a layer cached in the store by its parent, its text, the files it copies and
/// the build arguments it uses: a second build of the same recipe and context runs nothing.
/// The image id is printed on stdout.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The recipe (default: Foxfile.toml, else Foxbox.toml, Containerfile, Dockerfile, in
    /// CONTEXT). A name not ending in .toml is read as a Containerfile.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Name the image NAME[:TAG] (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Run every step again, ignoring the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Set a build argument declared in [build.args] (used as ${KEY} in steps).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Build only up to this stage (`[[build.stage]]` name, `FROM ... AS name`) and make it
    /// the image.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// A reproducible build: layer times are clamped to SOURCE_DATE_EPOCH, set (when the
    /// environment does not) from the last commit of the context's git repository.
    #[arg(long)]
    pub reproducible: bool,
    /// How to show progress.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// The directory `copy` reads (default: the recipe's `context`, else its directory).
    #[arg(value_name = "CONTEXT")]
    pub context: Option<PathBuf>,
}

struct Lines {
    on: bool,
    warnings: Vec<Diagnostic>,
}

impl Progress for Lines {
    fn step(&mut self, i: usize, n: usize, action: &Action) {
        if self.on {
            super::ctx::err(&format!(
                "[{i}/{n}] {} {}\n",
                action.keyword(),
                action.summary()
            ));
        }
    }

    fn done(&mut self, i: usize, n: usize, cached: bool, took: Duration) {
        if !self.on {
            return;
        }
        let what = if cached {
            "CACHED".to_string()
        } else {
            format!("done in {:.2}s", took.as_secs_f64())
        };
        super::ctx::err(&format!("[{i}/{n}] {what}\n"));
    }

    fn warn(&mut self, d: Diagnostic) {
        self.warnings.push(d);
    }

    fn merged(&mut self, images: &[String], took: Duration) {
        if self.on {
            super::ctx::err(&format!(
                "[merge] {} in {:.2}s\n",
                images.join(" "),
                took.as_secs_f64()
            ));
        }
    }
}

pub fn run(a: BuildArgs, ctx: &Ctx) -> CmdResult {
    build_image(a, ctx, true)
}

/// Build as `foxbox build` does; `print_id`: the image id on stdout (`up` keeps its stdout for
/// the box).
pub fn build_image(a: BuildArgs, ctx: &Ctx, print_id: bool) -> CmdResult {
    let color = ctx.color_stderr();
    let dir = a.context.clone().unwrap_or_else(|| PathBuf::from("."));
    let file = match &a.file {
        Some(f) => f.clone(),
        None => match DEFAULT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
        {
            Some(f) => f,
            None => {
                return Err(failure!(
                    codes::BUILD_NO_RECIPE,
                    help = "give the recipe with -f FILE",
                    "no Foxfile.toml, Foxbox.toml, Containerfile or Dockerfile in {}",
                    dir.display()
                ))
            }
        },
    };
    let mut tags = Vec::new();
    for t in &a.tags {
        match foxbox::image::reference::ImageName::parse(t) {
            Ok(r) => tags.push(r.full()),
            Err(e) => return Err(failure!(codes::BAD_IMAGE, "-t {t}: {e}")),
        }
    }
    let mut build_args = Vec::new();
    for kv in &a.build_args {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => build_args.push((k.to_string(), v.to_string())),
            _ => {
                return Err(failure!(
                    codes::BUILD_BAD_ARG,
                    help = "write --build-arg KEY=VALUE",
                    "--build-arg {kv:?} is not KEY=VALUE"
                ))
            }
        }
    }
    let (loaded, origin, locate): (_, _, foxbox::spec::build::Locate) =
        if build::containerfile::is_containerfile(&file) {
            let (l, o) = build::containerfile::load(&file);
            (l, o, Box::new(|d| d))
        } else {
            foxbox::spec::build::load(&file)
        };
    let render = |diags: &[Diagnostic]| {
        let located: Vec<Diagnostic> = diags.iter().cloned().map(&locate).collect();
        render(&located, &origin, color)
    };
    let (mut recipe, warnings) = match loaded {
        Ok(r) => r,
        Err(diags) => {
            super::ctx::err(&render(&diags));
            return Ok(125);
        }
    };
    super::ctx::err(&render(&warnings));
    // Each stage's `from` (a stage's own name is in no lock, so it stays as written).
    for stage in &mut recipe.stages {
        if let Err(m) = foxbox::spec::lock::pin_build_from(&mut stage.from, &file) {
            return Err(failure!(foxbox::diag::codes::compose::LOCK, "{m}"));
        }
    }
    if let Some(c) = &a.context {
        recipe.context = absolute(c);
    }
    let opts = build::Options {
        tags: tags.clone(),
        no_cache: a.no_cache,
        build_args,
        echo: a.progress != ProgressMode::Quiet,
        fold: a.progress == ProgressMode::Auto && std::io::stderr().is_terminal(),
        target: a.target.clone(),
        source_date_epoch: source_date_epoch(a.reproducible, &recipe.context)?,
    };
    let mut lines = Lines {
        on: a.progress != ProgressMode::Quiet,
        warnings: Vec::new(),
    };
    let paths = ctx.paths()?;
    let result = build::build(&paths, &recipe, &opts, &mut lines);
    super::ctx::err(&render(&lines.warnings));
    match result {
        Ok(image) => {
            if lines.on {
                let named = if tags.is_empty() {
                    String::new()
                } else {
                    format!(" as {}", tags.join(", "))
                };
                super::ctx::err(&format!("built {}{named}\n", image.id));
            }
            if print_id {
                super::ctx::out(&format!("{}\n", image.id));
            }
            Ok(0)
        }
        Err(e) => {
            super::ctx::err(&render(&e.diagnostics));
            Ok(125)
        }
    }
}

/// `SOURCE_DATE_EPOCH` from the environment; else, with `--reproducible`, the time of the
/// context's last git commit.
fn source_date_epoch(
    reproducible: bool,
    context: &Path,
) -> Result<Option<u64>, super::fail::Failure> {
    if let Some(v) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return v.trim().parse().map(Some).map_err(|_| {
            failure!(
                codes::BUILD_BAD_ARG,
                help = "give seconds since 1970, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)",
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            )
        });
    }
    if !reproducible {
        return Ok(None);
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(context)
        .args(["log", "-1", "--format=%ct"])
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| failure!(codes::BUILD_BAD_ARG, "git log gave no commit time")),
        _ => Err(failure!(
            codes::BUILD_BAD_ARG,
            help = "set SOURCE_DATE_EPOCH, or build from a git repository with a commit",
            "--reproducible: {} is not in a git repository with a commit",
            context.display()
        )),
    }
}

fn render(diags: &[Diagnostic], origin: &Origin, color: bool) -> String {
    if diags.is_empty() {
        return String::new();
    }
    let mut name = String::new();
    let src = Source::of_origin(origin, &mut name);
    let src = Source {
        text: src.text.filter(|t| !t.is_empty()),
        ..src
    };
    diag::render_source(
        diags,
        src,
        RenderOptions {
            color,
            ..RenderOptions::default()
        },
    )
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(p)
    }
}
