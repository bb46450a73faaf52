//! NDJSON, through ferry's strict reader (`decode::json`).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use crate::decode::RejectSink;
use crate::decode::csv::ReadCounters;
use crate::decode::json::{self, JsonSource};
use crate::error::FerryError;
use crate::format::Format;
use crate::spec::DatasetSpec;

use super::{FormatReader, Input, Opening, apply_declared, df_err};

/// Newline-delimited JSON.
pub(super) struct Ndjson;

#[async_trait::async_trait]
impl FormatReader for Ndjson {
    fn formats(&self) -> &'static [Format] {
        &[Format::Ndjson]
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        opening: &Opening<'_>,
    ) -> Result<SchemaRef, FerryError> {
        register_json(
            ctx,
            opening.spec,
            opening.input,
            opening.counters.clone(),
            opening.rejects.clone(),
        )
    }
}

/// Registers an NDJSON input through ferry's strict reader
/// ([`crate::decode::json`]), with the inferred schema and declared types.
fn register_json(
    ctx: &SessionContext,
    spec: &DatasetSpec,
    input: &Input,
    counters: Arc<ReadCounters>,
    rejects: Option<Arc<RejectSink>>,
) -> Result<SchemaRef, FerryError> {
    let compression = spec.source.compression.resolve(&input.path);
    let max_record = spec.source.max_record();
    let inferred = json::infer_json(
        &input.path,
        &input.display,
        compression,
        spec.source.text_encoding(),
        spec.source.infer_limit(),
        max_record,
    )?;
    let schema = Arc::new(apply_declared(
        &inferred.schema,
        &spec.source.columns,
        &spec.toml_path(),
    )?);
    let exact = schema
        .fields()
        .iter()
        .map(|f| {
            !spec
                .source
                .columns
                .iter()
                .any(|c| &c.name == f.name() && c.ty.is_some())
        })
        .collect();
    let source = Arc::new(JsonSource {
        path: input.path.clone(),
        display: input.display.clone(),
        compression,
        encoding: spec.source.text_encoding(),
        schema: schema.clone(),
        exact,
        max_record,
        sampled: inferred.sampled,
        counters,
        rejects,
    });
    let table = source.partition().table().map_err(df_err(input))?;
    ctx.register_table("source", Arc::new(table))
        .map_err(|e| FerryError::Internal(e.to_string()))?;
    Ok(schema)
}
