//! Reading an archive file: its sha256 (of the bytes as stored), gzip detected by its magic
//! number, progress on a terminal.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::unpack::{self, Options, Stats, UnpackError};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Hashes every byte read through it, and moves a progress bar.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    progress: Option<indicatif::ProgressBar>,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R, progress: Option<indicatif::ProgressBar>) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            read: 0,
            progress,
        }
    }

    /// `sha256:<hex>` of everything read so far.
    pub fn digest(self) -> String {
        if let Some(p) = &self.progress {
            p.finish_and_clear();
        }
        format!("sha256:{}", hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        let before = self.read >> 20;
        self.read += n as u64;
        if let Some(p) = &self.progress {
            // Redraw at most once per MiB: the bar's own rate limit still costs a clock read.
            if self.read >> 20 != before {
                p.set_position(self.read);
            }
        }
        Ok(n)
    }
}

/// The sha256 of a file, `sha256:<hex>`.
pub fn digest_file(path: &Path) -> io::Result<String> {
    let mut h = Hashing::new(File::open(path)?, None);
    io::copy(&mut h, &mut io::sink())?;
    Ok(h.digest())
}

/// A progress bar on stderr when it is a terminal; `None` otherwise.
pub fn progress_bar(total: u64, label: &str) -> Option<indicatif::ProgressBar> {
    if !io::IsTerminal::is_terminal(&io::stderr()) {
        return None;
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr_with_hz(10),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(label.to_string());
    Some(pb)
}

/// What unpacking an archive file produced.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Unpacked {
    /// sha256 of the file as stored (compressed or not).
    pub digest: String,
    pub stats: Stats,
}

/// Chunks handed from the reading thread to the unpacking one.
pub(super) const CHUNK: usize = 256 * 1024;

/// Reads the chunks another thread sends; an `Err` chunk is that thread's read error.
pub(super) struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    pub(super) fn new(rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>) -> ChannelReader {
        ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Fill `buf` as far as the stream goes; 0 at its end.
pub(super) fn read_chunk(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Read, hash and decompress `file`, sending the tar stream down `tx`; the file's digest.
/// Stops early (without error) when the receiving side has gone.
fn produce<R: Read>(
    file: R,
    progress: Option<indicatif::ProgressBar>,
    tx: std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<String> {
    let mut hashing = Hashing::new(file, progress);
    {
        let mut buffered = BufReader::with_capacity(CHUNK, &mut hashing);
        let gz = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
        let mut src: Box<dyn Read + '_> = if gz {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        loop {
            let mut buf = vec![0u8; CHUNK];
            match read_chunk(&mut src, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).is_err() {
                        return Ok(String::new());
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return Ok(String::new());
                }
            }
        }
    }
    drop(tx);
    // Whatever follows the stream still belongs to the file's digest.
    io::copy(&mut hashing, &mut io::sink())?;
    Ok(hashing.digest())
}

/// Unpack a `.tar` or `.tar.gz` (whatever its name says) read from `file` into `dest`, hashing
/// the file's bytes on the way. Reading, hashing and decompressing run on a second thread (as
/// `tar -z` runs gzip in a second process), joined before this returns.
pub fn unpack_file<R: Read + Send>(
    file: R,
    dest: &Path,
    opts: &Options,
    progress: Option<indicatif::ProgressBar>,
) -> Result<Unpacked, UnpackError> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        let producer = scope.spawn(move || produce(file, progress, tx));
        let reader = ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        let stats = unpack::unpack(reader, dest, opts);
        let digest = producer
            .join()
            .map_err(|_| UnpackError::Read(io::Error::other("the reading thread panicked")))?;
        let stats = stats?;
        let digest = digest.map_err(UnpackError::Read)?;
        if stats.entries == 0 {
            return Err(UnpackError::Corrupt(
                "it holds no entries (is it a tar archive?)".into(),
            ));
        }
        Ok(Unpacked { digest, stats })
    })
}

/// What a file given to `ADD` (a build's `extract`) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarKind {
    /// A tar archive, plain, gzip or zstd: it is unpacked.
    Tar,
    /// Compressed in a way foxbox does not read (bzip2, xz): named, so the step can say so.
    Unreadable(&'static str),
    /// Anything else: copied as it is.
    NotTar,
}

/// Open `path` as a tar stream, decompressed (gzip or zstd, told by the content).
pub fn open_tar(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let mut buffered = BufReader::with_capacity(CHUNK, File::open(path)?);
    let head = buffered.fill_buf()?;
    Ok(match crate::oci::layer::sniff(head) {
        crate::oci::layer::Compression::None => Box::new(buffered),
        crate::oci::layer::Compression::Gzip => {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        }
        crate::oci::layer::Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?)
        }
    })
}

/// Whether `path` is a tar archive (its first header's `ustar` magic, after decompression),
/// as Docker's `ADD` tells the archives it unpacks from the files it copies.
pub fn tar_kind(path: &Path) -> io::Result<TarKind> {
    let mut head = [0u8; 6];
    let n = read_chunk(&mut File::open(path)?, &mut head)?;
    if head[..n].starts_with(b"BZh") {
        return Ok(TarKind::Unreadable("bzip2"));
    }
    if head[..n].starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok(TarKind::Unreadable("xz"));
    }
    let mut block = [0u8; 512];
    // A file that does not decompress is not an archive, only a file to copy.
    let n = match open_tar(path).and_then(|mut r| read_chunk(&mut r, &mut block)) {
        Ok(n) => n,
        Err(_) => return Ok(TarKind::NotTar),
    };
    Ok(if n == 512 && block[257..262] == *b"ustar" {
        TarKind::Tar
    } else {
        TarKind::NotTar
    })
}
