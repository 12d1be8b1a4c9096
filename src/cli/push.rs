//! `foxbox push IMAGE [DESTINATION]` (also `image push`): an image of the store to a registry.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use foxbox::diag::codes;
use foxbox::image::push::{self, PushOptions};
use foxbox::image::Store;
use foxbox::oci::{Client, Reference};

use super::ctx::{CmdResult, Ctx};
use super::fail::OrFail;
use super::pull::{creds_flag, settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestFormat {
    /// OCI image manifest (what foxbox makes).
    Oci,
    /// Docker image manifest v2, schema 2 (layers gzipped).
    Docker,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image in the store: NAME[:TAG] or an id.
    pub image: String,
    /// Where to: REGISTRY/NAME[:TAG] (default: IMAGE, which must then name a registry).
    pub destination: Option<String>,
    /// Credentials for this push, instead of the auth files.
    #[arg(long, value_name = "USER[:PASSWORD]")]
    pub creds: Option<String>,
    /// A directory of CA certificates (*.crt) to trust for this registry.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Require HTTPS with verified certificates (false: allow plain HTTP and any certificate).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// The manifest format (default: the image's own; OCI for images foxbox makes). The
    /// config blob is the same in both, so the image id stays; the manifest digest differs.
    #[arg(long, value_enum)]
    pub format: Option<ManifestFormat>,
    /// Upload blobs larger than SIZE in chunks of SIZE (e.g. 16m; default: each in one request).
    #[arg(long, value_name = "SIZE", value_parser = chunk_size)]
    pub chunk_size: Option<u64>,
    /// Print nothing but the manifest digest.
    #[arg(short, long)]
    pub quiet: bool,
}

fn chunk_size(text: &str) -> Result<u64, String> {
    match foxbox::plan::units::parse_size(text) {
        Ok(0) => Err("a chunk size must be more than 0 bytes".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run(a: PushArgs, ctx: &Ctx) -> CmdResult {
    let dest_text = a.destination.as_deref().unwrap_or(&a.image);
    let dest =
        Reference::parse(dest_text).map_err(|e| failure!(codes::registry::REFERENCE, "{e}"))?;
    if dest.short_name {
        return Err(failure!(
            codes::registry::REFERENCE,
            help = "give the destination with its registry, e.g. 127.0.0.1:5000/app:1",
            "{dest_text} names no registry: foxbox does not push to docker.io by default"
        ));
    }
    let mut client = Client::new(settings(a.cert_dir, a.tls_verify)?);
    if let Some(c) = &a.creds {
        client = client.with_credentials(&dest.registry, creds_flag(c));
    }
    let store = Store::open(&ctx.paths()?).or_fail(codes::image::STORE)?;
    let opts = PushOptions {
        format: a.format.map(|f| match f {
            ManifestFormat::Oci => push::ManifestFormat::Oci,
            ManifestFormat::Docker => push::ManifestFormat::Docker,
        }),
        chunk_size: a.chunk_size,
    };
    let pushed = store
        .push(&a.image, &dest, &client, &opts)
        .map_err(|e| failure!(codes::build::PUSH, "pushing {} to {dest}: {e}", a.image))?;
    if !a.quiet {
        eprintln!(
            "pushed {} to {dest}: {} blob(s) uploaded, {} mounted, {} already there",
            a.image, pushed.uploaded, pushed.mounted, pushed.present
        );
    }
    println!("{}", pushed.digest);
    Ok(0)
}
