//! The body of the `recipe` fuzz target, here so that it builds with the library and a
//! regression test can replay inputs through it.

use std::path::Path;

use crate::diag::{self, Diagnostic, RenderOptions, Source};

/// Read `text` as a Containerfile and as a TOML recipe, and render what each says. Panics when
/// a recipe comes with an error, or neither a recipe nor an error comes.
#[doc(hidden)]
pub fn exercise(text: &str) {
    let base = Path::new("/nonexistent/fuzz");
    for (name, loaded) in [
        ("Containerfile", super::containerfile::check_str(text, base)),
        ("Foxfile.toml", crate::spec::build::check_str(text, base)),
    ] {
        let src = Source {
            name,
            text: Some(text),
        };
        let diags = match &loaded {
            Ok((recipe, warnings)) => {
                assert!(!warnings.iter().any(Diagnostic::is_error), "{name}");
                for stage in &recipe.stages {
                    for step in &stage.steps {
                        let _ = (step.action.keyword(), step.action.summary());
                    }
                }
                warnings
            }
            Err(diags) => {
                assert!(
                    diags.iter().any(Diagnostic::is_error),
                    "{name}: no recipe, no error"
                );
                diags
            }
        };
        let _ = diag::render_source(diags, src, RenderOptions::default());
        let _ = diag::to_json(diags, src);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The fuzz target's seeds stay valid recipes, and go through it.
    #[test]
    fn the_seeds_are_recipes_and_survive_the_target() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/recipe");
        let base = Path::new("/nonexistent/fuzz");
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).expect(n);
        let c = read("containerfile");
        let r = super::super::containerfile::check_str(&c, base);
        assert!(r.is_ok(), "{r:?}");
        let t = read("foxfile.toml");
        let r = crate::spec::build::check_str(&t, base);
        assert!(r.is_ok(), "{r:?}");
        for e in std::fs::read_dir(&dir).expect("seeds") {
            let text = std::fs::read_to_string(e.expect("seed").path()).expect("seed");
            super::exercise(&text);
        }
    }
}
