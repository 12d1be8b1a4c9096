//! pasta: the box gets the host's own addresses and routes (as podman sets it up), DNS through
//! pasta's forwarder at 169.254.1.1, and the host's default gateway mapped to host loopback only
//! when allowed. This pasta (Debian 12's) has no runtime API: forwards are given at start, one
//! `-t`/`-u` each so that one taken port fails the start. It does not leave when the box's
//! processes are gone (it holds the namespace itself), so it dies with the thread that started it.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use super::helper::{Helper, HelperCmd, READY_TIMEOUT};
use super::ports;
use super::NetError;
use crate::plan::{Network, PortForward, Proto};

pub(crate) const NAME: &str = "pasta";
/// Where the box sends DNS queries; pasta forwards them to the host's resolver (podman's choice
/// of address, link-local so that it never collides with a real network).
pub(crate) const DNS_FORWARD: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

pub(crate) fn start(net: &Network, box_pid: u32, run_dir: &Path) -> Result<Helper, NetError> {
    let pidfile = run_dir.join("pasta.pid");
    let _ = std::fs::remove_file(&pidfile);
    // Keep the caller's ids: pasta run as root otherwise drops to `nobody`, which can neither
    // join a root-owned box nor keep the parent-death signal.
    let runas = format!(
        "{}:{}",
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw()
    );
    let mut args: Vec<OsString> = vec![
        "--foreground".into(),
        "--quiet".into(),
        "--runas".into(),
        runas.into(),
        "--config-net".into(),
        "--dns-forward".into(),
        DNS_FORWARD.to_string().into(),
        // No automatic forwards in either direction: the box's own ports are not published
        // and the host's loopback ports are not spliced into the box.
        "-T".into(),
        "none".into(),
        "-U".into(),
        "none".into(),
    ];
    if !net.allow_host_loopback {
        args.push("--no-map-gw".into());
    }
    let specs: Vec<(String, String)> = net.ports.iter().map(|p| forward_arg(&p.value)).collect();
    for proto in ["-t", "-u"] {
        let mine: Vec<&(String, String)> = specs.iter().filter(|(f, _)| f == proto).collect();
        if mine.is_empty() {
            args.extend([proto.into(), "none".into()]);
        }
        for (flag, spec) in mine {
            args.extend([flag.into(), spec.into()]);
        }
    }
    args.extend(["--pid".into(), pidfile.clone().into()]);
    args.push(box_pid.to_string().into());
    let mut helper = HelperCmd {
        name: NAME,
        package: "passt",
        args,
        log: &run_dir.join("pasta.log"),
        keep_fds: vec![],
        die_with_parent: true,
    }
    .spawn()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    // pasta writes its pid file (in the foreground too) after the tap device is configured
    // and every forward is bound, right before its event loop.
    loop {
        if helper.exited().is_some() {
            return Err(explain(net, &mut helper, &specs));
        }
        let ready = std::fs::read_to_string(&pidfile)
            .map(|s| s.trim_end().ends_with(|c: char| c.is_ascii_digit()) && s.ends_with('\n'))
            .unwrap_or(false);
        if ready {
            let _ = std::fs::remove_file(&pidfile);
            return Ok(helper);
        }
        if Instant::now() >= deadline {
            return Err(NetError::HelperTimeout {
                helper: NAME,
                secs: READY_TIMEOUT.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `-t 127.0.0.1/18080:80`: pasta's syntax for one forward.
fn forward_arg(p: &PortForward) -> (String, String) {
    let flag = match p.proto {
        Proto::Tcp => "-t",
        Proto::Udp => "-u",
    };
    let spec = match p.host_ip {
        Some(ip) => format!("{ip}/{}:{}", p.host_port, p.box_port),
        None => format!("{}:{}", p.host_port, p.box_port),
    };
    (flag.to_string(), spec)
}

/// pasta exited before it was ready: a port it could not bind becomes that port's error.
fn explain(net: &Network, helper: &mut Helper, specs: &[(String, String)]) -> NetError {
    let log = helper.log_text();
    for (index, (flag, spec)) in specs.iter().enumerate() {
        if log.contains(&format!("port for '{flag} {spec}'")) {
            let p = &net.ports[index];
            return match ports::bind_one(index, p) {
                Err(e) => e,
                // Free again by now: it was taken when pasta tried.
                Ok(_) => NetError::PortInUse {
                    index,
                    span: p.span,
                    addr: ports::host_addr(&p.value),
                    proto: p.value.proto,
                },
            };
        }
    }
    helper.failure()
}

/// The host's IPv4 default gateway, which pasta gives the box as its gateway too.
pub(crate) fn host_gateway() -> Option<IpAddr> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 2 && f[1] == "00000000" {
            let gw = u32::from_str_radix(f[2], 16).ok()?;
            // The kernel prints the network-order word as a native integer.
            Some(IpAddr::V4(Ipv4Addr::from(gw.to_ne_bytes())))
        } else {
            None
        }
    })
}
