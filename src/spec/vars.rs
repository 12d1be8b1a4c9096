//! Variables in a spec's string values: `${NAME}`, `${NAME:-default}`, `${NAME-default}`,
//! `${NAME:?message}`, `${NAME?message}`, and `$$` for a literal `$` (Docker Compose's
//! syntax). A `$` followed by anything else stays as it is, so shell commands such as
//! `command = "echo $HOME"` keep working. Variables never run anything.
//!
//! Values come from the environment and then from an env file (`.env` beside the spec, or the
//! file the spec's top-level `env_file` names): the environment wins, as in Compose.

use std::collections::HashMap;

/// The variables a spec is interpolated with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    map: HashMap<String, String>,
}

impl Vars {
    /// From `env` (wins) and the env file's entries.
    pub fn new(
        env: impl IntoIterator<Item = (String, String)>,
        file: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut map: HashMap<String, String> = file.into_iter().collect();
        map.extend(env);
        Vars { map }
    }

    /// The process environment only.
    pub fn from_process() -> Self {
        Vars::new(std::env::vars(), [])
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// Add entries that the ones already here override (an env file under the environment).
    pub fn add_under(&mut self, entries: impl IntoIterator<Item = (String, String)>) {
        for (k, v) in entries {
            self.map.entry(k).or_insert(v);
        }
    }
}

/// What is wrong with one `${...}` of a value; `at` is its byte range in the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    pub at: std::ops::Range<usize>,
    pub kind: VarErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarErrorKind {
    /// Unset, no default (`name`).
    Unset(String),
    /// `${NAME:?message}` with NAME unset or empty.
    Required { name: String, message: String },
    /// Not the syntax: an unterminated `${`, a bad name.
    Syntax(String),
}

/// Whether `s` has anything to interpolate (a fast path for the common value).
pub fn has_dollar(s: &str) -> bool {
    s.contains('$')
}

/// Interpolate `s`; every problem, each with its place in `s`.
pub fn interpolate(s: &str, vars: &Vars) -> Result<String, Vec<VarError>> {
    let mut errors = Vec::new();
    let out = expand(s, 0, vars, &mut errors, 0);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Defaults may hold variables themselves; this bounds how deep.
const MAX_NESTING: usize = 8;

fn expand(s: &str, base: usize, vars: &Vars, errors: &mut Vec<VarError>, depth: usize) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut lit = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => {
                out.push_str(&s[lit..i]);
                out.push('$');
                i += 2;
                lit = i;
            }
            Some(b'{') => {
                out.push_str(&s[lit..i]);
                let Some(close) = matching_brace(b, i + 1) else {
                    errors.push(VarError {
                        at: base + i..base + s.len(),
                        kind: VarErrorKind::Syntax("`${` without its closing `}`".into()),
                    });
                    return out;
                };
                let inner = &s[i + 2..close];
                let at = base + i..base + close + 1;
                if let Some(v) = one(inner, base + i + 2, at.clone(), vars, errors, depth) {
                    out.push_str(&v);
                }
                i = close + 1;
                lit = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&s[lit..]);
    out
}

/// The `}` closing the `{` at `open`, counting nested `${`.
fn matching_brace(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// One `${inner}`; `inner_at` is where `inner` starts in the whole value.
fn one(
    inner: &str,
    inner_at: usize,
    at: std::ops::Range<usize>,
    vars: &Vars,
    errors: &mut Vec<VarError>,
    depth: usize,
) -> Option<String> {
    let name_len = inner
        .bytes()
        .position(|c| !(c.is_ascii_alphanumeric() || c == b'_'))
        .unwrap_or(inner.len());
    let name = &inner[..name_len];
    let rest = &inner[name_len..];
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        errors.push(VarError {
            at,
            kind: VarErrorKind::Syntax(format!(
                "`${{{inner}}}` does not start with a variable name (letters, digits and `_`, not starting with a digit)"
            )),
        });
        return None;
    }
    let value = vars.get(name);
    let (op, arg) = [":-", ":?", "-", "?"]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|a| (*op, a)))
        .unwrap_or(("", rest));
    if op.is_empty() && !rest.is_empty() {
        errors.push(VarError {
            at,
            kind: VarErrorKind::Syntax(format!(
                "`{rest}` after `{name}`: write `${{{name}}}`, `${{{name}:-default}}` or `${{{name}:?message}}`"
            )),
        });
        return None;
    }
    let unset = match op {
        ":-" | ":?" => value.is_none_or(str::is_empty),
        _ => value.is_none(),
    };
    if !unset {
        return value.map(str::to_string);
    }
    match op {
        "" => {
            errors.push(VarError {
                at,
                kind: VarErrorKind::Unset(name.to_string()),
            });
            None
        }
        ":-" | "-" => {
            if depth >= MAX_NESTING {
                errors.push(VarError {
                    at,
                    kind: VarErrorKind::Syntax("defaults nest too deep".into()),
                });
                return None;
            }
            let arg_at = inner_at + name_len + op.len();
            Some(expand(arg, arg_at, vars, errors, depth + 1))
        }
        _ => {
            errors.push(VarError {
                at,
                kind: VarErrorKind::Required {
                    name: name.to_string(),
                    message: arg.to_string(),
                },
            });
            None
        }
    }
}

/// A line of an env file that is not `KEY=VALUE` (1-based line number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    pub line: usize,
    pub message: String,
}

/// An env file's entries, by Docker's rules: `KEY=VALUE` lines, an optional `export ` before
/// the key, blank lines and `#` lines skipped; an unquoted value is trimmed and loses a ` #`
/// comment; a single-quoted value is literal; a double-quoted one may span lines and knows
/// `\n`, `\t`, `\"` and `\\`. Values are not interpolated.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut n = 0;
    while n < lines.len() {
        let line_no = n + 1;
        let line = lines[n].trim();
        n += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            return Err(EnvFileError {
                line: line_no,
                message: format!("`{line}` is not KEY=VALUE"),
            });
        };
        let key = key.trim();
        if key.is_empty()
            || key.as_bytes()[0].is_ascii_digit()
            || !key
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
        {
            return Err(EnvFileError {
                line: line_no,
                message: format!("`{key}` is not a variable name"),
            });
        }
        let value = value.trim_start();
        let value = if let Some(rest) = value.strip_prefix('\'') {
            match rest.find('\'') {
                Some(end) => rest[..end].to_string(),
                None => {
                    return Err(EnvFileError {
                        line: line_no,
                        message: "a single quote without its closing quote".into(),
                    })
                }
            }
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut text = rest.to_string();
            loop {
                if let Some(end) = closing_double_quote(&text) {
                    break unescape(&text[..end]);
                }
                if n >= lines.len() {
                    return Err(EnvFileError {
                        line: line_no,
                        message: "a double quote without its closing quote".into(),
                    });
                }
                text.push('\n');
                text.push_str(lines[n]);
                n += 1;
            }
        } else {
            let v = match value.find(" #") {
                Some(i) => &value[..i],
                None => value,
            };
            v.trim_end().to_string()
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn closing_double_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o @ ('"' | '\\' | '$')) => out.push(o),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(kv: &[(&str, &str)]) -> Vars {
        Vars::new(kv.iter().map(|(k, v)| (k.to_string(), v.to_string())), [])
    }

    #[test]
    fn forms() {
        let v = vars(&[("A", "x"), ("E", "")]);
        assert_eq!(interpolate("a${A}b", &v).unwrap(), "axb");
        assert_eq!(interpolate("${B:-d}", &v).unwrap(), "d");
        assert_eq!(interpolate("${E:-d}", &v).unwrap(), "d");
        assert_eq!(interpolate("${E-d}", &v).unwrap(), "");
        assert_eq!(interpolate("${B:-${A}y}", &v).unwrap(), "xy");
        assert_eq!(interpolate("$$A $HOME $", &v).unwrap(), "$A $HOME $");
        assert_eq!(interpolate("cost $$5", &v).unwrap(), "cost $5");
    }

    #[test]
    fn errors_point_at_the_expression() {
        let v = vars(&[]);
        let e = interpolate("ab${NOPE}c", &v).unwrap_err();
        assert_eq!(e[0].at, 2..9);
        assert_eq!(e[0].kind, VarErrorKind::Unset("NOPE".into()));
        let e = interpolate("${X:?say so}", &v).unwrap_err();
        assert_eq!(
            e[0].kind,
            VarErrorKind::Required {
                name: "X".into(),
                message: "say so".into()
            }
        );
        let e = interpolate("${B:-${C}}", &v).unwrap_err();
        assert_eq!(e[0].at, 5..9);
        assert!(matches!(
            interpolate("${1}", &v).unwrap_err()[0].kind,
            VarErrorKind::Syntax(_)
        ));
        assert!(matches!(
            interpolate("x ${A", &v).unwrap_err()[0].kind,
            VarErrorKind::Syntax(_)
        ));
        assert!(matches!(
            interpolate("${A:x}", &v).unwrap_err()[0].kind,
            VarErrorKind::Syntax(_)
        ));
    }

    #[test]
    fn env_file_rules() {
        let f = parse_env_file(
            "# c\n\nA=1\nexport B = two words # note\nC='lit ${X} #'\nD=\"l1\\n\\\"q\\\"\"\nE=\"multi\nline\"\nF=\n",
        )
        .unwrap();
        let get = |k: &str| f.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("A"), "1");
        assert_eq!(get("B"), "two words");
        assert_eq!(get("C"), "lit ${X} #");
        assert_eq!(get("D"), "l1\n\"q\"");
        assert_eq!(get("E"), "multi\nline");
        assert_eq!(get("F"), "");
        assert_eq!(parse_env_file("A=1\nnope\n").unwrap_err().line, 2);
        assert_eq!(parse_env_file("A=\"x\n").unwrap_err().line, 1);
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let mut v = vars(&[("A", "env")]);
        v.add_under([("A".into(), "file".into()), ("B".into(), "file".into())]);
        assert_eq!(v.get("A"), Some("env"));
        assert_eq!(v.get("B"), Some("file"));
    }
}
