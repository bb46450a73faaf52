//! Output files that hand their pages to the disk as they grow, so the
//! fsync that makes them durable at the end waits for the last few
//! megabytes instead of the whole file, at a point when nothing else is
//! left to do (`benchmarks/results/tuning.md`). Converted outputs and
//! `file.zip` are written through it.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// A file being written, whose dirty pages are handed to the disk every
/// [`WRITEBACK_BYTES`].
pub struct WritebackFile {
    file: File,
    written: u64,
    handed: u64,
}

/// How much a [`WritebackFile`] writes between writeback requests.
pub const WRITEBACK_BYTES: u64 = 8 << 20;

impl WritebackFile {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> std::io::Result<WritebackFile> {
        Ok(WritebackFile {
            file: File::create(path)?,
            written: 0,
            handed: 0,
        })
    }

    /// Makes everything written durable (the writeback started along the
    /// way has done most of it).
    pub fn sync_all(&self) -> std::io::Result<()> {
        self.file.sync_all()
    }

    /// Starts writeback of what was written since the last call, without
    /// waiting for it. Advisory: the final fsync reports any I/O error.
    fn hand_over(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid descriptor and range; the call only schedules
            // writeback of this file's dirty pages.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.handed as libc::off64_t,
                    (self.written - self.handed) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.handed = self.written;
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.handed >= WRITEBACK_BYTES {
            self.hand_over();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// For writers that go back to patch a header (zip): the byte count that
/// paces writeback goes on counting every byte written, wherever it lands,
/// which is all the pacing needs.
impl Seek for WritebackFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.file.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_hand_their_pages_over_as_they_grow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let mut f = WritebackFile::create(&path).unwrap();
        let piece = vec![7u8; 1 << 20];
        for _ in 0..20 {
            f.write_all(&piece).unwrap();
        }
        // Two full 8 MiB stretches were handed over; the last 4 MiB wait for the fsync.
        assert_eq!(f.handed, 16 << 20);
        assert_eq!(f.written, 20 << 20);
        f.sync_all().unwrap();
        drop(f);
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len(), 20 << 20);
        assert!(back.iter().all(|&b| b == 7));
    }
}
