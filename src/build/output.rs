//! A step's output: the box inherits this process's stdout and stderr, which point at a pipe
//! for the step's duration; a forked copier writes what comes through to a log file (for the
//! diagnostic's last lines) and, when asked, to the terminal. A fork rather than a thread: the
//! executor forks and makes namespaces, which a process with threads must not.
//!
//! On a terminal the copier can show a window of the last lines instead (BuildKit's display):
//! each line cut to the terminal's width, so a line is a row and the window can be redrawn
//! and, when the step succeeds, erased. The copier tells how many rows it left drawn by its
//! exit code.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::sys::fd::dup_onto;
use crate::sys::process as p;
use crate::sys::tty;

/// Where a step's output goes besides its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Off,
    /// All of it, to stderr.
    All,
    /// The last [`WINDOW`] lines, redrawn in place on the terminal at stderr.
    Window,
}

/// Rows of the window a step's output shows in on a terminal.
pub const WINDOW: usize = 6;

/// Output being captured; [`Capture::finish`] puts stdio back.
pub struct Capture {
    saved: [OwnedFd; 3],
    copier: i32,
    log: PathBuf,
}

impl Capture {
    /// Send this process's stdout and stderr to `log` (and to stderr as `echo` says), stdin
    /// from /dev/null.
    pub fn start(log: &Path, echo: Echo) -> io::Result<Capture> {
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
                let mut term = (echo == Echo::All).then(io::stderr);
                let mut window = (echo == Echo::Window).then(Window::new);
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let _ = file.write_all(&buf[..n]);
                            if let Some(t) = term.as_mut() {
                                let _ = t.write_all(&buf[..n]);
                            }
                            if let Some(w) = window.as_mut() {
                                w.take(&buf[..n]);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                // At most WINDOW: an exit code holds it.
                p::exit_now(window.map_or(0, |w| w.drawn as i32));
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

    /// Put stdio back, wait for the copier, and give the last `n` lines of the output and the
    /// rows of the window left on the terminal (0 unless [`Echo::Window`]).
    pub fn finish(self, n: usize) -> (Vec<String>, usize) {
        let _ = io::stdout().flush();
        for (fd, saved) in self.saved.iter().enumerate() {
            let _ = dup_onto(saved.as_fd(), fd as i32);
        }
        let rows = match p::wait_pid(self.copier) {
            Ok(p::Exit::Code(c)) => usize::try_from(c).unwrap_or(0).min(WINDOW),
            _ => 0,
        };
        (last_lines(&self.log, n), rows)
    }
}

/// Erase the `rows` rows a window left above the cursor (a step that succeeded folds away).
pub fn fold(rows: usize) {
    if rows > 0 {
        let _ = write!(io::stderr(), "\x1b[{rows}A\x1b[J");
    }
}

/// The copier's window: the last lines, the one being written included, drawn dim.
struct Window {
    lines: std::collections::VecDeque<Vec<u8>>,
    partial: Vec<u8>,
    drawn: usize,
    cols: usize,
}

impl Window {
    fn new() -> Window {
        let cols = tty::window_size(io::stderr().as_fd())
            .map_or(80, |w| usize::from(w.ws_col))
            .max(20);
        Window {
            lines: std::collections::VecDeque::new(),
            partial: Vec::new(),
            drawn: 0,
            cols,
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.lines.push_back(std::mem::take(&mut self.partial));
                if self.lines.len() > WINDOW {
                    self.lines.pop_front();
                }
            } else {
                self.partial.push(b);
            }
        }
        self.draw();
    }

    fn draw(&mut self) {
        let mut out = Vec::new();
        if self.drawn > 0 {
            out.extend_from_slice(format!("\x1b[{}A\x1b[J", self.drawn).as_bytes());
        }
        let partial = (!self.partial.is_empty()).then_some(&self.partial);
        let skip = usize::from(partial.is_some() && self.lines.len() == WINDOW);
        let shown: Vec<&Vec<u8>> = self.lines.iter().skip(skip).chain(partial).collect();
        for l in &shown {
            out.extend_from_slice(b"\x1b[2m  ");
            out.extend_from_slice(cut(&String::from_utf8_lossy(l), self.cols - 3).as_bytes());
            out.extend_from_slice(b"\x1b[0m\n");
        }
        self.drawn = shown.len();
        let _ = io::stderr().write_all(&out);
    }
}

/// A line as one row: escape sequences (colours) and control characters (a `\r`) dropped, a
/// tab a space, cut to `cols` characters.
fn cut(line: &str, cols: usize) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next_if_eq(&'[').is_some() {
                // A CSI sequence ends at its final byte, '@' to '~'.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        if out.chars().count() == cols {
            break;
        }
        match c {
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn a_line_is_cut_to_one_row_without_escapes() {
        assert_eq!(cut("\x1b[31mred\x1b[0m\tok\r", 80), "red ok");
        assert_eq!(cut("abcdef", 4), "abcd");
        assert_eq!(cut("", 4), "");
    }
}
