//! Dataset specs: `sql/<dataset>/dataset.toml` (source, routing, target) and
//! `transform.sql` (one `SELECT` over the table `source`).
//!
//! Every key is checked when the spec is read: unknown keys, bad values, a
//! missing file or SQL that does not parse are reported with the file, the
//! line and column, and the key, before any data is touched. The reference
//! of every key is `sql/README.md`.

pub mod check;
pub mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_connectors::pg::receipt::{Except, Verify, VerifyPolicy};
use ferry_connectors::pg::{
    DriftPolicy, DuplicateKeys, LoadMode, MatchColumns, OnMissingColumns, OnNewColumns,
    OnTypeChange, PgType, QualifiedName, evolve,
};
use serde::{Deserialize, Serialize};

use crate::decode::csv::CsvDialect;
use crate::decode::{Compression, Encoding};
use crate::format::Format;

/// A spec problem, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct SpecError {
    /// `file[:line[:column]]`, plus the key when known.
    pub location: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl SpecError {
    fn at(file: &Path, message: impl Into<String>) -> Self {
        SpecError {
            location: file.display().to_string(),
            message: message.into(),
        }
    }
    fn key(file: &Path, key: &str, message: impl Into<String>) -> Self {
        SpecError {
            location: format!("{} (key {key})", file.display()),
            message: message.into(),
        }
    }
}

pub use ferry_connectors::jobs::Workflow;

/// `[dataset]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSection {
    /// Name (defaults to the folder name).
    pub name: Option<String>,
    /// What the data is.
    pub description: Option<String>,
}

/// One or more null markers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NullMarkers {
    /// A single marker.
    One(String),
    /// Several markers.
    Many(Vec<String>),
}

impl NullMarkers {
    /// The markers as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            NullMarkers::One(s) => vec![s.clone()],
            NullMarkers::Many(v) => v.clone(),
        }
    }
}

/// A size in bytes, written as a number of bytes or as text with a unit
/// (`"64MiB"`, `"1GB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteCount(pub u64);

impl Serialize for ByteCount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&bytesize::ByteSize::b(self.0).display().iec().to_string())
    }
}

impl<'de> Deserialize<'de> for ByteCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteCount(n)),
            Raw::Text(t) => t
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| ByteCount(b.as_u64()))
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "{t:?} is not a size (write e.g. \"64MiB\" or a number of bytes): {e}"
                    ))
                }),
        }
    }
}

/// The longest record a reader accepts when the spec does not say:
/// a decompression bomb or a missing line ending then fails after about
/// twice this in memory, which fits the smallest task the stack deploys
/// (512 MiB) beside everything else a job holds. PostgreSQL itself refuses
/// a field over 1 GB.
pub const DEFAULT_MAX_RECORD_SIZE: u64 = 64 << 20;

/// `[[source.columns]]`: a declared column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name (matched to the header, or naming a headerless column).
    pub name: String,
    /// Declared type; inferred when absent.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    /// strftime format for dates and timestamps that are not ISO 8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// `[source]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Input format; from the file extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Compression; `auto` decides by extension.
    #[serde(default)]
    pub compression: Compression,
    /// Field delimiter (csv; tsv is always a tab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// Whether the first record is a header (csv/tsv; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// Quote character; `""` disables quoting (default `"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// Escape character inside quotes (default: the quote, i.e. doubling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escape: Option<String>,
    /// Lines starting with this character are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Null marker(s), matched against unquoted fields (default `""`);
    /// `null_values` is another name for it.
    #[serde(
        default,
        alias = "null_values",
        skip_serializing_if = "Option::is_none"
    )]
    pub null: Option<NullMarkers>,
    /// Every line ends with the delimiter (TPC-H `.tbl` files).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trailing_delimiter: bool,
    /// Text encoding (a WHATWG label: `utf-8`, `windows-1252`, `latin1`,
    /// `utf-16`, …; default UTF-8), decoded to UTF-8 as read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The character between a number's integer and fractional parts
    /// (default `.`; `,` for `1234,5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal_separator: Option<String>,
    /// A character that groups digits in threes and is dropped (`.` for
    /// `1.234.567,5`; default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thousands_separator: Option<String>,
    /// Values that mean true, besides `true`/`t`/`yes`/`on`/`1` (exact, after trimming).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub true_values: Vec<String>,
    /// Values that mean false, besides `false`/`f`/`no`/`off`/`0`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub false_values: Vec<String>,
    /// Records (csv) or objects (ndjson) sampled to infer types (default 10000; 0 = all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infer_rows: Option<usize>,
    /// The longest record (a line of NDJSON, a record of delimited text)
    /// read before the input is refused (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_record_size: Option<ByteCount>,
    /// A plain (uncompressed, UTF-8) delimited file larger than this is
    /// cut at record boundaries into parts of about this size, each decoded
    /// and encoded by its own task (a Step Functions Distributed Map item; a
    /// separate process in one-process runs), then loaded as one job: one
    /// atomic publish, one ledger entry. Unset: never split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_size: Option<ByteCount>,
    /// A small example input in the spec folder, used by `spec check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
    /// Declared columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnSpec>,
    /// `[source.rename]`: input column name → the name `source` gives it
    /// (`"Order Date" = "order_date"`), applied after reading and typing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
    /// How output columns find the table's: `"name"` (whatever their order;
    /// case, spaces and `_` aside) or `"position"`. Default: by name, except
    /// for a headerless delimited file without declared columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_columns: Option<MatchColumns>,
    /// Turn each struct (a nested JSON object, a Parquet/Arrow/Avro struct)
    /// into columns of its own, `{"a": {"b": 1}}` → `a_b` (default false:
    /// a struct loads as one `jsonb` column).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flatten: bool,
    /// What joins a struct's name to its fields' under `flatten` (default `_`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flatten_separator: Option<String>,
    /// The sheet of a spreadsheet input (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
}

/// `[routing]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSpec {
    /// Object-key globs that route an input to this dataset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// The workflow those inputs run.
    #[serde(default)]
    pub workflow: Workflow,
}

fn yes() -> bool {
    true
}

/// `[target]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// `table` or `schema.table`.
    pub table: String,
    /// `append` (default), `replace`, `upsert` or `delete-insert`.
    #[serde(default = "default_mode")]
    pub mode: LoadMode,
    /// Key columns for upsert (and the primary key of a created table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Create the table when missing (default true).
    #[serde(default = "yes")]
    pub create: bool,
    /// PostgreSQL type per output column, overriding the default mapping.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, String>,
    /// How output column names become table column names.
    #[serde(default)]
    pub column_names: ColumnNames,
    /// A target column the input lacks: `"null"` (its default, else NULL)
    /// or `"fail"` (before anything changes, naming it).
    #[serde(default)]
    pub on_missing_columns: OnMissingColumns,
    /// An input column the table lacks: `"add"` (default: `ALTER TABLE … ADD
    /// COLUMN` in the load's transaction), `"ignore"` or `"fail"`.
    #[serde(default)]
    pub on_new_columns: OnNewColumns,
    /// An input column whose type the table's column cannot take:
    /// `"fail"` (default) or `"widen"` (losslessly, in the load's transaction).
    #[serde(default)]
    pub on_type_change: OnTypeChange,
    /// A key that occurs more than once in one input (`upsert`,
    /// `delete-insert`): `"fail"` (default, naming the key and its rows),
    /// `"last"` or `"first"` (the row kept, in input order).
    #[serde(default)]
    pub duplicate_keys: DuplicateKeys,
    /// Lineage columns added to every row: `loaded_at`, `source`, `line`,
    /// `job_id` (as `_ferry_loaded_at`, `_ferry_source`, `_ferry_line`,
    /// `_ferry_job_id`); `ferry jobs undo` needs `job_id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<Lineage>,
    /// What the Loader's sql-processor step loads: the `.pgcopy` parts (binary
    /// COPY, the fast path) or the `.sql` files (the same text `psql -f` would
    /// replay, for a team that audits and loads the SQL it keeps). Unset: the
    /// task's `--from` / `FERRY_LOAD_FROM` (default `pgcopy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_from: Option<crate::load::ArtifactSource>,
    /// What a load proves before it publishes: `"full"` (default: the rows
    /// as PostgreSQL stored them hash to what ferry sent, column by column),
    /// `"count"` (the row count) or `"off"`.
    #[serde(default)]
    pub verify: Verify,
    /// Changes to a column's values that are wanted, by column:
    /// `"rounding"` (numeric(p,s)), `"padding"` (character(n)),
    /// `"precision"` (real) or `"any"` (not compared). The receipt records
    /// them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verify_except: BTreeMap<String, Except>,
}

impl TargetSpec {
    /// A target with only its table named, everything else the defaults
    /// `dataset.toml` gives (append, created when missing).
    pub fn named(table: String) -> TargetSpec {
        TargetSpec {
            table,
            mode: default_mode(),
            keys: Vec::new(),
            create: true,
            types: BTreeMap::new(),
            column_names: ColumnNames::default(),
            on_missing_columns: OnMissingColumns::default(),
            on_new_columns: OnNewColumns::default(),
            on_type_change: OnTypeChange::default(),
            duplicate_keys: DuplicateKeys::default(),
            lineage: Vec::new(),
            load_from: None,
            verify: Verify::default(),
            verify_except: BTreeMap::new(),
        }
    }
}

/// One `[target] lineage` column: where a row came from, in the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lineage {
    /// `_ferry_loaded_at timestamptz`: when the load began (one instant for
    /// every row of a load).
    LoadedAt,
    /// `_ferry_source text`: the input's URI.
    Source,
    /// `_ferry_line bigint`: the record's number in the input (1-based, the
    /// header not counted; a record spanning lines counts once; for
    /// Parquet, Arrow and Avro the row's index + 1).
    Line,
    /// `_ferry_job_id text`: the job that loaded the row.
    JobId,
}

impl Lineage {
    /// The column it adds.
    pub fn column(self) -> &'static str {
        match self {
            Lineage::LoadedAt => evolve::LINEAGE_LOADED_AT,
            Lineage::Source => evolve::LINEAGE_SOURCE,
            Lineage::Line => evolve::LINEAGE_LINE,
            Lineage::JobId => evolve::LINEAGE_JOB_ID,
        }
    }
}

/// `[target] column_names`: the table's column names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnNames {
    /// `Customer ID` → `customer_id` (the default: PostgreSQL folds unquoted
    /// names to lower case, so only such names can be queried unquoted).
    #[default]
    #[serde(rename = "snake_case")]
    SnakeCase,
    /// Exactly as the transform's output names them.
    #[serde(rename = "as-is")]
    AsIs,
}

impl std::str::FromStr for ColumnNames {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "snake_case" | "snake-case" => Ok(ColumnNames::SnakeCase),
            "as-is" | "as_is" => Ok(ColumnNames::AsIs),
            other => Err(format!("{other:?}: expected snake_case or as-is")),
        }
    }
}

/// `[convert]`: the output of a Converter dataset. The keys mirror
/// `ferry convert`'s flags (`to` is `--to`, and so on).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertSpec {
    /// csv, tsv, ndjson, parquet, arrow, arrows, avro, sql or pgcopy.
    pub to: String,
    /// Codec (see `ferry convert --help` for each format's choices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Parquet: rows per row group (default 1 048 576).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_group_rows: Option<usize>,
    /// Parquet: dictionary encoding for every column (true), none (false),
    /// or, when unset, for the columns whose values repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dictionary: Option<bool>,
    /// Parquet: none, chunk or page (default page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<String>,
    /// csv: field delimiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// csv/tsv: write a header line (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// csv/tsv: how NULL is written (default: nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null: Option<String>,
    /// Validate by reconversion (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<bool>,
}

/// `[errors]`: the dataset's error policy for bad rows of delimited text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsSpec {
    /// How many rows may be bad (wrong field count, a value that does not
    /// parse as its column's type, invalid UTF-8) before the job fails. Bad
    /// rows up to this number are written to the job's reject file and left
    /// out; the default, 0, fails on the first one.
    #[serde(default)]
    pub max_bad_rows: u64,
}

fn default_mode() -> LoadMode {
    LoadMode::Append
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetToml {
    #[serde(default)]
    dataset: DatasetSection,
    #[serde(default)]
    source: SourceSpec,
    #[serde(default)]
    routing: RoutingSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<TargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    convert: Option<ConvertSpec>,
    #[serde(default)]
    errors: ErrorsSpec,
}

/// A validated dataset spec.
#[derive(Debug, Clone)]
pub struct DatasetSpec {
    /// Dataset name.
    pub name: String,
    /// The spec folder (`None` for an ad-hoc spec built from CLI flags).
    pub dir: Option<PathBuf>,
    /// What the dataset is, for people reading `spec check` and the README.
    pub description: Option<String>,
    /// Source options.
    pub source: SourceSpec,
    /// Which objects come to this dataset, and to which workflow.
    pub routing: RoutingSpec,
    /// Target, when the dataset loads into PostgreSQL.
    pub target: Option<TargetSpec>,
    /// Output, when the dataset is converted.
    pub convert: Option<ConvertSpec>,
    /// Error policy.
    pub errors: ErrorsSpec,
    /// The transform's SQL.
    pub transform_sql: String,
    /// Where the SQL came from (for messages).
    pub transform_path: PathBuf,
}

/// Converts a byte offset in `text` to 1-based (line, column).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |p| before.len() - p - 1)
        + 1;
    (line, col)
}

fn single_char(
    file: &Path,
    key: &str,
    value: &str,
    allow_empty: bool,
) -> Result<Option<u8>, SpecError> {
    let value = match value {
        "\\t" | "tab" => "\t",
        other => other,
    };
    match value.as_bytes() {
        [] if allow_empty => Ok(None),
        [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => Ok(Some(*b)),
        _ => Err(SpecError::key(
            file,
            key,
            format!("{value:?} must be exactly one ASCII character (\"\\t\" for tab)"),
        )),
    }
}

impl SourceSpec {
    /// The separator of flattened struct fields, when `flatten` is on.
    pub fn flatten_separator(&self) -> Option<&str> {
        self.flatten
            .then(|| self.flatten_separator.as_deref().unwrap_or("_"))
    }

    /// The input's text encoding (`encoding`, checked by `validate`; UTF-8
    /// when unset).
    pub fn text_encoding(&self) -> Encoding {
        Encoding::of(self.encoding.as_deref())
    }

    /// The longest record accepted, in bytes.
    pub fn max_record(&self) -> usize {
        let n = self
            .max_record_size
            .map_or(DEFAULT_MAX_RECORD_SIZE, |b| b.0.max(1));
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// Records sampled for inference (`usize::MAX`: all).
    pub fn infer_limit(&self) -> usize {
        match self.infer_rows {
            Some(0) => usize::MAX,
            Some(n) => n,
            None => crate::source::DEFAULT_INFER_ROWS,
        }
    }
}

impl DatasetSpec {
    /// Reads and validates `dir/dataset.toml` and `dir/transform.sql`.
    pub fn load(dir: &Path) -> Result<DatasetSpec, SpecError> {
        let toml_path = dir.join("dataset.toml");
        let sql_path = dir.join("transform.sql");
        if !dir.is_dir() {
            return Err(SpecError::at(
                dir,
                "no such spec folder (expected sql/<dataset>/ with dataset.toml and transform.sql)",
            ));
        }
        let text = std::fs::read_to_string(&toml_path)
            .map_err(|e| SpecError::at(&toml_path, format!("cannot read: {e}")))?;
        let parsed: DatasetToml = toml::from_str(&text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(&text, s.start));
            SpecError {
                location: format!("{}:{line}:{col}", toml_path.display()),
                message: e.message().trim().to_string(),
            }
        })?;
        let transform_sql = std::fs::read_to_string(&sql_path).map_err(|e| {
            SpecError::at(&sql_path, format!("cannot read ({e}); every dataset needs a transform.sql with one SELECT over the table `source`"))
        })?;
        let name = parsed.dataset.name.clone().unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        });
        let spec = DatasetSpec {
            name,
            dir: Some(dir.to_path_buf()),
            description: parsed.dataset.description,
            source: parsed.source,
            routing: parsed.routing,
            target: parsed.target,
            convert: parsed.convert,
            errors: parsed.errors,
            transform_sql,
            transform_path: sql_path,
        };
        spec.validate(&toml_path)?;
        Ok(spec)
    }

    /// The spec as `dataset.toml` text: what a one-off job pins, since its
    /// spec may come from flags (sniffed, or a spec folder with overrides)
    /// rather than from a folder as it is.
    pub fn to_toml(&self) -> Result<String, SpecError> {
        let doc = DatasetToml {
            dataset: DatasetSection {
                name: Some(self.name.clone()),
                description: self.description.clone(),
            },
            // The sample is for `spec check` in the spec folder; a copy
            // elsewhere has none to name.
            source: SourceSpec {
                sample: None,
                ..self.source.clone()
            },
            routing: self.routing.clone(),
            target: self.target.clone(),
            convert: self.convert.clone(),
            errors: self.errors.clone(),
        };
        toml::to_string(&doc).map_err(|e| SpecError {
            location: self.name.clone(),
            message: format!("cannot be written as TOML: {e}"),
        })
    }

    /// A spec for `ferry load --input … --table …` without a spec folder.
    pub fn ad_hoc(name: &str, source: SourceSpec, target: Option<TargetSpec>) -> DatasetSpec {
        DatasetSpec {
            name: name.to_string(),
            dir: None,
            description: None,
            source,
            routing: RoutingSpec::default(),
            target,
            convert: None,
            errors: ErrorsSpec::default(),
            transform_sql: "SELECT * FROM source".to_string(),
            transform_path: PathBuf::from("(default transform)"),
        }
    }

    /// Checks the values serde cannot check.
    pub fn validate(&self, file: &Path) -> Result<(), SpecError> {
        let s = &self.source;
        let delimited = s.format.is_none_or(Format::is_delimited);
        if !delimited {
            for (key, set) in [
                ("source.delimiter", s.delimiter.is_some()),
                ("source.header", s.header.is_some()),
                ("source.quote", s.quote.is_some()),
                ("source.escape", s.escape.is_some()),
                ("source.comment", s.comment.is_some()),
                ("source.null", s.null.is_some()),
                ("source.trailing_delimiter", s.trailing_delimiter),
                ("source.decimal_separator", s.decimal_separator.is_some()),
                (
                    "source.thousands_separator",
                    s.thousands_separator.is_some(),
                ),
                ("source.true_values", !s.true_values.is_empty()),
                ("source.false_values", !s.false_values.is_empty()),
                (
                    "errors.max_bad_rows",
                    self.errors.max_bad_rows > 0 && s.format != Some(Format::Ndjson),
                ),
            ] {
                // A spreadsheet is read as CSV: its values take the CSV
                // value options, but it has no delimiters or quotes.
                let sheet_option = s.format == Some(Format::Xlsx)
                    && !matches!(
                        key,
                        "source.delimiter"
                            | "source.quote"
                            | "source.escape"
                            | "source.comment"
                            | "source.trailing_delimiter"
                    );
                if set && !sheet_option {
                    return Err(SpecError::key(
                        file,
                        key,
                        format!(
                            "applies to csv/tsv (and, for max_bad_rows, ndjson; for the value options, xlsx) sources only, not {}",
                            s.format.map(|f| f.to_string()).unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        if s.sheet.is_some() && s.format.is_some_and(|f| f != Format::Xlsx) {
            return Err(SpecError::key(
                file,
                "source.sheet",
                "applies to spreadsheet (xlsx) sources only",
            ));
        }
        if s.format == Some(Format::Tsv)
            && s.delimiter
                .as_deref()
                .is_some_and(|d| d != "\t" && d != "\\t")
        {
            return Err(SpecError::key(
                file,
                "source.delimiter",
                "tsv is always tab-delimited; use format = \"csv\" for other delimiters",
            ));
        }
        if let Some(enc) = &s.encoding
            && Encoding::for_label(enc).is_none()
        {
            return Err(SpecError::key(
                file,
                "source.encoding",
                format!(
                    "{enc:?} is not an encoding ferry knows: use a WHATWG label such as \"utf-8\", \"windows-1252\", \"latin1\", \"iso-8859-15\", \"utf-16\" or \"shift_jis\""
                ),
            ));
        }
        self.dialect_checked(file)?;
        let mut seen = std::collections::HashSet::new();
        for (i, c) in s.columns.iter().enumerate() {
            if c.name.is_empty() {
                return Err(SpecError::key(
                    file,
                    &format!("source.columns[{i}].name"),
                    "must not be empty",
                ));
            }
            if !seen.insert(&c.name) {
                return Err(SpecError::key(
                    file,
                    &format!("source.columns[{i}].name"),
                    format!("{:?} is declared twice", c.name),
                ));
            }
            if let Some(t) = &c.ty {
                types::parse_source_type(t)
                    .map_err(|m| SpecError::key(file, &format!("source.columns[{i}].type"), m))?;
            }
        }
        if let Some(sample) = &s.sample
            && let Some(dir) = &self.dir
            && !dir.join(sample).is_file()
        {
            return Err(SpecError::key(
                file,
                "source.sample",
                format!("{} does not exist", dir.join(sample).display()),
            ));
        }
        for (i, g) in self.routing.keys.iter().enumerate() {
            globset::Glob::new(g)
                .map_err(|e| SpecError::key(file, &format!("routing.keys[{i}]"), e.to_string()))?;
        }
        if let Some(t) = &self.target {
            QualifiedName::parse(&t.table)
                .map_err(|e| SpecError::key(file, "target.table", e.to_string()))?;
            if t.mode.keyed() && t.keys.is_empty() {
                return Err(SpecError::key(
                    file,
                    "target.keys",
                    format!(
                        "mode = \"{}\" needs the key columns, e.g. keys = [\"id\"]",
                        t.mode
                    ),
                ));
            }
            if t.lineage.contains(&Lineage::Line) && self.errors.max_bad_rows > 0 {
                return Err(SpecError::key(
                    file,
                    "target.lineage",
                    "\"line\" numbers the input's records as they are read, and a record set aside under errors.max_bad_rows would shift the numbers after it: use one or the other",
                ));
            }
            for (col, ty) in &t.types {
                PgType::parse(ty).ok_or_else(|| {
                    SpecError::key(
                        file,
                        &format!("target.types.{col}"),
                        format!("unknown PostgreSQL type {ty:?}"),
                    )
                })?;
            }
        }
        if let Some(c) = &self.convert {
            crate::convert::writers::OutputFormat::from_spec(c)
                .map_err(|e| SpecError::key(file, "convert", e.to_string()))?;
        } else if self.routing.workflow == Workflow::Converter && self.dir.is_some() {
            return Err(SpecError::key(
                file,
                "convert",
                "a converter dataset needs a [convert] section, e.g. to = \"parquet\"",
            ));
        }
        if self.target.is_none() && self.routing.workflow == Workflow::Loader && self.dir.is_some()
        {
            return Err(SpecError::key(
                file,
                "target",
                "a loader dataset needs a [target] section with table = \"schema.table\"",
            ));
        }
        Ok(())
    }

    fn dialect_checked(&self, file: &Path) -> Result<CsvDialect, SpecError> {
        let s = &self.source;
        let mut d = CsvDialect::default();
        if s.format == Some(Format::Tsv) {
            d.delimiter = b'\t';
        }
        if let Some(v) = &s.delimiter {
            d.delimiter = single_char(file, "source.delimiter", v, false)?.unwrap_or(b',');
        }
        if let Some(v) = &s.quote {
            d.quote = single_char(file, "source.quote", v, true)?;
        }
        if let Some(v) = &s.escape {
            d.escape = single_char(file, "source.escape", v, true)?;
        }
        if let Some(v) = &s.comment {
            d.comment = single_char(file, "source.comment", v, true)?;
        }
        if let Some(h) = s.header {
            d.header = h;
        }
        if let Some(n) = &s.null {
            d.nulls = n.to_vec().into_iter().map(String::into_bytes).collect();
        }
        d.trailing_delimiter = s.trailing_delimiter;
        if let Some(v) = &s.decimal_separator {
            d.locale.decimal =
                single_char(file, "source.decimal_separator", v, false)?.unwrap_or(b'.');
        }
        if let Some(v) = &s.thousands_separator {
            d.locale.thousands = single_char(file, "source.thousands_separator", v, true)?;
        }
        let values = |v: &[String]| v.iter().map(|s| s.trim().as_bytes().to_vec()).collect();
        d.locale.true_values = values(&s.true_values);
        d.locale.false_values = values(&s.false_values);
        d.validate()
            .map_err(|m| SpecError::key(file, "source", m))?;
        Ok(d)
    }

    /// The CSV dialect the source options describe.
    pub fn dialect(&self) -> CsvDialect {
        self.dialect_checked(Path::new("")).unwrap_or_default()
    }

    /// Where `dataset.toml` is (for messages).
    pub fn toml_path(&self) -> PathBuf {
        self.dir.as_ref().map_or_else(
            || PathBuf::from("(command line)"),
            |d| d.join("dataset.toml"),
        )
    }

    /// The target table, parsed.
    pub fn target_table(&self) -> Option<QualifiedName> {
        self.target
            .as_ref()
            .and_then(|t| QualifiedName::parse(&t.table).ok())
    }

    /// What a load proves before publishing (`[target] verify`,
    /// `[target.verify_except]`).
    pub fn verify_policy(&self) -> VerifyPolicy {
        let t = self.target.as_ref();
        VerifyPolicy {
            level: t.map(|t| t.verify).unwrap_or_default(),
            except: t.map(|t| t.verify_except.clone()).unwrap_or_default(),
        }
    }

    /// What a load may do when the table drifted from the input
    /// (`[target] on_*` keys and `[source] match_columns`).
    pub fn drift_policy(&self) -> DriftPolicy {
        let t = self.target.as_ref();
        DriftPolicy {
            duplicate_keys: t.map(|t| t.duplicate_keys).unwrap_or_default(),
            on_missing_columns: t.map(|t| t.on_missing_columns).unwrap_or_default(),
            on_new_columns: t.map(|t| t.on_new_columns).unwrap_or_default(),
            on_type_change: t.map(|t| t.on_type_change).unwrap_or_default(),
            match_columns: self.source.match_columns.unwrap_or(
                // A headerless file names its columns column_1, column_2…
                // unless the spec declares them: only their order means anything.
                if self.source.header == Some(false) && self.source.columns.is_empty() {
                    MatchColumns::Position
                } else {
                    MatchColumns::Name
                },
            ),
        }
    }

    /// The sample file, resolved against the spec folder.
    pub fn sample_path(&self) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(self.source.sample.as_ref()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, toml: &str, sql: Option<&str>) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("dataset.toml"), toml).unwrap();
        if let Some(sql) = sql {
            std::fs::write(dir.join("transform.sql"), sql).unwrap();
        }
    }

    /// A one-off job pins its spec as `to_toml` writes it: the text must
    /// load back as the same spec, for every shipped dataset (loader and
    /// converter, declared columns, types, error policy).
    #[test]
    fn a_spec_written_as_toml_loads_back_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql");
        let mut seen = 0;
        for entry in std::fs::read_dir(&shipped).unwrap().flatten() {
            if !entry.path().join("dataset.toml").is_file() {
                continue;
            }
            let spec = DatasetSpec::load(&entry.path()).unwrap();
            let copy = tmp.path().join(&spec.name);
            write(&copy, &spec.to_toml().unwrap(), Some(&spec.transform_sql));
            let back = DatasetSpec::load(&copy).unwrap();
            let comparable = |s: &DatasetSpec| {
                let mut s = s.clone();
                s.dir = None;
                s.transform_path = PathBuf::new();
                s.source.sample = None;
                format!("{s:?}")
            };
            assert_eq!(comparable(&back), comparable(&spec), "{}", spec.name);
            seen += 1;
        }
        assert!(seen >= 4, "the shipped specs: {seen}");
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        write(
            &dir,
            "[source]\nformat = \"csv\"\ndelimter = \"|\"\n",
            Some("SELECT * FROM source"),
        );
        let e = DatasetSpec::load(&dir).unwrap_err();
        assert!(e.location.ends_with("dataset.toml:3:1"), "{e}");
        assert!(e.message.contains("unknown field `delimter`"), "{e}");
    }

    #[test]
    fn missing_transform_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        write(&dir, "[target]\ntable = \"t\"\n", None);
        let e = DatasetSpec::load(&dir).unwrap_err();
        assert!(e.location.ends_with("transform.sql"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let tmp = tempfile::tempdir().unwrap();
        let cases = [
            (
                "[source]\ndelimiter = \"||\"\n[target]\ntable = \"t\"",
                "source.delimiter",
            ),
            (
                "[source]\nformat = \"parquet\"\nheader = true\n[target]\ntable = \"t\"",
                "source.header",
            ),
            (
                "[[source.columns]]\nname = \"a\"\ntype = \"strnig\"\n[target]\ntable = \"t\"",
                "source.columns[0].type",
            ),
            ("[target]\ntable = \"a.b.c\"", "target.table"),
            ("[target]\ntable = \"t\"\nmode = \"upsert\"", "target.keys"),
            (
                "[target]\ntable = \"t\"\n[target.types]\nx = \"geometry\"",
                "target.types.x",
            ),
            (
                "[source]\nquote = \"'\"\nescape = \"'\"\ndelimiter = \"'\"\n[target]\ntable = \"t\"",
                "source",
            ),
            ("[source]\nformat = \"csv\"", "target"),
        ];
        for (i, (toml, key)) in cases.iter().enumerate() {
            let dir = tmp.path().join(format!("d{i}"));
            write(&dir, toml, Some("SELECT * FROM source"));
            let e = DatasetSpec::load(&dir).unwrap_err();
            assert!(e.location.contains(&format!("(key {key})")), "{toml}: {e}");
        }
        let dir = tmp.path().join("bad-mode");
        write(
            &dir,
            "[target]\ntable = \"t\"\nmode = \"merge\"",
            Some("SELECT 1"),
        );
        let e = DatasetSpec::load(&dir).unwrap_err();
        assert!(e.location.ends_with(":3:8"), "{e}");
    }

    #[test]
    fn a_good_spec_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("orders");
        write(
            &dir,
            "[source]\nformat = \"csv\"\ndelimiter = \"|\"\nheader = false\nnull = [\"\", \"NA\"]\n[[source.columns]]\nname = \"id\"\ntype = \"bigint\"\n[target]\ntable = \"sales.orders\"\nmode = \"upsert\"\nkeys = [\"id\"]\n",
            Some("SELECT id FROM source"),
        );
        let s = DatasetSpec::load(&dir).unwrap();
        assert_eq!(s.name, "orders");
        let d = s.dialect();
        assert_eq!((d.delimiter, d.header), (b'|', false));
        assert_eq!(d.nulls, vec![b"".to_vec(), b"NA".to_vec()]);
        assert_eq!(
            s.target_table(),
            Some(QualifiedName::new("sales", "orders"))
        );
    }
}
