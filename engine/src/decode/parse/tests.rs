//! Tests of `parse.rs`, in a file of their own to keep that file readable.

use super::*;

#[test]
fn booleans() {
    for t in ["t", "TRUE", " yes ", "y", "on", "1", "tr"] {
        assert_eq!(parse_bool(t.as_bytes()), Some(true), "{t}");
    }
    for f in ["f", "False", "no", "n", "off", "0", "of"] {
        assert_eq!(parse_bool(f.as_bytes()), Some(false), "{f}");
    }
    for bad in ["", "o", "2", "truee", "nope"] {
        assert_eq!(parse_bool(bad.as_bytes()), None, "{bad}");
    }
}

#[test]
fn integers_and_floats() {
    assert_eq!(parse_i64(b" -42 "), Some(-42));
    assert_eq!(parse_i64(b"+7"), Some(7));
    assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    assert_eq!(parse_i64(b"9223372036854775808"), None);
    assert_eq!(parse_i64(b"1.0"), None);
    assert_eq!(parse_i64(b"-"), None);
    assert_eq!(parse_f64(b"1e308"), Some(1e308));
    assert_eq!(parse_f64(b"1e400"), None);
    assert!(parse_f64(b"NaN").unwrap().is_nan());
    assert_eq!(parse_f64(b"-Infinity"), Some(f64::NEG_INFINITY));
    assert_eq!(parse_f32(b"3.4e39"), None);
    assert_eq!(
        parse_f64(b"-0").map(f64::to_bits),
        Some((-0.0f64).to_bits())
    );
}

proptest::proptest! {
    /// The one-pass path agrees with the general one wherever it answers.
    #[test]
    fn plain_decimals_agree_with_the_general_parser(
        text in "[-+]?[0-9]{0,22}(\\.[0-9]{0,22})?",
        scale in 0i8..=20,
        extra in 1u8..=20,
    ) {
        let precision = (scale as u8).saturating_add(extra).min(38);
        if let Some(v) = parse_decimal_plain(text.as_bytes(), precision, scale) {
            proptest::prop_assert_eq!(Ok(v), parse_decimal_general(text.as_bytes(), precision, scale, false));
        }
    }
}

#[test]
fn usual_decimals_take_the_one_pass_path() {
    assert_eq!(parse_decimal_plain(b"14175.00", 15, 2), Some(1417500));
    assert_eq!(parse_decimal_plain(b"-0.08", 15, 2), Some(-8));
    assert_eq!(parse_decimal_plain(b"7", 15, 2), Some(700));
    assert_eq!(parse_decimal_plain(b".5", 3, 1), Some(5));
    // Rounding, exponents, spaces and overflow go the general way.
    assert_eq!(parse_decimal_plain(b"1.005", 10, 2), None);
    assert_eq!(parse_decimal_plain(b"1e3", 10, 0), None);
    assert_eq!(parse_decimal_plain(b" 1", 10, 0), None);
    assert_eq!(parse_decimal_plain(b"100", 4, 2), None);
    assert_eq!(parse_decimal(b"100", 4, 2), Err(DecimalError::Overflow));
}

#[test]
fn decimals_round_like_postgres() {
    assert_eq!(parse_decimal(b"1.005", 10, 2), Ok(101));
    assert_eq!(parse_decimal(b"-1.005", 10, 2), Ok(-101));
    assert_eq!(parse_decimal(b"1.004", 10, 2), Ok(100));
    assert_eq!(parse_decimal(b"12", 4, 2), Ok(1200));
    assert_eq!(parse_decimal(b"100", 4, 2), Err(DecimalError::Overflow));
    assert_eq!(parse_decimal(b"99.995", 4, 2), Err(DecimalError::Overflow));
    assert_eq!(parse_decimal(b"1.5e3", 10, 0), Ok(1500));
    assert_eq!(parse_decimal(b"0.000001", 10, 2), Ok(0));
    assert_eq!(parse_decimal(b".5", 3, 1), Ok(5));
    assert_eq!(parse_decimal(b"1234", 5, -2), Ok(12));
    assert_eq!(parse_decimal(b"abc", 5, 2), Err(DecimalError::Syntax));
    assert_eq!(parse_decimal(b"", 5, 2), Err(DecimalError::Syntax));
    let max = "9".repeat(38);
    assert_eq!(parse_decimal(max.as_bytes(), 38, 0), Ok(10i128.pow(38) - 1));
}

#[test]
fn dates_and_times() {
    // The exact-shape fast path agrees with the calendar, day by day.
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let mut day = chrono::NaiveDate::from_ymd_opt(1599, 12, 25).unwrap();
    while chrono::Datelike::year(&day) < 2402 {
        let text = day.format("%Y-%m-%d").to_string();
        let want = (day - epoch).num_days() as i32;
        assert_eq!(parse_date(text.as_bytes()), Some(want), "{text}");
        day = day.succ_opt().unwrap();
    }
    for bad in [
        "2023-02-29",
        "2100-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024-04-31",
        "2024-01-00",
        "2024-0a-01",
        "1900-02-29",
        "2023-06-31",
        "2023-99-01",
        "2023-01-32",
    ] {
        assert_eq!(parse_date(bad.as_bytes()), None, "{bad}");
    }
    assert_eq!(parse_date(b" 2024-02-29 "), parse_date(b"2024-02-29"));
    assert_eq!(parse_date(b"1970-01-02"), Some(1));
    assert_eq!(parse_date(b"2000-02-29"), Some(11_016));
    assert_eq!(parse_date(b"1999-02-29"), None);
    assert_eq!(
        parse_date(b"0001-01-01 BC"),
        Some(unix_days_from_civil(0, 1, 1) as i32)
    );
    assert_eq!(parse_date(b"infinity"), Some(i32::MAX));
    assert_eq!(parse_date(b"-infinity"), Some(i32::MIN));
    assert_eq!(
        parse_date(b"10000-01-01"),
        Some(unix_days_from_civil(10_000, 1, 1) as i32)
    );
    assert_eq!(parse_date(b"2024-1-1"), None);
    assert_eq!(parse_time(b"24:00:00"), Some(86_400_000_000));
    assert_eq!(parse_time(b"01:02:03.0000005"), Some(3_723_000_001));
    assert_eq!(parse_time(b"25:00"), None);
    assert_eq!(
        parse_timestamp(b"1970-01-01T00:00:01Z", true),
        Ok(1_000_000)
    );
    assert_eq!(parse_timestamp(b"1970-01-01 02:00:00+02", true), Ok(0));
    assert_eq!(
        parse_timestamp(b"1970-01-01 00:00:00 -01:30", true),
        Ok(5_400_000_000)
    );
    assert_eq!(parse_timestamp(b"1970-01-01", false), Ok(0));
    assert_eq!(
        parse_timestamp(b"1970-01-01 00:00:00+00", false),
        Err(TimestampError::UnexpectedZone)
    );
    assert_eq!(
        parse_timestamp(b"1970-01-01 xx", false),
        Err(TimestampError::Syntax)
    );
    assert_eq!(parse_timestamp(b"-infinity", false), Ok(i64::MIN));
}

#[test]
fn intervals() {
    let iv = |m, d, us: i64| {
        Some(IntervalMonthDayNano {
            months: m,
            days: d,
            nanoseconds: us * 1_000,
        })
    };
    assert_eq!(
        parse_interval(b"1 year 2 mons 3 days 04:05:06.5"),
        iv(14, 3, 14_706_500_000)
    );
    assert_eq!(
        parse_interval(b"-14 mons 3 days -1:30:00.5"),
        iv(-14, 3, -5_400_500_000)
    );
    assert_eq!(parse_interval(b"@ 2 hours ago"), iv(0, 0, -7_200_000_000));
    assert_eq!(
        parse_interval(b"P1Y2M3DT4H5M6.5S"),
        iv(14, 3, 14_706_500_000)
    );
    assert_eq!(parse_interval(b"1.5 days"), None);
    assert_eq!(parse_interval(b"3 fortnights"), None);
    assert_eq!(parse_interval(b""), None);
}

#[test]
fn bytea_forms() {
    let mut out = Vec::new();
    parse_bytea(b"\\x00ff 10", &mut out).unwrap();
    assert_eq!(out, [0, 255, 16]);
    out.clear();
    parse_bytea(b"a\\\\b\\001", &mut out).unwrap();
    assert_eq!(out, b"a\\b\x01");
    assert!(parse_bytea(b"\\x0", &mut Vec::new()).is_none());
    assert!(parse_bytea(b"\\9", &mut Vec::new()).is_none());
}
