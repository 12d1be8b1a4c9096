//! `foxbox diff OLD NEW`: the values two resolved plans differ in, each with the spec lines it
//! came from. Plans, not text: a reordered table, a comment or `64m` against `"64MiB"` is no
//! difference; a changed default or a relative path that now means another directory is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Args;
use serde::Serialize;
use serde_json::{json, Value};

use foxbox::diag::{self, Diagnostic, RenderOptions, Source};
use foxbox::plan::{MountKind, Plan, Seccomp};
use foxbox::spec;
use toml::de::{DeTable, DeValue};

use super::ctx::{CmdResult, Ctx, Format};

#[derive(Debug, Args)]
#[command(after_long_help = "\
OLD (and NEW) may be `REV:PATH`, a spec in git history: `foxbox diff HEAD~1:Foxbox.toml
Foxbox.toml`. PATH is relative to the current directory (as git's `REV:./PATH`); the
revision's whole tree is read into a temporary directory so that the spec's relative paths
(binds, seccomp profiles, image tarballs) resolve as they did at that revision, and are shown
as paths in the working tree.

Exit status (as diff(1)): 0 when the plans are equal, 1 when they differ, 2 when a spec
cannot be read, is invalid, or a revision cannot be read.")]
pub struct DiffArgs {
    /// The old spec: a file, or `REV:PATH` in git history.
    #[arg(value_name = "OLD")]
    pub old: String,
    /// The new spec: a file, or `REV:PATH`.
    #[arg(value_name = "NEW")]
    pub new: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Location {
    file: String,
    line: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Change {
    section: String,
    key: String,
    old: Value,
    new: Value,
    old_location: Option<Location>,
    new_location: Option<Location>,
}

/// One side of the comparison: the spec's name, its plan and its files.
struct Side {
    name: String,
    plan: Plan,
    /// For `REV:PATH`: the temporary tree and the working tree it stands for.
    rewrite: Option<(String, String)>,
    /// Its files (bases, a local override): where each value was set.
    files: spec::compose::Composition,
    _tree: Option<tempfile::TempDir>,
}

/// Why a side could not be read: a message, or the spec's diagnostics.
enum Trouble {
    Message(String),
    Invalid {
        name: String,
        text: String,
        diags: Vec<Diagnostic>,
    },
}

pub fn run(a: DiffArgs, ctx: &Ctx) -> CmdResult {
    let sides = load(&a.old).and_then(|old| Ok((old, load(&a.new)?)));
    let (old, new) = match sides {
        Ok(s) => s,
        Err(Trouble::Message(m)) => {
            super::ctx::err(&format!("foxbox diff: {m}\n"));
            return Ok(2);
        }
        Err(Trouble::Invalid { name, text, diags }) => {
            let opts = RenderOptions {
                color: ctx.color_stderr(),
                ..RenderOptions::default()
            };
            let src = Source {
                name: &name,
                text: Some(&text),
            };
            super::ctx::err(&diag::render_source(&diags, src, opts));
            super::ctx::err(&format!(
                "foxbox diff: {name} has errors (see `foxbox check`)\n"
            ));
            return Ok(2);
        }
    };
    let changes = compare(&old, &new);
    match a.format {
        Format::Json => {
            let v = json!({
                "old": old.name,
                "new": new.name,
                "equal": changes.is_empty(),
                "changes": changes,
            });
            let text = serde_json::to_string_pretty(&v)
                .map_err(|e| failure!(foxbox::diag::codes::cli::OUTPUT, "{e}"))?;
            super::ctx::out(&format!("{text}\n"));
        }
        Format::Human => super::ctx::out(&human(&old, &new, &changes)),
    }
    Ok(u8::from(!changes.is_empty()))
}

fn load(arg: &str) -> Result<Side, Trouble> {
    let as_file = Path::new(arg);
    if as_file.exists() {
        let text = spec::read_spec(as_file)
            .map_err(|e| Trouble::Message(format!("cannot read {arg}: {e}")))?;
        return resolve(arg, text, as_file, &spec::spec_dir(as_file), None, None);
    }
    let Some((rev, path)) = arg
        .split_once(':')
        .filter(|(r, p)| !r.is_empty() && !p.is_empty())
    else {
        return Err(Trouble::Message(format!(
            "cannot read {arg}: no such file (and not REV:PATH)"
        )));
    };
    from_git(arg, rev, path)
}

fn resolve(
    name: &str,
    text: String,
    path: &Path,
    dir: &Path,
    rewrite: Option<(String, String)>,
    tree: Option<tempfile::TempDir>,
) -> Result<Side, Trouble> {
    let (plan, diags) = spec::check_str(&text, path, dir);
    match plan {
        Some(plan) => Ok(Side {
            name: name.to_string(),
            files: spec::composition(&text, path, dir),
            plan,
            rewrite,
            _tree: tree,
        }),
        None => Err(Trouble::Invalid {
            name: name.to_string(),
            text,
            diags: diags.into_iter().filter(Diagnostic::is_error).collect(),
        }),
    }
}

/// Run git in the current directory; its stdout, or what it said.
fn git(args: &[&str]) -> Result<Vec<u8>, Trouble> {
    let out = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Trouble::Message(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(Trouble::Message(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

fn git_line(args: &[&str]) -> Result<String, Trouble> {
    Ok(String::from_utf8_lossy(&git(args)?).trim_end().to_string())
}

/// `REV:PATH`: the revision's tree in a temporary directory, and the spec resolved in it.
fn from_git(arg: &str, rev: &str, path: &str) -> Result<Side, Trouble> {
    let top = git_line(&["rev-parse", "--show-toplevel"])?;
    let prefix = git_line(&["rev-parse", "--show-prefix"])?;
    // `--verify REV^{tree}` refuses anything that is not a revision (and options).
    let tree_id = git_line(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{tree}}"),
    ])
    .map_err(|_| Trouble::Message(format!("{rev} is not a revision in this repository")))?;
    let rel = spec::paths::normalise(&Path::new("/").join(&prefix).join(path));
    let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
    // From the top: in a subdirectory `git archive` would archive only that subdirectory.
    let archive = git(&["-C", &top, "archive", "--format=tar", &tree_id])?;
    let tmp = tempfile::Builder::new()
        .prefix("foxbox-diff-")
        .tempdir()
        .map_err(|e| Trouble::Message(format!("cannot make a temporary directory: {e}")))?;
    tar::Archive::new(archive.as_slice())
        .unpack(tmp.path())
        .map_err(|e| Trouble::Message(format!("cannot unpack {rev}: {e}")))?;
    let file = tmp.path().join(&rel);
    let text = spec::read_spec(&file)
        .map_err(|e| Trouble::Message(format!("cannot read {} at {rev}: {e}", rel.display())))?;
    let dir = spec::spec_dir(&file);
    let rewrite = Some((tmp.path().display().to_string(), top));
    let named = PathBuf::from(arg);
    resolve(arg, text, &named, &dir, rewrite, Some(tmp))
}

/// Every value of a plan that a spec can set: (section, key) → (value, TOML key path).
fn entries(side: &Side) -> BTreeMap<(String, String), (Value, Vec<String>)> {
    let p = &side.plan;
    let mut m = BTreeMap::new();
    let mut put = |section: &str, key: &str, value: Value, toml: &[&str]| {
        m.insert(
            (section.to_string(), key.to_string()),
            (value, toml.iter().map(|s| s.to_string()).collect()),
        );
    };
    put("box", "name", v(&p.name), &["box", "name"]);
    put("box", "image", v(&p.image), &["box", "image"]);
    let words = |part: &Option<foxbox::plan::ArgvPart>| v(&part.as_ref().map(|p| &p.words));
    put(
        "box",
        "entrypoint",
        words(&p.process.argv.entrypoint),
        &["box", "entrypoint"],
    );
    put(
        "box",
        "command",
        words(&p.process.argv.command),
        &["box", "command"],
    );
    put("box", "workdir", v(&p.process.cwd), &["box", "workdir"]);
    put("box", "user", v(&p.process.user), &["box", "user"]);
    put("box", "hostname", v(&p.hostname), &["box", "hostname"]);
    put("box", "tty", v(&p.process.tty), &["box", "tty"]);
    put("box", "init", v(&p.process.init), &["box", "init"]);
    for (k, val) in &p.process.env {
        put("box", &format!("env.{k}"), json!(val), &["box", "env", k]);
    }
    let l = &p.limits;
    put("limits", "memory", v(&l.memory()), &["limits", "memory"]);
    put(
        "limits",
        "memory_swap",
        v(&l.memory_swap()),
        &["limits", "memory_swap"],
    );
    put("limits", "cpus", v(&l.cpus()), &["limits", "cpus"]);
    put("limits", "pids", v(&l.pids()), &["limits", "pids"]);
    let secs = |d: Option<&foxbox::plan::Spanned<std::time::Duration>>| {
        json!(d.map(|d| humantime::format_duration(d.value).to_string()))
    };
    put(
        "limits",
        "timeout",
        secs(l.timeout()),
        &["limits", "timeout"],
    );
    put(
        "limits",
        "stop_timeout",
        secs(l.stop_timeout()),
        &["limits", "stop_timeout"],
    );
    put("limits", "enforce", v(&l.enforce()), &["limits", "enforce"]);
    put(
        "capabilities",
        "set",
        json!(p.capabilities.value.names()),
        &["capabilities"],
    );
    put(
        "capabilities",
        "added",
        json!(p.added_capabilities.names()),
        &["capabilities", "add"],
    );
    let seccomp = match &p.seccomp.value {
        Seccomp::Default => json!("default"),
        Seccomp::Unconfined => json!("unconfined"),
        // The profile's rules are what matter: the same file name with other contents differs.
        Seccomp::Profile { path, profile } => {
            use sha2::Digest;
            let rules = serde_json::to_vec(profile).unwrap_or_default();
            json!({ "path": path, "sha256": hex::encode(sha2::Sha256::digest(&rules)) })
        }
    };
    put("seccomp", "profile", seccomp, &["seccomp", "profile"]);
    put(
        "security",
        "no_new_privileges",
        json!(p.no_new_privs),
        &["security", "no_new_privileges"],
    );
    let n = &p.network;
    put("network", "mode", v(&n.mode), &["network", "mode"]);
    put("network", "ports", v(&n.ports), &["network", "ports"]);
    put(
        "network",
        "allow_host_loopback",
        json!(n.allow_host_loopback),
        &["network", "allow_host_loopback"],
    );
    for mount in &p.mounts {
        let target = mount.target.display().to_string();
        let mut value = v(mount);
        if let (Value::Object(o), MountKind::Tmpfs { .. } | MountKind::Bind { .. }) =
            (&mut value, &mount.kind)
        {
            o.remove("target");
        }
        put(
            "mounts",
            &target,
            value,
            &["mounts", &format!("target={target}")],
        );
    }
    put(
        "rootfs",
        "readonly",
        v(&p.rootfs.readonly),
        &["rootfs", "readonly"],
    );
    if let Some((from, to)) = &side.rewrite {
        for (value, _) in m.values_mut() {
            rewrite_paths(value, from, to);
        }
    }
    m
}

/// A plan piece as JSON (the plan's own serialisation, which cannot fail on these types).
fn v<T: Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap_or(Value::Null)
}

/// Paths inside a revision's temporary tree, as the working tree's paths.
fn rewrite_paths(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) => {
            if let Some(rest) = s.strip_prefix(from) {
                if rest.is_empty() || rest.starts_with('/') {
                    *s = format!("{to}{rest}");
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_paths(x, from, to)),
        Value::Object(o) => o.values_mut().for_each(|x| rewrite_paths(x, from, to)),
        _ => {}
    }
}

/// The line of the value at a TOML key path (`mounts` items by `target=...`), or of the
/// deepest table on the way that the spec has. `None` when the spec does not mention it.
fn locate(side: &Side, path: &[String]) -> Option<Location> {
    let merged = side.files.merged();
    let mut table: &DeTable<'_> = &merged.tree;
    let mut found: Option<std::ops::Range<usize>> = None;
    for part in path {
        let value = if let Some(target) = part.strip_prefix("target=") {
            table.iter().find_map(|(_, v)| {
                v.get_ref()
                    .as_array()?
                    .iter()
                    .find(|item| match item.get_ref() {
                        DeValue::Table(t) => t.iter().any(|(k, tv)| {
                            k.get_ref() == "target"
                                && tv.get_ref().as_str().is_some_and(|s| {
                                    spec::paths::normalise(Path::new(s)) == Path::new(target)
                                })
                        }),
                        _ => false,
                    })
            })
        } else {
            table
                .iter()
                .find(|(k, _)| k.get_ref() == part)
                .map(|(_, v)| v)
        };
        let Some(value) = value else { break };
        found = Some(value.span());
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    let (file, line) = side.files.place(found?.into())?;
    // The spec itself is named as the user named it (`REV:PATH`); a base by its path.
    let file = if file == side.files.layers[0].path.display().to_string() {
        side.name.clone()
    } else {
        file
    };
    Some(Location { file, line })
}

fn compare(old: &Side, new: &Side) -> Vec<Change> {
    let (a, b) = (entries(old), entries(new));
    let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).cloned().collect();
    let mut out = Vec::new();
    for key in keys {
        let (ov, op) = a.get(&key).cloned().unwrap_or((Value::Null, Vec::new()));
        let (nv, np) = b.get(&key).cloned().unwrap_or((Value::Null, Vec::new()));
        if ov == nv {
            continue;
        }
        // A value one side lacks is looked for there under the other side's key path.
        let path = if op.is_empty() { &np } else { &op };
        out.push(Change {
            section: key.0.clone(),
            key: key.1.clone(),
            old_location: locate(old, path),
            new_location: locate(new, path),
            old: ov,
            new: nv,
        });
    }
    // Sections in the spec's order, keys in it as well where the spec gives them.
    const ORDER: &[&str] = &[
        "box",
        "limits",
        "capabilities",
        "seccomp",
        "security",
        "network",
        "mounts",
        "rootfs",
    ];
    out.sort_by_key(|c| ORDER.iter().position(|s| *s == c.section));
    out
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".into(),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn place(l: &Option<Location>) -> String {
    match l {
        Some(l) => format!("{}:{}", l.file, l.line),
        None => "default".into(),
    }
}

fn human(old: &Side, new: &Side, changes: &[Change]) -> String {
    if changes.is_empty() {
        return format!("{} and {}: the plans are equal\n", old.name, new.name);
    }
    let mut s = format!("--- {}\n+++ {}\n", old.name, new.name);
    let mut section = "";
    for c in changes {
        if c.section != section {
            section = &c.section;
            s.push_str(&format!("[{section}]\n"));
        }
        s.push_str(&format!(
            "  {}: {} -> {}\n      old: {}\n      new: {}\n",
            c.key,
            show(&c.old),
            show(&c.new),
            place(&c.old_location),
            place(&c.new_location)
        ));
    }
    let n = changes.len();
    s.push_str(&format!(
        "{n} value{} differ{}\n",
        if n == 1 { "" } else { "s" },
        if n == 1 { "s" } else { "" }
    ));
    s
}
