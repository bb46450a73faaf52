//! Making a decoded column the type its dataset says, without losing a value:
//! the one rule every reader follows. Text is parsed by the same parsers as
//! delimited text (PostgreSQL's input rules for declared types, no rounding
//! at all for inferred ones); any other column is cast by Arrow and cast
//! back, and a value that does not come back as it was — `1.5` cast to an
//! integer, a nanosecond cut to microseconds, a `double` rounded to `real` —
//! is a misfit that names its row, never a silent change.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, MapArray, OffsetSizeTrait, RecordBatch,
    RecordBatchOptions, StructArray,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, FieldRef, SchemaRef};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::DataFusionError;
use datafusion::dataframe::DataFrame;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};

use super::csv::CsvDialect;
use super::csv::build::build_column;
use super::error::{DecodeError, show_value};

/// A value that does not fit its column: where and why.
#[derive(Debug, Clone)]
pub struct Misfit {
    /// Row within the array (0-based).
    pub row: usize,
    /// The column's name, dotted for a nested field (`a.b`).
    pub path: String,
    /// The value as written, quoted and truncated.
    pub value: String,
    /// What is wrong.
    pub reason: String,
    /// What to do, starting with "; ".
    pub hint: String,
}

impl Misfit {
    fn within(mut self, parent: &str) -> Self {
        self.path = format!("{parent}.{}", self.path);
        self
    }

    fn internal(path: &str, e: impl std::fmt::Display) -> Self {
        Misfit {
            row: 0,
            path: path.to_string(),
            value: String::new(),
            reason: format!("internal: {e}"),
            hint: String::new(),
        }
    }
}

/// Whether this is one of the number types a spec can declare.
pub fn is_number(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

/// Whether text of this type is parsed by ferry's own parsers (the types a
/// spec can declare), rather than cast by Arrow.
pub fn parsed_from_text(dt: &DataType) -> bool {
    use arrow::datatypes::{IntervalUnit, TimeUnit};
    is_number(dt)
        || matches!(
            dt,
            DataType::Boolean
                | DataType::Date32
                | DataType::Timestamp(TimeUnit::Microsecond, _)
                | DataType::Time64(TimeUnit::Microsecond)
                | DataType::Interval(IntervalUnit::MonthDayNano)
                | DataType::FixedSizeBinary(16)
        )
}

/// Parses a text column into `target` (`exact`: the type was inferred, so
/// nothing may be rounded). JSON nulls and SQL NULLs stay NULL; every value,
/// even an empty one, is parsed.
pub fn from_text(array: &ArrayRef, target: &FieldRef, exact: bool) -> Result<ArrayRef, Misfit> {
    let text: ArrayRef = match array.data_type() {
        DataType::Utf8 => array.clone(),
        _ => cast_with_options(array, &DataType::Utf8, &CastOptions::default())
            .map_err(|e| Misfit::internal(target.name(), e))?,
    };
    let text = text.as_string::<i32>();
    // An unquoted empty field is NULL under the default dialect; nulls are
    // handed over as exactly that, values as quoted fields.
    let dialect = CsvDialect::default();
    let get = |r: usize| {
        if text.is_null(r) {
            (&b""[..], false)
        } else {
            (text.value(r).as_bytes(), true)
        }
    };
    build_column(target, None, text.len(), get, &dialect, exact).map_err(|(row, reason, hint)| {
        Misfit {
            row,
            path: target.name().clone(),
            value: show_value(get(row).0),
            reason,
            hint,
        }
    })
}

/// Walks a decoded column whose leaves may be text standing for numbers
/// (NDJSON's numbers, decoded as written) into `target`'s type.
pub fn conform(array: &ArrayRef, target: &FieldRef, exact: bool) -> Result<ArrayRef, Misfit> {
    let name = target.name();
    let internal = |e: ArrowError| Misfit::internal(name, e);
    match (array.data_type(), target.data_type()) {
        (a, t) if a == t => Ok(array.clone()),
        (DataType::Utf8, t) if parsed_from_text(t) => from_text(array, target, exact),
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let s = array.as_struct();
            let columns = fields
                .iter()
                .zip(s.columns())
                .map(|(f, c)| conform(c, f, exact).map_err(|m| m.within(name)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(
                StructArray::try_new(fields.clone(), columns, s.nulls().cloned())
                    .map_err(internal)?,
            ))
        }
        (DataType::List(_), DataType::List(f)) => conform_list::<i32>(array, f, exact, name),
        (DataType::LargeList(_), DataType::LargeList(f)) => {
            conform_list::<i64>(array, f, exact, name)
        }
        (DataType::Map(..), DataType::Map(f, ordered)) => {
            let m = array.as_map();
            let entries: ArrayRef = Arc::new(m.entries().clone());
            let entries = conform(&entries, f, exact).map_err(|e| Misfit {
                row: m.offsets().partition_point(|&o| o as usize <= e.row) - 1,
                ..e.within(name)
            })?;
            Ok(Arc::new(
                MapArray::try_new(
                    f.clone(),
                    m.offsets().clone(),
                    entries.as_struct().clone(),
                    m.nulls().cloned(),
                    *ordered,
                )
                .map_err(internal)?,
            ))
        }
        (from, to) => Err(internal(ArrowError::CastError(format!(
            "decoded {from}, expected {to}"
        )))),
    }
}

/// [`conform`] for the values of a list column; a misfit is named by the
/// list's row.
fn conform_list<O: OffsetSizeTrait>(
    array: &ArrayRef,
    item: &FieldRef,
    exact: bool,
    name: &str,
) -> Result<ArrayRef, Misfit> {
    let l = array.as_list::<O>();
    let values = conform(l.values(), item, exact).map_err(|m| Misfit {
        row: l.offsets().partition_point(|o| o.as_usize() <= m.row) - 1,
        ..m.within(name)
    })?;
    let list = GenericListArray::<O>::try_new(
        item.clone(),
        l.offsets().clone(),
        values,
        l.nulls().cloned(),
    )
    .map_err(|e| Misfit::internal(name, e))?;
    Ok(Arc::new(list))
}

/// Casts a column of a typed file (Parquet, Arrow IPC, Avro) to a declared
/// type: text by ferry's parsers, anything else by Arrow — and then back, so
/// a value the cast changed or could not hold is a misfit, not a loss.
pub fn strict_cast(array: &ArrayRef, target: &FieldRef) -> Result<ArrayRef, Misfit> {
    let from = array.data_type();
    if from == target.data_type() {
        return Ok(array.clone());
    }
    if matches!(
        from,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) && parsed_from_text(target.data_type())
    {
        return from_text(array, target, false);
    }
    let name = target.name();
    let shown = |row: usize| {
        let options = FormatOptions::default().with_null("NULL");
        ArrayFormatter::try_new(array.as_ref(), &options)
            .map(|f| format!("{:?}", f.value(row).to_string()))
            .unwrap_or_default()
    };
    let hint = format!(
        "; the file's column is {from}: declare a type that holds every value (or leave the column undeclared)"
    );
    let options = CastOptions {
        safe: true,
        ..Default::default()
    };
    let cast = cast_with_options(array, target.data_type(), &options)
        .map_err(|e| Misfit::internal(name, e))?;
    // A value the cast could not produce came out NULL.
    if let Some(row) = (0..array.len()).find(|&r| array.is_valid(r) && cast.is_null(r)) {
        return Err(Misfit {
            row,
            path: name.clone(),
            value: shown(row),
            reason: format!("does not fit {}", target.data_type()),
            hint,
        });
    }
    // A value the cast changed does not come back as it was. Types Arrow
    // cannot compare or cast back are taken as cast.
    if let Ok(back) = cast_with_options(&cast, from, &options)
        && let Ok(differs) = arrow::compute::kernels::cmp::distinct(&back, array)
        && let Some(row) = differs.iter().position(|d| d == Some(true))
    {
        let became = ArrayFormatter::try_new(cast.as_ref(), &FormatOptions::default())
            .map(|f| f.value(row).to_string())
            .unwrap_or_default();
        return Err(Misfit {
            row,
            path: name.clone(),
            value: shown(row),
            reason: format!(
                "would change as {}: it would become {became:?}",
                target.data_type()
            ),
            hint,
        });
    }
    Ok(cast)
}

/// A typed file's table with its declared columns cast strictly: one
/// partition read in file order, so a misfit's row number is the file's.
pub struct DeclaredTypes {
    schema: SchemaRef,
    raw: DataFrame,
    display: String,
    first_row: u64,
}

impl std::fmt::Debug for DeclaredTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeclaredTypes")
            .field("schema", &self.schema)
            .field("file", &self.display)
            .finish()
    }
}

impl DeclaredTypes {
    /// `raw` (read with one partition) cast to `schema`, whose columns are
    /// `raw`'s, in order, with the declared types.
    pub fn new(schema: SchemaRef, raw: DataFrame, display: String) -> Self {
        DeclaredTypes {
            schema,
            raw,
            display,
            first_row: 0,
        }
    }

    /// The same, for a part of the file whose first row is the file's row
    /// `first_row` (0-based): errors still name the file's rows.
    pub fn starting_at(mut self, first_row: u64) -> Self {
        self.first_row = first_row;
        self
    }
}

/// Casts every column of `batch` to `schema`'s type; `first_row` is the
/// 0-based row of the batch's first row in the file.
fn cast_batch(
    batch: &RecordBatch,
    schema: &SchemaRef,
    first_row: u64,
    display: &str,
) -> Result<RecordBatch, DecodeError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (k, field) in schema.fields().iter().enumerate() {
        let cast = strict_cast(batch.column(k), field).map_err(|m| DecodeError::RowValue {
            file: display.to_string(),
            row: first_row + m.row as u64 + 1,
            column: k + 1,
            name: m.path,
            value: m.value,
            reason: m.reason,
            hint: m.hint,
        })?;
        columns.push(cast);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options).map_err(|e| {
        DecodeError::Layout {
            file: display.to_string(),
            detail: format!("internal: {e}"),
        }
    })
}

impl PartitionStream for DeclaredTypes {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let raw = self.raw.clone();
        let schema = self.schema.clone();
        let display = self.display.clone();
        let mut seen = self.first_row;
        let batches = futures::stream::once(async move { raw.execute_stream().await })
            .try_flatten()
            .map(move |batch| {
                let batch = batch?;
                let first = seen;
                seen += batch.num_rows() as u64;
                cast_batch(&batch, &schema, first, &display)
                    .map_err(|e| DataFusionError::External(Box::new(e)))
            });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{Field, TimeUnit};

    fn field(dt: DataType) -> FieldRef {
        Arc::new(Field::new("c", dt, true))
    }

    #[test]
    fn casts_that_change_a_value_are_refused_with_its_row() {
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(1.5)]));
        let m = strict_cast(&floats, &field(DataType::Int64)).unwrap_err();
        assert_eq!((m.row, m.value.as_str()), (2, "\"1.5\""));
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 70_000]));
        let m = strict_cast(&ints, &field(DataType::Int16)).unwrap_err();
        assert_eq!(m.row, 1);
        assert!(m.reason.contains("does not fit"), "{}", m.reason);
        let big: ArrayRef = Arc::new(Int64Array::from(vec![1, (1 << 53) + 1]));
        assert_eq!(
            strict_cast(&big, &field(DataType::Float64))
                .unwrap_err()
                .row,
            1
        );
        let ns: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1_000, 1_001]));
        let us = field(DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(strict_cast(&ns, &us).unwrap_err().row, 1);
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("1"), None, Some("1.5")]));
        let m = strict_cast(&text, &field(DataType::Int32)).unwrap_err();
        assert_eq!((m.row, m.value.as_str()), (2, "\"1.5\""));
        // What fits, fits.
        let fine: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(-3.0)]));
        let out = strict_cast(&fine, &field(DataType::Int32)).unwrap();
        assert_eq!(out.null_count(), 1);
    }
}
