//! PostgreSQL's own 64-bit hash functions (`hash_bytes_extended`, Bob
//! Jenkins' lookup3 as `src/common/hashfn.c` has it, and the per-type
//! `*_extended` hash support functions built on it), reproduced so that
//! ferry can hash what it sends exactly as the server hashes what it
//! stored. The server side calls the SQL functions of the same names; the
//! tests in `tests/receipt.rs` check both sides agree, value by value, on a
//! real server. Little-endian servers only (x86-64 and ARM64: every
//! PostgreSQL a user runs), as the hash of a value's in-memory bytes follows
//! the machine's byte order.

#[inline]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline]
fn finish(a: &mut u32, b: &mut u32, c: &mut u32) -> u64 {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
    ((*b as u64) << 32) | *c as u64
}

#[inline]
fn seeded(len: u32, seed: u64) -> (u32, u32, u32) {
    let init = 0x9e37_79b9u32.wrapping_add(len).wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    (a, b, c)
}

#[inline]
fn word(k: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([k[at], k[at + 1], k[at + 2], k[at + 3]])
}

/// `hash_bytes_extended(k, seed)`: the hash of a byte string (text, bytea,
/// uuid, a float's bytes, numeric digits).
pub fn hash_bytes(k: &[u8], seed: u64) -> u64 {
    let (mut a, mut b, mut c) = seeded(k.len() as u32, seed);
    let mut rest = k;
    while rest.len() >= 12 {
        a = a.wrapping_add(word(rest, 0));
        b = b.wrapping_add(word(rest, 4));
        c = c.wrapping_add(word(rest, 8));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    let byte = |i: usize| rest[i] as u32;
    let n = rest.len();
    // The tail, as the C switch falls through (the lowest byte of c is
    // reserved for the length, already added).
    if n >= 9 {
        if n >= 11 {
            c = c.wrapping_add(byte(10) << 24);
        }
        if n >= 10 {
            c = c.wrapping_add(byte(9) << 16);
        }
        c = c.wrapping_add(byte(8) << 8);
        b = b.wrapping_add(word(rest, 4));
        a = a.wrapping_add(word(rest, 0));
    } else if n == 8 {
        b = b.wrapping_add(word(rest, 4));
        a = a.wrapping_add(word(rest, 0));
    } else if n >= 4 {
        if n >= 7 {
            b = b.wrapping_add(byte(6) << 16);
        }
        if n >= 6 {
            b = b.wrapping_add(byte(5) << 8);
        }
        if n >= 5 {
            b = b.wrapping_add(byte(4));
        }
        a = a.wrapping_add(word(rest, 0));
    } else {
        if n >= 3 {
            a = a.wrapping_add(byte(2) << 16);
        }
        if n >= 2 {
            a = a.wrapping_add(byte(1) << 8);
        }
        if n >= 1 {
            a = a.wrapping_add(byte(0));
        }
    }
    finish(&mut a, &mut b, &mut c)
}

/// `hash_bytes_uint32_extended(k, seed)`: `hashint4extended`, and so the
/// hash of booleans (as 0/1) and of dates (days since 2000-01-01).
pub fn hash_u32(k: u32, seed: u64) -> u64 {
    let (mut a, mut b, mut c) = seeded(4, seed);
    a = a.wrapping_add(k);
    finish(&mut a, &mut b, &mut c)
}

/// `hashint8extended(v, seed)`: the high half is folded into the low one
/// (so that equal values of int2, int4 and int8 hash alike), then hashed as
/// a 32-bit value. Also `timestamp_hash_extended`, `time_hash_extended` and
/// `interval_hash_extended`, which hash their microseconds this way.
pub fn hash_i64(v: i64, seed: u64) -> u64 {
    let lo = v as u32;
    let hi = (v >> 32) as u32;
    hash_u32(lo ^ if v >= 0 { hi } else { !hi }, seed)
}

/// `hashfloat8extended(v, seed)` (and `hashfloat4extended`, which widens to
/// double first): zero of either sign hashes to the seed, every NaN alike.
pub fn hash_f64(v: f64, seed: u64) -> u64 {
    if v == 0.0 {
        return seed;
    }
    let v = if v.is_nan() {
        f64::from_bits(0x7ff8_0000_0000_0000)
    } else {
        v
    };
    hash_bytes(&v.to_le_bytes(), seed)
}

/// `hash_numeric_extended` of a numeric given by its base-10000 digits and
/// the weight of the first: leading and trailing zero digits are dropped
/// (so the display scale does not count), the rest hashed and the weight
/// mixed in. The sign is not part of it, as in PostgreSQL; callers put it
/// in the seed.
pub fn hash_numeric(digits: &[i16], weight: i32, seed: u64) -> u64 {
    let start = digits.iter().take_while(|&&d| d == 0).count();
    if start == digits.len() {
        return seed.wrapping_sub(1);
    }
    let end = digits.len() - digits.iter().rev().take_while(|&&d| d == 0).count();
    let mut bytes = [0u8; 64];
    let kept = &digits[start..end];
    let h = if kept.len() * 2 <= bytes.len() {
        for (i, d) in kept.iter().enumerate() {
            bytes[2 * i..2 * i + 2].copy_from_slice(&d.to_le_bytes());
        }
        hash_bytes(&bytes[..kept.len() * 2], seed)
    } else {
        let long: Vec<u8> = kept.iter().flat_map(|d| d.to_le_bytes()).collect();
        hash_bytes(&long, seed)
    };
    h ^ ((weight - start as i32) as i64 as u64)
}

/// `hash_array_extended`: the element hashes (0 for NULL) folded as
/// `h = h * 31 + e`, starting from 1.
pub fn fold_array(hashes: impl IntoIterator<Item = u64>) -> u64 {
    hashes
        .into_iter()
        .fold(1u64, |h, e| h.wrapping_mul(31).wrapping_add(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values printed by PostgreSQL 15 (SELECT hashtextextended('abc', 0), …).
    #[test]
    fn matches_values_postgresql_printed() {
        assert_eq!(hash_bytes(b"", 0) as i64, -6939563903564495251);
        assert_eq!(hash_bytes(b"abc", 0) as i64, -6747756470228489321);
        assert_eq!(hash_bytes(b"abc", 7) as i64, 1967049030278966041);
        assert_eq!(hash_i64(5, 0) as i64, -9138765687874534020);
        assert_eq!(hash_i64(5, 3) as i64, -5727598957719450488);
        // 1.5 = digits [1, 5000], weight 0; the sign does not count.
        assert_eq!(hash_numeric(&[1, 5000], 0, 0) as i64, -8828336294488843818);
        assert_eq!(
            hash_numeric(&[0, 1, 5000, 0], 1, 0) as i64,
            -8828336294488843818
        );
    }
}
