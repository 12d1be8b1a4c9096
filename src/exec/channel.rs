//! The sync channel between the parent and the box's set-up process: a SOCK_SEQPACKET pair
//! carrying small typed messages, one per protocol step, in one direction each.
//!
//! Protocol:
//! 1. parent → child: [`ToChild::Go`] once the id maps (and cgroup, network) are in place.
//! 2. child → parent: [`FromChild::BeforePivot`] once its mounts are made, when the launch asks
//!    for it ([`super::Launch::before_pivot`]); the child then waits for
//!    [`ToChild::Continue`], sent once the parent's [`super::Helpers::before_pivot`] is done.
//! 3. child → parent: [`FromChild::Pty`] with the pty master attached, when there is a tty.
//! 4. child → parent: [`FromChild::Ready`] with the child's step timings, just before exec.
//! 5. child → parent: [`FromChild::Failed`] instead, at any point, then the child exits.
//! 6. end of file: the child's end is close-on-exec, so EOF after `Ready` means the fox was
//!    exec'd (with an init, the init closed its copy first).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use super::error::StepError;
use crate::sys::fd;

#[derive(Debug, Serialize, Deserialize)]
pub enum ToChild {
    Go,
    /// Past the pause before pivot_root.
    Continue,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum FromChild {
    /// The mounts are made, pivot_root is next: waiting for [`ToChild::Continue`].
    BeforePivot,
    /// The pty master rides along as SCM_RIGHTS.
    Pty,
    /// About to exec; nanoseconds each child step took, by step index.
    Ready { timings: Vec<(usize, u64)> },
    /// Step `step` (an index into the step list) failed.
    Failed { step: usize, error: StepError },
}

/// A connected pair: (parent's end, child's end).
pub fn pair() -> io::Result<(ParentEnd, ChildEnd)> {
    let (a, b) = fd::seqpacket_pair()?;
    Ok((ParentEnd(a), ChildEnd(b)))
}

const MAX_MSG: usize = 64 * 1024;

fn send(
    sock: BorrowedFd<'_>,
    msg: &impl Serialize,
    pass: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    fd::send_msg(sock, &bytes, pass)
}

/// One message and any fd passed with it; `None` at end of file.
fn recv<T: for<'de> Deserialize<'de>>(
    sock: BorrowedFd<'_>,
) -> io::Result<Option<(T, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MSG];
    let (n, passed) = fd::recv_msg(sock, &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    let msg = serde_json::from_slice(&buf[..n]).map_err(io::Error::other)?;
    Ok(Some((msg, passed)))
}

/// The parent's end.
pub struct ParentEnd(OwnedFd);

impl ParentEnd {
    /// Its descriptor (for a set-up process to close its copy of it).
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn release_child(&self) -> io::Result<()> {
        send(self.0.as_fd(), &ToChild::Go, None)
    }

    pub fn continue_child(&self) -> io::Result<()> {
        send(self.0.as_fd(), &ToChild::Continue, None)
    }

    /// The next message from the child; `None` once the child's end is closed.
    pub fn recv(&self) -> io::Result<Option<(FromChild, Option<OwnedFd>)>> {
        recv(self.0.as_fd())
    }
}

/// The child's end.
pub struct ChildEnd(OwnedFd);

impl ChildEnd {
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Block until the parent says go. False if the parent went away instead.
    pub fn wait_for_release(&self) -> bool {
        matches!(recv::<ToChild>(self.0.as_fd()), Ok(Some((ToChild::Go, _))))
    }

    /// Tell the parent pivot_root is next and block until it says continue. False if the
    /// parent went away instead.
    pub fn pause_before_pivot(&self) -> bool {
        send(self.0.as_fd(), &FromChild::BeforePivot, None).is_ok()
            && matches!(
                recv::<ToChild>(self.0.as_fd()),
                Ok(Some((ToChild::Continue, _)))
            )
    }

    pub fn send_pty(&self, master: &OwnedFd) -> io::Result<()> {
        send(self.0.as_fd(), &FromChild::Pty, Some(master.as_fd()))
    }

    pub fn ready(&self, timings: Vec<(usize, u64)>) -> io::Result<()> {
        send(self.0.as_fd(), &FromChild::Ready { timings }, None)
    }

    pub fn failed(&self, step: usize, error: StepError) {
        // Nothing more can be done if the parent is gone.
        let _ = send(self.0.as_fd(), &FromChild::Failed { step, error }, None);
    }
}

/// After the start gate (the OCI create/start split) nobody follows the set-up process over
/// the channel: a step that fails between the gate and the exec is written, as one JSON
/// message, to the launch's `start_report` descriptor (a fifo whoever opened the gate reads,
/// see [`wait_after_gate`]) before the process exits.
pub fn report_after_gate(report: RawFd, error: &StepError) {
    if let Ok(bytes) = serde_json::to_vec(error) {
        // Nothing more can be done if nobody reads it.
        let _ = fd::write_raw(report, &bytes);
    }
}

/// Read the start report (opened non-blocking) until end of file or until the process behind
/// `pidfd` has ended: the error it reported, `None` when it reported none (its command was
/// exec'd, which closed the report, or it was killed).
pub fn wait_after_gate(
    report: BorrowedFd<'_>,
    pidfd: BorrowedFd<'_>,
) -> io::Result<Option<StepError>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [report, pidfd].map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        fd::poll(&mut fds, None)?;
        let eof = loop {
            match nix::unistd::read(report, &mut buf) {
                Ok(0) => break true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EAGAIN) => break false,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        };
        if eof || fds[1].revents != 0 {
            return Ok(serde_json::from_slice(&got).ok());
        }
    }
}

impl ParentEnd {
    pub fn into_fd(self) -> OwnedFd {
        self.0
    }
}

impl ChildEnd {
    pub fn into_fd(self) -> OwnedFd {
        self.0
    }
}
