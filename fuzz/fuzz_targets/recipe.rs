//! Build recipes: any text read as a Containerfile and as a TOML recipe (`[build]`), resolved
//! and rendered: nothing may panic, and a recipe comes only without errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    foxbox::build::exercise(text);
});
