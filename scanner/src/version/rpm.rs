//! rpm version ordering: `rpmvercmp` applied to `[epoch:]version[-release]` strings, as
//! rpm's `rpm.vercmp` (rpm 4.18, `rpmverCmp`) does.
//!
//! - The epoch is the run of digits before a colon at the very start (`1:2.0`); missing,
//!   or empty (`:2.0`), it is 0. Epochs compare as numbers of any size.
//! - The release is what follows the LAST hyphen. A version without a release sorts before
//!   the same version with any release (`1.0 < 1.0-0`), as `rpm.vercmp` orders them.
//! - Versions and releases compare segment by segment: runs of ASCII digits and runs of
//!   ASCII letters, everything else separates them and is otherwise ignored (`1.0 == 1_0`).
//!   Digit runs compare as numbers (leading zeros ignored, any length) and beat letter
//!   runs; letter runs compare bytewise (`Z < a`). `~` sorts before everything, the end
//!   included (`1.0~rc1 < 1.0`); `^` sorts after the end but before any further segment
//!   (`1.0 < 1.0^git1 < 1.0.1`). When all segments tie, the side with segments left wins.
//!
//! Odd inputs: a NUL ends the string, as in C; non-ASCII bytes are separators; a leading
//! `1a:` is no epoch (the colon is then a separator inside the version); the empty string
//! (which `rpm.vercmp` refuses) compares as an empty version without a release.

use std::cmp::Ordering;

use super::{c_str, cmp_digits, span};

/// Orders EVR string `a` relative to `b` as `rpm.vercmp` does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let a = Evr::parse(a);
    let b = Evr::parse(b);
    // Epochs are digit runs, for which `rpmvercmp` is numeric comparison; rpm reads an
    // empty epoch as "0", which numeric comparison of "" gives too.
    cmp_digits(a.epoch, b.epoch)
        .then_with(|| rpmvercmp(a.version, b.version))
        .then_with(|| match (a.release, b.release) {
            (Some(ra), Some(rb)) => rpmvercmp(ra, rb),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        })
}

/// Compares two version (or release) strings without epoch or release splitting: rpm's
/// `rpmvercmp` (`rpmdev-vercmp` on plain versions).
pub fn compare_segments(a: &str, b: &str) -> Ordering {
    rpmvercmp(c_str(a), c_str(b))
}

/// An EVR split into its parts, borrowing from the input.
struct Evr<'a> {
    /// Digits; empty means 0.
    epoch: &'a [u8],
    version: &'a [u8],
    release: Option<&'a [u8]>,
}

impl<'a> Evr<'a> {
    fn parse(s: &'a str) -> Self {
        let s = c_str(s);
        let digits = span(s, |c| c.is_ascii_digit());
        let (epoch, rest) = match s.get(digits) {
            Some(b':') => (&s[..digits], &s[digits + 1..]),
            _ => (&b""[..], s),
        };
        let (version, release) = match rest.iter().rposition(|&c| c == b'-') {
            Some(hyphen) => (&rest[..hyphen], Some(&rest[hyphen + 1..])),
            None => (rest, None),
        };
        Evr {
            epoch,
            version,
            release,
        }
    }
}

/// rpm's segment-wise comparison of two version or release strings.
fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let is_separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    let (mut a, mut b) = (a, b);
    while !a.is_empty() || !b.is_empty() {
        a = &a[span(a, is_separator)..];
        b = &b[span(b, is_separator)..];

        // `~` sorts before everything, the end of the string included.
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            _ => {}
        }
        // `^` sorts after the end of the string but before anything else.
        match (a.first(), b.first()) {
            (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'^'), None) | (Some(_), Some(b'^')) => return Ordering::Greater,
            (None, Some(b'^')) | (Some(b'^'), Some(_)) => return Ordering::Less,
            _ => {}
        }
        let (Some(&first), Some(_)) = (a.first(), b.first()) else {
            break;
        };

        // One run of digits or of letters, of the kind `a` starts with.
        let numeric = first.is_ascii_digit();
        let run = |s: &[u8]| {
            if numeric {
                span(s, |c| c.is_ascii_digit())
            } else {
                span(s, |c| c.is_ascii_alphabetic())
            }
        };
        let (la, lb) = (run(a), run(b));
        // A digit run beats a letter run.
        if lb == 0 {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if numeric {
            cmp_digits(&a[..la], &b[..lb])
        } else {
            a[..la].cmp(&b[..lb])
        };
        if order != Ordering::Equal {
            return order;
        }
        a = &a[la..];
        b = &b[lb..];
    }
    // All segments tie: whichever has anything left is newer.
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, _) => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// `(a, b, a compared with b)` for `rpmvercmp` on plain versions; every row is also
    /// checked reversed. Includes the cases of rpm's own test suite for `rpmvercmp`.
    const SEGMENTS: &[(&str, &str, Ordering)] = &[
        ("1.0", "1.0", Equal),
        ("1.0", "2.0", Less),
        ("2.0.1", "2.0.1", Equal),
        ("2.0", "2.0.1", Less),
        ("2.0.1a", "2.0.1a", Equal),
        ("2.0.1a", "2.0.1", Greater),
        ("5.5p1", "5.5p1", Equal),
        ("5.5p1", "5.5p2", Less),
        ("5.5p10", "5.5p10", Equal),
        ("5.5p1", "5.5p10", Less),
        ("10xyz", "10.1xyz", Less),
        ("xyz10", "xyz10", Equal),
        ("xyz10", "xyz10.1", Less),
        ("xyz.4", "xyz.4", Equal),
        ("xyz.4", "8", Less),
        ("xyz.4", "2", Less),
        ("5.5p2", "5.6p1", Less),
        ("5.6p1", "6.5p1", Less),
        ("6.0.rc1", "6.0", Greater),
        ("10b2", "10a1", Greater),
        ("1.0aa", "1.0aa", Equal),
        ("1.0a", "1.0aa", Less),
        ("10.0001", "10.0001", Equal),
        ("10.0001", "10.1", Equal),
        ("10.0001", "10.0039", Less),
        ("4.999.9", "5.0", Less),
        ("20101121", "20101122", Less),
        ("2_0", "2_0", Equal),
        ("2.0", "2_0", Equal),
        ("a", "a", Equal),
        ("a+", "a+", Equal),
        ("a+", "a_", Equal),
        ("+a", "_a", Equal),
        ("+_", "_+", Equal),
        ("_+", "+", Equal),
        ("", "+", Equal),
        ("", "", Equal),
        ("1.0~rc1", "1.0~rc1", Equal),
        ("1.0~rc1", "1.0", Less),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~rc1~git123", "1.0~rc1", Less),
        ("1.0^", "1.0^", Equal),
        ("1.0^", "1.0", Greater),
        ("1.0^git1", "1.0", Greater),
        ("1.0^git1", "1.0^git2", Less),
        ("1.0^git1", "1.01", Less),
        ("1.0^20160101", "1.0.1", Less),
        ("1.0^20160101^git1", "1.0^20160101", Greater),
        ("1.0^20160102", "1.0^20160101^git1", Greater),
        ("1.0~rc1^git1", "1.0~rc1", Greater),
        ("1.0^git1~pre", "1.0^git1", Less),
        ("1.0^git1~pre", "1.0", Greater),
        ("1.0~rc1^git1", "1.0", Less),
        ("1.0^", "1.0^git1", Less),
        ("^", "~", Greater),
        ("^", "", Greater),
        ("^", "1", Less),
        // Digits beat letters, letters compare bytewise.
        ("1.a", "1.1", Less),
        ("a", "1", Less),
        ("B", "a", Less),
        ("1Z", "1a", Less),
        ("abc", "abcd", Less),
        // Beyond u64.
        (
            "1.123456789012345678901234567890",
            "1.123456789012345678901234567891",
            Less,
        ),
        ("0000000000000000000000000000001", "1", Equal),
        // Non-ASCII bytes separate segments like punctuation.
        ("1é0", "1.0", Equal),
    ];

    /// `(a, b, a compared with b)` for full EVR strings; every row is also checked reversed.
    const EVR: &[(&str, &str, Ordering)] = &[
        ("1:1.0", "2.0", Greater),
        ("0:1.0", "1.0", Equal),
        (":1.0", "1.0", Equal),
        ("00:1.0", "0:1.0", Equal),
        ("2:1.0", "10:1.0", Less),
        (
            "99999999999999999999999:1",
            "99999999999999999999998:2",
            Greater,
        ),
        ("1:1.0-1", "1:1.0-2", Less),
        ("1.0-1", "1.0-1", Equal),
        ("1.0-1.el9", "1.0-1.el9_2", Less),
        ("1.0-10.el9", "1.0-9.el9", Greater),
        ("3.0.7-24.el9", "1:3.0.7-24.el9", Less),
        ("1.0-1", "1.0", Greater),
        ("1.0-", "1.0", Greater),
        ("1.0-~", "1.0", Greater),
        ("1.0-", "1.0-0", Less),
        ("1.0-1-2", "1.0-1-1", Greater),
        ("1.0-1-2", "1.0.1-2", Equal),
        ("1.0~rc1-1", "1.0-1", Less),
        ("1.0^git1-1", "1.0-9", Greater),
        ("1a:1.0", "1a.1.0", Equal),
        ("1:2:3", "1:2.3", Equal),
        ("", "", Equal),
        ("", "0", Less),
        ("", "-1", Less),
        ("\0", "", Equal),
        ("1.0\0-1", "1.0", Equal),
    ];

    #[test]
    fn segments() {
        super::super::tests::check_table(compare_segments, SEGMENTS);
    }

    #[test]
    fn evr() {
        super::super::tests::check_table(compare, EVR);
    }

    #[test]
    fn plain_versions_compare_like_segments() {
        for &(a, b, want) in SEGMENTS {
            if !a.contains(['-', ':']) && !b.contains(['-', ':']) {
                assert_eq!(compare(a, b), want, "{a:?} vs {b:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_is_antisymmetric(a in "\\PC{0,16}", b in "\\PC{0,16}") {
            proptest::prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            proptest::prop_assert_eq!(compare(&a, &a), Equal);
        }

        #[test]
        fn transitive(
            a in "[0-9:~^+.a-zA-Z-]{0,10}",
            b in "[0-9:~^+.a-zA-Z-]{0,10}",
            c in "[0-9:~^+.a-zA-Z-]{0,10}",
        ) {
            super::super::tests::check_transitive(compare, &a, &b, &c)?;
        }
    }
}
