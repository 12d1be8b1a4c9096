//! slirp4netns: the box gets 10.0.2.100/24, gateway 10.0.2.2 (host loopback when allowed), DNS
//! 10.0.2.3. Forwards go through its API socket once it is ready; it leaves when the write end of
//! its `--exit-fd` pipe (held only by us) closes.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags};
use nix::unistd::pipe2;

use super::error::proto_str;
use super::helper::{Helper, HelperCmd, READY_TIMEOUT};
use super::ports;
use super::NetError;
use crate::plan::{Network, PortForward, Spanned};

pub(crate) const NAME: &str = "slirp4netns";
pub(crate) const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub(crate) const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
const BOX_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
/// Longest unix socket path (sun_path is 108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

pub(crate) fn start(net: &Network, box_pid: u32, run_dir: &Path) -> Result<Helper, NetError> {
    for (index, p) in net.ports.iter().enumerate() {
        if let Some(ip @ IpAddr::V6(_)) = p.value.host_ip {
            return Err(NetError::PortUnsupported {
                index,
                span: p.span,
                helper: NAME,
                addr: ip,
                why: "its port forwarder binds IPv4 addresses only (use pasta)",
            });
        }
    }
    let sock = run_dir.join("slirp4netns.sock");
    let len = sock.as_os_str().len();
    if len > SUN_PATH_MAX {
        return Err(NetError::SocketPathTooLong { path: sock, len });
    }
    let _ = std::fs::remove_file(&sock);
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| NetError::io("create a pipe", e.into()));
    let (exit_r, exit_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let mut args: Vec<std::ffi::OsString> = vec![
        "--configure".into(),
        "--mtu=65520".into(),
        format!("--exit-fd={}", exit_r.as_raw_fd()).into(),
        format!("--ready-fd={}", ready_w.as_raw_fd()).into(),
        "--api-socket".into(),
        sock.clone().into(),
    ];
    if !net.allow_host_loopback {
        args.push("--disable-host-loopback".into());
    }
    if supports_sandbox() {
        // As podman: its own mount namespace with nothing in it, and a syscall filter.
        args.push("--enable-sandbox".into());
        args.push("--enable-seccomp".into());
    }
    args.push(box_pid.to_string().into());
    args.push("tap0".into());
    let mut helper = HelperCmd {
        name: NAME,
        package: "slirp4netns",
        args,
        log: &run_dir.join("slirp4netns.log"),
        keep_fds: vec![exit_r.as_raw_fd(), ready_w.as_raw_fd()],
        die_with_parent: false,
    }
    .spawn()?;
    helper.set_exit_fd(exit_w);
    // Only the helper may hold these now: its ready end must read EOF if it dies.
    drop(exit_r);
    drop(ready_w);
    wait_ready(&mut helper, ready_r)?;
    for (index, p) in net.ports.iter().enumerate() {
        add_hostfwd(&sock, index, p)?;
    }
    Ok(helper)
}

fn supports_sandbox() -> bool {
    std::process::Command::new(NAME)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--enable-sandbox"))
        .unwrap_or(false)
}

/// slirp4netns writes "1" to the ready fd once tap0 is configured in the box.
fn wait_ready(helper: &mut Helper, ready_r: OwnedFd) -> Result<(), NetError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut file = std::fs::File::from(ready_r);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NetError::HelperTimeout {
                helper: NAME,
                secs: READY_TIMEOUT.as_secs(),
            });
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(NetError::io("wait for slirp4netns", e.into())),
        }
        let mut buf = [0u8; 8];
        match file.read(&mut buf) {
            Ok(n) if n > 0 && buf[..n].contains(&b'1') => return Ok(()),
            Ok(n) if n > 0 => continue,
            // EOF: it closed the ready fd without writing, i.e. it died.
            _ => return Err(helper.failure()),
        }
    }
}

fn add_hostfwd(sock: &Path, index: usize, p: &Spanned<PortForward>) -> Result<(), NetError> {
    let f = &p.value;
    let host = ports::host_addr(f);
    let req = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": proto_str(f.proto),
            "host_addr": host.ip().to_string(),
            "host_port": f.host_port,
            "guest_addr": BOX_ADDR.to_string(),
            "guest_port": f.box_port,
        }
    });
    let api_err = |detail: String| NetError::Api {
        helper: NAME,
        forward: ports::describe(f),
        detail,
    };
    let reply = call(sock, &req).map_err(|e| api_err(format!("API socket: {e}")))?;
    if reply.get("return").is_some() {
        return Ok(());
    }
    // slirp4netns only says "slirp_add_hostfwd failed": find out why by trying ourselves.
    drop(ports::bind_one(index, p)?);
    let desc = reply
        .pointer("/error/desc")
        .and_then(|d| d.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| reply.to_string());
    Err(api_err(desc))
}

fn call(sock: &Path, req: &serde_json::Value) -> std::io::Result<serde_json::Value> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(req.to_string().as_bytes())?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    serde_json::from_slice(&out).map_err(std::io::Error::other)
}
