//! The fuzz target's invariants over its seeds and any saved crash inputs
//! (fuzz/seeds/unpack/*, fuzz/regressions/unpack/*), in the normal test suite: unpacking never
//! panics and never changes anything outside the layer, whatever the bytes.

use std::fs;
use std::path::Path;

use foxbox::image::{archive, unpack};

#[test]
fn fuzz_seeds_and_regressions_stay_inside_the_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for dir in ["seeds/unpack", "regressions/unpack"] {
        if let Ok(rd) = fs::read_dir(root.join(dir)) {
            inputs.extend(rd.flatten().map(|e| e.path()));
        }
    }
    assert!(inputs.len() >= 20, "the seed corpus is missing");
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("canary"), b"canary").unwrap();
    for input in inputs {
        let data = fs::read(&input).unwrap();
        let layer = t.path().join("layer");
        fs::create_dir(&layer).unwrap();
        for w in [unpack::Whiteouts::Flatten, unpack::Whiteouts::Apply] {
            let opts = unpack::Options {
                whiteouts: w,
                // Not root: chown is not allowed, so keep the unpacking user's ids.
                owners: if nix::unistd::geteuid().is_root() {
                    unpack::Owners::Keep
                } else {
                    unpack::Owners::Ignore
                },
                max_size: 64 << 20,
            };
            let _ = archive::unpack_file(&data[..], &layer, &opts, None);
        }
        foxbox::image::inroot::remove_tree(&layer).unwrap();
        let names: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            names,
            ["outside"],
            "{}: wrote beside the layer",
            input.display()
        );
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            1,
            "{}",
            input.display()
        );
        assert_eq!(fs::read(outside.join("canary")).unwrap(), b"canary");
    }
}
