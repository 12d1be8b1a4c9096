//! Port forwards: `[host_ip:]host_port:box_port[/tcp|udp]`, with `[v6]` host addresses.

use std::net::IpAddr;

use crate::plan::{PortForward, Proto};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("expected `[host_ip:]host_port:box_port[/tcp|udp]`")]
    Shape,
    #[error("unknown protocol `{0}` (use tcp or udp)")]
    Proto(String),
    #[error("`{0}` is not a port number (1-65535)")]
    Port(String),
    #[error("`{0}` is not an IP address")]
    Ip(String),
}

pub fn parse_port(text: &str) -> Result<PortForward, PortError> {
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
            1 => (None, addr),
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
    let (host, boxp) = ports.split_once(':').ok_or(PortError::Shape)?;
    Ok(PortForward {
        host_ip,
        host_port: port_number(host)?,
        box_port: port_number(boxp)?,
        proto,
    })
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
        assert_eq!(parse_port("80"), Err(PortError::Shape));
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
