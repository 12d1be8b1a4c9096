//! The `[build]` table, read with the spec parser's own leaf readers (same diagnostics).

use toml::de::{DeTable, DeValue};

use super::{span_of, Cx, Val};
use crate::diag::Diagnostic;
use crate::spec::codes;
use crate::spec::raw::{
    RawBuild, RawCache, RawCacheTable, RawCommand, RawEnv, RawStage, RawStep, Sp,
};
use crate::spec::suggest;

/// The keys of a `cache` table.
const CACHE_KEYS: &[&str] = &["target", "id", "sharing", "uid", "gid", "mode"];

/// The keys of `[build]`; `tests::key_lists_match_the_schema` keeps them equal to the schema.
pub(super) const BUILD_KEYS: &[&str] = &[
    "from",
    "context",
    "args",
    "steps",
    "merge",
    "merge_conflicts",
    "stage",
    "cmd",
    "entrypoint",
    "env",
    "workdir",
    "user",
    "expose",
    "labels",
];

/// The keys of a `[[build.steps]]` table.
const STEP_KEYS: &[&str] = &[
    "run", "network", "cache", "copy", "from", "dest", "chown", "chmod", "extract", "env",
    "workdir", "user", "label",
];

/// The keys of a `[[build.stage]]` table.
const STAGE_KEYS: &[&str] = &["name", "from", "merge", "merge_conflicts", "steps"];

impl Cx {
    pub(super) fn build(&mut self, t: &DeTable<'_>) -> RawBuild {
        let mut b = RawBuild::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "from" => b.from = self.string("build.from", v),
                "context" => b.context = self.string("build.context", v),
                "args" => b.args = self.pairs("build.args", v),
                "steps" => b.steps = self.steps(v),
                "merge" => b.merge = self.string_array("build.merge", v),
                "merge_conflicts" => b.merge_conflicts = self.string("build.merge_conflicts", v),
                "stage" => b.stage = self.stages(v),
                "cmd" => b.cmd = self.build_command("build.cmd", v),
                "entrypoint" => b.entrypoint = self.build_command("build.entrypoint", v),
                "env" => b.env = self.pairs("build.env", v),
                "workdir" => b.workdir = self.string("build.workdir", v),
                "user" => b.user = self.id_or_string("build.user", v),
                "expose" => b.expose = self.expose(v),
                "labels" => b.labels = self.pairs("build.labels", v),
                _ => self.unknown_key(Some("build"), k),
            }
        }
        b
    }

    fn steps(&mut self, v: &Val<'_>) -> Vec<Sp<RawStep>> {
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(
                "build.steps",
                v,
                "an array of tables",
                Some("write each step as a `[[build.steps]]` section (two brackets)".into()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(t) => out.push(Sp::new(self.step(t), span_of(item))),
                _ => self.wrong_type("build.steps", item, "a table", None),
            }
        }
        out
    }

    fn stages(&mut self, v: &Val<'_>) -> Vec<Sp<RawStage>> {
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(
                "build.stage",
                v,
                "an array of tables",
                Some("write each stage as a `[[build.stage]]` section (two brackets)".into()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(t) => out.push(Sp::new(self.stage(t), span_of(item))),
                _ => self.wrong_type("build.stage", item, "a table", None),
            }
        }
        out
    }

    fn stage(&mut self, t: &DeTable<'_>) -> RawStage {
        let mut s = RawStage::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "name" => s.name = self.string("build.stage.name", v),
                "from" => s.from = self.string("build.stage.from", v),
                "merge" => s.merge = self.string_array("build.stage.merge", v),
                "merge_conflicts" => {
                    s.merge_conflicts = self.string("build.stage.merge_conflicts", v)
                }
                "steps" => s.steps = self.steps(v),
                other => {
                    let help = match suggest::closest(other, STAGE_KEYS.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("a stage's keys are {}", suggest::one_of(STAGE_KEYS)),
                    };
                    self.diags.push(
                        Diagnostic::error(
                            codes::UNKNOWN_KEY,
                            format!("unknown key `{other}` in [[build.stage]]"),
                        )
                        .with_span(Some(span_of(k)))
                        .with_label("unknown")
                        .with_help(help),
                    );
                }
            }
        }
        s
    }

    fn step(&mut self, t: &DeTable<'_>) -> RawStep {
        let mut s = RawStep::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "run" => s.run = self.build_command("run", v),
                "network" => s.network = self.string("network", v),
                "cache" => s.cache = self.caches(v),
                "extract" => s.extract = self.boolean("extract", v),
                "from" => s.from = self.string("from", v),
                "copy" => {
                    s.copy = match v.get_ref() {
                        DeValue::String(c) => Some(Sp::new(
                            vec![Sp::new(c.to_string(), span_of(v))],
                            span_of(v),
                        )),
                        _ => self.string_array("copy", v),
                    }
                }
                "dest" => s.dest = self.string("dest", v),
                "chown" => s.chown = self.id_or_string("chown", v),
                "chmod" => s.chmod = self.string("chmod", v),
                "env" => s.env = self.pairs("env", v),
                "workdir" => s.workdir = self.string("workdir", v),
                "user" => s.user = self.id_or_string("user", v),
                "label" => s.label = self.pairs("label", v),
                other => {
                    let help = match suggest::closest(other, STEP_KEYS.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("a step's keys are {}", suggest::one_of(STEP_KEYS)),
                    };
                    self.diags.push(
                        Diagnostic::error(
                            codes::UNKNOWN_KEY,
                            format!("unknown key `{other}` in [[build.steps]]"),
                        )
                        .with_span(Some(span_of(k)))
                        .with_label("unknown")
                        .with_help(help),
                    );
                }
            }
        }
        s
    }

    /// A `run` step's `cache`: an array of paths or tables (one path alone is taken too).
    fn caches(&mut self, v: &Val<'_>) -> Option<Sp<Vec<Sp<RawCache>>>> {
        let items: Vec<&Val<'_>> = match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            DeValue::String(_) | DeValue::Table(_) => vec![v],
            _ => {
                self.wrong_type(
                    "cache",
                    v,
                    "an array of paths or tables",
                    Some("write e.g. `cache = [\"/var/cache/apt\"]`".into()),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => {
                    out.push(Sp::new(RawCache::Target(s.to_string()), span_of(item)))
                }
                DeValue::Table(t) => {
                    let mut c = RawCacheTable::default();
                    for (k, x) in t {
                        match k.get_ref().as_ref() {
                            "target" => c.target = self.string("cache.target", x),
                            "id" => c.id = self.string("cache.id", x),
                            "sharing" => c.sharing = self.string("cache.sharing", x),
                            "uid" => c.uid = self.integer("cache.uid", x),
                            "gid" => c.gid = self.integer("cache.gid", x),
                            "mode" => c.mode = self.string("cache.mode", x),
                            other => {
                                let help = match suggest::closest(other, CACHE_KEYS.iter().copied())
                                {
                                    Some(best) => format!("did you mean `{best}`?"),
                                    None => format!(
                                        "a cache's keys are {}",
                                        suggest::one_of(CACHE_KEYS)
                                    ),
                                };
                                self.diags.push(
                                    Diagnostic::error(
                                        codes::UNKNOWN_KEY,
                                        format!("unknown key `{other}` in a `cache` table"),
                                    )
                                    .with_span(Some(span_of(k)))
                                    .with_label("unknown")
                                    .with_help(help),
                                );
                            }
                        }
                    }
                    out.push(Sp::new(RawCache::Table(c), span_of(item)));
                }
                _ => self.wrong_type("cache", item, "a path or a table", None),
            }
        }
        Some(Sp::new(out, span_of(v)))
    }

    /// A table of string values (`env`, `args`, `labels`).
    fn pairs(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<Vec<RawEnv>>> {
        let DeValue::Table(t) = v.get_ref() else {
            self.wrong_type(
                what,
                v,
                "a table",
                Some("write e.g. `{ KEY = \"value\" }`".into()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (k, val) in t {
            let name = k.get_ref().to_string();
            if let Some(value) = self.string(&format!("{what}.{name}"), val) {
                out.push(RawEnv {
                    key: Sp::new(name, span_of(k)),
                    value,
                });
            }
        }
        Some(Sp::new(out, span_of(v)))
    }

    fn build_command(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<RawCommand>> {
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
                    Some(
                        "write e.g. `[\"make\", \"install\"]` or `\"make && make install\"`".into(),
                    ),
                );
                None
            }
        }
    }

    /// A user or owner may be written as a bare number.
    fn id_or_string(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::Integer(i) => match u32::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Sp::new(n.to_string(), span_of(v))),
                Err(_) => {
                    self.diags.push(
                        Diagnostic::error(codes::BAD_USER, format!("`{what}` is out of range"))
                            .with_span(Some(span_of(v)))
                            .with_label("too large"),
                    );
                    None
                }
            },
            _ => self.string(what, v),
        }
    }

    /// Ports may be written as numbers.
    fn expose(&mut self, v: &Val<'_>) -> Option<Sp<Vec<Sp<String>>>> {
        let Some(a) = v.get_ref().as_array() else {
            return self.string_array("build.expose", v);
        };
        let mut out = Vec::new();
        for item in a.iter() {
            match item.get_ref() {
                DeValue::Integer(i) => out.push(Sp::new(i.to_string(), span_of(item))),
                _ => {
                    if let Some(s) = self.string("build.expose", item) {
                        out.push(s);
                    }
                }
            }
        }
        Some(Sp::new(out, span_of(v)))
    }
}
