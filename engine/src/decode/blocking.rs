//! A table over any blocking reader that yields record batches (Avro, and the
//! PostgreSQL artifact readers used by validation): the reader runs on its own
//! thread and hands batches over through a bounded queue, so it streams with
//! bounded memory like every other source.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use tokio::sync::mpsc;

use super::error::DecodeError;

/// Opens a fresh batch iterator each time the table is scanned.
pub type OpenFn = Arc<
    dyn Fn()
            -> Result<Box<dyn Iterator<Item = Result<RecordBatch, DecodeError>> + Send>, DecodeError>
        + Send
        + Sync,
>;

/// One partition reading a file through a blocking iterator.
pub struct BlockingPartition {
    schema: SchemaRef,
    open: OpenFn,
}

impl std::fmt::Debug for BlockingPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPartition")
            .field("schema", &self.schema)
            .finish()
    }
}

impl BlockingPartition {
    /// A partition with this schema, reading what `open` yields.
    pub fn new(schema: SchemaRef, open: OpenFn) -> Self {
        BlockingPartition { schema, open }
    }

    /// The whole file as a table.
    pub fn table(self) -> Result<StreamingTable, DataFusionError> {
        StreamingTable::try_new(self.schema.clone(), vec![Arc::new(self)])
    }

    /// Streams the batches.
    pub fn stream(&self) -> SendableRecordBatchStream {
        let (tx, rx) = mpsc::channel::<Result<RecordBatch, DecodeError>>(4);
        let open = self.open.clone();
        std::thread::Builder::new()
            .name("ferry-reader".into())
            .spawn(move || match open() {
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                }
                Ok(iter) => {
                    for item in iter {
                        let stop = item.is_err();
                        if tx.blocking_send(item).is_err() || stop {
                            return;
                        }
                    }
                }
            })
            .expect("spawning a thread");
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            let item = rx.recv().await?;
            Some((item.map_err(|e| DataFusionError::External(Box::new(e))), rx))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

impl PartitionStream for BlockingPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        self.stream()
    }
}
