//! `--format` for listings as podman takes it: `json`, or a Go template's common subset
//! (`{{.Field}}`, `{{.A.B}}`, `{{json .}}`, `{{json .Field}}`, and a leading `table` that adds a
//! header row and aligns the tab-separated columns). Scripts written for podman keep working.

use std::str::FromStr;

use serde_json::Value;

/// A listing's output: the table, JSON, or a template applied to each item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ListFormat {
    #[default]
    Human,
    Json,
    Template(Template),
}

impl FromStr for ListFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<ListFormat, String> {
        match s.trim() {
            "human" | "table" | "" => Ok(ListFormat::Human),
            "json" => Ok(ListFormat::Json),
            _ => Template::parse(s).map(ListFormat::Template),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A field path (empty: the item itself), and whether `json` was applied.
    Field {
        path: Vec<String>,
        json: bool,
    },
}

/// A parsed Go template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    table: bool,
    parts: Vec<Part>,
}

const HELP: &str = "use `json`, or a Go template such as '{{.Names}}', 'table {{.ID}}\\t{{.Status}}' or '{{json .}}'";

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        // A shell-quoted `\t` or `\n` means the character, as in podman.
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let (table, mut rest) = match text.trim_start().strip_prefix("table") {
            Some(r) if r.is_empty() || r.starts_with(char::is_whitespace) => {
                (true, r.trim_start().to_string())
            }
            _ => (false, text.clone()),
        };
        if table && rest.is_empty() {
            return Err(format!("`table` needs fields after it; {HELP}"));
        }
        let mut parts = Vec::new();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("an unclosed `{{{{` in the format; {HELP}"))?;
            parts.push(action(after[..close].trim())?);
            rest = after[close + 2..].to_string();
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest));
        }
        Ok(Template { table, parts })
    }

    /// The header row of a `table` template: each field's last name in capitals.
    fn header(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Field { path, .. } => path
                    .last()
                    .map_or_else(|| "JSON".to_string(), |f| f.to_ascii_uppercase()),
            })
            .collect()
    }

    fn apply(&self, item: &Value) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { path, json } => {
                    let mut v = item;
                    for (i, f) in path.iter().enumerate() {
                        v = v.get(f).ok_or_else(|| {
                            let have = v
                                .as_object()
                                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                                .unwrap_or_default();
                            format!(
                                "the format names `.{}`, which is not a field here (fields: {have})",
                                path[..=i].join(".")
                            )
                        })?;
                    }
                    if *json {
                        out.push_str(&serde_json::to_string(v).map_err(|e| e.to_string())?);
                    } else {
                        out.push_str(&go_text(v));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every item through the template, one per line; a `table` gets a header and aligned
    /// columns.
    pub fn render(&self, items: &[Value]) -> Result<String, String> {
        let mut lines = Vec::new();
        if self.table {
            lines.push(self.header());
        }
        for i in items {
            lines.push(self.apply(i)?);
        }
        let mut out = if self.table {
            align(&lines)
        } else {
            lines.join("\n")
        };
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        Ok(out)
    }
}

fn action(a: &str) -> Result<Part, String> {
    let (json, arg) = match a.strip_prefix("json") {
        Some(r) if r.starts_with(char::is_whitespace) => (true, r.trim()),
        _ => (false, a),
    };
    let path = arg
        .strip_prefix('.')
        .ok_or_else(|| format!("`{{{{{a}}}}}` is not supported; {HELP}"))?;
    let path: Vec<String> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('.').map(str::to_string).collect()
    };
    let ok = |f: &String| !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !path.iter().all(ok) || (path.is_empty() && !json && arg != ".") {
        return Err(format!("`{{{{{a}}}}}` is not supported; {HELP}"));
    }
    Ok(Part::Field { path, json })
}

/// A value as Go's template prints it: strings bare, lists as `[a b]`, maps as `map[k:v]`.
fn go_text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_text).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", go_text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Tab-separated cells padded into columns two spaces apart (Go's tabwriter as podman sets it).
fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    columns(&rows)
}

/// Rows of cells padded into columns two spaces apart, the last cell of a row unpadded.
pub(super) fn columns<S: AsRef<str>>(rows: &[Vec<S>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for r in rows {
        for (k, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            if widths.len() <= k {
                widths.push(0);
            }
            widths[k] = widths[k].max(c.as_ref().chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut l = String::new();
        for (k, c) in r.iter().enumerate() {
            if k + 1 == r.len() {
                l.push_str(c.as_ref());
            } else {
                l.push_str(&format!("{:<w$}  ", c.as_ref(), w = widths[k]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(f: &str, items: &[Value]) -> Result<String, String> {
        match f.parse::<ListFormat>()? {
            ListFormat::Template(t) => t.render(items),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn the_common_subset() {
        let items = [
            json!({"Names": "web", "State": {"Running": true}, "Ports": [], "Id": "ab"}),
            json!({"Names": "a-longer-name", "State": {"Running": false}, "Ports": ["80"], "Id": "cd"}),
        ];
        assert_eq!(
            render("{{.Names}}", &items).unwrap(),
            "web\na-longer-name\n"
        );
        assert_eq!(
            render("{{.Names}} {{.State.Running}}", &items).unwrap(),
            "web true\na-longer-name false\n"
        );
        assert_eq!(render("{{json .Ports}}", &items).unwrap(), "[]\n[\"80\"]\n");
        assert_eq!(render("{{.Ports}}", &items[1..]).unwrap(), "[80]\n");
        assert_eq!(
            render("table {{.Names}}\\t{{.Id}}", &items).unwrap(),
            "NAMES          ID\nweb            ab\na-longer-name  cd\n"
        );
        assert!(render("{{json .}}", &items[..1])
            .unwrap()
            .starts_with("{\"Id\":\"ab\""));
        assert_eq!("json".parse::<ListFormat>(), Ok(ListFormat::Json));
        assert_eq!("table".parse::<ListFormat>(), Ok(ListFormat::Human));
    }

    #[test]
    fn bad_templates_say_what_works() {
        let e = render("{{.Nope}}", &[json!({"Names": "x"})]).unwrap_err();
        assert!(e.contains("`.Nope`") && e.contains("Names"), "{e}");
        for bad in [
            "{{.Names",
            "{{range .}}",
            "{{.A..B}}",
            "{{printf \"%s\" .X}}",
        ] {
            let e = bad.parse::<ListFormat>().unwrap_err();
            assert!(e.contains("Go template"), "{bad}: {e}");
        }
    }
}
