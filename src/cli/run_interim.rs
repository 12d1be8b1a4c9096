//! INTERIM `run` flags → Plan, until the spec parser's `RunArgs` path lands (then this file is
//! deleted). Deliberately small: podman's default capabilities, the default seccomp profile, no
//! network unless `--network host`, the command, -e, -w, -u, --hostname, --read-only,
//! --cap-add/--cap-drop, -t, --init, -v SRC:DST[:ro] (an absolute host path or a volume name), --tmpfs DST.

use std::path::{Path, PathBuf};

use foxbox::plan::{
    Enforce, ImageRef, Limits, Mount, MountKind, NetMode, Network, Origin, Plan, Process, Rootfs,
    Seccomp, Spanned, User,
};
use foxbox::security::caps::{self, CapSet};

use super::run::RunArgs;

pub fn plan(a: &RunArgs) -> Result<Plan, String> {
    for (flag, set) in [
        ("--memory", a.memory.is_some()),
        ("--cpus", a.cpus.is_some()),
        ("--pids-limit", a.pids_limit.is_some()),
        ("--timeout", a.timeout.is_some()),
        ("--publish", !a.publish.is_empty()),
    ] {
        if set {
            return Err(format!("{flag} is not supported yet"));
        }
    }
    let image = absolute(Path::new(&a.image));
    let cwd = match &a.workdir {
        Some(w) if !w.starts_with('/') => {
            return Err(format!("--workdir {w:?} must be an absolute path"))
        }
        Some(w) => PathBuf::from(w),
        None => PathBuf::from("/"),
    };
    let mut no_new_privs = false;
    let mut seccomp = Seccomp::Default;
    for opt in &a.security_opt {
        match opt.as_str() {
            "no-new-privileges" | "no-new-privileges=true" => no_new_privs = true,
            "seccomp=unconfined" => seccomp = Seccomp::Unconfined,
            "seccomp=default" => seccomp = Seccomp::Default,
            o => return Err(format!("--security-opt {o:?} is not supported yet")),
        }
    }
    let mode = match a.network.as_deref() {
        None | Some("none") => NetMode::None,
        Some("host") => NetMode::Host,
        Some(n) => return Err(format!("--network {n} is not supported yet")),
    };
    let mut mounts = Vec::new();
    for v in &a.volume {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => return Err(format!("--volume {v:?}: expected SRC:DST[:ro]")),
        };
        if !dst.starts_with('/') {
            return Err(format!("--volume {v:?}: the target must be absolute"));
        }
        let kind = if src.starts_with('/') {
            MountKind::Bind {
                source: PathBuf::from(src),
            }
        } else {
            MountKind::Volume {
                name: src.to_string(),
            }
        };
        mounts.push(Mount {
            kind,
            target: PathBuf::from(dst),
            readonly: ro,
            span: None,
        });
    }
    for t in &a.tmpfs {
        if !t.starts_with('/') || t.contains(':') {
            return Err(format!("--tmpfs {t:?}: expected an absolute path"));
        }
        mounts.push(Mount {
            kind: MountKind::Tmpfs {
                size: None,
                mode: None,
            },
            target: PathBuf::from(t),
            readonly: false,
            span: None,
        });
    }
    Ok(Plan {
        origin: Origin::CommandLine,
        name: a.name.clone().map(Spanned::bare),
        image: Spanned::bare(ImageRef::Tarball { path: image }),
        process: Process {
            args: Spanned::bare(a.command.clone()),
            env: env(&a.env),
            cwd: Spanned::bare(cwd),
            user: Spanned::bare(user(a.user.as_deref())?),
            tty: Some(a.tty),
            init: a.init,
        },
        hostname: a.hostname.clone().map(Spanned::bare),
        limits: Limits {
            memory: None,
            memory_swap: None,
            cpus: None,
            pids: None,
            timeout: None,
            enforce: Enforce::Strict,
        },
        capabilities: Spanned::bare(capabilities(&a.cap_add, &a.cap_drop)?),
        no_new_privs,
        seccomp: Spanned::bare(seccomp),
        network: Network {
            mode: Spanned::bare(mode),
            ports: Vec::new(),
            allow_host_loopback: false,
        },
        mounts,
        rootfs: Rootfs {
            readonly: Spanned::bare(a.read_only),
        },
    })
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn env(flags: &[String]) -> Vec<(String, String)> {
    flags
        .iter()
        .filter_map(|e| match e.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(e).ok().map(|v| (e.clone(), v)),
        })
        .collect()
}

fn user(u: Option<&str>) -> Result<User, String> {
    let Some(u) = u else {
        return Ok(User::Id { uid: 0, gid: None });
    };
    let (name, group) = match u.split_once(':') {
        Some((n, g)) => (n, Some(g)),
        None => (u, None),
    };
    match (name.parse::<u32>(), group.map(|g| g.parse::<u32>())) {
        (Ok(uid), None) => Ok(User::Id { uid, gid: None }),
        (Ok(uid), Some(Ok(gid))) => Ok(User::Id {
            uid,
            gid: Some(gid),
        }),
        _ if name.is_empty() => Err(format!("--user {u:?}: empty user")),
        _ => Ok(User::Name {
            user: name.to_string(),
            group: group.map(str::to_string),
        }),
    }
}

fn capabilities(add: &[String], drop: &[String]) -> Result<CapSet, String> {
    let mut set = CapSet::podman_default();
    let one = |n: &str| caps::parse(n).ok_or_else(|| format!("unknown capability {n:?}"));
    for d in drop {
        if d.eq_ignore_ascii_case("all") {
            set = CapSet::EMPTY;
        } else {
            set.remove(one(d)?);
        }
    }
    for a in add {
        if a.eq_ignore_ascii_case("all") {
            set = CapSet::all();
        } else {
            set.insert(one(a)?);
        }
    }
    Ok(set)
}
