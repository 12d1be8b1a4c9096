//! Snapshots of what the spec checker says: rendered diagnostics (no colour) and their JSON
//! form for every invalid spec in tests/specs/invalid, and the plan (with its steps) for every
//! valid one in tests/specs/valid. `cargo insta review` (or INSTA_UPDATE=always) updates them.

use std::path::{Path, PathBuf};

use foxbox::diag::{self, RenderOptions, Source};
use foxbox::exec::steps;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The spec's path as shown in diagnostics (relative to the repository, stable on any machine).
fn shown(path: &Path) -> PathBuf {
    path.strip_prefix(root()).unwrap_or(path).to_path_buf()
}

/// Absolute paths of this checkout, made machine-independent.
fn redact(s: &str) -> String {
    s.replace(&root().display().to_string(), "[ROOT]")
}

#[test]
fn invalid_specs_report_their_problems() {
    insta::glob!("specs/invalid/*.toml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = shown(path);
        let (plan, diags) = foxbox::spec::check_str(&text, &name, path.parent().unwrap());
        assert!(plan.is_none(), "{} resolved into a plan", name.display());
        assert!(
            diags.iter().any(|d| d.is_error()),
            "{} has no errors",
            name.display()
        );
        let name_s = name.display().to_string();
        let src = Source {
            name: &name_s,
            text: Some(&text),
        };
        let human = diag::render_source(&diags, src, RenderOptions::default());
        insta::assert_snapshot!("human", redact(&human));
        let json = serde_json::to_string_pretty(&diag::to_json(&diags, src)).unwrap();
        insta::assert_snapshot!("json", redact(&json));
    });
}

#[test]
fn valid_specs_resolve_into_plans() {
    insta::glob!("specs/valid/*.toml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = shown(path);
        let (plan, diags) = foxbox::spec::check_str(&text, &name, path.parent().unwrap());
        assert!(
            !diags.iter().any(|d| d.is_error()),
            "{}: {diags:#?}",
            name.display()
        );
        let plan = plan.expect("a plan");
        let out = serde_json::json!({
            "warnings": diags.iter().map(|d| format!("{}: {}", d.code, d.message)).collect::<Vec<_>>(),
            "plan": plan,
            "steps": steps::describe(&plan),
        });
        insta::assert_snapshot!(redact(&serde_json::to_string_pretty(&out).unwrap()));
    });
}
