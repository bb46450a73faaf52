//! What the typed formats (Parquet, Arrow IPC, Avro) share: the file
//! carries its own schema, and declared types are applied as casts that must
//! not change a value (`decode::fit`).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::prelude::SessionContext;

use crate::decode::DecodeError;
use crate::decode::fit::DeclaredTypes;
use crate::error::FerryError;
use crate::format::Format;

use super::{FormatReader, Input, Opening, apply_declared, df_err, path_str};

/// A typed file format: how DataFusion reads it as a table named `name`.
/// Every typed file is a [`FormatReader`] through [`register`].
#[async_trait::async_trait]
pub(super) trait TypedFile: Sync {
    /// The format it reads.
    const FORMAT: Format;
    /// Registers `input` as `name` in `ctx`, as the file's own schema says.
    async fn register_raw(
        &self,
        ctx: &SessionContext,
        name: &str,
        input: &Input,
    ) -> Result<(), FerryError>;
}

#[async_trait::async_trait]
impl<T: TypedFile> FormatReader for T {
    fn formats(&self) -> &'static [Format] {
        std::slice::from_ref(&T::FORMAT)
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        opening: &Opening<'_>,
    ) -> Result<SchemaRef, FerryError> {
        register(self, ctx, opening).await
    }
}

/// Registers a typed file: as `source` directly, or, with declared types,
/// through a single-partition read whose casts are checked value by value.
pub(super) async fn register(
    file: &impl TypedFile,
    ctx: &SessionContext,
    opening: &Opening<'_>,
) -> Result<SchemaRef, FerryError> {
    let (spec, input) = (opening.spec, opening.input);
    let _path = path_str(input)?;
    let declared = spec.source.columns.iter().any(|c| c.ty.is_some());
    // With declared types the file is read by a context of its own with one
    // partition, in file order, so a value that does not fit is named by
    // its row; without, DataFusion reads it in parallel as `source`.
    let own;
    let (raw_ctx, raw) = if declared {
        own = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_target_partitions(1),
        );
        (&own, "raw")
    } else {
        (ctx, "source")
    };
    match opening.range {
        // register_part has checked that only Parquet comes in parts here.
        Some(super::PartRange::RowGroups(part)) => {
            let threads = raw_ctx.state().config().target_partitions();
            super::parquet::register_row_groups(raw_ctx, raw, input, part, threads).await?
        }
        _ => file.register_raw(raw_ctx, raw, input).await?,
    }
    let table = raw_ctx.table(raw).await.map_err(df_err(input))?;
    if raw == "source" {
        return Ok(Arc::new(table.schema().as_arrow().clone()));
    }
    // Declared types win: each declared column is cast, and a value the
    // cast would change fails the read, naming its row (decode::fit).
    let inferred = table.schema().as_arrow().clone();
    let declared = apply_declared(&inferred, &spec.source.columns, &spec.toml_path())?;
    if let Some(missing) = declared
        .fields()
        .iter()
        .find(|f| inferred.field_with_name(f.name()).is_err())
    {
        return Err(FerryError::Decode(DecodeError::Layout {
            file: input.display.clone(),
            detail: format!(
                "declared column {:?} is not in the file (it has {:?})",
                missing.name(),
                inferred
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
            ),
        }));
    }
    let schema = Arc::new(declared);
    let first_row = match opening.range {
        Some(super::PartRange::RowGroups(part)) => part.row,
        _ => 0,
    };
    let partition =
        DeclaredTypes::new(schema.clone(), table, input.display.clone()).starting_at(first_row);
    let table = StreamingTable::try_new(schema.clone(), vec![Arc::new(partition)])
        .map_err(df_err(input))?;
    ctx.register_table("source", Arc::new(table))
        .map_err(df_err(input))?;
    Ok(schema)
}
