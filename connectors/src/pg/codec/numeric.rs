//! PostgreSQL `numeric` from decimal digits, for both COPY formats.
//!
//! Every numeric source (Decimal128/256, integers, floats) is first written as
//! ASCII digits on the stack plus a decimal scale; one routine turns that into
//! the binary form (base-10000 digits, weight, sign, dscale) and one into text.
//! Sharing the digit string is what makes the two formats agree bit for bit.

/// Sign word for a positive numeric.
const POS: u16 = 0x0000;
/// Sign word for a negative numeric.
const NEG: u16 = 0x4000;
/// Sign word for NaN.
const NAN: u16 = 0xC000;
/// Sign word for +Infinity (PostgreSQL 14+).
const PINF: u16 = 0xD000;
/// Sign word for -Infinity (PostgreSQL 14+).
const NINF: u16 = 0xF000;

/// Largest number of decimal digits ferry hands to the converter: an `i256`
/// has 77, a float's shortest form 17.
const MAX_DIGITS: usize = 80;

/// A decimal value as sign, magnitude digits and scale: value =
/// `±digits × 10^-scale`. Lives on the stack.
#[derive(Clone, Copy)]
pub struct Decimal {
    neg: bool,
    len: usize,
    digits: [u8; MAX_DIGITS],
    scale: i32,
}

/// A value for a `numeric` column, including its special values.
#[derive(Clone, Copy)]
pub enum NumericValue {
    /// A finite decimal.
    Finite(Decimal),
    /// `NaN`
    NaN,
    /// `Infinity`
    Infinity,
    /// `-Infinity`
    NegInfinity,
}

impl Decimal {
    /// From a signed magnitude given as ASCII digits (leading zeros allowed).
    /// Returns `None` if there are more digits than ferry supports.
    pub fn from_ascii(neg: bool, digits: &[u8], scale: i32) -> Option<Self> {
        let start = digits
            .iter()
            .position(|&d| d != b'0')
            .unwrap_or(digits.len());
        let digits = &digits[start..];
        if digits.len() > MAX_DIGITS {
            return None;
        }
        let mut out = Decimal {
            neg: neg && !digits.is_empty(),
            len: digits.len(),
            digits: [0; MAX_DIGITS],
            scale,
        };
        out.digits[..digits.len()].copy_from_slice(digits);
        Some(out)
    }

    /// From an unscaled `i128` (Decimal128) and its scale.
    pub fn from_i128(v: i128, scale: i32) -> Self {
        let neg = v < 0;
        let mag = v.unsigned_abs();
        let mut buf = itoa::Buffer::new();
        let s = if mag <= u64::MAX as u128 {
            buf.format(mag as u64)
        } else {
            buf.format(mag)
        };
        // At most 39 digits: always fits.
        Decimal::from_ascii(neg, s.as_bytes(), scale).unwrap_or_else(|| unreachable!())
    }

    /// From a decimal string of an integer (e.g. an `i256`'s `Display`), with
    /// optional leading `-`.
    pub fn from_int_str(s: &str, scale: i32) -> Option<Self> {
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| Decimal::from_ascii(neg, digits.as_bytes(), scale))
            .flatten()
    }

    /// The number of digits before the decimal point (may be ≤ 0).
    pub fn integer_digits(&self) -> i64 {
        self.len as i64 - self.scale as i64
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.len == 0
    }

    /// The scale PostgreSQL reports for this value (`dscale`): digits after the
    /// decimal point, never negative.
    pub fn dscale(&self) -> i32 {
        self.scale.max(0)
    }

    fn digit_at_exponent(&self, e: i64) -> u16 {
        // The leftmost digit has exponent len-1-scale.
        let i = self.len as i64 - 1 - self.scale as i64 - e;
        if (0..self.len as i64).contains(&i) {
            (self.digits[i as usize] - b'0') as u16
        } else {
            0
        }
    }
}

impl NumericValue {
    /// From an `f64`, using its shortest round-trip decimal form, so
    /// `0.1f64` becomes `0.1` and not `0.1000000000000000055511151231257827`.
    pub fn from_f64(v: f64) -> Self {
        if v.is_nan() {
            return NumericValue::NaN;
        }
        if v.is_infinite() {
            return if v > 0.0 {
                NumericValue::Infinity
            } else {
                NumericValue::NegInfinity
            };
        }
        let mut buf = ryu::Buffer::new();
        NumericValue::Finite(parse_float_text(buf.format_finite(v)))
    }

    /// From an `f32`, by its own shortest form (not the widened `f64`'s).
    pub fn from_f32(v: f32) -> Self {
        if !v.is_finite() {
            return NumericValue::from_f64(v as f64);
        }
        let mut buf = ryu::Buffer::new();
        NumericValue::Finite(parse_float_text(buf.format_finite(v)))
    }

    /// Appends the binary COPY payload (without the length word).
    pub fn write_binary(&self, out: &mut Vec<u8>) {
        let d = match self {
            NumericValue::NaN => return header(out, 0, 0, NAN, 0),
            NumericValue::Infinity => return header(out, 0, 0, PINF, 0),
            NumericValue::NegInfinity => return header(out, 0, 0, NINF, 0),
            NumericValue::Finite(d) => d,
        };
        if d.is_zero() {
            return header(out, 0, 0, POS, d.dscale() as u16);
        }
        let e_hi = d.len as i64 - 1 - d.scale as i64;
        let e_lo = -(d.scale as i64);
        let g_hi = e_hi.div_euclid(4);
        let mut g_lo = e_lo.div_euclid(4);
        let group = |g: i64| -> u16 {
            let base = 4 * g;
            d.digit_at_exponent(base + 3) * 1000
                + d.digit_at_exponent(base + 2) * 100
                + d.digit_at_exponent(base + 1) * 10
                + d.digit_at_exponent(base)
        };
        while g_lo < g_hi && group(g_lo) == 0 {
            g_lo += 1;
        }
        let ndigits = (g_hi - g_lo + 1) as u16;
        let sign = if d.neg { NEG } else { POS };
        header(out, ndigits, g_hi as i16, sign, d.dscale() as u16);
        let mut g = g_hi;
        while g >= g_lo {
            out.extend_from_slice(&group(g).to_be_bytes());
            g -= 1;
        }
    }

    /// Appends the text form PostgreSQL reads back to the same value.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        let d = match self {
            NumericValue::NaN => return out.extend_from_slice(b"NaN"),
            NumericValue::Infinity => return out.extend_from_slice(b"Infinity"),
            NumericValue::NegInfinity => return out.extend_from_slice(b"-Infinity"),
            NumericValue::Finite(d) => d,
        };
        if d.neg {
            out.push(b'-');
        }
        let digits = &d.digits[..d.len];
        let int_digits = d.integer_digits();
        if int_digits <= 0 {
            out.push(b'0');
        } else if int_digits as usize >= digits.len() {
            out.extend_from_slice(digits);
            out.resize(out.len() + (int_digits as usize - digits.len()), b'0');
        } else {
            out.extend_from_slice(&digits[..int_digits as usize]);
        }
        if d.scale > 0 {
            out.push(b'.');
            if int_digits < 0 {
                out.resize(out.len() + (-int_digits) as usize, b'0');
            }
            let frac_start = int_digits.max(0) as usize;
            out.extend_from_slice(&digits[frac_start.min(digits.len())..]);
        }
    }

    /// Checks the value fits `numeric(precision, scale)` after PostgreSQL
    /// rounds it to `scale` digits, so an overflow is reported with the row
    /// before anything is sent.
    pub fn fits(&self, precision: u32, scale: i32) -> bool {
        let NumericValue::Finite(d) = self else {
            // NaN fits any numeric; infinities fit only an unconstrained one.
            return matches!(self, NumericValue::NaN);
        };
        if d.is_zero() {
            return true;
        }
        // Digits left of the rounding position; rounding can add one more.
        let mut int_digits = d.integer_digits() + scale as i64;
        if d.scale > scale {
            // Digits kept after rounding to `scale`; the next one decides rounding.
            let keep = d.len as i64 - (d.scale as i64 - scale as i64);
            if keep < 0 {
                return true; // rounds to zero
            }
            let keep = keep as usize;
            let round_up = d.digits[keep] >= b'5';
            if keep == 0 && !round_up {
                return true; // rounds to zero
            }
            if round_up && d.digits[..keep].iter().all(|&c| c == b'9') {
                int_digits += 1;
            }
        }
        int_digits <= precision as i64
    }
}

/// Writes binary `numeric`s straight from unscaled integers (`±mag ×
/// 10^-scale`, how Decimal32/64/128 and integer columns hold them), for the
/// common case where the magnitude fits a `u64`: base-10000 groups come from
/// dividing by a constant instead of from an ASCII digit string, and the
/// target's `numeric(p, s)` check is one comparison. Anything it declines
/// goes through [`NumericValue`], which also words the errors; the bytes are
/// the same either way.
#[derive(Debug, Clone, Copy)]
pub struct UnscaledWriter {
    scale: u16,
    /// `10^pad` with `pad` the zeros that make the scale a multiple of 4.
    pad_mul: u64,
    /// Base-10000 groups right of the point once padded.
    frac_groups: i16,
    /// Magnitudes at or above this do not fit the target's typmod.
    limit: Option<u64>,
}

impl UnscaledWriter {
    /// A writer for values of this `scale` checked against `typmod`; `None`
    /// when the general path must decide: a negative scale, or a target
    /// scale below the source's (PostgreSQL rounds, and rounding can carry).
    pub fn new(scale: i32, typmod: Option<(u32, i32)>) -> Option<Self> {
        let scale16 = u16::try_from(scale).ok()?;
        let limit = match typmod {
            None => None,
            Some((_, target_scale)) if target_scale < scale => return None,
            // Digits left of the point must number at most p - s, so the
            // magnitude must stay below 10^(p - s + scale).
            Some((p, target_scale)) => {
                let e = p as i64 - target_scale as i64 + scale as i64;
                match e {
                    ..=0 => Some(1),
                    1..=19 => Some(10u64.pow(e as u32)),
                    _ => None,
                }
            }
        };
        let pad = (4 - scale % 4) % 4;
        Some(UnscaledWriter {
            scale: scale16,
            pad_mul: 10u64.pow(pad as u32),
            frac_groups: ((scale + pad) / 4) as i16,
            limit,
        })
    }

    /// Appends the payload of `v × 10^-scale`, or returns `false` having
    /// written nothing when the value is too large for this path or does not
    /// fit the target.
    #[inline]
    pub fn write(&self, v: i128, out: &mut Vec<u8>) -> bool {
        let Ok(mag) = u64::try_from(v.unsigned_abs()) else {
            return false;
        };
        if self.limit.is_some_and(|l| mag >= l) {
            return false;
        }
        if mag == 0 {
            header(out, 0, 0, POS, self.scale);
            return true;
        }
        let Some(mut m) = mag.checked_mul(self.pad_mul) else {
            return false;
        };
        // A u64 has at most 20 decimal digits: 5 groups, least significant first.
        let mut groups = [0u16; 5];
        let mut n = 0;
        while m > 0 {
            groups[n] = (m % 10_000) as u16;
            m /= 10_000;
            n += 1;
        }
        // Trailing zero groups are implied by the weight; the top one is nonzero.
        let low = groups.iter().take_while(|&&g| g == 0).count();
        let mut buf = [0u8; 8 + 2 * 5];
        let ndigits = n - low;
        buf[..2].copy_from_slice(&(ndigits as u16).to_be_bytes());
        buf[2..4].copy_from_slice(&(n as i16 - 1 - self.frac_groups).to_be_bytes());
        buf[4..6].copy_from_slice(&(if v < 0 { NEG } else { POS }).to_be_bytes());
        buf[6..8].copy_from_slice(&self.scale.to_be_bytes());
        for (slot, g) in buf[8..]
            .chunks_exact_mut(2)
            .zip(groups[low..n].iter().rev())
        {
            slot.copy_from_slice(&g.to_be_bytes());
        }
        out.extend_from_slice(&buf[..8 + 2 * ndigits]);
        true
    }
}

fn header(out: &mut Vec<u8>, ndigits: u16, weight: i16, sign: u16, dscale: u16) {
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
}

/// Turns ryu's output (`-1.25e-7`, `123.0`, `1e16`) into digits and a scale.
fn parse_float_text(s: &str) -> Decimal {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let mut digits = [0u8; MAX_DIGITS];
    let mut len = 0;
    let mut frac = 0i32;
    let mut seen_point = false;
    for b in mantissa.bytes() {
        match b {
            b'.' => seen_point = true,
            b'0'..=b'9' if len < MAX_DIGITS => {
                digits[len] = b;
                len += 1;
                if seen_point {
                    frac += 1;
                }
            }
            _ => {}
        }
    }
    // "123.0" carries a meaningless trailing zero: drop zeros after the point.
    while frac > 0 && len > 0 && digits[len - 1] == b'0' {
        len -= 1;
        frac -= 1;
    }
    Decimal::from_ascii(neg, &digits[..len], frac - exp).unwrap_or_else(|| unreachable!())
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy as _;

    use super::*;

    fn bin(v: NumericValue) -> Vec<u8> {
        let mut out = Vec::new();
        v.write_binary(&mut out);
        out
    }
    fn text(v: NumericValue) -> String {
        let mut out = Vec::new();
        v.write_text(&mut out);
        String::from_utf8(out).unwrap()
    }
    fn dec(v: i128, s: i32) -> NumericValue {
        NumericValue::Finite(Decimal::from_i128(v, s))
    }
    fn words(w: &[i32]) -> Vec<u8> {
        w.iter().flat_map(|x| (*x as u16).to_be_bytes()).collect()
    }

    #[test]
    fn golden_binary() {
        // 12345.678 = digits [1, 2345, 6780], weight 1, dscale 3
        assert_eq!(bin(dec(12_345_678, 3)), words(&[3, 1, 0, 3, 1, 2345, 6780]));
        // -0.0001 = [1] weight -1
        assert_eq!(bin(dec(-1, 4)), words(&[1, -1, 0x4000, 4, 1]));
        // 0.00 keeps its scale
        assert_eq!(bin(dec(0, 2)), words(&[0, 0, 0, 2]));
        // 1000000 = [100] weight 1 (trailing zero group stripped)
        assert_eq!(bin(dec(1_000_000, 0)), words(&[1, 1, 0, 0, 100]));
        // negative scale: 12 × 10^2 = 1200
        assert_eq!(bin(dec(12, -2)), words(&[1, 0, 0, 0, 1200]));
        assert_eq!(bin(NumericValue::NaN), words(&[0, 0, 0xC000, 0]));
        assert_eq!(bin(NumericValue::NegInfinity), words(&[0, 0, 0xF000, 0]));
    }

    #[test]
    fn text_forms() {
        assert_eq!(text(dec(12_345_678, 3)), "12345.678");
        assert_eq!(text(dec(-5, 3)), "-0.005");
        assert_eq!(text(dec(0, 2)), "0.00");
        assert_eq!(text(dec(12, -2)), "1200");
        assert_eq!(text(dec(i128::MAX, 0)), i128::MAX.to_string());
        assert_eq!(
            text(dec(-(10i128.pow(38) - 1), 38)),
            format!("-0.{}", "9".repeat(38))
        );
        assert_eq!(text(NumericValue::from_f64(0.1)), "0.1");
        assert_eq!(text(NumericValue::from_f64(1e16)), "10000000000000000");
        assert_eq!(text(NumericValue::from_f64(-1.5e-7)), "-0.00000015");
        assert_eq!(text(NumericValue::from_f64(-0.0)), "0");
        assert_eq!(text(NumericValue::from_f32(0.1)), "0.1");
    }

    #[test]
    fn precision_checks() {
        assert!(dec(99_999, 2).fits(5, 2));
        assert!(!dec(100_000, 2).fits(5, 2));
        // 9.995 rounds to 10.00 which needs 4 digits
        assert!(!dec(9995, 3).fits(3, 2));
        assert!(dec(9994, 3).fits(3, 2));
        assert!(dec(4, 3).fits(1, 2)); // 0.004 -> 0.00
        assert!(!NumericValue::Infinity.fits(10, 2));
        assert!(NumericValue::NaN.fits(10, 2));
    }

    proptest::proptest! {
        #[test]
        fn binary_digits_reconstruct_the_value(v in proptest::num::i128::ANY, scale in -10i32..40) {
            let b = bin(dec(v, scale));
            let w = |i: usize| u16::from_be_bytes([b[2 * i], b[2 * i + 1]]);
            let (n, weight, sign) = (w(0) as usize, w(1) as i16 as i64, w(2));
            // Rebuild the decimal string from base-10000 digits and compare.
            let mut s = String::new();
            for i in 0..n {
                s.push_str(&format!("{:04}", w(4 + i)));
            }
            let exp10 = 4 * (weight - n as i64 + 1); // exponent of the last digit
            let rebuilt = num_string(&s, exp10);
            let expect = num_string(&v.unsigned_abs().to_string(), -(scale as i64));
            proptest::prop_assert_eq!(rebuilt, expect);
            proptest::prop_assert_eq!(sign == 0x4000, v < 0);
        }
    }

    proptest::proptest! {
        /// The unscaled fast path writes exactly what the general path does,
        /// and declines exactly the values the typmod refuses.
        #[test]
        fn the_unscaled_writer_matches_the_general_path(
            v in proptest::prop_oneof![
                proptest::num::i128::ANY,
                proptest::num::i64::ANY.prop_map(i128::from),
                (-100_000i128..100_000),
                proptest::num::u64::ANY.prop_map(i128::from),
                // Powers of ten and their neighbours: the typmod boundaries.
                (0u32..39, -1i128..=1, proptest::bool::ANY)
                    .prop_map(|(k, d, neg)| (10i128.pow(k) + d) * if neg { -1 } else { 1 }),
            ],
            scale in 0i32..40,
            typmod in proptest::option::of((1u32..40, 0i32..45)),
        ) {
            let general = dec(v, scale);
            let Some(w) = UnscaledWriter::new(scale, typmod) else {
                // Declined plans are the rounding ones only.
                proptest::prop_assert!(typmod.is_some_and(|(_, s)| s < scale));
                return Ok(());
            };
            let mut fast = Vec::new();
            if w.write(v, &mut fast) {
                proptest::prop_assert_eq!(&fast, &bin(general));
                if let Some((p, s)) = typmod {
                    proptest::prop_assert!(general.fits(p, s));
                }
            } else {
                proptest::prop_assert!(fast.is_empty());
                let fits = typmod.is_none_or(|(p, s)| general.fits(p, s));
                // Declined while fitting: only because it is too large for u64.
                proptest::prop_assert!(!fits || v.unsigned_abs() > u64::MAX as u128 / 1000);
            }
        }
    }

    /// Canonical "digits × 10^exp" as digits without leading/trailing zeros + exponent.
    fn num_string(digits: &str, exp10: i64) -> (String, i64) {
        let t = digits.trim_start_matches('0');
        let trimmed = t.trim_end_matches('0');
        if trimmed.is_empty() {
            return (String::new(), 0);
        }
        (
            trimmed.to_string(),
            exp10 + (t.len() - trimmed.len()) as i64,
        )
    }
}
