//! The ordered steps a plan turns into: the single list that `foxbox plan` prints and the
//! executor runs (each [`Step`] names the [`Action`] the parent or the child performs).
//!
//! A process that `foxbox exec` starts in a running box gets a list of the same kind
//! ([`join_steps`], printed by `foxbox plan --exec`): its parent steps join the box instead of
//! making one, and its child steps are the box's own process steps ([`ProcessShape`]), in the
//! same order and run by the same code, so it ends with the credentials, capabilities,
//! no_new_privs and seccomp filter the box's command got.

use std::path::Path;

use serde::Serialize;

use crate::plan::units::format_size;
use crate::plan::{MountKind, NetMode, Plan, Seccomp, Span};
use crate::security::caps::CapSet;
use crate::sys::process::ns;

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
    /// Bind the rootfs onto itself, private, in the caller's mount namespace (see
    /// [`StartChoices::host_mounts`]): the root the mounts are made under.
    BindRoot,
    /// chroot into the root bound by [`Action::BindRoot`] (no pivot_root: the mount namespace
    /// is the caller's).
    Chroot,
    MaskedPaths,
    ReadonlyPaths,
    ReadonlyRoot,
    /// chown the plan's `:U` mounts to the user (then make the read-only ones read-only).
    ChownMounts,
    /// `foxbox exec`: enter the namespaces of the box's pid 1 and fork into its pid namespace.
    Join,
    /// A new session, on a pty from the box's own devpts when there is a terminal.
    Console,
    Hostname,
    CloseFds,
    User,
    /// Create the working directory, owned by the user, when it is missing.
    MakeWorkdir,
    Workdir,
    Env,
    Seccomp,
    Capabilities,
    NoNewPrivs,
    /// Fork a tiny init that stays pid 1.
    Init,
    /// Tell the parent pivot_root is next, wait for it, then the launch's own work there.
    BeforePivot,
    /// OCI `create`: report ready, let the starter go, and wait on the start gate.
    AwaitStart,
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
    /// The box waits on a start gate before its exec (the OCI runtime's create/start split).
    pub await_start: bool,
    /// The caller made a cgroup for the box without plan limits (an OCI container's at its
    /// cgroupsPath): the cgroup step moves the box into it.
    pub cgroup: bool,
    /// A pause before pivot_root (see [`super::Launch::before_pivot`]).
    pub before_pivot: bool,
    /// The box shares the caller's mount namespace (an OCI config without one): its mounts
    /// are made there, below its root bound onto itself, and it chroots into that root.
    pub host_mounts: bool,
    /// Namespaces the caller joined ([`super::Launch::joined`]): the box shares them.
    pub joined: u64,
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

/// The namespaces (`sys::process::ns` flags) the clone makes: the box's own, less those the
/// caller joined, which the box shares. The network namespace is made at the clone only for a
/// network helper to attach to before the box is released; with `none` the `netns` step makes
/// it beside the steps that follow, which takes the slowest namespace off the clone.
pub fn clone_namespaces(net: NetMode, joined: u64) -> u64 {
    let mut flags = ns::USER | ns::MOUNT | ns::PID | ns::UTS | ns::IPC | ns::CGROUP;
    if matches!(net, NetMode::Pasta | NetMode::Slirp4netns) {
        flags |= ns::NET;
    }
    flags & !joined
}

/// What the clone step says of each namespace: made by the clone, shared with the caller,
/// joined by path, or made later (the network namespace of `none`).
fn clone_detail(plan: &Plan, choices: StartChoices) -> String {
    let made = clone_namespaces(plan.network.mode.value, choices.joined);
    // A mount namespace joined but not shared is one given by path, which the set-up process
    // enters once it is released (see `Launch::join_mount`).
    let mount_by_path = choices.joined & ns::MOUNT != 0 && !choices.host_mounts;
    let kinds = [
        (ns::USER, "user"),
        (ns::MOUNT, "mount"),
        (ns::PID, "pid"),
        (ns::UTS, "uts"),
        (ns::IPC, "ipc"),
        (ns::CGROUP, "cgroup"),
        (ns::NET, "network"),
    ];
    let named = |set: u64| -> Vec<&str> {
        kinds
            .iter()
            .filter(|(flag, _)| set & flag != 0)
            .map(|(_, name)| *name)
            .collect()
    };
    let plural = |names: Vec<&str>| match names.len() {
        1 => format!("{} namespace", names[0]),
        _ => format!("{} namespaces", names.join(", ")),
    };
    let mut parts = Vec::new();
    // The network namespace has a clause of its own (below) unless the caller joined it.
    let own = named(made & !ns::NET);
    if !own.is_empty() {
        parts.push(format!("new {}", plural(own)));
    }
    let mut shared = choices.joined;
    if mount_by_path {
        shared &= !ns::MOUNT;
    }
    let shared = named(shared);
    if !shared.is_empty() {
        parts.push(format!("share the caller's {}", plural(shared)));
    }
    if mount_by_path {
        parts.push("enter the mount namespace given by path once released".to_string());
    }
    if made & ns::NET != 0 {
        parts.push("new network namespace".to_string());
    } else if choices.joined & ns::NET == 0 {
        parts.push(match plan.network.mode.value {
            NetMode::Host => "share the host's network namespace".to_string(),
            _ => "the network namespace is made by `netns`".to_string(),
        });
    }
    parts.join("; ")
}

/// The cgroup-backed limits, as the cgroup step names them.
fn cgroup_limits(l: &crate::plan::Limits) -> String {
    let mut v = Vec::new();
    if let Some(m) = l.memory() {
        v.push(format!("memory {}", format_size(m.value.bytes())));
    }
    if let Some(m) = l.memory_swap() {
        v.push(format!("memory+swap {}", format_size(m.value.bytes())));
    }
    if let Some(c) = l.cpus() {
        v.push(format!("cpus {}", c.value.cores()));
    }
    if let Some(p) = l.pids() {
        v.push(format!("pids {}", p.value.count()));
    }
    v.join(", ")
}

/// The steps the executor runs for this plan, in order.
pub fn steps(plan: &Plan, choices: StartChoices) -> Vec<Step> {
    use Action as A;
    use Side::*;
    let mut v = vec![step(A::Image, "image", Parent, image_detail(plan)).at(plan.image.span)];
    v.push(step(A::Clone, "clone", Parent, clone_detail(plan, choices)));
    let id_maps = match plan.userns.value {
        crate::plan::Userns::KeepId { .. } => {
            "keep-id: the caller's uid/gid as the same ids in the box (or keep-id's uid=/gid=), \
             the subordinate range around them"
        }
        crate::plan::Userns::Default => {
            "map the caller's uid/gid (and any subordinate range) into the box"
        }
    };
    v.push(step(A::IdMaps, "id-maps", Parent, id_maps).at(plan.userns.span));
    if choices.cgroup && !plan.limits.needs_cgroup() {
        v.push(step(
            A::Cgroup,
            "cgroup",
            Parent,
            "move the container into its cgroup, made before the clone with its resources",
        ));
    }
    if plan.limits.needs_cgroup() {
        let l = &plan.limits;
        let span = (l.memory().and_then(|m| m.span))
            .or(l.cpus().and_then(|c| c.span))
            .or(l.pids().and_then(|p| p.span));
        // The runner makes the cgroup and writes its limits before the clone (so a box never
        // runs unlimited); this step only moves the box's first process into it.
        v.push(
            step(
                A::Cgroup,
                "cgroup",
                Parent,
                format!(
                    "move the box into its cgroup, made before the clone with {}",
                    cgroup_limits(l)
                ),
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
    if choices.host_mounts {
        v.push(step(
            A::BindRoot,
            "bind-root",
            Child,
            "bind the rootfs onto itself in the caller's mount namespace and make it private: \
             nothing mounted below it propagates to the host",
        ));
    } else {
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
    }
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
        let mut what = match &m.kind {
            MountKind::Bind { source } => format!("bind {}", source.display()),
            MountKind::Tmpfs { .. } => "tmpfs".to_string(),
            MountKind::Volume { name } => format!("volume {name}"),
        };
        if m.overlay {
            what = format!("overlay over {what}, its writes kept on the scratch tmpfs");
        }
        let ro = match (m.readonly, m.chown) {
            (true, true) => " (read-only once chowned)",
            (true, false) => " (read-only)",
            _ => "",
        };
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
    if choices.before_pivot {
        v.push(step(
            A::BeforePivot,
            "before-pivot",
            Child,
            "tell the parent the mounts are made and wait while it works (an OCI config's \
             createRuntime hooks); then the launch's own work (createContainer hooks)",
        ));
    }
    if choices.host_mounts {
        v.push(step(
            A::Chroot,
            "chroot",
            Child,
            "chroot into the rootfs (its mounts stay in the caller's mount namespace)",
        ));
    } else {
        v.push(step(
            A::PivotRoot,
            "pivot-root",
            Child,
            "pivot_root into the new root and detach the old one",
        ));
    }
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
    let chowned: Vec<&crate::plan::Mount> = plan.mounts.iter().filter(|m| m.chown).collect();
    if let Some(first) = chowned.first() {
        let targets: Vec<String> = chowned
            .iter()
            .map(|m| m.target.display().to_string())
            .collect();
        v.push(
            step(
                A::ChownMounts,
                "chown",
                Child,
                format!(
                    "chown {} recursively to the user's uid and gid",
                    targets.join(", ")
                ),
            )
            .at(first.span),
        );
    }
    let fox = FoxSteps {
        hostname_span: plan.hostname.as_ref().and_then(|h| h.span),
        init: plan.process.init,
    };
    process_steps(&mut v, &ProcessShape::of_plan(plan, choices), Some(fox));
    v
}

/// What the process half of a step list (console to exec) depends on: the same for a box's
/// command and for a process `foxbox exec` starts in the box.
#[derive(Debug, Clone)]
pub struct ProcessShape<'a> {
    pub args: &'a [String],
    pub args_span: Option<Span>,
    pub user_span: Option<Span>,
    pub cwd: &'a Path,
    pub cwd_span: Option<Span>,
    /// The bounding set, and all five sets of uid 0.
    pub capabilities: CapSet,
    /// What a non-root user gets (see [`crate::plan::Plan::added_capabilities`]).
    pub added_capabilities: CapSet,
    pub capabilities_span: Option<Span>,
    pub no_new_privs: bool,
    /// `None`: unconfined; `Some(None)`: the built-in default profile; else a profile file.
    pub seccomp: Option<Option<&'a Path>>,
    pub seccomp_span: Option<Span>,
    /// Whether the process gets a pty (`None`: not decided yet, as for `foxbox plan`).
    pub tty: Option<bool>,
    /// Wait on the start gate before the exec (see [`StartChoices::await_start`]).
    pub await_start: bool,
}

impl<'a> ProcessShape<'a> {
    pub fn of_plan(plan: &'a Plan, choices: StartChoices) -> ProcessShape<'a> {
        ProcessShape {
            args: &plan.process.args.value,
            args_span: plan.process.args.span,
            user_span: plan.process.user.span,
            cwd: &plan.process.cwd.value,
            cwd_span: plan.process.cwd.span,
            capabilities: plan.capabilities.value,
            added_capabilities: plan.added_capabilities,
            capabilities_span: plan.capabilities.span,
            no_new_privs: plan.no_new_privs,
            seccomp: match &plan.seccomp.value {
                Seccomp::Unconfined => None,
                Seccomp::Default => Some(None),
                Seccomp::Profile { path, .. } => Some(Some(path.as_path())),
            },
            seccomp_span: plan.seccomp.span,
            tty: choices.tty,
            await_start: choices.await_start,
        }
    }
}

/// The process steps only a box's own command has.
struct FoxSteps {
    hostname_span: Option<Span>,
    init: bool,
}

/// The steps of a process that `foxbox exec` starts in a running box: move into the box's
/// cgroup (when it has one), join its namespaces, then the box's own process steps (without
/// hostname, init, or creating a missing working directory: podman's exec refuses one too).
pub fn join_steps(p: &ProcessShape<'_>, cgroup: bool) -> Vec<Step> {
    use Side::*;
    let mut v = Vec::new();
    if cgroup {
        v.push(step(
            Action::Cgroup,
            "cgroup",
            Parent,
            "move into the box's cgroup",
        ));
    }
    v.push(step(
        Action::Join,
        "join",
        Parent,
        "setns into every namespace of the box's pid 1 that differs from ours; \
         fork into its pid namespace",
    ));
    process_steps(&mut v, p, None);
    v
}

/// The process steps, in the order both a box's command and `exec` run them.
fn process_steps(v: &mut Vec<Step>, p: &ProcessShape<'_>, fox: Option<FoxSteps>) {
    use Action as A;
    use Side::*;
    let console = match p.tty {
        Some(true) => "new session on a pty of the box's own devpts",
        Some(false) => "new session without a controlling terminal",
        None => "new session (on a pty when there is a terminal)",
    };
    v.push(step(A::Console, "console", Child, console));
    if let Some(f) = &fox {
        v.push(step(A::Hostname, "hostname", Child, "set the hostname").at(f.hostname_span));
    }
    v.push(step(
        A::CloseFds,
        "close-fds",
        Child,
        "close every file descriptor above 2",
    ));
    let seccomp = p.seccomp.map(|profile| {
        let detail = match profile {
            None => "built-in default profile".to_string(),
            Some(path) => format!("profile {}", path.display()),
        };
        step(A::Seccomp, "seccomp", Child, detail).at(p.seccomp_span)
    });
    // Without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes in while the box's root
    // still has it; with no_new_privs it goes in as late as possible.
    if !p.no_new_privs {
        v.extend(seccomp.clone());
    }
    if fox.is_some() {
        // Before the user changes: making a directory in one of root's needs root's rights.
        v.push(
            step(
                A::MakeWorkdir,
                "make-workdir",
                Child,
                format!(
                    "create {} owned by the user when it is missing",
                    p.cwd.display()
                ),
            )
            .at(p.cwd_span),
        );
    }
    v.push(
        step(
            A::User,
            "user",
            Child,
            "set uid, gid and supplementary groups",
        )
        .at(p.user_span),
    );
    v.push(step(A::Workdir, "workdir", Child, p.cwd.display().to_string()).at(p.cwd_span));
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
            capabilities_detail(p.capabilities, p.added_capabilities),
        )
        .at(p.capabilities_span),
    );
    if p.no_new_privs {
        v.push(step(
            A::NoNewPrivs,
            "no-new-privs",
            Child,
            "set no_new_privs",
        ));
        v.extend(seccomp);
    }
    if fox.as_ref().is_some_and(|f| f.init) {
        v.push(step(
            A::Init,
            "init",
            Child,
            "fork: pid 1 reaps zombies and forwards signals",
        ));
    }
    if p.await_start {
        v.push(step(
            A::AwaitStart,
            "await-start",
            Child,
            "report ready, then wait until `start` opens the gate",
        ));
    }
    let command = match (p.args.is_empty(), fox.is_none()) {
        (true, true) => "the command given to `foxbox exec`".to_string(),
        // A spec's plan whose image (not read yet) completes the argv.
        (true, false) => "the argv the image's entrypoint and command complete".to_string(),
        _ => format!("{:?}", p.args),
    };
    v.push(step(A::Exec, "exec", Child, command).at(p.args_span));
}

/// The sets per user, as the `capabilities` step gives them.
pub fn capabilities_detail(set: CapSet, added: CapSet) -> String {
    let n = set.iter().count();
    let others = if added == CapSet::EMPTY {
        "none but the bounding set".to_string()
    } else if added == set {
        "the same (all were added)".to_string()
    } else {
        format!(
            "{} (added), the rest in the bounding set only",
            added.names().join(" ")
        )
    };
    format!("uid 0: {n} capabilities in all five sets; other uids: {others}")
}

/// The steps as `foxbox plan` shows them.
pub fn describe(plan: &Plan) -> Vec<StepDesc> {
    let choices = StartChoices {
        tty: plan.process.tty,
        await_start: false,
        cgroup: false,
        before_pivot: false,
        host_mounts: false,
        joined: 0,
    };
    describe_list(steps(plan, choices))
}

/// Any step list as `foxbox plan` shows it.
pub fn describe_list(list: Vec<Step>) -> Vec<StepDesc> {
    list.into_iter()
        .map(|s| StepDesc {
            name: s.name,
            side: s.side,
            detail: s.detail,
        })
        .collect()
}

fn image_detail(plan: &Plan) -> String {
    match &plan.image.value {
        crate::plan::ImageRef::Stored(n) => match n.digest() {
            Some(d) => format!("{}@{d}", n.full()),
            None => n.full(),
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
                argv: Default::default(),
                env: Vec::new(),
                cwd: Spanned::bare(PathBuf::from("/")),
                user: Spanned::bare(User::Id { uid: 0, gid: None }),
                tty: None,
                init: false,
                given: Default::default(),
            },
            hostname: None,
            limits: Limits::new(Enforce::Strict),
            capabilities: Spanned::bare(CapSet::podman_default()),
            added_capabilities: CapSet::EMPTY,
            no_new_privs: false,
            seccomp: Spanned::bare(Seccomp::Default),
            userns: Spanned::bare(Userns::Default),
            network: Network {
                mode: Spanned::bare(NetMode::None),
                ports: Vec::new(),
                allow_host_loopback: false,
            },
            mounts: vec![Mount {
                kind: MountKind::Tmpfs {
                    size: None,
                    mode: None,
                    noexec: false,
                },
                target: PathBuf::from("/scratch"),
                readonly: false,
                chown: false,
                overlay: false,
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
    fn joining_runs_the_box_s_process_steps_in_the_box_s_order() {
        for nnp in [false, true] {
            let mut p = plan();
            p.no_new_privs = nnp;
            p.process.init = true;
            let shape = ProcessShape::of_plan(&p, StartChoices::default());
            let joined: Vec<Action> = join_steps(&shape, true).iter().map(|s| s.action).collect();
            assert_eq!(joined[..2], [Action::Cgroup, Action::Join]);
            let own: Vec<Action> = steps(&p, StartChoices::default())
                .iter()
                .map(|s| s.action)
                .skip_while(|a| *a != Action::Console)
                .filter(|a| ![Action::Hostname, Action::MakeWorkdir, Action::Init].contains(a))
                .collect();
            assert_eq!(joined[2..], own[..], "no_new_privs {nnp}");
        }
    }

    #[test]
    fn the_start_gate_is_the_last_step_before_exec() {
        let p = plan();
        assert!(!names(&p).contains(&"await-start"));
        assert!(!names(&p).contains(&"before-pivot"));
        let v: Vec<&str> = steps(
            &p,
            StartChoices {
                tty: Some(false),
                await_start: true,
                cgroup: false,
                before_pivot: true,
                host_mounts: false,
                joined: 0,
            },
        )
        .iter()
        .map(|s| s.name)
        .collect();
        assert_eq!(&v[v.len() - 2..], ["await-start", "exec"]);
        assert_eq!(pos(&v, "before-pivot") + 1, pos(&v, "pivot-root"), "{v:?}");
    }

    #[test]
    fn host_mounts_bind_the_root_in_place_and_chroot() {
        let p = plan();
        let choices = StartChoices {
            host_mounts: true,
            ..StartChoices::default()
        };
        let v: Vec<&str> = steps(&p, choices).iter().map(|s| s.name).collect();
        for gone in ["propagation", "rootfs", "pivot-root"] {
            assert!(!v.contains(&gone), "{gone}: {v:?}");
        }
        for (a, b) in [
            ("bind-root", "proc"),
            ("mount", "chroot"),
            ("chroot", "masked-paths"),
        ] {
            assert!(pos(&v, a) < pos(&v, b), "{a} before {b}: {v:?}");
        }
        let own = names(&p);
        assert!(!own.contains(&"bind-root") && !own.contains(&"chroot"));
    }

    fn clone_of(p: &Plan, choices: StartChoices) -> String {
        let s = steps(p, choices);
        s.iter()
            .find(|s| s.action == Action::Clone)
            .unwrap()
            .detail
            .clone()
    }

    #[test]
    fn clone_names_the_namespaces_it_makes_and_those_shared() {
        let mut p = plan();
        let own = StartChoices::default();
        let fresh = "new user, mount, pid, uts, ipc, cgroup namespaces";
        p.network.mode = Spanned::bare(NetMode::Pasta);
        assert_eq!(clone_of(&p, own), format!("{fresh}; new network namespace"));
        p.network.mode = Spanned::bare(NetMode::Host);
        assert_eq!(
            clone_of(&p, own),
            format!("{fresh}; share the host's network namespace")
        );
        p.network.mode = Spanned::bare(NetMode::None);
        assert_eq!(
            clone_of(&p, own),
            format!("{fresh}; the network namespace is made by `netns`")
        );
        assert!(names(&p).contains(&"netns"));

        // An OCI config as root that lists no namespace: every one is the runtime's.
        p.network.mode = Spanned::bare(NetMode::Host);
        let shared = StartChoices {
            joined: ns::USER | ns::MOUNT | ns::PID | ns::UTS | ns::IPC | ns::CGROUP,
            host_mounts: true,
            ..own
        };
        assert_eq!(
            clone_of(&p, shared),
            "share the caller's user, mount, pid, uts, ipc, cgroup namespaces; \
             share the host's network namespace"
        );
        // User and mount namespaces given by path, network joined too.
        let by_path = StartChoices {
            joined: ns::USER | ns::MOUNT | ns::NET,
            ..own
        };
        assert_eq!(
            clone_of(&p, by_path),
            "new pid, uts, ipc, cgroup namespaces; share the caller's user, network namespaces; \
             enter the mount namespace given by path once released"
        );
        let one = StartChoices {
            joined: ns::UTS,
            ..own
        };
        p.network.mode = Spanned::bare(NetMode::Slirp4netns);
        assert_eq!(
            clone_of(&p, one),
            "new user, mount, pid, ipc, cgroup namespaces; share the caller's uts namespace; \
             new network namespace"
        );
    }

    #[test]
    fn clone_makes_the_network_namespace_only_for_a_helper() {
        for (mode, net) in [
            (NetMode::Pasta, ns::NET),
            (NetMode::Slirp4netns, ns::NET),
            (NetMode::None, 0),
            (NetMode::Host, 0),
        ] {
            let all = ns::USER | ns::MOUNT | ns::PID | ns::UTS | ns::IPC | ns::CGROUP;
            assert_eq!(clone_namespaces(mode, 0), all | net, "{mode:?}");
            assert_eq!(clone_namespaces(mode, ns::PID | ns::NET), all & !ns::PID);
        }
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
