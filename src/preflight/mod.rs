//! Host checks (`foxbox check --host`): what this machine cannot honour of a plan, each problem
//! pointing at the spec line that needs the missing thing.
//!
//! [`Facts::gather`] reads the host (read-only: /proc, /etc/subuid, PATH, /dev/net/tun, the
//! files the plan names); [`check_facts`] turns facts and a plan into diagnostics. Limits are
//! judged by the cgroup module itself (`cgroup::check_limits`), the same decision `up` makes.
//! Plain `foxbox check` never calls this.
//!
//! A module beside `spec`, not inside it: it reads the host (cgroups, network helpers, the
//! store), and parsing a spec must need none of that.

mod facts;

pub use facts::{Facts, SubidRange};

use crate::diag::Diagnostic;
use crate::plan::{ImageRef, MountKind, NetMode, Plan, Span, User};

/// Stable codes of host problems (registered in [`crate::diag::codes`]).
pub use crate::diag::codes::host as codes;

/// [`network_summary`] of this host, probed now.
pub fn host_network_summary() -> String {
    network_summary(&crate::net::probe::probe_host())
}

/// What `check --host` says about networking on this host whatever the spec asks for: which
/// user-mode helpers are installed and whether this user can use /dev/net/tun.
pub fn network_summary(h: &crate::net::probe::HostNet) -> String {
    use crate::net::probe::{HelperStatus, TunStatus, TUN_PATH};
    let helper = |s: &HelperStatus| match &s.path {
        Some(p) => format!(
            "{}: installed ({}{})",
            s.name,
            p.display(),
            s.version
                .as_ref()
                .map(|v| format!(", version {v}"))
                .unwrap_or_default()
        ),
        None => format!("{}: not installed (package {})", s.name, s.package),
    };
    let tun = match &h.tun {
        TunStatus::Usable => format!("{TUN_PATH}: usable by this user"),
        TunStatus::Missing => format!("{TUN_PATH}: missing"),
        TunStatus::Denied { mode, error } => {
            format!("{TUN_PATH}: not usable by this user (mode {mode:04o}: {error})")
        }
    };
    format!("{}\n{}\n{tun}\n", helper(&h.pasta), helper(&h.slirp4netns))
}

/// Answers whether a stored image is in the store.
pub type ImageLookup = Box<dyn Fn(&ImageRef) -> bool>;

/// What the host checks look at besides the plan.
#[derive(Default)]
pub struct HostOptions {
    /// The store (`--root` / FOXBOX_ROOT / XDG), where stored images live.
    pub store: Option<crate::store::paths::Paths>,
    /// The cgroup the box would be created under (`--cgroup-parent` / FOXBOX_CGROUP_PARENT),
    /// relative to each hierarchy's root; `None`: this process's own cgroup.
    pub cgroup_parent: Option<String>,
    /// Whether a stored image is present; `None` skips that check (the image store decides
    /// its own layout).
    pub image_in_store: Option<ImageLookup>,
}

/// Every problem this host has with running `plan`.
pub fn check(plan: &Plan, opts: &HostOptions) -> Vec<Diagnostic> {
    let facts = Facts::gather(plan);
    let mut out = check_facts(plan, &facts, opts);
    // The limits in the words `up` and `run` use: the cgroup module decides for both.
    out.extend(
        crate::cgroup::check_limits(&plan.limits, opts.cgroup_parent.as_deref())
            .into_iter()
            .map(|mut d| {
                d.code = codes::CGROUP.to_string();
                d
            }),
    );
    out
}

fn at(d: Diagnostic, span: Option<Span>, label: &str) -> Diagnostic {
    match span {
        Some(_) => d.with_span(span).with_label(label.to_string()),
        None => d,
    }
}

/// Bind sources that do not exist on this host, each an error at its `[[mounts]]` entry:
/// what plain `foxbox check` says about the host (`--host` covers them, and more).
pub fn missing_bind_sources(plan: &Plan) -> Vec<Diagnostic> {
    plan.mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Bind { source } => match std::fs::metadata(source) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(at(
                    Diagnostic::error(
                        codes::BIND_SOURCE,
                        format!("bind source {} does not exist", source.display()),
                    )
                    .with_help(
                        "create it, or fix `source` (relative paths start at the spec file's directory)",
                    ),
                    m.span,
                    "this mount",
                )),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The diagnostics for a plan given the host's facts.
pub fn check_facts(plan: &Plan, f: &Facts, opts: &HostOptions) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let box_span = plan.image.span;
    // --- user namespaces ---
    if let Some(why) = &f.userns_blocked {
        out.push(at(
            Diagnostic::error(
                codes::USERNS,
                format!("user namespaces are not allowed here: {why}"),
            )
            .with_help(
                "every box runs in a user namespace; ask the administrator to allow them (sysctl)",
            ),
            box_span,
            "this box needs a user namespace",
        ));
    }
    // --- subordinate ids ---
    if f.uid != 0 {
        let user_span = plan.process.user.span;
        let needs_more_ids = !matches!(
            plan.process.user.value,
            User::Id {
                uid: 0,
                gid: None | Some(0)
            }
        );
        let problem = if f.subuid.is_none() || f.subgid.is_none() {
            Some(format!(
                "{} has no subordinate id range in /etc/subuid and /etc/subgid",
                f.user_name.as_deref().unwrap_or("this user")
            ))
        } else if !f.newuidmap || !f.newgidmap {
            Some("newuidmap and newgidmap (package uidmap) are not installed".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            let help = "add a range (e.g. `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER`) and install uidmap";
            let d = if needs_more_ids {
                at(
                    Diagnostic::error(
                        codes::SUBIDS,
                        format!("{p}: only your own uid maps into the box"),
                    )
                    .with_help(help),
                    user_span,
                    "this user is not your own uid",
                )
            } else {
                at(
                    Diagnostic::warning(
                        codes::SUBIDS,
                        format!("{p}: only your own uid maps into the box"),
                    )
                    .with_help(format!(
                        "{help}; files of other owners in the image will show as nobody"
                    )),
                    box_span,
                    "this box gets a single id",
                )
            };
            out.push(d);
        }
    }
    let l = &plan.limits;
    if let Some(c) = l.cpus() {
        if c.value.cores() > f.cpus as f64 {
            out.push(at(
                Diagnostic::warning(
                    codes::CPUS,
                    format!(
                        "`limits.cpus = {}` is more than this host's {} CPUs",
                        c.value.cores(),
                        f.cpus
                    ),
                )
                .with_help("the limit cannot bind; lower it or omit it"),
                c.span,
                "more than the host has",
            ));
        }
    }
    // --- network ---
    let mode = &plan.network.mode;
    if mode.value == NetMode::Host {
        out.push(at(
            Diagnostic::warning(
                codes::HOST_NETWORK,
                "`mode = \"host\"` shares the host's network namespace: this weakens isolation",
            )
            .with_help(
                "the box can reach every host service, on 127.0.0.1 and abstract unix sockets too, \
                 and bind the host's ports; use \"pasta\" or \"slirp4netns\" with `ports` instead",
            ),
            mode.span,
            "the host's network",
        ));
    }
    let helper = match mode.value {
        NetMode::Pasta => Some(("pasta", f.pasta, "passt")),
        NetMode::Slirp4netns => Some(("slirp4netns", f.slirp4netns, "slirp4netns")),
        _ => None,
    };
    if let Some((name, present, pkg)) = helper {
        if !present {
            out.push(at(
                Diagnostic::error(codes::NET_HELPER, format!("{name} is not installed")).with_help(
                    format!("install it (`apt-get install {pkg}`) or use another `network.mode`"),
                ),
                mode.span,
                "needs this program",
            ));
        }
        if f.uid != 0 && !f.tun_usable {
            out.push(at(
                Diagnostic::error(
                    codes::TUN,
                    "/dev/net/tun is missing or not read-writable for this user",
                )
                .with_help(
                    "distributions ship it with mode 0666: `chmod 0666 /dev/net/tun` as root",
                ),
                mode.span,
                "needs a tap device",
            ));
        }
        if f.uid != 0 {
            for p in &plan.network.ports {
                if u32::from(p.value.host_port) < f.unprivileged_port_start {
                    out.push(at(
                        Diagnostic::error(
                            codes::LOW_PORT,
                            format!(
                                "host port {} is below net.ipv4.ip_unprivileged_port_start ({})",
                                p.value.host_port, f.unprivileged_port_start
                            ),
                        )
                        .with_help(format!(
                            "use a host port of {} or more, e.g. `\"8080:{}\"`",
                            f.unprivileged_port_start, p.value.box_port
                        )),
                        p.span,
                        "a privileged port",
                    ));
                }
            }
        }
    }
    // --- overlayfs ---
    if let Some(why) = &f.overlay_problem {
        out.push(at(
            Diagnostic::error(codes::OVERLAY, format!("overlayfs is not usable: {why}"))
                .with_help("the box's root filesystem is an overlay over the image"),
            box_span,
            "needs overlayfs",
        ));
    }
    // --- files the plan names ---
    for m in &plan.mounts {
        if let MountKind::Bind { source } = &m.kind {
            if let Some(e) = f
                .unreadable
                .iter()
                .find(|(p, _)| p == source)
                .map(|(_, e)| e)
            {
                out.push(at(
                    Diagnostic::error(codes::BIND_SOURCE, format!("bind source {}: {e}", source.display()))
                        .with_help("create it, or fix `source` (relative paths start at the spec file's directory)"),
                    m.span,
                    "this mount",
                ));
            }
        }
    }
    match &plan.image.value {
        ImageRef::Tarball { path } => {
            if let Some(e) = f.unreadable.iter().find(|(p, _)| p == path).map(|(_, e)| e) {
                out.push(at(
                    Diagnostic::error(
                        codes::IMAGE,
                        format!("image tarball {}: {e}", path.display()),
                    )
                    .with_help(
                        "build or download it (images/build-busybox.sh makes a busybox rootfs)",
                    ),
                    box_span,
                    "this image",
                ));
            }
        }
        img @ ImageRef::Stored(n) => {
            if let Some(present) = &opts.image_in_store {
                if !present(img) {
                    out.push(at(
                        Diagnostic::error(
                            codes::IMAGE,
                            format!("image {} is not in the store", n.full()),
                        )
                        .with_help("import it with `foxbox image import`"),
                        box_span,
                        "this image",
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn plan(spec: &str) -> Plan {
        let (p, d) = crate::spec::check_str(spec, Path::new("t.toml"), Path::new("/spec"));
        p.unwrap_or_else(|| panic!("{d:?}"))
    }

    fn good() -> Facts {
        Facts {
            uid: 1000,
            user_name: Some("fox".into()),
            userns_blocked: None,
            subuid: Some(SubidRange {
                start: 100000,
                count: 65536,
            }),
            subgid: Some(SubidRange {
                start: 100000,
                count: 65536,
            }),
            newuidmap: true,
            newgidmap: true,
            cpus: 2,
            pasta: true,
            slirp4netns: false,
            tun_usable: true,
            unprivileged_port_start: 1024,
            overlay_problem: None,
            unreadable: vec![(
                PathBuf::from("/spec/gone"),
                "No such file or directory".into(),
            )],
        }
    }

    fn codes_of(spec: &str, f: &Facts) -> Vec<(String, bool)> {
        check_facts(&plan(spec), f, &HostOptions::default())
            .into_iter()
            .map(|d| (d.code.clone(), d.is_error()))
            .collect()
    }

    #[test]
    fn a_good_host_has_nothing_to_say() {
        let spec = "[box]\nimage = \"busybox\"\nuser = \"1000\"\n[limits]\nmemory = \"64m\"\n[network]\nmode = \"pasta\"\nports = [\"8080:80\"]\n";
        assert_eq!(codes_of(spec, &good()), []);
    }

    #[test]
    fn each_missing_thing_is_named_at_its_line() {
        let spec = "[box]\nimage = \"busybox\"\nuser = \"1000\"\n[limits]\ncpus = 4\npids = 9\n[network]\nmode = \"slirp4netns\"\nports = [\"80:80\"]\n[[mounts]]\ntype = \"bind\"\nsource = \"gone\"\ntarget = \"/g\"\n";
        let mut f = good();
        f.subuid = None;
        f.tun_usable = false;
        let p = plan(spec);
        let d = check_facts(&p, &f, &HostOptions::default());
        let got: Vec<&str> = d.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(
            got,
            [
                codes::SUBIDS,
                codes::CPUS,
                codes::NET_HELPER,
                codes::TUN,
                codes::LOW_PORT,
                codes::BIND_SOURCE
            ]
        );
        let text = |d: &Diagnostic| {
            let s = d.span.unwrap();
            spec[s.start..s.end].to_string()
        };
        assert_eq!(text(&d[0]), "\"1000\"");
        assert_eq!(text(&d[2]), "\"slirp4netns\"");
        assert_eq!(text(&d[4]), "\"80:80\"");
        assert!(text(&d[5]).starts_with("[[mounts]]"));
    }

    #[test]
    fn host_network_is_a_warning_at_its_mode_line() {
        let spec = "[box]\nimage = \"busybox\"\n[network]\nmode = \"host\"\n";
        let mut f = good();
        f.uid = 0;
        let d = check_facts(&plan(spec), &f, &HostOptions::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, codes::HOST_NETWORK);
        assert!(!d[0].is_error());
        let s = d[0].span.unwrap();
        assert_eq!(&spec[s.start..s.end], "\"host\"");
    }

    #[test]
    fn network_summary_names_each_helper_and_the_tun_device() {
        use crate::net::probe::{HelperStatus, HostNet, TunStatus};
        let h = HostNet {
            pasta: HelperStatus {
                name: "pasta",
                package: "passt",
                path: Some(PathBuf::from("/usr/bin/pasta")),
                version: None,
            },
            slirp4netns: HelperStatus {
                name: "slirp4netns",
                package: "slirp4netns",
                path: None,
                version: None,
            },
            tun: TunStatus::Denied {
                mode: 0o600,
                error: "Permission denied".into(),
            },
        };
        assert_eq!(
            network_summary(&h),
            "pasta: installed (/usr/bin/pasta)\n\
             slirp4netns: not installed (package slirp4netns)\n\
             /dev/net/tun: not usable by this user (mode 0600: Permission denied)\n"
        );
    }

    #[test]
    fn root_needs_no_subids() {
        let spec = "[box]\nimage = \"busybox\"\n";
        let mut f = good();
        f.subuid = None;
        assert_eq!(codes_of(spec, &f), [(codes::SUBIDS.to_string(), false)]);
        f.uid = 0;
        assert!(codes_of(spec, &f).is_empty());
    }
}
