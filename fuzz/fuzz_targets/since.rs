//! Any text as `logs --since`: parsing never panics (no time arithmetic overflows), and an
//! accepted time is not before 1970.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for now in [
        SystemTime::now(),
        UNIX_EPOCH,
        UNIX_EPOCH + Duration::from_secs(1 << 40),
    ] {
        if let Ok(t) = foxbox::boxes::log::parse_since(text, now) {
            assert!(t >= UNIX_EPOCH, "{text:?}");
        }
    }
});
