//! `[capabilities]`, `[seccomp]` and `[security]`.

use std::io::Read;

use super::Rx;
use crate::diag::Diagnostic;
use crate::plan::caps::{self, CapSet};
use crate::plan::{Seccomp, Span, Spanned, Userns};
use crate::security::seccomp;
use crate::spec::codes;
use crate::spec::paths;
use crate::spec::raw::{RawCapabilities, RawSeccomp, RawSecurity, Sp};
use crate::spec::suggest;

/// Profiles larger than this are refused rather than read (Docker's default is ~20 KiB).
const MAX_PROFILE_BYTES: u64 = 4 << 20;

/// One entry of `add` or `drop`: `ALL`, a known capability, or nothing (already reported).
enum Entry {
    All,
    Cap(u32),
}

fn entries(rx: &mut Rx<'_>, list: Option<&Sp<Vec<Sp<String>>>>, what: &str) -> Vec<(Entry, Span)> {
    let mut out = Vec::new();
    let mut seen: std::collections::HashMap<String, Span> = std::collections::HashMap::new();
    for item in list.iter().flat_map(|l| l.value.iter()) {
        let name = item.value.trim();
        let canon = name.to_ascii_uppercase();
        let canon = canon.strip_prefix("CAP_").unwrap_or(&canon).to_string();
        if let Some(first) = seen.get(&canon) {
            rx.push(
                Diagnostic::warning(
                    codes::REDUNDANT_CAPABILITY,
                    format!("`{name}` is listed twice in `capabilities.{what}`"),
                )
                .with_span(Some(item.span))
                .with_label("again")
                .with_related(Some(*first), "first here")
                .with_help("remove one of them"),
            );
            continue;
        }
        seen.insert(canon.clone(), item.span);
        if canon == "ALL" {
            out.push((Entry::All, item.span));
            continue;
        }
        match caps::parse(name) {
            Some(c) => out.push((Entry::Cap(c), item.span)),
            None => {
                let help = match suggest::closest(&canon, caps::NAMES.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => "capability names are those of capabilities(7), like `NET_BIND_SERVICE` (the `CAP_` prefix is optional), or `ALL`".to_string(),
                };
                rx.push(
                    Diagnostic::error(
                        codes::UNKNOWN_CAPABILITY,
                        format!("unknown capability `{name}`"),
                    )
                    .with_span(Some(item.span))
                    .with_label("unknown")
                    .with_help(help),
                );
            }
        }
    }
    out
}

/// The box's set, and the part of it `add` names (what a non-root user gets).
pub fn capabilities(
    rx: &mut Rx<'_>,
    c: Option<&Sp<RawCapabilities>>,
) -> Option<(Spanned<CapSet>, CapSet)> {
    let Some(c) = c else {
        return Some((Spanned::bare(CapSet::podman_default()), CapSet::EMPTY));
    };
    let before = rx.error_count();
    let drop = entries(rx, c.value.drop.as_ref(), "drop");
    let add = entries(rx, c.value.add.as_ref(), "add");
    let drop_all = drop
        .iter()
        .find(|(e, _)| matches!(e, Entry::All))
        .map(|(_, s)| *s);
    let add_all = add
        .iter()
        .find(|(e, _)| matches!(e, Entry::All))
        .map(|(_, s)| *s);
    let mut conflict = false;
    if let (Some(d), Some(a)) = (drop_all, add_all) {
        rx.push(
            Diagnostic::error(codes::CAPABILITY_CONFLICT, "`ALL` is both added and dropped")
                .with_span(Some(a))
                .with_label("added")
                .with_related(Some(d), "dropped")
                .with_help("keep one: `drop = [\"ALL\"]` with the few you `add`, or `add = [\"ALL\"]` with the few you `drop`"),
        );
        conflict = true;
    }
    for (a, a_span) in &add {
        let Entry::Cap(a) = a else { continue };
        if let Some((_, d_span)) = drop
            .iter()
            .find(|(d, _)| matches!(d, Entry::Cap(d) if d == a))
        {
            rx.push(
                Diagnostic::error(
                    codes::CAPABILITY_CONFLICT,
                    format!("CAP_{} is both added and dropped", caps::NAMES[*a as usize]),
                )
                .with_span(Some(*a_span))
                .with_label("added")
                .with_related(Some(*d_span), "dropped")
                .with_help("remove it from one of the two lists"),
            );
            conflict = true;
        }
    }
    if conflict || rx.error_count() > before {
        return None;
    }
    // Docker's order: ALL in `add` starts from everything, ALL in `drop` from nothing; named
    // drops then named adds apply on top (they cannot overlap, checked above).
    let default = CapSet::podman_default();
    let mut set = if add_all.is_some() {
        CapSet::all()
    } else if drop_all.is_some() {
        CapSet::EMPTY
    } else {
        default
    };
    for (d, span) in &drop {
        if let Entry::Cap(d) = d {
            if !set.contains(*d) && add_all.is_none() {
                rx.push(
                    Diagnostic::warning(
                        codes::REDUNDANT_CAPABILITY,
                        format!(
                            "CAP_{} is not in the set, so dropping it does nothing",
                            caps::NAMES[*d as usize]
                        ),
                    )
                    .with_span(Some(*span))
                    .with_label("not in the set")
                    .with_help(if drop_all.is_some() {
                        "`ALL` is dropped already".to_string()
                    } else {
                        format!("the default set is {}", caps::PODMAN_DEFAULT.join(", "))
                    }),
                );
            }
            set.remove(*d);
        }
    }
    for (a, span) in &add {
        if let Entry::Cap(a) = a {
            if set.contains(*a) && add_all.is_none() {
                rx.push(
                    Diagnostic::warning(
                        codes::REDUNDANT_CAPABILITY,
                        format!(
                            "CAP_{} is in the default set already",
                            caps::NAMES[*a as usize]
                        ),
                    )
                    .with_span(Some(*span))
                    .with_label("already there")
                    .with_help(format!(
                        "the default set is {}; drop [\"ALL\"] to start from nothing",
                        caps::PODMAN_DEFAULT.join(", ")
                    )),
                );
            }
            set.insert(*a);
        }
    }
    let mut added = CapSet::EMPTY;
    for (a, _) in &add {
        match a {
            Entry::All => added = CapSet::all(),
            Entry::Cap(a) => added.insert(*a),
        }
    }
    added.0 &= set.0;
    if add_all.is_some() {
        for (a, span) in &add {
            if let Entry::Cap(a) = a {
                rx.push(
                    Diagnostic::warning(
                        codes::REDUNDANT_CAPABILITY,
                        format!("CAP_{} is already added by `ALL`", caps::NAMES[*a as usize]),
                    )
                    .with_span(Some(*span))
                    .with_label("already added")
                    .with_help("remove it"),
                );
            }
        }
    }
    Some((Spanned::new(set, rx.span(c.span)), added))
}

pub fn no_new_privs(s: Option<&Sp<RawSecurity>>) -> bool {
    s.and_then(|s| s.value.no_new_privileges.as_ref())
        .is_none_or(|v| v.value)
}

/// `security.userns` (`--userns`): podman's `keep-id`, or the default.
pub fn userns(rx: &mut Rx<'_>, s: Option<&Sp<RawSecurity>>) -> Option<Spanned<Userns>> {
    let Some(u) = s.and_then(|s| s.value.userns.as_ref()) else {
        return Some(Spanned::bare(Userns::Default));
    };
    match Userns::parse(&u.value) {
        Ok(mode) => Some(rx.spanned(u, mode)),
        Err(e) => {
            rx.push(
                Diagnostic::error(crate::diag::codes::habits::BAD_USERNS, e.to_string())
                    .with_span(Some(u.span))
                    .with_label("this mode")
                    .with_help(e.help()),
            );
            None
        }
    }
}

pub fn seccomp(rx: &mut Rx<'_>, s: Option<&Sp<RawSeccomp>>) -> Option<Spanned<Seccomp>> {
    let Some(p) = s.and_then(|s| s.value.profile.as_ref()) else {
        return Some(Spanned::bare(Seccomp::Default));
    };
    match p.value.as_str() {
        "default" => return Some(rx.spanned(p, Seccomp::Default)),
        "unconfined" => return Some(rx.spanned(p, Seccomp::Unconfined)),
        _ => {}
    }
    let looks_like_path = p.value.contains('/') || p.value.ends_with(".json");
    if !looks_like_path {
        let words = ["default", "unconfined"];
        let help = match suggest::closest(&p.value, words) {
            Some(w) => format!("did you mean `\"{w}\"`?"),
            None => "use `\"default\"`, `\"unconfined\"` or a path to a JSON profile such as `\"./seccomp.json\"`".to_string(),
        };
        rx.push(
            Diagnostic::error(
                codes::BAD_VALUE,
                format!("unknown `seccomp.profile` `{}`", p.value),
            )
            .with_span(Some(p.span))
            .with_label("not default, unconfined or a .json path")
            .with_help(help),
        );
        return None;
    }
    let path = match paths::host_path(&p.value, rx.base_dir) {
        Ok(path) => path,
        Err(e) => {
            rx.push(profile_error(
                p,
                format!("bad `seccomp.profile` path: {e}"),
                None,
            ));
            return None;
        }
    };
    let text = match read_profile(&path) {
        Ok(t) => t,
        Err(e) => {
            rx.push(profile_error(
                p,
                format!("cannot read the seccomp profile {}: {e}", p.value),
                Some("the path is relative to the spec file's directory".into()),
            ));
            return None;
        }
    };
    match seccomp::parse_profile(&text) {
        Ok(profile) => Some(rx.spanned(
            p,
            Seccomp::Profile {
                path,
                profile: Box::new(profile),
            },
        )),
        Err(errors) => {
            for e in errors {
                let at = e
                    .pointer
                    .as_deref()
                    .map(|ptr| format!(" at {ptr}"))
                    .unwrap_or_default();
                rx.push(profile_error(
                    p,
                    format!("seccomp profile {}{at}: {}", p.value, e.message),
                    e.help.clone(),
                ));
            }
            None
        }
    }
}

fn profile_error(p: &Sp<String>, message: String, help: Option<String>) -> Diagnostic {
    let d = Diagnostic::error(codes::SECCOMP_PROFILE, message)
        .with_span(Some(p.span))
        .with_label("this profile");
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
}

/// Read a profile, refusing what is not a regular file of reasonable size (a spec must not be
/// able to make `check` read a FIFO or /dev/zero).
fn read_profile(path: &std::path::Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_PROFILE_BYTES {
        return Err(std::io::Error::other("larger than 4 MiB"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_PROFILE_BYTES)
        .read_to_string(&mut text)?;
    Ok(text)
}
