//! Compressed inputs: detected by extension (or set in the spec) and
//! decompressed as a stream, so memory does not grow with the file.

use std::io::{BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A compression codec for text inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Decide by file extension.
    #[default]
    Auto,
    /// Not compressed.
    None,
    /// gzip (`.gz`), multi-member files included.
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
    /// bzip2 (`.bz2`).
    Bzip2,
    /// xz (`.xz`).
    Xz,
}

impl Compression {
    /// The codec a file name implies.
    pub fn from_path(path: &Path) -> Compression {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("gz" | "gzip") => Compression::Gzip,
            Some("zst" | "zstd") => Compression::Zstd,
            Some("bz2") => Compression::Bzip2,
            Some("xz") => Compression::Xz,
            _ => Compression::None,
        }
    }

    /// Resolves `Auto` against a path.
    pub fn resolve(self, path: &Path) -> Compression {
        match self {
            Compression::Auto => Compression::from_path(path),
            other => other,
        }
    }

    /// Wraps a reader with the decompressor (`Auto` must be resolved first).
    pub fn reader<'a>(
        self,
        inner: impl Read + Send + 'a,
    ) -> std::io::Result<Box<dyn Read + Send + 'a>> {
        const BUF: usize = 256 * 1024;
        let inner = BufReader::with_capacity(BUF, FromFile(inner));
        let (decoder, codec): (Box<dyn Read + Send + 'a>, _) = match self {
            Compression::Auto | Compression::None => return Ok(Box::new(inner.into_inner().0)),
            Compression::Gzip => (Box::new(flate2::read::MultiGzDecoder::new(inner)), "gzip"),
            Compression::Zstd => (
                Box::new(zstd::stream::read::Decoder::with_buffer(inner)?),
                "zstd",
            ),
            Compression::Bzip2 => (Box::new(bzip2::read::MultiBzDecoder::new(inner)), "bzip2"),
            Compression::Xz => (
                Box::new(liblzma::read::XzDecoder::new_multi_decoder(inner)),
                "xz",
            ),
        };
        Ok(Box::new(Decoding {
            inner: decoder,
            codec,
        }))
    }

    /// The file name with this codec's extension removed (`a.csv.gz` → `a.csv`).
    pub fn strip_extension(self, name: &str) -> &str {
        if self == Compression::None || self == Compression::Auto {
            return name;
        }
        match name.rfind('.') {
            Some(i) => &name[..i],
            None => name,
        }
    }
}

/// The file under a decompressor: its read errors are marked, so that
/// [`Decoding`] can tell a failing disk from bad compressed bytes.
struct FromFile<R>(R);

#[derive(Debug)]
struct FileFault(std::io::Error);

impl std::fmt::Display for FileFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for FileFault {}

impl<R: Read> Read for FromFile<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), FileFault(e)))
    }
}

/// A decompressor whose errors say what they are: the file's own read errors
/// pass through unchanged (retrying may help); everything else is corrupt or
/// truncated input, `InvalidData` (retrying cannot help).
struct Decoding<'a> {
    inner: Box<dyn Read + Send + 'a>,
    codec: &'static str,
}

impl Read for Decoding<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.get_ref().is_some_and(|x| x.is::<FileFault>()) {
                let kind = e.kind();
                return match e.into_inner().map(|x| x.downcast::<FileFault>()) {
                    Some(Ok(f)) => f.0,
                    _ => std::io::Error::from(kind),
                };
            }
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("corrupt or truncated {} data: {e}", self.codec),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trips_every_codec() {
        let text = b"a,b\n1,2\n".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&text[..], 1).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&text).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&text).unwrap();
        let xz = xz.finish().unwrap();
        for (codec, data) in [
            (Compression::Gzip, gz),
            (Compression::Zstd, zst),
            (Compression::Bzip2, bz),
            (Compression::Xz, xz),
        ] {
            let mut out = Vec::new();
            codec
                .reader(&data[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, text, "{codec:?}");
        }
        assert_eq!(
            Compression::from_path(Path::new("x.CSV.GZ")),
            Compression::Gzip
        );
        assert_eq!(Compression::Gzip.strip_extension("x.csv.gz"), "x.csv");
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let zst = zstd::encode_all(&b"hello world".repeat(100)[..], 1).unwrap();
        let mut out = Vec::new();
        let r = Compression::Zstd
            .reader(&zst[..zst.len() / 2])
            .unwrap()
            .read_to_end(&mut out);
        assert!(r.is_err());
    }
}
