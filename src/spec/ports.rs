//! Port forwards as podman takes them: `[host_ip:][host_port:]box_port[/tcp|udp]`, with
//! `[v6]` host addresses, ranges (`8000-8010:8000-8010`), and no host port (`80`,
//! `127.0.0.1::80`) for one the host picks when the box starts.

use std::net::IpAddr;

use crate::plan::{PortForward, Proto};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("expected `[host_ip:][host_port:]box_port[/tcp|udp]`")]
    Shape,
    #[error("`{0}` is not a port range (LOW-HIGH, LOW <= HIGH)")]
    Range(String),
    #[error(
        "the host range has {host} ports and the box range {boxed}; give ranges of one length"
    )]
    RangeLengths { host: usize, boxed: usize },
    #[error("unknown protocol `{0}` (use tcp or udp)")]
    Proto(String),
    #[error("`{0}` is not a port number (1-65535)")]
    Port(String),
    #[error("`{0}` is not an IP address")]
    Ip(String),
}

/// The forwards one `-p` value asks for: one per port of a range. A host port of 0 means "any
/// free port", chosen when the box starts.
pub fn parse_ports(text: &str) -> Result<Vec<PortForward>, PortError> {
    let t = text.trim();
    let (addr, proto) = match t.rsplit_once('/') {
        Some((a, p)) => {
            let proto = match p.to_ascii_lowercase().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => return Err(PortError::Proto(p.to_string())),
            };
            (a, proto)
        }
        None => (t, Proto::Tcp),
    };
    let (host_ip, ports) = if let Some(rest) = addr.strip_prefix('[') {
        let (ip, rest) = rest.split_once(']').ok_or(PortError::Shape)?;
        let rest = rest.strip_prefix(':').ok_or(PortError::Shape)?;
        (Some(ip), rest)
    } else {
        match addr.matches(':').count() {
            0 | 1 => (None, addr),
            2 => {
                let (ip, rest) = addr.split_once(':').ok_or(PortError::Shape)?;
                (Some(ip), rest)
            }
            _ => return Err(PortError::Shape),
        }
    };
    let host_ip = match host_ip {
        None => None,
        Some(ip) => Some(
            ip.parse::<IpAddr>()
                .map_err(|_| PortError::Ip(ip.to_string()))?,
        ),
    };
    let (host, boxp) = ports.split_once(':').unwrap_or(("", ports));
    let boxed = port_range(boxp)?;
    let host = if host.is_empty() {
        vec![0; boxed.len()]
    } else {
        port_range(host)?
    };
    if host.len() != boxed.len() {
        return Err(PortError::RangeLengths {
            host: host.len(),
            boxed: boxed.len(),
        });
    }
    Ok(host
        .into_iter()
        .zip(boxed)
        .map(|(host_port, box_port)| PortForward {
            host_ip,
            host_port,
            box_port,
            proto,
        })
        .collect())
}

/// `N` or `LOW-HIGH`.
fn port_range(s: &str) -> Result<Vec<u16>, PortError> {
    match s.split_once('-') {
        None => Ok(vec![port_number(s)?]),
        Some((lo, hi)) => {
            let (lo, hi) = (port_number(lo)?, port_number(hi)?);
            if lo > hi {
                return Err(PortError::Range(s.to_string()));
            }
            Ok((lo..=hi).collect())
        }
    }
}

fn port_number(s: &str) -> Result<u16, PortError> {
    match s.parse::<u16>() {
        Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(PortError::Port(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(ip: Option<&str>, h: u16, b: u16, proto: Proto) -> PortForward {
        PortForward {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: h,
            box_port: b,
            proto,
        }
    }

    fn parse_port(t: &str) -> Result<PortForward, PortError> {
        parse_ports(t).map(|mut v| {
            assert_eq!(v.len(), 1, "{t}");
            v.remove(0)
        })
    }

    #[test]
    fn ranges_and_any_host_port() {
        assert_eq!(parse_port("80"), Ok(fwd(None, 0, 80, Proto::Tcp)));
        assert_eq!(
            parse_port("127.0.0.1::80/udp"),
            Ok(fwd(Some("127.0.0.1"), 0, 80, Proto::Udp))
        );
        let r = parse_ports("8000-8002:9000-9002").unwrap();
        assert_eq!(
            r,
            [
                fwd(None, 8000, 9000, Proto::Tcp),
                fwd(None, 8001, 9001, Proto::Tcp),
                fwd(None, 8002, 9002, Proto::Tcp)
            ]
        );
        assert_eq!(parse_ports("8000-8001").unwrap().len(), 2);
        assert_eq!(
            parse_ports("8000-8010:80"),
            Err(PortError::RangeLengths { host: 11, boxed: 1 })
        );
        assert_eq!(parse_ports("9-8:9-8"), Err(PortError::Range("9-8".into())));
        assert_eq!(parse_ports("1-x:1-2"), Err(PortError::Port("x".into())));
    }

    #[test]
    fn parses_the_forms() {
        assert_eq!(parse_port("8080:80"), Ok(fwd(None, 8080, 80, Proto::Tcp)));
        assert_eq!(
            parse_port("8080:80/udp"),
            Ok(fwd(None, 8080, 80, Proto::Udp))
        );
        assert_eq!(
            parse_port("127.0.0.1:8080:80/tcp"),
            Ok(fwd(Some("127.0.0.1"), 8080, 80, Proto::Tcp))
        );
        assert_eq!(
            parse_port("[::1]:8080:80"),
            Ok(fwd(Some("::1"), 8080, 80, Proto::Tcp))
        );
    }

    #[test]
    fn refuses_bad_ones() {
        assert_eq!(parse_port(""), Err(PortError::Port("".into())));
        assert_eq!(parse_port("0:80"), Err(PortError::Port("0".into())));
        assert_eq!(parse_port("70000:80"), Err(PortError::Port("70000".into())));
        assert_eq!(parse_port("+80:80"), Err(PortError::Port("+80".into())));
        assert_eq!(
            parse_port("80:80/sctp"),
            Err(PortError::Proto("sctp".into()))
        );
        assert_eq!(
            parse_port("localhost:80:80"),
            Err(PortError::Ip("localhost".into()))
        );
        assert_eq!(parse_port("::1:80:80"), Err(PortError::Shape));
        assert_eq!(parse_port("[::1]80:80"), Err(PortError::Shape));
    }
}
