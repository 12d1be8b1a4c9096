//! [`RawSpec`] → [`Plan`]: every semantic check, all diagnostics at once, then the plan when
//! nothing was an error.
//!
//! Each section is resolved on its own into typed values; a section with errors yields `None`
//! for what it could not resolve, and the plan is only assembled when no error was reported.

mod limits;
mod mounts;
mod network;
mod process;
pub use process::DEFAULT_PATH;
mod security;

use std::path::Path;

use super::raw::{RawSpec, Sp};
use crate::diag::Diagnostic;
use crate::plan::{self, Origin, Plan, Span};

/// The span given to override values: they are not in the spec's text, so the resolver keeps
/// no span for them and their diagnostics point at no spec line.
pub(crate) const COMMAND_LINE: Span = Span {
    start: usize::MAX,
    end: usize::MAX,
};

/// What the resolver needs besides the raw spec.
pub struct Options<'a> {
    /// Relative host paths (bind sources, tarballs, seccomp profiles) are resolved against it.
    pub base_dir: &'a Path,
    /// Whether plan items keep their spans (spec files) or not (the command line, whose text
    /// the plan does not carry).
    pub keep_spans: bool,
}

/// The resolver's state: options and the diagnostics so far.
pub(crate) struct Rx<'a> {
    pub base_dir: &'a Path,
    keep_spans: bool,
    pub diags: Vec<Diagnostic>,
}

impl Rx<'_> {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    pub fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    /// The span a plan item keeps: none for the command line's values, which are not in the
    /// text the plan's origin holds.
    pub fn span(&self, span: Span) -> Option<Span> {
        (self.keep_spans && span != COMMAND_LINE).then_some(span)
    }

    /// A plan value from a raw one.
    pub fn spanned<T, U>(&self, raw: &Sp<T>, value: U) -> plan::Spanned<U> {
        plan::Spanned::new(value, self.span(raw.span))
    }
}

/// Resolve a raw spec. Returns the plan only when no diagnostic is an error.
pub fn resolve(
    raw: &RawSpec,
    origin: Origin,
    opts: &Options<'_>,
) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut rx = Rx {
        base_dir: opts.base_dir,
        keep_spans: opts.keep_spans,
        diags: Vec::new(),
    };
    let boxed = process::resolve(&mut rx, raw.box_.as_ref());
    let limits = limits::resolve(&mut rx, raw.limits.as_ref());
    let capabilities = security::capabilities(&mut rx, raw.capabilities.as_ref());
    let seccomp = security::seccomp(&mut rx, raw.seccomp.as_ref());
    let no_new_privs = security::no_new_privs(raw.security.as_ref());
    let userns = security::userns(&mut rx, raw.security.as_ref());
    let network = network::resolve(&mut rx, raw.network.as_ref());
    let mounts = mounts::resolve(&mut rx, &raw.mounts);
    let rootfs = mounts::rootfs(&mut rx, raw.rootfs.as_ref());
    if rx.has_errors() {
        return (None, rx.diags);
    }
    let (
        Some(boxed),
        Some(limits),
        Some(capabilities),
        Some(seccomp),
        Some(network),
        Some(mounts),
        Some(userns),
    ) = (
        boxed,
        limits,
        capabilities,
        seccomp,
        network,
        mounts,
        userns,
    )
    else {
        // Every `None` above comes with an error; this only guards against a missed one.
        rx.push(Diagnostic::error(
            super::codes::INTERNAL,
            "the spec could not be resolved",
        ));
        return (None, rx.diags);
    };
    let plan = Plan {
        origin,
        name: boxed.name,
        image: boxed.image,
        process: boxed.process,
        hostname: boxed.hostname,
        limits,
        capabilities: capabilities.0,
        added_capabilities: capabilities.1,
        no_new_privs,
        seccomp,
        userns,
        network,
        mounts,
        rootfs,
    };
    (Some(plan), rx.diags)
}
