//! `[limits]`: memory, memory_swap, cpus, pids, timeout, stop_timeout, enforce.

use super::Rx;
use crate::diag::Diagnostic;
use crate::plan::limits::{Cpus, MemoryBytes, Pids};
use crate::plan::units::{self, format_size};
use crate::plan::{Enforce, Limits};
use crate::spec::codes;
use crate::spec::raw::{RawLimits, RawSize, Sp};
use crate::spec::suggest;

use crate::plan::limits::MAX_CPUS;

pub fn resolve(rx: &mut Rx<'_>, l: Option<&Sp<RawLimits>>) -> Option<Limits> {
    let empty = RawLimits::default();
    let raw = l.map(|l| &l.value).unwrap_or(&empty);
    let before = rx.error_count();

    let memory = raw.memory.as_ref().and_then(|m| {
        let bytes = size(rx, m, "limits.memory")?;
        let Ok(memory) = MemoryBytes::new(bytes) else {
            rx.push(impossible(
                m.span,
                format!("`limits.memory` of {} is below the minimum", format_size(bytes)),
                "at least 6 MiB",
                "no process starts reliably with less than 6 MiB (podman's minimum); give e.g. `\"64m\"`",
            ));
            return None;
        };
        Some(rx.spanned(m, memory))
    });
    let memory_swap = raw.memory_swap.as_ref().and_then(|s| {
        let bytes = size(rx, s, "limits.memory_swap")?;
        match (&raw.memory, &memory) {
            (None, _) => {
                rx.push(
                    Diagnostic::error(codes::MISSING_KEY, "`limits.memory_swap` needs `limits.memory`")
                        .with_span(Some(s.span))
                        .with_label("memory plus swap, but no memory limit")
                        .with_help("add `memory = \"...\"` to [limits]"),
                );
                None
            }
            (Some(m_raw), Some(m)) if bytes < m.value.bytes() => {
                rx.push(
                    impossible(
                        s.span,
                        format!(
                            "`limits.memory_swap` ({}) is below `limits.memory` ({})",
                            format_size(bytes),
                            format_size(m.value.bytes())
                        ),
                        "less than memory",
                        "memory_swap counts memory plus swap: make it at least `memory`, or omit it for no swap",
                    )
                    .with_related(Some(m_raw.span), "the memory limit"),
                );
                None
            }
            // At least the memory limit, so at least the minimum: `Err` only without one.
            _ => MemoryBytes::new(bytes).ok().map(|b| rx.spanned(s, b)),
        }
    });
    let cpus = raw.cpus.as_ref().and_then(|c| {
        let v = c.value;
        let Ok(cpus) = Cpus::new(v) else {
            let (label, help) = if v.is_finite() && v > MAX_CPUS {
                ("too many", "at most 8192 CPUs")
            } else {
                ("at least 0.01", "a box needs some CPU: give e.g. `0.5` for half a core, or omit `cpus` for no limit")
            };
            rx.push(impossible(c.span, format!("`limits.cpus = {v}` is impossible"), label, help));
            return None;
        };
        Some(rx.spanned(c, cpus))
    });
    let pids = raw.pids.as_ref().and_then(|p| {
        let Some(pids) = u64::try_from(p.value).ok().and_then(|n| Pids::new(n).ok()) else {
            rx.push(impossible(
                p.span,
                format!("`limits.pids = {}` is impossible", p.value),
                "at least 1",
                "the box's first process counts: give at least 1, or omit `pids` for no limit",
            ));
            return None;
        };
        Some(rx.spanned(p, pids))
    });
    let timeout = raw
        .timeout
        .as_ref()
        .and_then(|t| match units::parse_duration(&t.value) {
            Ok(d) if d.is_zero() => {
                rx.push(impossible(
                    t.span,
                    "`limits.timeout` is zero".into(),
                    "zero",
                    "the box would be killed at once: give e.g. `\"30s\"`, or omit `timeout`",
                ));
                None
            }
            Ok(d) => Some(rx.spanned(t, d)),
            Err(e) => {
                rx.push(
                    Diagnostic::error(codes::BAD_DURATION, format!("bad `limits.timeout`: {e}"))
                        .with_span(Some(t.span))
                        .with_label("not a duration")
                        .with_help("write a duration like `\"30s\"`, `\"5m\"` or `\"1m30s\"`"),
                );
                None
            }
        });
    // Zero is podman's "kill at once".
    let stop_timeout =
        raw.stop_timeout
            .as_ref()
            .and_then(|t| match units::parse_duration(&t.value) {
                Ok(d) => Some(rx.spanned(t, d)),
                Err(e) => {
                    rx.push(
                        Diagnostic::error(
                            codes::BAD_DURATION,
                            format!("bad `limits.stop_timeout`: {e}"),
                        )
                        .with_span(Some(t.span))
                        .with_label("not a duration")
                        .with_help("write a duration like `\"10s\"`, `\"1m\"` or `\"0s\"`"),
                    );
                    None
                }
            });
    let enforce = match &raw.enforce {
        None => Some(Enforce::Strict),
        Some(e) => match e.value.as_str() {
            "strict" => Some(Enforce::Strict),
            "best-effort" => Some(Enforce::BestEffort),
            other => {
                let words = ["strict", "best-effort"];
                let help = match suggest::closest(other, words) {
                    Some(w) => format!("did you mean `\"{w}\"`?"),
                    None => format!("use {}", suggest::one_of(&words)),
                };
                rx.push(
                    Diagnostic::error(
                        codes::BAD_VALUE,
                        format!("unknown `limits.enforce` value `{other}`"),
                    )
                    .with_span(Some(e.span))
                    .with_label("unknown")
                    .with_help(help),
                );
                None
            }
        },
    };
    if rx.error_count() > before {
        return None;
    }
    let mut limits = Limits::new(enforce?);
    if let Some(g) = stop_timeout {
        limits = limits.with_stop_timeout(g);
    }
    if let Some(c) = cpus {
        limits = limits.with_cpus(c);
    }
    if let Some(p) = pids {
        limits = limits.with_pids(p);
    }
    let checked = |l: Limits| {
        let l = match memory {
            Some(m) => l.with_memory(m, memory_swap)?,
            None => l,
        };
        match timeout {
            Some(t) => l.with_timeout(t),
            None => Ok(l),
        }
    };
    let limits = match checked(limits) {
        Ok(l) => l,
        // Every value was checked above, with its own diagnostic: this is a missed check.
        Err(e) => {
            rx.push(Diagnostic::error(
                codes::IMPOSSIBLE_LIMIT,
                format!("the limits could not be resolved: {e}"),
            ));
            return None;
        }
    };
    if let Some(e) = &raw.enforce {
        if !limits.needs_cgroup() {
            rx.push(
                Diagnostic::warning(
                    codes::NO_EFFECT,
                    "`limits.enforce` has no effect without memory, cpus or pids limits",
                )
                .with_span(Some(e.span))
                .with_label("nothing to enforce")
                .with_help("the timeout is always enforced by foxbox itself"),
            );
        }
    }
    Some(limits)
}

fn impossible(span: crate::plan::Span, msg: String, label: &str, help: &str) -> Diagnostic {
    Diagnostic::error(codes::IMPOSSIBLE_LIMIT, msg)
        .with_span(Some(span))
        .with_label(label.to_string())
        .with_help(help.to_string())
}

/// A size in bytes from an integer or a string with a unit; `what` names the key.
pub fn size(rx: &mut Rx<'_>, s: &Sp<RawSize>, what: &str) -> Option<u64> {
    let r = match &s.value {
        RawSize::Bytes(n) => u64::try_from(*n).map_err(|_| units::SizeError::Negative),
        RawSize::Text(t) => units::parse_size(t),
    };
    match r {
        Ok(b) => Some(b),
        Err(e) => {
            rx.push(
                Diagnostic::error(codes::BAD_SIZE, format!("bad `{what}`: {e}"))
                    .with_span(Some(s.span))
                    .with_label("not a size")
                    .with_help("write a number with a binary unit: b, k/KiB, m/MiB, g/GiB (e.g. `\"64m\"`), or bytes as an integer"),
            );
            None
        }
    }
}
