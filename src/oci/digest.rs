//! A reader that verifies a content digest as it streams. The digest itself is a plan value
//! ([`crate::plan::digest`]), here at its old path too.

use std::io::{self, Read};

pub use crate::plan::digest::{Algorithm, Digest, DigestParseError, Hasher};

/// Why streamed content was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("content of {expected} has digest {actual}: refused")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content of {digest} is {actual} bytes, expected {expected}: refused")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("content of {digest} exceeds the expected {expected} bytes: refused")]
    TooLong { digest: Digest, expected: u64 },
}

/// Hashes and counts what passes through; refuses (as an I/O error) to pass more bytes than
/// expected, so a hostile server cannot fill the disk; `finish` checks size and digest.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    size: Option<u64>,
    hasher: Hasher,
    seen: u64,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, size: Option<u64>) -> Self {
        let hasher = Hasher::new(expected.algorithm());
        VerifyingReader {
            inner,
            expected,
            size,
            hasher,
            seen: 0,
        }
    }

    pub fn bytes_read(&self) -> u64 {
        self.seen
    }

    /// Check what was read against the expected size and digest (call after EOF).
    pub fn finish(self) -> Result<R, VerifyError> {
        if let Some(expected) = self.size {
            if self.seen != expected {
                return Err(VerifyError::SizeMismatch {
                    digest: self.expected,
                    expected,
                    actual: self.seen,
                });
            }
        }
        let actual = self.hasher.finish();
        if actual != self.expected {
            return Err(VerifyError::DigestMismatch {
                expected: self.expected,
                actual,
            });
        }
        Ok(self.inner)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen += n as u64;
        if let Some(expected) = self.size {
            if self.seen > expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    VerifyError::TooLong {
                        digest: self.expected.clone(),
                        expected,
                    },
                ));
            }
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_reader_checks_digest_and_size() {
        let data = b"hello world";
        let good = Digest::sha256_of(data);
        let mut r = VerifyingReader::new(&data[..], good.clone(), Some(11));
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert!(r.finish().is_ok());

        let mut r = VerifyingReader::new(&b"hello worle"[..], good.clone(), Some(11));
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert!(matches!(
            r.finish(),
            Err(VerifyError::DigestMismatch { .. })
        ));

        let mut r = VerifyingReader::new(&data[..], good.clone(), Some(5));
        assert!(io::copy(&mut r, &mut io::sink()).is_err());

        let mut r = VerifyingReader::new(&data[..5], good, Some(11));
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert!(matches!(r.finish(), Err(VerifyError::SizeMismatch { .. })));
    }
}
