//! What can go wrong while setting up a box's network, as values the executor renders.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::plan::{Proto, Span};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{helper} is not installed (install the `{package}` package)")]
    HelperMissing {
        helper: &'static str,
        package: &'static str,
    },

    #[error("host port {addr}/{proto} is already in use", proto = proto_str(*.proto))]
    PortInUse {
        /// Index of the forward in `Network::ports`.
        index: usize,
        span: Option<Span>,
        addr: SocketAddr,
        proto: Proto,
    },

    #[error("host port {addr}/{proto} needs privileges this user does not have (ports below net.ipv4.ip_unprivileged_port_start are reserved)", proto = proto_str(*.proto))]
    PortPrivileged {
        index: usize,
        span: Option<Span>,
        addr: SocketAddr,
        proto: Proto,
    },

    #[error("cannot forward host port {addr}/{proto}: {source}", proto = proto_str(*.proto))]
    PortBind {
        index: usize,
        span: Option<Span>,
        addr: SocketAddr,
        proto: Proto,
        source: io::Error,
    },

    #[error("{helper} cannot forward from host address {addr}: {why}")]
    PortUnsupported {
        index: usize,
        span: Option<Span>,
        helper: &'static str,
        addr: std::net::IpAddr,
        why: &'static str,
    },

    #[error("port forwards need network mode pasta or slirp4netns, not {mode}")]
    PortsNeedUserNet {
        span: Option<Span>,
        mode: &'static str,
    },

    #[error("{helper} failed to start: {detail}")]
    HelperFailed {
        helper: &'static str,
        detail: String,
    },

    #[error("{helper} was not ready after {secs} s")]
    HelperTimeout { helper: &'static str, secs: u64 },

    #[error("{helper} refused port forward {forward}: {detail}")]
    Api {
        helper: &'static str,
        forward: String,
        detail: String,
    },

    #[error("the runtime path {} is too long for a unix socket ({len} bytes, at most 107)", path.display())]
    SocketPathTooLong { path: PathBuf, len: usize },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl NetError {
    /// The spec span of the port forward this error is about, if any.
    pub fn span(&self) -> Option<Span> {
        match self {
            NetError::PortsNeedUserNet { span, .. } => *span,
            _ => self.port_index().and_then(|(_, s)| s),
        }
    }

    /// Index into `Network::ports` (and its span) for errors about one forward.
    pub fn port_index(&self) -> Option<(usize, Option<Span>)> {
        match self {
            NetError::PortInUse { index, span, .. }
            | NetError::PortPrivileged { index, span, .. }
            | NetError::PortBind { index, span, .. }
            | NetError::PortUnsupported { index, span, .. } => Some((*index, *span)),
            _ => None,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        NetError::Io {
            what: what.into(),
            source,
        }
    }
}

pub(crate) fn proto_str(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}
