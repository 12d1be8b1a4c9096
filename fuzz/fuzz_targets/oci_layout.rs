//! Any bytes as an OCI image layout's `index.json` (and its `oci-layout` marker, split off at
//! the first NUL when there is one), opened as `image load` opens an archive's layout: opening,
//! listing and finding images never panic.
#![no_main]

use std::fs;

use foxbox::oci::layout::OciLayout;
use libfuzzer_sys::fuzz_target;

const DIR: &str = "/tmp/foxbox-fuzz-oci-layout";

fuzz_target!(|data: &[u8]| {
    let (marker, index) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&br#"{"imageLayoutVersion":"1.0.0"}"#[..], data),
    };
    let _ = fs::create_dir_all(DIR);
    fs::write(format!("{DIR}/oci-layout"), marker).unwrap();
    fs::write(format!("{DIR}/index.json"), index).unwrap();
    let Ok(layout) = OciLayout::open(DIR) else {
        return;
    };
    let refs = layout.refs();
    let _ = layout.find(None);
    for (name, desc) in refs.iter().take(8) {
        let _ = layout.find(name.as_deref());
        let _ = layout.find(Some(&format!("@{}", desc.digest)));
    }
});
