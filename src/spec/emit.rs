//! A raw spec as Foxbox.toml text: `foxbox run --emit-spec` (or `--dry-run --format toml`)
//! turns a podman-style command line into the spec that makes the same plan.
//!
//! Relative host paths (bind sources, a tarball image, a seccomp profile) are written
//! absolute, so the spec means the same wherever it is saved. `$` is written `$$`, since the
//! spec's strings are interpolated and a command line's are not.

use std::path::Path;

use toml::{Table, Value};

use super::image;
use super::paths;
use super::raw::*;

/// The spec text of `raw`; relative host paths start at `base_dir`.
pub fn to_toml(raw: &RawSpec, base_dir: &Path) -> String {
    let abs = |s: &str| match paths::host_path(s, base_dir) {
        Ok(p) if !s.starts_with('/') => p.display().to_string(),
        _ => s.to_string(),
    };
    let mut root = Table::new();
    if let Some(b) = &raw.box_ {
        let b = &b.value;
        let mut t = Table::new();
        put(&mut t, "name", b.name.as_ref().map(|v| text(&v.value)));
        put(
            &mut t,
            "image",
            b.image.as_ref().map(|v| {
                if image::is_tarball(&v.value) {
                    text(&abs(&v.value))
                } else {
                    text(&v.value)
                }
            }),
        );
        let command = |c: &Sp<RawCommand>| match &c.value {
            RawCommand::Argv(a) => strings(a),
            RawCommand::Shell(s) => text(s),
        };
        put(&mut t, "entrypoint", b.entrypoint.as_ref().map(command));
        put(&mut t, "command", b.command.as_ref().map(command));
        put(
            &mut t,
            "workdir",
            b.workdir.as_ref().map(|v| text(&v.value)),
        );
        put(&mut t, "user", b.user.as_ref().map(|v| text(&v.value)));
        put(
            &mut t,
            "hostname",
            b.hostname.as_ref().map(|v| text(&v.value)),
        );
        put(
            &mut t,
            "env",
            b.env.as_ref().map(|e| {
                Value::Table(
                    e.value
                        .iter()
                        .map(|kv| (kv.key.value.clone(), text(&kv.value.value)))
                        .collect(),
                )
            }),
        );
        put(
            &mut t,
            "tty",
            b.tty.as_ref().map(|v| Value::Boolean(v.value)),
        );
        put(
            &mut t,
            "init",
            b.init.as_ref().map(|v| Value::Boolean(v.value)),
        );
        root.insert("box".into(), Value::Table(t));
    }
    if let Some(l) = &raw.limits {
        let l = &l.value;
        let mut t = Table::new();
        put(&mut t, "memory", l.memory.as_ref().map(|v| size(&v.value)));
        put(
            &mut t,
            "memory_swap",
            l.memory_swap.as_ref().map(|v| size(&v.value)),
        );
        put(
            &mut t,
            "cpus",
            l.cpus.as_ref().map(|v| Value::Float(v.value)),
        );
        put(
            &mut t,
            "pids",
            l.pids.as_ref().map(|v| Value::Integer(v.value)),
        );
        put(
            &mut t,
            "timeout",
            l.timeout.as_ref().map(|v| text(&v.value)),
        );
        put(
            &mut t,
            "stop_timeout",
            l.stop_timeout.as_ref().map(|v| text(&v.value)),
        );
        put(
            &mut t,
            "enforce",
            l.enforce.as_ref().map(|v| text(&v.value)),
        );
        section(&mut root, "limits", t);
    }
    if let Some(c) = &raw.capabilities {
        let mut t = Table::new();
        put(
            &mut t,
            "drop",
            c.value.drop.as_ref().map(|v| strings(&v.value)),
        );
        put(
            &mut t,
            "add",
            c.value.add.as_ref().map(|v| strings(&v.value)),
        );
        section(&mut root, "capabilities", t);
    }
    if let Some(s) = &raw.seccomp {
        let mut t = Table::new();
        put(
            &mut t,
            "profile",
            s.value.profile.as_ref().map(|p| match p.value.as_str() {
                "default" | "unconfined" => text(&p.value),
                other => text(&abs(other)),
            }),
        );
        section(&mut root, "seccomp", t);
    }
    if let Some(s) = &raw.security {
        let mut t = Table::new();
        put(
            &mut t,
            "no_new_privileges",
            s.value
                .no_new_privileges
                .as_ref()
                .map(|v| Value::Boolean(v.value)),
        );
        put(
            &mut t,
            "userns",
            s.value.userns.as_ref().map(|v| text(&v.value)),
        );
        section(&mut root, "security", t);
    }
    if let Some(n) = &raw.network {
        let n = &n.value;
        let mut t = Table::new();
        put(&mut t, "mode", n.mode.as_ref().map(|v| text(&v.value)));
        put(&mut t, "ports", n.ports.as_ref().map(|v| strings(&v.value)));
        put(
            &mut t,
            "allow_host_loopback",
            n.allow_host_loopback
                .as_ref()
                .map(|v| Value::Boolean(v.value)),
        );
        section(&mut root, "network", t);
    }
    if let Some(r) = &raw.rootfs {
        let mut t = Table::new();
        put(
            &mut t,
            "readonly",
            r.value.readonly.as_ref().map(|v| Value::Boolean(v.value)),
        );
        section(&mut root, "rootfs", t);
    }
    if !raw.mounts.is_empty() {
        let mounts = raw
            .mounts
            .iter()
            .map(|m| {
                let m = &m.value;
                let mut t = Table::new();
                let kind = m.kind.as_ref().map(|v| v.value.as_str());
                put(&mut t, "type", kind.map(text));
                put(
                    &mut t,
                    "source",
                    m.source.as_ref().map(|v| {
                        if kind == Some("bind") {
                            text(&abs(&v.value))
                        } else {
                            text(&v.value)
                        }
                    }),
                );
                put(&mut t, "target", m.target.as_ref().map(|v| text(&v.value)));
                put(
                    &mut t,
                    "readonly",
                    m.readonly.as_ref().map(|v| Value::Boolean(v.value)),
                );
                put(&mut t, "size", m.size.as_ref().map(|v| size(&v.value)));
                put(
                    &mut t,
                    "mode",
                    m.mode.as_ref().map(|v| match &v.value {
                        RawMode::Int { value, radix: 8 } => text(&format!("{value:o}")),
                        RawMode::Int { value, .. } => Value::Integer(*value),
                        RawMode::Text(s) => text(s),
                    }),
                );
                put(
                    &mut t,
                    "exec",
                    m.exec.as_ref().map(|v| Value::Boolean(v.value)),
                );
                put(
                    &mut t,
                    "chown",
                    m.chown.as_ref().map(|v| Value::Boolean(v.value)),
                );
                put(
                    &mut t,
                    "overlay",
                    m.overlay.as_ref().map(|v| Value::Boolean(v.value)),
                );
                Value::Table(t)
            })
            .collect();
        root.insert("mounts".into(), Value::Array(mounts));
    }
    let body = toml::to_string(&root).unwrap_or_default();
    format!("# Made by `foxbox run --emit-spec`.\n{body}")
}

/// A string value as the spec writes it: `$` doubled, since spec strings are interpolated.
fn text(s: &str) -> Value {
    Value::String(s.replace('$', "$$"))
}

fn strings(v: &[Sp<String>]) -> Value {
    Value::Array(v.iter().map(|s| text(&s.value)).collect())
}

fn size(s: &RawSize) -> Value {
    match s {
        RawSize::Bytes(b) => Value::Integer(*b),
        RawSize::Text(t) => text(t),
    }
}

fn put(t: &mut Table, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        t.insert(key.into(), v);
    }
}

fn section(root: &mut Table, name: &str, t: Table) {
    if !t.is_empty() {
        root.insert(name.into(), Value::Table(t));
    }
}
