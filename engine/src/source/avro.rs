//! Avro object container files, through arrow-avro's reader.

use std::io::BufReader;
use std::sync::Arc;

use datafusion::prelude::SessionContext;

use crate::decode::DecodeError;
use crate::decode::blocking::{BlockingPartition, OpenFn};
use crate::error::FerryError;
use crate::format::Format;

use super::typed::TypedFile;
use super::{Input, df_err};

/// `avro` inputs.
pub(super) struct Avro;

#[async_trait::async_trait]
impl TypedFile for Avro {
    const FORMAT: Format = Format::Avro;

    async fn register_raw(
        &self,
        ctx: &SessionContext,
        name: &str,
        input: &Input,
    ) -> Result<(), FerryError> {
        let table = avro_table(input)?.table().map_err(df_err(input))?;
        ctx.register_table(name, Arc::new(table))
            .map(|_| ())
            .map_err(df_err(input))
    }
}

/// An Avro object container file as a blocking source (arrow-avro's reader).
pub fn avro_table(input: &Input) -> Result<BlockingPartition, FerryError> {
    let path = input.path.clone();
    let display = input.display.clone();
    let open_reader =
        move || -> Result<arrow_avro::reader::Reader<BufReader<std::fs::File>>, DecodeError> {
            let file = std::fs::File::open(&path)
                .map_err(|e| DecodeError::io(display.clone(), "cannot open", e))?;
            arrow_avro::reader::ReaderBuilder::new()
                .with_batch_size(8192)
                .build(BufReader::with_capacity(1 << 20, file))
                .map_err(|e| DecodeError::Reader {
                    file: display.clone(),
                    location: String::new(),
                    detail: format!("not a readable Avro file: {e}"),
                })
        };
    let schema = open_reader().map_err(FerryError::Decode)?.schema();
    let display = input.display.clone();
    let open: OpenFn = Arc::new(move || {
        let display = display.clone();
        let reader = open_reader()?;
        Ok(Box::new(reader.map(move |b| {
            b.map_err(|e| DecodeError::Reader {
                file: display.clone(),
                location: String::new(),
                detail: e.to_string(),
            })
        })) as Box<dyn Iterator<Item = _> + Send>)
    });
    Ok(BlockingPartition::new(schema, open))
}
