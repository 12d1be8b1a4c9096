//! Networking: none, host, pasta, slirp4netns; port forwards.
//!
//! The executor's side of it:
//! - child, after unsharing the network namespace: the `loopback` step brings `lo` up
//!   (`sys::net::loopback_up`, which allocates nothing);
//! - parent, after the child exists (its user namespace has its id maps, its network
//!   namespace is new) and before releasing it to run the fox: [`start`], which for pasta and
//!   slirp4netns starts the helper attached to the child's namespaces, waits until the box has
//!   an address and a default route, and sets up every port forward. It returns a [`NetGuard`]
//!   that stops the helper when dropped; hold it as long as the box lives;
//! - the box's `/etc/resolv.conf`: [`NetGuard::resolv_conf`] (or [`resolv_conf`]);
//! - `ps`/`inspect`: [`ports::describe_all`].
//!
//! A helper never outlives the process that started it: slirp4netns leaves when its `--exit-fd`
//! pipe closes (only the starting process holds the write end); pasta gets SIGKILL when the
//! thread that called [`start`] dies. So call [`start`] from the thread that waits for the box.

mod error;
mod helper;
mod pasta;
pub mod ports;
pub mod probe;
mod slirp;

use std::net::IpAddr;
use std::path::Path;

pub use error::NetError;
pub use helper::find_on_path;

use crate::plan::{NetMode, Network, PortForward};

/// A box's running network: the helper (if any) and what the box should be told about it.
/// Dropping it stops the helper and waits for it.
pub struct NetGuard {
    mode: NetMode,
    helper: Option<helper::Helper>,
    ports: Vec<PortForward>,
}

impl std::fmt::Debug for NetGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetGuard")
            .field("mode", &self.mode)
            .field("helper_pid", &self.helper_pid())
            .field("ports", &self.ports)
            .finish()
    }
}

/// Set up the network of a box whose child is `box_pid`.
///
/// `run_dir` is a directory of the box's own (runtime files: slirp4netns's API socket, the
/// helper's log); its path must leave room for a unix socket name (about 80 bytes at most).
/// For `none` and `host` nothing runs: the guard only carries the mode.
pub fn start(net: &Network, box_pid: u32, run_dir: &Path) -> Result<NetGuard, NetError> {
    let mode = net.mode.value;
    let helper = match mode {
        NetMode::None | NetMode::Host => {
            if let Some(p) = net.ports.first() {
                return Err(NetError::PortsNeedUserNet {
                    span: p.span,
                    mode: mode_name(mode),
                });
            }
            None
        }
        NetMode::Pasta | NetMode::Slirp4netns => {
            ports::check_free(&net.ports)?;
            Some(match mode {
                NetMode::Pasta => pasta::start(net, box_pid, run_dir)?,
                _ => slirp::start(net, box_pid, run_dir)?,
            })
        }
    };
    Ok(NetGuard {
        mode,
        helper,
        ports: net.ports.iter().map(|p| p.value.clone()).collect(),
    })
}

impl NetGuard {
    pub fn mode(&self) -> NetMode {
        self.mode
    }

    /// The helper process (pasta or slirp4netns), for `inspect`.
    pub fn helper_pid(&self) -> Option<u32> {
        self.helper.as_ref().map(|h| h.pid())
    }

    /// The box's default gateway, where the host's loopback services answer when
    /// `allow_host_loopback` is set (for an /etc/hosts entry such as `host.foxbox.internal`).
    pub fn gateway(&self) -> Option<IpAddr> {
        gateway(self.mode)
    }

    /// The nameserver the box should use.
    pub fn nameserver(&self) -> Option<IpAddr> {
        nameserver(self.mode)
    }

    /// The box's /etc/resolv.conf, given the host's.
    pub fn resolv_conf(&self, host_resolv: &str) -> String {
        resolv_conf(self.mode, host_resolv)
    }

    pub fn ports(&self) -> &[PortForward] {
        &self.ports
    }

    /// Whether the helper is still running (always true when there is none).
    pub fn is_alive(&mut self) -> bool {
        self.helper.as_mut().is_none_or(|h| h.exited().is_none())
    }

    /// Stop the helper now and wait for it (what dropping the guard does).
    pub fn stop(mut self) {
        if let Some(h) = self.helper.as_mut() {
            h.stop();
        }
    }
}

fn mode_name(m: NetMode) -> &'static str {
    match m {
        NetMode::None => "none",
        NetMode::Host => "host",
        NetMode::Pasta => "pasta",
        NetMode::Slirp4netns => "slirp4netns",
    }
}

/// The box's default gateway in this mode (`None`: no gateway, or the host's own routes).
pub fn gateway(mode: NetMode) -> Option<IpAddr> {
    match mode {
        NetMode::Slirp4netns => Some(slirp::GATEWAY.into()),
        NetMode::Pasta => pasta::host_gateway(),
        NetMode::None | NetMode::Host => None,
    }
}

/// The nameserver a box in this mode reaches (`None` for `none`, and for `host`, which keeps the
/// host's resolv.conf).
pub fn nameserver(mode: NetMode) -> Option<IpAddr> {
    match mode {
        NetMode::Slirp4netns => Some(slirp::DNS.into()),
        NetMode::Pasta => Some(pasta::DNS_FORWARD.into()),
        NetMode::None | NetMode::Host => None,
    }
}

/// The box's /etc/resolv.conf: the host's own for `host`; otherwise the helper's nameserver with
/// the host's `search` and `options` lines kept (podman does the same); for `none`, no
/// nameserver at all, since nothing could answer.
pub fn resolv_conf(mode: NetMode, host_resolv: &str) -> String {
    if mode == NetMode::Host {
        return host_resolv.to_string();
    }
    let mut out = String::new();
    match nameserver(mode) {
        Some(ns) => out.push_str(&format!("nameserver {ns}\n")),
        None => out.push_str("# network mode none: no nameserver\n"),
    }
    for l in host_resolv.lines() {
        let first = l.split_whitespace().next();
        if matches!(first, Some("search") | Some("domain") | Some("options")) {
            out.push_str(l.trim());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str =
        "# generated\nnameserver 127.0.0.53\nsearch example.org lan\noptions edns0 trust-ad\n";

    #[test]
    fn resolv_conf_points_at_the_helper_and_keeps_search_and_options() {
        assert_eq!(
            resolv_conf(NetMode::Slirp4netns, HOST),
            "nameserver 10.0.2.3\nsearch example.org lan\noptions edns0 trust-ad\n"
        );
        assert_eq!(
            resolv_conf(NetMode::Pasta, HOST),
            "nameserver 169.254.1.1\nsearch example.org lan\noptions edns0 trust-ad\n"
        );
        assert_eq!(resolv_conf(NetMode::Host, HOST), HOST);
        assert!(!resolv_conf(NetMode::None, HOST).contains("nameserver "));
    }
}
