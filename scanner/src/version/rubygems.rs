//! RubyGems version ordering, as `Gem::Version#<=>` decides it.
//!
//! - Each `-` means `.pre.` (`1.0.0-rc1 == 1.0.0.pre.rc1`); surrounding whitespace is ignored
//!   and an empty version is `0`.
//! - The version is read as its runs of digits and of letters (`1.0.b1` → 1, 0, b, 1);
//!   other characters only separate them.
//! - Zeros are dropped from the end of the numbers before the first letter run, and from
//!   the end of the rest (`1.0 == 1`, `1.0.a == 1.a`).
//! - Runs compare one by one, missing ones as 0: numbers as numbers, letter runs by ASCII,
//!   and a letter run below any number, so a version with letters is a pre-release of the
//!   one without (`1.0.a < 1.0`, `1.0.b1 < 1.0.b2 < 1.0`).
//!
//! RubyGems rejects versions outside `\d+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?`;
//! those are still read the same way here, so the order is total. Numbers of any length
//! compare exactly.

use std::cmp::Ordering;

use super::{c_str, cmp_digits, span};

/// Orders RubyGems version `a` relative to `b`.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (canonical(c_str(a)), canonical(c_str(b)));
    let len = a.len().max(b.len());
    for i in 0..len {
        let zero = Segment::Number(b"0");
        let (x, y) = (a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero));
        let order = match (x, y) {
            (Segment::Number(x), Segment::Number(y)) => cmp_digits(x, y),
            (Segment::Letters(x), Segment::Letters(y)) => x.cmp(y),
            (Segment::Letters(_), Segment::Number(_)) => Ordering::Less,
            (Segment::Number(_), Segment::Letters(_)) => Ordering::Greater,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment<'a> {
    Number(&'a [u8]),
    /// Letters as written: RubyGems compares them case-sensitively.
    Letters(&'a [u8]),
}

impl Segment<'_> {
    fn is_zero(&self) -> bool {
        matches!(self, Segment::Number(d) if d.iter().all(|&c| c == b'0'))
    }
}

/// The runs of digits and letters, with the zeros RubyGems ignores dropped.
fn canonical(s: &[u8]) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    let mut rest = s.trim_ascii();
    while let Some(&c) = rest.first() {
        let len = if c.is_ascii_digit() {
            let n = span(rest, |c| c.is_ascii_digit());
            segments.push(Segment::Number(&rest[..n]));
            n
        } else if c.is_ascii_alphabetic() {
            let n = span(rest, |c| c.is_ascii_alphabetic());
            segments.push(Segment::Letters(&rest[..n]));
            n
        } else {
            if c == b'-' {
                segments.push(Segment::Letters(b"pre"));
            }
            1
        };
        rest = &rest[len..];
    }
    // Zeros at the end of the release numbers, and at the end of the whole.
    let first_letters = segments
        .iter()
        .position(|s| matches!(s, Segment::Letters(_)))
        .unwrap_or(segments.len());
    let (release, pre) = segments.split_at(first_letters);
    let release_len = release.len() - release.iter().rev().take_while(|s| s.is_zero()).count();
    let pre_len = pre.len() - pre.iter().rev().take_while(|s| s.is_zero()).count();
    let mut out = release[..release_len].to_vec();
    out.extend_from_slice(&pre[..pre_len]);
    out
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::{Equal, Greater, Less};

    use super::*;
    use crate::version::tests::{check_chain, check_table, check_transitive};

    #[test]
    fn gem_version_orders() {
        // The order RubyGems' documentation gives for pre-releases, then the rest.
        let chain = [
            "1.0.a",
            "1.0.a.1",
            "1.0.b1",
            "1.0.b2",
            "1.0.rc1",
            "1.0",
            "1.0.1",
            "1.1.a",
            "1.1",
            "2.0.0.rc1",
            "2.0",
        ];
        check_chain(compare, &chain);
        check_table(
            compare,
            &[
                ("1.0", "1", Equal),
                ("1.0.0", "1", Equal),
                ("1.0.a", "1.a", Equal),
                ("1.0.a.0", "1.0.a", Equal),
                ("1.0.0-rc1", "1.0.0.pre.rc1", Equal),
                ("1.0.0-rc1", "1.0.0", Less),
                ("1.0.0-rc.1", "1.0.0-rc.2", Less),
                ("1.0.0-rc-1", "1.0.0.pre.rc.pre.1", Equal),
                ("1.0.b10", "1.0.b9", Greater),
                ("1.9.3", "1.10.0", Less),
                ("0.0.0", "", Equal),
                (" 1.2 ", "1.2", Equal),
                // Letters compare case-sensitively, upper case first as in ASCII.
                ("1.0.B", "1.0.a", Less),
                ("1.0.a", "1.0.b", Less),
                ("1.0.alpha", "1.0.beta", Less),
                ("7.1.3.4", "7.1.3", Greater),
                (
                    "123456789012345678901234567890",
                    "123456789012345678901234567889",
                    Greater,
                ),
                ("1.0\0junk", "1.0", Equal),
            ],
        );
    }

    proptest::proptest! {
        #[test]
        fn transitive(
            a in "[0-9ab.-]{0,8}",
            b in "[0-9ab.-]{0,8}",
            c in "[0-9ab.-]{0,8}",
        ) {
            check_transitive(compare, &a, &b, &c)?;
        }
    }
}
