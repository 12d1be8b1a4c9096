//! `[network]`: mode, ports, allow_host_loopback.

use super::Rx;
use crate::diag::Diagnostic;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::plan::{NetMode, Network, PortForward, Proto, Span, Spanned};
use crate::spec::codes;
use crate::spec::ports;
use crate::spec::raw::{RawNetwork, Sp};
use crate::spec::suggest;

const MODES: &[(&str, NetMode)] = &[
    ("none", NetMode::None),
    ("host", NetMode::Host),
    ("pasta", NetMode::Pasta),
    ("slirp4netns", NetMode::Slirp4netns),
];

/// A host address a port is forwarded from (`None`: all of them), and where.
type Bound = (Option<IpAddr>, Span);

/// Resolve `[network]`; forwards are keyed by (host port, is tcp) to find two that would bind
/// the same socket.
pub fn resolve(rx: &mut Rx<'_>, n: Option<&Sp<RawNetwork>>) -> Option<Network> {
    let empty = RawNetwork::default();
    let raw = n.map(|n| &n.value).unwrap_or(&empty);
    let before = rx.error_count();
    let mode = match &raw.mode {
        None => Some(Spanned::bare(NetMode::None)),
        Some(m) => match MODES.iter().find(|(w, _)| *w == m.value) {
            Some((_, mode)) => Some(rx.spanned(m, *mode)),
            None => {
                let words: Vec<&str> = MODES.iter().map(|(w, _)| *w).collect();
                let help = match suggest::closest(&m.value, words.iter().copied()) {
                    Some(w) => format!("did you mean `\"{w}\"`?"),
                    None => format!("use {}", suggest::one_of(&words)),
                };
                rx.push(
                    Diagnostic::error(
                        codes::BAD_VALUE,
                        format!("unknown `network.mode` `{}`", m.value),
                    )
                    .with_span(Some(m.span))
                    .with_label("unknown mode")
                    .with_help(help),
                );
                None
            }
        },
    };
    let mut forwards: Vec<Spanned<PortForward>> = Vec::new();
    let mut taken: HashMap<(u16, bool), Vec<Bound>> = HashMap::new();
    for p in raw.ports.iter().flat_map(|p| p.value.iter()) {
        match ports::parse_ports(&p.value) {
            Ok(fs) => for f in fs {
                // Host ports picked at start never clash.
                if f.host_port == 0 {
                    forwards.push(rx.spanned(p, f));
                    continue;
                }
                let same = taken.entry((f.host_port, f.proto == Proto::Tcp)).or_default();
                // An unspecified address binds them all, so it clashes with any other.
                let clash = same
                    .iter()
                    .find(|(ip, _)| ip.is_none() || f.host_ip.is_none() || *ip == f.host_ip);
                if let Some((_, first)) = clash {
                    rx.push(
                        Diagnostic::error(
                            codes::DUPLICATE_PORT,
                            format!("host port {} is forwarded twice", f.host_port),
                        )
                        .with_span(Some(p.span))
                        .with_label("again")
                        .with_related(Some(*first), "first here")
                        .with_help("each host address, port and protocol can be forwarded once"),
                    );
                    continue;
                }
                same.push((f.host_ip, p.span));
                forwards.push(rx.spanned(p, f));
            },
            Err(e) => rx.push(
                Diagnostic::error(codes::BAD_PORT, format!("bad port forward `{}`: {e}", p.value))
                    .with_span(Some(p.span))
                    .with_label("bad port")
                    .with_help("write `[host_ip:][host_port:]box_port[/tcp|udp]`, e.g. `\"8080:80\"`, `\"127.0.0.1:8080:80/tcp\"`, `\"8000-8010:8000-8010\"` or `\"80\"` (any free host port)"),
            ),
        }
    }
    let mode = mode?;
    let forwarding = matches!(mode.value, NetMode::Pasta | NetMode::Slirp4netns);
    if let Some(ports) = raw.ports.as_ref().filter(|p| !p.value.is_empty()) {
        if !forwarding {
            let (why, related) = match &raw.mode {
                Some(m) => (format!("`mode = \"{}\"`", m.value), Some(m.span)),
                None => ("the default `mode = \"none\"`".to_string(), None),
            };
            rx.push(
                Diagnostic::error(
                    codes::PORTS_NEED_NETWORK,
                    format!("port forwards cannot work with {why}"),
                )
                .with_span(Some(ports.span))
                .with_label("these ports")
                .with_related(related, "this mode")
                .with_help(if mode.value == NetMode::Host {
                    "with the host's network the box's ports are the host's: remove `ports`"
                } else {
                    "set `mode = \"pasta\"` or `mode = \"slirp4netns\"` to forward ports"
                }),
            );
        }
    }
    let allow_host_loopback = raw.allow_host_loopback.as_ref();
    if let Some(a) = allow_host_loopback.filter(|a| a.value && !forwarding) {
        rx.push(
            Diagnostic::warning(
                codes::NO_EFFECT,
                "`network.allow_host_loopback` only has an effect with pasta or slirp4netns",
            )
            .with_span(Some(a.span))
            .with_label("no effect")
            .with_help("remove it, or set `mode = \"pasta\"` or `\"slirp4netns\"`"),
        );
    }
    if rx.error_count() > before {
        return None;
    }
    Some(Network {
        mode,
        ports: forwards,
        allow_host_loopback: allow_host_loopback.is_some_and(|a| a.value),
    })
}
