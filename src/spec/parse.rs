//! TOML text → [`RawSpec`]: syntax errors, wrong types and unknown keys, all of them at once.
//!
//! The recoverable parser gives a table even for broken input, and each field is read on its
//! own, so one bad value never hides the next one.

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::codes;
use super::raw::*;
use super::suggest;
use crate::diag::Diagnostic;
use crate::plan::Span;

mod build;
mod smoke;

/// Keys of each section; `tests::key_lists_match_the_schema` keeps them equal to the schema.
pub const SECTIONS: &[(&str, &[&str])] = &[
    ("box", BOX_KEYS),
    ("limits", LIMITS_KEYS),
    ("capabilities", CAPABILITIES_KEYS),
    ("seccomp", SECCOMP_KEYS),
    ("security", SECURITY_KEYS),
    ("network", NETWORK_KEYS),
    ("mounts", MOUNT_KEYS),
    ("rootfs", ROOTFS_KEYS),
    ("build", build::BUILD_KEYS),
    ("lint", LINT_KEYS),
    ("test", smoke::TEST_KEYS),
];
/// Top-level keys that are not sections: read by the composer ([`super::compose`]).
pub const TOP_KEYS: &[&str] = &["extends", "env_file"];
pub const BOX_KEYS: &[&str] = &[
    "name",
    "image",
    "entrypoint",
    "command",
    "workdir",
    "user",
    "hostname",
    "env",
    "tty",
    "init",
    "extends",
];
pub const LIMITS_KEYS: &[&str] = &[
    "memory",
    "memory_swap",
    "cpus",
    "pids",
    "timeout",
    "stop_timeout",
    "enforce",
];
pub const CAPABILITIES_KEYS: &[&str] = &["drop", "add"];
pub const SECCOMP_KEYS: &[&str] = &["profile"];
pub const SECURITY_KEYS: &[&str] = &["no_new_privileges", "userns"];
pub const NETWORK_KEYS: &[&str] = &["mode", "ports", "allow_host_loopback"];
pub const MOUNT_KEYS: &[&str] = &[
    "type", "source", "target", "readonly", "size", "mode", "exec", "chown", "overlay", "remove",
];
pub const ROOTFS_KEYS: &[&str] = &["readonly"];
pub const LINT_KEYS: &[&str] = &["allow"];

/// The outcome of parsing: the raw spec (as much as could be read) and what was wrong.
#[derive(Debug)]
pub struct Parsed {
    pub raw: RawSpec,
    pub diagnostics: Vec<Diagnostic>,
    /// Where the TOML itself is broken: later checks stay quiet about values there.
    pub syntax_spans: Vec<Span>,
}

type Val<'i> = Spanned<DeValue<'i>>;

/// Read a TOML tree already parsed (and merged: [`super::compose`]) into a raw spec.
pub fn from_tree(root: &DeTable<'_>) -> (RawSpec, Vec<Diagnostic>) {
    let mut cx = Cx::default();
    let raw = cx.spec(root);
    (raw, cx.diags)
}

/// Parse a spec's TOML text.
pub fn parse(text: &str) -> Parsed {
    let (root, errors) = DeTable::parse_recoverable(text);
    let mut cx = Cx::default();
    let mut syntax_spans = Vec::new();
    for e in errors {
        let span = e
            .span()
            .map(Span::from)
            .unwrap_or_else(|| Span::new(text.len(), text.len()));
        syntax_spans.push(span);
        cx.diags.push(
            Diagnostic::error(codes::SYNTAX, format!("invalid TOML: {}", e.message()))
                .with_span(Some(span))
                .with_label("here")
                .with_help("see https://toml.io for the syntax"),
        );
    }
    let raw = cx.spec(root.get_ref());
    Parsed {
        raw,
        diagnostics: cx.diags,
        syntax_spans,
    }
}

fn span_of<T>(v: &Spanned<T>) -> Span {
    v.span().into()
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[derive(Default)]
struct Cx {
    diags: Vec<Diagnostic>,
}

impl Cx {
    fn wrong_type(&mut self, what: &str, v: &Val<'_>, expected: &str, help: Option<String>) {
        let mut d = Diagnostic::error(
            codes::WRONG_TYPE,
            format!(
                "`{what}` must be {expected}, not {}",
                type_name(v.get_ref())
            ),
        )
        .with_span(Some(span_of(v)))
        .with_label(format!("expected {expected}"));
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.diags.push(d);
    }

    /// An unknown key in `section` (`None`: the top level), with the best suggestion we have.
    fn unknown_key(&mut self, section: Option<&str>, key: &Spanned<std::borrow::Cow<'_, str>>) {
        self.unknown(section, key, false)
    }

    /// `is_table`: a top-level `[name]` section rather than a `name = value` key.
    fn unknown(
        &mut self,
        section: Option<&str>,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        is_table: bool,
    ) {
        let name = key.get_ref().as_ref();
        let known: &[&str] = section
            .and_then(|s| SECTIONS.iter().find(|(n, _)| *n == s))
            .map(|(_, k)| *k)
            .unwrap_or(&[]);
        let (code, message) = match section {
            Some(s) => (
                codes::UNKNOWN_KEY,
                format!("unknown key `{name}` in [{}]", section_header(s)),
            ),
            None if is_table => (codes::UNKNOWN_SECTION, format!("unknown section [{name}]")),
            None => (
                codes::UNKNOWN_KEY,
                format!("unknown key `{name}` at the top level"),
            ),
        };
        let help = if let Some(best) = suggest::closest(name, known.iter().copied()) {
            format!("did you mean `{best}`?")
        } else if section.is_none() && is_table {
            if let Some(best) = suggest::closest(name, SECTIONS.iter().map(|(n, _)| *n)) {
                format!("did you mean [{}]?", section_header(best))
            } else {
                format!(
                    "the sections are {}",
                    suggest::one_of(&SECTIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>())
                )
            }
        } else if let Some(home) = home_of(name) {
            format!("`{name}` belongs in [{}]", section_header(home))
        } else if section.is_none() {
            format!(
                "keys go into sections: {}",
                suggest::one_of(&SECTIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>())
            )
        } else {
            format!("the keys of this section are {}", suggest::one_of(known))
        };
        self.diags.push(
            Diagnostic::error(code, message)
                .with_span(Some(span_of(key)))
                .with_label("unknown")
                .with_help(help),
        );
    }

    fn spec(&mut self, root: &DeTable<'_>) -> RawSpec {
        let mut spec = RawSpec::default();
        for (k, v) in root {
            let key = k.get_ref().as_ref();
            if key == "mounts" {
                spec.mounts = self.mounts(v);
                continue;
            }
            if key == "test" {
                spec.tests = self.tests(v);
                continue;
            }
            // Read by the composer, which leaves them out of the merged tree; a file parsed
            // alone keeps them.
            if TOP_KEYS.contains(&key) {
                continue;
            }
            let Some(known) = SECTIONS.iter().find(|(n, _)| *n == key).map(|(n, _)| *n) else {
                let is_table = matches!(v.get_ref(), DeValue::Table(_))
                    || v.get_ref().as_array().is_some_and(|a| {
                        a.iter().all(|i| matches!(i.get_ref(), DeValue::Table(_)))
                    });
                self.unknown(None, k, is_table);
                continue;
            };
            let Some(t) = self.table(key, v) else {
                continue;
            };
            let span = span_of(v);
            match known {
                "box" => spec.box_ = Some(Sp::new(self.box_(t), span)),
                "limits" => spec.limits = Some(Sp::new(self.limits(t), span)),
                "capabilities" => spec.capabilities = Some(Sp::new(self.capabilities(t), span)),
                "seccomp" => spec.seccomp = Some(Sp::new(self.seccomp(t), span)),
                "security" => spec.security = Some(Sp::new(self.security(t), span)),
                "network" => spec.network = Some(Sp::new(self.network(t), span)),
                "rootfs" => spec.rootfs = Some(Sp::new(self.rootfs(t), span)),
                "build" => spec.build = Some(Sp::new(self.build(t), span)),
                "lint" => spec.lint = Some(Sp::new(self.lint(t), span)),
                _ => {}
            }
        }
        spec
    }

    fn table<'a, 'i>(&mut self, what: &str, v: &'a Val<'i>) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(
                    what,
                    v,
                    "a table",
                    Some(format!("write it as a `[{what}]` section")),
                );
                None
            }
        }
    }

    fn mounts(&mut self, v: &Val<'_>) -> Vec<Sp<RawMount>> {
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(
                "mounts",
                v,
                "an array of tables",
                Some("write each mount as a `[[mounts]]` section (two brackets)".into()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(t) => out.push(Sp::new(self.mount(t), span_of(item))),
                _ => self.wrong_type("mounts", item, "a table", None),
            }
        }
        out
    }

    fn box_(&mut self, t: &DeTable<'_>) -> RawBox {
        let mut b = RawBox::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "name" => b.name = self.string("box.name", v),
                "image" => b.image = self.string("box.image", v),
                "entrypoint" => b.entrypoint = self.command_in("box.entrypoint", v),
                "command" => b.command = self.command(v),
                "workdir" => b.workdir = self.string("box.workdir", v),
                "user" => b.user = self.user(v),
                "hostname" => b.hostname = self.string("box.hostname", v),
                "env" => b.env = self.env(v),
                "tty" => b.tty = self.boolean("box.tty", v),
                "init" => b.init = self.boolean("box.init", v),
                "extends" => {}
                _ => self.unknown_key(Some("box"), k),
            }
        }
        b
    }

    fn limits(&mut self, t: &DeTable<'_>) -> RawLimits {
        let mut l = RawLimits::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "memory" => l.memory = self.size("limits.memory", v),
                "memory_swap" => l.memory_swap = self.size("limits.memory_swap", v),
                "cpus" => l.cpus = self.number("limits.cpus", v),
                "pids" => l.pids = self.integer("limits.pids", v),
                "timeout" => l.timeout = self.duration("timeout", v),
                "stop_timeout" => l.stop_timeout = self.duration("stop_timeout", v),
                "enforce" => l.enforce = self.string("limits.enforce", v),
                _ => self.unknown_key(Some("limits"), k),
            }
        }
        l
    }

    /// `limits.KEY`, a duration: a string with a unit (a bare number gets a hint).
    fn duration(&mut self, key: &str, v: &Val<'_>) -> Option<Sp<String>> {
        let path = format!("limits.{key}");
        match v.get_ref() {
            DeValue::Integer(_) | DeValue::Float(_) => {
                self.wrong_type(
                    &path,
                    v,
                    "a string",
                    Some(format!(
                        "give a unit, e.g. `{key} = \"{}s\"`",
                        value_text(v.get_ref())
                    )),
                );
                None
            }
            _ => self.string(&path, v),
        }
    }

    fn capabilities(&mut self, t: &DeTable<'_>) -> RawCapabilities {
        let mut c = RawCapabilities::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "drop" => c.drop = self.string_array("capabilities.drop", v),
                "add" => c.add = self.string_array("capabilities.add", v),
                _ => self.unknown_key(Some("capabilities"), k),
            }
        }
        c
    }

    fn seccomp(&mut self, t: &DeTable<'_>) -> RawSeccomp {
        let mut s = RawSeccomp::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "profile" => s.profile = self.string("seccomp.profile", v),
                _ => self.unknown_key(Some("seccomp"), k),
            }
        }
        s
    }

    fn security(&mut self, t: &DeTable<'_>) -> RawSecurity {
        let mut s = RawSecurity::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "no_new_privileges" => {
                    s.no_new_privileges = self.boolean("security.no_new_privileges", v)
                }
                "userns" => s.userns = self.string("security.userns", v),
                _ => self.unknown_key(Some("security"), k),
            }
        }
        s
    }

    fn network(&mut self, t: &DeTable<'_>) -> RawNetwork {
        let mut n = RawNetwork::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "mode" => n.mode = self.string("network.mode", v),
                "ports" => n.ports = self.ports(v),
                "allow_host_loopback" => {
                    n.allow_host_loopback = self.boolean("network.allow_host_loopback", v)
                }
                _ => self.unknown_key(Some("network"), k),
            }
        }
        n
    }

    fn mount(&mut self, t: &DeTable<'_>) -> RawMount {
        let mut m = RawMount::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "type" => m.kind = self.string("mounts.type", v),
                "source" => m.source = self.string("mounts.source", v),
                "target" => m.target = self.string("mounts.target", v),
                "readonly" => m.readonly = self.boolean("mounts.readonly", v),
                "size" => m.size = self.size("mounts.size", v),
                "mode" => m.mode = self.mode(v),
                "exec" => m.exec = self.boolean("mounts.exec", v),
                "chown" => m.chown = self.boolean("mounts.chown", v),
                "overlay" => m.overlay = self.boolean("mounts.overlay", v),
                "remove" => {}
                _ => self.unknown_key(Some("mounts"), k),
            }
        }
        m
    }

    fn rootfs(&mut self, t: &DeTable<'_>) -> RawRootfs {
        let mut r = RawRootfs::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "readonly" => r.readonly = self.boolean("rootfs.readonly", v),
                _ => self.unknown_key(Some("rootfs"), k),
            }
        }
        r
    }

    fn lint(&mut self, t: &DeTable<'_>) -> RawLint {
        let mut l = RawLint::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "allow" => {
                    l.allow = self.string_array("lint.allow", v);
                    for id in l.allow.iter().flat_map(|a| &a.value) {
                        if !is_rule_id(&id.value) {
                            self.diags.push(
                                Diagnostic::error(
                                    codes::BAD_VALUE,
                                    format!("`{}` is not a lint rule id", id.value),
                                )
                                .with_span(Some(id.span))
                                .with_label("not a rule id")
                                .with_help("rule ids are `FB` and three digits, e.g. `FB003`; `foxbox lint --rules` lists them"),
                            );
                        }
                    }
                }
                _ => self.unknown_key(Some("lint"), k),
            }
        }
        l
    }

    // ---- leaf values ----

    fn string(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), span_of(v))),
            other => {
                let help = match other {
                    DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => Some(format!(
                        "quote it: `\"{}\"`",
                        value_text(other).replace('"', "\\\"")
                    )),
                    _ => None,
                };
                self.wrong_type(what, v, "a string", help);
                None
            }
        }
    }

    fn boolean(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<bool>> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, span_of(v))),
            DeValue::String(s) if s == "true" || s == "false" => {
                self.wrong_type(
                    what,
                    v,
                    "a boolean",
                    Some(format!("drop the quotes: `{s}`")),
                );
                None
            }
            _ => {
                self.wrong_type(what, v, "a boolean", Some("write `true` or `false`".into()));
                None
            }
        }
    }

    fn integer(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<i64>> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Sp::new(n, span_of(v))),
                Err(_) => {
                    self.out_of_range(what, v);
                    None
                }
            },
            DeValue::String(s) if s.trim().parse::<i64>().is_ok() => {
                self.wrong_type(
                    what,
                    v,
                    "an integer",
                    Some(format!("drop the quotes: `{}`", s.trim())),
                );
                None
            }
            _ => {
                self.wrong_type(what, v, "an integer", None);
                None
            }
        }
    }

    fn out_of_range(&mut self, what: &str, v: &Val<'_>) {
        let code = match what {
            "box.user" => codes::BAD_USER,
            "mounts.mode" => codes::BAD_MODE,
            "mounts.size" => codes::BAD_SIZE,
            _ => codes::IMPOSSIBLE_LIMIT,
        };
        self.diags.push(
            Diagnostic::error(code, format!("`{what}` is out of range"))
                .with_span(Some(span_of(v)))
                .with_label("too large"),
        );
    }

    /// A float, or an integer taken as one.
    fn number(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<f64>> {
        match v.get_ref() {
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                Ok(x) => Some(Sp::new(x, span_of(v))),
                Err(_) => {
                    self.out_of_range(what, v);
                    None
                }
            },
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Sp::new(n as f64, span_of(v))),
                Err(_) => {
                    self.out_of_range(what, v);
                    None
                }
            },
            DeValue::String(s) if s.trim().parse::<f64>().is_ok() => {
                self.wrong_type(
                    what,
                    v,
                    "a number",
                    Some(format!("drop the quotes: `{}`", s.trim())),
                );
                None
            }
            _ => {
                self.wrong_type(what, v, "a number", None);
                None
            }
        }
    }

    fn size(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<RawSize>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(RawSize::Text(s.to_string()), span_of(v))),
            DeValue::Integer(_) => self
                .integer(what, v)
                .map(|n| Sp::new(RawSize::Bytes(n.value), n.span)),
            DeValue::Float(f) => {
                self.wrong_type(
                    what,
                    v,
                    "a size",
                    Some(format!(
                        "write a string with a unit, e.g. `\"{}m\"`, or whole bytes",
                        f.as_str()
                    )),
                );
                None
            }
            _ => {
                self.wrong_type(
                    what,
                    v,
                    "a size",
                    Some("write e.g. `\"64MiB\"`, `\"64m\"` or bytes as an integer".into()),
                );
                None
            }
        }
    }

    fn mode(&mut self, v: &Val<'_>) -> Option<Sp<RawMode>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(RawMode::Text(s.to_string()), span_of(v))),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Sp::new(
                    RawMode::Int {
                        value: n,
                        radix: i.radix(),
                    },
                    span_of(v),
                )),
                Err(_) => {
                    self.out_of_range("mounts.mode", v);
                    None
                }
            },
            _ => {
                self.wrong_type(
                    "mounts.mode",
                    v,
                    "an octal mode",
                    Some("write e.g. `\"1777\"` or `0o1777`".into()),
                );
                None
            }
        }
    }

    fn string_array(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<Vec<Sp<String>>>> {
        match v.get_ref() {
            DeValue::Array(a) => Some(Sp::new(self.strings_in(what, a), span_of(v))),
            DeValue::String(s) => {
                self.wrong_type(
                    what,
                    v,
                    "an array of strings",
                    Some(format!(
                        "put it in brackets: `[\"{}\"]`",
                        s.replace('"', "\\\"")
                    )),
                );
                None
            }
            _ => {
                self.wrong_type(what, v, "an array of strings", None);
                None
            }
        }
    }

    fn strings_in(&mut self, what: &str, a: &DeArray<'_>) -> Vec<Sp<String>> {
        let mut out = Vec::new();
        for item in a.iter() {
            if let Some(s) = self.string(what, item) {
                out.push(s);
            }
        }
        out
    }

    fn command(&mut self, v: &Val<'_>) -> Option<Sp<RawCommand>> {
        self.command_in("box.command", v)
    }

    /// A command (`box.command`, `box.entrypoint`): an argv array or a shell string.
    fn command_in(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<RawCommand>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(RawCommand::Shell(s.to_string()), span_of(v))),
            DeValue::Array(a) => Some(Sp::new(
                RawCommand::Argv(self.strings_in(what, a)),
                span_of(v),
            )),
            _ => {
                self.wrong_type(
                    what,
                    v,
                    "an array of strings or a string",
                    Some("write e.g. `[\"/bin/sh\", \"-c\", \"echo hi\"]`".into()),
                );
                None
            }
        }
    }

    /// `user` may be an integer uid: users write `user = 1000`.
    fn user(&mut self, v: &Val<'_>) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Sp::new(n.to_string(), span_of(v))),
                Err(_) => {
                    self.out_of_range("box.user", v);
                    None
                }
            },
            _ => self.string("box.user", v),
        }
    }

    fn env(&mut self, v: &Val<'_>) -> Option<Sp<Vec<RawEnv>>> {
        let DeValue::Table(t) = v.get_ref() else {
            self.wrong_type(
                "box.env",
                v,
                "a table",
                Some("write e.g. `env = { TERM = \"xterm\" }`".into()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (k, val) in t {
            let name = k.get_ref().to_string();
            if let Some(value) = self.string(&format!("box.env.{name}"), val) {
                out.push(RawEnv {
                    key: Sp::new(name, span_of(k)),
                    value,
                });
            }
        }
        Some(Sp::new(out, span_of(v)))
    }

    fn ports(&mut self, v: &Val<'_>) -> Option<Sp<Vec<Sp<String>>>> {
        match v.get_ref() {
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for item in a.iter() {
                    match item.get_ref() {
                        DeValue::Integer(_) => self.wrong_type(
                            "network.ports",
                            item,
                            "a string",
                            Some(format!(
                                "write `\"{0}:{0}\"` (host_port:box_port)",
                                value_text(item.get_ref())
                            )),
                        ),
                        _ => {
                            if let Some(s) = self.string("network.ports", item) {
                                out.push(s);
                            }
                        }
                    }
                }
                Some(Sp::new(out, span_of(v)))
            }
            _ => self.string_array("network.ports", v),
        }
    }
}

/// A short text of a scalar value for help lines.
fn value_text(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "[...]".into(),
        DeValue::Table(_) => "{...}".into(),
    }
}

/// `FB` and three digits: the shape of every `foxbox lint` rule id.
pub fn is_rule_id(s: &str) -> bool {
    s.len() == 5 && s.starts_with("FB") && s[2..].bytes().all(|b| b.is_ascii_digit())
}

fn section_header(s: &str) -> String {
    if s == "mounts" {
        "[mounts]".into()
    } else {
        s.into()
    }
}

/// The section a key belongs to, for keys written in the wrong place.
fn home_of(key: &str) -> Option<&'static str> {
    SECTIONS
        .iter()
        .find(|(_, keys)| keys.contains(&key))
        .map(|(n, _)| *n)
}

/// Parse diagnostics, then the resolver's, minus those a syntax error explains (a value the
/// recovering parser guessed at, or a "missing" key that sits on a broken line), sorted by
/// position with span-less ones last.
pub(crate) fn merge(
    mut first: Vec<Diagnostic>,
    more: Vec<Diagnostic>,
    syntax: &[Span],
) -> Vec<Diagnostic> {
    let overlaps = |s: &Span| syntax.iter().any(|e| e.start <= s.end && s.start <= e.end);
    first.extend(more.into_iter().filter(|d| match &d.span {
        _ if syntax.is_empty() => true,
        None => false,
        Some(s) => !overlaps(s) && d.code != codes::MISSING_IMAGE,
    }));
    first.sort_by_key(|d| {
        d.span
            .map_or((usize::MAX, usize::MAX), |s| (s.start, s.end))
    });
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes_of(text: &str) -> Vec<String> {
        parse(text)
            .diagnostics
            .into_iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn reads_every_section() {
        let p = parse(
            r#"
[box]
image = "busybox"
command = "echo hi"
user = 1000
env = { A = "1" }
[limits]
memory = "64m"
cpus = 1
pids = 0x10
[[mounts]]
type = "tmpfs"
target = "/tmp"
mode = 0o1777
"#,
        );
        assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
        let b = p.raw.box_.unwrap().value;
        assert_eq!(b.image.unwrap().value, "busybox");
        assert_eq!(b.user.unwrap().value, "1000");
        let l = p.raw.limits.unwrap().value;
        assert_eq!(l.cpus.unwrap().value, 1.0);
        assert_eq!(l.pids.unwrap().value, 16);
        assert_eq!(
            p.raw.mounts[0].value.mode.as_ref().unwrap().value,
            RawMode::Int {
                value: 0o1777,
                radix: 8
            }
        );
    }

    #[test]
    fn reports_every_problem() {
        let c = codes_of(
            r#"
[box]
imgae = "busybox"
tty = "yes"
[limit]
memory = 1
[network]
ports = "80:80"
"#,
        );
        assert_eq!(
            c,
            [
                codes::UNKNOWN_KEY,
                codes::WRONG_TYPE,
                codes::UNKNOWN_SECTION,
                codes::WRONG_TYPE
            ]
        );
    }

    #[test]
    fn suggests_the_right_section_for_a_misplaced_key() {
        let p = parse("[box]\nmemory = \"1g\"\n");
        assert_eq!(
            p.diagnostics[0].help.as_deref(),
            Some("`memory` belongs in [limits]")
        );
        let p = parse("image = \"x\"\n");
        assert_eq!(
            p.diagnostics[0].help.as_deref(),
            Some("`image` belongs in [box]")
        );
    }

    #[test]
    fn syntax_errors_keep_the_rest() {
        let p = parse("[box]\nimage = busybox\nfoo = 1\n");
        assert!(p.diagnostics.iter().any(|d| d.code == codes::SYNTAX));
        assert!(p.diagnostics.iter().any(|d| d.code == codes::UNKNOWN_KEY));
        assert!(!p.syntax_spans.is_empty());
    }
}
