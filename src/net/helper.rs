//! A user-mode network helper process: found on PATH, started so that it cannot outlive the
//! process that started it, stopped (and reaped) when its owner lets go of it.

use std::ffi::OsString;
use std::fs::{self, File};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::NetError;

/// How long a helper gets to attach to the box and report ready.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The first executable called `name` on `$PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"));
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

pub(crate) struct HelperCmd<'a> {
    pub name: &'static str,
    pub package: &'static str,
    pub args: Vec<OsString>,
    /// stdout and stderr go here: a pipe nobody drains would block a chatty helper.
    pub log: &'a Path,
    /// Descriptors the helper inherits (all others are close-on-exec).
    pub keep_fds: Vec<RawFd>,
    /// SIGKILL the helper when the thread that started it dies, for helpers that have no
    /// exit-fd of their own. Dropped by the kernel if the helper changes its uid/gid, so such
    /// helpers must keep the caller's ids (pasta: `--runas`).
    pub die_with_parent: bool,
}

pub(crate) struct Helper {
    pub name: &'static str,
    child: Child,
    log: PathBuf,
    /// The write end of slirp4netns's `--exit-fd`: only this process holds it, so the helper
    /// sees EOF and leaves when we drop it or die.
    exit_w: Option<OwnedFd>,
    stopped: bool,
}

impl HelperCmd<'_> {
    pub fn spawn(self) -> Result<Helper, NetError> {
        let program = find_on_path(self.name).ok_or(NetError::HelperMissing {
            helper: self.name,
            package: self.package,
        })?;
        let log = File::create(self.log)
            .map_err(|e| NetError::io(format!("create {}", self.log.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| NetError::io("duplicate the log descriptor", e))?;
        let mut cmd = Command::new(&program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group: a Ctrl-C meant for the box must not take its network away.
            .process_group(0);
        let parent = std::process::id() as libc::pid_t;
        let die_with = self.die_with_parent.then_some(parent);
        crate::sys::process::before_exec(&mut cmd, die_with, self.keep_fds);
        let child = cmd.spawn().map_err(|e| NetError::HelperFailed {
            helper: self.name,
            detail: format!("cannot run {}: {e}", program.display()),
        })?;
        Ok(Helper {
            name: self.name,
            child,
            log: self.log.to_path_buf(),
            exit_w: None,
            stopped: false,
        })
    }
}

impl Helper {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn set_exit_fd(&mut self, w: OwnedFd) {
        self.exit_w = Some(w);
    }

    /// `Some(status)` once the helper has exited (and is reaped).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Why the helper failed, from its exit status and the end of its log.
    pub fn failure(&mut self) -> NetError {
        let status = wait_timeout(&mut self.child, Duration::from_secs(2));
        let mut detail = self.log_tail();
        if let Some(st) = status {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(&format!("it exited with {st}"));
        }
        NetError::HelperFailed {
            helper: self.name,
            detail,
        }
    }

    /// The helper's last meaningful log lines (without the noise of a missing syslog).
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Failed to send") && !l.contains("syslog"))
            .collect();
        lines[lines.len().saturating_sub(4)..].join(" / ")
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stop the helper and reap it: EOF on its exit-fd, then SIGTERM, then SIGKILL.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let grace = Duration::from_millis(500);
        if self.exit_w.take().is_some() && wait_timeout(&mut self.child, grace).is_some() {
            return;
        }
        if self.exited().is_some() {
            return;
        }
        // The child is not reaped yet, so its pid cannot have been reused.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        if wait_timeout(&mut self.child, grace).is_some() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}
