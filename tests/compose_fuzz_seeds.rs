//! The `compose` fuzz target's seeds (fuzz/seeds/compose: a spec, its bases, a local override
//! and an env file split at `%%` lines), and every prefix of them, through the target's body:
//! never a panic, a plan only without errors.

use std::path::Path;

#[test]
fn seeds_and_their_prefixes_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/compose");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("fuzz/seeds/compose") {
        let path = e.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("a seed is text");
        for end in (0..=text.len()).filter(|i| text.is_char_boundary(*i)) {
            let part = &text[..end];
            let r = std::panic::catch_unwind(|| foxbox::spec::exercise_compose(part));
            assert!(r.is_ok(), "{} cut at {end} panicked", path.display());
            n += 1;
        }
    }
    assert!(n > 100, "only {n} inputs");
}
