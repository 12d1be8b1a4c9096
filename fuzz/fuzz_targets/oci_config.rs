//! Any text as an OCI bundle's config.json: parsing and translating it into a plan never
//! panics (an error names a JSON path instead).
#![no_main]

use std::path::Path;

use foxbox::oci_runtime::{config, translate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = config::parse(text) else {
        return;
    };
    // "/" as the bundle: a relative root.path names an existing directory there often.
    for euid in [0, 1000] {
        let _ = translate::translate(&cfg.spec, &cfg.raw, Path::new("/"), euid);
    }
});
