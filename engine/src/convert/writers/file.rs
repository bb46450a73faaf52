//! What every writer shares: outputs written under a temporary name and
//! sealed (fsync, rename) on success; files that hand their pages to the
//! disk as they grow; byte sinks (optionally compressed) for the text
//! formats; record sinks for the stateful formats (Arrow IPC, Avro).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;

use super::csv::TextCompression;
use super::{Chunk, ChunkEncoder, ChunkSink};
use crate::error::FerryError;

/// The error of a write to `path`.
pub(super) fn io(path: &Path) -> impl Fn(std::io::Error) -> FerryError + '_ {
    move |e| FerryError::io(format!("writing {}", path.display()), e)
}

/// The temporary name an output is written under.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".ferry-tmp");
    path.with_file_name(name)
}

/// An output file that hands its pages to the disk as it grows (see
/// [`ferry_connectors::writeback::WritebackFile`]).
pub(super) use ferry_connectors::writeback::WritebackFile as OutFile;

/// Makes a finished temporary file durable and gives it its final name.
pub(super) fn seal(
    mut file: OutFile,
    tmp: &Path,
    path: PathBuf,
) -> Result<Vec<PathBuf>, FerryError> {
    file.sync_all().map_err(io(tmp))?;
    commit(tmp, &path)?;
    Ok(vec![path])
}

/// Renames a finished temporary output to its final name.
pub(super) fn commit(tmp: &Path, path: &Path) -> Result<(), FerryError> {
    std::fs::rename(tmp, path).map_err(|e| {
        FerryError::io(
            format!("renaming {} to {}", tmp.display(), path.display()),
            e,
        )
    })
}

/// The encoder of the stateful formats: the sink does the work.
pub(super) struct PassThrough;
impl ChunkEncoder for PassThrough {
    fn encode(&self, batch: RecordBatch, _first_row: u64) -> Result<Chunk, FerryError> {
        Ok(Chunk::Batch(batch))
    }
}

/// The compressor over an output file.
pub(super) enum Compressor {
    Plain(BufWriter<OutFile>),
    Gzip(flate2::write::GzEncoder<BufWriter<OutFile>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<OutFile>>),
}

impl Compressor {
    fn out(&mut self) -> &mut dyn Write {
        match self {
            Compressor::Plain(w) => w,
            Compressor::Gzip(w) => w,
            Compressor::Zstd(w) => w,
        }
    }

    /// Writes the compressor's trailer (errors included: a failed finish is a
    /// failed output, never a silently truncated one) and returns the file.
    fn finish(self) -> std::io::Result<OutFile> {
        let buffered = match self {
            Compressor::Plain(w) => w,
            Compressor::Gzip(w) => w.finish()?,
            Compressor::Zstd(w) => w.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

/// A file of bytes, optionally compressed.
pub(super) struct ByteSink {
    path: PathBuf,
    tmp: PathBuf,
    out: Compressor,
}

impl ByteSink {
    /// Creates the file (under its temporary name) with its compressor.
    pub(super) fn create(
        path: &Path,
        compression: TextCompression,
    ) -> Result<ByteSink, FerryError> {
        let tmp = temp_path(path);
        let file = BufWriter::with_capacity(1 << 20, OutFile::create(&tmp).map_err(io(&tmp))?);
        let out = match compression {
            TextCompression::None => Compressor::Plain(file),
            TextCompression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            )),
            TextCompression::Zstd => {
                Compressor::Zstd(zstd::stream::write::Encoder::new(file, 3).map_err(io(&tmp))?)
            }
        };
        Ok(ByteSink {
            path: path.to_path_buf(),
            tmp,
            out,
        })
    }
}

impl ChunkSink for ByteSink {
    fn write(&mut self, chunk: Chunk, _rows: u64) -> Result<(), FerryError> {
        match chunk {
            Chunk::Bytes(b) => self.out.out().write_all(&b).map_err(io(&self.tmp)),
            _ => Err(FerryError::Internal("a byte sink got a batch".into())),
        }
    }
    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>, FerryError> {
        let file = self.out.finish().map_err(io(&self.tmp))?;
        seal(file, &self.tmp, self.path)
    }
}

/// Arrow IPC (file or stream) and Avro: stateful writers over one file.
pub(super) struct RecordSink<W> {
    pub(super) path: PathBuf,
    pub(super) tmp: PathBuf,
    pub(super) writer: Option<W>,
}

/// The operations the stateful record writers share.
pub(super) trait RecordWriter: Send {
    /// Writes one batch.
    fn put(&mut self, batch: &RecordBatch) -> Result<(), String>;
    /// Ends the file and returns it, to be sealed.
    fn done(self) -> Result<BufWriter<OutFile>, String>;
}

impl<W: RecordWriter> ChunkSink for RecordSink<W> {
    fn write(&mut self, chunk: Chunk, _rows: u64) -> Result<(), FerryError> {
        let (Chunk::Batch(batch), Some(w)) = (chunk, self.writer.as_mut()) else {
            return Err(FerryError::Internal("a record sink got bytes".into()));
        };
        w.put(&batch)
            .map_err(|e| FerryError::Internal(format!("writing {}: {e}", self.path.display())))
    }
    fn finish(mut self: Box<Self>) -> Result<Vec<PathBuf>, FerryError> {
        let w = self
            .writer
            .take()
            .ok_or_else(|| FerryError::Internal("finished twice".into()))?;
        let file = w
            .done()
            .map_err(|e| FerryError::Internal(format!("writing {}: {e}", self.path.display())))?;
        let file = file.into_inner().map_err(|e| {
            FerryError::io(format!("writing {}", self.tmp.display()), e.into_error())
        })?;
        seal(file, &self.tmp, self.path)
    }
}
