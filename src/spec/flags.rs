//! podman-style `run` flags → the same [`RawSpec`] a Foxbox.toml gives, then the same resolver:
//! one code path from both front doors to the [`Plan`].
//!
//! The flags are laid out as one command line text (`run --memory 64m busybox ...`) and every
//! raw value's span points into it, so a bad flag is underlined exactly like a bad spec value.

use std::path::Path;

use super::codes;
use super::raw::*;
use super::resolve;
use crate::diag::Diagnostic;
use crate::plan::{Origin, Plan, Span};

/// The `run` flags that shape a box, as the user typed them (podman's names and forms).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFlags {
    /// `--name`
    pub name: Option<String>,
    /// `-e KEY=VALUE`, or `-e KEY` to copy the caller's value.
    pub env: Vec<String>,
    /// `-w`
    pub workdir: Option<String>,
    /// `-u uid[:gid]` or `name[:group]`
    pub user: Option<String>,
    /// `--hostname`
    pub hostname: Option<String>,
    /// `-v SRC:DST[:ro|rw|U|O|z|Z]`: SRC a host path (absolute or starting with `.`) or a
    /// volume name. `U` chowns the source to the box user, `O` mounts an overlay over it;
    /// `z`/`Z` (SELinux relabelling) are accepted and change nothing.
    pub volume: Vec<String>,
    /// `--tmpfs DST[:size=64m,mode=1777,ro]`
    pub tmpfs: Vec<String>,
    /// `-m`
    pub memory: Option<String>,
    /// `--memory-swap`
    pub memory_swap: Option<String>,
    /// `--cpus`
    pub cpus: Option<String>,
    /// `--pids-limit` (`-1`: no limit, as in podman)
    pub pids_limit: Option<String>,
    /// `--timeout`
    pub timeout: Option<String>,
    /// `--stop-timeout`: seconds, as podman's, or a duration.
    pub stop_timeout: Option<String>,
    /// `--cap-add` (comma-separated lists allowed)
    pub cap_add: Vec<String>,
    /// `--cap-drop`
    pub cap_drop: Vec<String>,
    /// `--security-opt seccomp=default|unconfined|PATH`, `no-new-privileges[=true|false]`
    pub security_opt: Vec<String>,
    /// `--network none|host|pasta|slirp4netns[:allow_host_loopback=true]`
    pub network: Option<String>,
    /// `-p [host_ip:][host_port:]box_port[/proto]`, ports or ranges; without `--network`
    /// it means pasta, as podman's default user-mode network.
    pub publish: Vec<String>,
    /// `--read-only`
    pub read_only: bool,
    /// `-t`
    pub tty: bool,
    /// `--init`
    pub init: bool,
    /// `--userns`: podman's `keep-id[:uid=N,gid=N]`; its other modes are refused.
    pub userns: Option<String>,
    /// `--entrypoint`: a program, or a JSON array (`["/bin/sh","-c"]`); `''` clears the
    /// image's. It replaces the image's entrypoint and drops the image's command: the
    /// command's words (if any) follow it, as podman's.
    pub entrypoint: Option<String>,
    /// The image: a stored reference or a tarball path.
    pub image: String,
    /// The command and its arguments, after the image's entrypoint (empty: the image's).
    pub command: Vec<String>,
}

/// The outcome of checking `run` flags.
#[derive(Debug, Clone)]
pub struct FlagsChecked {
    /// The plan, when no diagnostic is an error. Its origin is `CommandLine` and its items
    /// carry no spans.
    pub plan: Option<Plan>,
    pub diagnostics: Vec<Diagnostic>,
    /// The command line the diagnostics' spans point into (render it as the source).
    pub command_line: String,
    /// The spec the flags make (`run --emit-spec` writes it out).
    pub raw: RawSpec,
}

/// The entries of a podman `--env-file`: `KEY=VALUE` lines (the value taken verbatim),
/// `KEY` alone to copy the caller's value, blank lines and `#` comments skipped. `Err` names
/// the first bad line (1-based) and what is wrong with it.
pub fn parse_env_file(text: &str) -> Result<Vec<String>, (usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let key = l.split_once('=').map_or(l.trim_end(), |(k, _)| k);
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err((n + 1, format!("`{line}` is not KEY=VALUE")));
        }
        out.push(if l.contains('=') {
            l.to_string()
        } else {
            key.to_string()
        });
    }
    Ok(out)
}

/// Why an `--entrypoint` value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrypointError {
    pub message: String,
    pub help: &'static str,
}

/// The words of podman's `--entrypoint` (`run`, `up`, `plan`): a JSON array of strings, else
/// one program (spaces and all); `''` (or `[]`) clears the image's entrypoint.
pub fn entrypoint_words(ep: &str) -> Result<Vec<String>, EntrypointError> {
    if ep.trim_start().starts_with('[') {
        return serde_json::from_str::<Vec<String>>(ep).map_err(|e| EntrypointError {
            message: format!("`--entrypoint {ep}` is not a JSON array of strings ({e})"),
            help: r#"write e.g. `--entrypoint '["/bin/sh","-c"]'`, or one program: `--entrypoint /bin/sh`"#,
        });
    }
    Ok(if ep.is_empty() {
        Vec::new()
    } else {
        vec![ep.to_string()]
    })
}

/// Check `run` flags and resolve them into a plan. `base_dir` anchors relative host paths (the
/// caller's working directory); `caller_env` looks up `-e KEY` values.
pub fn check_run_flags(
    flags: &RunFlags,
    base_dir: &Path,
    caller_env: &dyn Fn(&str) -> Option<String>,
) -> FlagsChecked {
    let mut b = Builder::default();
    let raw = b.spec(flags, caller_env);
    let (plan, more) = resolve::resolve(
        &raw,
        Origin::CommandLine,
        &resolve::Options {
            base_dir,
            keep_spans: false,
        },
    );
    let mut diagnostics = b.diags;
    diagnostics.extend(more.into_iter().map(flag_words));
    diagnostics.sort_by_key(|d| d.span.map_or((usize::MAX, 0), |s| (s.start, s.end)));
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    FlagsChecked {
        plan: plan.filter(|_| !has_errors),
        diagnostics,
        command_line: b.text,
        raw,
    }
}

/// Spec key names in messages → the flags a command-line user typed.
const KEY_TO_FLAG: &[(&str, &str)] = &[
    ("`box.name`", "`--name`"),
    ("`box.image`", "the image"),
    ("`box.command`", "the command"),
    ("`box.entrypoint`", "`--entrypoint`"),
    ("`box.workdir`", "`--workdir`"),
    ("`box.user`", "`--user`"),
    ("`box.hostname`", "`--hostname`"),
    ("`limits.memory_swap`", "`--memory-swap`"),
    ("`limits.memory`", "`--memory`"),
    ("`limits.cpus", "`--cpus"),
    ("`limits.pids", "`--pids-limit"),
    ("`limits.timeout`", "`--timeout`"),
    ("`limits.stop_timeout`", "`--stop-timeout`"),
    ("`capabilities.add`", "`--cap-add`"),
    ("`capabilities.drop`", "`--cap-drop`"),
    ("`seccomp.profile`", "`--security-opt seccomp`"),
    ("`security.userns`", "`--userns`"),
    ("`network.mode`", "`--network`"),
    ("`network.allow_host_loopback`", "`allow_host_loopback`"),
];

fn flag_words(mut d: Diagnostic) -> Diagnostic {
    for (k, f) in KEY_TO_FLAG {
        d.message = d.message.replace(k, f);
    }
    if d.code == codes::BAD_DURATION {
        // A flag's value is not a TOML string, and podman's timeout flags take seconds.
        d.help = Some("give seconds (`30`) or a duration: `30s`, `5m`, `1m30s`, `2h`".to_string());
    }
    d
}

/// Lays the flags out as text and builds the raw spec with spans into it.
#[derive(Default)]
struct Builder {
    text: String,
    diags: Vec<Diagnostic>,
}

/// A flag value's place in the text, and whether it is verbatim (so that offsets inside the
/// value are offsets inside the text).
#[derive(Clone, Copy)]
struct At {
    span: Span,
    verbatim: bool,
}

impl At {
    /// The span of `value[off..off+len]`, or of the whole value when it was quoted.
    fn sub(self, off: usize, len: usize) -> Span {
        if self.verbatim {
            Span::new(self.span.start + off, self.span.start + off + len)
        } else {
            self.span
        }
    }
}

fn quote(v: &str) -> (String, bool) {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+[]".contains(&b));
    if plain {
        (v.to_string(), true)
    } else {
        (format!("'{}'", v.replace('\'', r"'\''")), false)
    }
}

impl Builder {
    /// Append `flag value` (or just `value` when `flag` is empty) and return where the value is.
    fn add(&mut self, flag: &str, value: &str) -> At {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        if !flag.is_empty() {
            self.text.push_str(flag);
            self.text.push(' ');
        }
        let (q, verbatim) = quote(value);
        let start = self.text.len();
        self.text.push_str(&q);
        At {
            span: Span::new(start, self.text.len()),
            verbatim,
        }
    }

    /// Append a boolean flag and return its span.
    fn switch(&mut self, flag: &str) -> Span {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let start = self.text.len();
        self.text.push_str(flag);
        Span::new(start, self.text.len())
    }

    fn bad(&mut self, span: Span, message: String, help: &str) {
        self.diags.push(
            Diagnostic::error(codes::BAD_FLAG, message)
                .with_span(Some(span))
                .with_label("here")
                .with_help(help.to_string()),
        );
    }

    fn opt(&mut self, flag: &str, v: &Option<String>) -> Option<Sp<String>> {
        v.as_ref()
            .map(|v| Sp::new(v.clone(), self.add(flag, v).span))
    }

    fn spec(&mut self, f: &RunFlags, caller_env: &dyn Fn(&str) -> Option<String>) -> RawSpec {
        self.text.push_str("run");
        let mut bx = RawBox {
            name: self.opt("--name", &f.name),
            workdir: self.opt("--workdir", &f.workdir),
            user: self.opt("--user", &f.user),
            hostname: self.opt("--hostname", &f.hostname),
            ..RawBox::default()
        };
        let mut env = Vec::new();
        for e in &f.env {
            let at = self.add("--env", e);
            match e.split_once('=') {
                Some((k, v)) => env.push(RawEnv {
                    key: Sp::new(k.to_string(), at.sub(0, k.len())),
                    value: Sp::new(v.to_string(), at.sub(k.len() + 1, v.len())),
                }),
                // podman: `-e KEY` copies the caller's value, and skips it when unset.
                None => {
                    if let Some(v) = caller_env(e) {
                        env.push(RawEnv {
                            key: Sp::new(e.clone(), at.span),
                            value: Sp::new(v, at.span),
                        });
                    }
                }
            }
        }
        if !env.is_empty() {
            let span = Span::new(env[0].key.span.start, self.text.len());
            bx.env = Some(Sp::new(env, span));
        }

        let mut mounts = Vec::new();
        for v in &f.volume {
            let at = self.add("--volume", v);
            if let Some(m) = self.volume(v, at) {
                mounts.push(m);
            }
        }
        for t in &f.tmpfs {
            let at = self.add("--tmpfs", t);
            if let Some(m) = self.tmpfs(t, at) {
                mounts.push(m);
            }
        }

        let mut limits = RawLimits {
            memory: self
                .opt("--memory", &f.memory)
                .map(|m| Sp::new(RawSize::Text(m.value), m.span)),
            memory_swap: self
                .opt("--memory-swap", &f.memory_swap)
                .map(|m| Sp::new(RawSize::Text(m.value), m.span)),
            ..RawLimits::default()
        };
        if let Some(c) = &f.cpus {
            let at = self.add("--cpus", c);
            match c.trim().parse::<f64>() {
                Ok(n) => limits.cpus = Some(Sp::new(n, at.span)),
                Err(_) => self.bad(
                    at.span,
                    format!("`--cpus {c}` is not a number"),
                    "give cores as a number, e.g. `--cpus 0.5`",
                ),
            }
        }
        if let Some(p) = &f.pids_limit {
            let at = self.add("--pids-limit", p);
            match p.trim().parse::<i64>() {
                Ok(-1) => {}
                Ok(n) => limits.pids = Some(Sp::new(n, at.span)),
                Err(_) => self.bad(
                    at.span,
                    format!("`--pids-limit {p}` is not a number"),
                    "give a count, e.g. `--pids-limit 64`, or -1 for no limit",
                ),
            }
        }
        // podman's flags take whole seconds; a duration works too.
        let seconds = |mut s: Sp<String>| {
            if s.value.trim().parse::<u64>().is_ok() {
                s.value = format!("{}s", s.value.trim());
            }
            s
        };
        limits.timeout = self.opt("--timeout", &f.timeout).map(seconds);
        limits.stop_timeout = self.opt("--stop-timeout", &f.stop_timeout).map(seconds);
        let any_limit = limits != RawLimits::default();

        let caps = RawCapabilities {
            add: self.cap_list("--cap-add", &f.cap_add),
            drop: self.cap_list("--cap-drop", &f.cap_drop),
        };

        let mut seccomp = None;
        let mut security = RawSecurity::default();
        let mut security_span = None;
        for o in &f.security_opt {
            let at = self.add("--security-opt", o);
            let (k, v) = match o.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (o.as_str(), None),
            };
            match (k, v) {
                ("seccomp", Some(p)) => {
                    seccomp = Some(Sp::new(
                        RawSeccomp {
                            profile: Some(Sp::new(p.to_string(), at.sub(k.len() + 1, p.len()))),
                        },
                        at.span,
                    ))
                }
                ("no-new-privileges", None | Some("true") | Some("false")) => {
                    security.no_new_privileges = Some(Sp::new(v != Some("false"), at.span));
                    security_span.get_or_insert(at.span);
                }
                _ => self.bad(
                    at.span,
                    format!("unsupported `--security-opt {o}`"),
                    "foxbox knows `seccomp=default|unconfined|PROFILE.json` and `no-new-privileges[=true|false]`",
                ),
            }
        }

        let mut net = RawNetwork::default();
        if let Some(n) = &f.network {
            let at = self.add("--network", n);
            let (mode, opts) = match n.split_once(':') {
                Some((m, o)) => (m, Some(o)),
                None => (n.as_str(), None),
            };
            net.mode = Some(Sp::new(mode.to_string(), at.sub(0, mode.len())));
            let mut off = mode.len() + 1;
            for opt in opts.into_iter().flat_map(|o| o.split(',')) {
                let span = at.sub(off, opt.len());
                off += opt.len() + 1;
                match opt {
                    "allow_host_loopback=true" | "allow_host_loopback" => {
                        net.allow_host_loopback = Some(Sp::new(true, span))
                    }
                    "allow_host_loopback=false" => {
                        net.allow_host_loopback = Some(Sp::new(false, span))
                    }
                    _ => self.bad(
                        span,
                        format!("unsupported network option `{opt}`"),
                        "foxbox knows `allow_host_loopback=true|false`",
                    ),
                }
            }
        }
        let mut ports = Vec::new();
        for p in &f.publish {
            ports.push(Sp::new(p.clone(), self.add("--publish", p).span));
        }
        if !ports.is_empty() {
            let span = Span::new(ports[0].span.start, ports[ports.len() - 1].span.end);
            net.ports = Some(Sp::new(ports, span));
            if f.network.is_none() {
                // podman forwards ports through its default user-mode network; pasta is ours.
                net.mode = Some(Sp::new("pasta".to_string(), span));
                self.diags.push(
                    Diagnostic::warning(
                        codes::IMPLIED_FLAG,
                        "`--publish` without `--network`: the box gets pasta's network (`--network pasta`)",
                    )
                    .with_span(Some(span))
                    .with_label("forwarded through pasta")
                    .with_help("say `--network pasta` (or `slirp4netns`) to choose it and silence this note"),
                );
            }
        }
        let rootfs = f.read_only.then(|| {
            let span = self.switch("--read-only");
            Sp::new(
                RawRootfs {
                    readonly: Some(Sp::new(true, span)),
                },
                span,
            )
        });
        // podman: no -t, no terminal (a spec's default of "when stdin is one" does not apply).
        let tty_span = if f.tty {
            self.switch("--tty")
        } else {
            Span::new(0, 0)
        };
        bx.tty = Some(Sp::new(f.tty, tty_span));
        if f.init {
            bx.init = Some(Sp::new(true, self.switch("--init")));
        }

        if let Some(u) = &f.userns {
            // Checked by the resolver, as `security.userns` is.
            let at = self.add("--userns", u);
            security.userns = Some(Sp::new(u.clone(), at.span));
            security_span.get_or_insert(at.span);
        }
        if let Some(ep) = &f.entrypoint {
            let at = self.add("--entrypoint", ep);
            bx.entrypoint = self.entrypoint(ep, at, f.command.is_empty());
        }
        let image_at = self.add("", &f.image);
        bx.image = Some(Sp::new(f.image.clone(), image_at.span));
        let args: Vec<Sp<String>> = f
            .command
            .iter()
            .map(|a| Sp::new(a.clone(), self.add("", a).span))
            .collect();
        if !args.is_empty() {
            let span = Span::new(args[0].span.start, self.text.len());
            bx.command = Some(Sp::new(RawCommand::Argv(args), span));
        }
        let whole = Span::new(0, self.text.len());
        RawSpec {
            box_: Some(Sp::new(bx, image_at.span)),
            limits: any_limit.then(|| Sp::new(limits, whole)),
            capabilities: (caps != RawCapabilities::default()).then(|| Sp::new(caps, whole)),
            seccomp,
            security: security_span.map(|span| Sp::new(security, span)),
            network: (net != RawNetwork::default()).then(|| Sp::new(net, whole)),
            mounts,
            rootfs,
            build: None,
            lint: None,
            tests: Vec::new(),
            ..RawSpec::default()
        }
    }

    /// podman's `--entrypoint` as `box.entrypoint`.
    fn entrypoint(&mut self, ep: &str, at: At, no_command: bool) -> Option<Sp<RawCommand>> {
        let words = match entrypoint_words(ep) {
            Ok(w) => w,
            Err(e) => {
                self.bad(at.span, e.message, e.help);
                return None;
            }
        };
        if words.is_empty() && no_command {
            // The image's command goes with its entrypoint: say what to run instead.
            self.bad(
                at.span,
                "an empty `--entrypoint` needs a command after the image".to_string(),
                "give the command to run after the image, e.g. `--entrypoint '' busybox sh`",
            );
            return None;
        }
        let words = words.into_iter().map(|w| Sp::new(w, at.span)).collect();
        Some(Sp::new(RawCommand::Argv(words), at.span))
    }

    fn cap_list(&mut self, flag: &str, values: &[String]) -> Option<Sp<Vec<Sp<String>>>> {
        if values.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        let mut first = None;
        for v in values {
            let at = self.add(flag, v);
            first.get_or_insert(at.span.start);
            let mut off = 0;
            for name in v.split(',') {
                out.push(Sp::new(name.to_string(), at.sub(off, name.len())));
                off += name.len() + 1;
            }
        }
        Some(Sp::new(out, Span::new(first.unwrap_or(0), self.text.len())))
    }

    fn volume(&mut self, v: &str, at: At) -> Option<Sp<RawMount>> {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, None),
            [s, d, o] => (*s, *d, Some(*o)),
            _ => {
                self.bad(at.span, format!("`--volume {v}` is not SRC:DST[:OPTIONS]"), "write e.g. `-v ./src:/src:ro` (a host path) or `-v data:/data` (a named volume)");
                return None;
            }
        };
        let kind = if src.starts_with('/') || src.starts_with('.') {
            "bind"
        } else {
            "volume"
        };
        let mut m = RawMount {
            kind: Some(Sp::new(kind.to_string(), at.span)),
            source: Some(Sp::new(src.to_string(), at.sub(0, src.len()))),
            target: Some(Sp::new(dst.to_string(), at.sub(src.len() + 1, dst.len()))),
            ..RawMount::default()
        };
        let mut off = src.len() + dst.len() + 2;
        for o in opts.into_iter().flat_map(|o| o.split(',')) {
            let span = at.sub(off, o.len());
            off += o.len() + 1;
            match o {
                "ro" => m.readonly = Some(Sp::new(true, span)),
                "rw" => m.readonly = Some(Sp::new(false, span)),
                // SELinux relabelling: foxbox sets no SELinux labels, so there is nothing to
                // relabel (the `run` command says so at debug level).
                "z" | "Z" => {}
                "U" => m.chown = Some(Sp::new(true, span)),
                "O" => m.overlay = Some(Sp::new(true, span)),
                _ => self.bad(
                    span,
                    format!("unsupported volume option `{o}`"),
                    "foxbox knows `ro`, `rw`, `U` (chown the source to the box user), `O` (an \
                     overlay over the source) and `z`/`Z` (accepted, nothing to relabel)",
                ),
            }
        }
        Some(Sp::new(m, at.span))
    }

    fn tmpfs(&mut self, t: &str, at: At) -> Option<Sp<RawMount>> {
        let (dst, opts) = match t.split_once(':') {
            Some((d, o)) => (d, Some(o)),
            None => (t, None),
        };
        // podman's `--tmpfs` is `rw,noexec,nosuid,nodev` unless `exec` is given.
        let mut m = RawMount {
            kind: Some(Sp::new("tmpfs".to_string(), at.span)),
            target: Some(Sp::new(dst.to_string(), at.sub(0, dst.len()))),
            exec: Some(Sp::new(false, at.span)),
            ..RawMount::default()
        };
        let mut off = dst.len() + 1;
        for o in opts.into_iter().flat_map(|o| o.split(',')) {
            let span = at.sub(off, o.len());
            off += o.len() + 1;
            match o.split_once('=') {
                Some(("size", s)) => m.size = Some(Sp::new(RawSize::Text(s.to_string()), span)),
                Some(("mode", s)) => m.mode = Some(Sp::new(RawMode::Text(s.to_string()), span)),
                None if o == "ro" => m.readonly = Some(Sp::new(true, span)),
                None if o == "rw" => m.readonly = Some(Sp::new(false, span)),
                None if o == "exec" => m.exec = Some(Sp::new(true, span)),
                None if o == "noexec" => m.exec = Some(Sp::new(false, span)),
                // Always so: a box's tmpfs never holds set-id programs or device nodes.
                None if o == "nosuid" || o == "nodev" => {}
                _ => self.bad(
                    span,
                    format!("unsupported tmpfs option `{o}`"),
                    "foxbox knows `size=`, `mode=`, `ro`, `rw`, `exec` and `noexec` (`nosuid` and `nodev` always hold)",
                ),
            }
        }
        Some(Sp::new(m, at.span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::caps::CapSet;
    use crate::plan::{MountKind, NetMode, User};

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn check(f: RunFlags) -> FlagsChecked {
        check_run_flags(&f, Path::new("/work"), &no_env)
    }

    #[test]
    fn flags_build_the_same_plan_as_a_spec() {
        let flags = RunFlags {
            name: Some("web".into()),
            env: vec!["A=1".into()],
            workdir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            volume: vec!["./site:/srv:ro".into(), "data:/data".into()],
            tmpfs: vec!["/tmp:size=64m,mode=1777".into()],
            memory: Some("128m".into()),
            cpus: Some("0.5".into()),
            pids_limit: Some("64".into()),
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["NET_BIND_SERVICE".into()],
            network: Some("pasta".into()),
            publish: vec!["8080:80".into()],
            image: "busybox".into(),
            command: vec!["httpd".into(), "-f".into()],
            ..RunFlags::default()
        };
        let from_flags = check(flags);
        assert!(
            from_flags.diagnostics.is_empty(),
            "{:?}",
            from_flags.diagnostics
        );
        let spec = r#"
[box]
name = "web"
image = "busybox"
command = ["httpd", "-f"]
workdir = "/srv"
user = "1000:1000"
env = { A = "1" }
tty = false
[limits]
memory = "128m"
cpus = 0.5
pids = 64
[capabilities]
drop = ["ALL"]
add = ["NET_BIND_SERVICE"]
[network]
mode = "pasta"
ports = ["8080:80"]
[[mounts]]
type = "bind"
source = "./site"
target = "/srv"
readonly = true
[[mounts]]
type = "volume"
source = "data"
target = "/data"
[[mounts]]
type = "tmpfs"
target = "/tmp"
size = "64m"
mode = "1777"
exec = false
"#;
        let (from_spec, diags) =
            crate::spec::check_str(spec, Path::new("x.toml"), Path::new("/work"));
        assert!(diags.is_empty(), "{diags:?}");
        // The same values; only the origin and the spans differ.
        let a = serde_json::to_value(from_flags.plan.unwrap()).unwrap();
        let mut b = serde_json::to_value(from_spec.unwrap()).unwrap();
        b["origin"] = serde_json::json!({"kind": "command_line"});
        assert_eq!(a, b);
    }

    #[test]
    fn bad_flags_point_into_the_command_line() {
        let r = check(RunFlags {
            memory: Some("64x".into()),
            cap_add: vec!["NET_ADMIN,FOO".into()],
            cpus: Some("half".into()),
            image: "busybox".into(),
            ..RunFlags::default()
        });
        assert!(r.plan.is_none());
        let at = |code: &str| {
            let d = r.diagnostics.iter().find(|d| d.code == code).unwrap();
            let s = d.span.unwrap();
            (
                r.command_line[s.start..s.end].to_string(),
                d.message.clone(),
            )
        };
        assert_eq!(at(codes::BAD_SIZE).0, "64x");
        assert!(
            at(codes::BAD_SIZE).1.contains("`--memory`"),
            "{}",
            at(codes::BAD_SIZE).1
        );
        assert_eq!(at(codes::UNKNOWN_CAPABILITY).0, "FOO");
        assert_eq!(at(codes::BAD_FLAG).0, "half");
    }

    #[test]
    fn podman_forms() {
        let r = check(RunFlags {
            env: vec!["HOME_X".into()],
            user: Some("nobody".into()),
            pids_limit: Some("-1".into()),
            network: Some("slirp4netns:allow_host_loopback=true".into()),
            security_opt: vec![
                "seccomp=unconfined".into(),
                "no-new-privileges=false".into(),
            ],
            tty: true,
            read_only: true,
            tmpfs: vec!["/tmp".into()],
            image: "./rootfs.tar".into(),
            ..RunFlags::default()
        });
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        let p = r.plan.unwrap();
        assert_eq!(p.origin, Origin::CommandLine);
        assert!(p.limits.pids().is_none());
        assert_eq!(p.network.mode.value, NetMode::Slirp4netns);
        assert!(p.network.allow_host_loopback);
        assert!(!p.no_new_privs);
        assert_eq!(p.process.tty, Some(true));
        assert!(p.rootfs.readonly.value);
        assert_eq!(p.capabilities.value, CapSet::podman_default());
        assert!(p.capabilities.span.is_none());
        assert_eq!(
            p.process.user.value,
            User::Name {
                user: "nobody".into(),
                group: None
            }
        );
        assert!(matches!(
            p.mounts[0].kind,
            MountKind::Tmpfs {
                size: None,
                mode: None,
                noexec: true
            }
        ));
        assert_eq!(p.process.env.len(), 1, "an unset -e KEY is skipped");
    }

    #[test]
    fn timeouts_take_seconds_and_bad_ones_say_what_works() {
        let r = check(RunFlags {
            timeout: Some("5".into()),
            stop_timeout: Some("2".into()),
            image: "busybox".into(),
            ..RunFlags::default()
        });
        let p = r.plan.unwrap();
        assert_eq!(p.limits.timeout().unwrap().value.as_secs(), 5);
        let r = check(RunFlags {
            timeout: Some("1.5".into()),
            image: "busybox".into(),
            ..RunFlags::default()
        });
        let help = r.diagnostics[0].help.clone().unwrap();
        assert!(help.contains("`30`") && help.contains("`1m30s`"), "{help}");
    }

    #[test]
    fn entrypoint_starts_the_command() {
        // What a box of an image with ENTRYPOINT ["ep"] and CMD ["cmd"] runs.
        let image = crate::plan::ImageDefaults {
            entrypoint: vec!["ep".into()],
            cmd: vec!["cmd".into()],
            ..Default::default()
        };
        let argv = |ep: Option<&str>, cmd: &[&str]| {
            let r = check(RunFlags {
                entrypoint: ep.map(Into::into),
                image: "busybox".into(),
                command: cmd.iter().map(|s| s.to_string()).collect(),
                ..RunFlags::default()
            });
            r.plan
                .map(|p| {
                    crate::plan::BoxPlan::new(p, &image, (0, 0))
                        .process
                        .args
                        .value
                        .clone()
                })
                .ok_or(r.diagnostics)
        };
        assert_eq!(argv(None, &[]).unwrap(), ["ep", "cmd"]);
        assert_eq!(argv(None, &["a", "b"]).unwrap(), ["ep", "a", "b"]);
        assert_eq!(argv(Some("/bin/echo"), &[]).unwrap(), ["/bin/echo"]);
        assert_eq!(
            argv(Some("/bin/echo"), &["hi"]).unwrap(),
            ["/bin/echo", "hi"]
        );
        assert_eq!(argv(Some("/bin/sh -x"), &[]).unwrap(), ["/bin/sh -x"]);
        assert_eq!(
            argv(Some(r#"["/bin/sh","-c"]"#), &["echo x"]).unwrap(),
            ["/bin/sh", "-c", "echo x"]
        );
        assert_eq!(argv(Some(""), &["sh"]).unwrap(), ["sh"]);
        assert_eq!(argv(Some("[]"), &["sh"]).unwrap(), ["sh"]);
        assert_eq!(argv(Some(r#"[""]"#), &["sh"]).unwrap(), ["sh"]);
        let d = argv(Some(""), &[]).unwrap_err();
        assert!(d[0].message.contains("needs a command"), "{d:?}");
        let d = argv(Some("[1]"), &[]).unwrap_err();
        assert!(d[0].message.contains("JSON array"), "{d:?}");
    }

    #[test]
    fn volume_options_podman_users_type() {
        let r = check(RunFlags {
            volume: vec!["/srv:/srv:ro,z".into(), "/a:/a:Z".into()],
            image: "busybox".into(),
            ..RunFlags::default()
        });
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        assert!(r.plan.unwrap().mounts[0].readonly);
        let r = check(RunFlags {
            volume: vec!["/srv:/srv:U".into(), "/a:/a:O".into(), "/b:/b:ro,U".into()],
            image: "busybox".into(),
            ..RunFlags::default()
        });
        let m = r.plan.unwrap().mounts;
        assert!(m[0].chown && !m[0].overlay);
        assert!(m[1].overlay && !m[1].chown && !m[1].readonly);
        assert!(m[2].chown && m[2].readonly);
        for (opt, says) in [
            ("O,ro", "does not go with `readonly`"),
            ("U,O", "does not go with `chown`"),
            ("nope", "unsupported"),
        ] {
            let r = check(RunFlags {
                volume: vec![format!("/srv:/srv:{opt}")],
                image: "busybox".into(),
                ..RunFlags::default()
            });
            assert!(r.plan.is_none());
            assert!(
                r.diagnostics[0].message.contains(says),
                "{:?}",
                r.diagnostics
            );
        }
    }

    #[test]
    fn userns_keep_id_reaches_the_plan() {
        let r = check(RunFlags {
            userns: Some("keep-id:uid=5".into()),
            image: "busybox".into(),
            ..RunFlags::default()
        });
        assert_eq!(
            r.plan.unwrap().userns.value,
            crate::plan::Userns::KeepId {
                uid: Some(5),
                gid: None
            }
        );
        let r = check(RunFlags {
            userns: Some("host".into()),
            image: "busybox".into(),
            ..RunFlags::default()
        });
        assert!(r.plan.is_none());
        assert_eq!(
            r.diagnostics[0].code,
            crate::diag::codes::habits::BAD_USERNS
        );
        assert!(r.diagnostics[0].message.contains("`host`"));
    }

    #[test]
    fn env_files_as_podman_reads_them() {
        assert_eq!(
            parse_env_file("# c\n\nA=1\n  B= two words \nC\nD=x=y\n").unwrap(),
            ["A=1", "B= two words ", "C", "D=x=y"]
        );
        assert_eq!(parse_env_file("A=1\n=2\n").unwrap_err().0, 2);
        assert_eq!(parse_env_file("A B\n").unwrap_err().0, 1);
    }

    #[test]
    fn quoted_values_still_get_a_span() {
        let r = check(RunFlags {
            workdir: Some("my dir".into()),
            image: "busybox".into(),
            ..RunFlags::default()
        });
        let d = &r.diagnostics[0];
        let s = d.span.unwrap();
        assert_eq!(&r.command_line[s.start..s.end], "'my dir'");
    }
}
