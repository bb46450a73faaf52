//! Text → value parsers for typed columns of text formats, accepting what
//! PostgreSQL's input functions accept for the same types (so a file that
//! `\copy` loads, ferry loads to the same values), without allocating.
//!
//! Dates are days and timestamps microseconds since 1970-01-01, with the
//! `i32`/`i64` extremes standing for `infinity`/`-infinity` as in
//! `ferry_connectors::pg::time`.

use arrow::datatypes::IntervalMonthDayNano;
use ferry_connectors::pg::codec::time::unix_days_from_civil;

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// `boolean`: t, true, y, yes, on, 1 and f, false, n, no, off, 0 (any case,
/// unique prefixes of the words), surrounded by optional whitespace.
pub fn parse_bool(s: &[u8]) -> Option<bool> {
    let s = trim(s);
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    let mut buf = [0u8; 5];
    buf[..s.len()].copy_from_slice(s);
    let lower = &mut buf[..s.len()];
    lower.make_ascii_lowercase();
    let lower: &[u8] = lower;
    let prefix_of = |word: &[u8]| word.starts_with(lower);
    match lower {
        b"1" | b"on" => Some(true),
        b"0" | b"of" | b"off" => Some(false),
        _ if prefix_of(b"true") || prefix_of(b"yes") => Some(true),
        _ if prefix_of(b"false") || prefix_of(b"no") => Some(false),
        _ => None,
    }
}

/// A signed 64-bit integer with optional sign and surrounding whitespace.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let s = trim(s);
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = if neg {
            v.checked_mul(10)?.checked_sub(d as i64)?
        } else {
            v.checked_mul(10)?.checked_add(d as i64)?
        };
    }
    Some(v)
}

/// A float; `NaN`, `Infinity`, `inf` accepted (any case), but a finite
/// literal too large for the type is an error, as in PostgreSQL.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(trim(s)).ok()?;
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() && !s.to_ascii_lowercase().contains("inf") {
        return None;
    }
    Some(v)
}

/// Like [`parse_f64`] for `real`.
pub fn parse_f32(s: &[u8]) -> Option<f32> {
    let s = std::str::from_utf8(trim(s)).ok()?;
    let v: f32 = s.parse().ok()?;
    if v.is_infinite() && !s.to_ascii_lowercase().contains("inf") {
        return None;
    }
    Some(v)
}

/// Why a decimal did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a number.
    Syntax,
    /// More integer digits than the precision allows (after rounding).
    Overflow,
    /// More decimal places than the scale holds, where rounding is refused
    /// ([`parse_decimal_exact`]).
    Inexact,
}

/// A decimal for `numeric(precision, scale)` as an unscaled `i128`, rounded
/// half away from zero to `scale` digits like PostgreSQL (`1.005` →
/// `1.01` at scale 2). Accepts an exponent (`1.5e3`). Precision ≤ 38.
pub fn parse_decimal(s: &[u8], precision: u8, scale: i8) -> Result<i128, DecimalError> {
    match parse_decimal_plain(s, precision, scale) {
        Some(v) => Ok(v),
        None => parse_decimal_general(s, precision, scale, false),
    }
}

/// Like [`parse_decimal`], but a value with more (non-zero) decimal places
/// than `scale` is [`DecimalError::Inexact`] instead of rounded: for a type
/// ferry inferred, where rounding would change what the file said.
pub fn parse_decimal_exact(s: &[u8], precision: u8, scale: i8) -> Result<i128, DecimalError> {
    match parse_decimal_plain(s, precision, scale) {
        Some(v) => Ok(v),
        None => parse_decimal_general(s, precision, scale, true),
    }
}

/// 10^0 … 10^38, the powers a decimal of up to 38 digits needs.
const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// The common case in one pass, without the digit buffer: `[+-]ddd[.ddd]`
/// with at most 18 digits and at most `scale` of them after the point, so
/// it fits without checks and needs no rounding. Anything else (spaces,
/// exponents, rounding, long or out-of-range numbers, bad syntax) is `None`
/// and takes the general path, which also produces every error.
#[inline]
fn parse_decimal_plain(s: &[u8], precision: u8, scale: i8) -> Option<i128> {
    if !(0..=18).contains(&scale) {
        return None;
    }
    let (neg, body) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    let mut digits = 0u32;
    let mut frac: Option<u32> = None;
    for &b in body {
        match b {
            b'0'..=b'9' => {
                v = v * 10 + u64::from(b - b'0');
                digits += 1;
                if let Some(f) = frac.as_mut() {
                    *f += 1;
                }
            }
            b'.' if frac.is_none() => frac = Some(0),
            _ => return None,
        }
    }
    let frac = frac.unwrap_or(0);
    if digits == 0 || digits > 18 || frac > scale as u32 {
        return None;
    }
    let v = i128::from(v) * POW10[(scale as u32 - frac) as usize];
    if v >= POW10[usize::from(precision.min(38))] {
        return None;
    }
    Some(if neg { -v } else { v })
}

fn parse_decimal_general(
    s: &[u8],
    precision: u8,
    scale: i8,
    exact: bool,
) -> Result<i128, DecimalError> {
    let s = trim(s);
    let (neg, mut rest) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        Some(_) => (false, s),
        None => return Err(DecimalError::Syntax),
    };
    // Collect significant digits (up to 40) and the decimal exponent.
    let mut digits = [0u8; 96];
    let mut n = 0usize;
    let mut point_shift: i64 = 0; // digits after the point
    let mut seen_digit = false;
    let mut seen_point = false;
    while let Some((&b, tail)) = rest.split_first() {
        match b {
            b'0'..=b'9' => {
                seen_digit = true;
                if n == 0 && b == b'0' {
                    // leading zero: only shifts the scale
                } else if n < digits.len() {
                    digits[n] = b - b'0';
                    n += 1;
                } else {
                    return Err(DecimalError::Overflow);
                }
                if seen_point {
                    point_shift += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return Err(DecimalError::Syntax),
        }
        rest = tail;
    }
    if !seen_digit {
        return Err(DecimalError::Syntax);
    }
    let mut exp: i64 = 0;
    if let Some((_, tail)) = rest.split_first() {
        let e = std::str::from_utf8(tail).map_err(|_| DecimalError::Syntax)?;
        exp = e.parse::<i64>().map_err(|_| DecimalError::Syntax)?;
        if exp.abs() > 1000 {
            return Err(DecimalError::Overflow);
        }
    }
    // value = digits × 10^(exp - point_shift); we want it × 10^scale.
    let shift = exp - point_shift + scale as i64;
    let digits = &digits[..n];
    let (keep, round_up) = if shift >= 0 {
        (digits.len(), false)
    } else {
        let drop = (-shift) as usize;
        if drop > digits.len() {
            (0, false)
        } else {
            let keep = digits.len() - drop;
            (keep, digits[keep] >= 5)
        }
    };
    if exact && digits[keep..].iter().any(|&d| d != 0) {
        return Err(DecimalError::Inexact);
    }
    let mut v: i128 = 0;
    for &d in &digits[..keep] {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(d as i128))
            .ok_or(DecimalError::Overflow)?;
    }
    if shift > 0 {
        for _ in 0..shift {
            v = v.checked_mul(10).ok_or(DecimalError::Overflow)?;
        }
    }
    if round_up {
        v += 1;
    }
    if v >= POW10[usize::from(precision.min(38))] {
        return Err(DecimalError::Overflow);
    }
    Ok(if neg { -v } else { v })
}

/// (year, month, day)
type Ymd = (i64, u32, u32);

/// Parses `[+-]YYYY-MM-DD`, returning (year, month, day) and the rest.
fn date_part(s: &[u8]) -> Option<(Ymd, &[u8])> {
    let (neg, s) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let ylen = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(4..=7).contains(&ylen) || s.get(ylen) != Some(&b'-') {
        return None;
    }
    // 4 to 7 ASCII digits (checked above): no overflow, no UTF-8 check needed.
    let year = s[..ylen]
        .iter()
        .fold(0i64, |y, &b| y * 10 + i64::from(b - b'0'));
    let s = &s[ylen + 1..];
    let month = two_digits(s)?;
    if s.get(2) != Some(&b'-') {
        return None;
    }
    let day = two_digits(&s[3..])?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(if neg { -year } else { year }, month)
    {
        return None;
    }
    Some(((if neg { -year } else { year }, month, day), &s[5..]))
}

fn two_digits(s: &[u8]) -> Option<u32> {
    match s {
        [a @ b'0'..=b'9', b @ b'0'..=b'9', ..] => Some(((a - b'0') * 10 + (b - b'0')) as u32),
        _ => None,
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Strips a trailing ` BC` (case-insensitive) and reports whether it was there.
fn strip_bc(s: &[u8]) -> (&[u8], bool) {
    if s.len() >= 3 && s[s.len() - 2..].eq_ignore_ascii_case(b"BC") && s[s.len() - 3] == b' ' {
        (s[..s.len() - 3].trim_ascii_end(), true)
    } else {
        (s, false)
    }
}

fn special(s: &[u8]) -> Option<bool> {
    if s.eq_ignore_ascii_case(b"infinity") || s.eq_ignore_ascii_case(b"+infinity") {
        Some(true)
    } else if s.eq_ignore_ascii_case(b"-infinity") {
        Some(false)
    } else {
        None
    }
}

fn year_of(y: i64, bc: bool) -> Option<i64> {
    if bc {
        // 1 BC is year 0; "0000 BC" does not exist.
        (y > 0).then_some(1 - y)
    } else {
        Some(y)
    }
}

/// First year of [`YEAR_STARTS`].
const TABLE_FROM: u32 = 1900;

/// Days from 1970-01-01 to January 1st of each year from 1900 to 2099: the
/// dates most files hold become a lookup and two additions.
const YEAR_STARTS: [i32; 200] = {
    let mut t = [0i32; 200];
    let mut i = 0;
    while i < 200 {
        // Days from 0001-01-01 to January 1st, less those to 1970-01-01.
        let y = TABLE_FROM as i64 + i as i64 - 1;
        t[i] = (365 * y + y / 4 - y / 100 + y / 400 - 719_162) as i32;
        i += 1;
    }
    t
};

/// Days in the months before each month of a common year.
const DAYS_BEFORE_MONTH: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/// `date`: ISO `YYYY-MM-DD` (optional ` BC`), or ±infinity.
pub fn parse_date(s: &[u8]) -> Option<i32> {
    // The common case, exactly `YYYY-MM-DD`, without the general path's
    // trimming, keyword and era checks; anything else falls through.
    if let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *s
        && [y0, y1, y2, y3, m0, m1, d0, d1]
            .iter()
            .all(u8::is_ascii_digit)
    {
        let n = |a: u8, b: u8| u32::from(a - b'0') * 10 + u32::from(b - b'0');
        let (year, month, day) = (n(y0, y1) * 100 + n(y2, y3), n(m0, m1), n(d0, d1));
        if (1..=12).contains(&month) && day >= 1 && day <= days_in_month(i64::from(year), month) {
            return Some(
                match YEAR_STARTS.get(year.wrapping_sub(TABLE_FROM) as usize) {
                    Some(&start) => {
                        // 1900–2099: a leap year is a multiple of 4 other than 1900.
                        let leap = year % 4 == 0 && year != 1900;
                        let before =
                            DAYS_BEFORE_MONTH[month as usize - 1] + u32::from(leap && month > 2);
                        start + (before + day - 1) as i32
                    }
                    // Years 0000–9999 are well inside i32 days.
                    None => unix_days_from_civil(i64::from(year), month, day) as i32,
                },
            );
        }
    }
    let s = trim(s);
    if let Some(pos) = special(s) {
        return Some(if pos { i32::MAX } else { i32::MIN });
    }
    let (s, bc) = strip_bc(s);
    let ((y, m, d), rest) = date_part(s)?;
    if !rest.is_empty() {
        return None;
    }
    let days = unix_days_from_civil(year_of(y, bc)?, m, d);
    i32::try_from(days)
        .ok()
        .filter(|d| *d != i32::MAX && *d != i32::MIN)
}

/// `HH:MM[:SS[.fraction]]` → microseconds since midnight, and the rest.
fn time_part(s: &[u8]) -> Option<(i64, &[u8])> {
    let h = two_digits(s)? as i64;
    if s.get(2) != Some(&b':') {
        return None;
    }
    let mi = two_digits(&s[3..])? as i64;
    let mut rest = &s[5..];
    let mut sec = 0i64;
    let mut micros = 0i64;
    if rest.first() == Some(&b':') {
        sec = two_digits(&rest[1..])? as i64;
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            let frac = &rest[1..1 + digits];
            for i in 0..6 {
                micros = micros * 10 + frac.get(i).map_or(0, |b| (b - b'0') as i64);
            }
            if frac.get(6).is_some_and(|b| *b >= b'5') {
                micros += 1;
            }
            rest = &rest[1 + digits..];
        }
    }
    if mi > 59 || sec > 60 || h > 24 {
        return None;
    }
    let total = ((h * 60 + mi) * 60 + sec) * 1_000_000 + micros;
    (total <= 86_400_000_000).then_some((total, rest))
}

/// `time`: `HH:MM[:SS[.ffffff]]`, up to `24:00:00`, in microseconds.
pub fn parse_time(s: &[u8]) -> Option<i64> {
    let (t, rest) = time_part(trim(s))?;
    rest.is_empty().then_some(t)
}

/// Why a timestamp did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// Not a timestamp.
    Syntax,
    /// Has a zone offset but the column is `timestamp` without time zone.
    UnexpectedZone,
}

/// Parses a zone suffix (`Z`, `UTC`, `±HH`, `±HH:MM`, `±HHMM`, `±HH:MM:SS`),
/// optionally after a space; returns its offset in seconds.
fn zone(s: &[u8]) -> Option<i64> {
    let s = s.strip_prefix(b" ").unwrap_or(s);
    if s.eq_ignore_ascii_case(b"z")
        || s.eq_ignore_ascii_case(b"utc")
        || s.eq_ignore_ascii_case(b"gmt")
    {
        return Some(0);
    }
    let sign = match s.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let s = &s[1..];
    let h = two_digits(s)? as i64;
    let mut rest = &s[2..];
    let mut m = 0;
    let mut sec = 0;
    if !rest.is_empty() {
        rest = rest.strip_prefix(b":").unwrap_or(rest);
        m = two_digits(rest)? as i64;
        rest = &rest[2..];
        if !rest.is_empty() {
            rest = rest.strip_prefix(b":")?;
            sec = two_digits(rest)? as i64;
            rest = &rest[2..];
        }
    }
    if !rest.is_empty() || h > 15 || m > 59 || sec > 59 {
        return None;
    }
    Some(sign * (h * 3_600 + m * 60 + sec))
}

/// `timestamp` / `timestamptz`: `YYYY-MM-DD[( |T)HH:MM[:SS[.f]]][zone][ BC]`
/// or ±infinity, in microseconds since 1970 (UTC when `zoned`; a value
/// without a zone is read as UTC). A zone in a naive column is an error.
pub fn parse_timestamp(s: &[u8], zoned: bool) -> Result<i64, TimestampError> {
    let s = trim(s);
    if let Some(pos) = special(s) {
        return Ok(if pos { i64::MAX } else { i64::MIN });
    }
    let (s, bc) = strip_bc(s);
    let ((y, m, d), mut rest) = date_part(s).ok_or(TimestampError::Syntax)?;
    let mut micros = 0;
    if let Some((&sep, after)) = rest.split_first()
        && matches!(sep, b' ' | b'T' | b't')
        && after.first().is_some_and(u8::is_ascii_digit)
    {
        let (t, r) = time_part(after).ok_or(TimestampError::Syntax)?;
        micros = t;
        rest = r;
    }
    let mut offset = 0;
    if !rest.is_empty() {
        offset = zone(rest).ok_or(TimestampError::Syntax)?;
        if !zoned {
            return Err(TimestampError::UnexpectedZone);
        }
    }
    let days = unix_days_from_civil(year_of(y, bc).ok_or(TimestampError::Syntax)?, m, d);
    days.checked_mul(86_400_000_000)
        .and_then(|v| v.checked_add(micros))
        .and_then(|v| v.checked_sub(offset * 1_000_000))
        .filter(|v| *v != i64::MAX && *v != i64::MIN)
        .ok_or(TimestampError::Syntax)
}

/// `interval`: PostgreSQL's `N unit …` form (`1 year 2 mons 3 days`,
/// `-4 hours`, optional `@` and `ago`), a `[-]HH:MM[:SS[.f]]` time part, or
/// ISO 8601 (`P1Y2M3DT4H5M6.5S`). Quantities other than seconds must be whole.
pub fn parse_interval(s: &[u8]) -> Option<IntervalMonthDayNano> {
    let s = std::str::from_utf8(trim(s)).ok()?;
    if let Some(iso) = s.strip_prefix('P').or_else(|| s.strip_prefix('p')) {
        return parse_iso_interval(iso);
    }
    let mut months: i64 = 0;
    let mut days: i64 = 0;
    let mut micros: i64 = 0;
    let mut tokens = s.split_whitespace().peekable();
    let mut ago = false;
    let mut any = false;
    while let Some(tok) = tokens.next() {
        if tok == "@" {
            continue;
        }
        if tok.eq_ignore_ascii_case("ago") {
            ago = true;
            continue;
        }
        if tok.contains(':') {
            let (neg, t) = match tok.strip_prefix('-') {
                Some(t) => (true, t),
                None => (false, tok.strip_prefix('+').unwrap_or(tok)),
            };
            let (h, rest) = t.split_once(':')?;
            let h: i64 = h.parse().ok()?;
            let padded = format!("00:{rest}");
            let (ms, tail) = time_part(padded.as_bytes())?;
            if !tail.is_empty() {
                return None;
            }
            let v = h.checked_mul(3_600_000_000)?.checked_add(ms)?;
            micros = micros.checked_add(if neg { -v } else { v })?;
            any = true;
            continue;
        }
        // A number, with the unit either attached ("3days") or next.
        let split = tok
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
            .unwrap_or(tok.len());
        let (num, unit) = tok.split_at(split);
        let unit = if unit.is_empty() {
            tokens.next()?
        } else {
            unit
        };
        add_unit(num, unit, &mut months, &mut days, &mut micros)?;
        any = true;
    }
    if !any {
        return None;
    }
    if ago {
        months = -months;
        days = -days;
        micros = -micros;
    }
    Some(IntervalMonthDayNano {
        months: i32::try_from(months).ok()?,
        days: i32::try_from(days).ok()?,
        nanoseconds: micros.checked_mul(1_000)?,
    })
}

fn add_unit(
    num: &str,
    unit: &str,
    months: &mut i64,
    days: &mut i64,
    micros: &mut i64,
) -> Option<()> {
    let unit = unit.to_ascii_lowercase();
    let unit = unit.trim_end_matches(',');
    let whole = || num.parse::<i64>().ok();
    match unit {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" => {
            *micros = micros.checked_add(whole()?)?
        }
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => {
            *micros = micros.checked_add(whole()?.checked_mul(1_000)?)?
        }
        "second" | "seconds" | "sec" | "secs" | "s" => {
            let v = seconds_to_micros(num)?;
            *micros = micros.checked_add(v)?
        }
        "minute" | "minutes" | "min" | "mins" | "m" => {
            *micros = micros.checked_add(whole()?.checked_mul(60_000_000)?)?
        }
        "hour" | "hours" | "hr" | "hrs" | "h" => {
            *micros = micros.checked_add(whole()?.checked_mul(3_600_000_000)?)?
        }
        "day" | "days" | "d" => *days = days.checked_add(whole()?)?,
        "week" | "weeks" | "w" => *days = days.checked_add(whole()?.checked_mul(7)?)?,
        "month" | "months" | "mon" | "mons" => *months = months.checked_add(whole()?)?,
        "year" | "years" | "yr" | "yrs" | "y" => {
            *months = months.checked_add(whole()?.checked_mul(12)?)?
        }
        "decade" | "decades" => *months = months.checked_add(whole()?.checked_mul(120)?)?,
        "century" | "centuries" => *months = months.checked_add(whole()?.checked_mul(1_200)?)?,
        "millennium" | "millennia" | "millenniums" => {
            *months = months.checked_add(whole()?.checked_mul(12_000)?)?
        }
        _ => return None,
    }
    Some(())
}

fn seconds_to_micros(num: &str) -> Option<i64> {
    let (neg, n) = match num.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    let (int, frac) = n.split_once('.').unwrap_or((n, ""));
    if int.is_empty() && frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: i64 = 0;
    for i in 0..6 {
        f = f * 10 + frac.as_bytes().get(i).map_or(0, |b| (b - b'0') as i64);
    }
    let v = int.checked_mul(1_000_000)?.checked_add(f)?;
    Some(if neg { -v } else { v })
}

fn parse_iso_interval(s: &str) -> Option<IntervalMonthDayNano> {
    let (date, time) = match s.find(['T', 't']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut months = 0i64;
    let mut days = 0i64;
    let mut micros = 0i64;
    let mut any = false;
    let mut walk = |part: &str, in_time: bool| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == '-' || c == '+' {
                num.push(c);
                continue;
            }
            let unit = match (c.to_ascii_uppercase(), in_time) {
                ('Y', false) => "years",
                ('M', false) => "months",
                ('W', false) => "weeks",
                ('D', false) => "days",
                ('H', true) => "hours",
                ('M', true) => "minutes",
                ('S', true) => "seconds",
                _ => return None,
            };
            add_unit(&num, unit, &mut months, &mut days, &mut micros)?;
            num.clear();
            any = true;
        }
        num.is_empty().then_some(())
    };
    walk(date, false)?;
    if let Some(t) = time {
        walk(t, true)?;
    }
    if !any {
        return None;
    }
    Some(IntervalMonthDayNano {
        months: i32::try_from(months).ok()?,
        days: i32::try_from(days).ok()?,
        nanoseconds: micros.checked_mul(1_000)?,
    })
}

/// `bytea`: hex format `\x0a1b…` or escape format (`\\` and `\ooo` octal),
/// otherwise the bytes themselves. Appends to `out`.
pub fn parse_bytea(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if let Some(hex) = s.strip_prefix(b"\\x").or_else(|| s.strip_prefix(b"\\X")) {
        let mut hi = None;
        for &b in hex {
            if b.is_ascii_whitespace() && hi.is_none() {
                continue;
            }
            let v = (b as char).to_digit(16)? as u8;
            match hi.take() {
                None => hi = Some(v),
                Some(h) => out.push(h << 4 | v),
            }
        }
        return hi.is_none().then_some(());
    }
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
        } else if s.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let oct = s.get(i + 1..i + 4)?;
            if !oct.iter().all(|b| (b'0'..=b'7').contains(b)) || oct[0] > b'3' {
                return None;
            }
            out.push((oct[0] - b'0') * 64 + (oct[1] - b'0') * 8 + (oct[2] - b'0'));
            i += 4;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests;
