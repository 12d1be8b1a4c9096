//! The tiny init (`init = true`): pid 1 of the box reaps every zombie and forwards signals to
//! the fox, then exits with the fox's status.
//!
//! It is a fork of the set-up process that execs nothing, so /proc/1/exe names the foxbox
//! binary. It is made non-dumpable at once: /proc/1/exe, /proc/1/mem, /proc/1/map_files and
//! ptrace then need CAP_SYS_PTRACE in the user namespace that owns its memory, which is the
//! caller's (the binary was exec'd there), not the box's; so no process in the box can open
//! or write the runtime binary through it, whatever capabilities the plan grants. It holds no
//! file descriptor but stdio (fds above 2 were closed, the sync channel it drops here).
//!
//! /proc/1/cmdline needs no such right, and would show the command line foxbox was started
//! with (the host's binary path, bind sources, `-e TOKEN=...`): the init rewrites its argument
//! area to read `foxbox-init` and blanks its environment strings ([`p::retitle`], as
//! setproctitle does). Not exec'ing a separate init (as catatonit or tini are) keeps the
//! protection above, works rootless, and copies no binary at start.

use std::os::fd::RawFd;

use crate::exec::error::{Context, StepError};
use crate::sys::process::{self as p, Exit};

/// Fork: the caller continues as the fox; the other side becomes the init and never returns.
/// `chan`: the sync channel fd, which the init closes so the parent sees EOF at the fox's exec;
/// `report`: the start report (see [`super::Launch::start_report`]), closed for the same reason.
pub fn fork_init(chan: RawFd, report: Option<RawFd>) -> Result<(), StepError> {
    // Blocked before the fork so no signal (SIGCHLD above all) is lost; the fox unblocks
    // everything before exec.
    let all: Vec<i32> = (1..libc::SIGRTMAX()).collect();
    // Read before the fork, so that a failure is the step's; the init, a copy, has the same.
    let area = p::ArgArea::of_self().ctx(|| "read /proc/self/stat".into())?;
    let _ = p::block_signals(&all).ctx(|| "block signals".into())?;
    match p::fork().ctx(|| "fork the fox".into())? {
        None => {
            let _ = p::set_parent_death_signal(libc::SIGKILL);
            Ok(())
        }
        Some(fox) => {
            // The init's copy of the channel: the State that owns it never runs again here.
            p::close_raw(chan);
            if let Some(r) = report {
                p::close_raw(r);
            }
            run(fox, &all, area)
        }
    }
}

/// What /proc/1/cmdline and /proc/1/comm read.
pub const TITLE: &str = "foxbox-init";

fn run(fox: i32, all: &[i32], area: p::ArgArea) -> ! {
    let _ = p::set_dumpable(false);
    p::retitle(area, TITLE);
    loop {
        let sig = p::wait_signal(all);
        if sig == libc::SIGCHLD {
            while let Some((pid, exit)) = p::reap_any() {
                if pid == fox {
                    p::exit_now(match exit {
                        Exit::Code(c) => c,
                        Exit::Signal(s) => 128 + s,
                    });
                }
            }
        } else {
            let _ = p::kill(fox, sig);
        }
    }
}
