//! `ferry spec check` and `ferry spec init`: what a spec will produce, before
//! any data moves, and a first spec written from a sample file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use ferry_connectors::pg::catalog::{NewColumn, create_table_sql};
use ferry_connectors::pg::codec::ColumnCodec;
use ferry_connectors::pg::codec::binary::BinaryEncoder;
use ferry_connectors::pg::load::{InputIdentity, LoadRequest, plan_output};
use ferry_connectors::pg::{CopyFormat, LoadMode, PgConfig, PgType, QualifiedName, SchemaChange};
use ferry_connectors::store::Checksum;
use serde::Serialize;

use super::types::{parse_source_type, spell};
use super::{ColumnSpec, DatasetSection, DatasetSpec, RoutingSpec, SourceSpec, TargetSpec};
use crate::error::FerryError;
use crate::format::Format;
use crate::load::{output_columns, select_loaded, with_lineage};
use crate::source::{Input, register_source, resolve_csv_schema};
use crate::{sniff, transform};

/// One output column as the load will create it.
#[derive(Debug, Clone, Serialize)]
pub struct OutputColumnInfo {
    /// Name.
    pub name: String,
    /// Arrow type from the transform.
    pub arrow: String,
    /// PostgreSQL column type.
    pub postgres: String,
    /// Whether it may be NULL.
    pub nullable: bool,
}

/// What `spec check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Dataset name.
    pub dataset: String,
    /// Where the source schema came from.
    pub schema_from: String,
    /// The source columns.
    pub source: Vec<OutputColumnInfo>,
    /// The transform's output.
    pub output: Vec<OutputColumnInfo>,
    /// `CREATE TABLE` for the target.
    pub ddl: Option<String>,
    /// Output columns renamed for the table (`[target] column_names`):
    /// (as written, as the table names it).
    pub renamed: Vec<(String, String)>,
    /// Rows of the sample that were decoded, transformed and encoded for
    /// their target columns, as a load would (none without a sample).
    pub sample_rows: Option<u64>,
    /// The live table compared with the spec (`--database-url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseCheck>,
}

/// What a load would do to the live table: `spec check --database-url`
/// reads the catalog and changes nothing.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseCheck {
    /// The server (never the password).
    pub database: String,
    /// The target table.
    pub table: String,
    /// Whether it exists now.
    pub table_exists: bool,
    /// The changes a load would make to it (or the columns it would leave out).
    pub schema_changes: Vec<SchemaChange>,
    /// The DDL a load would run: `CREATE TABLE` for a missing table, the
    /// `ALTER TABLE`s for a drifted one, nothing when the table fits.
    pub ddl: Vec<String>,
}

fn describe(
    schema: &Schema,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<OutputColumnInfo>, FerryError> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let pg = match overrides.get(f.name()) {
                Some(t) => PgType::parse(t),
                None => PgType::for_field(f),
            };
            Ok(OutputColumnInfo {
                name: f.name().clone(),
                arrow: f.data_type().to_string(),
                postgres: pg.map(|t| t.to_string()).ok_or_else(|| {
                    FerryError::Usage(format!(
                        "column {:?} ({}) has no PostgreSQL mapping; cast it in transform.sql or set [target.types]",
                        f.name(),
                        f.data_type()
                    ))
                })?,
                nullable: f.is_nullable(),
            })
        })
        .collect()
}

/// The source schema from declarations alone, when every column has a type.
fn declared_schema(spec: &DatasetSpec) -> Option<SchemaRef> {
    let cols = &spec.source.columns;
    if cols.is_empty() || cols.iter().any(|c| c.ty.is_none()) {
        return None;
    }
    let fields: Option<Vec<Field>> = cols
        .iter()
        .map(|c| {
            parse_source_type(c.ty.as_deref()?)
                .ok()
                .map(|t| t.field(&c.name, true))
        })
        .collect();
    Some(Arc::new(Schema::new(fields?)))
}

/// Plans the spec against its declared schema or a sample file and reports
/// the output schema and the target's DDL. Touches no database.
///
/// With `pg`, the live target table is compared too (its catalog read, nothing
/// changed): a load's errors (a column the table lacks under `on_new_columns
/// = "fail"`, a type it cannot take) are reported as a load would, the DDL a
/// load would run is returned, and the sample is encoded for the table's
/// actual column types.
pub async fn check(
    spec: &DatasetSpec,
    sample: Option<&Path>,
    pg: Option<&PgConfig>,
) -> Result<CheckReport, FerryError> {
    let ctx = transform::new_session();
    let sample = sample.map(Path::to_path_buf).or_else(|| spec.sample_path());
    let mut sampled = None;
    let (schema, schema_from) = match (&sample, declared_schema(spec)) {
        (None, Some(schema)) => {
            let table = MemTable::try_new(schema.clone(), vec![vec![]])
                .map_err(|e| FerryError::Internal(e.to_string()))?;
            ctx.register_table("source", Arc::new(table))
                .map_err(|e| FerryError::Internal(e.to_string()))?;
            let input = Input {
                path: spec.toml_path(),
                display: "the declared columns".into(),
            };
            let schema = crate::source::rename(&ctx, spec, &input, schema).await?;
            (schema, "declared columns".to_string())
        }
        (Some(path), _) => {
            let input = Input {
                path: path.clone(),
                display: path.display().to_string(),
            };
            let source = register_source(&ctx, spec, &input, None).await?;
            sampled = Some((source.clone(), input));
            (source.schema, format!("sample {}", path.display()))
        }
        (None, None) => {
            return Err(FerryError::Usage(format!(
                "{}: cannot know the source schema without data: declare a type for every column in [[source.columns]], set source.sample, or pass --sample <file>",
                spec.toml_path().display()
            )));
        }
    };
    let df = transform::plan(&ctx, spec).await?;
    let (df, renamed) = match &spec.target {
        Some(_) => transform::name_for_target(df, spec)?,
        None => (df, transform::Renamed::default()),
    };
    let df = with_lineage(df, spec, "spec-check", "spec check")?;
    let out = df.schema().as_arrow().clone();
    let overrides = spec
        .target
        .as_ref()
        .map(|t| {
            t.types
                .iter()
                .map(|(k, v)| (renamed.table_name(k), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let output = describe(&out, &overrides)?;
    let source_cols = describe(&schema, &Default::default())?;
    let ddl = match (&spec.target, spec.target_table()) {
        (Some(t), Some(table)) => {
            let pk = if t.mode == LoadMode::Upsert {
                t.keys.iter().map(|k| renamed.table_name(k)).collect()
            } else {
                Vec::new()
            };
            for k in &pk {
                if !output.iter().any(|c| &c.name == k) {
                    return Err(FerryError::Usage(format!(
                        "target.keys: {k:?} is not a column of the transform's output"
                    )));
                }
            }
            let cols: Vec<NewColumn> = output
                .iter()
                .map(|c| NewColumn {
                    name: c.name.clone(),
                    pg: PgType::parse(&c.postgres).unwrap_or(PgType::Text),
                    not_null: !c.nullable || pk.contains(&c.name),
                })
                .collect();
            Some(create_table_sql(&table, &cols, &pk, true, false))
        }
        _ => None,
    };
    let columns = output_columns(&out, &overrides, spec)?;
    let (database, df, codecs) = match (pg, &spec.target, spec.target_table()) {
        (Some(pg), Some(t), Some(table)) => {
            let request = LoadRequest {
                target: table.clone(),
                mode: t.mode,
                keys: t.keys.iter().map(|k| renamed.table_name(k)).collect(),
                streams: 1,
                create: t.create,
                force: false,
                input: InputIdentity {
                    input: spec.toml_path().display().to_string(),
                    checksum: Checksum::known(""),
                    bytes: 0,
                },
                dataset: spec.name.clone(),
                job_id: "spec-check".into(),
                columns: columns.clone(),
                drift: spec.drift_policy(),
                format: CopyFormat::Binary,
                verify: crate::load::verify_policy(spec, |c| renamed.table_name(c)),
            };
            let plan = plan_output(pg, &request).await?;
            // A verify_except entry that cannot apply fails as the load would.
            ferry_connectors::pg::receipt::plan_checks(&plan.codecs, &request.verify)
                .map_err(ferry_connectors::pg::PgError::from)?;
            let ddl = if plan.target_exists {
                plan.changes.iter().filter_map(|c| c.ddl(&table)).collect()
            } else {
                vec![plan.target_ddl.clone()]
            };
            let df = select_loaded(df, &columns, &plan.loaded)?;
            let check = DatabaseCheck {
                database: pg.display(),
                table: table.to_string(),
                table_exists: plan.target_exists,
                schema_changes: plan.changes,
                ddl,
            };
            (Some(check), df, plan.codecs)
        }
        (Some(_), _, _) => {
            return Err(FerryError::Usage(format!(
                "{}: --database-url compares the spec with its target table, and it has none ([target] table)",
                spec.toml_path().display()
            )));
        }
        _ => {
            let codecs = columns
                .iter()
                .map(|c| ColumnCodec::plan(&c.name, &c.data_type, &c.pg))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| FerryError::Usage(e.to_string()))?;
            (None, df, Arc::new(codecs))
        }
    };
    let sample_rows = match sampled {
        Some((source, input)) => Some(
            read_sample(df, codecs, spec)
                .await
                .map_err(|e| source.explain(e, &input))?,
        ),
        None => None,
    };
    Ok(CheckReport {
        dataset: spec.name.clone(),
        schema_from,
        source: source_cols,
        output,
        ddl,
        renamed: renamed.0,
        sample_rows,
        database,
    })
}

/// Reads the whole sample through the plan and encodes every row for its
/// target column, as a load would, so a value the spec cannot take (a
/// declared `numeric(12,2)` over `1,234.56`, bytes that are not UTF-8, a
/// number too large for a `[target.types]` override) fails the check.
async fn read_sample(
    df: datafusion::dataframe::DataFrame,
    codecs: ferry_connectors::pg::codec::Codecs,
    spec: &DatasetSpec,
) -> Result<u64, FerryError> {
    use futures::StreamExt;
    let transform = spec.transform_path.display().to_string();
    let encoder = BinaryEncoder::new(codecs);
    let mut stream = transform::execute_ordered(df)
        .await
        .map_err(|e| FerryError::from_datafusion(e, &transform))?;
    let mut rows = 0u64;
    let mut scratch = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| FerryError::from_datafusion(e, &transform))?;
        scratch.clear();
        encoder
            .encode(&batch, &mut scratch)
            .map_err(|e| FerryError::Encode {
                row: rows + e.row as u64 + 1,
                source: e,
            })?;
        rows += batch.num_rows() as u64;
    }
    Ok(rows)
}

/// What `spec init` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The new spec folder.
    pub dir: PathBuf,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// The sniffing conclusions worth double-checking.
    pub notes: Vec<String>,
}

fn sql_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Sniffs `file` and writes `<parent>/<name>/dataset.toml`, `transform.sql`
/// and (for text formats) a small `sample.*` of the file's first lines.
pub async fn init(
    file: &Path,
    name: &str,
    parent: &Path,
    table: Option<&str>,
    force: bool,
) -> Result<InitReport, FerryError> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(FerryError::Usage(format!(
            "--name {name:?}: use a plain folder name like `orders`"
        )));
    }
    let dir = parent.join(name);
    if dir.join("dataset.toml").exists() && !force {
        return Err(FerryError::Usage(format!(
            "{} exists; pass --force to overwrite it",
            dir.join("dataset.toml").display()
        )));
    }
    let input = Input {
        path: file.to_path_buf(),
        display: file.display().to_string(),
    };
    let mut source = SourceSpec::default();
    let mut notes = Vec::new();
    if let Some(encoding) = sniff::guess_encoding(&source, &input)? {
        source.encoding = Some(encoding.to_string());
        notes.push(format!(
            "the file is not UTF-8: encoding {encoding:?} assumed; check names and accents in the sample, and correct [source] encoding if they look wrong"
        ));
    }
    let sniffed = sniff::complete_source(&mut source, &input)?;
    let format = source.format.unwrap_or(Format::Csv);
    if let Some(s) = &sniffed {
        notes.push(format!(
            "delimiter {:?}; header {}",
            s.delimiter as char, s.header_reason
        ));
    }
    // Infer the schema the way a load would.
    let ad_hoc = DatasetSpec::ad_hoc(name, source.clone(), None);
    let schema = if format.is_delimited() {
        let mut dialect = ad_hoc.dialect();
        if format == Format::Tsv {
            dialect.delimiter = b'\t';
        }
        let compression = source.compression.resolve(file);
        let schema = resolve_csv_schema(&input, compression, &dialect, &source)?.schema;
        // A continental European export (`;`, `1.234,5`): read numbers that
        // way when it types more columns as numbers, and say so.
        if dialect.delimiter != b',' && source.decimal_separator.is_none() {
            let mut comma = source.clone();
            comma.decimal_separator = Some(",".into());
            comma.thousands_separator = Some(".".into());
            let mut local = dialect.clone();
            local.locale.decimal = b',';
            local.locale.thousands = Some(b'.');
            let alt = resolve_csv_schema(&input, compression, &local, &comma)?.schema;
            let numbers = |s: &arrow::datatypes::Schema| {
                s.fields()
                    .iter()
                    .filter(|f| f.data_type().is_numeric())
                    .count()
            };
            if numbers(&alt) > numbers(&schema) {
                source = comma;
                notes.push(
                    "numbers are written like 1.234,5: decimal_separator \",\" and thousands_separator \".\" assumed".into(),
                );
                alt
            } else {
                schema
            }
        } else {
            schema
        }
    } else {
        let ctx = transform::new_session();
        register_source(&ctx, &ad_hoc, &input, None).await?.schema
    };
    // How the table will name the columns (column_names = "snake_case").
    let renamed: Vec<String> = schema
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let to = ferry_connectors::pg::ident::snake_case(f.name())
                .unwrap_or_else(|| format!("column_{}", i + 1));
            (&to != f.name()).then(|| format!("{:?} -> {to}", f.name()))
        })
        .collect();
    if !renamed.is_empty() {
        notes.push(format!(
            "table columns in snake_case (column_names = \"snake_case\"; \"as-is\" keeps them): {}",
            renamed.join(", ")
        ));
    }
    let declare_types = format.is_delimited();
    source.columns = schema
        .fields()
        .iter()
        .map(|f| ColumnSpec {
            name: f.name().clone(),
            ty: declare_types.then(|| spell(f)),
            format: None,
        })
        .collect();
    std::fs::create_dir_all(&dir)
        .map_err(|e| FerryError::io(format!("creating {}", dir.display()), e))?;
    let mut files = Vec::new();
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if format.is_delimited() || format == Format::Ndjson {
        let compression = source.compression.resolve(file);
        let lines = crate::source::first_lines(&input, compression, source.text_encoding(), 101)?;
        let ext = match format {
            Format::Tsv => "tsv",
            Format::Ndjson => "ndjson",
            _ => "csv",
        };
        let sample = dir.join(format!("sample.{ext}"));
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&sample, text)
            .map_err(|e| FerryError::io(format!("writing {}", sample.display()), e))?;
        source.sample = Some(format!("sample.{ext}"));
        // The sample is uncompressed even if the input is not.
        if source.compression != crate::decode::Compression::Auto {
            notes.push("the sample is stored uncompressed".into());
        }
        files.push(sample);
    }
    let stem = file_name.split('.').next().unwrap_or(name).to_string();
    let spec_toml = SpecToml {
        dataset: DatasetSection {
            name: Some(name.to_string()),
            description: Some(format!("Generated by `ferry spec init` from {file_name}")),
        },
        source,
        routing: RoutingSpec {
            keys: vec![format!("**/{stem}*")],
            workflow: super::Workflow::Loader,
        },
        target: TargetSpec::named(
            table
                .map(str::to_string)
                .unwrap_or_else(|| QualifiedName::new("public", name).to_string()),
        ),
    };
    let body =
        toml::to_string_pretty(&spec_toml).map_err(|e| FerryError::Internal(e.to_string()))?;
    let mut text = format!(
        "# ferry dataset spec, generated by `ferry spec init` from {file_name}.\n# Edit freely; `ferry spec check {}` validates it. Every key: sql/README.md.\n",
        dir.display()
    );
    for n in &notes {
        text.push_str(&format!("# sniffed: {n}\n"));
    }
    text.push('\n');
    text.push_str(&body);
    let toml_path = dir.join("dataset.toml");
    std::fs::write(&toml_path, text)
        .map_err(|e| FerryError::io(format!("writing {}", toml_path.display()), e))?;
    files.push(toml_path);
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("    {}", sql_ident(f.name())))
        .collect();
    let sql = format!(
        "-- One DataFusion SELECT over the table `source`: rename, cast, filter or compute columns here.\nSELECT\n{}\nFROM source\n",
        cols.join(",\n")
    );
    let sql_path = dir.join("transform.sql");
    std::fs::write(&sql_path, sql)
        .map_err(|e| FerryError::io(format!("writing {}", sql_path.display()), e))?;
    files.push(sql_path);
    // What we wrote must read back.
    DatasetSpec::load(&dir)?;
    Ok(InitReport { dir, files, notes })
}

#[derive(Serialize)]
struct SpecToml {
    dataset: DatasetSection,
    source: SourceSpec,
    routing: RoutingSpec,
    target: TargetSpec,
}
