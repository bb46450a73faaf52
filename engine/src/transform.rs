//! The transform: a dataset's `transform.sql`, one DataFusion `SELECT` over
//! the table `source`, planned in a session tuned for streaming.

use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::error::FerryError;
use crate::spec::{DatasetSpec, SpecError};

/// A DataFusion session for one job.
///
/// Round-robin repartitioning and splitting files into byte ranges are off:
/// every file is read as one ordered stream, so the output keeps input order
/// (deterministic artifacts, and the order-preserving digests validation
/// compares). DataFusion does not promise that range partitions of one file
/// come back in file order — a validation test caught the last Arrow IPC
/// block arriving first. ferry's CSV reader, encoders and writers are parallel
/// outside DataFusion.
pub fn new_session() -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(crate::ordered::cores())
        .with_batch_size(8192)
        .with_information_schema(false);
    let options = config.options_mut();
    options.sql_parser.collect_spans = true;
    options.optimizer.enable_round_robin_repartition = false;
    options.optimizer.repartition_file_scans = false;
    SessionContext::new_with_config(config)
}

/// Plans the spec's transform against the registered `source`. Only a query
/// is allowed (no DDL, DML or `SET`), and errors point into `transform.sql`.
pub async fn plan(ctx: &SessionContext, spec: &DatasetSpec) -> Result<DataFrame, FerryError> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(&spec.transform_sql, options)
        .await
        .map_err(|e| FerryError::Spec(sql_error(&e, spec)))?;
    let schema = df.schema().as_arrow();
    let mut seen = std::collections::HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name().as_str()) {
            return Err(FerryError::Spec(SpecError {
                location: spec.transform_path.display().to_string(),
                message: format!(
                    "the SELECT produces column {:?} twice; give one an alias (AS …)",
                    f.name()
                ),
            }));
        }
    }
    Ok(df)
}

/// The output columns `[target] column_names` renamed: (as written, as the
/// table names it).
#[derive(Debug, Clone, Default)]
pub struct Renamed(pub Vec<(String, String)>);

impl Renamed {
    /// The table's name for a column named either way (keys and
    /// `[target.types]` may use the name as written).
    pub fn table_name(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(from, _)| from == name)
            .map_or_else(|| name.to_string(), |(_, to)| to.clone())
    }
}

/// Renames the plan's output columns for the target table under
/// `[target] column_names` (snake_case by default) and returns the renamed
/// plan with the pairs that changed. Two names that become one are refused,
/// naming both.
pub fn name_for_target(
    df: DataFrame,
    spec: &DatasetSpec,
) -> Result<(DataFrame, Renamed), FerryError> {
    let style = spec
        .target
        .as_ref()
        .map_or(crate::spec::ColumnNames::default(), |t| t.column_names);
    if style == crate::spec::ColumnNames::AsIs {
        return Ok((df, Renamed::default()));
    }
    let schema = df.schema().as_arrow().clone();
    let mut renamed = Vec::new();
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    let mut exprs = Vec::with_capacity(schema.fields().len());
    for (i, f) in schema.fields().iter().enumerate() {
        // ferry's own lineage columns keep their names (snake_case would
        // drop the leading underscore).
        let name = if f.name().starts_with("_ferry_") {
            f.name().clone()
        } else {
            ferry_connectors::pg::ident::snake_case(f.name())
                .unwrap_or_else(|| format!("column_{}", i + 1))
        };
        if let Some(other) = seen.insert(name.clone(), f.name().clone()) {
            return Err(FerryError::Spec(SpecError {
                location: format!("{} ([target] column_names)", spec.toml_path().display()),
                message: format!(
                    "columns {other:?} and {:?} both become {name:?} in snake_case; rename one in transform.sql (AS …) or set column_names = \"as-is\"",
                    f.name()
                ),
            }));
        }
        let column = datafusion::prelude::col(datafusion::common::Column::from_name(f.name()));
        if &name != f.name() {
            renamed.push((f.name().clone(), name.clone()));
        }
        exprs.push(column.alias(name));
    }
    if renamed.is_empty() {
        return Ok((df, Renamed(renamed)));
    }
    let df = df
        .select(exprs)
        .map_err(|e| FerryError::Internal(format!("renaming the output columns: {e}")))?;
    Ok((df, Renamed(renamed)))
}

/// Runs the plan and returns its output in a deterministic order: the
/// partitions (e.g. byte ranges of one Parquet file) run in parallel, each
/// ahead by at most two batches, and are read out one after the other. Order
/// matters for deterministic artifacts and for validation digests.
pub async fn execute_ordered(
    df: DataFrame,
) -> datafusion::common::Result<SendableRecordBatchStream> {
    let schema = Arc::new(df.schema().as_arrow().clone());
    let mut partitions = df.execute_stream_partitioned().await?;
    if partitions.len() == 1 {
        return Ok(partitions.remove(0));
    }
    let mut receivers = Vec::with_capacity(partitions.len());
    for mut partition in partitions {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            while let Some(batch) = partition.next().await {
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
        });
        receivers.push(rx);
    }
    let stream = futures::stream::iter(receivers).flat_map(|rx| {
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
}

/// Locates a planning error in `transform.sql` (line:column) when DataFusion
/// knows where it is.
fn sql_error(e: &datafusion::common::DataFusionError, spec: &DatasetSpec) -> SpecError {
    let message = crate::error::in_ferry_terms(&e.strip_backtrace());
    let mut location = spec.transform_path.display().to_string();
    let span = e
        .diagnostic()
        .and_then(|d| d.span)
        .filter(|s| s.start.line > 0);
    if let Some(span) = span {
        location = format!("{location}:{}:{}", span.start.line, span.start.column);
    } else if let Some((line, col)) = parser_position(&message) {
        location = format!("{location}:{line}:{col}");
    }
    let hint = if message.contains("table 'source'")
        || message.contains("not found") && message.contains("source")
    {
        ""
    } else if message.contains("only supports a single SQL statement") {
        " (transform.sql must hold exactly one SELECT)"
    } else if message.contains("not supported")
        && (message.contains("DDL") || message.contains("DML") || message.contains("Statement"))
    {
        " (transform.sql must be a SELECT over the table `source`)"
    } else {
        ""
    };
    SpecError {
        location,
        message: format!("{message}{hint}"),
    }
}

/// `… at Line: 3, Column: 14` from sqlparser's messages.
fn parser_position(message: &str) -> Option<(u64, u64)> {
    let at = message.find("Line: ")?;
    let rest = &message[at + 6..];
    let line: u64 = rest.split(',').next()?.trim().parse().ok()?;
    let col_at = rest.find("Column: ")?;
    let col: u64 = rest[col_at + 8..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()?;
    Some((line, col))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SourceSpec;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    async fn ctx_with_source() -> SessionContext {
        let ctx = new_session();
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
        ctx.register_batch("source", batch).unwrap();
        ctx
    }

    fn spec(sql: &str) -> DatasetSpec {
        let mut s = DatasetSpec::ad_hoc("t", SourceSpec::default(), None);
        s.transform_sql = sql.to_string();
        s.transform_path = "sql/t/transform.sql".into();
        s
    }

    #[tokio::test]
    async fn errors_point_into_the_sql() {
        let ctx = ctx_with_source().await;
        let e = plan(&ctx, &spec("SELECT a,\n  nope FROM source"))
            .await
            .unwrap_err();
        let FerryError::Spec(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(e.location, "sql/t/transform.sql:2:3", "{e}");
        let e = plan(&ctx, &spec("SELEC a FROM source")).await.unwrap_err();
        assert!(e.to_string().starts_with("sql/t/transform.sql:1:1"), "{e}");
        let e = plan(&ctx, &spec("CREATE TABLE x AS SELECT 1"))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("SELECT over the table `source`"),
            "{e}"
        );
        let e = plan(&ctx, &spec("SELECT a, a FROM source"))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("unique") || e.to_string().contains("twice"),
            "{e}"
        );
        assert!(
            plan(&ctx, &spec("SELECT a * 2 AS b FROM source"))
                .await
                .is_ok()
        );
    }
}
