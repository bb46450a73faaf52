//! Calendar arithmetic shared by the binary and text encoders, so both COPY
//! formats turn an Arrow temporal value into exactly the same PostgreSQL value.
//!
//! PostgreSQL counts dates in days and timestamps in microseconds since
//! 2000-01-01; `i32::MAX/MIN` and `i64::MAX/MIN` mean ±infinity. ferry uses the
//! same sentinels in Arrow so infinity survives a round trip.

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
pub const PG_EPOCH_DAYS: i64 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// First valid date, in days since 2000-01-01 (4714-11-24 BC, Julian day 0).
pub const PG_DATE_MIN: i64 = -2_451_545;
/// Last valid date, in days since 2000-01-01 (5874897-12-31).
pub const PG_DATE_MAX: i64 = 2_145_031_948;
/// First valid timestamp, in microseconds since 2000-01-01 (4714-11-24 BC 00:00).
pub const PG_TS_MIN: i64 = -211_813_488_000_000_000;
/// One past the last valid timestamp (294277-01-01 00:00).
pub const PG_TS_END: i64 = 9_223_371_331_200_000_000;

/// A date in PostgreSQL's representation, or why it cannot be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgDate {
    /// Days since 2000-01-01.
    Days(i32),
    /// `infinity`
    Infinity,
    /// `-infinity`
    NegInfinity,
}

/// Converts an Arrow `Date32` (days since 1970) to PostgreSQL's date, mapping
/// the `i32` extremes to ±infinity. `None` when outside PostgreSQL's range.
pub fn date_from_unix_days(days: i32) -> Option<PgDate> {
    match days {
        i32::MAX => Some(PgDate::Infinity),
        i32::MIN => Some(PgDate::NegInfinity),
        d => {
            let pg = d as i64 - PG_EPOCH_DAYS;
            (PG_DATE_MIN..=PG_DATE_MAX)
                .contains(&pg)
                .then_some(PgDate::Days(pg as i32))
        }
    }
}

impl PgDate {
    /// The 4-byte binary COPY payload value.
    pub fn to_binary(self) -> i32 {
        match self {
            PgDate::Days(d) => d,
            PgDate::Infinity => i32::MAX,
            PgDate::NegInfinity => i32::MIN,
        }
    }
}

/// A timestamp in PostgreSQL's representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTimestamp {
    /// Microseconds since 2000-01-01 00:00 (UTC for `timestamptz`).
    Micros(i64),
    /// `infinity`
    Infinity,
    /// `-infinity`
    NegInfinity,
}

impl PgTimestamp {
    /// The 8-byte binary COPY payload value.
    pub fn to_binary(self) -> i64 {
        match self {
            PgTimestamp::Micros(m) => m,
            PgTimestamp::Infinity => i64::MAX,
            PgTimestamp::NegInfinity => i64::MIN,
        }
    }
}

/// Converts an Arrow timestamp value in `unit_per_second` units (1, 1e3, 1e6,
/// 1e9) since 1970 to PostgreSQL's, flooring sub-microsecond parts. `i64`
/// extremes mean ±infinity; `None` when outside PostgreSQL's range.
pub fn timestamp_from_unix(value: i64, units_per_second: i64) -> Option<PgTimestamp> {
    match value {
        i64::MAX => return Some(PgTimestamp::Infinity),
        i64::MIN => return Some(PgTimestamp::NegInfinity),
        _ => {}
    }
    let micros = match units_per_second {
        1 => value.checked_mul(1_000_000)?,
        1_000 => value.checked_mul(1_000)?,
        1_000_000 => value,
        _ => value.div_euclid(1_000),
    };
    let pg = micros.checked_sub(PG_EPOCH_MICROS)?;
    (PG_TS_MIN..PG_TS_END)
        .contains(&pg)
        .then_some(PgTimestamp::Micros(pg))
}

/// Civil date (proleptic Gregorian, astronomical years: 0 = 1 BC) from days
/// since 1970-01-01. Howard Hinnant's `civil_from_days`.
pub fn civil_from_unix_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 from a civil date (inverse of [`civil_from_unix_days`]).
/// Inline: the CSV date parser calls it once per value from another crate.
#[inline]
pub fn unix_days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Appends `n` zero-padded to `width` digits (no allocation).
pub fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let s = buf.format(n);
    for _ in s.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

/// Appends a date as PostgreSQL prints it in ISO style (`2024-02-29`,
/// `0044-03-15 BC`). `days` are since 1970-01-01.
pub fn push_date(out: &mut Vec<u8>, unix_days: i64) {
    let (y, m, d) = civil_from_unix_days(unix_days);
    push_ymd(out, y, m, d);
    push_era(out, y);
}

fn push_ymd(out: &mut Vec<u8>, y: i64, m: u32, d: u32) {
    let year = if y <= 0 { 1 - y } else { y } as u64;
    push_padded(out, year, 4);
    out.push(b'-');
    push_padded(out, m as u64, 2);
    out.push(b'-');
    push_padded(out, d as u64, 2);
}

fn push_era(out: &mut Vec<u8>, y: i64) {
    if y <= 0 {
        out.extend_from_slice(b" BC");
    }
}

/// Appends a time of day from microseconds since midnight
/// (`13:05:09`, `13:05:09.5`, `24:00:00`).
pub fn push_time(out: &mut Vec<u8>, micros: i64) {
    let micros = micros as u64;
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    push_padded(out, secs / 3_600, 2);
    out.push(b':');
    push_padded(out, secs / 60 % 60, 2);
    out.push(b':');
    push_padded(out, secs % 60, 2);
    push_fraction(out, frac);
}

fn push_fraction(out: &mut Vec<u8>, mut frac: u64) {
    if frac == 0 {
        return;
    }
    let mut width = 6;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    out.push(b'.');
    push_padded(out, frac, width);
}

/// Appends a timestamp given in microseconds since 2000-01-01, as
/// `YYYY-MM-DD HH:MM:SS[.ffffff][+00][ BC]` (the zone suffix for `timestamptz`,
/// which ferry always writes in UTC).
pub fn push_timestamp(out: &mut Vec<u8>, ts: PgTimestamp, with_zone: bool) {
    let micros = match ts {
        PgTimestamp::Infinity => return out.extend_from_slice(b"infinity"),
        PgTimestamp::NegInfinity => return out.extend_from_slice(b"-infinity"),
        PgTimestamp::Micros(m) => m,
    };
    // Count days from 2000 first: adding the epoch offset to the microseconds
    // would overflow near PostgreSQL's upper bound.
    let days = micros.div_euclid(MICROS_PER_DAY) + PG_EPOCH_DAYS;
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_unix_days(days);
    push_ymd(out, y, m, d);
    out.push(b' ');
    push_time(out, in_day);
    if with_zone {
        out.extend_from_slice(b"+00");
    }
    push_era(out, y);
}

/// Appends a PostgreSQL date value (handles ±infinity).
pub fn push_pg_date(out: &mut Vec<u8>, date: PgDate) {
    match date {
        PgDate::Days(d) => push_date(out, d as i64 + PG_EPOCH_DAYS),
        PgDate::Infinity => out.extend_from_slice(b"infinity"),
        PgDate::NegInfinity => out.extend_from_slice(b"-infinity"),
    }
}

/// Appends an interval as `N mons N days [-]HH:MM:SS[.ffffff]`, a form
/// PostgreSQL reads back exactly whatever its `IntervalStyle`.
pub fn push_interval(out: &mut Vec<u8>, months: i32, days: i32, micros: i64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(months).as_bytes());
    out.extend_from_slice(b" mons ");
    out.extend_from_slice(buf.format(days).as_bytes());
    out.extend_from_slice(b" days ");
    if micros < 0 {
        out.push(b'-');
    }
    let abs = micros.unsigned_abs();
    let secs = abs / 1_000_000;
    out.extend_from_slice(buf.format(secs / 3_600).as_bytes());
    out.push(b':');
    push_padded(out, secs / 60 % 60, 2);
    out.push(b':');
    push_padded(out, secs % 60, 2);
    push_fraction(out, abs % 1_000_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn civil_round_trip() {
        for days in (-3_000_000i64..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_unix_days(days);
            assert_eq!(unix_days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_unix_days(0), (1970, 1, 1));
        assert_eq!(civil_from_unix_days(PG_EPOCH_DAYS), (2000, 1, 1));
        assert_eq!(civil_from_unix_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn formats_like_postgres() {
        assert_eq!(s(|o| push_date(o, 0)), "1970-01-01");
        // 1 BC is astronomical year 0.
        let d = unix_days_from_civil(0, 12, 31);
        assert_eq!(s(|o| push_date(o, d)), "0001-12-31 BC");
        let d = unix_days_from_civil(-4713, 11, 24);
        assert_eq!(s(|o| push_date(o, d)), "4714-11-24 BC");
        assert_eq!(d - PG_EPOCH_DAYS, PG_DATE_MIN);
        let d = unix_days_from_civil(5_874_897, 12, 31);
        assert_eq!(d - PG_EPOCH_DAYS, PG_DATE_MAX);
        assert_eq!(s(|o| push_time(o, 0)), "00:00:00");
        assert_eq!(s(|o| push_time(o, 86_400_000_000)), "24:00:00");
        assert_eq!(s(|o| push_time(o, 3_723_000_050)), "01:02:03.00005");
        assert_eq!(
            s(|o| push_timestamp(o, PgTimestamp::Micros(-1), true)),
            "1999-12-31 23:59:59.999999+00"
        );
        assert_eq!(
            s(|o| push_timestamp(o, PgTimestamp::Micros(PG_TS_END - 1), false)),
            "294276-12-31 23:59:59.999999"
        );
        assert_eq!(
            s(|o| push_timestamp(o, PgTimestamp::Micros(PG_TS_MIN), false)),
            "4714-11-24 00:00:00 BC"
        );
        assert_eq!(
            s(|o| push_interval(o, -14, 3, -5_400_500_000)),
            "-14 mons 3 days -1:30:00.5"
        );
    }

    #[test]
    fn conversions_and_ranges() {
        assert_eq!(date_from_unix_days(10_957), Some(PgDate::Days(0)));
        assert_eq!(date_from_unix_days(i32::MAX), Some(PgDate::Infinity));
        assert_eq!(date_from_unix_days(-2_500_000), None);
        assert_eq!(
            timestamp_from_unix(946_684_800, 1),
            Some(PgTimestamp::Micros(0))
        );
        assert_eq!(
            timestamp_from_unix(-1, 1_000_000_000),
            Some(PgTimestamp::Micros(-PG_EPOCH_MICROS - 1))
        );
        assert_eq!(
            timestamp_from_unix(i64::MIN, 1_000),
            Some(PgTimestamp::NegInfinity)
        );
        assert_eq!(timestamp_from_unix(i64::MAX / 2, 1), None);
    }
}
