//! The ordered steps a plan turns into. `foxbox plan` prints this list; the executor runs it.

use serde::Serialize;

use crate::plan::{MountKind, NetMode, Plan, Seccomp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Parent,
    Child,
}

/// One step as shown to the user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDesc {
    pub name: &'static str,
    pub side: Side,
    pub detail: String,
}

fn step(name: &'static str, side: Side, detail: impl Into<String>) -> StepDesc {
    StepDesc {
        name,
        side,
        detail: detail.into(),
    }
}

/// The steps the executor will run for this plan, in order.
pub fn describe(plan: &Plan) -> Vec<StepDesc> {
    use Side::*;
    let mut v = vec![step("image", Parent, image_detail(plan))];
    if plan.limits.needs_cgroup() {
        v.push(step(
            "cgroup",
            Parent,
            "create the box's cgroup and set its limits",
        ));
    }
    let net_ns = match plan.network.mode.value {
        NetMode::Host => "share the host's network namespace",
        _ => "new network namespace",
    };
    v.push(step(
        "clone",
        Parent,
        format!("new user, mount, pid, uts, ipc, cgroup namespaces; {net_ns}"),
    ));
    v.push(step(
        "id-maps",
        Parent,
        "map the caller's uid/gid (and any subordinate range) into the box",
    ));
    match plan.network.mode.value {
        NetMode::Pasta | NetMode::Slirp4netns => {
            v.push(step(
                "network",
                Parent,
                format!("start {:?} user-mode networking", plan.network.mode.value).to_lowercase(),
            ));
        }
        NetMode::None => v.push(step("loopback", Child, "bring up lo")),
        NetMode::Host => {}
    }
    v.push(step("propagation", Child, "make every mount private"));
    v.push(step(
        "rootfs",
        Child,
        "overlay of the image layers with the box's upper dir",
    ));
    v.push(step("proc", Child, "mount a new /proc"));
    v.push(step(
        "dev",
        Child,
        "tmpfs /dev with null, zero, full, random, urandom, tty, pts, shm",
    ));
    v.push(step("sys", Child, "read-only /sys"));
    for m in &plan.mounts {
        let what = match &m.kind {
            MountKind::Bind { source } => format!("bind {}", source.display()),
            MountKind::Tmpfs { .. } => "tmpfs".to_string(),
            MountKind::Volume { name } => format!("volume {name}"),
        };
        let ro = if m.readonly { " (read-only)" } else { "" };
        v.push(step(
            "mount",
            Child,
            format!("{what} -> {}{ro}", m.target.display()),
        ));
    }
    v.push(step(
        "etc-files",
        Child,
        "/etc/hostname, /etc/hosts, /etc/resolv.conf",
    ));
    v.push(step(
        "pivot-root",
        Child,
        "pivot_root into the new root and detach the old one",
    ));
    v.push(step(
        "masked-paths",
        Child,
        "mask /proc/kcore, /proc/keys, /sys/firmware, ...",
    ));
    v.push(step(
        "readonly-paths",
        Child,
        "read-only /proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus",
    ));
    if plan.rootfs.readonly.value {
        v.push(step("readonly-root", Child, "remount / read-only"));
    }
    v.push(step("hostname", Child, "set the hostname"));
    v.push(step(
        "close-fds",
        Child,
        "close every file descriptor above 2",
    ));
    v.push(step("user", Child, "set uid, gid and supplementary groups"));
    if plan.no_new_privs {
        v.push(step("no-new-privs", Child, "set no_new_privs"));
    }
    v.push(step(
        "capabilities",
        Child,
        format!("{} capabilities", plan.capabilities.value.iter().count()),
    ));
    let sc = match &plan.seccomp.value {
        Seccomp::Default => "built-in default profile".to_string(),
        Seccomp::Unconfined => "unconfined".to_string(),
        Seccomp::Profile { path, .. } => format!("profile {}", path.display()),
    };
    if !matches!(plan.seccomp.value, Seccomp::Unconfined) {
        v.push(step("seccomp", Child, sc));
    }
    v.push(step(
        "exec",
        Child,
        format!("{:?}", plan.process.args.value),
    ));
    v
}

fn image_detail(plan: &Plan) -> String {
    match &plan.image.value {
        crate::plan::ImageRef::Stored { name, tag, digest } => match digest {
            Some(d) => format!("{name}:{tag}@{d}"),
            None => format!("{name}:{tag}"),
        },
        crate::plan::ImageRef::Tarball { path } => format!("import {}", path.display()),
    }
}
