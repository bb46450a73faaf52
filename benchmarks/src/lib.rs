//! ferry's benchmark inputs, shared by the `ferry-bench` generator and the
//! criterion micro-benchmarks (`benches/kernels.rs`).

pub mod wide;

use std::io::Write;

use tpchgen::csv::LineItemCsv;
use tpchgen::generators::LineItemGenerator;

/// The first `rows` lineitem rows of scale factor 1 as `|`-delimited CSV
/// (no header, comments quoted): the input of the CSV kernels.
pub fn lineitem_csv_rows(rows: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(rows * 130);
    for line in LineItemGenerator::new(1.0, 1, 1).iter().take(rows) {
        // Writing to a Vec cannot fail.
        let _ = writeln!(buf, "{}", LineItemCsv::with_delimiter(line, '|'));
    }
    buf
}
