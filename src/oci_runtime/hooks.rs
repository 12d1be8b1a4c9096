//! OCI hooks: each runs with the container's state JSON on its stdin, its own argv and
//! environment, and its timeout; a non-zero exit or an overrun is an error the caller decides
//! about (fatal before `start`, a warning after it, as the runtime-spec says).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use super::OciError;

/// Run `hooks` (of kind `kind`, e.g. `createRuntime`) in order; the first failure ends it.
pub fn run(kind: &'static str, hooks: &[Hook], state: &str) -> Result<(), OciError> {
    for h in hooks {
        run_one(kind, h, state)?;
    }
    Ok(())
}

/// Run every hook of `hooks` even when one fails (poststart, poststop: the runtime-spec
/// makes a failure a warning and the rest still run); the failures, as warnings.
pub fn run_each(kind: &'static str, hooks: &[Hook], state: &str) -> Vec<String> {
    hooks
        .iter()
        .filter_map(|h| run_one(kind, h, state).err().map(|e| e.to_string()))
        .collect()
}

fn run_one(kind: &'static str, h: &Hook, state: &str) -> Result<(), OciError> {
    let fail = |message: String| OciError::Hook {
        kind,
        path: h.path().display().to_string(),
        message,
    };
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        }
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(fail(format!("it failed ({status})"))),
            Ok(None) => {}
            Err(e) => return Err(fail(format!("waiting for it: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {} s",
                h.timeout().unwrap_or_default()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
