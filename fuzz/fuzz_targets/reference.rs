//! Any text as an image reference, through the parsers `run`, `pull` and `image` use today
//! (kept tiny: the reference types are being merged into one): no panic, and a parsed stored
//! name parses again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = foxbox::image::reference::parse(text) {
        let again = foxbox::image::reference::parse(&r.full()).expect("a full name parses");
        assert_eq!(again.full(), r.full());
    }
    let _ = foxbox::registry::reference::Reference::parse(text);
});
