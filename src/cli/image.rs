use std::path::PathBuf;

use clap::{Args, Subcommand};
use foxbox::diag::codes;
use foxbox::image::{reference, Image, ImageError, ImageName, PullContext, Removed, Store};
use foxbox::oci::{Client, Settings};
use foxbox::plan::box_rootfs::Layers;
use serde::Serialize;

use super::ctx::{CmdResult, Ctx};
use super::fail::{Failure, OrFail};
use super::human;
use super::template::ListFormat;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import a rootfs tarball (.tar, .tar.gz) as an image.
    Import(ImportArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove images.
    Rm(RmArgs),
    /// Show images in detail as JSON.
    Inspect(InspectArgs),
    /// Give an image another name: `image tag SOURCE TARGET`.
    Tag(TagArgs),
    /// Push an image to a registry (as `foxbox push`).
    Push(super::push::PushArgs),
    /// Remove the build cache's unnamed images that no box uses (and the layers only they had).
    Prune(PruneArgs),
    /// Show an image's layers newest first, with the build step that made each, its size and
    /// its creation time.
    History(HistoryArgs),
    /// Write an image as an OCI image layout (a directory, or FILE.tar: an OCI archive).
    Save(SaveArgs),
    /// Load the images of an OCI image layout directory or archive (`image save`, `skopeo copy ... oci:DIR`).
    Load(LoadArgs),
    /// Find an image as a box would (stored, else pulled when it names a registry or is a
    /// short name), and print it as JSON (tests, debugging).
    #[command(hide = true)]
    Resolve(ResolveArgs),
    /// Prepare a box rootfs directory for an image and print it as JSON (benchmarks, debugging).
    #[command(hide = true)]
    PrepareRootfs(PrepareArgs),
    /// Remove a directory made by prepare-rootfs.
    #[command(hide = true)]
    RemoveRootfs(RemoveRootfsArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tarball.
    pub file: PathBuf,
    /// Name and tag (default: the file name without .tar/.tar.gz, tag latest).
    #[arg(long, value_name = "NAME[:TAG]")]
    pub name: Option<String>,
    /// Set the image's config with a Dockerfile instruction, as podman's: 'CMD ["/bin/sh"]',
    /// 'ENTRYPOINT ...', 'ENV K=V', 'WORKDIR /dir', 'USER name'. Repeatable.
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show the build cache's images too (each step's, unnamed).
    #[arg(short, long)]
    pub all: bool,
    /// Print only image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// `json`, or a Go template ('{{.Repository}}:{{.Tag}}', 'table {{.ID}}\t{{.Size}}').
    #[arg(long, default_value = "human", value_name = "FORMAT")]
    pub format: ListFormat,
    /// Do not truncate ids.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: name[:tag] or id (prefix).
    pub source: String,
    /// The new name, NAME[:TAG] (moved off any image that has it).
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Images by name[:tag] or id (prefix).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even when a box uses it.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Print nothing.
    #[arg(short, long)]
    pub quiet: bool,
    /// Remove the builds' cache mounts (`cache` of `run` steps, `RUN --mount=type=cache`)
    /// that no running build uses, too.
    #[arg(long)]
    pub cache_mounts: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The image: name[:tag] or id (prefix).
    pub image: String,
    /// Show the steps in full (not cut to fit a line).
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(long, value_enum, default_value_t = super::ctx::Format::Human)]
    pub format: super::ctx::Format,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The image: name[:tag] or id (prefix).
    pub image: String,
    /// Where to write: a directory (created, or an existing OCI layout to add to), or a file
    /// ending in .tar.
    #[arg(short, long, value_name = "DIR|FILE.tar")]
    pub output: PathBuf,
    /// Print nothing.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The OCI layout directory or archive.
    #[arg(short, long, value_name = "DIR|FILE.tar")]
    pub input: PathBuf,
    /// The platform to choose from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<foxbox::oci::Platform>,
    /// Print only the image ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// NAME[:TAG][@sha256:DIGEST]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    pub image: String,
    /// The box directory (its rootfs/ is created inside).
    pub box_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct RemoveRootfsArgs {
    pub box_dir: PathBuf,
}

fn open(ctx: &Ctx) -> Result<Store, Failure> {
    Store::open(&ctx.paths()?).or_fail(codes::image::STORE)
}

pub fn run(cmd: ImageCommand, ctx: &Ctx) -> CmdResult {
    if let ImageCommand::Push(a) = cmd {
        return super::push::run(a, ctx);
    }
    let mut store = open(ctx)?;
    match cmd {
        ImageCommand::Import(a) => import(&mut store, a),
        ImageCommand::Ls(a) => ls(&store, a),
        ImageCommand::Rm(a) => Ok(rm(&store, a, ctx.color_stderr())),
        ImageCommand::Inspect(a) => inspect(&store, a),
        ImageCommand::Save(a) => save(&store, a),
        ImageCommand::Push(_) => Ok(0),
        ImageCommand::History(a) => history(&store, a),
        ImageCommand::Prune(a) => {
            let gone = store.prune_build_cache().or_fail(codes::image::STORE)?;
            if !a.quiet {
                for id in &gone {
                    println!("{id}");
                }
            }
            if a.cache_mounts {
                let mounts = store.prune_cache_mounts().or_fail(codes::image::STORE)?;
                if !a.quiet {
                    for id in &mounts {
                        println!("cache mount {id}");
                    }
                }
            }
            Ok(0)
        }
        ImageCommand::Tag(a) => {
            let target = ImageName::parse(&a.target).or_fail(codes::image::NAME)?;
            store.tag(&a.source, &target).or_fail(codes::image::STORE)?;
            Ok(0)
        }
        ImageCommand::Resolve(a) => {
            let image_ref = foxbox::plan::ImageRef::Stored(
                ImageName::parse(&a.image).or_fail(codes::image::NAME)?,
            );
            let settings =
                Settings::from_env().map_err(|e| failure!(codes::registry::SETTINGS, "{e}"))?;
            let client = Client::new(settings);
            let image = store
                .resolve_or_pull(&image_ref, &PullContext::new(&client))
                .or_fail(codes::image::RESOLVE)?;
            print_json(&image)?;
            Ok(0)
        }
        ImageCommand::Load(a) => load(&store, a),
        ImageCommand::PrepareRootfs(a) => {
            let image = store.lookup(&a.image).or_fail(codes::image::STORE)?;
            let layers = store
                .prepare_box_rootfs(&image, &a.box_dir)
                .or_fail(codes::image::STORE)?;
            print_json(&rootfs_view(&layers))?;
            Ok(0)
        }
        ImageCommand::RemoveRootfs(a) => {
            store
                .remove_box_rootfs(&a.box_dir)
                .or_fail(codes::image::STORE)?;
            Ok(0)
        }
    }
}

/// What `prepare-rootfs` prints: the directories in overlayfs's terms (`lower_dirs` top
/// first, as `lowerdir=` takes them; `copy` when `upper` is a copy to bind instead).
fn rootfs_view(layers: &Layers) -> serde_json::Value {
    match layers {
        Layers::Overlay { lower, upper } => {
            let (up, work) = match upper {
                Some(u) => (u.upper.clone(), u.work.clone()),
                None => Default::default(),
            };
            serde_json::json!({
                "lower_dirs": lower.iter().rev().collect::<Vec<_>>(),
                "upper": up,
                "work": work,
                "copy": false,
                "userxattr": true,
            })
        }
        Layers::Dir(dir) => {
            serde_json::json!({
                "lower_dirs": [],
                "upper": dir,
                "work": dir.with_file_name("work"),
                "copy": true,
                "userxattr": true,
            })
        }
    }
}

fn import(store: &mut Store, a: ImportArgs) -> CmdResult {
    let name = match &a.name {
        Some(n) => ImageName::parse(n).or_fail(codes::image::NAME)?,
        None => {
            let stem = reference::name_from_file(&a.file).ok_or_else(|| {
                failure!(codes::image::NAME, "{} has no file name", a.file.display())
            })?;
            ImageName::parse(&stem).map_err(|e| {
                failure!(
                    codes::image::NAME,
                    help = "name it with --name NAME[:TAG]",
                    "cannot name the image after the file: {e}"
                )
            })?
        }
    };
    if name.digest().is_some() {
        return Err(failure!(
            codes::image::NAME,
            "--name takes NAME[:TAG]; the digest is the file's own sha256"
        ));
    }
    let mut config = foxbox::image::ImageConfig::default();
    for c in &a.change {
        foxbox::image::change::apply(&mut config, c).map_err(|e| {
            failure!(
                codes::cli::USAGE,
                help = r#"write e.g. --change 'CMD ["/bin/sh"]' or --change 'ENV KEY=VALUE'"#,
                "--change {c:?}: {e}"
            )
        })?;
    }
    store.set_progress(true);
    let image = store
        .import_with(&a.file, Some(&name), config)
        .map_err(|e| {
            let text = format!("cannot import {}: {e}", a.file.display());
            // A full disk is named by the store it holds, not by the OS's bare words.
            let text = foxbox::store::space::explain(&text, store.dir()).unwrap_or(text);
            failure!(codes::image::STORE, "{text}")
        })?;
    println!("{}", image.hex());
    Ok(0)
}

/// podman's sizes: SI units, three significant digits ("4.27 MB").
pub(super) fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s} {}", units[i])
}

fn short_id(img: &Image, no_trunc: bool) -> String {
    if no_trunc {
        img.id.clone()
    } else {
        img.hex().chars().take(12).collect()
    }
}

#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    image: &'a Image,
    /// Boxes that use it.
    users: Vec<String>,
}

fn ls(store: &Store, a: LsArgs) -> CmdResult {
    let mut images = store.list().or_fail(codes::image::STORE)?;
    // Build steps stay out of the list until named, but with `-a`.
    if !a.all {
        let steps = store.build_step_ids();
        images.retain(|i| !i.names.is_empty() || !steps.contains(&i.id));
    }
    if a.format == ListFormat::Json {
        let v: Vec<Listed> = images
            .iter()
            .map(|i| Listed {
                image: i,
                users: store.users(&i.id),
            })
            .collect();
        print_json(&v)?;
        return Ok(0);
    }
    if a.quiet {
        for i in &images {
            println!("{}", short_id(i, a.no_trunc));
        }
        return Ok(0);
    }
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut fields = Vec::new();
    for i in &images {
        let names: Vec<(String, String)> = if i.names.is_empty() {
            // Pulled by digest alone: podman shows the repository without a tag.
            let repo = i
                .repo_digests
                .first()
                .and_then(|d| d.rsplit_once('@'))
                .map_or("<none>", |(r, _)| r);
            vec![(repo.into(), "<none>".into())]
        } else {
            i.names
                .iter()
                .map(|n| match n.rsplit_once(':') {
                    Some((r, t)) => (r.to_string(), t.to_string()),
                    None => (n.clone(), "<none>".into()),
                })
                .collect()
        };
        for (repo, tag) in names {
            if let ListFormat::Template(_) = a.format {
                // podman's template fields, one item per name as its table rows.
                fields.push(serde_json::json!({
                    "Repository": repo,
                    "Tag": tag,
                    "ID": short_id(i, a.no_trunc),
                    "Id": i.id,
                    "Names": i.names,
                    "Digest": i.manifest,
                    "Created": i.created,
                    "CreatedSince": human::ago(i.created),
                    "Size": human_size(i.size),
                    "VirtualSize": i.size,
                }));
            }
            rows.push([
                repo,
                tag,
                short_id(i, a.no_trunc),
                human::ago(i.created),
                human_size(i.size),
            ]);
        }
    }
    if let ListFormat::Template(t) = &a.format {
        print!(
            "{}",
            t.render(&fields)
                .map_err(|e| failure!(codes::cli::USAGE, "--format: {e}"))?
        );
        return Ok(0);
    }
    let head = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (k, c) in r.iter().enumerate() {
            w[k] = w[k].max(c.len());
        }
    }
    let line = |c: [&str; 5]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        )
    };
    println!("{}", line(head));
    for r in &rows {
        println!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    Ok(0)
}

/// podman's exit codes for rmi: 1 an image did not exist, 2 an image is in use, 125 other.
fn rm(store: &Store, a: RmArgs, color: bool) -> u8 {
    let mut code = 0u8;
    for what in &a.images {
        match store.remove(what, a.force) {
            Ok(Removed::Untagged(n)) => println!("Untagged: {n}"),
            Ok(Removed::Deleted { id, names }) => {
                for n in names {
                    println!("Untagged: {n}");
                }
                println!("Deleted: {}", id.strip_prefix("sha256:").unwrap_or(&id));
            }
            Err(e) => {
                let d = foxbox::diag::Diagnostic::from_error(codes::image::STORE, &e);
                super::ctx::err(&Failure::new(d).render(color));
                let c = match e {
                    ImageError::NotFound { .. } => 1,
                    ImageError::InUse { .. } => 2,
                    _ => 125,
                };
                if code == 0 || c > code {
                    code = c;
                }
            }
        }
    }
    code
}

fn inspect(store: &Store, a: InspectArgs) -> CmdResult {
    let images = a
        .images
        .iter()
        .map(|n| store.lookup(n))
        .collect::<Result<Vec<Image>, _>>()
        .or_fail(codes::image::STORE)?;
    let v: Vec<Listed> = images
        .iter()
        .map(|i| Listed {
            image: i,
            users: store.users(&i.id),
        })
        .collect();
    print_json(&v)?;
    Ok(0)
}

fn history(store: &Store, a: HistoryArgs) -> CmdResult {
    let rows = store.history(&a.image).or_fail(codes::image::STORE)?;
    if a.format == super::ctx::Format::Json {
        print_json(&rows)?;
        return Ok(0);
    }
    let mut t = vec![vec![
        "LAYER".to_string(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
    ]];
    for r in rows {
        let layer = r.layer.as_deref().map_or("<none>".to_string(), |d| {
            d.trim_start_matches("sha256:").chars().take(12).collect()
        });
        let by = if a.no_trunc || r.created_by.chars().count() <= 45 {
            r.created_by.clone()
        } else {
            format!("{}...", r.created_by.chars().take(42).collect::<String>())
        };
        t.push(vec![
            layer,
            super::human::ago(r.created),
            by,
            human_size(r.size).replace(' ', ""),
        ]);
    }
    print!("{}", super::template::columns(&t));
    Ok(0)
}

fn save(store: &Store, a: SaveArgs) -> CmdResult {
    let saved = store.save(&a.image, &a.output).map_err(|e| {
        failure!(
            codes::image::SAVE,
            "cannot save {} to {}: {e}",
            a.image,
            a.output.display()
        )
    })?;
    if !a.quiet {
        let kind = if foxbox::image::oci::is_archive(&a.output) {
            "OCI archive"
        } else {
            "OCI layout"
        };
        println!(
            "Saved {} ({}) to {kind} {}{}",
            saved.id.strip_prefix("sha256:").unwrap_or(&saved.id),
            saved.manifest,
            a.output.display(),
            saved.name.map(|n| format!(" as {n}")).unwrap_or_default()
        );
    }
    Ok(0)
}

fn load(store: &Store, a: LoadArgs) -> CmdResult {
    let settings = Settings::from_env().map_err(|e| failure!(codes::registry::SETTINGS, "{e}"))?;
    let client = Client::new(settings);
    let bars = if a.quiet {
        super::pull::Bars::new(false)
    } else {
        super::pull::Bars::for_stderr()
    };
    let mut ctx = PullContext::new(&client);
    ctx.platform = a.platform.clone();
    ctx.progress = &bars;
    let result = store.load(&a.input, &ctx);
    bars.finish();
    let loaded = result
        .map_err(|e| failure!(codes::image::LOAD, "cannot load {}: {e}", a.input.display()))?;
    for p in &loaded {
        if a.quiet {
            println!("{}", p.image.hex());
        } else if p.names.is_empty() {
            println!("Loaded image: {}", p.image.hex());
        } else {
            for n in &p.names {
                println!("Loaded image: {n} ({})", p.image.hex());
            }
        }
    }
    Ok(0)
}

fn print_json<T: Serialize>(v: &T) -> Result<(), Failure> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).or_fail(codes::cli::OUTPUT)?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_podman() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1500), "1.5 kB");
        assert_eq!(human_size(4_270_000), "4.27 MB");
        assert_eq!(human_size(123_456_789), "123 MB");
        assert_eq!(human_size(10_000_000_000), "10 GB");
    }
}
