//! Any bytes as a registry manifest or index, with each content type the client may be given:
//! parsing never panics.
#![no_main]

use foxbox::oci::manifest::parse_manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for ct in [
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json"),
        Some("text/plain"),
    ] {
        let _ = parse_manifest(ct, data);
    }
});
