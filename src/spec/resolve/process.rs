//! `[box]`: name, image, entrypoint, command, workdir, user, hostname, env, tty, init.

use std::path::PathBuf;

use super::Rx;
use crate::diag::Diagnostic;
use crate::plan::{Argv, ArgvPart, ImageRef, Process, Spanned, User};
use crate::spec::codes;
use crate::spec::image;
use crate::spec::paths::{self, PathError};
use crate::spec::raw::{RawBox, RawCommand, Sp};

/// The default PATH, as podman sets it.
pub use crate::plan::DEFAULT_PATH;

/// What `[box]` resolves into.
pub struct Boxed {
    pub name: Option<Spanned<String>>,
    pub image: Spanned<ImageRef>,
    pub process: Process,
    pub hostname: Option<Spanned<String>>,
}

pub fn resolve(rx: &mut Rx<'_>, b: Option<&Sp<RawBox>>) -> Option<Boxed> {
    let empty = RawBox::default();
    let raw = b.map(|b| &b.value).unwrap_or(&empty);
    let name = raw.name.as_ref().and_then(|n| box_name(rx, n));
    let image = match &raw.image {
        Some(i) => image_ref(rx, i),
        None => {
            rx.push(
                Diagnostic::error(codes::MISSING_IMAGE, "the spec has no `box.image`")
                    .with_span(b.map(|b| b.span))
                    .with_label("this section needs an `image`")
                    .with_help(
                        "add `image = \"busybox\"` (a stored image) or `image = \"./rootfs.tar.gz\"` under [box]",
                    ),
            );
            None
        }
    };
    let argv = argv(rx, raw);
    let cwd = match &raw.workdir {
        Some(w) => match paths::box_path(&w.value) {
            Ok(p) => Some(rx.spanned(w, p)),
            Err(e) => {
                rx.push(path_error(e, "box.workdir", w));
                None
            }
        },
        None => Some(Spanned::bare(PathBuf::from("/"))),
    };
    let user = match &raw.user {
        Some(u) => user(rx, u).map(|v| rx.spanned(u, v)),
        None => Some(Spanned::bare(User::Id { uid: 0, gid: None })),
    };
    let mut hostname = raw.hostname.as_ref().and_then(|h| hostname(rx, h));
    if let (Some(n), None) = (&name, &raw.hostname) {
        let derived = hostname_for(&n.value);
        if !valid_hostname(&derived) {
            rx.push(
                Diagnostic::warning(
                    codes::BAD_HOSTNAME,
                    format!("the hostname defaults to the box name, and `{derived}` is not a valid hostname"),
                )
                .with_span(n.span)
                .with_label("used as the hostname")
                .with_help("set `hostname` explicitly, or use only letters, digits, `-` and `.` in the name"),
            );
        }
        // A name longer than a hostname may be gives its start (names may have 128
        // characters, the kernel's hostnames 64).
        if derived != n.value {
            hostname = Some(Spanned {
                value: derived,
                span: n.span,
            });
        }
    }
    let env = env(rx, raw);
    let process = Process {
        args: Spanned::bare(Vec::new()),
        argv: argv?,
        env: env?,
        cwd: cwd?,
        user: user?,
        tty: raw.tty.as_ref().map(|t| t.value),
        init: raw.init.as_ref().is_some_and(|i| i.value),
        given: crate::plan::Given {
            cwd: raw.workdir.is_some(),
            user: raw.user.is_some(),
        },
    };
    if raw.name.is_some() && name.is_none() || raw.hostname.is_some() && hostname.is_none() {
        return None;
    }
    Some(Boxed {
        name,
        image: image?,
        process,
        hostname,
    })
}

/// A diagnostic for a bad path in the box.
pub fn path_error(e: PathError, what: &str, v: &Sp<String>) -> Diagnostic {
    let help = match &e {
        PathError::Relative(p) => format!("paths inside the box are absolute: `/{p}`"),
        PathError::DotDot(_) => "write the path without `..`".to_string(),
        PathError::Empty | PathError::Nul => "give an absolute path like `/work`".to_string(),
    };
    Diagnostic::error(codes::BAD_PATH, format!("bad `{what}`: {e}"))
        .with_span(Some(v.span))
        .with_label("not an absolute path without `..`")
        .with_help(help)
}

/// Names of boxes and volumes, by the same rule the box and volume stores apply.
pub fn valid_name(n: &str) -> bool {
    crate::plan::names::validate_name(n).is_ok()
}

fn box_name(rx: &mut Rx<'_>, n: &Sp<String>) -> Option<Spanned<String>> {
    if valid_name(&n.value) {
        return Some(rx.spanned(n, n.value.clone()));
    }
    rx.push(
        Diagnostic::error(
            codes::BAD_NAME,
            format!("`{}` is not a valid box name", n.value),
        )
        .with_span(Some(n.span))
        .with_label("bad name")
        .with_help(
            "use letters, digits, `_`, `.` and `-`, starting with a letter or digit (at most 128)",
        ),
    );
    None
}

fn image_ref(rx: &mut Rx<'_>, i: &Sp<String>) -> Option<Spanned<ImageRef>> {
    match image::parse_image(&i.value, rx.base_dir) {
        Ok(r) => Some(rx.spanned(i, r)),
        Err(e) => {
            rx.push(
                Diagnostic::error(codes::BAD_IMAGE, format!("bad `box.image`: {e}"))
                    .with_span(Some(i.span))
                    .with_label("bad image")
                    .with_help("write `name[:tag][@sha256:<hex>]` for a stored image, or a path ending in .tar or .tar.gz (starting with ./ when relative)"),
            );
            None
        }
    }
}

/// `box.entrypoint` and `box.command`: the argv's two parts, which the image completes.
fn argv(rx: &mut Rx<'_>, raw: &RawBox) -> Option<Argv> {
    let entrypoint = raw
        .entrypoint
        .as_ref()
        .map(|e| entrypoint(rx, e).map(|w| ArgvPart::given(rx.spanned(e, w))));
    let command = raw
        .command
        .as_ref()
        .map(|c| command(rx, "box.command", c).map(|w| ArgvPart::given(rx.spanned(c, w))));
    if let (Some(Some(e)), None) = (&entrypoint, &raw.command) {
        if e.words.value.is_empty() {
            // The image's command goes with its entrypoint (as in Docker): nothing is left.
            let span = raw.entrypoint.as_ref().map(|e| e.span);
            rx.push(
                Diagnostic::error(
                    codes::NO_COMMAND,
                    "`box.entrypoint` is empty and `box.command` is not set: nothing to run",
                )
                .with_span(span)
                .with_label("clears the image's entrypoint and drops its command")
                .with_help("give a command (`command = [\"program\", \"arg\"]`, or the words after the image or `--`), or leave the entrypoint to the image"),
            );
            return None;
        }
    }
    // `None` when the spec leaves a part to the image; `Some(None)` when it is bad.
    let read = |v: Option<Option<ArgvPart>>| match v {
        None => Some(None),
        Some(part) => part.map(Some),
    };
    Some(Argv {
        entrypoint: read(entrypoint)?,
        command: read(command)?,
    })
}

/// An entrypoint: a command, or nothing (`[]`, `""` or Docker's `[""]`), which clears the
/// image's, as in Compose.
fn entrypoint(rx: &mut Rx<'_>, e: &Sp<RawCommand>) -> Option<Vec<String>> {
    let cleared = match &e.value {
        RawCommand::Shell(s) => s.is_empty(),
        RawCommand::Argv(a) => a.is_empty() || a.len() == 1 && a[0].value.is_empty(),
    };
    if cleared {
        return Some(Vec::new());
    }
    command(rx, "box.entrypoint", e)
}

fn command(rx: &mut Rx<'_>, what: &str, c: &Sp<RawCommand>) -> Option<Vec<String>> {
    let bad = |rx: &mut Rx<'_>, span, msg: &str, help: &str| {
        rx.push(
            Diagnostic::error(codes::BAD_COMMAND, msg.to_string())
                .with_span(Some(span))
                .with_label("here")
                .with_help(help.to_string()),
        );
    };
    let omit = if what == "box.entrypoint" {
        "write `entrypoint = []` to clear the image's entrypoint, or omit it to keep it"
    } else {
        "omit `command` to run the image's default command"
    };
    match &c.value {
        RawCommand::Shell(s) => {
            if s.trim().is_empty() {
                bad(rx, c.span, &format!("`{what}` is empty"), omit);
                return None;
            }
            if s.contains('\0') {
                bad(
                    rx,
                    c.span,
                    &format!("`{what}` contains a NUL byte"),
                    "remove the \\u0000",
                );
                return None;
            }
            Some(vec!["/bin/sh".into(), "-c".into(), s.clone()])
        }
        RawCommand::Argv(args) => {
            let Some(first) = args.first() else {
                bad(rx, c.span, &format!("`{what}` is empty"), omit);
                return None;
            };
            let mut ok = true;
            if first.value.is_empty() {
                bad(
                    rx,
                    first.span,
                    "the program to run is empty",
                    "name a program, e.g. `\"/bin/sh\"`",
                );
                ok = false;
            }
            for a in args {
                if a.value.contains('\0') {
                    bad(
                        rx,
                        a.span,
                        &format!("an argument of `{what}` contains a NUL byte"),
                        "remove the \\u0000",
                    );
                    ok = false;
                }
            }
            ok.then(|| args.iter().map(|a| a.value.clone()).collect())
        }
    }
}

fn user(rx: &mut Rx<'_>, u: &Sp<String>) -> Option<User> {
    match User::parse(&u.value) {
        Ok(user) => Some(user),
        Err(e) => {
            rx.push(
                Diagnostic::error(codes::BAD_USER, e.to_string())
                    .with_span(Some(u.span))
                    .with_label("bad user")
                    .with_help(e.help()),
            );
            None
        }
    }
}

/// The hostname a box named `name` gets when its spec sets none: the name, cut to one label's
/// 63 characters (and to end in a letter or digit) when it is longer.
pub fn hostname_for(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_string();
    }
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// RFC 1123 host names: dot-separated labels of letters, digits and `-`, at most 64 bytes
/// (the kernel's limit).
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

fn hostname(rx: &mut Rx<'_>, h: &Sp<String>) -> Option<Spanned<String>> {
    if valid_hostname(&h.value) {
        return Some(rx.spanned(h, h.value.clone()));
    }
    rx.push(
        Diagnostic::error(
            codes::BAD_HOSTNAME,
            format!("`{}` is not a valid hostname", h.value),
        )
        .with_span(Some(h.span))
        .with_label("bad hostname")
        .with_help("use letters, digits and `-` in dot-separated labels, at most 64 characters"),
    );
    None
}

fn env(rx: &mut Rx<'_>, raw: &RawBox) -> Option<Vec<(String, String)>> {
    let mut out = vec![("PATH".to_string(), DEFAULT_PATH.to_string())];
    let mut index: std::collections::HashMap<String, usize> =
        std::collections::HashMap::from([("PATH".to_string(), 0)]);
    let mut ok = true;
    for e in raw.env.iter().flat_map(|e| e.value.iter()) {
        let k = &e.key.value;
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            rx.push(
                Diagnostic::error(
                    codes::BAD_ENV,
                    format!("`{k}` is not a valid environment variable name"),
                )
                .with_span(Some(e.key.span))
                .with_label("bad name")
                .with_help("names are non-empty and contain neither `=` nor NUL"),
            );
            ok = false;
            continue;
        }
        if e.value.value.contains('\0') {
            rx.push(
                Diagnostic::error(
                    codes::BAD_ENV,
                    format!("the value of `{k}` contains a NUL byte"),
                )
                .with_span(Some(e.value.span))
                .with_label("NUL byte")
                .with_help("remove the \\u0000"),
            );
            ok = false;
            continue;
        }
        match index.get(k) {
            Some(i) => out[*i].1 = e.value.value.clone(),
            None => {
                index.insert(k.clone(), out.len());
                out.push((k.clone(), e.value.value.clone()));
            }
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_is_cut_to_a_valid_hostname() {
        assert_eq!(hostname_for("den"), "den");
        let exact = "a".repeat(63);
        assert_eq!(hostname_for(&exact), exact);
        let long = format!("{}-.b", "a".repeat(61));
        assert_eq!(hostname_for(&long), "a".repeat(61));
        let long = "x".repeat(128);
        assert_eq!(hostname_for(&long), "x".repeat(63));
        assert!(valid_hostname(&hostname_for(&long)));
    }
}
