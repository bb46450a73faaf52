//! The PostgreSQL artifacts without a database: `.sql` files (COPY text
//! blocks with `load.sql`) or `.pgcopy` files (binary COPY), in a folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ferry_connectors::pg::artifacts::{ArtifactKinds, ArtifactSpec, ArtifactWriter};
use ferry_connectors::pg::catalog::{NewColumn, create_table_sql};
use ferry_connectors::pg::codec::ColumnCodec;
use ferry_connectors::pg::codec::copy::encode_batch;
use ferry_connectors::pg::{BinaryEncoder, LoadMode, PgType, QualifiedName};

use super::file::{commit, io, temp_path};
use super::{Chunk, ChunkEncoder, ChunkSink, FormatWriter, Options, Output, OutputFormat};
use crate::error::FerryError;

/// `--to sql` and `--to pgcopy`.
pub(super) struct Postgres;

impl FormatWriter for Postgres {
    fn names(&self) -> &'static [&'static str] {
        &["sql", "pgcopy"]
    }

    fn options(&self, name: &str, o: &Options<'_>) -> Result<OutputFormat, FerryError> {
        if o.codec.is_some() {
            return Err(o.bad("nothing (the artifacts are not compressed)"));
        }
        Ok(if name == "sql" {
            OutputFormat::Sql
        } else {
            OutputFormat::Pgcopy
        })
    }

    fn open(
        &self,
        format: &OutputFormat,
        path: &Path,
        schema: SchemaRef,
        table: &QualifiedName,
    ) -> Result<Output, FerryError> {
        let sql = *format == OutputFormat::Sql;
        let columns = pg_columns(&schema)?;
        let codecs = natural_codecs(&schema)?;
        let new_columns: Vec<NewColumn> = columns
            .iter()
            .zip(schema.fields())
            .map(|((name, pg), f)| NewColumn {
                name: name.clone(),
                pg: pg.clone(),
                not_null: !f.is_nullable(),
            })
            .collect();
        let tmp = temp_path(path);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        let spec = ArtifactSpec {
            dir: tmp.clone(),
            stem: table.name.clone(),
            kinds: ArtifactKinds { sql, pgcopy: !sql },
            part_bytes: 256 << 20,
            target: table.clone(),
            target_ddl: create_table_sql(table, &new_columns, &[], true, false),
            columns: columns.iter().map(|(n, _)| n.clone()).collect(),
            mode: LoadMode::Append,
            keys: Vec::new(),
            duplicates: Default::default(),
            schema_changes: Vec::new(),
            receipt: None,
            sync: true,
            // The validation reads them back at once.
            keep_cached: true,
            driver: true,
        };
        Ok(Output {
            encoder: Arc::new(CopyEncoder {
                encoder: BinaryEncoder::new(Arc::new(codecs)),
                binary: !sql,
                text: sql,
            }),
            sink: Box::new(ArtifactSink {
                dir: path.to_path_buf(),
                tmp,
                writer: Some(ArtifactWriter::new(spec)?),
            }),
        })
    }
}

/// Each column's codec for its natural PostgreSQL type: what CSV/TSV
/// render as text and the artifacts encode.
pub(super) fn natural_codecs(schema: &SchemaRef) -> Result<Vec<ColumnCodec>, FerryError> {
    pg_columns(schema)?
        .into_iter()
        .zip(schema.fields())
        .map(|((name, pg), f)| {
            ColumnCodec::plan(&name, f.data_type(), &pg)
                .map_err(|e| FerryError::Usage(e.to_string()))
        })
        .collect()
}

/// The PostgreSQL type of each canonical column (the converter has no database).
pub fn pg_columns(schema: &SchemaRef) -> Result<Vec<(String, PgType)>, FerryError> {
    schema
        .fields()
        .iter()
        .map(|f| {
            PgType::for_field(f)
                .map(|t| (f.name().clone(), t))
                .ok_or_else(|| {
                    FerryError::Usage(format!(
                        "column {:?} ({}) has no PostgreSQL type",
                        f.name(),
                        f.data_type()
                    ))
                })
        })
        .collect()
}

/// Binary COPY and/or COPY text for the PostgreSQL artifacts, no database.
struct CopyEncoder {
    encoder: BinaryEncoder,
    binary: bool,
    text: bool,
}

impl ChunkEncoder for CopyEncoder {
    fn encode(&self, batch: RecordBatch, first_row: u64) -> Result<Chunk, FerryError> {
        encode_batch(&self.encoder, &batch, first_row, self.binary, self.text)
            .map(Chunk::Copy)
            .map_err(|e| FerryError::Encode {
                row: first_row + e.row as u64 + 1,
                source: e,
            })
    }
}

/// Writes the artifacts into a temporary folder, renamed on success.
struct ArtifactSink {
    dir: PathBuf,
    tmp: PathBuf,
    writer: Option<ArtifactWriter>,
}

impl ChunkSink for ArtifactSink {
    fn write(&mut self, chunk: Chunk, _rows: u64) -> Result<(), FerryError> {
        let (Chunk::Copy(e), Some(w)) = (chunk, self.writer.as_mut()) else {
            return Err(FerryError::Internal("the artifact sink got a batch".into()));
        };
        w.write_batch(&e.binary, &e.text, e.rows)
            .map_err(FerryError::from)
    }
    fn finish(mut self: Box<Self>) -> Result<Vec<PathBuf>, FerryError> {
        let w = self
            .writer
            .take()
            .ok_or_else(|| FerryError::Internal("finished twice".into()))?;
        let files = w.finish(None, None)?;
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(io(&self.dir))?;
        }
        commit(&self.tmp, &self.dir)?;
        Ok(files
            .into_iter()
            .filter_map(|f| f.path.file_name().map(|n| self.dir.join(n)))
            .collect())
    }
}
