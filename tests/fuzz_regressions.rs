//! Inputs the fuzz targets (fuzz/fuzz_targets/) and their seeds found to crash, replayed
//! through the binary, as root and as the unprivileged user: each must now fail cleanly.

mod common;

use common::envs_with_busybox as envs;

/// `since`: Unix seconds past what a time can hold panicked (exit 101) in the time arithmetic.
#[test]
fn logs_since_far_away_is_refused_not_a_panic() {
    for env in envs() {
        env.run(["run", "-d", "--name", "said", "busybox", "echo", "hi"])
            .ok();
        env.run(["wait", "said"]).ok();
        for since in ["18446744073709551615", "100y"] {
            let r = env.run(["logs", "--since", since, "said"]);
            r.assert_code(125);
            assert!(r.stderr.contains("too far"), "{since}: {}", r.stderr);
        }
        let r = env.run(["logs", "--since", "1h", "said"]);
        r.ok();
        assert_eq!(r.stdout, "hi\n");
    }
}
