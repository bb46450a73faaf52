//! Where a Parquet row group's finished pages wait until it closes: on the
//! heap up to a budget, past it in a temporary file on local disk.
//!
//! Parquet stores each column chunk contiguously, while batches arrive with
//! all columns interleaved, so the writer must hold every column's encoded
//! pages until the row group closes. On the heap alone that is the whole
//! compressed row group: ~37 MB for 1 Mi rows of TPC-H lineitem's 16
//! columns, but hundreds of megabytes for a table of a few hundred columns,
//! so memory grew with the table's width. Pages within
//! [`HEAP_PAGES_PER_ROW_GROUP`] stay on the heap (a narrow table pays
//! nothing); past it each page is written out as soon as it is finished and
//! read back one page at a time when the row group is spliced into the
//! output. Those bytes are written once and read once, from the page cache:
//! the file is anonymous and gone when the chunk is spliced, usually before
//! the kernel writes any of it to disk. Spilling every page instead cost
//! 4 % more time at SF 10 for 32 MB less peak memory (`benchmarks/results/
//! 2026-12-06-vm-scaling/NOTES.md`), which is why the budget exists.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use datafusion::parquet::arrow::arrow_writer::{
    PageKey, PageStore, PageStoreArgs, PageStoreFactory,
};
use datafusion::parquet::errors::{ParquetError, Result};

/// Finished pages one Parquet file keeps on the heap, across its columns,
/// before the next ones wait on disk. A row group of a narrow table fits
/// (lineitem: ~37 MB per 1 Mi rows); a wide one's memory stops here.
pub(super) const HEAP_PAGES_PER_ROW_GROUP: usize = 64 << 20;

/// Writes below this size (page headers, small pages) are gathered before
/// they reach the file, so a page costs one write, not two.
const WRITE_BUFFER: usize = 64 << 10;

/// Makes one [`SpillPages`] per column chunk; they share one heap budget.
#[derive(Debug)]
pub(super) struct SpillPagesFactory {
    /// Local scratch space: the system's temporary folder (`TMPDIR`), as for
    /// the archive's deflated parts — not the job folder, which is EFS in AWS.
    dir: PathBuf,
    budget: Arc<Budget>,
}

impl SpillPagesFactory {
    /// Pages spill to `dir` once `heap_bytes` of them are on the heap.
    pub(super) fn new(dir: PathBuf, heap_bytes: usize) -> Self {
        SpillPagesFactory {
            dir,
            budget: Arc::new(Budget {
                limit: heap_bytes,
                held: AtomicUsize::new(0),
            }),
        }
    }
}

/// Bytes of pages on the heap, across the column chunks being written.
#[derive(Debug)]
struct Budget {
    limit: usize,
    held: AtomicUsize,
}

impl Budget {
    /// Takes `n` bytes of the budget if they fit.
    fn take(&self, n: usize) -> bool {
        let before = self.held.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) <= self.limit {
            return true;
        }
        self.held.fetch_sub(n, Ordering::Relaxed);
        false
    }

    fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::Relaxed);
    }
}

impl PageStoreFactory for SpillPagesFactory {
    fn create(&self, _args: &PageStoreArgs<'_>) -> Result<Box<dyn PageStore>> {
        Ok(Box::new(SpillPages::new(
            self.dir.clone(),
            self.budget.clone(),
        )))
    }
}

/// Where one page is.
enum Page {
    /// On the heap, counted in the budget.
    Held(Bytes),
    /// In the file: (offset, length).
    Spilled(u64, usize),
    /// Handed back to the writer.
    Taken,
}

/// One column chunk's pages: on the heap while the shared budget lasts, then
/// in an anonymous temporary file, made at the first page that spills.
pub(super) struct SpillPages {
    dir: PathBuf,
    budget: Arc<Budget>,
    file: Option<BufWriter<File>>,
    /// Bytes spilled so far: where the next spilled page starts.
    end: u64,
    /// Bytes of this chunk's pages on the heap.
    held: usize,
    /// Each page, by key.
    pages: Vec<Page>,
}

impl SpillPages {
    fn new(dir: PathBuf, budget: Arc<Budget>) -> Self {
        SpillPages {
            dir,
            budget,
            file: None,
            end: 0,
            held: 0,
            pages: Vec::new(),
        }
    }

    fn failed(&self, what: &str, e: std::io::Error) -> ParquetError {
        ParquetError::General(format!(
            "{what} a finished page in {} (the system's temporary folder, TMPDIR): {e}",
            self.dir.display()
        ))
    }

    fn spill(&mut self, value: &[u8]) -> Result<Page> {
        if self.file.is_none() {
            let file = tempfile::tempfile_in(&self.dir).map_err(|e| self.failed("keeping", e))?;
            self.file = Some(BufWriter::with_capacity(WRITE_BUFFER, file));
        }
        let file = self.file.as_mut().unwrap_or_else(|| unreachable!());
        if let Err(e) = file.write_all(value) {
            return Err(self.failed("keeping", e));
        }
        let page = Page::Spilled(self.end, value.len());
        self.end += value.len() as u64;
        Ok(page)
    }

    fn read_back(&mut self, offset: u64, len: usize) -> Result<Bytes> {
        let Some(file) = self.file.as_mut() else {
            return Err(ParquetError::General("no spilled pages".into()));
        };
        // Pages are taken only after the last put: what is still buffered
        // goes to the file first (a no-op after the first take).
        if let Err(e) = file.flush() {
            return Err(self.failed("keeping", e));
        }
        let mut page = vec![0u8; len];
        if let Err(e) = file.get_ref().read_exact_at(&mut page, offset) {
            return Err(self.failed("reading back", e));
        }
        Ok(Bytes::from(page))
    }
}

impl PageStore for SpillPages {
    fn put(&mut self, value: Bytes) -> Result<PageKey> {
        let page = if self.budget.take(value.len()) {
            self.held += value.len();
            Page::Held(value)
        } else {
            self.spill(&value)?
        };
        self.pages.push(page);
        Ok(PageKey::new(self.pages.len() as u64 - 1))
    }

    fn take(&mut self, key: PageKey) -> Result<Bytes> {
        let page = usize::try_from(key.get())
            .ok()
            .and_then(|i| self.pages.get_mut(i))
            .map(|p| std::mem::replace(p, Page::Taken));
        match page {
            Some(Page::Held(bytes)) => {
                self.held -= bytes.len();
                self.budget.give_back(bytes.len());
                Ok(bytes)
            }
            Some(Page::Spilled(offset, len)) => self.read_back(offset, len),
            Some(Page::Taken) | None => Err(ParquetError::General(format!(
                "no finished page {} to take",
                key.get()
            ))),
        }
    }

    fn memory_size(&self) -> usize {
        self.held
    }
}

impl Drop for SpillPages {
    /// A chunk dropped unspliced (a failed write) frees its share of the budget.
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factory(dir: &std::path::Path, heap: usize) -> SpillPagesFactory {
        SpillPagesFactory::new(dir.to_path_buf(), heap)
    }

    fn store(f: &SpillPagesFactory) -> SpillPages {
        SpillPages::new(f.dir.clone(), f.budget.clone())
    }

    fn page(n: usize, salt: usize) -> Bytes {
        Bytes::from((0..n).map(|b| (b * 7 + salt) as u8).collect::<Vec<u8>>())
    }

    /// With no heap budget every page spills; small and large ones (around
    /// the write buffer's size) come back byte for byte, in any order.
    #[test]
    fn spilled_pages_come_back_as_put() {
        let dir = tempfile::tempdir().unwrap();
        let f = factory(dir.path(), 0);
        let mut s = store(&f);
        let sizes = [
            0,
            17,
            WRITE_BUFFER - 1,
            WRITE_BUFFER,
            3 * WRITE_BUFFER + 5,
            9,
        ];
        let pages: Vec<Bytes> = sizes.iter().enumerate().map(|(i, &n)| page(n, i)).collect();
        let keys: Vec<PageKey> = pages.iter().map(|p| s.put(p.clone()).unwrap()).collect();
        assert_eq!(s.memory_size(), 0, "nothing on the heap");
        assert!(s.file.is_some(), "the pages went to a file");
        // The dictionary page is put last and taken first.
        for &i in [5, 0, 1, 2, 3, 4].iter() {
            assert_eq!(s.take(keys[i]).unwrap(), pages[i], "page {i}");
        }
        assert!(s.take(keys[0]).is_err(), "a page is taken once");
        assert!(
            s.take(PageKey::new(99)).is_err(),
            "an unknown key is an error"
        );
        // Anonymous: nothing is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Pages stay on the heap while the budget shared by all columns lasts,
    /// spill past it, and give their share back when taken or dropped.
    #[test]
    fn pages_spill_past_the_shared_budget() {
        let dir = tempfile::tempdir().unwrap();
        let f = factory(dir.path(), 100);
        let (mut a, mut b) = (store(&f), store(&f));
        let ka = a.put(page(60, 1)).unwrap();
        let kb = b.put(page(60, 2)).unwrap();
        assert_eq!((a.memory_size(), b.memory_size()), (60, 0));
        assert!(a.file.is_none(), "a held page makes no file");
        assert!(b.file.is_some(), "the second column's page spilled");
        assert_eq!(a.take(ka).unwrap(), page(60, 1));
        assert_eq!(
            f.budget.held.load(Ordering::Relaxed),
            0,
            "taken: given back"
        );
        assert_eq!(b.take(kb).unwrap(), page(60, 2));
        // A chunk dropped before its splice frees its share.
        let mut c = store(&f);
        c.put(page(90, 3)).unwrap();
        assert_eq!(f.budget.held.load(Ordering::Relaxed), 90);
        drop(c);
        assert_eq!(f.budget.held.load(Ordering::Relaxed), 0);
    }

    /// A folder that cannot hold the file names itself in the error.
    #[test]
    fn an_unusable_folder_is_named() {
        let f = factory(std::path::Path::new("/nonexistent/ferry-spill"), 0);
        let e = store(&f)
            .put(Bytes::from_static(b"page"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ferry-spill"), "{e}");
    }
}
