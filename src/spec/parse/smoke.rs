//! `[[test]]` tables, read with the spec parser's own leaf readers (same diagnostics).

use toml::de::{DeTable, DeValue};

use super::{span_of, Cx, Val};
use crate::diag::Diagnostic;
use crate::spec::codes;
use crate::spec::raw::{RawExpect, RawFileExpect, RawOutputMatch, RawTest, Sp};
use crate::spec::suggest;

/// Keys of a `[[test]]` table, of its `expect` table, of `expect.stdout`/`stderr` and of an
/// `expect.files` entry.
pub(super) const TEST_KEYS: &[&str] = &["name", "command", "expect", "timeout"];
const EXPECT_KEYS: &[&str] = &["exit", "stdout", "stderr", "files"];
const OUTPUT_KEYS: &[&str] = &["contains", "matches"];
const FILE_KEYS: &[&str] = &["path", "contains"];

type Key<'i> = toml::Spanned<std::borrow::Cow<'i, str>>;

impl Cx {
    fn unknown_in(&mut self, place: &str, known: &[&str], k: &Key<'_>) {
        let name = k.get_ref().as_ref();
        let help = match suggest::closest(name, known.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("the keys are {}", suggest::one_of(known)),
        };
        self.diags.push(
            Diagnostic::error(
                codes::UNKNOWN_KEY,
                format!("unknown key `{name}` in {place}"),
            )
            .with_span(Some(span_of(k)))
            .with_label("unknown")
            .with_help(help),
        );
    }

    pub(super) fn tests(&mut self, v: &Val<'_>) -> Vec<Sp<RawTest>> {
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(
                "test",
                v,
                "an array of tables",
                Some("write each test as a `[[test]]` section (two brackets)".into()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(t) => out.push(Sp::new(self.test(t), span_of(item))),
                _ => self.wrong_type("test", item, "a table", None),
            }
        }
        out
    }

    fn test(&mut self, t: &DeTable<'_>) -> RawTest {
        let mut r = RawTest::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "name" => r.name = self.string("test.name", v),
                "command" => r.command = self.command(v),
                "timeout" => r.timeout = self.string("test.timeout", v),
                "expect" => {
                    if let Some(e) = self.table("test.expect", v) {
                        r.expect = Some(Sp::new(self.expect(e), span_of(v)));
                    }
                }
                _ => self.unknown_in("[[test]]", TEST_KEYS, k),
            }
        }
        r
    }

    fn expect(&mut self, t: &DeTable<'_>) -> RawExpect {
        let mut e = RawExpect::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "exit" => e.exit = self.integer("test.expect.exit", v),
                "stdout" => e.stdout = self.output_match("test.expect.stdout", v),
                "stderr" => e.stderr = self.output_match("test.expect.stderr", v),
                "files" => e.files = self.file_expects(v),
                _ => self.unknown_in("a test's `expect`", EXPECT_KEYS, k),
            }
        }
        e
    }

    fn output_match(&mut self, what: &str, v: &Val<'_>) -> Option<Sp<RawOutputMatch>> {
        let t = self.table(what, v)?;
        let mut m = RawOutputMatch::default();
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "contains" => m.contains = self.string(&format!("{what}.contains"), v),
                "matches" => m.matches = self.string(&format!("{what}.matches"), v),
                _ => self.unknown_in(&format!("`{what}`"), OUTPUT_KEYS, k),
            }
        }
        Some(Sp::new(m, span_of(v)))
    }

    fn file_expects(&mut self, v: &Val<'_>) -> Option<Sp<Vec<Sp<RawFileExpect>>>> {
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(
                "test.expect.files",
                v,
                "an array of tables",
                Some("write `files = [{ path = \"/x\", contains = \"ok\" }]`".into()),
            );
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            let DeValue::Table(t) = item.get_ref() else {
                self.wrong_type("test.expect.files", item, "a table", None);
                continue;
            };
            let mut f = RawFileExpect::default();
            for (k, v) in t {
                match k.get_ref().as_ref() {
                    "path" => f.path = self.string("test.expect.files.path", v),
                    "contains" => f.contains = self.string("test.expect.files.contains", v),
                    _ => self.unknown_in("an `expect.files` entry", FILE_KEYS, k),
                }
            }
            out.push(Sp::new(f, span_of(item)));
        }
        Some(Sp::new(out, span_of(v)))
    }
}
