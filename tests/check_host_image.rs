//! `check --host` asks the real image store whether a named image is there.

mod common;

use common::{Env, Who};

#[test]
fn a_stored_image_is_looked_up_in_the_store() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let spec = env.write(
            "Foxbox.toml",
            "[box]\nimage = \"busybox\"\ncommand = [\"true\"]\n",
        );
        let spec = spec.to_str().unwrap();
        let r = env.run(["check", "--host", spec]);
        r.assert_code(1);
        assert!(r.stderr.contains("is not in the store"), "{}", r.stderr);
        env.import_busybox();
        let r = env.run(["check", "--host", spec]);
        assert!(!r.stderr.contains("is not in the store"), "{}", r.stderr);
        env.run(["check", spec]).ok();
    }
}
