//! Arrow IPC, file (Feather v2) or stream, through DataFusion's reader.

use arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::prelude::SessionContext;

use crate::error::FerryError;
use crate::format::Format;

use super::typed::{self, TypedFile};
use super::{FormatReader, Input, Opening, df_err, path_str};

/// `arrow` inputs.
pub(super) struct Arrow;

#[async_trait::async_trait]
impl FormatReader for Arrow {
    fn formats(&self) -> &'static [Format] {
        &[Format::Arrow]
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
impl TypedFile for Arrow {
    async fn register_raw(
        &self,
        ctx: &SessionContext,
        name: &str,
        input: &Input,
    ) -> Result<(), FerryError> {
        let path = path_str(input)?;
        let options = ArrowReadOptions {
            file_extension: "",
            ..Default::default()
        };
        ctx.register_arrow(name, path.as_str(), options)
            .await
            .map_err(df_err(input))
    }
}
