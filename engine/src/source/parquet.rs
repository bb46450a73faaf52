//! Apache Parquet, through DataFusion's reader (in parallel, by row group).

use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::error::FerryError;
use crate::format::Format;

use super::typed::TypedFile;
use super::{Input, df_err, path_str};

/// `parquet` inputs.
pub(super) struct Parquet;

#[async_trait::async_trait]
impl TypedFile for Parquet {
    const FORMAT: Format = Format::Parquet;

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
