//! Output files that hand their pages to the disk as they grow, so the
//! fsync that makes them durable at the end waits for the last few
//! megabytes instead of the whole file, at a point when nothing else is
//! left to do (`benchmarks/results/tuning.md`). Converted outputs,
//! `file.zip` and the load's artifacts are written through it.
//!
//! Files written once and read at most once, later (the load's artifacts),
//! can also leave the page cache as they reach the disk
//! ([`WritebackFile::create_write_once`]). When memory is full of cache,
//! as it is after any large load, every page a buffered write takes must
//! first be reclaimed from someone else's cache (on the build machine, one
//! such state made a buffered write ten times dearer than its copy,
//! `benchmarks/results/2026-12-07-vm-load-profile/`); handing back the
//! file's own pages once they are on disk gives the next writes free pages
//! instead, and leaves other programs' cache alone.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// A file being written, whose dirty pages are handed to the disk every
/// [`WRITEBACK_BYTES`].
pub struct WritebackFile {
    file: File,
    written: u64,
    handed: u64,
    /// Whether pages leave the page cache once on disk.
    drop_behind: bool,
    /// Up to where pages were let go (only with `drop_behind`).
    dropped: u64,
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
            drop_behind: false,
            dropped: 0,
        })
    }

    /// Creates (truncates) a file that is written once and read at most
    /// once, later: each stretch's pages are also let go of once the disk
    /// has them (one stretch behind the one being handed over, so the wait
    /// is for writeback that has had a stretch's time to finish), and the
    /// rest after the final sync. Reading it again costs a disk read
    /// instead of a memory copy.
    pub fn create_write_once(path: &Path) -> std::io::Result<WritebackFile> {
        Ok(WritebackFile {
            drop_behind: true,
            ..WritebackFile::create(path)?
        })
    }

    /// Makes everything written durable (the writeback started along the
    /// way has done most of it).
    pub fn sync_all(&mut self) -> std::io::Result<()> {
        self.file.sync_all()?;
        self.let_go(self.written);
        Ok(())
    }

    /// Makes the data written durable, without the metadata a later read
    /// does not need (the size is, as the file grew).
    pub fn sync_data(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        self.let_go(self.written);
        Ok(())
    }

    /// Starts writeback of what was written since the last call, without
    /// waiting for it; with drop-behind, first waits for the stretch handed
    /// over last time and lets its pages go. Advisory: the final fsync
    /// reports any I/O error.
    fn hand_over(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            if self.drop_behind && self.handed > self.dropped {
                // SAFETY: a valid descriptor and range; the call writes
                // this file's dirty pages in the range and waits for them.
                let waited = unsafe {
                    libc::sync_file_range(
                        self.file.as_raw_fd(),
                        self.dropped as libc::off64_t,
                        (self.handed - self.dropped) as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WAIT_BEFORE
                            | libc::SYNC_FILE_RANGE_WRITE
                            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                    )
                };
                if waited == 0 {
                    self.let_go(self.handed);
                }
            }
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

    /// With drop-behind, lets the page cache drop this file's pages up to
    /// `end`, which are on disk. Advisory: pages still dirty stay.
    fn let_go(&mut self, end: u64) {
        if !self.drop_behind || end <= self.dropped {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid descriptor and range; advice only.
            unsafe {
                libc::posix_fadvise(
                    self.file.as_raw_fd(),
                    self.dropped as libc::off64_t,
                    (end - self.dropped) as libc::off64_t,
                    libc::POSIX_FADV_DONTNEED,
                );
            }
        }
        self.dropped = end;
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

    /// The system's page size, the unit `mincore` reports in.
    #[cfg(target_os = "linux")]
    fn page_size() -> usize {
        // SAFETY: sysconf only reads a system constant.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
    }

    /// How many of the file's pages are in the page cache.
    #[cfg(target_os = "linux")]
    fn resident_pages(path: &Path) -> usize {
        use std::os::fd::AsRawFd;
        let f = File::open(path).unwrap();
        let len = f.metadata().unwrap().len() as usize;
        let mut vec = vec![0u8; len.div_ceil(page_size())];
        // SAFETY: a read-only shared mapping of an open file, unmapped
        // before return; mincore only reports residency into `vec`.
        unsafe {
            let addr = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            );
            assert_ne!(addr, libc::MAP_FAILED);
            assert_eq!(libc::mincore(addr, len, vec.as_mut_ptr()), 0);
            libc::munmap(addr, len);
        }
        vec.iter().filter(|&&b| b & 1 == 1).count()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn write_once_files_leave_the_page_cache_once_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let piece = vec![9u8; 1 << 20];
        let pages = (20 << 20) / page_size();
        let write = |name: &str, once: bool| {
            let path = dir.path().join(name);
            let mut f = if once {
                WritebackFile::create_write_once(&path)
            } else {
                WritebackFile::create(&path)
            }
            .unwrap();
            for _ in 0..20 {
                f.write_all(&piece).unwrap();
            }
            if once {
                // The first stretch was waited for and let go when the
                // second was handed over; the second is still on its way.
                assert_eq!((f.dropped, f.handed), (8 << 20, 16 << 20));
            }
            f.sync_data().unwrap();
            assert_eq!(f.dropped, if once { 20 << 20 } else { 0 });
            path
        };
        let kept = write("kept.bin", false);
        let once = write("once.bin", true);
        // A file written the usual way stays cached; one written once
        // keeps (almost) nothing there. Either reads back whole.
        assert!(
            resident_pages(&kept) > pages / 2,
            "{}",
            resident_pages(&kept)
        );
        assert!(
            resident_pages(&once) < pages / 10,
            "{}",
            resident_pages(&once)
        );
        for p in [kept, once] {
            let back = std::fs::read(&p).unwrap();
            assert_eq!(back.len(), 20 << 20);
            assert!(back.iter().all(|&b| b == 9));
        }
    }
}
