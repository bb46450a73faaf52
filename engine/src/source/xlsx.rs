//! Spreadsheets (`.xlsx`, and the `.xlsm`, `.xlsb`, `.xls`, `.ods` calamine
//! also reads): one sheet — the first, or `[source] sheet` — read as a table.
//!
//! The sheet is written out as CSV (a temporary file) and read by ferry's own
//! delimited reader, so a spreadsheet gets every guarantee a CSV file has —
//! strict typing, declared types and formats, the error policy, messages
//! that name the line, column and value — from one implementation. What the
//! spreadsheet itself says about a cell is kept: a text cell stays text
//! (`00123` is not a number), a date cell is a date, an error cell
//! (`#DIV/0!`) is refused, naming where it is.

use std::io::Write;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use calamine::{Data, Reader, open_workbook_auto};
use datafusion::prelude::SessionContext;

use crate::decode::DecodeError;
use crate::error::FerryError;
use crate::format::Format;
use crate::spec::{ColumnSpec, DatasetSpec, SourceSpec};

use super::{FormatReader, Input, Opening, csv::Csv};

/// Spreadsheets.
pub(super) struct Xlsx;

#[async_trait::async_trait]
impl FormatReader for Xlsx {
    fn formats(&self) -> &'static [Format] {
        &[Format::Xlsx]
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        opening: &Opening<'_>,
    ) -> Result<SchemaRef, FerryError> {
        let (spec, input) = (opening.spec, opening.input);
        let sheet = read_sheet(input, spec.source.sheet.as_deref())?;
        let header = spec.source.header.unwrap_or(true);
        let names = column_names(&sheet, header);
        // In the temporary directory, never beside a user's own file; a
        // sheet is at most about a million rows.
        let csv = tempfile::Builder::new()
            .prefix("ferry-sheet-")
            .suffix(".csv")
            .tempfile()
            .map_err(|e| FerryError::io("writing the sheet as CSV", e))?;
        let kinds = write_csv(&sheet, header, &names, input, csv.as_file())?;
        let csv = csv.into_temp_path();
        // The spreadsheet's own cell types decide what text cannot: a
        // column of text cells is text whatever the text looks like.
        let mut source = SourceSpec {
            format: Some(Format::Csv),
            header: Some(true),
            ..spec.source.clone()
        };
        source.delimiter = None;
        source.quote = None;
        source.escape = None;
        source.comment = None;
        source.encoding = None;
        source.trailing_delimiter = false;
        source.compression = Default::default();
        for (name, kind) in names.iter().zip(&kinds) {
            if *kind == CellKind::Text && !source.columns.iter().any(|c| &c.name == name) {
                source.columns.push(ColumnSpec {
                    name: name.clone(),
                    ty: Some("text".into()),
                    format: None,
                });
            }
        }
        let derived = DatasetSpec {
            source,
            ..spec.clone()
        };
        let csv_input = Input {
            path: csv.to_path_buf(),
            display: input.display.clone(),
        };
        let schema = Csv
            .register(
                ctx,
                &Opening {
                    spec: &derived,
                    input: &csv_input,
                    format: Format::Csv,
                    counters: opening.counters.clone(),
                    rejects: opening.rejects.clone(),
                    keep: opening.keep.clone(),
                    range: None,
                },
            )
            .await?;
        // The CSV is read when the plan runs: it lives as long as the source.
        if let Ok(mut keep) = opening.keep.lock() {
            keep.push(Arc::new(csv));
        }
        Ok(schema)
    }
}

/// The sheet's cells: the named sheet, or the first.
fn read_sheet(input: &Input, sheet: Option<&str>) -> Result<calamine::Range<Data>, FerryError> {
    let bad = |detail: String| {
        FerryError::Decode(DecodeError::Reader {
            file: input.display.clone(),
            location: String::new(),
            detail,
        })
    };
    let mut book = open_workbook_auto(&input.path)
        .map_err(|e| bad(format!("not a spreadsheet ferry can read: {e}")))?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.as_str() == s)
            .cloned()
            .ok_or_else(|| {
                FerryError::Usage(format!(
                    "{}: has no sheet {s:?} (it has {names:?}); set [source] sheet to one of them",
                    input.display
                ))
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| bad("holds no sheet".into()))?,
    };
    book.worksheet_range(&name)
        .map_err(|e| bad(format!("sheet {name:?}: {e}")))
}

/// What the cells of a column hold, as the spreadsheet typed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CellKind {
    /// Only empty cells so far.
    Empty,
    /// Text cells (and nothing else but empty ones).
    Text,
    /// Anything else, or a mix: typed from the values' text, as CSV is.
    Other,
}

/// The column names: the header row's cells, or `column_1`, `column_2`….
fn column_names(sheet: &calamine::Range<Data>, header: bool) -> Vec<String> {
    let width = sheet.width();
    let first = sheet.rows().next().filter(|_| header);
    (0..width)
        .map(|i| match first.and_then(|r| r.get(i)) {
            Some(Data::Empty) | None => format!("column_{}", i + 1),
            Some(cell) => text(cell).unwrap_or_default().trim().to_string(),
        })
        .collect()
}

/// Writes the sheet as CSV (header first), returning what each column's
/// cells hold. An error cell fails, naming its row and column.
fn write_csv(
    sheet: &calamine::Range<Data>,
    header: bool,
    names: &[String],
    input: &Input,
    file: &std::fs::File,
) -> Result<Vec<CellKind>, FerryError> {
    let io = |e: std::io::Error| FerryError::io("writing the sheet as CSV", e);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut kinds = vec![CellKind::Empty; names.len()];
    let mut line = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        quote_into(&mut line, name);
    }
    line.push('\n');
    out.write_all(line.as_bytes()).map_err(io)?;
    let (top, left) = sheet.start().unwrap_or((0, 0));
    for (r, row) in sheet.rows().enumerate().skip(usize::from(header)) {
        line.clear();
        for (c, cell) in row.iter().enumerate().take(names.len()) {
            if c > 0 {
                line.push(',');
            }
            if let Data::Error(e) = cell {
                return Err(FerryError::Decode(DecodeError::Reader {
                    file: input.display.clone(),
                    location: format!(
                        ":{}: column {} ({:?})",
                        top as usize + r + 1,
                        column_letters(left as usize + c),
                        names[c]
                    ),
                    detail: format!("the cell holds the spreadsheet error {e}, not a value"),
                }));
            }
            let kind = match cell {
                Data::Empty => CellKind::Empty,
                Data::String(_) => CellKind::Text,
                _ => CellKind::Other,
            };
            kinds[c] = match (kinds[c], kind) {
                (k, CellKind::Empty) => k,
                (CellKind::Empty, k) => k,
                (a, b) if a == b => a,
                _ => CellKind::Other,
            };
            // A text cell is quoted, so it is never NULL (`""` stays an
            // empty string); an empty cell is an empty unquoted field.
            if let Data::String(s) = cell {
                quote_into(&mut line, s);
            } else if let Some(t) = text(cell) {
                quote_into(&mut line, &t);
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(kinds)
}

/// A cell's value as text in the forms ferry's readers parse: numbers in
/// their shortest exact form, `true`/`false`, dates `YYYY-MM-DD`, date-times
/// `YYYY-MM-DD hh:mm:ss[.fff]`; `None` for an empty cell.
fn text(cell: &Data) -> Option<String> {
    Some(match cell {
        Data::Empty => return None,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::Error(e) => e.to_string(),
        Data::DateTime(d) => {
            let (y, mo, day, h, mi, s, ms) = d.to_ymd_hms_milli();
            if d.is_duration() {
                d.as_f64().to_string()
            } else if (h, mi, s, ms) == (0, 0, 0, 0) {
                format!("{y:04}-{mo:02}-{day:02}")
            } else if ms == 0 {
                format!("{y:04}-{mo:02}-{day:02} {h:02}:{mi:02}:{s:02}")
            } else {
                format!("{y:04}-{mo:02}-{day:02} {h:02}:{mi:02}:{s:02}.{ms:03}")
            }
        }
    })
}

/// Appends `value` as a quoted CSV field.
fn quote_into(line: &mut String, value: &str) {
    line.push('"');
    for ch in value.chars() {
        if ch == '"' {
            line.push('"');
        }
        line.push(ch);
    }
    line.push('"');
}

/// `0` → `A`, `27` → `AB`: a column as the spreadsheet names it.
fn column_letters(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_named_as_spreadsheets_name_them() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn cells_become_the_text_ferry_parses() {
        assert_eq!(text(&Data::Float(0.1)).unwrap(), "0.1");
        assert_eq!(text(&Data::Float(3.0)).unwrap(), "3");
        assert_eq!(text(&Data::Empty), None);
        let mut line = String::new();
        quote_into(&mut line, "a \"b\"\nc");
        assert_eq!(line, "\"a \"\"b\"\"\nc\"");
    }
}
