//! What `check --host` says about networking: which helpers are installed, and whether this user
//! can open /dev/net/tun (both helpers need it; distributions ship it 0666).

use std::path::PathBuf;
use std::process::Command;

use serde::Serialize;

use super::helper::find_on_path;
use crate::diag::{codes, Diagnostic};
use crate::plan::NetMode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelperStatus {
    pub name: &'static str,
    /// The Debian package that ships it.
    pub package: &'static str,
    /// `None`: not on PATH.
    pub path: Option<PathBuf>,
    /// As the helper reports it; `None` when it does not say (Debian 12's pasta).
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TunStatus {
    Usable,
    Missing,
    /// Opening it read-write failed for this user (typically mode 0600 instead of 0666).
    Denied {
        mode: u32,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostNet {
    pub pasta: HelperStatus,
    pub slirp4netns: HelperStatus,
    pub tun: TunStatus,
}

pub const TUN_PATH: &str = "/dev/net/tun";

/// Look at this host as the calling user.
pub fn probe_host() -> HostNet {
    HostNet {
        pasta: helper("pasta", "passt"),
        slirp4netns: helper("slirp4netns", "slirp4netns"),
        tun: tun_status(),
    }
}

fn helper(name: &'static str, package: &'static str) -> HelperStatus {
    let path = find_on_path(name);
    let version = path.as_ref().and_then(|p| {
        let out = Command::new(p).arg("--version").output().ok()?;
        parse_version(name, &String::from_utf8_lossy(&out.stdout))
    });
    HelperStatus {
        name,
        package,
        path,
        version,
    }
}

/// `slirp4netns version 1.2.0` → `1.2.0`; `pasta 2024_03_20.71e2e46` → that; `pasta unknown
/// version` → none.
fn parse_version(name: &str, out: &str) -> Option<String> {
    let first = out.lines().next()?.trim();
    let rest = first.strip_prefix(name).unwrap_or(first).trim();
    let rest = rest.strip_prefix("version").unwrap_or(rest).trim();
    if rest.is_empty() || rest.contains("unknown") {
        None
    } else {
        Some(rest.to_string())
    }
}

fn tun_status() -> TunStatus {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(TUN_PATH) {
        Ok(m) => m,
        Err(_) => return TunStatus::Missing,
    };
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(TUN_PATH)
    {
        Ok(_) => TunStatus::Usable,
        Err(e) => TunStatus::Denied {
            mode: meta.permissions().mode() & 0o7777,
            error: e.to_string(),
        },
    }
}

impl HostNet {
    /// Whether a box in this mode can start here.
    pub fn supports(&self, mode: NetMode) -> bool {
        let tun = self.tun == TunStatus::Usable;
        match mode {
            NetMode::None | NetMode::Host => true,
            NetMode::Pasta => tun && self.pasta.path.is_some(),
            NetMode::Slirp4netns => tun && self.slirp4netns.path.is_some(),
        }
    }

    /// A warning per missing helper and for an unusable /dev/net/tun (warnings: only boxes that
    /// ask for user-mode networking need them; the caller attaches the spans of those that do).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut v = Vec::new();
        for h in [&self.pasta, &self.slirp4netns] {
            if h.path.is_none() {
                v.push(
                    Diagnostic::warning(
                        codes::host::NET_HELPER_MISSING,
                        format!(
                            "{} is not installed: network mode {} cannot start",
                            h.name, h.name
                        ),
                    )
                    .with_help(format!("install the `{}` package", h.package)),
                );
            }
        }
        match &self.tun {
            TunStatus::Usable => {}
            TunStatus::Missing => v.push(
                Diagnostic::warning(
                    codes::host::TUN_MISSING,
                    format!("{TUN_PATH} does not exist: pasta and slirp4netns need it"),
                )
                .with_help("load the tun module (modprobe tun)"),
            ),
            TunStatus::Denied { mode, error } => v.push(
                Diagnostic::warning(
                    codes::host::TUN_DENIED,
                    format!(
                        "{TUN_PATH} (mode {mode:04o}) cannot be opened read-write by this user ({error}): pasta and slirp4netns need it"
                    ),
                )
                .with_help(format!("as root: chmod 0666 {TUN_PATH} (the mode distributions ship)")),
            ),
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_the_helpers_print_them() {
        assert_eq!(
            parse_version(
                "slirp4netns",
                "slirp4netns version 1.2.0\ncommit: 656041d\n"
            ),
            Some("1.2.0".into())
        );
        assert_eq!(
            parse_version("pasta", "pasta unknown version\nCopyright Red Hat\n"),
            None
        );
        assert_eq!(
            parse_version("pasta", "pasta 2024_03_20.71e2e46\n"),
            Some("2024_03_20.71e2e46".into())
        );
        assert_eq!(parse_version("pasta", ""), None);
    }

    #[test]
    fn probe_finds_the_helpers_installed_here() {
        // Both are installed on the machines this project tests on (scripts/setup.sh).
        let h = probe_host();
        assert!(h.pasta.path.is_some(), "{h:?}");
        assert_eq!(
            h.slirp4netns.version.as_deref().map(|v| v.contains('.')),
            Some(true)
        );
        assert!(h.supports(NetMode::None));
    }
}
