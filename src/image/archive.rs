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

/// Unpack a `.tar` or `.tar.gz` (whatever its name says) read from `file` into `dest`, hashing
/// the file's bytes on the way.
pub fn unpack_file<R: Read>(
    file: R,
    dest: &Path,
    opts: &Options,
    progress: Option<indicatif::ProgressBar>,
) -> Result<Unpacked, UnpackError> {
    let mut hashing = Hashing::new(file, progress);
    let stats = {
        let mut buffered = BufReader::with_capacity(256 * 1024, &mut hashing);
        let head = buffered.fill_buf().map_err(UnpackError::Read)?;
        if head.starts_with(&GZIP_MAGIC) {
            let gz = flate2::bufread::MultiGzDecoder::new(buffered);
            unpack::unpack(BufReader::with_capacity(256 * 1024, gz), dest, opts)?
        } else {
            unpack::unpack(buffered, dest, opts)?
        }
    };
    if stats.entries == 0 {
        return Err(UnpackError::Corrupt(
            "it holds no entries (is it a tar archive?)".into(),
        ));
    }
    // Whatever follows the stream still belongs to the file's digest.
    io::copy(&mut hashing, &mut io::sink()).map_err(UnpackError::Read)?;
    Ok(Unpacked {
        digest: hashing.digest(),
        stats,
    })
}
