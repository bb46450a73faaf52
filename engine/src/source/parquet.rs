//! Apache Parquet, through DataFusion's reader (in parallel, by row group).

use arrow::datatypes::SchemaRef;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::error::FerryError;
use crate::format::Format;

use super::typed::{self, TypedFile};
use super::{FormatReader, Input, Opening, df_err, path_str};

/// `parquet` inputs.
pub(super) struct Parquet;

#[async_trait::async_trait]
impl FormatReader for Parquet {
    fn formats(&self) -> &'static [Format] {
        &[Format::Parquet]
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        opening: &Opening<'_>,
    ) -> Result<SchemaRef, FerryError> {
        typed::register(self, ctx, opening).await
    }
}

#[async_trait::async_trait]
impl TypedFile for Parquet {
    async fn register_raw(
        &self,
        ctx: &SessionContext,
        name: &str,
        input: &Input,
    ) -> Result<(), FerryError> {
        let path = path_str(input)?;
        ctx.register_parquet(
            name,
            path.as_str(),
            ParquetReadOptions::default().file_extension(""),
        )
        .await
        .map_err(df_err(input))
    }
}
