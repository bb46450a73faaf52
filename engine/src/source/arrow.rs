//! Arrow IPC, file (Feather v2) or stream, through DataFusion's reader.

use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::prelude::SessionContext;

use crate::error::FerryError;
use crate::format::Format;

use super::typed::TypedFile;
use super::{Input, df_err, path_str};

/// `arrow` inputs.
pub(super) struct Arrow;

#[async_trait::async_trait]
impl TypedFile for Arrow {
    const FORMAT: Format = Format::Arrow;

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
