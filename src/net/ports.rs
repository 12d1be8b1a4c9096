//! Port forwards: how they read in `ps`/`inspect`, and whether the host can give them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;

use super::error::proto_str;
use super::NetError;
use crate::plan::{PortForward, Proto, Spanned};

/// One forward as podman prints it: `127.0.0.1:18080->80/tcp` (`0.0.0.0` for all addresses).
pub fn describe(p: &PortForward) -> String {
    format!("{}->{}/{}", host_addr(p), p.box_port, proto_str(p.proto))
}

/// All forwards, comma separated, for the PORTS column of `ps`.
pub fn describe_all(ports: &[Spanned<PortForward>]) -> String {
    ports
        .iter()
        .map(|p| describe(&p.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The host socket address a forward listens on.
pub fn host_addr(p: &PortForward) -> SocketAddr {
    SocketAddr::new(
        p.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        p.host_port,
    )
}

/// A host socket bound for a check; the port is free again when it is dropped.
pub(crate) struct Held {
    _sock: OwnedFd,
}

/// Bind every forward's host address (all at once, so two forwards of one box that clash are
/// caught too) and let go again: a taken port becomes an error naming it and its spec line,
/// instead of a helper's log line. The helper binding the port later still reports a race.
pub fn check_free(ports: &[Spanned<PortForward>]) -> Result<(), NetError> {
    let held = ports
        .iter()
        .enumerate()
        .map(|(index, p)| bind_one(index, p))
        .collect::<Result<Vec<Held>, NetError>>()?;
    drop(held);
    Ok(())
}

/// The forwards with each "any port" (host port 0) given a free port of the host: each is
/// bound to port 0 and keeps what the kernel chose. All are held until every one is picked, so
/// no two get the same port.
pub fn pick_free(ports: &[Spanned<PortForward>]) -> Result<Vec<Spanned<PortForward>>, NetError> {
    let mut held = Vec::new();
    let mut out = ports.to_vec();
    for (index, p) in out.iter_mut().enumerate() {
        if p.value.host_port != 0 {
            continue;
        }
        let addr = host_addr(&p.value);
        let bound = match p.value.proto {
            Proto::Tcp => {
                TcpListener::bind(addr).and_then(|s| Ok((s.local_addr()?, OwnedFd::from(s))))
            }
            Proto::Udp => {
                UdpSocket::bind(addr).and_then(|s| Ok((s.local_addr()?, OwnedFd::from(s))))
            }
        };
        let (local, fd) = bound.map_err(|e| bind_error(index, p, e))?;
        p.value.host_port = local.port();
        held.push(fd);
    }
    Ok(out)
}

/// Bind one forward's host address; `index` is its place in `Network::ports`.
pub(crate) fn bind_one(index: usize, p: &Spanned<PortForward>) -> Result<Held, NetError> {
    let addr = host_addr(&p.value);
    match p.value.proto {
        // std sets SO_REUSEADDR for TCP listeners, as the helpers do: a port in TIME_WAIT is free.
        Proto::Tcp => TcpListener::bind(addr).map(OwnedFd::from),
        Proto::Udp => UdpSocket::bind(addr).map(OwnedFd::from),
    }
    .map(|s| Held { _sock: s })
    .map_err(|e| bind_error(index, p, e))
}

fn bind_error(index: usize, p: &Spanned<PortForward>, e: io::Error) -> NetError {
    let addr = host_addr(&p.value);
    let (span, proto) = (p.span, p.value.proto);
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => NetError::PortInUse {
            index,
            span,
            addr,
            proto,
        },
        Some(libc::EACCES) | Some(libc::EPERM) => NetError::PortPrivileged {
            index,
            span,
            addr,
            proto,
        },
        _ => NetError::PortBind {
            index,
            span,
            addr,
            proto,
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(ip: Option<&str>, h: u16, b: u16, proto: Proto) -> PortForward {
        PortForward {
            host_ip: ip.map(|s| s.parse().unwrap()),
            host_port: h,
            box_port: b,
            proto,
        }
    }

    #[test]
    fn describes_like_podman() {
        assert_eq!(
            describe(&fwd(Some("127.0.0.1"), 18080, 80, Proto::Tcp)),
            "127.0.0.1:18080->80/tcp"
        );
        assert_eq!(
            describe(&fwd(None, 53, 5353, Proto::Udp)),
            "0.0.0.0:53->5353/udp"
        );
        assert_eq!(
            describe(&fwd(Some("::1"), 8080, 80, Proto::Tcp)),
            "[::1]:8080->80/tcp"
        );
        let all = vec![
            Spanned::bare(fwd(Some("127.0.0.1"), 1, 2, Proto::Tcp)),
            Spanned::bare(fwd(None, 3, 4, Proto::Udp)),
        ];
        assert_eq!(describe_all(&all), "127.0.0.1:1->2/tcp, 0.0.0.0:3->4/udp");
    }

    /// A random port below the ephemeral range that nothing on this machine binds. Not probed
    /// first: a socket just closed can stay bound for a moment in a child this multi-threaded
    /// test process is forking, so each test port is bound only once.
    fn fresh_port(n: u16) -> u16 {
        use std::hash::{BuildHasher, RandomState};
        static BASE: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
        let base = *BASE.get_or_init(|| {
            20000 + (RandomState::new().hash_one(std::process::id()) % 11900) as u16
        });
        base + n
    }

    #[test]
    fn a_taken_port_is_named_with_its_index_and_span() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let span = Some(crate::plan::Span::new(10, 30));
        let ports = vec![
            Spanned::bare(fwd(Some("127.0.0.1"), fresh_port(0), 80, Proto::Tcp)),
            Spanned::new(fwd(Some("127.0.0.1"), port, 81, Proto::Tcp), span),
        ];
        let e = check_free(&ports).unwrap_err();
        assert!(matches!(e, NetError::PortInUse { index: 1, .. }), "{e:?}");
        assert_eq!(e.span(), span);
        assert_eq!(
            e.to_string(),
            format!("host port 127.0.0.1:{port}/tcp is already in use")
        );
        // The same port for TCP and UDP is two different ports.
        let ok = vec![
            Spanned::bare(fwd(Some("127.0.0.1"), fresh_port(1), 80, Proto::Tcp)),
            Spanned::bare(fwd(Some("127.0.0.1"), fresh_port(1), 80, Proto::Udp)),
        ];
        check_free(&ok).unwrap();
        // Two forwards of one box asking for the same port clash with each other.
        let twice = vec![
            Spanned::bare(fwd(Some("127.0.0.1"), fresh_port(2), 80, Proto::Udp)),
            Spanned::bare(fwd(None, fresh_port(2), 81, Proto::Udp)),
        ];
        let e = check_free(&twice).unwrap_err();
        assert!(matches!(e, NetError::PortInUse { index: 1, .. }), "{e:?}");
    }
}
