//! A plan as a Kubernetes Pod manifest (`foxbox export --kube`).
//!
//! The Pod is made from the plan as the spec and flags give it (not the image's defaults): a
//! value the spec leaves to the image (command, user, working directory) is left to the image
//! on the node too. One container, `restartPolicy: Never` (a box runs once). What a Pod cannot
//! say becomes a warning at the spec line that asked for it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::ExportError;
use crate::diag::{codes, Diagnostic};
use crate::plan::caps::NAMES as CAP_NAMES;
use crate::plan::{
    BoxPlan, ImageRef, MountKind, NetMode, Plan, Proto, Seccomp, User, DEFAULT_PATH,
};

/// What `export --kube` writes.
#[derive(Debug, Clone)]
pub struct KubeExport {
    pub yaml: String,
    /// A seccomp profile the Pod names as `Localhost`: the file name the manifest uses (relative
    /// to the kubelet's seccomp root) and the profile file to copy there.
    pub seccomp_profile: Option<(String, PathBuf)>,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Pod {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: PodSpec,
}

#[derive(Debug, Serialize)]
struct Metadata {
    name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    restart_policy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_network: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    active_deadline_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    termination_grace_period_seconds: Option<u64>,
    containers: Vec<Container>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<Volume>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: String,
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<EnvVar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tty: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdin: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<ContainerPort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
    security_context: SecurityContext,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volume_mounts: Vec<VolumeMount>,
}

#[derive(Debug, Serialize)]
struct EnvVar {
    name: String,
    value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerPort {
    container_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_port: Option<u16>,
    #[serde(rename = "hostIP", skip_serializing_if = "Option::is_none")]
    host_ip: Option<String>,
    protocol: &'static str,
}

#[derive(Debug, Serialize)]
struct Resources {
    limits: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SecurityContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    run_as_user: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_as_group: Option<u32>,
    capabilities: Capabilities,
    allow_privilege_escalation: bool,
    read_only_root_filesystem: bool,
    seccomp_profile: SeccompProfile,
}

#[derive(Debug, Serialize)]
struct Capabilities {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    add: Vec<String>,
    drop: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SeccompProfile {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    localhost_profile: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_path: Option<HostPath>,
    #[serde(skip_serializing_if = "Option::is_none")]
    persistent_volume_claim: Option<Claim>,
    #[serde(skip_serializing_if = "Option::is_none")]
    empty_dir: Option<EmptyDir>,
}

#[derive(Debug, Serialize)]
struct HostPath {
    path: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Claim {
    claim_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EmptyDir {
    medium: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_limit: Option<String>,
}

/// A DNS-1123 label (lowercase letters, digits, `-`; at most 63; alphanumeric at both ends):
/// what Kubernetes takes for Pod, container, volume and claim names. `None` when nothing of
/// `s` is left.
pub fn dns_label(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(63);
    let t = out.trim_matches('-').to_string();
    (!t.is_empty()).then_some(t)
}

/// A Kubernetes quantity for bytes: binary suffixes when exact, else plain bytes.
fn bytes_quantity(b: u64) -> String {
    for (suffix, unit) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if b >= unit && b.is_multiple_of(unit) {
            return format!("{}{suffix}", b / unit);
        }
    }
    b.to_string()
}

/// A Kubernetes quantity for cores: whole cores, else millicores (rounded up, at least 1m).
fn cpu_quantity(cores: f64) -> String {
    let milli = (cores * 1000.0).ceil().max(1.0) as u64;
    if milli.is_multiple_of(1000) {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// A container's `command` and `args`: Kubernetes' names for the entrypoint and Docker's
/// `CMD`, with the same rules (a `command` alone drops the image's `CMD`, `args` alone keep
/// its `ENTRYPOINT`). An empty `command` means the image's there, so an entrypoint the spec
/// clears makes its command the whole argv.
fn command_and_args(p: &crate::plan::Process) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let words = |part: &Option<crate::plan::ArgvPart>| {
        part.as_ref()
            .filter(|p| p.from == crate::plan::ArgvFrom::Given)
            .map(|p| p.words.value.clone())
    };
    match (words(&p.argv.entrypoint), words(&p.argv.command)) {
        (Some(e), c) if e.is_empty() => (c, None),
        (e, c) => (e, c),
    }
}

/// The Pod for `plan`; `boxed` is the same plan with its image's defaults, when the image is
/// in the store (only its PATH is used: the node applies the image's defaults). `image` replaces the plan's image reference (the one pushed to a
/// registry the cluster pulls from); `fallback_name` names the Pod when the plan has no name
/// (the spec's directory, say).
pub fn pod_from_plan(
    plan: &Plan,
    boxed: Option<&BoxPlan>,
    image: Option<&str>,
    fallback_name: &str,
) -> Result<KubeExport, ExportError> {
    let mut warnings = Vec::new();
    let mut warn = |span, msg: String| {
        warnings.push(Diagnostic::warning(codes::export::NO_EQUIVALENT, msg).with_span(span))
    };
    for (span, msg) in super::foxbox_only(plan, "a Pod") {
        warn(span, msg);
    }
    let image = match (image, &plan.image.value) {
        (Some(r), _) => r.to_string(),
        (None, ImageRef::Stored(n)) => n.to_string(),
        (None, ImageRef::Tarball { path }) => {
            return Err(ExportError::Image(format!(
                "the image is the rootfs tarball {}, which a cluster cannot pull: push it to a \
                 registry and pass --image REF",
                path.display()
            )))
        }
    };
    let wanted = plan.name.as_ref().map(|n| n.value.as_str());
    let name = dns_label(wanted.unwrap_or(fallback_name)).unwrap_or_else(|| "foxbox".into());
    if let Some(n) = &plan.name {
        if n.value != name {
            warn(
                n.span,
                format!(
                    "the Pod is named {name:?}: {:?} is not a DNS-1123 label",
                    n.value
                ),
            );
        }
    }

    let p = &plan.process;
    let (command, args) = command_and_args(p);
    // foxbox's default PATH yields to the image's (when the image is known here); the rest
    // of the image's environment is the image's business on the node too.
    let image_path = boxed.and_then(|b| {
        b.process
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
    });
    let env = p
        .env
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: match &image_path {
                Some(ip) if k == "PATH" && v == DEFAULT_PATH => ip.clone(),
                _ => v.clone(),
            },
        })
        .collect();
    let working_dir = p
        .given
        .cwd
        .then(|| p.cwd.value.to_string_lossy().into_owned());
    let (run_as_user, run_as_group) = match (&p.user.value, p.given.user) {
        (_, false) => (None, None),
        (User::Id { uid, gid }, true) => (Some(*uid), *gid),
        (User::Name { user, group }, true) => {
            let whom = match group {
                Some(g) => format!("{user}:{g}"),
                None => user.clone(),
            };
            warn(
                p.user.span,
                format!(
                    "a Pod's runAsUser is numeric: the user {whom:?} is left to the image \
                     (give uid[:gid] to set it)"
                ),
            );
            (None, None)
        }
    };
    if p.init {
        warn(
            None,
            "a Pod has no per-container init process (`init = true` is not exported)".into(),
        );
    }

    // Explicit sets rather than a difference from a runtime's default: containerd, CRI-O and
    // podman start from different defaults.
    let caps = &plan.capabilities;
    let add: Vec<String> = caps
        .value
        .iter()
        .map(|c| CAP_NAMES[c as usize].to_string())
        .collect();
    if plan.added_capabilities != caps.value && plan.added_capabilities.iter().next().is_some() {
        warn(
            caps.span,
            "a Pod gives a non-root user the same capabilities as root: foxbox's narrower \
             effective set for non-root users (the added capabilities only) is not exported"
                .into(),
        );
    }

    let (seccomp_profile, seccomp_file) = match &plan.seccomp.value {
        Seccomp::Default => (
            SeccompProfile {
                kind: "RuntimeDefault",
                localhost_profile: None,
            },
            None,
        ),
        Seccomp::Unconfined => (
            SeccompProfile {
                kind: "Unconfined",
                localhost_profile: None,
            },
            None,
        ),
        Seccomp::Profile { path, .. } => {
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "seccomp.json".into());
            (
                SeccompProfile {
                    kind: "Localhost",
                    localhost_profile: Some(file.clone()),
                },
                Some((file, path.clone())),
            )
        }
    };

    let l = &plan.limits;
    let mut limits = BTreeMap::new();
    if let Some(m) = l.memory() {
        limits.insert("memory", bytes_quantity(m.value.bytes()));
    }
    if let Some(c) = l.cpus() {
        limits.insert("cpu", cpu_quantity(c.value.cores()));
    }
    if let Some(s) = l.memory_swap() {
        warn(
            s.span,
            "a Pod has no memory+swap limit (swap is the node's setting)".into(),
        );
    }
    let pids_comment = l.pids().map(|p| {
        format!(
            "# pids limit {} (from the spec): a Pod has no per-container pids limit; \
             the node's kubelet sets one (podPidsLimit)",
            p.value.count()
        )
    });
    let active_deadline_seconds = l.timeout().map(|t| t.value.as_secs().max(1));
    let termination_grace_period_seconds = l.stop_timeout().map(|t| t.value.as_secs());

    let net = &plan.network;
    let host_network = match net.mode.value {
        NetMode::Host => Some(true),
        // `none` is also the default: only a spec that asks for it explicitly is told.
        NetMode::None if net.mode.span.is_some() => {
            warn(
                net.mode.span,
                "a Pod always has a network: `mode = \"none\"` has no equivalent \
                 (a NetworkPolicy can deny its traffic)"
                    .into(),
            );
            None
        }
        NetMode::None | NetMode::Pasta | NetMode::Slirp4netns => None,
    };
    if net.allow_host_loopback {
        warn(
            net.mode.span,
            "a Pod cannot reach its node's loopback: `allow_host_loopback` is not exported".into(),
        );
    }
    let ports = net
        .ports
        .iter()
        .map(|f| ContainerPort {
            container_port: f.value.box_port,
            host_port: (f.value.host_port != 0).then_some(f.value.host_port),
            host_ip: f.value.host_ip.map(|i| i.to_string()),
            protocol: match f.value.proto {
                Proto::Tcp => "TCP",
                Proto::Udp => "UDP",
            },
        })
        .collect();

    let hostname = match &plan.hostname {
        Some(h) => match dns_label(&h.value) {
            Some(l) if l == h.value => Some(l),
            _ => {
                warn(
                    h.span,
                    format!(
                        "a Pod's hostname is a DNS-1123 label: {:?} is not exported",
                        h.value
                    ),
                );
                None
            }
        },
        None => None,
    };

    let mut volumes = Vec::new();
    let mut volume_mounts = Vec::new();
    for (i, m) in plan.mounts.iter().enumerate() {
        let vname = format!("mount-{i}");
        let mut v = Volume {
            name: vname.clone(),
            host_path: None,
            persistent_volume_claim: None,
            empty_dir: None,
        };
        match &m.kind {
            MountKind::Bind { source } => {
                warnings.push(
                    Diagnostic::warning(
                        codes::export::HOST_PATH,
                        format!(
                            "the bind mount of {} is a hostPath volume: it names a path on \
                             whichever node runs the Pod",
                            source.display()
                        ),
                    )
                    .with_span(m.span)
                    .with_help("use a persistentVolumeClaim or a configMap in the cluster"),
                );
                v.host_path = Some(HostPath {
                    path: source.to_string_lossy().into_owned(),
                });
            }
            MountKind::Volume { name } => {
                let claim = dns_label(name).unwrap_or_else(|| vname.clone());
                if &claim != name {
                    warnings.push(
                        Diagnostic::warning(
                            codes::export::NO_EQUIVALENT,
                            format!(
                                "the volume {name:?} is claimed as {claim:?}: a claim's name \
                                 is a DNS-1123 label"
                            ),
                        )
                        .with_span(m.span),
                    );
                }
                v.persistent_volume_claim = Some(Claim { claim_name: claim });
            }
            MountKind::Tmpfs { size, mode, noexec } => {
                if mode.is_some() || *noexec {
                    warnings.push(
                        Diagnostic::warning(
                            codes::export::NO_EQUIVALENT,
                            format!(
                                "an emptyDir has no mode or noexec option: the tmpfs on {} \
                                 gets the runtime's",
                                m.target.display()
                            ),
                        )
                        .with_span(m.span),
                    );
                }
                v.empty_dir = Some(EmptyDir {
                    medium: "Memory",
                    size_limit: size.map(bytes_quantity),
                });
            }
        }
        volumes.push(v);
        volume_mounts.push(VolumeMount {
            name: vname,
            mount_path: m.target.to_string_lossy().into_owned(),
            read_only: m.readonly || m.overlay,
        });
    }

    let container = Container {
        name: name.clone(),
        image,
        command,
        args,
        env,
        working_dir,
        tty: (p.tty == Some(true)).then_some(true),
        stdin: (p.tty == Some(true)).then_some(true),
        ports,
        resources: (!limits.is_empty()).then_some(Resources { limits }),
        security_context: SecurityContext {
            run_as_user,
            run_as_group,
            capabilities: Capabilities {
                add,
                drop: vec!["ALL".into()],
            },
            allow_privilege_escalation: !plan.no_new_privs,
            read_only_root_filesystem: plan.rootfs.readonly.value,
            seccomp_profile,
        },
        volume_mounts,
    };
    let pod = Pod {
        api_version: "v1",
        kind: "Pod",
        metadata: Metadata {
            name: name.clone(),
            labels: BTreeMap::from([("app.kubernetes.io/created-by".into(), "foxbox".into())]),
        },
        spec: PodSpec {
            restart_policy: "Never",
            host_network,
            hostname,
            active_deadline_seconds,
            termination_grace_period_seconds,
            containers: vec![container],
            volumes,
        },
    };
    let body = serde_norway::to_string(&pod).map_err(|e| ExportError::Other(e.to_string()))?;
    let mut yaml = String::from("# A Kubernetes Pod made by `foxbox export --kube`.\n");
    for line in body.lines() {
        // The pids limit sits where a Pod's limits are, as a comment: Pods have none.
        if let Some(c) = &pids_comment {
            if line.trim_start() == "securityContext:" {
                let indent = &line[..line.len() - line.trim_start().len()];
                yaml.push_str(&format!("{indent}{c}\n"));
            }
        }
        yaml.push_str(line);
        yaml.push('\n');
    }
    Ok(KubeExport {
        yaml,
        seccomp_profile: seccomp_file,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_quantities() {
        assert_eq!(dns_label("My_Box.1").as_deref(), Some("my-box-1"));
        assert_eq!(dns_label("--").as_deref(), None);
        assert_eq!(dns_label(&"a".repeat(80)).map(|s| s.len()), Some(63));
        assert_eq!(bytes_quantity(64 << 20), "64Mi");
        assert_eq!(bytes_quantity(1 << 30), "1Gi");
        assert_eq!(bytes_quantity(1000), "1000");
        assert_eq!(cpu_quantity(0.5), "500m");
        assert_eq!(cpu_quantity(2.0), "2");
        assert_eq!(cpu_quantity(0.0001), "1m");
    }

    fn plan(text: &str) -> Plan {
        let (plan, diags) = crate::spec::check_str(
            text,
            std::path::Path::new("Foxbox.toml"),
            std::path::Path::new("/repo"),
        );
        plan.unwrap_or_else(|| panic!("{diags:?}"))
    }

    #[test]
    fn a_pod_from_a_plan() {
        let p = plan(
            "[box]\nimage = \"busybox\"\nname = \"web\"\ncommand = [\"echo\", \"hi\"]\n\
             user = \"1000:1000\"\nworkdir = \"/srv\"\nenv = { A = \"1\" }\n\
             [limits]\nmemory = \"64m\"\ncpus = 0.5\npids = 50\n",
        );
        let k = pod_from_plan(&p, None, None, "x").unwrap();
        let y = &k.yaml;
        for want in [
            "name: web",
            "image: busybox",
            "- echo",
            "runAsUser: 1000",
            "runAsGroup: 1000",
            "workingDir: /srv",
            "memory: 64Mi",
            "cpu: 500m",
            "# pids limit 50",
            "type: RuntimeDefault",
            "allowPrivilegeEscalation: false",
            "- ALL",
            "restartPolicy: Never",
            // A value that reads as a number stays a string, as a Pod's env needs.
            "value: '1'",
        ] {
            assert!(y.contains(want), "{want:?} not in\n{y}");
        }
        assert!(y.contains("name: PATH"), "{y}");
        let tarball = plan("[box]\nimage = \"/tmp/x.tar\"\n");
        assert!(matches!(
            pod_from_plan(&tarball, None, None, "x"),
            Err(ExportError::Image(_))
        ));
        assert!(pod_from_plan(&tarball, None, Some("reg/x:1"), "x").is_ok());
    }

    #[test]
    fn entrypoint_is_command_and_command_is_args() {
        let pod = |keys: &str| {
            let p = plan(&format!("[box]\nimage = \"busybox\"\n{keys}"));
            let y = pod_from_plan(&p, None, None, "x").unwrap().yaml;
            let v: serde_norway::Value = serde_norway::from_str(&y).unwrap();
            let c = &v["spec"]["containers"][0];
            let get = |k: &str| {
                c.get(k)
                    .map(|l| serde_norway::from_value::<Vec<String>>(l.clone()).unwrap())
            };
            (get("command"), get("args"))
        };
        let v = |w: &[&str]| Some(w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(pod(""), (None, None));
        assert_eq!(pod("command = [\"a\", \"b\"]"), (None, v(&["a", "b"])));
        assert_eq!(pod("entrypoint = [\"ep\"]"), (v(&["ep"]), None));
        assert_eq!(
            pod("entrypoint = [\"ep\"]\ncommand = [\"a\"]"),
            (v(&["ep"]), v(&["a"]))
        );
        assert_eq!(
            pod("entrypoint = \"run it\"\n"),
            (v(&["/bin/sh", "-c", "run it"]), None)
        );
        assert_eq!(pod("entrypoint = []\ncommand = [\"a\"]"), (v(&["a"]), None));
    }
}
