//! `foxbox pull REF`: fetch an image from a registry into the image store (blobs, each layer
//! unpacked once, the image recorded under its name).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use clap::Args;
use foxbox::diag::codes;
use foxbox::image::{PullContext, Store, StoreProgress};
use foxbox::oci::manifest::Descriptor;
use foxbox::oci::{Client, Platform, Progress, Reference, Settings};

use super::ctx::{CmdResult, Ctx, Format};
use super::fail::{Failure, OrFail};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: [REGISTRY/]NAME[:TAG][@sha256:DIGEST] (a short name means docker.io).
    pub image: String,
    /// The platform to choose from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
    /// Credentials for this pull, instead of the auth files.
    #[arg(long, value_name = "USER[:PASSWORD]")]
    pub creds: Option<String>,
    /// A directory of CA certificates (*.crt) to trust for this registry.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Require HTTPS with verified certificates (false: allow plain HTTP and any certificate).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// Print nothing but the image id.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Settings from the environment, adjusted by the flags every registry command shares.
pub fn settings(cert_dir: Option<PathBuf>, tls_verify: bool) -> Result<Settings, Failure> {
    let mut s = Settings::from_env().map_err(|e| failure!(codes::registry::SETTINGS, "{e}"))?;
    s.cert_dir = cert_dir;
    s.tls_verify_off = !tls_verify;
    Ok(s)
}

pub fn creds_flag(v: &str) -> foxbox::oci::auth::Credentials {
    let (u, p) = v.split_once(':').unwrap_or((v, ""));
    foxbox::oci::auth::Credentials {
        username: u.to_string(),
        password: p.to_string(),
    }
}

pub fn run(a: PullArgs, ctx: &Ctx) -> CmdResult {
    let reference =
        Reference::parse(&a.image).map_err(|e| failure!(codes::registry::REFERENCE, "{e}"))?;
    if reference.short_name {
        eprintln!("Resolved {:?} as {reference}", a.image);
    }
    let mut client = Client::new(settings(a.cert_dir, a.tls_verify)?);
    if let Some(c) = &a.creds {
        client = client.with_credentials(&reference.registry, creds_flag(c));
    }
    let paths = ctx.paths()?;
    let store = Store::open(&paths).or_fail(codes::image::STORE)?;
    let bar = Bars::new(!a.quiet && a.format == Format::Human && std::io::stderr().is_terminal());
    let pctx = PullContext {
        client: &client,
        platform: a.platform.clone(),
        progress: &bar,
        jobs: 3,
    };
    let result = store.pull(&reference, &pctx);
    bar.finish();
    let pulled = result.map_err(|e| failure!(codes::registry::PULL, "pulling {reference}: {e}"))?;
    let image = &pulled.image;
    let img = &pulled.pulled;
    if let Some(p) = &img.platform_mismatch {
        eprintln!(
            "warning: {reference} is for {p}, not {}",
            a.platform.unwrap_or_else(Platform::host)
        );
    }
    let layer_json = |l: &Descriptor| {
        serde_json::json!({
            "digest": l.digest.to_string(),
            "size": l.size,
            "mediaType": l.media_type,
            "fetched": img.fetched.contains(&l.digest),
            "unpacked": pulled.unpacked.contains(&l.digest),
        })
    };
    if a.format == Format::Json {
        let v = serde_json::json!({
            "reference": reference.to_string(),
            "id": image.id,
            "names": image.names,
            "manifest": img.manifest_digest.to_string(),
            "index": img.index_digest.as_ref().map(|d| d.to_string()),
            "config": img.config_digest.to_string(),
            "platform": img.config.platform().to_string(),
            "layers": img.layers.iter().map(layer_json).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).or_fail(codes::cli::OUTPUT)?
        );
    } else if a.quiet {
        println!("{}", image.hex());
    } else {
        println!("Pulled {reference}");
        println!("id        {}", image.hex());
        if let Some(i) = &img.index_digest {
            println!("index     {i}");
        }
        println!(
            "manifest  {} ({})",
            img.manifest_digest,
            img.config.platform()
        );
        println!("config    {}", img.config_digest);
        for l in &img.layers {
            let how = match (
                img.fetched.contains(&l.digest),
                pulled.unpacked.contains(&l.digest),
            ) {
                (true, _) => "fetched",
                (false, true) => "unpacked",
                (false, false) => "already present",
            };
            println!("layer     {} {} {how}", l.digest, size(l.size));
        }
    }
    Ok(0)
}

fn size(n: u64) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1_048_575 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..=1_073_741_823 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", n as f64 / 1_073_741_824.0),
    }
}

/// One line per layer on a terminal, redrawn in place; nothing at all otherwise. The run path
/// can pass `Bars::for_stderr()` as a `PullContext`'s progress.
pub struct Bars {
    on: bool,
    state: Mutex<BarState>,
}

struct BarState {
    lines: Vec<(String, u64, u64, &'static str)>,
    drawn: usize,
    last: Option<Instant>,
}

impl Bars {
    /// Bars when stderr is a terminal.
    pub fn for_stderr() -> Bars {
        Bars::new(std::io::stderr().is_terminal())
    }

    pub fn new(on: bool) -> Bars {
        Bars {
            on,
            state: Mutex::new(BarState {
                lines: Vec::new(),
                drawn: 0,
                last: None,
            }),
        }
    }

    fn update(&self, l: &Descriptor, f: impl FnOnce(&mut (String, u64, u64, &'static str))) {
        if !self.on {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = l.digest.short().to_string();
        let i = match st.lines.iter().position(|x| x.0 == key) {
            Some(i) => i,
            None => {
                st.lines.push((key, l.size, 0, "waiting"));
                st.lines.len() - 1
            }
        };
        let before = st.lines[i].3;
        f(&mut st.lines[i]);
        let changed = before != st.lines[i].3;
        let due = st.last.is_none_or(|t| t.elapsed().as_millis() >= 100);
        if changed || due {
            st.last = Some(Instant::now());
            draw(&mut st);
        }
    }

    /// Draw the last state (call when the pull is over).
    pub fn finish(&self) {
        if self.on {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            draw(&mut st);
        }
    }
}

fn draw(st: &mut BarState) {
    let mut err = std::io::stderr().lock();
    let mut out = String::new();
    if st.drawn > 0 {
        out.push_str(&format!("\x1b[{}A", st.drawn));
    }
    for (key, total, done, status) in &st.lines {
        let pct = if *total > 0 { done * 100 / total } else { 100 };
        let width = 30usize;
        let filled = (pct as usize * width / 100).min(width);
        out.push_str(&format!(
            "\x1b[2K{key}  [{}{}] {:>10} / {:<10} {status}\n",
            "=".repeat(filled),
            " ".repeat(width - filled),
            size(*done),
            size(*total),
        ));
    }
    st.drawn = st.lines.len();
    let _ = err.write_all(out.as_bytes());
    let _ = err.flush();
}

impl Progress for Bars {
    fn start(&self, l: &Descriptor) {
        self.update(l, |x| x.3 = "downloading");
    }
    fn advance(&self, l: &Descriptor, n: u64) {
        self.update(l, |x| x.2 += n);
    }
    fn done(&self, l: &Descriptor, reused: bool) {
        self.update(l, |x| {
            if reused {
                x.2 = x.1;
                x.3 = "already present";
            } else {
                x.3 = "downloaded";
            }
        });
    }
}

impl StoreProgress for Bars {
    fn unpacking(&self, l: &Descriptor) {
        self.update(l, |x| {
            if x.3 != "already present" {
                x.3 = "unpacking";
            }
        });
    }
    fn unpacked(&self, l: &Descriptor, reused: bool) {
        self.update(l, |x| {
            x.2 = x.1;
            if !reused {
                x.3 = "done";
            }
        });
    }
}
