//! Layer blobs as tar streams: gzip, zstd or uncompressed, with the uncompressed content
//! checked against the config's diff id.

use std::io::{self, BufRead, BufReader, Read};

use super::blobstore::{BlobError, BlobStore};
use super::digest::{Digest, VerifyError, VerifyingReader};
use super::manifest::{
    Descriptor, DOCKER_LAYER_FOREIGN_GZIP, DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_GZIP,
    OCI_LAYER_NONDIST_GZIP, OCI_LAYER_ZSTD,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("unsupported layer media type {0:?}")]
    UnsupportedType(String),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("decompressing layer {digest}: {source}")]
    Io { digest: Digest, source: io::Error },
    #[error("layer {layer}: uncompressed content does not match its diff id: {source}")]
    DiffId { layer: Digest, source: VerifyError },
}

/// The compression a layer media type declares (Docker's and OCI's names).
pub fn compression_of(media_type: &str) -> Result<Compression, LayerError> {
    match media_type {
        OCI_LAYER | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_FOREIGN_GZIP => {
            Ok(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            Ok(Compression::Zstd)
        }
        other => Err(LayerError::UnsupportedType(other.to_string())),
    }
}

/// The compression a stream actually has, from its first bytes. Some images label
/// uncompressed layers as gzip; the content decides.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A decompressed layer: read the tar from it, then call [`LayerReader::finish`], which drains
/// what the tar reader left (end-of-archive padding) and checks the diff id.
pub struct LayerReader {
    inner: VerifyingReader<Box<dyn Read + Send>>,
    layer: Digest,
    check: bool,
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl LayerReader {
    pub fn finish(mut self) -> Result<(), LayerError> {
        io::copy(&mut self.inner, &mut io::sink()).map_err(|source| LayerError::Io {
            digest: self.layer.clone(),
            source,
        })?;
        if !self.check {
            return Ok(());
        }
        let layer = self.layer;
        self.inner
            .finish()
            .map(|_| ())
            .map_err(|source| LayerError::DiffId { layer, source })
    }
}

/// Open a stored layer as a tar stream. With `diff_id` (from the image config's
/// `rootfs.diff_ids`, same index as the layer) the uncompressed bytes are verified.
pub fn open_layer(
    store: &dyn BlobStore,
    layer: &Descriptor,
    diff_id: Option<&Digest>,
) -> Result<LayerReader, LayerError> {
    compression_of(&layer.media_type)?;
    let f = store.open(&layer.digest)?;
    decompress(Box::new(f), &layer.digest, diff_id)
}

/// Decompress any reader of layer bytes (the compression sniffed from the content).
pub fn decompress(
    raw: Box<dyn Read + Send>,
    layer: &Digest,
    diff_id: Option<&Digest>,
) -> Result<LayerReader, LayerError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let head = buffered.fill_buf().map_err(|source| LayerError::Io {
        digest: layer.clone(),
        source,
    })?;
    let stream: Box<dyn Read + Send> = match sniff(head) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(
            |source| LayerError::Io {
                digest: layer.clone(),
                source,
            },
        )?),
    };
    // Without a diff id the hash is computed against an arbitrary digest and never checked.
    let (expected, check) = match diff_id {
        Some(d) => (d.clone(), true),
        None => (layer.clone(), false),
    };
    Ok(LayerReader {
        inner: VerifyingReader::new(stream, expected, None),
        layer: layer.clone(),
        check,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "hello.txt", &b"hello"[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn read_all(raw: Vec<u8>, diff: &Digest) -> Result<Vec<String>, LayerError> {
        let blob = Digest::sha256_of(&raw);
        let mut r = decompress(Box::new(io::Cursor::new(raw)), &blob, Some(diff))?;
        let mut names = Vec::new();
        {
            let mut a = tar::Archive::new(&mut r);
            for e in a.entries().unwrap() {
                names.push(e.unwrap().path().unwrap().display().to_string());
            }
        }
        r.finish()?;
        Ok(names)
    }

    #[test]
    fn gzip_zstd_and_plain_layers_with_diff_ids() {
        let t = tar_bytes();
        let diff = Digest::sha256_of(&t);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&t[..], 3).unwrap();
        for raw in [t.clone(), gz, zs] {
            assert_eq!(read_all(raw, &diff).unwrap(), ["hello.txt"]);
        }
        let wrong = Digest::sha256_of(b"x");
        assert!(matches!(
            read_all(t, &wrong),
            Err(LayerError::DiffId { .. })
        ));
        assert!(compression_of("application/vnd.oci.image.layer.v1.tar+bzip2").is_err());
        assert_eq!(compression_of(OCI_LAYER_ZSTD).unwrap(), Compression::Zstd);
    }
}
