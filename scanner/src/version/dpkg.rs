//! Debian version ordering, as `dpkg --compare-versions` decides it (Debian Policy 5.6.12).
//!
//! A version is `[epoch:]upstream[-revision]`:
//!
//! - the epoch is the decimal number before the FIRST colon (missing: 0),
//! - the revision is what follows the LAST hyphen (missing: empty, which compares equal
//!   to `0`),
//! - epochs compare as numbers; upstream versions, then revisions, compare by alternating
//!   non-digit and digit runs: in non-digit runs `~` sorts before everything (even the end
//!   of the string), then the end, then letters, then every other character; digit runs
//!   compare as unbounded integers.
//!
//! Inputs that dpkg rejects still get a deterministic place in the order:
//!
//! - surrounding ASCII whitespace is ignored, as dpkg does; a NUL ends the string;
//! - an epoch is accepted as dpkg's `strtol` reads it (`+1:`, `01:`, `-0:`); an epoch of
//!   any size compares exactly (dpkg rejects those above `i32::MAX`);
//! - a part before the first colon that is not a number (`a:1`, `:1`, `-1:`) is no epoch:
//!   the whole string is then compared as the upstream version with epoch 0;
//! - an empty string, an empty upstream or an empty revision compare as empty strings
//!   (`dpkg --compare-versions` treats an empty argument the same way);
//! - characters dpkg warns about (`_`, `^`, non-ASCII) are compared as dpkg on x86-64
//!   does: bytes above 0x7f sort after letters and before ASCII punctuation.
//!
//! dpkg's command line also treats the literal argument `<unknown>` as an empty version;
//! that is a quirk of its argument parsing, not of the ordering, and is not reproduced.

use std::cmp::Ordering;

use super::{c_str, cmp_digits};

/// Orders Debian version `a` relative to `b` exactly as `dpkg --compare-versions` does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let a = Version::parse(a);
    let b = Version::parse(b);
    cmp_digits(a.epoch, b.epoch)
        .then_with(|| verrevcmp(a.upstream, b.upstream))
        .then_with(|| verrevcmp(a.revision, b.revision))
}

/// A version split into its parts, borrowing from the input.
struct Version<'a> {
    /// Decimal digits, possibly with leading zeros or none at all (epoch 0).
    epoch: &'a [u8],
    upstream: &'a [u8],
    revision: &'a [u8],
}

impl<'a> Version<'a> {
    fn parse(s: &'a str) -> Self {
        let s = trim_c_space(c_str(s));
        let (epoch, rest) = match s.iter().position(|&c| c == b':') {
            Some(colon) => match epoch_digits(&s[..colon]) {
                Some(digits) => (digits, &s[colon + 1..]),
                None => (&b""[..], s),
            },
            None => (&b""[..], s),
        };
        let (upstream, revision) = match rest.iter().rposition(|&c| c == b'-') {
            Some(hyphen) => (&rest[..hyphen], &rest[hyphen + 1..]),
            None => (rest, &b""[..]),
        };
        Version {
            epoch,
            upstream,
            revision,
        }
    }
}

/// The digits of an epoch as `strtol` would read the whole of `s`, or `None` when dpkg
/// would not take `s` as an epoch (empty, not a number, negative).
fn epoch_digits(s: &[u8]) -> Option<&[u8]> {
    let (negative, digits) = match s.split_first() {
        Some((b'+', rest)) => (false, rest),
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // `-0` is zero, not negative, so dpkg accepts it.
    if negative && digits.iter().any(|&d| d != b'0') {
        return None;
    }
    Some(digits)
}

/// `s` without leading and trailing whitespace as C's `isspace` defines it.
fn trim_c_space(s: &[u8]) -> &[u8] {
    let is_space = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = s.iter().position(|c| !is_space(c)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !is_space(c))
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// The weight of one character in a non-digit run; `None` is the end of the string.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        // dpkg adds 256 to a signed `char`: bytes above 0x7f are negative there and end
        // up at their unsigned value, between the letters and ASCII punctuation.
        Some(c) if c >= 0x80 => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's comparison of an upstream version or a revision.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let is_digit = |s: &[u8], i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit run: character by character.
        while (i < a.len() && !is_digit(a, i)) || (j < b.len() && !is_digit(b, j)) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // Digit run: as integers of any length.
        let da = i + super::span(a.get(i..).unwrap_or_default(), |c| c.is_ascii_digit());
        let db = j + super::span(b.get(j..).unwrap_or_default(), |c| c.is_ascii_digit());
        let numbers = cmp_digits(
            a.get(i..da).unwrap_or_default(),
            b.get(j..db).unwrap_or_default(),
        );
        if numbers != Ordering::Equal {
            return numbers;
        }
        i = da;
        j = db;
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// `(a, b, a compared with b)`; every row is also checked reversed.
    const TABLE: &[(&str, &str, Ordering)] = &[
        // Plain upstream versions.
        ("1.0", "1.0", Equal),
        ("1.0", "1.1", Less),
        ("1.2", "1.10", Less),
        ("1.0", "1.0.0", Less),
        ("2", "10", Less),
        ("1.01", "1.1", Equal),
        ("1.001", "1.1", Equal),
        ("0010", "10", Equal),
        ("1.0", "1.00", Equal),
        // Tilde sorts before everything, including the end.
        ("1.0~rc1", "1.0", Less),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~~", "1.0~", Less),
        ("1.0~~a", "1.0~", Less),
        ("1.0~", "1.0", Less),
        ("1.0~a", "1.0~b", Less),
        ("1.0~rc1", "1.0~rc1~", Greater),
        ("3.0.11-1~deb12u2", "3.0.11-1", Less),
        ("3.0.11-1~deb12u2", "3.0.11-1~deb12u1", Greater),
        ("2.36-9+deb12u4", "2.36-9", Greater),
        ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
        // Letters sort before non-letters, the end before letters.
        ("1.0a", "1.0", Greater),
        ("1.0a", "1.0.1", Less),
        ("1.0a", "1.0+", Less),
        ("1.0+", "1.0.", Less),
        ("1.0.", "1.0", Greater),
        ("1.0a", "1.0B", Greater),
        ("1.0Z", "1.0a", Less),
        ("1.0+dfsg", "1.0", Greater),
        ("1.0+dfsg", "1.0.1", Less),
        ("1.0-1", "1.0+1-1", Less),
        ("abc", "abd", Less),
        ("a", "1", Greater),
        // Epochs: numeric, first colon, missing is 0.
        ("1:1.0", "2.0", Greater),
        ("0:1.0", "1.0", Equal),
        ("00:1.0", "1.0", Equal),
        ("1:1.0", "01:1.0", Equal),
        ("2:0", "10:0", Less),
        ("1:2:3", "1:2:3", Equal),
        ("1:2:3", "1:2.3", Greater),
        ("1:1.0", "1:1.0-0", Equal),
        ("+1:1.0", "1:1.0", Equal),
        ("-0:1.0", "1.0", Equal),
        (
            "99999999999999999999999:1",
            "99999999999999999999998:2",
            Greater,
        ),
        // Revisions: last hyphen, missing is "" which equals "0".
        ("1.0-1", "1.0", Greater),
        ("1.0-0", "1.0", Equal),
        ("1.0-00", "1.0", Equal),
        ("1.0-1", "1.0-2", Less),
        ("1.0-10", "1.0-9", Greater),
        ("1.0-1-1", "1.0-1", Greater),
        ("1.0-1-1", "1.0-2", Greater),
        ("1-2-3", "1-2-4", Less),
        ("1.0-0~", "1.0", Less),
        ("1.0-a", "1.0-0", Greater),
        ("1.0-1ubuntu1", "1.0-1", Greater),
        ("1.0-1ubuntu1", "1.0-1ubuntu0.1", Greater),
        ("1:2.1-1", "1:2.1-1ubuntu0.22.04.1", Less),
        // Digit runs beyond u64.
        (
            "1.99999999999999999999999",
            "1.99999999999999999999998",
            Greater,
        ),
        ("1.000000000000000000000000001", "1.1", Equal),
        ("1.184467440737095516160", "1.18446744073709551615", Greater),
        // Odd inputs.
        ("", "", Equal),
        ("", "0", Equal),
        ("", "~", Greater),
        ("", "a", Less),
        (" 1.0 ", "1.0", Equal),
        ("\t1.0\n", "1.0", Equal),
        ("1.0\0junk", "1.0", Equal),
        ("a:1.0", "0:a:1.0", Equal),
        (":1.0", "0::1.0", Equal),
        ("1.0é", "1.0z", Greater),
        ("1.0é", "1.0+", Less),
        ("1.0_1", "1.0+1", Greater),
        ("1.0^1", "1.0", Greater),
        ("1.0-", "1.0", Equal),
        ("-1:1.0", "-1:1.0", Equal),
    ];

    #[test]
    fn table() {
        super::super::tests::check_table(compare, TABLE);
    }

    #[test]
    fn sorted_list_is_strictly_increasing() {
        // A chain in Debian's own documented order.
        let chain = [
            "~~", "~~a", "~", "", "1.0~rc1", "1.0", "1.0-1", "1.0a", "1.0+b1", "1.0.1", "1.1", "a",
            "1:0.1", "2:0~",
        ];
        for pair in chain.windows(2) {
            assert_eq!(
                compare(pair[0], pair[1]),
                Less,
                "{:?} < {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn parse_splits_first_colon_and_last_hyphen() {
        let v = Version::parse("1:2:3-4-5");
        assert_eq!(v.epoch, b"1");
        assert_eq!(v.upstream, b"2:3-4");
        assert_eq!(v.revision, b"5");
        let v = Version::parse("x:1-2");
        assert_eq!(v.epoch, b"");
        assert_eq!(v.upstream, b"x:1");
        assert_eq!(v.revision, b"2");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_is_antisymmetric(a in "\\PC{0,16}", b in "\\PC{0,16}") {
            proptest::prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            proptest::prop_assert_eq!(compare(&a, &a), Equal);
        }

        #[test]
        fn transitive(
            a in "[0-9:~+.a-zA-Z-]{0,10}",
            b in "[0-9:~+.a-zA-Z-]{0,10}",
            c in "[0-9:~+.a-zA-Z-]{0,10}",
        ) {
            super::super::tests::check_transitive(compare, &a, &b, &c)?;
        }
    }
}
