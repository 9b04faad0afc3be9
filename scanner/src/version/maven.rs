//! Maven version ordering, as the POM reference's "Version Order Specification" defines it
//! (the order OSV's Maven advisories are written against).
//!
//! - The version is split into tokens at `.`, at `-` and at each change between digits and
//!   other characters, which counts as a `-`; each token keeps the separator before it
//!   (the first counts as `.`). An empty token is `0`. Letters are compared in lower case.
//! - Trailing "null" tokens (`0`, the empty qualifier, `final`, `ga`, `release`) are
//!   trimmed from the end, and again before each remaining `-` from the end to the start
//!   (`1.0.0 == 1`, `1.0.0-foo.0.0 == 1-foo`, `1-0-2 == 1-2`).
//! - The token lists compare in order, the shorter padded with nulls that take the other
//!   side's separator (`0` after `.`, the empty qualifier after `-`); a qualifier always
//!   meets the empty qualifier, whatever its separator.
//! - Two tokens with the same separator compare as numbers, or as qualifiers:
//!   `alpha < beta < milestone < rc = cr < snapshot < "" = final = ga = release < sp`, then
//!   any other qualifier, in alphabetical order. `a`, `b` and `m` directly followed by a
//!   digit mean `alpha`, `beta` and `milestone` (`1-a1 == 1-alpha-1`).
//! - Otherwise: `.qualifier` and `-qualifier` < `-number` < `.number`.
//!
//! Every string has a place: numbers of any length compare exactly, and any character that
//! is not a separator or a digit is part of a qualifier.
//!
//! Like Maven's own `ComparableVersion`, this order is not transitive on every input: a
//! number meets the padding as 0 but sorts above every qualifier, while some qualifiers
//! sort above the padding and some below, so `1 < 1.a < 1.0.alpha1 < 1` and
//! `1.0.alpha < 1 < 1-1 < 1.0.alpha` (Maven orders these the same way). Numbers with one
//! `-qualifier[N]` suffix, the common form of releases, are ordered consistently (a
//! property test holds this); callers that sort must use a sort that tolerates the rest
//! (see `osv::matching`).

use std::cmp::Ordering;

use super::{c_str, cmp_digits};

/// Orders Maven version `a` relative to `b`.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (tokens(c_str(a)), tokens(c_str(b)));
    let len = a.len().max(b.len());
    for i in 0..len {
        let order = match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => cmp_token(x, y),
            (Some(x), None) => x.cmp_null(),
            (None, Some(y)) => y.cmp_null().reverse(),
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sep {
    Dot,
    Dash,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    /// Digits, compared as an unbounded number.
    Number(Vec<u8>),
    /// Lower-cased, aliases resolved.
    Qualifier(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Token {
    sep: Sep,
    value: Value,
}

impl Token {
    /// How this token compares with the padding of a shorter version: after `.` a 0, after
    /// `-` the empty qualifier. A qualifier meets the empty qualifier after either
    /// separator (so `1.sp > 1` as `1-sp > 1`, as Maven itself orders them): the padding
    /// then has one place in the order, which keeps the order transitive.
    fn cmp_null(&self) -> Ordering {
        match (&self.value, self.sep) {
            (Value::Number(d), Sep::Dot) => cmp_digits(d, b"0"),
            (Value::Number(_), Sep::Dash) => Ordering::Greater,
            (Value::Qualifier(q), _) => cmp_qualifier(q, b""),
        }
    }

    fn is_null(&self) -> bool {
        match &self.value {
            Value::Number(d) => d.iter().all(|&c| c == b'0'),
            Value::Qualifier(q) => qualifier_rank(q) == Some(RELEASE),
        }
    }
}

/// The qualifiers with a fixed place; every other comes after them.
const KNOWN: &[(&[u8], u8)] = &[
    (b"alpha", 0),
    (b"beta", 1),
    (b"milestone", 2),
    (b"rc", 3),
    (b"cr", 3),
    (b"snapshot", 4),
    (b"", RELEASE),
    (b"final", RELEASE),
    (b"ga", RELEASE),
    (b"release", RELEASE),
    (b"sp", 6),
];
const RELEASE: u8 = 5;

fn qualifier_rank(q: &[u8]) -> Option<u8> {
    KNOWN.iter().find(|(k, _)| *k == q).map(|&(_, rank)| rank)
}

fn cmp_qualifier(a: &[u8], b: &[u8]) -> Ordering {
    match (qualifier_rank(a), qualifier_rank(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn cmp_token(a: &Token, b: &Token) -> Ordering {
    // .qualifier = -qualifier < -number < .number
    let rank = |t: &Token| match (&t.value, t.sep) {
        (Value::Qualifier(_), _) => 0,
        (Value::Number(_), Sep::Dash) => 1,
        (Value::Number(_), Sep::Dot) => 2,
    };
    match (&a.value, &b.value) {
        (Value::Number(x), Value::Number(y)) if a.sep == b.sep => cmp_digits(x, y),
        (Value::Qualifier(x), Value::Qualifier(y)) => cmp_qualifier(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// The trimmed token list of a version.
fn tokens(s: &[u8]) -> Vec<Token> {
    let s = s.trim_ascii();
    let mut out: Vec<Token> = Vec::new();
    let mut sep = Sep::Dot;
    let mut i = 0;
    loop {
        let start = i;
        let digits = s.get(i).is_some_and(u8::is_ascii_digit);
        while i < s.len() && s[i] != b'.' && s[i] != b'-' && s[i].is_ascii_digit() == digits {
            i += 1;
        }
        let text = &s[start..i];
        let value = if text.is_empty() {
            Value::Number(b"0".to_vec())
        } else if digits {
            Value::Number(text.to_vec())
        } else {
            let q = text.to_ascii_lowercase();
            // a1, b1, m1: alpha, beta, milestone when a number follows at once.
            let followed_by_digit = s.get(i).is_some_and(u8::is_ascii_digit);
            Value::Qualifier(match (q.as_slice(), followed_by_digit) {
                (b"a", true) => b"alpha".to_vec(),
                (b"b", true) => b"beta".to_vec(),
                (b"m", true) => b"milestone".to_vec(),
                _ => q,
            })
        };
        out.push(Token { sep, value });
        match s.get(i) {
            None => break,
            Some(b'.') => {
                sep = Sep::Dot;
                i += 1;
            }
            Some(b'-') => {
                sep = Sep::Dash;
                i += 1;
            }
            // A change between digits and the rest: a hyphen.
            Some(_) => sep = Sep::Dash,
        }
    }
    trim(out)
}

/// Drops the null tokens at the end, then before each `-` token, from the end to the start.
fn trim(tokens: Vec<Token>) -> Vec<Token> {
    let mut kept: Vec<Token> = Vec::with_capacity(tokens.len());
    // Walking backwards: a null is dropped while nothing but nulls follow it up to the end
    // or to a kept `-` token.
    let mut dropping = true;
    for token in tokens.into_iter().rev() {
        if dropping && token.is_null() {
            continue;
        }
        dropping = token.sep == Sep::Dash;
        kept.push(token);
    }
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::{Equal, Greater, Less};

    use super::*;
    use crate::version::tests::{check_chain, check_table, check_transitive};

    fn spelled(v: &str) -> String {
        tokens(v.as_bytes())
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let sep = match (i, t.sep) {
                    (0, _) => "",
                    (_, Sep::Dot) => ".",
                    (_, Sep::Dash) => "-",
                };
                let text = match &t.value {
                    Value::Number(d) | Value::Qualifier(d) => String::from_utf8_lossy(d),
                };
                format!("{sep}{text}")
            })
            .collect()
    }

    #[test]
    fn splitting_and_trimming_as_the_specification_shows() {
        for (version, want) in [
            ("1-1.foo-bar1baz-.1", "1-1.foo-bar-1-baz-0.1"),
            ("1.0.0", "1"),
            ("1.ga", "1"),
            ("1.final", "1"),
            ("1.0", "1"),
            ("1.", "1"),
            ("1-", "1"),
            ("1.0.0-foo.0.0", "1-foo"),
            ("1.0.0-0.0.0", "1"),
            ("1-0-2", "1-2"),
            ("1.0a1", "1-alpha-1"),
            ("1.0-SNAPSHOT", "1-snapshot"),
            ("2.0.RELEASE", "2"),
        ] {
            assert_eq!(spelled(version), want, "{version}");
        }
    }

    #[test]
    fn the_specification_orders() {
        check_table(
            compare,
            &[
                // Padding.
                ("1", "1.1", Less),
                ("1-snapshot", "1", Less),
                ("1", "1-sp", Less),
                ("1-foo2", "1-foo10", Less),
                ("1.foo", "1-foo", Equal),
                ("1-foo", "1-1", Less),
                ("1-1", "1.1", Less),
                ("1.ga", "1-ga", Equal),
                ("1-ga", "1-0", Equal),
                ("1-0", "1.0", Equal),
                ("1", "1.0", Equal),
                ("1.0", "1.0.0", Equal),
                ("1-sp", "1-ga", Greater),
                ("1-sp.1", "1-ga.1", Greater),
                ("1-sp-1", "1-ga-1", Less),
                ("1-ga-1", "1-1", Equal),
                ("1-a1", "1-alpha-1", Equal),
                // A qualifier after a dot meets the padding as one after a hyphen.
                ("1.sp", "1", Greater),
                ("1.alpha", "1", Less),
            ],
        );
    }

    #[test]
    fn qualifiers_in_their_order() {
        let chain = [
            "1.0-alpha1",
            "1.0-beta1",
            "1.0-m1",
            "1.0-rc1",
            "1.0-snapshot",
            "1.0",
            "1.0-sp1",
            "1.0-abc",
            "1.0-xyz",
            "1.0.1",
        ];
        check_chain(compare, &chain);
        check_table(
            compare,
            &[
                ("1.0-RC1", "1.0-cr1", Equal),
                ("1.0-Final", "1.0", Equal),
                ("1.0.RELEASE", "1.0", Equal),
                ("1.0-ALPHA-1", "1.0-a1", Equal),
                ("2.0.0.Final", "2.0.0", Equal),
                ("5.3.30", "5.3.9", Greater),
                ("2.17.1", "2.17.0-rc1", Greater),
                ("1.0-beta-2", "1.0-beta-10", Less),
                ("12345678901234567890.1", "12345678901234567890", Greater),
                ("1.0\0junk", "1.0", Equal),
                ("", "0", Equal),
            ],
        );
    }

    #[test]
    fn not_transitive_where_maven_is_not() {
        check_table(
            compare,
            &[
                ("1", "1.a", Less),
                ("1.a", "1.0.alpha1", Less),
                ("1.0.alpha1", "1", Less),
                ("1.0.alpha", "1", Less),
                ("1", "1-1", Less),
                ("1-1", "1.0.alpha", Less),
            ],
        );
    }

    /// The common form of releases: numbers, then at most one hyphenated qualifier.
    const RELEASE: &str = "[0-2](\\.[0-2]){0,3}(-(alpha|a|b|rc|snapshot|ga|final|sp|x)[0-2]?)?";

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4096))]
        #[test]
        fn transitive(a in RELEASE, b in RELEASE, c in RELEASE) {
            check_transitive(compare, &a, &b, &c)?;
        }
    }
}
