//! `foxbox login REGISTRY`: check credentials against a registry and store them (0600) in
//! `$XDG_CONFIG_HOME/foxbox/auth.json`, containers' auth.json format.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use foxbox::diag::codes;
use foxbox::oci::auth::{store_credentials, Credentials};
use foxbox::oci::Client;

use super::ctx::{CmdResult, Ctx};
use super::fail::Failure;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: HOST[:PORT] (docker.io when omitted).
    pub registry: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (visible to other users in the process list: prefer --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Where to store the credentials (default: $XDG_CONFIG_HOME/foxbox/auth.json).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// A directory of CA certificates (*.crt) to trust for this registry.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Require HTTPS with verified certificates.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
}

/// `https://host:port/v2/` and Docker Hub's aliases as the key auth.json uses.
fn registry_key(arg: Option<&str>) -> Result<String, Failure> {
    let raw = arg.unwrap_or("docker.io");
    let r = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .unwrap_or(raw);
    let r = r.split('/').next().unwrap_or(r);
    let r = match r {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    };
    // Reuse the reference parser's registry rules on a dummy repository.
    let parsed = foxbox::oci::Reference::parse(&format!("{r}/x")).map_err(|_| {
        failure!(
            codes::cli::USAGE,
            "invalid registry {raw:?}: expected HOST[:PORT]"
        )
    })?;
    if parsed.short_name && r != "docker.io" {
        return Err(failure!(codes::cli::USAGE,
            "invalid registry {raw:?}: expected HOST[:PORT] (a host has a dot or a port, or is localhost)"
        ));
    }
    Ok(parsed.registry)
}

pub fn run(a: LoginArgs, _ctx: &Ctx) -> CmdResult {
    let registry = registry_key(a.registry.as_deref())?;
    let username = a.username.ok_or_else(|| {
        failure!(
            codes::cli::USAGE,
            "a username is required: foxbox login {registry} -u USER --password-stdin"
        )
    })?;
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut s)
            .map_err(|e| {
                failure!(
                    codes::cli::USAGE,
                    "reading the password from standard input: {e}"
                )
            })?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        a.password.ok_or_else(|| {
            failure!(
                codes::cli::USAGE,
                "no password: give --password-stdin (or -p)"
            )
        })?
    };
    if password.is_empty() {
        return Err(failure!(codes::cli::USAGE, "the password is empty"));
    }
    let settings = super::pull::settings(a.cert_dir, a.tls_verify)?;
    let file = match a.authfile {
        Some(f) => f,
        None => settings.login_auth_file().ok_or_else(|| {
            failure!(
                codes::cli::PATHS,
                "cannot find a config directory: set XDG_CONFIG_HOME or HOME"
            )
        })?,
    };
    let creds = Credentials { username, password };
    Client::new(settings)
        .with_credentials(&registry, creds.clone())
        .check_login(&registry)
        .map_err(|e| failure!(codes::registry::LOGIN, "login to {registry} failed: {e}"))?;
    store_credentials(&file, &registry, &creds)
        .map_err(|e| failure!(codes::registry::LOGIN, "{e}"))?;
    println!("Login Succeeded!");
    Ok(0)
}
