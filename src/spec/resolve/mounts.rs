//! `[[mounts]]` and `[rootfs]`.

use std::path::{Path, PathBuf};

use super::process::{path_error, valid_name};
use super::Rx;
use crate::diag::Diagnostic;
use crate::plan::{Mount, MountKind, Rootfs, Span, Spanned};
use crate::spec::codes;
use crate::spec::paths;
use crate::spec::raw::{RawMode, RawMount, RawRootfs, Sp};
use crate::spec::suggest;

const TYPES: &[&str] = &["bind", "tmpfs", "volume"];

/// Host paths whose writable bind mount hands the box the host.
const SENSITIVE: &[&str] = &[
    "/",
    "/etc",
    "/root",
    "/home",
    "/boot",
    "/proc",
    "/sys",
    "/dev",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
];

pub fn resolve(rx: &mut Rx<'_>, raw: &[Sp<RawMount>]) -> Option<Vec<Mount>> {
    let before = rx.error_count();
    let mut out = Vec::new();
    let mut targets: std::collections::HashMap<PathBuf, Span> = std::collections::HashMap::new();
    for m in raw {
        let (target, mount) = one(rx, m);
        let Some(target) = target else { continue };
        let t_span = m.value.target.as_ref().map_or(m.span, |t| t.span);
        if let Some(first) = targets.get(&target) {
            rx.push(
                Diagnostic::error(
                    codes::DUPLICATE_MOUNT,
                    format!("two mounts on {}", target.display()),
                )
                .with_span(Some(t_span))
                .with_label("mounted again here")
                .with_related(Some(*first), "first mounted here")
                .with_help(
                    "the second mount would hide the first: remove one or change its target",
                ),
            );
            continue;
        }
        targets.insert(target, t_span);
        out.extend(mount);
    }
    (rx.error_count() == before).then_some(out)
}

fn missing(rx: &mut Rx<'_>, m: &Sp<RawMount>, key: &str, help: &str) {
    rx.push(
        Diagnostic::error(codes::MISSING_KEY, format!("this mount has no `{key}`"))
            .with_span(Some(m.span))
            .with_label(format!("needs `{key}`"))
            .with_help(help.to_string()),
    );
}

fn not_for(rx: &mut Rx<'_>, kind: &str, key: &str, span: Span, help: &str) {
    rx.push(
        Diagnostic::error(
            codes::BAD_MOUNT,
            format!("`{key}` does not apply to a {kind} mount"),
        )
        .with_span(Some(span))
        .with_label(format!("not for {kind}"))
        .with_help(help.to_string()),
    );
}

/// One mount: its target (when that is valid, for the duplicate check) and the mount (when
/// all of it is).
fn one(rx: &mut Rx<'_>, m: &Sp<RawMount>) -> (Option<PathBuf>, Option<Mount>) {
    let mount = one_mount(rx, m);
    let target = mount.as_ref().map(|m| m.target.clone()).or_else(|| {
        m.value
            .target
            .as_ref()
            .and_then(|t| paths::box_path(&t.value).ok())
    });
    (target, mount)
}

fn one_mount(rx: &mut Rx<'_>, m: &Sp<RawMount>) -> Option<Mount> {
    let raw = &m.value;
    let before = rx.error_count();
    let kind = match &raw.kind {
        None => {
            missing(
                rx,
                m,
                "type",
                "add `type = \"bind\"`, `\"tmpfs\"` or `\"volume\"`",
            );
            None
        }
        Some(k) if TYPES.contains(&k.value.as_str()) => Some(k.value.as_str()),
        Some(k) => {
            let help = match suggest::closest(&k.value, TYPES.iter().copied()) {
                Some(w) => format!("did you mean `\"{w}\"`?"),
                None => format!("use {}", suggest::one_of(TYPES)),
            };
            rx.push(
                Diagnostic::error(
                    codes::BAD_VALUE,
                    format!("unknown mount type `{}`", k.value),
                )
                .with_span(Some(k.span))
                .with_label("unknown type")
                .with_help(help),
            );
            None
        }
    };
    let target = match &raw.target {
        None => {
            missing(rx, m, "target", "add `target = \"/path/in/the/box\"`");
            None
        }
        Some(t) => target(rx, t),
    };
    let kind = match kind? {
        "bind" => bind(rx, m),
        "tmpfs" => tmpfs(rx, m),
        _ => volume(rx, m),
    };
    if rx.error_count() > before {
        return None;
    }
    let readonly = raw.readonly.as_ref().is_some_and(|r| r.value);
    let chown = raw.chown.as_ref().is_some_and(|c| c.value);
    let overlay = raw.overlay.as_ref().filter(|o| o.value);
    if let Some(o) = overlay {
        // podman: `O` takes no other option. A read-only overlay is a read-only bind, and a
        // chown would change the source the overlay is there to keep as it is.
        let other = [("readonly", readonly), ("chown", chown)]
            .into_iter()
            .find(|(_, set)| *set);
        if let Some((key, _)) = other {
            rx.push(
                Diagnostic::error(
                    codes::BAD_MOUNT,
                    format!("`overlay` does not go with `{key}`"),
                )
                .with_span(Some(o.span))
                .with_label("an overlay")
                .with_help(if key == "readonly" {
                    "drop `overlay` for a read-only mount, or `readonly` to let the box write \
                     into the overlay"
                } else {
                    "drop `chown`: the overlay keeps the source as it is (files the box writes \
                     are its user's anyway)"
                }),
            );
            return None;
        }
    }
    if let MountKind::Bind { source } = kind.as_ref()? {
        if !readonly && SENSITIVE.iter().any(|s| Path::new(s) == source) {
            rx.push(
                Diagnostic::warning(
                    codes::SENSITIVE_BIND,
                    format!("{} is bind-mounted writable", source.display()),
                )
                .with_span(raw.source.as_ref().map(|s| s.span))
                .with_label("writable host path")
                .with_help("the box can change the host through it; add `readonly = true` unless that is the point"),
            );
        }
    }
    Some(Mount {
        kind: kind?,
        target: target?,
        readonly,
        chown,
        overlay: overlay.is_some(),
        span: rx.span(m.span),
    })
}

fn target(rx: &mut Rx<'_>, t: &Sp<String>) -> Option<PathBuf> {
    let p = match paths::box_path(&t.value) {
        Ok(p) => p,
        Err(e) => {
            rx.push(path_error(e, "mounts.target", t));
            return None;
        }
    };
    let why = if p == Path::new("/") {
        Some("a mount on / would hide the box's root filesystem")
    } else if p.starts_with("/proc") {
        Some("a mount on /proc would undo the box's /proc protections")
    } else {
        None
    };
    if let Some(why) = why {
        rx.push(
            Diagnostic::error(codes::BAD_PATH, format!("cannot mount on {}", p.display()))
                .with_span(Some(t.span))
                .with_label("reserved target")
                .with_help(why.to_string()),
        );
        return None;
    }
    Some(p)
}

fn bind(rx: &mut Rx<'_>, m: &Sp<RawMount>) -> Option<MountKind> {
    let raw = &m.value;
    if let Some(s) = &raw.exec {
        not_for(rx, "bind", "exec", s.span, "`exec` is for tmpfs mounts");
    }
    if let Some(s) = &raw.size {
        not_for(rx, "bind", "size", s.span, "`size` is for tmpfs mounts");
    }
    if let Some(s) = &raw.mode {
        not_for(
            rx,
            "bind",
            "mode",
            s.span,
            "a bind mount keeps the permissions of its source",
        );
    }
    let Some(src) = &raw.source else {
        missing(
            rx,
            m,
            "source",
            "add `source = \"./dir\"` (relative to the spec file's directory)",
        );
        return None;
    };
    if src.value.starts_with('~') {
        rx.push(
            Diagnostic::warning(codes::BAD_PATH, "`~` is not expanded in mount sources")
                .with_span(Some(src.span))
                .with_label("a directory named `~` next to the spec")
                .with_help("write the path relative to the spec file's directory, or absolute"),
        );
    }
    match paths::host_path(&src.value, rx.base_dir) {
        Ok(source) => Some(MountKind::Bind { source }),
        Err(e) => {
            rx.push(
                Diagnostic::error(codes::BAD_PATH, format!("bad bind `source`: {e}"))
                    .with_span(Some(src.span))
                    .with_label("bad path")
                    .with_help(
                        "give a host path, relative to the spec file's directory or absolute",
                    ),
            );
            None
        }
    }
}

fn volume(rx: &mut Rx<'_>, m: &Sp<RawMount>) -> Option<MountKind> {
    let raw = &m.value;
    if let Some(s) = &raw.exec {
        not_for(rx, "volume", "exec", s.span, "`exec` is for tmpfs mounts");
    }
    if let Some(s) = &raw.size {
        not_for(rx, "volume", "size", s.span, "`size` is for tmpfs mounts");
    }
    if let Some(s) = &raw.mode {
        not_for(rx, "volume", "mode", s.span, "`mode` is for tmpfs mounts");
    }
    let Some(src) = &raw.source else {
        missing(
            rx,
            m,
            "source",
            "add `source = \"name\"`, the volume's name",
        );
        return None;
    };
    if valid_name(&src.value) {
        return Some(MountKind::Volume {
            name: src.value.clone(),
        });
    }
    let help = if src.value.contains('/') {
        "a volume's source is its name; for a host path use `type = \"bind\"`"
    } else {
        "use letters, digits, `_`, `.` and `-`, starting with a letter or digit"
    };
    rx.push(
        Diagnostic::error(
            codes::BAD_NAME,
            format!("`{}` is not a valid volume name", src.value),
        )
        .with_span(Some(src.span))
        .with_label("bad volume name")
        .with_help(help),
    );
    None
}

fn tmpfs(rx: &mut Rx<'_>, m: &Sp<RawMount>) -> Option<MountKind> {
    let raw = &m.value;
    if let Some(s) = &raw.chown {
        not_for(
            rx,
            "tmpfs",
            "chown",
            s.span,
            "`chown` is for bind and volume mounts",
        );
    }
    if let Some(s) = &raw.overlay {
        not_for(
            rx,
            "tmpfs",
            "overlay",
            s.span,
            "a tmpfs is already the box's own",
        );
    }
    if let Some(s) = &raw.source {
        not_for(
            rx,
            "tmpfs",
            "source",
            s.span,
            "a tmpfs starts empty: remove `source`",
        );
    }
    let size = raw.size.as_ref().map(|s| match super::limits::size(rx, s, "mounts.size") {
        Some(0) => {
            rx.push(
                Diagnostic::error(codes::BAD_SIZE, "a tmpfs `size` of 0 means no limit at all")
                    .with_span(Some(s.span))
                    .with_label("zero")
                    .with_help("give a size like `\"64m\"`, or omit `size` for the kernel's default (half of RAM)"),
            );
            None
        }
        n => n,
    });
    let mode = raw.mode.as_ref().map(|md| mode(rx, md));
    // Both are checked before either can stop the mount, so both get reported.
    let size = match size {
        Some(s) => Some(s?),
        None => None,
    };
    let mode = match mode {
        Some(m) => Some(m?),
        None => None,
    };
    Some(MountKind::Tmpfs {
        size,
        mode,
        noexec: raw.exec.as_ref().is_some_and(|e| !e.value),
    })
}

fn mode(rx: &mut Rx<'_>, m: &Sp<RawMode>) -> Option<u32> {
    let parsed = match &m.value {
        RawMode::Int { value, radix: 8 } => u32::try_from(*value).ok(),
        RawMode::Int { value, .. } => {
            rx.push(
                Diagnostic::error(
                    codes::BAD_MODE,
                    format!("the mode {value} is not written in octal"),
                )
                .with_span(Some(m.span))
                .with_label("not octal")
                .with_help(format!(
                    "write `0o{value}` or `\"{value}\"`: modes are octal"
                )),
            );
            return None;
        }
        RawMode::Text(t) => {
            let t = t.trim();
            let t = t.strip_prefix("0o").unwrap_or(t);
            if !t.is_empty() && t.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                u32::from_str_radix(t, 8).ok()
            } else {
                None
            }
        }
    };
    match parsed.filter(|v| *v <= 0o7777) {
        Some(v) => Some(v),
        None => {
            rx.push(
                Diagnostic::error(codes::BAD_MODE, "not a file mode")
                    .with_span(Some(m.span))
                    .with_label("not an octal mode up to 7777")
                    .with_help("write octal digits, e.g. `\"1777\"` or `\"0755\"`"),
            );
            None
        }
    }
}

/// `[rootfs]`. A read-only root needs no writable /tmp from the spec: the executor keeps /tmp,
/// /var/tmp and /run writable (tmpfs each) unless a mount of the spec takes their place.
pub fn rootfs(rx: &mut Rx<'_>, r: Option<&Sp<RawRootfs>>) -> Rootfs {
    let readonly = match r.and_then(|r| r.value.readonly.as_ref()) {
        Some(ro) => rx.spanned(ro, ro.value),
        None => Spanned::bare(false),
    };
    Rootfs { readonly }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn check(text: &str) -> (Option<crate::plan::Plan>, Vec<crate::diag::Diagnostic>) {
        crate::spec::check_str(text, Path::new("/w/Foxbox.toml"), Path::new("/w"))
    }

    #[test]
    fn chown_overlay_and_userns_keys() {
        let (plan, d) = check(
            "[box]\nimage = \"busybox\"\n[security]\nuserns = \"keep-id:uid=7\"\n\
             [[mounts]]\ntype = \"bind\"\nsource = \"./a\"\ntarget = \"/a\"\nchown = true\n\
             [[mounts]]\ntype = \"volume\"\nsource = \"v\"\ntarget = \"/v\"\noverlay = true\n",
        );
        let plan = plan.unwrap_or_else(|| panic!("{d:?}"));
        assert!(plan.mounts[0].chown && !plan.mounts[0].overlay);
        assert!(plan.mounts[1].overlay);
        assert_eq!(
            plan.userns.value,
            crate::plan::Userns::KeepId {
                uid: Some(7),
                gid: None
            }
        );
        for (mount, says) in [
            (
                "type = \"tmpfs\"\ntarget = \"/t\"\nchown = true",
                "`chown` does not apply to a tmpfs mount",
            ),
            (
                "type = \"bind\"\nsource = \"./a\"\ntarget = \"/a\"\noverlay = true\nreadonly = true",
                "`overlay` does not go with `readonly`",
            ),
        ] {
            let (plan, d) = check(&format!(
                "[box]\nimage = \"busybox\"\n[[mounts]]\n{mount}\n"
            ));
            assert!(plan.is_none());
            assert!(d.iter().any(|d| d.message.contains(says)), "{d:?}");
        }
        let (plan, d) = check("[box]\nimage = \"busybox\"\n[security]\nuserns = \"nomap\"\n");
        assert!(plan.is_none());
        assert_eq!(d[0].code, crate::diag::codes::habits::BAD_USERNS);
    }
}
