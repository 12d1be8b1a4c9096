//! `foxbox check --host` about networking, through the binary, as root and as the unprivileged
//! user: which helpers are installed, whether /dev/net/tun is usable, and a warning for the
//! host's network.

mod common;

use common::{Env, Who};

#[test]
fn check_host_names_the_helpers_and_the_tun_device() {
    let spec = "[box]\nimage = \"busybox\"\n\n[network]\nmode = \"pasta\"\n";
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        env.write("Foxbox.toml", spec);
        let r = env.run(["check", "--host", "Foxbox.toml"]);
        // Both helpers and a 0666 /dev/net/tun are on the machines this project tests on.
        for want in [
            "host network:\n",
            "  pasta: installed (/usr/bin/pasta",
            "  slirp4netns: installed (/usr/bin/slirp4netns, version ",
            "  /dev/net/tun: usable by this user\n",
        ] {
            assert!(r.stdout.contains(want), "{who:?}: no {want:?} in {r:?}");
        }
        // Plain check does not look at the host.
        let r = env.run(["check", "Foxbox.toml"]);
        r.ok();
        assert!(!r.stdout.contains("host network"), "{who:?}: {r:?}");
    }
}

#[test]
fn check_host_warns_that_the_hosts_network_weakens_isolation() {
    // A tarball: the host check looks a stored image up in the store.
    let spec = format!(
        "[box]\nimage = \"{}\"\n\n[network]\nmode = \"host\"\n",
        common::busybox_tarball().display()
    );
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        env.write("Foxbox.toml", &spec);
        let r = env.run(["check", "--host", "--format", "json", "Foxbox.toml"]);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        let warning = v
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == "foxbox::host::host_network")
            .unwrap_or_else(|| panic!("{who:?}: no host_network warning in {v}"));
        assert_eq!(warning["severity"], "warning", "{warning}");
        assert!(
            warning["message"]
                .as_str()
                .unwrap()
                .contains("weakens isolation"),
            "{warning}"
        );
        let human = env.run(["check", "--host", "Foxbox.toml"]);
        assert!(human.stderr.contains("mode = \"host\""), "{human:?}");
        assert!(human.stdout.contains("ok, "), "{human:?}");
    }
}
