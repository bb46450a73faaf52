//! Lines of a text input with a bound on their length: the one place where a
//! line-oriented reader (NDJSON, sniffing, samples) takes bytes, so a hostile
//! input — a decompression bomb that inflates to one endless line — ends in an
//! error after at most about twice the bound in memory, never in an OOM kill.

use std::io::BufRead;

/// Records up to this size grow their buffer the usual way (doubling).
const SMALL_RECORD: usize = 1 << 20;

/// Makes room for `need` bytes in a buffer holding one record of at most
/// `max` bytes (plus `slack` for the read that finds its end). Past 1 MiB the
/// room for the whole limit is reserved at once: doubling would leave a
/// series of freed blocks that an allocator which does not return memory
/// (mimalloc as the `mimalloc` feature sets it up, or any allocator whose
/// freed blocks sit below live ones) keeps resident, about twice the limit
/// again.
/// Reserved but unwritten pages cost no memory.
pub fn reserve_record(buf: &mut Vec<u8>, need: usize, max: usize, slack: usize) {
    if need <= buf.capacity() {
        return;
    }
    if need <= SMALL_RECORD {
        buf.reserve(need - buf.len());
    } else {
        buf.reserve_exact(max.max(need) + slack - buf.len());
    }
}

/// Why the next line could not be had.
#[derive(Debug)]
pub enum LineError {
    /// The line at `line` grew past the bound.
    TooLong {
        /// 1-based line number.
        line: u64,
        /// The bound in bytes.
        max: usize,
    },
    /// Reading (or decompressing) failed.
    Io(std::io::Error),
}

/// Reads `\n`-terminated lines, each at most `max` bytes.
pub struct Lines<R> {
    inner: R,
    max: usize,
    line: u64,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `inner`, each of at most `max` bytes (the `\n` aside).
    pub fn new(inner: R, max: usize) -> Self {
        Lines {
            inner,
            max,
            line: 0,
        }
    }

    /// Reads the next line into `out` (cleared first, `\n` and `\r` removed)
    /// and returns its 1-based number, or `None` at the end of the input.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, LineError> {
        out.clear();
        let mut any = false;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            };
            if buf.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let body = if done { take - 1 } else { take };
            if out.len() + body > self.max {
                return Err(LineError::TooLong {
                    line: self.line + 1,
                    max: self.max,
                });
            }
            reserve_record(out, out.len() + body, self.max, 0);
            out.extend_from_slice(&buf[..body]);
            self.inner.consume(take);
            if done {
                break;
            }
        }
        if out.last() == Some(&b'\r') {
            out.pop();
        }
        self.line += 1;
        Ok(Some(self.line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_and_bounded() {
        let text = b"a\r\nbb\n\nccc";
        let mut lines = Lines::new(&text[..], 3);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        while let Some(n) = lines.next_into(&mut out).unwrap() {
            seen.push((n, out.clone()));
        }
        assert_eq!(
            seen,
            vec![
                (1, b"a".to_vec()),
                (2, b"bb".to_vec()),
                (3, Vec::new()),
                (4, b"ccc".to_vec())
            ]
        );
        let mut lines = Lines::new(&b"ok\ntoo long\n"[..], 4);
        assert_eq!(lines.next_into(&mut out).unwrap(), Some(1));
        assert!(matches!(
            lines.next_into(&mut out),
            Err(LineError::TooLong { line: 2, max: 4 })
        ));
    }
}
