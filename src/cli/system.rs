//! `foxbox system`: the store as a whole.

use clap::{Args, Subcommand};
use foxbox::diag::codes;

use super::ctx::{out, CmdResult, Ctx};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check the store: images' layers, box records, and nothing left that nothing refers to.
    ///
    /// Prints one problem a line (`KIND PATH: what is wrong`; KIND is a stable word) and exits
    /// 1 when there is one, 0 when the store is clean.
    Check(CheckArgs),
    /// Show the disk space images, boxes and volumes use (podman's `system df`).
    ///
    /// One line per kind: how many there are, how many are in use (images and volumes used by
    /// a box, boxes running), the space they use and what `system prune -a --volumes` would
    /// free.
    Df(DfArgs),
    /// Remove exited boxes and unused images (podman's `system prune`).
    ///
    /// Without -a only images without a name go; with --volumes also volumes no box uses.
    /// Prints what it removed and the space freed.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct DfArgs {
    #[arg(long, value_enum, default_value_t = super::ctx::Format::Human)]
    pub format: super::ctx::Format,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove every image no box uses, not only unnamed ones.
    #[arg(short, long)]
    pub all: bool,
    /// Remove volumes no box uses too.
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Fix what can safely be fixed (remove leftovers nothing refers to, record dead boxes as
    /// exited, release what boxes that do not run hold) and say what was done; exits 1 when
    /// problems remain.
    #[arg(long)]
    pub repair: bool,
}

pub fn run(cmd: SystemCommand, ctx: &Ctx) -> CmdResult {
    match cmd {
        SystemCommand::Check(a) => check(a, ctx),
        SystemCommand::Df(a) => df(a, ctx),
        SystemCommand::Prune(a) => prune(a, ctx),
    }
}

/// podman's df sizes: "4.27MB", "0B".
fn size(bytes: u64) -> String {
    super::image::human_size(bytes).replace(' ', "")
}

fn df(a: DfArgs, ctx: &Ctx) -> CmdResult {
    let usage = foxbox::runner::system::df(&ctx.paths()?)
        .map_err(|e| failure!(codes::boxes::STORE, "{e}"))?;
    if a.format == super::ctx::Format::Json {
        let text = serde_json::to_string_pretty(&usage)
            .map_err(|e| failure!(codes::cli::OUTPUT, "{e}"))?;
        out(&format!("{text}\n"));
        return Ok(0);
    }
    let mut text = format!(
        "{:<15}{:<12}{:<12}{:<12}{}\n",
        "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"
    );
    for u in &usage {
        let pct = (u.reclaimable * 100).checked_div(u.size).unwrap_or(0);
        text.push_str(&format!(
            "{:<15}{:<12}{:<12}{:<12}{} ({pct}%)\n",
            u.kind,
            u.total,
            u.active,
            size(u.size),
            size(u.reclaimable)
        ));
    }
    out(&text);
    Ok(0)
}

fn prune(a: PruneArgs, ctx: &Ctx) -> CmdResult {
    let paths = ctx.paths()?;
    if !a.force {
        let what = match (a.all, a.volumes) {
            (false, false) => {
                "all stopped boxes, all dangling (unnamed) images and the build cache mounts"
            }
            (true, false) => "all stopped boxes, all images no box uses and the build cache mounts",
            (false, true) => {
                "all stopped boxes, all dangling (unnamed) images, the build cache mounts and all volumes no box uses"
            }
            (true, true) => {
                "all stopped boxes, all images, the build cache mounts and all volumes no box uses"
            }
        };
        eprint!("WARNING! This removes {what}.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            eprintln!();
            return Err(failure!(
                codes::cli::USAGE,
                help = "answer y, or give -f to remove without asking",
                "nothing removed"
            ));
        }
    }
    let p = foxbox::runner::system::prune(&paths, a.all, a.volumes)
        .map_err(|e| failure!(codes::boxes::STORE, "{e}"))?;
    let mut text = String::new();
    for (title, list) in [
        ("Deleted Boxes", &p.boxes),
        ("Deleted Volumes", &p.volumes),
        ("Deleted Images", &p.images),
        ("Deleted Build Cache Mounts", &p.cache_mounts),
    ] {
        if !list.is_empty() {
            text.push_str(title);
            text.push('\n');
            for x in list {
                text.push_str(x);
                text.push('\n');
            }
        }
    }
    text.push_str(&format!("Total reclaimed space: {}\n", size(p.reclaimed)));
    out(&text);
    Ok(0)
}

fn check(a: CheckArgs, ctx: &Ctx) -> CmdResult {
    let paths = ctx.paths()?;
    let found = foxbox::runner::check::check(&paths);
    if !a.repair {
        let text: String = found.iter().map(|f| format!("{f}\n")).collect();
        out(&text);
        return Ok(u8::from(!found.is_empty()));
    }
    foxbox::runner::check::repair(&paths);
    let left = foxbox::runner::check::check(&paths);
    let mut text = String::new();
    for f in found.iter().filter(|f| !left.contains(f)) {
        text.push_str(&format!("repaired {f}\n"));
    }
    for f in &left {
        text.push_str(&format!("{f}\n"));
    }
    out(&text);
    Ok(u8::from(!left.is_empty()))
}
