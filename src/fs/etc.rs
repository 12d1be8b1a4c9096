//! /etc/hostname, /etc/hosts and /etc/resolv.conf: written on the box's scratch tmpfs and bound
//! over the image's files, so the image and its layers are never modified.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::resolve::{self, Kind};
use crate::exec::error::{Context, StepError};
use crate::plan::NetMode;
use crate::sys::mount;

/// The three files' contents for a box.
pub fn contents(hostname: &str, net: NetMode) -> [(&'static str, String); 3] {
    let host_hosts = || std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let host_resolv = || std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let hosts = match net {
        NetMode::Host => format!("{}\n127.0.1.1\t{hostname}\n", host_hosts().trim_end()),
        _ => format!(
            "127.0.0.1\tlocalhost localhost.localdomain\n\
             ::1\tlocalhost localhost.localdomain ip6-localhost ip6-loopback\n\
             127.0.1.1\t{hostname}\n"
        ),
    };
    let resolv = match net {
        NetMode::Slirp4netns => {
            let search: String = host_resolv()
                .lines()
                .filter(|l| l.starts_with("search ") || l.starts_with("options "))
                .map(|l| format!("{l}\n"))
                .collect();
            format!("{search}nameserver 10.0.2.3\n")
        }
        NetMode::Host => host_resolv(),
        // A loopback resolver on the host is not reachable from the box's own namespace.
        NetMode::None | NetMode::Pasta => host_resolv()
            .lines()
            .filter(|l| {
                let mut f = l.split_whitespace();
                !(f.next() == Some("nameserver")
                    && f.next()
                        .is_some_and(|a| a.starts_with("127.") || a == "::1"))
            })
            .map(|l| format!("{l}\n"))
            .collect(),
    };
    [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ]
}

/// Write the files on the scratch tmpfs and bind each over /etc/<name> in the new root.
pub fn install(
    scratch: BorrowedFd<'_>,
    root: BorrowedFd<'_>,
    files: &[(&'static str, String)],
) -> Result<(), StepError> {
    mount::mkdirat(scratch, Path::new("etc"), 0o755).ctx(|| "create the scratch etc dir".into())?;
    let etc = mount::openat(
        scratch,
        Path::new("etc"),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
    )
    .ctx(|| "open the scratch etc dir".into())?;
    for (name, text) in files {
        let f = mount::openat(
            etc.as_fd(),
            Path::new(name),
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_NOFOLLOW,
            0o644,
        )
        .ctx(|| format!("create {name}"))?;
        std::fs::File::from(f)
            .write_all(text.as_bytes())
            .ctx(|| format!("write {name}"))?;
        let src =
            mount::clone_tree(Some(etc.as_fd()), Path::new(name)).ctx(|| format!("bind {name}"))?;
        let target = Path::new("/etc").join(name);
        let at = resolve::ensure(root, &target, Kind::File)
            .ctx(|| format!("{} in the box", target.display()))?;
        mount::move_to(src.as_fd(), at.as_fd()).ctx(|| format!("attach {}", target.display()))?;
    }
    Ok(())
}
