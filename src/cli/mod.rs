//! Command-line definitions (one file per command) and the glue that runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use ctx::{err, Color, Ctx};

#[macro_use]
mod fail;
mod build;
mod check;
mod completions;
pub mod ctx;
mod diff;
mod exec;
mod export;
mod fast_parse;
mod help_codes;
mod human;
mod image;
mod lifecycle;
mod lint;
mod lock;
mod login;
pub mod oci;
mod plan;
mod ps;
mod pull;
mod push;
mod run;
mod run_flags;
mod schema;
mod stats;
mod system;
mod template;
mod test;
mod up;
mod volume;

/// foxbox: rootless boxes from a committed Foxbox.toml.
#[derive(Debug, Parser)]
#[command(name = "foxbox", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,

    #[command(subcommand)]
    pub command: Command,
}

/// The options every command takes.
#[derive(Debug, Args)]
pub struct Globals {
    /// The store directory (images, boxes, volumes); overrides FOXBOX_ROOT.
    #[arg(long, global = true, value_name = "DIR", env = "FOXBOX_ROOT")]
    pub root: Option<PathBuf>,

    /// Log level for foxbox's own tracing on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, value_name = "LEVEL", default_value = "warn")]
    pub log_level: String,

    /// When to use colour in diagnostics (NO_COLOR is honoured with `auto`).
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

#[derive(Debug, Subcommand)]
// `run`'s flags make its variant large; the enum exists once per process.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Check box specs for errors (and, with --host, what this host cannot honour).
    ///
    /// A spec is read with its bases (`extends`), its variables (`${NAME}`, `${NAME:-default}`,
    /// `${NAME:?message}`, `$$`; from the environment, then `.env` or `env_file`) and a
    /// `Foxbox.local.toml` beside it (merged last). `--strict` refuses what a base widens of the
    /// box's isolation, and bases outside the repository.
    Check(check::CheckArgs),
    /// Check box specs against safety rules (FB001...); exit 1 on an error-severity finding.
    Lint(lint::LintArgs),
    /// Compare the plans of two specs (a file or REV:PATH); exit 1 when they differ.
    Diff(diff::DiffArgs),
    /// Run a spec's [[test]] entries, each in a fresh box; exit 1 when one fails.
    Test(test::TestArgs),
    /// Print the ordered steps the executor will run for a spec.
    Plan(plan::PlanArgs),
    /// Pin the images a spec and its bases name in NAME.lock beside it (--check: exit 1 when
    /// stale).
    ///
    /// Tags are resolved through the image store (a registry image by its manifest digest, a
    /// local one by its id), tarballs by their file digest. `up`, `plan` and `check` use the
    /// locked digest of the spec's image when a lock exists, and warn when it is stale.
    Lock(lock::LockArgs),
    /// Run a box from a spec (./Foxbox.toml by default).
    Up(up::UpArgs),
    /// Run a box from an image and podman-style flags.
    Run(Box<run_flags::RunArgs>),
    /// Export a spec as a Kubernetes Pod (--kube) or an OCI runtime bundle (--oci-bundle DIR).
    Export(export::ExportArgs),
    /// Build an image from a recipe (Foxfile.toml, a Foxbox.toml's [build] table, a Containerfile).
    Build(build::BuildArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// List images (`image ls`, as podman's `images`).
    Images(image::LsArgs),
    /// Pull an image from a registry.
    Pull(pull::PullArgs),
    /// Push an image to a registry: push IMAGE [REGISTRY/NAME[:TAG]].
    Push(push::PushArgs),
    /// Log in to a registry (credentials stored 0600 in $XDG_CONFIG_HOME/foxbox/auth.json).
    Login(login::LoginArgs),
    /// Manage named volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Run a command inside a running box.
    Exec(exec::ExecArgs),
    /// List boxes.
    Ps(ps::PsArgs),
    /// Show the processes running in a box.
    Top(ps::TopArgs),
    /// List a box's port forwards (BOX_PORT/PROTO -> HOST_ADDR:HOST_PORT), as podman's.
    Port(ps::PortArgs),
    /// Show a box's stored logs.
    Logs(lifecycle::LogsArgs),
    /// Show boxes in detail as JSON.
    Inspect(ps::InspectArgs),
    /// Stop boxes (SIGTERM, then SIGKILL after a timeout).
    Stop(lifecycle::StopArgs),
    /// Send a signal to boxes.
    Kill(lifecycle::KillArgs),
    /// Remove boxes.
    Rm(lifecycle::RmArgs),
    /// Wait for boxes to exit and print their exit codes.
    ///
    /// A detached `--rm` box's code is kept for five minutes after it is removed: its id
    /// finds it then.
    Wait(lifecycle::WaitArgs),
    /// Show what running boxes use: memory, cpu time, processes (from their cgroups).
    Stats(stats::StatsArgs),
    /// The store as a whole: check (and repair) it, show its disk use, prune what is unused.
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Print the JSON Schema of Foxbox.toml.
    Schema(schema::SchemaArgs),
    /// List every diagnostic code foxbox reports, with what it means.
    Codes(help_codes::CodesArgs),
    /// Print shell completions.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff).
    Man(completions::ManArgs),
    /// Act as an OCI runtime with runc's command line (`foxbox oci --help`); also what a link
    /// named `foxbox-runc` runs, for podman, conmon and containerd.
    Oci(oci::OciArgs),
}

impl Command {
    /// Whether the command only reads and prints: it may then die of SIGPIPE when its reader
    /// goes away (`foxbox ps | head -1`), quietly, as other command-line tools do. The others
    /// keep SIGPIPE ignored (Rust's default): they start boxes, supervisors and helpers, talk to
    /// them over pipes and sockets, and must see a gone peer as an error, not die of it.
    fn only_prints(&self) -> bool {
        match self {
            Command::Check(_)
            | Command::Lint(_)
            | Command::Diff(_)
            | Command::Plan(_)
            | Command::Ps(_)
            | Command::Top(_)
            | Command::Port(_)
            | Command::Images(_)
            | Command::Logs(_)
            | Command::Inspect(_)
            | Command::Wait(_)
            | Command::Stats(_)
            | Command::Schema(_)
            | Command::Codes(_)
            | Command::Completions(_)
            | Command::Man(_) => true,
            Command::Image(c) => matches!(
                c,
                image::ImageCommand::Ls(_) | image::ImageCommand::Inspect(_)
            ),
            Command::Volume(c) => {
                matches!(
                    c,
                    volume::VolumeCommand::Ls(_) | volume::VolumeCommand::Inspect(_)
                )
            }
            Command::Up(_)
            | Command::Run(_)
            | Command::Pull(_)
            | Command::Push(_)
            | Command::Login(_)
            | Command::Exec(_)
            | Command::Stop(_)
            | Command::Kill(_)
            | Command::Rm(_)
            | Command::Build(_)
            | Command::Export(_)
            | Command::Test(_)
            | Command::Lock(_)
            | Command::System(_)
            | Command::Oci(_) => false,
        }
    }
}

pub use fast_parse::parse;

pub fn main(cli: Cli) -> u8 {
    init_tracing(&cli.globals.log_level);
    let ctx = Ctx {
        root: cli.globals.root,
        color: cli.globals.color,
    };
    let color = ctx.color_stderr();
    if cli.command.only_prints() {
        foxbox::runner::default_sigpipe();
    }
    let result = match cli.command {
        Command::Check(a) => check::run(a, &ctx),
        Command::Lint(a) => lint::run(a, &ctx),
        Command::Diff(a) => diff::run(a, &ctx),
        Command::Test(a) => test::run(a, &ctx),
        Command::Plan(a) => plan::run(a, &ctx),
        Command::Lock(a) => lock::run(a, &ctx),
        Command::Up(a) => up::run(a, &ctx),
        Command::Run(a) => run::run(*a, &ctx),
        Command::Build(a) => build::run(a, &ctx),
        Command::Export(a) => export::run(a, &ctx),
        Command::Image(a) => image::run(a, &ctx),
        Command::Images(a) => image::run(image::ImageCommand::Ls(a), &ctx),
        Command::Volume(a) => volume::run(a, &ctx),
        Command::Pull(a) => pull::run(a, &ctx),
        Command::Push(a) => push::run(a, &ctx),
        Command::Login(a) => login::run(a, &ctx),
        Command::Exec(a) => exec::run(a, &ctx),
        Command::Ps(a) => ps::ps(a, &ctx),
        Command::Top(a) => ps::top(a, &ctx),
        Command::Port(a) => ps::port(a, &ctx),
        Command::Logs(a) => lifecycle::logs(a, &ctx),
        Command::Inspect(a) => ps::inspect(a, &ctx),
        Command::Stop(a) => lifecycle::stop(a, &ctx),
        Command::Kill(a) => lifecycle::kill(a, &ctx),
        Command::Rm(a) => lifecycle::rm(a, &ctx),
        Command::Wait(a) => lifecycle::wait(a, &ctx),
        Command::Stats(a) => stats::run(a, &ctx),
        Command::System(a) => system::run(a, &ctx),
        Command::Schema(a) => schema::run(a, &ctx),
        Command::Codes(a) => help_codes::run(a),
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => completions::man(a),
        Command::Oci(a) => {
            let mut args = vec![std::ffi::OsString::from("foxbox oci")];
            args.extend(a.args);
            return oci::main(args);
        }
    };
    match result {
        Ok(code) => code,
        Err(mut f) => {
            // A full disk is named by the store it holds, not by the OS's bare words.
            if let Ok(p) = ctx.paths() {
                for d in &mut f.diagnostics {
                    if let Some(text) = foxbox::store::space::explain(&d.message, &p.root) {
                        d.message = text;
                    }
                }
            }
            err(&f.render(color));
            f.exit
        }
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("foxbox={level}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("foxbox=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
