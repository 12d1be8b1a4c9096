//! /etc/hostname, /etc/hosts and /etc/resolv.conf: written on the box's scratch tmpfs, never
//! into the image. Over an overlay root they form the overlay's top layer (nothing to copy up
//! into the box's upper dir, nothing to mount per file); over a directory root, or an image
//! whose /etc is not a plain directory, each is bound over `/etc/<name>`.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::resolve::{self, Kind};
use crate::net;
use crate::plan::{NetMode, Network};
use crate::step_error::{Context, StepError};
use crate::sys::mount;

/// The name a box can reach the host's loopback services by, when its network allows it
/// (podman's name, so images written for podman find the host the same way).
pub const HOST_ALIASES: &str = "host.containers.internal host.foxbox.internal";

/// The three files' contents for a box, given the host's /etc/hosts and /etc/resolv.conf.
pub fn contents(hostname: &str, network: &Network) -> [(&'static str, String); 3] {
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    contents_from(hostname, network, &host_hosts, &host_resolv)
}

fn contents_from(
    hostname: &str,
    network: &Network,
    host_hosts: &str,
    host_resolv: &str,
) -> [(&'static str, String); 3] {
    let mode = network.mode.value;
    let mut hosts = match mode {
        NetMode::Host => format!("{}\n127.0.1.1\t{hostname}\n", host_hosts.trim_end()),
        _ => format!(
            "127.0.0.1\tlocalhost localhost.localdomain\n\
             ::1\tlocalhost localhost.localdomain ip6-localhost ip6-loopback\n\
             127.0.1.1\t{hostname}\n"
        ),
    };
    // The gateway answers for the host's loopback only when the box may reach it; otherwise
    // a name for it would only promise what the network refuses.
    if network.allow_host_loopback {
        if let Some(gw) = net::gateway(mode) {
            hosts.push_str(&format!("{gw}\t{HOST_ALIASES}\n"));
        }
    }
    [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", net::resolv_conf(mode, host_resolv)),
    ]
}

/// The directory (on the scratch tmpfs) of the top layer [`write_layer`] makes.
pub const LAYER: &str = "etc-layer";

/// Whether the files can be a layer over these lower dirs (top first): the topmost `etc` among
/// them must be a directory (or there must be none), else the layer's directory would hide
/// what the image's /etc is (a symlink, say).
pub fn layer_fits(lower_top_first: &[&Path]) -> Option<std::fs::Metadata> {
    for l in lower_top_first {
        match std::fs::symlink_metadata(l.join("etc")) {
            Ok(m) if m.is_dir() => return Some(m),
            Ok(_) => return None,
            Err(_) => continue,
        }
    }
    None
}

/// Write the files as `<scratch>/etc-layer/etc/<name>`, the layer's /etc taking the owner and
/// mode of the image's (`like`), since the top layer's directory is what the box sees.
pub fn write_layer(
    scratch: BorrowedFd<'_>,
    files: &[(&'static str, String)],
    like: &std::fs::Metadata,
) -> Result<(), StepError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    mount::mkdirat(scratch, Path::new(LAYER), 0o755).ctx(|| "create the /etc layer".into())?;
    let etc_path = Path::new(LAYER).join("etc");
    mount::mkdirat(scratch, &etc_path, 0o755).ctx(|| "create the /etc layer".into())?;
    let etc = mount::openat(scratch, &etc_path, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .ctx(|| "open the /etc layer".into())?;
    let dir = std::fs::File::from(etc);
    dir.set_permissions(std::fs::Permissions::from_mode(like.mode() & 0o7777))
        .ctx(|| "set the /etc layer's mode".into())?;
    // An owner the box does not map cannot be given; the box's root then owns it.
    let _ = std::os::unix::fs::fchown(&dir, Some(like.uid()), Some(like.gid()));
    write_files(dir.as_fd(), files)
}

fn write_files(etc: BorrowedFd<'_>, files: &[(&'static str, String)]) -> Result<(), StepError> {
    for (name, text) in files {
        let f = mount::openat(
            etc,
            Path::new(name),
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_NOFOLLOW,
            0o644,
        )
        .ctx(|| format!("create {name}"))?;
        std::fs::File::from(f)
            .write_all(text.as_bytes())
            .ctx(|| format!("write {name}"))?;
    }
    Ok(())
}

/// Write the files on the scratch tmpfs and bind each over `/etc/<name>` in the new root.
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
    write_files(etc.as_fd(), files)?;
    for (name, _) in files {
        let src =
            mount::clone_tree(Some(etc.as_fd()), Path::new(name)).ctx(|| format!("bind {name}"))?;
        let target = Path::new("/etc").join(name);
        let at = resolve::ensure(root, &target, Kind::File)
            .ctx(|| format!("{} in the box", target.display()))?;
        mount::move_to(src.as_fd(), at.as_fd()).ctx(|| format!("attach {}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Spanned;

    fn net(mode: NetMode, allow: bool) -> Network {
        Network {
            mode: Spanned::bare(mode),
            ports: Vec::new(),
            allow_host_loopback: allow,
        }
    }

    const HOSTS: &str = "127.0.0.1 localhost\n10.1.1.1 build\n";
    const RESOLV: &str = "nameserver 127.0.0.53\nsearch lan\n";

    fn file(files: &[(&'static str, String); 3], name: &str) -> String {
        files.iter().find(|(n, _)| *n == name).unwrap().1.clone()
    }

    #[test]
    fn resolv_conf_names_the_helpers_nameserver() {
        let f = contents_from("b", &net(NetMode::Slirp4netns, false), HOSTS, RESOLV);
        assert_eq!(file(&f, "resolv.conf"), "nameserver 10.0.2.3\nsearch lan\n");
        let f = contents_from("b", &net(NetMode::Pasta, false), HOSTS, RESOLV);
        assert_eq!(
            file(&f, "resolv.conf"),
            "nameserver 169.254.1.1\nsearch lan\n"
        );
        let f = contents_from("b", &net(NetMode::Host, false), HOSTS, RESOLV);
        assert_eq!(file(&f, "resolv.conf"), RESOLV);
        assert_eq!(file(&f, "hosts"), format!("{}127.0.1.1\tb\n", HOSTS));
        let f = contents_from("b", &net(NetMode::None, false), HOSTS, RESOLV);
        assert!(!file(&f, "resolv.conf").contains("nameserver "));
        assert_eq!(file(&f, "hostname"), "b\n");
    }

    #[test]
    fn the_host_alias_only_when_host_loopback_is_allowed() {
        let f = contents_from("b", &net(NetMode::Slirp4netns, true), HOSTS, RESOLV);
        assert!(
            file(&f, "hosts").ends_with(&format!("10.0.2.2\t{HOST_ALIASES}\n")),
            "{}",
            file(&f, "hosts")
        );
        for (mode, allow) in [
            (NetMode::Slirp4netns, false),
            (NetMode::Pasta, false),
            (NetMode::None, true),
        ] {
            let f = contents_from("b", &net(mode, allow), HOSTS, RESOLV);
            assert!(!file(&f, "hosts").contains("host.containers.internal"));
        }
    }
}
