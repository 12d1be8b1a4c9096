//! The tiny init (`init = true`): pid 1 of the box reaps every zombie and forwards signals to
//! the fox, then exits with the fox's status.
//!
//! It is a fork of the set-up process that execs nothing, so /proc/1/exe names the foxbox
//! binary. It is made non-dumpable at once: /proc/1/exe, /proc/1/mem, /proc/1/map_files and
//! ptrace then need CAP_SYS_PTRACE in the user namespace that owns its memory, which is the
//! caller's (the binary was exec'd there), not the box's; so no process in the box can open
//! or write the runtime binary through it, whatever capabilities the plan grants. It holds no
//! file descriptor but stdio (fds above 2 were closed, the sync channel it drops here).

use std::os::fd::RawFd;

use crate::exec::error::{Context, StepError};
use crate::sys::process::{self as p, Exit};

/// Fork: the caller continues as the fox; the other side becomes the init and never returns.
/// `chan`: the sync channel fd, which the init closes so the parent sees EOF at the fox's exec.
pub fn fork_init(chan: RawFd) -> Result<(), StepError> {
    // Blocked before the fork so no signal (SIGCHLD above all) is lost; the fox unblocks
    // everything before exec.
    let all: Vec<i32> = (1..libc::SIGRTMAX()).collect();
    let _ = p::block_signals(&all).ctx(|| "block signals".into())?;
    match p::fork().ctx(|| "fork the fox".into())? {
        None => {
            let _ = p::set_parent_death_signal(libc::SIGKILL);
            Ok(())
        }
        Some(fox) => {
            // The init's copy of the channel: the State that owns it never runs again here.
            p::close_raw(chan);
            run(fox, &all)
        }
    }
}

fn run(fox: i32, all: &[i32]) -> ! {
    let _ = p::set_dumpable(false);
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
