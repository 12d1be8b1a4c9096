//! OCI `linux.seccomp` / Docker / podman profile JSON → [`Profile`], with every problem found.

use serde_json::{Map, Value};

use super::arch::{self, closest, PROFILE_ARCHES, SCMP_ARCHES};
use super::errno;
use super::ProfileError;
use crate::plan::caps;
use crate::plan::seccomp_profile::{
    Action, ArgCond, CmpOp, Condition, FilterFlag, KernelVersion, Profile, SyscallRule, MAX_ERRNO,
};

const TOP_KEYS: &[&str] = &[
    "defaultAction",
    "defaultErrnoRet",
    "defaultErrno",
    "architectures",
    "archMap",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
    "comment",
    "comments",
];
const RULE_KEYS: &[&str] = &[
    "names", "name", "action", "errnoRet", "errno", "args", "includes", "excludes", "comment",
    "comments",
];
const ARG_KEYS: &[&str] = &["index", "value", "valueTwo", "op"];
const FILTER_KEYS: &[&str] = &["caps", "arches", "minKernel"];
const ARCHMAP_KEYS: &[&str] = &["architecture", "subArchitectures"];

/// Action names before their data (`errnoRet`) is known.
#[derive(Clone, Copy, PartialEq)]
enum ActionKind {
    KillProcess,
    KillThread,
    Trap,
    Errno,
    Trace,
    Log,
    Allow,
}

const ACTIONS: &[(&str, ActionKind)] = &[
    ("SCMP_ACT_KILL", ActionKind::KillThread),
    ("SCMP_ACT_KILL_THREAD", ActionKind::KillThread),
    ("SCMP_ACT_KILL_PROCESS", ActionKind::KillProcess),
    ("SCMP_ACT_TRAP", ActionKind::Trap),
    ("SCMP_ACT_ERRNO", ActionKind::Errno),
    ("SCMP_ACT_TRACE", ActionKind::Trace),
    ("SCMP_ACT_LOG", ActionKind::Log),
    ("SCMP_ACT_ALLOW", ActionKind::Allow),
];

/// Collects problems while walking the document.
struct Checker {
    errors: Vec<ProfileError>,
}

/// RFC 6901 escaping of one pointer token.
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Checker {
    fn err(&mut self, pointer: &str, message: impl Into<String>, help: Option<String>) {
        self.errors.push(ProfileError {
            message: message.into(),
            pointer: Some(pointer.to_string()),
            help,
        });
    }

    fn expect_type(&mut self, ptr: &str, what: &str, v: &Value) {
        self.err(
            ptr,
            format!("expected {what}, found {}", json_type(v)),
            None,
        );
    }

    fn unknown_keys(&mut self, ptr: &str, obj: &Map<String, Value>, known: &[&str]) {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) {
                let help = closest(k, known.iter().copied())
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| Some(format!("known keys: {}", known.join(", "))));
                self.err(
                    &format!("{ptr}/{}", token(k)),
                    format!("unknown key `{k}`"),
                    help,
                );
            }
        }
    }

    fn object<'a>(&mut self, ptr: &str, v: &'a Value) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.expect_type(ptr, "an object", other);
                None
            }
        }
    }

    /// An array, treating `null` as empty (Go's encoder writes nil slices as null).
    fn array<'a>(&mut self, ptr: &str, v: Option<&'a Value>) -> &'a [Value] {
        match v {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.expect_type(ptr, "an array", other);
                &[]
            }
        }
    }

    fn string<'a>(&mut self, ptr: &str, v: &'a Value) -> Option<&'a str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.expect_type(ptr, "a string", other);
                None
            }
        }
    }

    fn uint(&mut self, ptr: &str, v: &Value, max: u64) -> Option<u64> {
        match v.as_u64() {
            Some(n) if n <= max => Some(n),
            Some(n) => {
                self.err(ptr, format!("{n} is out of range (at most {max})"), None);
                None
            }
            None => {
                self.expect_type(ptr, "a non-negative integer", v);
                None
            }
        }
    }

    fn action_kind(&mut self, ptr: &str, v: Option<&Value>) -> Option<ActionKind> {
        let Some(v) = v else {
            self.err(ptr, "missing `action`", None);
            return None;
        };
        let s = self.string(ptr, v)?;
        if let Some((_, k)) = ACTIONS.iter().find(|(n, _)| *n == s) {
            return Some(*k);
        }
        if s == "SCMP_ACT_NOTIFY" {
            self.err(
                ptr,
                "SCMP_ACT_NOTIFY is not supported: foxbox has no seccomp notification agent",
                Some("use SCMP_ACT_ERRNO or SCMP_ACT_ALLOW for this rule".into()),
            );
            return None;
        }
        let help = closest(s, ACTIONS.iter().map(|(n, _)| *n))
            .map(|c| format!("did you mean `{c}`?"))
            .unwrap_or_else(|| {
                let names: Vec<&str> = ACTIONS.iter().map(|(n, _)| *n).collect();
                format!("known actions: {}", names.join(", "))
            });
        self.err(ptr, format!("unknown action `{s}`"), Some(help));
        None
    }

    /// Combine an action with its `errnoRet`. `default_errno` applies to ERRNO without one.
    fn action(
        &mut self,
        kind: ActionKind,
        ret: Option<(&str, &Value)>,
        default_errno: u16,
    ) -> Option<Action> {
        let data = match ret {
            None => None,
            Some((ptr, v)) => {
                let max = match kind {
                    ActionKind::Errno => u64::from(MAX_ERRNO),
                    ActionKind::Trap | ActionKind::Trace => u64::from(u16::MAX),
                    _ => {
                        self.err(
                            ptr,
                            "an errno return value only applies to SCMP_ACT_ERRNO, SCMP_ACT_TRACE \
                             and SCMP_ACT_TRAP",
                            None,
                        );
                        return None;
                    }
                };
                Some(self.uint(ptr, v, max)? as u16)
            }
        };
        Some(match kind {
            ActionKind::KillProcess => Action::KillProcess,
            ActionKind::KillThread => Action::KillThread,
            ActionKind::Trap => Action::Trap {
                data: data.unwrap_or(0),
            },
            ActionKind::Errno => Action::Errno {
                errno: data.unwrap_or(default_errno),
            },
            ActionKind::Trace => Action::Trace {
                data: data.unwrap_or(0),
            },
            ActionKind::Log => Action::Log,
            ActionKind::Allow => Action::Allow,
        })
    }

    /// podman's errno names (`defaultErrno`, a rule's `errno`), beside the numbers.
    fn errno_name(&mut self, ptr: &str, v: Option<&Value>) -> Option<u16> {
        let s = match v {
            None | Some(Value::Null) => return None,
            Some(v) => self.string(ptr, v)?,
        };
        let n = errno::by_name(s);
        if n.is_none() {
            self.err(
                ptr,
                format!("unknown errno name `{s}`"),
                Some("give the number in `errnoRet` / `defaultErrnoRet` instead".into()),
            );
        }
        n
    }

    /// Check that a number and a name given for the same errno agree.
    fn errno_agrees(&mut self, ptr: &str, action: Option<Action>, named: Option<u16>) {
        if let (Some(Action::Errno { errno }), Some(n)) = (action, named) {
            if errno != n {
                self.err(
                    ptr,
                    format!("the errno name means {n}, but the number given is {errno}"),
                    None,
                );
            }
        }
    }

    fn scmp_arch(&mut self, ptr: &str, v: &Value) -> Option<String> {
        let s = self.string(ptr, v)?;
        if SCMP_ARCHES.contains(&s) {
            return Some(s.to_string());
        }
        let help = closest(s, SCMP_ARCHES.iter().copied()).map(|c| format!("did you mean `{c}`?"));
        self.err(ptr, format!("unknown architecture `{s}`"), help);
        None
    }

    fn architectures(&mut self, top: &Map<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        let list = self.array("/architectures", top.get("architectures"));
        for (i, v) in list.iter().enumerate() {
            if let Some(a) = self.scmp_arch(&format!("/architectures/{i}"), v) {
                out.push(a);
            }
        }
        let map = self.array("/archMap", top.get("archMap"));
        if !list.is_empty() && !map.is_empty() {
            self.err(
                "/archMap",
                "both `architectures` and `archMap` are given",
                Some("use one of them".into()),
            );
        }
        for (i, entry) in map.iter().enumerate() {
            let ptr = format!("/archMap/{i}");
            let Some(obj) = self.object(&ptr, entry) else {
                continue;
            };
            self.unknown_keys(&ptr, obj, ARCHMAP_KEYS);
            match obj.get("architecture") {
                Some(v) => {
                    if let Some(a) = self.scmp_arch(&format!("{ptr}/architecture"), v) {
                        out.push(a);
                    }
                }
                None => self.err(&ptr, "missing `architecture`", None),
            }
            let subs = self.array(
                &format!("{ptr}/subArchitectures"),
                obj.get("subArchitectures"),
            );
            for (j, v) in subs.iter().enumerate() {
                if let Some(a) = self.scmp_arch(&format!("{ptr}/subArchitectures/{j}"), v) {
                    out.push(a);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|a| seen.insert(a.clone()));
        out
    }

    fn flags(&mut self, top: &Map<String, Value>) -> Vec<FilterFlag> {
        let mut out = Vec::new();
        for (i, v) in self.array("/flags", top.get("flags")).iter().enumerate() {
            let ptr = format!("/flags/{i}");
            let Some(s) = self.string(&ptr, v) else {
                continue;
            };
            match FilterFlag::NAMES.iter().find(|(n, _)| *n == s) {
                Some((_, f)) => out.push(*f),
                None if s == "SECCOMP_FILTER_FLAG_NEW_LISTENER"
                    || s == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" =>
                {
                    self.err(
                        &ptr,
                        format!("{s} is not supported: foxbox has no seccomp notification agent"),
                        None,
                    )
                }
                None => {
                    let help = closest(s, FilterFlag::NAMES.iter().map(|(n, _)| *n))
                        .map(|c| format!("did you mean `{c}`?"));
                    self.err(&ptr, format!("unknown filter flag `{s}`"), help)
                }
            }
        }
        out
    }

    fn names(&mut self, ptr: &str, obj: &Map<String, Value>) -> Vec<String> {
        let mut raw: Vec<(String, &Value)> = Vec::new();
        match (obj.get("names"), obj.get("name")) {
            (Some(_), Some(_)) => {
                self.err(
                    &format!("{ptr}/name"),
                    "both `name` and `names` are given",
                    Some("list every syscall in `names`".into()),
                );
                return Vec::new();
            }
            (None, None) => {
                self.err(ptr, "missing `names`", None);
                return Vec::new();
            }
            (Some(list), None) => {
                let items = self.array(&format!("{ptr}/names"), Some(list));
                if items.is_empty() && list.is_array() {
                    self.err(&format!("{ptr}/names"), "`names` is empty", None);
                }
                for (i, v) in items.iter().enumerate() {
                    raw.push((format!("{ptr}/names/{i}"), v));
                }
            }
            (None, Some(v)) => raw.push((format!("{ptr}/name"), v)),
        }
        let mut out = Vec::new();
        for (p, v) in raw {
            let Some(name) = self.string(&p, v) else {
                continue;
            };
            if arch::is_syscall_anywhere(name) {
                out.push(name.to_string());
            } else {
                let help = arch::closest_syscall(name)
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| {
                        Some("it is not a system call on any architecture foxbox knows".into())
                    });
                self.err(&p, format!("unknown system call `{name}`"), help);
            }
        }
        out
    }

    fn args(&mut self, ptr: &str, v: Option<&Value>) -> Vec<ArgCond> {
        let mut out: Vec<ArgCond> = Vec::new();
        let list = self.array(&format!("{ptr}/args"), v);
        for (i, a) in list.iter().enumerate() {
            let p = format!("{ptr}/args/{i}");
            let Some(obj) = self.object(&p, a) else {
                continue;
            };
            self.unknown_keys(&p, obj, ARG_KEYS);
            let index = match obj.get("index") {
                Some(v) => self.uint(&format!("{p}/index"), v, 5).map(|n| n as u8),
                None => {
                    self.err(&p, "missing `index`", None);
                    None
                }
            };
            let value = match obj.get("value") {
                Some(v) => self.uint(&format!("{p}/value"), v, u64::MAX),
                None => {
                    self.err(&p, "missing `value`", None);
                    None
                }
            };
            let value_two = match obj.get("valueTwo") {
                Some(v) => self.uint(&format!("{p}/valueTwo"), v, u64::MAX),
                None => Some(0),
            };
            let op = match obj.get("op") {
                None => {
                    self.err(&p, "missing `op`", None);
                    None
                }
                Some(v) => self.string(&format!("{p}/op"), v).and_then(|s| {
                    let found = CmpOp::NAMES.iter().find(|(n, _)| *n == s).map(|(_, o)| *o);
                    if found.is_none() {
                        let help = closest(s, CmpOp::NAMES.iter().map(|(n, _)| *n))
                            .map(|c| format!("did you mean `{c}`?"))
                            .unwrap_or_else(|| {
                                let n: Vec<&str> = CmpOp::NAMES.iter().map(|(n, _)| *n).collect();
                                format!("known operators: {}", n.join(", "))
                            });
                        self.err(
                            &format!("{p}/op"),
                            format!("unknown operator `{s}`"),
                            Some(help),
                        );
                    }
                    found
                }),
            };
            let (Some(index), Some(value), Some(value_two), Some(op)) =
                (index, value, value_two, op)
            else {
                continue;
            };
            if out.iter().any(|c| c.index == index) {
                // runc turns repeated conditions on one argument into alternatives, libseccomp
                // into all-of: either reading silently changes what the profile allows.
                self.err(
                    &format!("{p}/index"),
                    format!("a second condition on argument {index} in the same rule"),
                    Some(
                        "runtimes disagree on what this means (runc: any of them; libseccomp: \
                         all of them); write one rule per alternative"
                            .into(),
                    ),
                );
                continue;
            }
            out.push(ArgCond {
                index,
                op,
                value,
                value_two,
            });
        }
        out
    }

    fn condition(&mut self, ptr: &str, v: Option<&Value>) -> Condition {
        let mut c = Condition::default();
        let obj = match v {
            None | Some(Value::Null) => return c,
            Some(v) => match self.object(ptr, v) {
                Some(o) => o,
                None => return c,
            },
        };
        self.unknown_keys(ptr, obj, FILTER_KEYS);
        for (i, v) in self
            .array(&format!("{ptr}/caps"), obj.get("caps"))
            .iter()
            .enumerate()
        {
            let p = format!("{ptr}/caps/{i}");
            let Some(s) = self.string(&p, v) else {
                continue;
            };
            match caps::parse(s) {
                Some(n) => c.caps.insert(n),
                None => {
                    let bare = s.to_ascii_uppercase();
                    let bare = bare.strip_prefix("CAP_").unwrap_or(&bare).to_string();
                    let help = closest(&bare, caps::NAMES.iter().copied())
                        .map(|n| format!("did you mean `CAP_{n}`?"));
                    self.err(&p, format!("unknown capability `{s}`"), help);
                }
            }
        }
        for (i, v) in self
            .array(&format!("{ptr}/arches"), obj.get("arches"))
            .iter()
            .enumerate()
        {
            let p = format!("{ptr}/arches/{i}");
            let Some(s) = self.string(&p, v) else {
                continue;
            };
            if PROFILE_ARCHES.contains(&s) {
                c.arches.push(s.to_string());
            } else {
                let help = closest(s, PROFILE_ARCHES.iter().copied())
                    .map(|n| format!("did you mean `{n}`?"))
                    .or_else(|| Some(format!("known: {}", PROFILE_ARCHES.join(", "))));
                self.err(&p, format!("unknown architecture `{s}`"), help);
            }
        }
        match obj.get("minKernel") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let p = format!("{ptr}/minKernel");
                if let Some(s) = self.string(&p, v) {
                    match KernelVersion::parse(s) {
                        Some(k) if !s.is_empty() => c.min_kernel = Some(k),
                        _ => self.err(
                            &p,
                            format!("`{s}` is not a kernel version"),
                            Some("write it as MAJOR.MINOR, e.g. \"5.8\"".into()),
                        ),
                    }
                }
            }
        }
        c
    }

    fn rule(&mut self, ptr: &str, v: &Value, default_errno: u16) -> Option<SyscallRule> {
        let obj = self.object(ptr, v)?;
        self.unknown_keys(ptr, obj, RULE_KEYS);
        let names = self.names(ptr, obj);
        let kind = self.action_kind(&format!("{ptr}/action"), obj.get("action"));
        let ret_ptr = format!("{ptr}/errnoRet");
        let ret = obj
            .get("errnoRet")
            .filter(|v| !v.is_null())
            .map(|v| (ret_ptr.as_str(), v));
        let named = self.errno_name(&format!("{ptr}/errno"), obj.get("errno"));
        let action = match (kind, ret, named) {
            (Some(ActionKind::Errno), None, Some(n)) => Some(Action::Errno { errno: n }),
            (Some(k), _, _) => self.action(k, ret, default_errno),
            (None, _, _) => None,
        };
        if ret.is_some() {
            self.errno_agrees(&format!("{ptr}/errno"), action, named);
        }
        let args = self.args(ptr, obj.get("args"));
        let includes = self.condition(&format!("{ptr}/includes"), obj.get("includes"));
        let excludes = self.condition(&format!("{ptr}/excludes"), obj.get("excludes"));
        Some(SyscallRule {
            names,
            action: action?,
            args,
            includes,
            excludes,
            pointer: ptr.to_string(),
        })
    }
}

pub(super) fn parse(text: &str) -> Result<Profile, Vec<ProfileError>> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        vec![ProfileError {
            message: format!("not valid JSON: {e}"),
            pointer: None,
            help: None,
        }]
    })?;
    let mut c = Checker { errors: Vec::new() };
    let Some(top) = c.object("", &doc) else {
        return Err(c.errors);
    };
    c.unknown_keys("", top, TOP_KEYS);

    for key in ["listenerPath", "listenerMetadata"] {
        match top.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(_) => c.err(
                &format!("/{key}"),
                format!("`{key}` is not supported: foxbox has no seccomp notification agent"),
                None,
            ),
        }
    }

    // podman writes both `defaultErrnoRet` (a number) and the older `defaultErrno` (a name).
    let named_errno = c.errno_name("/defaultErrno", top.get("defaultErrno"));
    let default_ret = top.get("defaultErrnoRet").filter(|v| !v.is_null());
    let default_kind = c.action_kind("/defaultAction", top.get("defaultAction"));
    let default_action = match (default_kind, default_ret, named_errno) {
        (Some(k), Some(v), _) => c.action(k, Some(("/defaultErrnoRet", v)), libc::EPERM as u16),
        (Some(ActionKind::Errno), None, Some(n)) => Some(Action::Errno { errno: n }),
        (Some(k), None, _) => c.action(k, None, libc::EPERM as u16),
        (None, _, _) => None,
    };
    if default_ret.is_some() {
        c.errno_agrees("/defaultErrno", default_action, named_errno);
    }

    let architectures = c.architectures(top);
    let flags = c.flags(top);

    // A rule's ERRNO without `errnoRet` returns EPERM, as runc and crun do.
    let mut syscalls = Vec::new();
    for (i, v) in c.array("/syscalls", top.get("syscalls")).iter().enumerate() {
        if let Some(r) = c.rule(&format!("/syscalls/{i}"), v, libc::EPERM as u16) {
            syscalls.push(r);
        }
    }

    match default_action {
        Some(default_action) if c.errors.is_empty() => Ok(Profile {
            default_action,
            architectures,
            flags,
            syscalls,
        }),
        _ => Err(c.errors),
    }
}
