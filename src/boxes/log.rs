//! Box logs in the CRI line format: `<RFC 3339 time> <stream> <F|P> <text>`, one line per line
//! the box printed (`F`), or per piece of an over-long or unterminated line (`P`).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Lines longer than this are split into partial (`P`) records.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Appends what a box prints to its log, one record per line, with the time it arrived.
///
/// On a full disk, records are dropped (the box keeps running) and counted; the first record
/// that fits again is preceded by one marker line on stderr saying how many were dropped and
/// why. A record is whole or absent: a write cut short by the full disk is cut off again.
pub struct LogWriter {
    file: File,
    path: PathBuf,
    partial: [Vec<u8>; 2],
    /// The log's length after the last whole record.
    len: u64,
    /// Records dropped since the disk filled (0: none are being dropped).
    dropped: u64,
}

impl LogWriter {
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(crate::store::private::FILE_MODE)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            partial: [Vec::new(), Vec::new()],
            len,
            dropped: 0,
        })
    }

    /// Record bytes read from one of the box's streams.
    pub fn write(&mut self, stream: Stream, mut bytes: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        while let Some(nl) = bytes.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[idx]);
            line.extend_from_slice(&bytes[..nl]);
            self.record(stream, 'F', &line)?;
            bytes = &bytes[nl + 1..];
        }
        self.partial[idx].extend_from_slice(bytes);
        while self.partial[idx].len() >= MAX_LINE {
            let rest = self.partial[idx].split_off(MAX_LINE);
            let piece = std::mem::replace(&mut self.partial[idx], rest);
            self.record(stream, 'P', &piece)?;
        }
        Ok(())
    }

    /// Write out unterminated text (the stream ended).
    pub fn flush_partial(&mut self, stream: Stream) -> io::Result<()> {
        let piece = std::mem::take(&mut self.partial[stream as usize]);
        if !piece.is_empty() {
            self.record(stream, 'P', &piece)?;
        }
        Ok(())
    }

    fn record(&mut self, stream: Stream, tag: char, text: &[u8]) -> io::Result<()> {
        let time = humantime::format_rfc3339_nanos(SystemTime::now());
        let mut rec = Vec::with_capacity(text.len() + 48);
        write!(rec, "{time} {} {tag} ", stream.name())?;
        rec.extend_from_slice(text);
        rec.push(b'\n');
        if self.dropped > 0 {
            let marker = format!(
                "{time} stderr F foxbox: {} log lines dropped: {}\n",
                self.dropped,
                crate::store::space::no_space(&self.path)
            );
            if !self.append(marker.as_bytes())? {
                self.dropped += 1;
                return Ok(());
            }
            self.dropped = 0;
        }
        if !self.append(&rec)? {
            self.dropped += 1;
        }
        Ok(())
    }

    /// Append one record in one write (records stay whole even if a reader races the
    /// writer); false when the disk is full, with nothing of it left in the log.
    fn append(&mut self, rec: &[u8]) -> io::Result<bool> {
        match self.file.write_all(rec) {
            Ok(()) => {
                self.len += rec.len() as u64;
                Ok(true)
            }
            Err(e) if crate::store::space::is_full(&e) => {
                let _ = self.file.set_len(self.len);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: SystemTime,
    pub time_text: String,
    pub stream: Stream,
    /// False for a piece of a longer line (no newline after it).
    pub full: bool,
    pub text: Vec<u8>,
}

/// Parse one record line (without its newline).
pub fn parse(line: &[u8]) -> Option<Record> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time_text = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let time = humantime::parse_rfc3339(&time_text).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let full = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some(Record {
        time,
        time_text,
        stream,
        full,
        text: parts.next().unwrap_or_default().to_vec(),
    })
}

/// `logs --since`: a duration back from `now` (`10m`, `1h30m`), Unix seconds, or an RFC 3339
/// time. `Err` says what a valid one looks like; a time before 1970 or too far off is refused,
/// not wrapped.
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let too_far = || format!("--since {s:?} is too far from now");
    if let Ok(d) = humantime::parse_duration(s) {
        return now
            .checked_sub(d)
            .filter(|t| *t >= std::time::UNIX_EPOCH)
            .ok_or_else(too_far);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return std::time::UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(too_far);
    }
    humantime::parse_rfc3339_weak(s).map_err(|_| {
        format!(
            "--since {s:?}: expected a duration (10m, 1h30m), Unix seconds, or an RFC 3339 time"
        )
    })
}

/// What `foxbox logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub since: Option<SystemTime>,
    pub tail: Option<usize>,
    pub timestamps: bool,
}

/// Print records to the caller's stdout and stderr, each to the stream it came from.
fn emit(r: &Record, q: &Query, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    let w: &mut dyn Write = match r.stream {
        Stream::Stdout => out,
        Stream::Stderr => err,
    };
    if q.timestamps {
        write!(w, "{} ", r.time_text)?;
    }
    w.write_all(&r.text)?;
    if r.full {
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Print the stored log; with `follow`, keep printing new records until `done()` says the
/// box has exited (and everything it wrote is printed).
pub fn show(
    path: &Path,
    q: &Query,
    follow: bool,
    mut done: impl FnMut() -> bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && follow => {
            // The supervisor makes the log at start; wait for it.
            loop {
                if let Ok(f) = File::open(path) {
                    break f;
                }
                if done() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let keep = |r: &Record| q.since.is_none_or(|s| r.time >= s);
    let mut records = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
            break;
        }
        if let Some(r) = parse(&line[..line.len() - 1]).filter(keep) {
            records.push(r);
        }
    }
    // A record without its newline is still being written: re-read it with the rest.
    let mut pos = reader.stream_position()? - line.len() as u64;
    let skip = q.tail.map_or(0, |n| records.len().saturating_sub(n));
    for r in &records[skip..] {
        emit(r, q, out, err)?;
    }
    out.flush()?;
    err.flush()?;
    if !follow {
        return Ok(());
    }
    let mut file = reader.into_inner();
    loop {
        let finished = done();
        file.seek(SeekFrom::Start(pos))?;
        let mut reader = BufReader::new(&mut file);
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            pos += n as u64;
            if let Some(r) = parse(&line[..line.len() - 1]).filter(keep) {
                emit(&r, q, out, err)?;
            }
        }
        out.flush()?;
        err.flush()?;
        if finished {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_podmans_forms_and_never_wraps() {
        use std::time::UNIX_EPOCH;
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_since("10m", now), Ok(now - Duration::from_secs(600)));
        assert_eq!(
            parse_since("5", now),
            Ok(UNIX_EPOCH + Duration::from_secs(5))
        );
        assert!(parse_since("1970-01-02T00:00:00Z", now).is_ok());
        let e = parse_since("yesterday", now).unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
        // Once a panic: the time arithmetic overflowed (found by the `since` fuzz target's
        // seeds).
        assert!(parse_since("18446744073709551615", now)
            .unwrap_err()
            .contains("too far"));
        assert!(parse_since("100y", now).unwrap_err().contains("too far"));
    }

    fn read_all(path: &Path, q: &Query) -> (String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        show(path, q, false, || true, &mut o, &mut e).unwrap();
        (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    #[test]
    fn lines_split_across_writes_and_streams_stay_apart() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nworld\nno newline").unwrap();
        w.flush_partial(Stream::Stdout).unwrap();
        let (o, e) = read_all(&p, &Query::default());
        assert_eq!(o, "hello\nworld\nno newline");
        assert_eq!(e, "oops\n");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.lines().all(|l| parse(l.as_bytes()).is_some()),
            "{text}"
        );
    }

    #[test]
    fn tail_and_timestamps() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write(Stream::Stdout, b"1\n2\n3\n").unwrap();
        let q = Query {
            tail: Some(2),
            ..Query::default()
        };
        assert_eq!(read_all(&p, &q).0, "2\n3\n");
        let q = Query {
            timestamps: true,
            ..Query::default()
        };
        let o = read_all(&p, &q).0;
        assert!(o.lines().all(|l| l.contains("Z ")), "{o}");
        let later = Query {
            since: Some(SystemTime::now() + Duration::from_secs(60)),
            ..Query::default()
        };
        assert_eq!(read_all(&p, &later).0, "");
    }

    #[test]
    fn long_lines_become_partial_records() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let (o, _) = read_all(&p, &Query::default());
        assert_eq!(o.len(), long.len() + 1);
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 3);
    }

    #[test]
    fn follow_prints_what_arrives_until_done() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write(Stream::Stdout, b"first\n").unwrap();
        let p2 = p.clone();
        let h = std::thread::spawn(move || {
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let start = std::time::Instant::now();
            show(
                &p2,
                &Query::default(),
                true,
                || start.elapsed() > Duration::from_millis(600),
                &mut o,
                &mut e,
            )
            .unwrap();
            String::from_utf8(o).unwrap()
        });
        std::thread::sleep(Duration::from_millis(200));
        w.write(Stream::Stdout, b"second\n").unwrap();
        assert_eq!(h.join().unwrap(), "first\nsecond\n");
    }
}
