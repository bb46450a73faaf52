//! Text encodings other than UTF-8: `[source] encoding` (any WHATWG label:
//! `windows-1252`, `latin1`, `utf-16`, `shift_jis`, …) decodes the input to
//! UTF-8 as it is read, so every reader and the sniffer see UTF-8 and
//! nothing else changes. UTF-8, the default, is not wrapped at all: the fast
//! path stays as it is.
//!
//! A byte sequence the declared encoding does not allow becomes one byte
//! that is never valid UTF-8 (`0xFF`) in the decoded text, so the readers'
//! own check finds it on its line and the dataset's error policy applies (a
//! bad row, or an error naming file, line and offset).

use std::io::{self, Read};

/// The byte a malformed sequence becomes: never part of valid UTF-8.
pub const MALFORMED: u8 = 0xFF;

/// An input's text encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Encoding(Option<&'static encoding_rs::Encoding>);

impl Encoding {
    /// UTF-8: read as it is.
    pub const UTF8: Encoding = Encoding(None);

    /// The encoding a label names (WHATWG labels, case-insensitive:
    /// `utf-8`, `windows-1252`, `latin1`, `iso-8859-15`, `utf-16`,
    /// `utf-16be`, `shift_jis`, …); `None` for an unknown label. Note that
    /// WHATWG reads `latin1` and `iso-8859-1` as windows-1252, a superset.
    pub fn for_label(label: &str) -> Option<Encoding> {
        let e = encoding_rs::Encoding::for_label(label.trim().as_bytes())?;
        Some(if e == encoding_rs::UTF_8 {
            Encoding::UTF8
        } else {
            Encoding(Some(e))
        })
    }

    /// The encoding `[source] encoding` names (UTF-8 when unset).
    pub fn of(label: Option<&str>) -> Encoding {
        label.and_then(Encoding::for_label).unwrap_or_default()
    }

    /// Whether the input is read as it is (UTF-8).
    pub fn is_utf8(self) -> bool {
        self.0.is_none()
    }

    /// The encoding's canonical name (`windows-1252`, `UTF-16LE`, `UTF-8`).
    pub fn name(self) -> &'static str {
        self.0.map_or("UTF-8", |e| e.name())
    }

    /// `inner` decoded to UTF-8 (unchanged for UTF-8). A byte-order mark
    /// decides between UTF-8 and the two UTF-16s whatever the label, and is
    /// removed, as the WHATWG decode algorithm does.
    pub fn wrap<'a>(self, inner: Box<dyn Read + Send + 'a>) -> Box<dyn Read + Send + 'a> {
        match self.0 {
            None => inner,
            Some(e) => Box::new(Transcoder::new(inner, e)),
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const BUF: usize = 256 << 10;

/// A reader that decodes another encoding into UTF-8.
struct Transcoder<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    /// Decoded bytes, with room past `BUF` for the malformed-sequence byte.
    output: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    eof: bool,
    done: bool,
}

impl<R: Read> Transcoder<R> {
    fn new(inner: R, encoding: &'static encoding_rs::Encoding) -> Self {
        Transcoder {
            inner,
            decoder: encoding.new_decoder(),
            input: vec![0; BUF],
            in_pos: 0,
            in_len: 0,
            output: vec![0; BUF + 4],
            out_pos: 0,
            out_len: 0,
            eof: false,
            done: false,
        }
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out_len {
                let n = buf.len().min(self.out_len - self.out_pos);
                buf[..n].copy_from_slice(&self.output[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            if self.in_pos == self.in_len && !self.eof {
                let n = loop {
                    match self.inner.read(&mut self.input) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                self.in_pos = 0;
                self.in_len = n;
                self.eof = n == 0;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.in_pos..self.in_len],
                &mut self.output[..BUF],
                self.eof,
            );
            self.in_pos += read;
            self.out_pos = 0;
            self.out_len = written;
            match result {
                encoding_rs::DecoderResult::Malformed(..) => {
                    self.output[written] = MALFORMED;
                    self.out_len += 1;
                }
                encoding_rs::DecoderResult::InputEmpty if self.eof => self.done = true,
                encoding_rs::DecoderResult::InputEmpty | encoding_rs::DecoderResult::OutputFull => {
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(label: &str, bytes: &[u8], chunk: usize) -> Vec<u8> {
        let e = Encoding::for_label(label).unwrap();
        // A reader that hands out a few bytes at a time, to cross every boundary.
        struct Dribble<'a>(&'a [u8], usize);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.1.min(self.0.len()).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        e.wrap(Box::new(Dribble(bytes, chunk)))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn labels_name_encodings_and_utf8_is_not_wrapped() {
        assert!(Encoding::for_label("UTF-8").unwrap().is_utf8());
        assert!(Encoding::for_label("utf8").unwrap().is_utf8());
        assert_eq!(
            Encoding::for_label("latin1").unwrap().name(),
            "windows-1252"
        );
        assert_eq!(
            Encoding::for_label(" cp1252 ").unwrap().name(),
            "windows-1252"
        );
        assert_eq!(Encoding::for_label("utf-16").unwrap().name(), "UTF-16LE");
        assert!(Encoding::for_label("klingon").is_none());
        assert!(Encoding::of(None).is_utf8());
    }

    #[test]
    fn windows_1252_and_utf16_decode_to_utf8_across_reads() {
        let cp1252 = b"id;name\n1;Jos\xe9 \x80 caf\xe9\n";
        for chunk in [1, 3, 1 << 20] {
            assert_eq!(
                String::from_utf8(decode("windows-1252", cp1252, chunk)).unwrap(),
                "id;name\n1;José € café\n"
            );
        }
        let text = "a,b\n1,é€😀\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(|u| u.to_be_bytes()));
        for chunk in [1, 5, 1 << 20] {
            // The BOM decides the byte order and is removed.
            assert_eq!(decode("utf-16", &le, chunk), text.as_bytes());
            assert_eq!(decode("utf-16", &be, chunk), text.as_bytes());
        }
    }

    #[test]
    fn a_malformed_sequence_becomes_one_invalid_utf8_byte_in_its_place() {
        // An unpaired surrogate in UTF-16LE, on the second line.
        let mut bytes: Vec<u8> = "a\nb"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        bytes.extend([0x00, 0xD8]);
        bytes.extend("c\n".encode_utf16().flat_map(|u| u.to_le_bytes()));
        for chunk in [1, 1 << 20] {
            let out = decode("utf-16le", &bytes, chunk);
            assert_eq!(out, b"a\nb\xFFc\n");
            assert!(std::str::from_utf8(&out).is_err());
        }
    }
}
