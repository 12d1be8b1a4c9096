//! The ordered steps a plan turns into: the single list that `foxbox plan` prints and the
//! executor runs (each [`Step`] names the [`Action`] the parent or the child performs).

use serde::Serialize;

use crate::plan::{MountKind, NetMode, Plan, Seccomp, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Parent,
    Child,
}

/// What a step does. The parent and the child each match on this to run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Image,
    Clone,
    IdMaps,
    Cgroup,
    Network,
    Loopback,
    /// Start making the box's network namespace beside the set-up process.
    NetNs,
    /// Join the network namespace made since [`Action::NetNs`].
    JoinNetNs,
    Propagation,
    Rootfs,
    Proc,
    Dev,
    Sys,
    /// The plan's mount with this index.
    Mount(usize),
    PivotRoot,
    MaskedPaths,
    ReadonlyPaths,
    ReadonlyRoot,
    /// A new session, on a pty from the box's own devpts when there is a terminal.
    Console,
    Hostname,
    CloseFds,
    User,
    Workdir,
    Env,
    Seccomp,
    Capabilities,
    NoNewPrivs,
    /// Fork a tiny init that stays pid 1.
    Init,
    Exec,
}

/// One step: what it does, on which side, how it reads, and the spec line that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub action: Action,
    pub name: &'static str,
    pub side: Side,
    pub detail: String,
    pub span: Option<Span>,
}

/// One step as shown to the user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDesc {
    pub name: &'static str,
    pub side: Side,
    pub detail: String,
}

/// Choices made at start rather than in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartChoices {
    /// Whether the box gets a pty (`None`: not decided yet, as for `foxbox plan`).
    pub tty: Option<bool>,
}

fn step(action: Action, name: &'static str, side: Side, detail: impl Into<String>) -> Step {
    Step {
        action,
        name,
        side,
        detail: detail.into(),
        span: None,
    }
}

impl Step {
    fn at(mut self, span: Option<Span>) -> Step {
        self.span = span;
        self
    }
}

/// The steps the executor runs for this plan, in order.
pub fn steps(plan: &Plan, choices: StartChoices) -> Vec<Step> {
    use Action as A;
    use Side::*;
    let mut v = vec![step(A::Image, "image", Parent, image_detail(plan)).at(plan.image.span)];
    let net_ns = match plan.network.mode.value {
        NetMode::Host => "share the host's network namespace",
        _ => "new network namespace",
    };
    v.push(step(
        A::Clone,
        "clone",
        Parent,
        format!("new user, mount, pid, uts, ipc, cgroup namespaces; {net_ns}"),
    ));
    v.push(step(
        A::IdMaps,
        "id-maps",
        Parent,
        "map the caller's uid/gid (and any subordinate range) into the box",
    ));
    if plan.limits.needs_cgroup() {
        let l = &plan.limits;
        let span = (l.memory.as_ref().and_then(|m| m.span))
            .or(l.cpus.as_ref().and_then(|c| c.span))
            .or(l.pids.as_ref().and_then(|p| p.span));
        v.push(
            step(
                A::Cgroup,
                "cgroup",
                Parent,
                "put the box in its cgroup with its limits",
            )
            .at(span),
        );
    }
    let net_span = plan.network.mode.span;
    match plan.network.mode.value {
        NetMode::Pasta | NetMode::Slirp4netns => {
            v.push(
                step(
                    A::Network,
                    "network",
                    Parent,
                    format!("start {:?} user-mode networking", plan.network.mode.value)
                        .to_lowercase(),
                )
                .at(net_span),
            );
            v.push(step(A::Loopback, "loopback", Child, "bring up lo").at(net_span));
        }
        NetMode::None => v.push(
            step(
                A::NetNs,
                "netns",
                Child,
                "make a network namespace with lo up, beside the steps that follow",
            )
            .at(net_span),
        ),
        NetMode::Host => {}
    }
    v.push(step(
        A::Propagation,
        "propagation",
        Child,
        "make every mount private",
    ));
    v.push(step(
        A::Rootfs,
        "rootfs",
        Child,
        "overlay of the image layers with the box's upper dir; \
         /etc/hostname, /etc/hosts, /etc/resolv.conf on top",
    ));
    v.push(step(A::Proc, "proc", Child, "mount a new /proc"));
    v.push(step(
        A::Dev,
        "dev",
        Child,
        "tmpfs /dev with null, zero, full, random, urandom, tty, pts, shm",
    ));
    if plan.network.mode.value == NetMode::None {
        // Before /sys: a sysfs mount shows the network namespace of its mounter.
        v.push(
            step(
                A::JoinNetNs,
                "join-netns",
                Child,
                "enter the network namespace made since `netns`",
            )
            .at(net_span),
        );
    }
    v.push(step(A::Sys, "sys", Child, "read-only /sys"));
    for (i, m) in plan.mounts.iter().enumerate() {
        let what = match &m.kind {
            MountKind::Bind { source } => format!("bind {}", source.display()),
            MountKind::Tmpfs { .. } => "tmpfs".to_string(),
            MountKind::Volume { name } => format!("volume {name}"),
        };
        let ro = if m.readonly { " (read-only)" } else { "" };
        v.push(
            step(
                A::Mount(i),
                "mount",
                Child,
                format!("{what} -> {}{ro}", m.target.display()),
            )
            .at(m.span),
        );
    }
    v.push(step(
        A::PivotRoot,
        "pivot-root",
        Child,
        "pivot_root into the new root and detach the old one",
    ));
    v.push(step(
        A::MaskedPaths,
        "masked-paths",
        Child,
        "mask /proc/kcore, /proc/keys, /sys/firmware, ...",
    ));
    v.push(step(
        A::ReadonlyPaths,
        "readonly-paths",
        Child,
        "read-only /proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus",
    ));
    if plan.rootfs.readonly.value {
        v.push(
            step(
                A::ReadonlyRoot,
                "readonly-root",
                Child,
                "tmpfs on /tmp, /var/tmp, /run; remount / read-only",
            )
            .at(plan.rootfs.readonly.span),
        );
    }
    let console = match choices.tty {
        Some(true) => "new session on a pty of the box's own devpts",
        Some(false) => "new session without a controlling terminal",
        None => "new session (on a pty when there is a terminal)",
    };
    v.push(step(A::Console, "console", Child, console));
    v.push(
        step(A::Hostname, "hostname", Child, "set the hostname")
            .at(plan.hostname.as_ref().and_then(|h| h.span)),
    );
    v.push(step(
        A::CloseFds,
        "close-fds",
        Child,
        "close every file descriptor above 2",
    ));
    let seccomp = step(
        A::Seccomp,
        "seccomp",
        Child,
        seccomp_detail(&plan.seccomp.value),
    )
    .at(plan.seccomp.span);
    let has_seccomp = !matches!(plan.seccomp.value, Seccomp::Unconfined);
    // Without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes in while the box's root
    // still has it; with no_new_privs it goes in as late as possible.
    if has_seccomp && !plan.no_new_privs {
        v.push(seccomp.clone());
    }
    v.push(
        step(
            A::User,
            "user",
            Child,
            "set uid, gid and supplementary groups",
        )
        .at(plan.process.user.span),
    );
    v.push(
        step(
            A::Workdir,
            "workdir",
            Child,
            plan.process.cwd.value.display().to_string(),
        )
        .at(plan.process.cwd.span),
    );
    v.push(step(
        A::Env,
        "env",
        Child,
        "PATH, HOME, TERM, HOSTNAME under the plan's variables",
    ));
    v.push(
        step(
            A::Capabilities,
            "capabilities",
            Child,
            format!("{} capabilities", plan.capabilities.value.iter().count()),
        )
        .at(plan.capabilities.span),
    );
    if plan.no_new_privs {
        v.push(step(
            A::NoNewPrivs,
            "no-new-privs",
            Child,
            "set no_new_privs",
        ));
        if has_seccomp {
            v.push(seccomp);
        }
    }
    if plan.process.init {
        v.push(step(
            A::Init,
            "init",
            Child,
            "fork: pid 1 reaps zombies and forwards signals",
        ));
    }
    v.push(
        step(
            A::Exec,
            "exec",
            Child,
            format!("{:?}", plan.process.args.value),
        )
        .at(plan.process.args.span),
    );
    v
}

/// The steps as `foxbox plan` shows them.
pub fn describe(plan: &Plan) -> Vec<StepDesc> {
    let choices = StartChoices {
        tty: plan.process.tty,
    };
    steps(plan, choices)
        .into_iter()
        .map(|s| StepDesc {
            name: s.name,
            side: s.side,
            detail: s.detail,
        })
        .collect()
}

fn seccomp_detail(s: &Seccomp) -> String {
    match s {
        Seccomp::Default => "built-in default profile".to_string(),
        Seccomp::Unconfined => "unconfined".to_string(),
        Seccomp::Profile { path, .. } => format!("profile {}", path.display()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::*;
    use crate::security::caps::CapSet;
    use std::path::PathBuf;

    fn plan() -> Plan {
        Plan {
            origin: Origin::CommandLine,
            name: None,
            image: Spanned::bare(ImageRef::Tarball {
                path: PathBuf::from("/i.tar"),
            }),
            process: Process {
                args: Spanned::bare(vec!["true".into()]),
                env: Vec::new(),
                cwd: Spanned::bare(PathBuf::from("/")),
                user: Spanned::bare(User::Id { uid: 0, gid: None }),
                tty: None,
                init: false,
            },
            hostname: None,
            limits: Limits {
                memory: None,
                memory_swap: None,
                cpus: None,
                pids: None,
                timeout: None,
                stop_timeout: None,
                enforce: Enforce::Strict,
            },
            capabilities: Spanned::bare(CapSet::podman_default()),
            no_new_privs: false,
            seccomp: Spanned::bare(Seccomp::Default),
            network: Network {
                mode: Spanned::bare(NetMode::None),
                ports: Vec::new(),
                allow_host_loopback: false,
            },
            mounts: vec![Mount {
                kind: MountKind::Tmpfs {
                    size: None,
                    mode: None,
                },
                target: PathBuf::from("/scratch"),
                readonly: false,
                span: Some(Span::new(10, 20)),
            }],
            rootfs: Rootfs {
                readonly: Spanned::bare(false),
            },
        }
    }

    fn names(p: &Plan) -> Vec<&'static str> {
        steps(p, StartChoices::default())
            .iter()
            .map(|s| s.name)
            .collect()
    }

    fn pos(v: &[&str], n: &str) -> usize {
        v.iter().position(|x| *x == n).unwrap()
    }

    #[test]
    fn anchors_order_and_exec_last() {
        let v = names(&plan());
        for (a, b) in [
            ("clone", "id-maps"),
            ("propagation", "rootfs"),
            ("rootfs", "mount"),
            ("mount", "pivot-root"),
            ("pivot-root", "masked-paths"),
            ("masked-paths", "hostname"),
            ("close-fds", "user"),
            ("user", "capabilities"),
        ] {
            assert!(pos(&v, a) < pos(&v, b), "{a} before {b}: {v:?}");
        }
        assert_eq!(v.last(), Some(&"exec"));
        assert!(!v.contains(&"init") && !v.contains(&"readonly-root"));
    }

    #[test]
    fn seccomp_goes_last_only_with_no_new_privs() {
        let mut p = plan();
        let v = names(&p);
        assert!(pos(&v, "seccomp") < pos(&v, "user"), "{v:?}");
        p.no_new_privs = true;
        p.process.init = true;
        let v = names(&p);
        let n = v.len();
        assert_eq!(
            &v[n - 5..],
            ["capabilities", "no-new-privs", "seccomp", "init", "exec"]
        );
        p.seccomp = Spanned::bare(Seccomp::Unconfined);
        assert!(!names(&p).contains(&"seccomp"));
    }

    #[test]
    fn mount_steps_carry_their_spec_span_and_describe_matches() {
        let p = plan();
        let s = steps(&p, StartChoices::default());
        let m = s.iter().find(|s| s.action == Action::Mount(0)).unwrap();
        assert_eq!(m.span, Some(Span::new(10, 20)));
        let d = describe(&p);
        assert_eq!(d.len(), s.len());
        assert!(d.iter().zip(&s).all(|(d, s)| d.name == s.name));
    }
}
