use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};

use foxbox::diag::{self, codes, Diagnostic};
use foxbox::export::{bundle, kube, ExportError};
use foxbox::plan::Plan;
use foxbox::spec::Overrides;

use super::ctx::{CmdResult, Ctx};
use super::fail::Failure;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("format").required(true).args(["kube", "oci_bundle"])))]
pub struct ExportArgs {
    /// The spec file (default: ./Foxbox.toml).
    #[arg(value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Write a Kubernetes Pod manifest (YAML) to stdout or `-o FILE`.
    #[arg(long)]
    pub kube: bool,
    /// The image reference the Pod pulls (the one pushed to a registry) instead of the spec's.
    #[arg(long, value_name = "REF", requires = "kube")]
    pub image: Option<String>,
    /// With --kube: the file to write (atomically); a seccomp profile goes beside it.
    #[arg(short = 'o', long = "output", value_name = "FILE", requires = "kube")]
    pub output: Option<PathBuf>,
    /// Write an OCI runtime bundle (rootfs/ and config.json) to DIR (missing or empty).
    #[arg(long, value_name = "DIR")]
    pub oci_bundle: Option<PathBuf>,
    /// Name of the box (as `up --name`): the Pod's name, the bundle's hostname.
    #[arg(long)]
    pub name: Option<String>,
}

fn fail(code: &'static str, e: &ExportError) -> Failure {
    let d = Diagnostic::from_error(code, e);
    let d = match e {
        ExportError::NotEmpty { .. } => d.with_help("name a new directory, or empty this one"),
        _ => d,
    };
    Failure::new(d)
}

pub fn run(a: ExportArgs, ctx: &Ctx) -> CmdResult {
    let path = a.spec.unwrap_or_else(|| PathBuf::from("Foxbox.toml"));
    let overrides = Overrides {
        name: a.name,
        ..Overrides::default()
    };
    let plan = super::plan::load_plan(&path, &overrides, ctx)?;
    let color = ctx.color_stderr();
    if let Some(dir) = a.oci_bundle {
        let paths = ctx.paths()?;
        let written = bundle::write_bundle(&paths, &plan, &dir).map_err(|e| {
            let code = match e {
                ExportError::Image(_) => codes::export::IMAGE,
                _ => codes::export::OUTPUT,
            };
            fail(code, &e)
        })?;
        super::ctx::err(&diag::render(&written.warnings, &plan.origin, color));
        super::ctx::err(&format!(
            "wrote an OCI bundle of {} at {} (run it with `runc run --bundle {} ID`)\n",
            written.image,
            dir.display(),
            dir.display()
        ));
        return Ok(0);
    }
    kube_out(&path, &plan, a.image.as_deref(), a.output.as_deref(), ctx)
}

fn kube_out(
    spec: &Path,
    plan: &Plan,
    image: Option<&str>,
    output: Option<&Path>,
    ctx: &Ctx,
) -> CmdResult {
    let color = ctx.color_stderr();
    let dir_name = foxbox::spec::spec_dir(spec)
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "foxbox".into());
    let boxed = ctx
        .paths()
        .ok()
        .and_then(|p| foxbox::runner::box_plan::preview(&p, plan).ok().flatten());
    let k = kube::pod_from_plan(plan, boxed.as_ref(), image, &dir_name).map_err(|e| {
        let code = match e {
            ExportError::Image(_) => codes::export::IMAGE,
            _ => codes::export::OUTPUT,
        };
        fail(code, &e)
    })?;
    super::ctx::err(&diag::render(&k.warnings, &plan.origin, color));
    let beside = match output.and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut profile_written = None;
    if let Some((file, source)) = &k.seccomp_profile {
        let text = std::fs::read(source).map_err(|e| {
            failure!(
                codes::export::OUTPUT,
                "cannot read the seccomp profile {}: {e}",
                source.display()
            )
        })?;
        let dest = beside.join(file);
        let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
        // Beside the spec's own profile, the profile is there already.
        if !same(&dest, source) {
            foxbox::store::atomic::write_file(&dest, &text)
                .map_err(|e| Failure::new(Diagnostic::from_error(codes::export::OUTPUT, &e)))?;
            profile_written = Some(dest.clone());
        }
        super::ctx::err(&format!(
            "the Pod names the seccomp profile {} (copy it into the kubelet's seccomp \
             directory, /var/lib/kubelet/seccomp/ by default)\n",
            dest.display()
        ));
    }
    match output {
        None => super::ctx::out(&k.yaml),
        Some(out) => {
            if let Err(e) = foxbox::store::atomic::write_file(out, k.yaml.as_bytes()) {
                if let Some(p) = profile_written {
                    let _ = std::fs::remove_file(p);
                }
                return Err(Failure::new(Diagnostic::from_error(
                    codes::export::OUTPUT,
                    &e,
                )));
            }
        }
    }
    Ok(0)
}
