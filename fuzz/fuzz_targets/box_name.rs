//! Any text as a box name: validating never panics, and a valid name is one a hostname can be
//! made from.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if foxbox::boxes::names::validate_name(text).is_ok() {
        assert!(!text.is_empty());
        assert!(text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric()));
    }
});
