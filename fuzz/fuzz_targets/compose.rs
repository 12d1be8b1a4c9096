//! The merged-spec path: a spec, its bases, a local override and an env file (the input split
//! at `\n%%\n` lines), with variables, through composing, reading, resolving and rendering:
//! nothing may panic, and a plan comes only without errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    foxbox::spec::exercise_compose(text);
});
