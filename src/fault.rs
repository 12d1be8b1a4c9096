//! Named fault points for crash tests: `FOXBOX_FAULT=<point>` makes the process that reaches
//! that point kill itself with SIGKILL, as an unlucky `kill -9` or power cut would.
//!
//! Compiled only with the `fault-injection` cargo feature (off by default): without it
//! [`point`] and [`before_rename`] are empty and inlined away, so a release binary carries
//! neither the points nor their names. `tests/fault_points.rs` walks every point in
//! [`POINTS`]; a point added at a call site must be listed there too.
//!
//! When `FOXBOX_FAULT_FIRED` names a file, the point's name is appended to it before the kill,
//! so a test can tell that the point was reached (the killed process may be a supervisor or a
//! forked helper, whose death the CLI reports only as an error).

/// Every fault point. `before-rename:<file>` points fire inside [`crate::store::atomic`]'s
/// writes of that file name, with the temporary file written and not yet renamed.
pub const POINTS: &[&str] = &[
    // `image import`: a temp dir made, unpacked into it, moved into layers/, the index.
    "import.tmp-made",
    "import.unpacked",
    "import.after-layer",
    "before-rename:index.json",
    "import.after-index",
    // Registry pull: after each layer is unpacked, before the index write.
    "pull.between-layers",
    "pull.before-index",
    // Box start.
    "start.staged",
    "start.recorded",
    "start.cgroup-recorded",
    "before-rename:config.json",
    "start.after-clone",
    "start.after-network",
    "start.before-running",
    "before-rename:state.json",
    "start.after-running",
    // `rm`, `volume rm`, `image rm`.
    "rm.before-retire",
    "rm.retired",
    "volume-rm.renamed",
    "image-rm.index-written",
    // `foxbox build`: a `run` step's box has exited (its upper dir and output log there), the
    // step's layer and blob moved into the store (not yet indexed), the index written (the
    // build cache not yet).
    "build.step-ran",
    "build.layer-stored",
    "build.after-index",
    // `oci create`: its cgroup made (and, without a mount namespace, the runtime's mounts
    // noted), its process cloned and released, its set-up done (host mounts made), before
    // state.json. Each leaves a container that `oci delete` removes through creating.json.
    "oci-create.cgroup-made",
    "oci-create.process-released",
    "oci-create.host-mounted",
    "oci-create.before-state",
];

/// Kill this process if `FOXBOX_FAULT` names `name`.
#[cfg(feature = "fault-injection")]
pub fn point(name: &'static str) {
    fire(name);
}

/// A fault point that is compiled out: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &'static str) {}

/// The point `before-rename:<file_name>` (see [`POINTS`]).
#[cfg(feature = "fault-injection")]
pub fn before_rename(file_name: &str) {
    if let Some(rest) = std::env::var("FOXBOX_FAULT")
        .ok()
        .and_then(|v| v.strip_prefix("before-rename:").map(str::to_string))
    {
        if rest == file_name {
            fire(&format!("before-rename:{file_name}"));
        }
    }
}

/// A fault point that is compiled out: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn before_rename(_file_name: &str) {}

#[cfg(feature = "fault-injection")]
fn fire(name: &str) {
    if std::env::var("FOXBOX_FAULT").as_deref() != Ok(name) {
        return;
    }
    if let Some(log) = std::env::var_os("FOXBOX_FAULT_FIRED") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{name}");
        }
    }
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
}
