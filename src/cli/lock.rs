//! `foxbox lock [SPEC]`: pin every image the spec and its bases name in `Foxbox.lock`;
//! `--check` exits 1 when the lock is stale (for CI).

use std::path::PathBuf;

use clap::Args;

use foxbox::diag::{self, codes, Diagnostic, RenderOptions, Source};
use foxbox::plan::ImageRef;
use foxbox::spec::{self, lock};

use super::ctx::{CmdResult, Ctx};
use super::fail::Failure;

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The spec file (default: ./Foxbox.toml); the lock is written beside it (NAME.lock).
    #[arg(value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Write nothing: exit 1 when the lock is missing or stale (a reference not in it, a
    /// tarball whose digest changed, an entry no reference uses), 0 when it is fresh.
    #[arg(long)]
    pub check: bool,
}

pub fn run(a: LockArgs, ctx: &Ctx) -> CmdResult {
    let path = a.spec.unwrap_or_else(|| PathBuf::from("Foxbox.toml"));
    let name = path.display().to_string();
    let text = spec::read_spec(&path).map_err(|e| {
        Failure::new(
            Diagnostic::error(spec::codes::READ, format!("cannot read {name}: {e}"))
                .with_help("check the path"),
        )
    })?;
    let (plan, diags) = spec::check_str(&text, &path, &spec::spec_dir(&path));
    let errors: Vec<Diagnostic> = diags
        .into_iter()
        .filter(|d| d.is_error() && d.code != codes::compose::LOCK)
        .collect();
    if plan.is_none() && !errors.is_empty() {
        return Err(Failure::in_text(errors, &name, &text, 125));
    }
    let (refs, comp, file) = spec::lock_inputs(&path)
        .map_err(|e| failure!(spec::codes::READ, "cannot read {name}: {e}"))?;
    let shown = path
        .parent()
        .map_or_else(
            || file.clone(),
            |p| p.join(file.file_name().unwrap_or_default()),
        )
        .display()
        .to_string();
    if a.check {
        let existing = match lock::read(&file) {
            Ok(Some(l)) => l,
            Ok(None) => {
                super::ctx::out(&format!(
                    "{shown}: missing (`foxbox lock {name}` writes it)\n"
                ));
                return Ok(1);
            }
            Err(m) => {
                super::ctx::out(&format!("{shown}: {m}\n"));
                return Ok(1);
            }
        };
        let stale: Vec<Diagnostic> = lock::stale(&refs, &existing, &shown)
            .into_iter()
            .map(|d| comp.locate(d))
            .collect();
        if stale.is_empty() {
            super::ctx::out(&format!("{shown}: fresh\n"));
            return Ok(0);
        }
        let opts = RenderOptions {
            color: ctx.color_stderr(),
            ..RenderOptions::default()
        };
        let src = Source {
            name: &name,
            text: Some(&text),
        };
        super::ctx::err(&diag::render_source(&stale, src, opts));
        super::ctx::out(&format!("{shown}: stale ({} problem(s))\n", stale.len()));
        return Ok(1);
    }
    let mut entries = Vec::new();
    let mut store = None;
    for r in &refs {
        let entry = match &r.kind {
            lock::Kind::Tarball(p) => {
                let digest = lock::file_digest(p).map_err(|e| {
                    failure!(
                        codes::compose::LOCK,
                        "cannot read the tarball {}: {e}",
                        r.key
                    )
                })?;
                lock::Entry {
                    reference: r.key.clone(),
                    kind: "tarball".into(),
                    digest,
                    platform: lock::host_platform(),
                }
            }
            lock::Kind::Image(n) => {
                if store.is_none() {
                    store = Some(
                        foxbox::image::Store::open(&ctx.paths()?)
                            .map_err(|e| failure!(codes::compose::LOCK, "{e}"))?,
                    );
                }
                let Some(s) = store.as_ref() else { continue };
                let image = s.resolve(&ImageRef::Stored(n.clone())).map_err(|e| {
                    failure!(
                        codes::compose::LOCK,
                        help = "pull, import or build it first (`foxbox pull`, `foxbox image import`, `foxbox build`)",
                        "cannot lock `{}`: {e}",
                        r.key
                    )
                })?;
                // A registry image is pinned by its manifest digest (what a registry serves
                // by digest); a local one by its id.
                let digest = image
                    .repo_digests
                    .iter()
                    .find_map(|d| d.split_once('@').map(|(_, d)| d.to_string()))
                    .unwrap_or_else(|| image.id.clone());
                lock::Entry {
                    reference: r.key.clone(),
                    kind: "image".into(),
                    digest,
                    platform: image.platform.clone().unwrap_or_else(lock::host_platform),
                }
            }
        };
        entries.push(entry);
    }
    let lock = lock::Lock {
        version: lock::VERSION,
        images: entries,
    };
    let rendered = lock::render(&lock);
    foxbox::store::atomic::write_file(&file, rendered.as_bytes())
        .map_err(|e| failure!(codes::compose::LOCK, "cannot write {shown}: {e}"))?;
    let n = lock.images.len();
    super::ctx::out(&format!(
        "{shown}: {n} image{} locked\n",
        if n == 1 { "" } else { "s" }
    ));
    Ok(0)
}
