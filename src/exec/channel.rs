//! The sync channel between the parent and the box's set-up process: a SOCK_SEQPACKET pair
//! carrying small typed messages, one per protocol step, in one direction each.
//!
//! Protocol:
//! 1. parent → child: [`ToChild::Go`] once the id maps (and cgroup, network) are in place.
//! 2. child → parent: [`FromChild::Pty`] with the pty master attached, when there is a tty.
//! 3. child → parent: [`FromChild::Ready`] with the child's step timings, just before exec.
//! 4. child → parent: [`FromChild::Failed`] instead, at any point, then the child exits.
//! 5. end of file: the child's end is close-on-exec, so EOF after `Ready` means the fox was
//!    exec'd (with an init, the init closed its copy first).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use super::error::StepError;
use crate::sys::fd;

#[derive(Debug, Serialize, Deserialize)]
pub enum ToChild {
    Go,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum FromChild {
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
