//! Inputs that once broke (or could break) the parser, validator, resolver or renderer; each
//! must give diagnostics or a plan, never a panic. New fuzz crashes go to tests/specs/fuzz/.
//! The body is the fuzz target's (fuzz/fuzz_targets/spec.rs).

use std::path::Path;

fn exercise(text: &str) {
    let (plan, diags) =
        foxbox::spec::check_str(text, Path::new("fuzz.toml"), Path::new("/nonexistent/fuzz"));
    let src = foxbox::diag::Source {
        name: "fuzz.toml",
        text: Some(text),
    };
    let _ = foxbox::diag::render_source(&diags, src, foxbox::diag::RenderOptions::default());
    let _ = foxbox::diag::to_json(&diags, src);
    if let Some(plan) = plan {
        assert!(diags.iter().all(|d| !d.is_error()));
        let _ = foxbox::exec::steps::describe(&plan);
        serde_json::to_string(&plan).expect("a plan serializes");
    } else {
        assert!(diags.iter().any(|d| d.is_error()), "no plan and no error");
    }
}

#[test]
fn regressions_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs/fuzz");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("tests/specs/fuzz") {
        let path = e.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        // The fuzz target only feeds valid UTF-8 (a spec file that is not is a read error).
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let r = std::panic::catch_unwind(|| exercise(text));
            assert!(r.is_ok(), "{} panicked", path.display());
            n += 1;
        }
    }
    assert!(n >= 10, "only {n} inputs");
}

#[test]
fn nasty_inputs_are_errors_not_plans() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs/fuzz");
    for name in [
        "nul_everywhere.toml",
        "extreme_numbers.toml",
        "wrong_shapes.toml",
        "seccomp_specials.toml",
        "deep_arrays.toml",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let (plan, diags) = foxbox::spec::check_str(&text, Path::new(name), &dir);
        assert!(plan.is_none(), "{name} gave a plan");
        assert!(diags.iter().any(|d| d.is_error()), "{name}");
    }
}
