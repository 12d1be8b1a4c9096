//! Parse + validate + resolve + render any text as a spec: nothing may panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (plan, diags) = foxbox::spec::check_str(text, Path::new("fuzz.toml"), Path::new("/nonexistent/fuzz"));
    let src = foxbox::diag::Source {
        name: "fuzz.toml",
        text: Some(text),
    };
    let _ = foxbox::diag::render_source(&diags, src, foxbox::diag::RenderOptions::default());
    let _ = foxbox::diag::to_json(&diags, src);
    if let Some(plan) = plan {
        assert!(diags.iter().all(|d| !d.is_error()));
        let _ = foxbox::exec::steps::describe(&plan);
        let _ = serde_json::to_string(&plan);
    }
});
