//! Opening an input as the table `source` of a DataFusion session: ferry's
//! CSV reader for delimited text, DataFusion's readers for NDJSON, Parquet and
//! Arrow IPC, arrow-avro for Avro: one file per format behind the
//! [`FormatReader`] trait. Declared column types win over inferred ones for
//! every format.

mod arrow;
mod avro;
mod csv;
mod ndjson;
mod parquet;
mod typed;
mod xlsx;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::prelude::SessionContext;

use crate::decode::csv::ReadCounters;
use crate::decode::{Compression, DecodeError, RejectSink};
use crate::error::FerryError;
use crate::format::Format;
use crate::spec::types::parse_source_type;
use crate::spec::{ColumnSpec, DatasetSpec, SourceSpec};

pub use self::avro::avro_table;
pub use self::csv::{CsvHead, CsvSchema, first_lines, read_csv_head, resolve_csv_schema};
pub use self::parquet::{RowGroupRange, row_group_ranges};

/// The piece of a split input one part reads: the unit a reader can start
/// at without reading what comes before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartRange {
    /// Records of a delimited file, by byte offset.
    Bytes(crate::decode::csv::ByteRange),
    /// Whole row groups of a Parquet file.
    RowGroups(RowGroupRange),
}

impl PartRange {
    /// Its size in the file, in bytes (for progress and figures).
    pub fn bytes(&self) -> u64 {
        match self {
            PartRange::Bytes(r) => r.len(),
            PartRange::RowGroups(g) => g.bytes,
        }
    }

    /// The formats that can be read this way.
    fn fits(&self, format: Format) -> bool {
        match self {
            PartRange::Bytes(_) => matches!(format, Format::Csv | Format::Tsv),
            PartRange::RowGroups(_) => format == Format::Parquet,
        }
    }
}

/// A local input file and the name to show for it.
#[derive(Debug, Clone)]
pub struct Input {
    /// Where the bytes are.
    pub path: PathBuf,
    /// What the user called it (a path or URI).
    pub display: String,
}

/// What was registered as `source`.
#[derive(Debug, Clone)]
pub struct Source {
    /// The input's format.
    pub format: Format,
    /// The schema of `source` (after declared types).
    pub schema: SchemaRef,
    /// Read progress (bytes for delimited text; rows for every format via the caller).
    pub counters: Arc<ReadCounters>,
    /// Input size in bytes.
    pub size: u64,
    /// The reject file, when the dataset allows bad rows.
    pub rejects: Option<Arc<RejectSink>>,
    /// Scratch files the plan still reads (a spreadsheet's sheet as CSV),
    /// removed when the last clone of the source goes.
    pub keep: KeepAlive,
}

impl Source {
    /// Rows set aside in the reject file so far.
    pub fn rejected(&self) -> u64 {
        self.rejects.as_ref().map_or(0, |r| r.count())
    }

    /// The reject file, when a row was rejected.
    pub fn reject_file(&self) -> Option<PathBuf> {
        self.rejects
            .as_ref()
            .filter(|r| r.count() > 0)
            .map(|r| r.path().to_path_buf())
    }
}

impl Source {
    /// Turns a columnar reader's failure inside the transform into a bad
    /// input naming the file, rather than a failing transform.
    pub fn explain(&self, e: FerryError, input: &Input) -> FerryError {
        match (&e, self.format) {
            // A columnar file that fails while being read is a bad input, not
            // a failing transform.
            (
                FerryError::Transform { detail, .. },
                Format::Parquet | Format::Arrow | Format::Avro,
            ) if is_reader_failure(detail) => FerryError::Decode(DecodeError::Reader {
                file: input.display.clone(),
                location: String::new(),
                detail: format!(
                    "corrupt or truncated {} data: {}",
                    self.format,
                    reader_detail(detail)
                ),
            }),
            _ => e,
        }
    }
}

/// Whether a failure inside the plan came from a columnar reader (Parquet,
/// Arrow IPC, Avro decoding) rather than from the transform's own SQL: only
/// the readers' own error kinds count, so a SQL error that happens to say
/// "invalid" stays the transform's.
fn is_reader_failure(detail: &str) -> bool {
    [
        "Parquet error",
        "Parquet argument error",
        "Parser error",
        "Io error",
        "Ipc error",
        "Avro",
    ]
    .iter()
    .any(|needle| detail.contains(needle))
}

/// Default records sampled for inference.
pub const DEFAULT_INFER_ROWS: usize = 10_000;
/// Largest chunk the CSV reader cuts. A chunk is tokenized into field spans
/// and then built column by column, so each column's pass walks the whole
/// chunk and its spans again: at 512 KiB both stay in a core's L2 cache
/// across the sixteen passes of a TPC-H lineitem chunk, where 2 MiB spilled
/// them to L3 on every pass. Measured on CSV → Parquet and the default load
/// (`benchmarks/results/tuning.md`): 5–9 % less CPU and 20–60 MB less
/// memory than 2 MiB; 256 KiB is slower again (more, smaller batches).
pub const CSV_CHUNK_BYTES: usize = 512 << 10;

/// The input's format: the spec's, else the extension's, else its first bytes.
pub fn resolve_format(spec: &SourceSpec, input: &Input) -> Result<Format, FerryError> {
    if let Some(f) = spec.format {
        return Ok(f);
    }
    if let Some(f) =
        Format::from_path(Path::new(&input.display)).or_else(|| Format::from_path(&input.path))
    {
        return Ok(f);
    }
    let mut head = [0u8; 8];
    let n = std::fs::File::open(&input.path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| FerryError::io(format!("reading {}", input.display), e))?;
    let head = &head[..n];
    Ok(if head.starts_with(b"PAR1") {
        Format::Parquet
    } else if head.starts_with(b"ARROW1") || head.starts_with(&[0xff, 0xff, 0xff, 0xff]) {
        Format::Arrow
    } else if head.starts_with(b"Obj\x01") {
        Format::Avro
    } else if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        Format::Ndjson
    } else {
        Format::Csv
    })
}

/// One input format's reader, in the manner of DataFusion's `FileFormat`:
/// it registers an input as the table `source` of a session, with the
/// dataset's declared types applied. [`READERS`] is the registry; adding a
/// format is a file here, a line there, and a [`Format`] variant.
#[async_trait::async_trait]
pub trait FormatReader: Sync {
    /// The formats it reads.
    fn formats(&self) -> &'static [Format];
    /// Registers `opening.input` as `source` in `ctx`; returns its schema.
    async fn register(
        &self,
        ctx: &SessionContext,
        opening: &Opening<'_>,
    ) -> Result<SchemaRef, FerryError>;
}

/// What a reader opens: the input, in the format resolved for it, under the
/// dataset's spec, with the read's counters and reject file.
pub struct Opening<'a> {
    /// The dataset (source options, declared columns, error policy).
    pub spec: &'a DatasetSpec,
    /// The local file.
    pub input: &'a Input,
    /// Its format (the spec's, the extension's or sniffed).
    pub format: Format,
    /// Bytes read so far, for progress and figures.
    pub counters: Arc<ReadCounters>,
    /// Where bad rows go under the error policy (`None`: the first fails the read).
    pub rejects: Option<Arc<RejectSink>>,
    /// Files a reader made that the plan reads later (a sheet as CSV): they
    /// live as long as the [`Source`].
    pub keep: KeepAlive,
    /// One part of a split input; `None`: all of it.
    pub range: Option<PartRange>,
}

/// Scratch files that must outlive the registration that made them.
pub type KeepAlive = Arc<std::sync::Mutex<Vec<Arc<tempfile::TempPath>>>>;

/// Every input format's reader.
pub static READERS: [&dyn FormatReader; 6] = [
    &csv::Csv,
    &xlsx::Xlsx,
    &ndjson::Ndjson,
    &parquet::Parquet,
    &arrow::Arrow,
    &avro::Avro,
];

/// The reader of `format`.
fn reader_for(format: Format) -> &'static dyn FormatReader {
    READERS
        .iter()
        .copied()
        .find(|r| r.formats().contains(&format))
        .unwrap_or_else(|| unreachable!("every format has a reader (tested)"))
}

/// Registers the input as the table `source`. `rejects` is where the
/// dataset's bad rows go when its error policy allows some (`None`: the first
/// bad row fails the read whatever the policy, as when checking a spec).
pub async fn register_source(
    ctx: &SessionContext,
    spec: &DatasetSpec,
    input: &Input,
    rejects: Option<PathBuf>,
) -> Result<Source, FerryError> {
    register_part(ctx, spec, input, rejects, None).await
}

/// [`register_source`] for one part of a split input: a delimited file's
/// records in a byte range (see [`record_ranges`](crate::decode::csv::record_ranges))
/// or a Parquet file's row groups (see [`row_group_ranges`]), typed as the
/// whole file is (a delimited file's head is read for the schema either way).
pub async fn register_part(
    ctx: &SessionContext,
    spec: &DatasetSpec,
    input: &Input,
    rejects: Option<PathBuf>,
    range: Option<PartRange>,
) -> Result<Source, FerryError> {
    let size = std::fs::metadata(&input.path)
        .map_err(|e| FerryError::io(format!("reading {}", input.display), e))?
        .len();
    let format = resolve_format(&spec.source, input)?;
    if let Some(range) = range.filter(|r| !r.fits(format)) {
        return Err(FerryError::Internal(format!(
            "{}: a {format} file is not read in parts of {range:?}",
            input.display
        )));
    }
    let size = range.map_or(size, |r| r.bytes());
    let counters = Arc::new(ReadCounters::default());
    let rejects = rejects
        .filter(|_| spec.errors.max_bad_rows > 0)
        .map(|path| Arc::new(RejectSink::new(path, spec.errors.max_bad_rows)));
    let keep = KeepAlive::default();
    let opening = Opening {
        spec,
        input,
        format,
        counters: counters.clone(),
        rejects: rejects.clone(),
        keep: keep.clone(),
        range,
    };
    let schema = reader_for(format).register(ctx, &opening).await?;
    let schema = rename(ctx, spec, input, schema).await?;
    Ok(Source {
        format,
        schema,
        counters,
        size,
        rejects,
        keep,
    })
}

/// The name the input's columns are read from before `[source.rename]`.
const UNRENAMED: &str = "__ferry_input";

/// Applies `[source] flatten` and `[source.rename]`: `source` becomes a view
/// of the input with each struct's fields as columns of their own (`a.b` →
/// `a_b`), then those columns renamed (in place, the others as they are), so
/// transform.sql and the target see the names the dataset chose whatever a
/// partner's file calls them. The view costs nothing per row: DataFusion
/// inlines it, and the readers still decode only the columns the query uses.
pub(crate) async fn rename(
    ctx: &SessionContext,
    spec: &DatasetSpec,
    input: &Input,
    schema: SchemaRef,
) -> Result<SchemaRef, FerryError> {
    let renames = &spec.source.rename;
    let flatten = spec.source.flatten_separator();
    let mut flat = match flatten {
        Some(separator) => flattened(&schema, separator),
        None => schema
            .fields()
            .iter()
            .map(|f| (datafusion::prelude::ident(f.name()), f.name().clone()))
            .collect(),
    };
    if spec
        .target
        .as_ref()
        .is_some_and(|t| t.lineage.contains(&crate::spec::Lineage::Line))
    {
        // The input is one ordered stream (see transform::new_session), so
        // numbering it as it is read numbers its records.
        flat.push((
            datafusion::prelude::cast(
                datafusion::functions_window::expr_fn::row_number(),
                ::arrow::datatypes::DataType::Int64,
            ),
            crate::spec::Lineage::Line.column().to_string(),
        ));
    }
    let reshaped = flat.len() != schema.fields().len()
        || flat
            .iter()
            .zip(schema.fields())
            .any(|((_, name), f)| name != f.name());
    if renames.is_empty() && !reshaped {
        return Ok(schema);
    }
    let names: Vec<&str> = flat.iter().map(|(_, n)| n.as_str()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(FerryError::Usage(format!(
                "{}: flatten makes two columns named {n:?} (a struct's field and another column); set flatten_separator to tell them apart, or rename in transform.sql",
                spec.toml_path().display()
            )));
        }
    }
    let unknown: Vec<&String> = renames
        .keys()
        .filter(|k| !names.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(FerryError::Usage(format!(
            "{}: [source.rename] names column(s) {unknown:?}, which {} does not have (it has {names:?})",
            spec.toml_path().display(),
            input.display
        )));
    }
    let renamed: Vec<&str> = names
        .iter()
        .map(|n| renames.get(*n).map_or(*n, String::as_str))
        .collect();
    for (i, n) in renamed.iter().enumerate() {
        if renamed[..i].contains(n) {
            return Err(FerryError::Usage(format!(
                "{}: [source.rename] makes two columns named {n:?}",
                spec.toml_path().display()
            )));
        }
    }
    let internal = |e: datafusion::error::DataFusionError| FerryError::Internal(e.to_string());
    let table = ctx
        .deregister_table("source")
        .map_err(internal)?
        .ok_or_else(|| FerryError::Internal("no table source to rename".into()))?;
    ctx.register_table(UNRENAMED, table).map_err(internal)?;
    let columns: Vec<datafusion::prelude::Expr> = flat
        .iter()
        .zip(&renamed)
        .map(|((expr, _), to)| expr.clone().alias(*to))
        .collect();
    let view = ctx
        .table(UNRENAMED)
        .await
        .map_err(internal)?
        .select(columns)
        .map_err(internal)?;
    let schema = Arc::new(view.schema().as_arrow().clone());
    ctx.register_table("source", view.into_view())
        .map_err(internal)?;
    Ok(schema)
}

/// Every column of `schema`, with each struct replaced by its fields
/// (recursively: `{"a": {"b": {"c": 1}}}` gives `a_b_c`), as the expression
/// that reads it and its name. Lists and maps stay whole (`jsonb`).
fn flattened(schema: &SchemaRef, separator: &str) -> Vec<(datafusion::prelude::Expr, String)> {
    fn walk(
        expr: datafusion::prelude::Expr,
        name: String,
        data_type: &::arrow::datatypes::DataType,
        separator: &str,
        out: &mut Vec<(datafusion::prelude::Expr, String)>,
    ) {
        match data_type {
            ::arrow::datatypes::DataType::Struct(fields) if !fields.is_empty() => {
                for f in fields {
                    walk(
                        datafusion::functions::core::expr_fn::get_field(
                            expr.clone(),
                            f.name().as_str(),
                        ),
                        format!("{name}{separator}{}", f.name()),
                        f.data_type(),
                        separator,
                        out,
                    );
                }
            }
            _ => out.push((expr, name)),
        }
    }
    let mut out = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        walk(
            datafusion::prelude::ident(f.name()),
            f.name().clone(),
            f.data_type(),
            separator,
            &mut out,
        );
    }
    out
}

/// A DataFusion reader error, as a decode error of this input.
pub fn df_err(input: &Input) -> impl Fn(datafusion::common::DataFusionError) -> FerryError + '_ {
    move |e| {
        FerryError::Decode(DecodeError::Reader {
            file: input.display.clone(),
            location: String::new(),
            detail: reader_detail(&e.strip_backtrace()),
        })
    }
}

/// A reader's message without what misleads a person: DataFusion's "this is a
/// bug, please file an issue" tail (a corrupt file is not DataFusion's bug) and
/// prefixes repeated by each layer ("Parquet error: Parquet error: …").
fn reader_detail(message: &str) -> String {
    let mut text = message
        .split("\nThis issue was likely caused by a bug")
        .next()
        .unwrap_or(message)
        .trim()
        .to_string();
    for prefix in ["Internal error: ", "Arrow error: ", "External error: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.to_string();
        }
    }
    for twice in [
        "Parquet error: Parquet error: ",
        "Parser error: Parser error: ",
    ] {
        let once = &twice[..twice.len() / 2];
        while text.contains(twice) {
            text = text.replace(twice, once);
        }
    }
    text
}

/// DataFusion's name for a compression codec.
pub fn compression_type(c: Compression) -> FileCompressionType {
    match c {
        Compression::Gzip => FileCompressionType::GZIP,
        Compression::Zstd => FileCompressionType::ZSTD,
        Compression::Bzip2 => FileCompressionType::BZIP2,
        Compression::Xz => FileCompressionType::XZ,
        Compression::Auto | Compression::None => FileCompressionType::UNCOMPRESSED,
    }
}

/// The absolute path as the UTF-8 string DataFusion wants.
pub fn path_str(input: &Input) -> Result<String, FerryError> {
    let abs = std::path::absolute(&input.path)
        .map_err(|e| FerryError::io(format!("resolving {}", input.display), e))?;
    abs.to_str()
        .map(str::to_string)
        .ok_or_else(|| FerryError::Usage(format!("{}: the path is not valid UTF-8", input.display)))
}

/// Applies declared types to an inferred schema (adding declared columns the
/// sample did not show).
fn apply_declared(
    inferred: &Schema,
    columns: &[ColumnSpec],
    file: &Path,
) -> Result<Schema, FerryError> {
    let mut fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for c in columns {
        let Some(ty) = &c.ty else { continue };
        let st = parse_source_type(ty).map_err(|m| crate::spec::SpecError {
            location: format!("{} (column {})", file.display(), c.name),
            message: m,
        })?;
        match fields.iter_mut().find(|f| f.name() == &c.name) {
            Some(f) => *f = st.field(&c.name, true),
            None => fields.push(st.field(&c.name, true)),
        }
    }
    Ok(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every format a spec can name has exactly one reader.
    #[test]
    fn every_format_has_one_reader() {
        for format in Format::ALL {
            let readers = READERS
                .iter()
                .filter(|r| r.formats().contains(&format))
                .count();
            assert_eq!(readers, 1, "{format}");
        }
    }
}
