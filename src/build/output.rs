//! A step's output: the box inherits this process's stdout and stderr, which point at a pipe
//! for the step's duration; a forked copier writes what comes through to a log file (for the
//! diagnostic's last lines) and, when asked, to the terminal. A fork rather than a thread: the
//! executor forks and makes namespaces, which a process with threads must not.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::sys::fd::dup_onto;
use crate::sys::process as p;

/// Output being captured; [`Capture::finish`] puts stdio back.
pub struct Capture {
    saved: [OwnedFd; 3],
    copier: i32,
    log: PathBuf,
}

impl Capture {
    /// Send this process's stdout and stderr to `log` (and to the terminal's stderr when
    /// `echo`), stdin from /dev/null.
    pub fn start(log: &Path, echo: bool) -> io::Result<Capture> {
        let saved = [
            io::stdin().as_fd().try_clone_to_owned()?,
            io::stdout().as_fd().try_clone_to_owned()?,
            io::stderr().as_fd().try_clone_to_owned()?,
        ];
        let mut file = File::create(log)?;
        let (mut reader, writer) = io::pipe()?;
        let null = File::open("/dev/null")?;
        match p::fork()? {
            None => {
                drop(writer);
                let mut term = echo.then(io::stderr);
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let _ = file.write_all(&buf[..n]);
                            if let Some(t) = term.as_mut() {
                                let _ = t.write_all(&buf[..n]);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                p::exit_now(0);
            }
            Some(pid) => {
                drop(reader);
                let _ = io::stdout().flush();
                dup_onto(null.as_fd(), 0)?;
                dup_onto(writer.as_fd(), 1)?;
                dup_onto(writer.as_fd(), 2)?;
                Ok(Capture {
                    saved,
                    copier: pid,
                    log: log.to_path_buf(),
                })
            }
        }
    }

    /// Put stdio back, wait for the copier, and give the last `n` lines of the output.
    pub fn finish(self, n: usize) -> Vec<String> {
        let _ = io::stdout().flush();
        for (fd, saved) in self.saved.iter().enumerate() {
            let _ = dup_onto(saved.as_fd(), fd as i32);
        }
        let _ = p::wait_pid(self.copier);
        last_lines(&self.log, n)
    }
}

/// The last `n` lines of a file (its last 64 KiB read).
fn last_lines(path: &Path, n: usize) -> Vec<String> {
    use std::io::Seek;
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(io::SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}
