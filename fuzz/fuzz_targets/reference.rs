//! Any text as an image reference, through the one parser (`ImageName`) that `run`, `pull`,
//! `image` and specs use, and its registry form: no panic, and a parsed name's full form parses
//! again to the same value.
#![no_main]

use foxbox::image::ImageName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = ImageName::parse(text) {
        let again = ImageName::parse(&n.full()).expect("a full name parses");
        assert_eq!(again.full(), n.full());
        let _ = foxbox::oci::Reference::from_name(&n, true);
    }
    let _ = foxbox::oci::Reference::parse(text);
});
