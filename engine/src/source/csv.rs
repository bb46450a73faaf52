//! CSV and TSV, through ferry's own reader (`decode::csv`): the dialect,
//! the head read for names and type evidence, the schema resolved from
//! declared and inferred types.

use std::io::{BufReader, Read};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;

use crate::decode::csv::infer::{Guess, Inference};
use crate::decode::csv::tokenize::{Records, Splitter, tokenize};
use crate::decode::csv::{CsvDialect, CsvSource, CsvTable};
use crate::decode::json;
use crate::decode::lines::{LineError, Lines, reserve_record};
use crate::decode::{Compression, DecodeError, Encoding};
use crate::error::FerryError;
use crate::format::Format;
use crate::spec::SourceSpec;
use crate::spec::types::parse_source_type;

use super::{CSV_CHUNK_BYTES, FormatReader, Input, Opening};

/// Delimited text (`csv`, `tsv`).
pub(super) struct Csv;

#[async_trait::async_trait]
impl FormatReader for Csv {
    fn formats(&self) -> &'static [Format] {
        &[Format::Csv, Format::Tsv]
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        opening: &Opening<'_>,
    ) -> Result<SchemaRef, FerryError> {
        let (spec, input) = (opening.spec, opening.input);

        let mut dialect = spec.dialect();
        if opening.format == Format::Tsv {
            dialect.delimiter = b'\t';
        }
        let compression = spec.source.compression.resolve(&input.path);
        let CsvSchema {
            schema,
            formats,
            exact,
        } = resolve_csv_schema(input, compression, &dialect, &spec.source)?;
        let max_record = spec.source.max_record();
        let source = Arc::new(CsvSource {
            path: input.path.clone(),
            display: input.display.clone(),
            compression,
            encoding: spec.source.text_encoding(),
            dialect,
            schema: schema.clone(),
            formats,
            exact,
            chunk_bytes: CSV_CHUNK_BYTES,
            max_record,
            counters: opening.counters.clone(),
            rejects: opening.rejects.clone(),
            range: match opening.range {
                Some(super::PartRange::Bytes(r)) => Some(r),
                _ => None,
            },
        });
        ctx.register_table("source", Arc::new(CsvTable::new(source)))
            .map_err(|e| FerryError::Internal(e.to_string()))?;
        Ok(schema)
    }
}

/// What reading the head of a delimited file found.
#[derive(Debug, Clone)]
pub struct CsvHead {
    /// The header's names, if the dialect has one.
    pub header: Option<Vec<String>>,
    /// Fields per record (from the header or the first record).
    pub fields: usize,
    /// Type evidence from the sampled records.
    pub guesses: Vec<Guess>,
    /// Records sampled (excluding the header).
    pub sampled: usize,
}

/// Reads up to `max_records` records from the start of a delimited file
/// (decompressing, stripping a BOM) and infers column types from them. A
/// record longer than `max_record` bytes fails, as it would when read.
pub fn read_csv_head(
    input: &Input,
    compression: Compression,
    encoding: Encoding,
    dialect: &CsvDialect,
    max_records: usize,
    max_record: usize,
) -> Result<CsvHead, FerryError> {
    let io = |what: &str, e: std::io::Error| {
        FerryError::Decode(DecodeError::io(input.display.clone(), what.to_string(), e))
    };
    let file = std::fs::File::open(&input.path).map_err(|e| io("cannot open", e))?;
    let mut reader = BufReader::with_capacity(
        1 << 20,
        encoding.wrap(
            compression
                .reader(file)
                .map_err(|e| io("cannot decompress", e))?,
        ),
    );
    let mut buf = Vec::new();
    let mut splitter = Splitter::new(dialect);
    // Bytes of `buf` the splitter has already seen (it keeps quote state).
    let mut scanned = 0;
    let mut records = Records::default();
    let mut header: Option<Vec<String>> = None;
    let mut inference: Option<Inference> = None;
    let mut sampled = 0usize;
    let mut fields = 0usize;
    let mut first = true;
    let mut line = 1u64;
    loop {
        let want: usize = 1 << 20;
        let need = buf.len() + want;
        reserve_record(&mut buf, need, max_record, want);
        let n = reader
            .by_ref()
            .take(want as u64)
            .read_to_end(&mut buf)
            .map_err(|e| io("cannot read", e))?;
        let eof = n < want;
        if first {
            first = false;
            if buf.starts_with(b"\xEF\xBB\xBF") {
                buf.drain(..3);
            }
        }
        let cut = if eof {
            Some(buf.len())
        } else {
            let c = splitter.scan(&buf, scanned);
            scanned = buf.len();
            c
        };
        let Some(cut) = cut else {
            if buf.len() > max_record {
                return Err(FerryError::Decode(json::line_error(
                    &input.display,
                    LineError::TooLong {
                        line,
                        max: max_record,
                    },
                )));
            }
            continue;
        };
        let chunk = &buf[..cut];
        // Not checked for UTF-8 here: the reader does that, record by
        // record, and fails or rejects under the dataset's error policy.
        let records = tokenize(chunk, dialect, &mut records)
            .map_err(|u| FerryError::Decode(u.to_error(&input.display, chunk, line)))?;
        let mut skip = 0;
        if inference.is_none() && !records.is_empty() {
            fields = records.field_count(0);
            if dialect.header {
                header = Some(
                    (0..fields)
                        .map(|c| String::from_utf8_lossy(records.get(0, c).0).to_string())
                        .collect(),
                );
                skip = 1;
            }
            inference = Some(Inference::new(fields).with_locale(dialect.locale.clone()));
        }
        if let Some(inf) = inference.as_mut() {
            let take = (records.len() - skip).min(max_records - sampled);
            inf.observe(&records, skip..skip + take, dialect);
            sampled += take;
        }
        line += memchr::memchr_iter(b'\n', chunk).count() as u64;
        buf.drain(..cut);
        splitter = Splitter::new(dialect);
        scanned = 0;
        if eof || sampled >= max_records {
            break;
        }
    }
    let guesses = inference.map(|i| i.finish()).unwrap_or_default();
    Ok(CsvHead {
        header,
        fields,
        guesses,
        sampled,
    })
}

/// How to read each column of a delimited file.
#[derive(Debug, Clone)]
pub struct CsvSchema {
    /// Every column, named and typed.
    pub schema: SchemaRef,
    /// The spec's chrono format per column.
    pub formats: Vec<Option<String>>,
    /// Per column: the type was inferred (not declared), so a later value
    /// must fit it exactly.
    pub exact: Vec<bool>,
}

/// The schema of a delimited file: names from the header or the spec,
/// declared types first, inferred types for the rest.
pub fn resolve_csv_schema(
    input: &Input,
    compression: Compression,
    dialect: &CsvDialect,
    spec: &SourceSpec,
) -> Result<CsvSchema, FerryError> {
    let all_declared = !spec.columns.is_empty() && spec.columns.iter().all(|c| c.ty.is_some());
    let max = spec.infer_limit();
    // With every type declared and no header, only the field count is needed.
    let head = read_csv_head(
        input,
        compression,
        spec.text_encoding(),
        dialect,
        if all_declared { 1 } else { max },
        spec.max_record(),
    )?;
    let layout = |detail: String| {
        FerryError::Decode(DecodeError::Layout {
            file: input.display.clone(),
            detail,
        })
    };
    let names: Vec<String> = match (&head.header, spec.columns.is_empty()) {
        (Some(h), _) => {
            let mut names = Vec::with_capacity(h.len());
            for (i, n) in h.iter().enumerate() {
                let n = if n.trim().is_empty() {
                    format!("column_{}", i + 1)
                } else {
                    n.clone()
                };
                if names.contains(&n) {
                    return Err(layout(format!(
                        "the header names column {n:?} twice; rename one (or set header = false and declare the columns)"
                    )));
                }
                names.push(n);
            }
            for c in &spec.columns {
                if !names.contains(&c.name) {
                    return Err(layout(format!(
                        "declared column {:?} is not in the header {names:?}",
                        c.name
                    )));
                }
            }
            names
        }
        (None, true) if head.fields == 0 => {
            return Err(layout(
                "is empty: no header and no rows to take columns from; declare the columns in the spec ([[source.columns]]) to load an empty file as 0 rows".into(),
            ));
        }
        (None, true) => (1..=head.fields).map(|i| format!("column_{i}")).collect(),
        (None, false) => {
            if head.fields != 0 && spec.columns.len() != head.fields {
                return Err(layout(format!(
                    "the spec declares {} columns but records have {} fields{}",
                    spec.columns.len(),
                    head.fields,
                    if head.fields == spec.columns.len() + 1 && !dialect.trailing_delimiter {
                        " (every line ends with the delimiter? set trailing_delimiter = true)"
                    } else {
                        ""
                    }
                )));
            }
            spec.columns.iter().map(|c| c.name.clone()).collect()
        }
    };
    let mut fields = Vec::with_capacity(names.len());
    let mut formats = Vec::with_capacity(names.len());
    let mut exact = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let decl = spec.columns.iter().find(|c| &c.name == name);
        let field = match decl.and_then(|c| c.ty.as_ref()) {
            Some(ty) => parse_source_type(ty)
                .map_err(|m| crate::spec::SpecError {
                    location: format!("column {name:?}"),
                    message: m,
                })?
                .field(name, true),
            None => match head.guesses.get(i) {
                Some(g) if g.uuid => parse_source_type("uuid")
                    .map_err(FerryError::Usage)?
                    .field(name, true),
                Some(g) => Field::new(name, g.data_type.clone(), true),
                None => Field::new(name, arrow::datatypes::DataType::Utf8, true),
            },
        };
        fields.push(field);
        formats.push(decl.and_then(|c| c.format.clone()));
        exact.push(decl.and_then(|c| c.ty.as_ref()).is_none());
    }
    Ok(CsvSchema {
        schema: Arc::new(Schema::new(fields)),
        formats,
        exact,
    })
}

/// The longest line [`first_lines`] returns.
const SAMPLE_LINE_BYTES: usize = 1 << 20;

/// Reads the first `n` lines of a text file (decompressed), for sniffing and
/// samples. It stops before a line longer than 1 MiB: a sample needs no more,
/// and an endless line (a decompression bomb) is the reader's to refuse,
/// under `max_record_size`, not the sniffer's to buffer.
pub fn first_lines(
    input: &Input,
    compression: Compression,
    encoding: Encoding,
    n: usize,
) -> Result<Vec<String>, FerryError> {
    let file = std::fs::File::open(&input.path)
        .map_err(|e| FerryError::io(format!("opening {}", input.display), e))?;
    let reader = BufReader::new(
        encoding.wrap(
            compression
                .reader(file)
                .map_err(|e| FerryError::io("decompressing", e))?,
        ),
    );
    let mut lines = Lines::new(reader, SAMPLE_LINE_BYTES);
    let mut line = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        match lines.next_into(&mut line) {
            Ok(Some(_)) => out.push(String::from_utf8_lossy(&line).into_owned()),
            Ok(None) | Err(LineError::TooLong { .. }) => break,
            Err(e) => return Err(FerryError::Decode(json::line_error(&input.display, e))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_inference_survives_records_longer_than_a_read() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big.csv");
        // A 3 MiB quoted field full of line breaks, then ordinary records.
        let mut text = String::from("\"");
        text.push_str(&"a\n".repeat(3 << 19));
        text.push_str("\",1\nx,2\ny,3\n");
        std::fs::write(&path, text).unwrap();
        let input = Input {
            path,
            display: "big.csv".into(),
        };
        let dialect = CsvDialect {
            header: false,
            ..CsvDialect::default()
        };
        let head = read_csv_head(
            &input,
            Compression::None,
            Encoding::UTF8,
            &dialect,
            100,
            8 << 20,
        )
        .unwrap();
        assert_eq!((head.fields, head.sampled), (2, 3));
        assert_eq!(head.guesses[1].data_type, arrow::datatypes::DataType::Int64);
    }
}
