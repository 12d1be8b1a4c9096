//! Arbitrary bytes as a .tar or .tar.gz into the unpacker: it must not panic, and nothing
//! outside the layer directory may change. Run as root (every chown and mknod is allowed, the
//! worst case), e.g. `RUSTC_BOOTSTRAP=1 cargo fuzz run unpack -- -max_total_time=600 -jobs=1`.
//!
//! The scratch tree is fixed (`/tmp/foxbox-fuzz/`) so that seeds can aim at it: `layer/` is
//! unpacked into, `outside/canary` and `outside/` itself must stay as they were.
#![no_main]

use std::fs;
use std::path::Path;

use foxbox::image::{archive, unpack};
use libfuzzer_sys::fuzz_target;

const BASE: &str = "/tmp/foxbox-fuzz";

fn setup() {
    let base = Path::new(BASE);
    let _ = fs::create_dir_all(base.join("outside"));
    if fs::read(base.join("outside/canary")).ok().as_deref() != Some(b"canary".as_slice()) {
        fs::write(base.join("outside/canary"), b"canary").unwrap();
    }
    let layer = base.join("layer");
    if layer.exists() {
        foxbox::image::inroot::remove_tree(&layer).unwrap();
    }
    fs::create_dir(&layer).unwrap();
}

fn check() {
    let base = Path::new(BASE);
    let mut top: Vec<String> = fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["layer", "outside"], "something was created beside the layer");
    let outside: Vec<_> = fs::read_dir(base.join("outside")).unwrap().collect();
    assert_eq!(outside.len(), 1, "something was created in outside/");
    assert_eq!(fs::read(base.join("outside/canary")).unwrap(), b"canary");
    let m = fs::symlink_metadata(base.join("outside/canary")).unwrap();
    assert!(m.file_type().is_file());
    assert!(!Path::new("/tmp/foxbox-fuzz-escape").exists(), "wrote to /tmp");
}

fuzz_target!(|data: &[u8]| {
    setup();
    let opts = unpack::Options {
        whiteouts: if data.first().is_some_and(|b| b & 1 == 1) {
            unpack::Whiteouts::Apply
        } else {
            unpack::Whiteouts::Flatten
        },
        owners: unpack::Owners::Keep,
        max_size: 64 << 20,
    };
    let _ = archive::unpack_file(data, &Path::new(BASE).join("layer"), &opts, None);
    check();
});
