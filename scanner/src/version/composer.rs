//! Composer's version ordering (Packagist): versions normalised as Composer's version
//! parser does, then compared by PHP's `version_compare`.
//!
//! Normalising: a leading `v` goes, the release gets four numbers (`1.2` → `1.2.0.0`), and
//! the stability suffix is spelled one way (`b` → `beta`, `a` → `alpha`, `rc` → `RC`,
//! `p`/`pl` → `patch`): `v1.2-b3` is `1.2.0.0-beta3`. A version that does not start with a
//! number after the `v` (a branch such as `dev-main`) is compared as written.
//!
//! `version_compare` then puts a `.` for every `-`, `_` or `+` and between digits and
//! letters, and compares the parts in order: numbers as numbers; words by their place in
//! `(any other word) < dev < alpha = a < beta = b < RC = rc < (a number) < pl = p`, a word
//! taking the place of the first of these it starts with (so `patch` is `p`); when one
//! version runs out, a further number makes the other newer, and a further word is compared
//! with a number's place (`1.0.0.0-RC1 < 1.0.0.0 < 1.0.0.0-patch1`).
//!
//! Numbers of any length compare exactly, where PHP would overflow.

use std::cmp::Ordering;

use super::{c_str, cmp_digits, span};

/// Orders Composer version `a` relative to `b`.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (normalize(c_str(a)), normalize(c_str(b)));
    version_compare(&canonical(&a), &canonical(&b))
}

/// Composer's normal form of a version, as bytes.
fn normalize(s: &[u8]) -> Vec<u8> {
    let s = s.trim_ascii();
    let body = match s.first() {
        Some(b'v' | b'V') if s.get(1).is_some_and(u8::is_ascii_digit) => &s[1..],
        _ => s,
    };
    if !body.first().is_some_and(u8::is_ascii_digit) {
        return s.to_vec();
    }
    // Up to four dot-separated numbers.
    let mut numbers: Vec<&[u8]> = Vec::new();
    let mut rest = body;
    loop {
        let n = span(rest, |c| c.is_ascii_digit());
        numbers.push(&rest[..n]);
        rest = &rest[n..];
        if numbers.len() < 4
            && rest.first() == Some(&b'.')
            && rest.get(1).is_some_and(u8::is_ascii_digit)
        {
            rest = &rest[1..];
        } else {
            break;
        }
    }
    let mut out = numbers.join(&b'.');
    for _ in numbers.len()..4 {
        out.extend_from_slice(b".0");
    }
    // The stability suffix, after an optional separator.
    let suffix = rest
        .strip_prefix(b"-")
        .or_else(|| rest.strip_prefix(b"."))
        .or_else(|| rest.strip_prefix(b"_"))
        .unwrap_or(rest);
    if suffix.is_empty() {
        return out;
    }
    let word_len = span(suffix, |c| c.is_ascii_alphabetic());
    let word = suffix[..word_len].to_ascii_lowercase();
    let spelled: &[u8] = match word.as_slice() {
        b"stable" => b"",
        b"beta" | b"b" => b"beta",
        b"alpha" | b"a" => b"alpha",
        b"rc" => b"RC",
        b"patch" | b"pl" | b"p" => b"patch",
        _ => {
            // Not a stability Composer knows: kept as written, after a hyphen.
            out.push(b'-');
            out.extend_from_slice(suffix);
            return out;
        }
    };
    if !spelled.is_empty() {
        out.push(b'-');
        out.extend_from_slice(spelled);
    }
    out.extend_from_slice(&suffix[word_len..]);
    out
}

/// PHP's canonical form: `-`, `_` and `+` become `.`, and a `.` separates digits from the
/// rest. Returned as its parts.
fn canonical(s: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if matches!(c, b'.' | b'-' | b'_' | b'+') {
            parts.push(&s[start..i]);
            start = i + 1;
        } else if i > start && s[i - 1].is_ascii_digit() != c.is_ascii_digit() {
            parts.push(&s[start..i]);
            start = i;
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

/// A word's place among PHP's special forms; a number's is 5.
fn rank(word: &[u8]) -> i8 {
    const FORMS: &[(&[u8], i8)] = &[
        (b"dev", 1),
        (b"alpha", 2),
        (b"a", 2),
        (b"beta", 3),
        (b"b", 3),
        (b"RC", 4),
        (b"rc", 4),
        (b"#", 5),
        (b"pl", 6),
        (b"p", 6),
    ];
    FORMS
        .iter()
        .find(|(form, _)| word.starts_with(form))
        .map_or(0, |&(_, r)| r)
}

const NUMBER: i8 = 5;

fn is_number(part: &[u8]) -> bool {
    !part.is_empty() && part.iter().all(u8::is_ascii_digit)
}

fn version_compare(a: &[&[u8]], b: &[&[u8]]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let order = match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => match (is_number(x), is_number(y)) {
                (true, true) => cmp_digits(x, y),
                (true, false) => NUMBER.cmp(&rank(y)),
                (false, true) => rank(x).cmp(&NUMBER),
                (false, false) => rank(x).cmp(&rank(y)),
            },
            (Some(x), None) if is_number(x) => Ordering::Greater,
            (Some(x), None) => rank(x).cmp(&NUMBER),
            (None, Some(y)) if is_number(y) => Ordering::Less,
            (None, Some(y)) => NUMBER.cmp(&rank(y)),
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::{Equal, Greater, Less};

    use super::*;
    use crate::version::tests::{check_chain, check_table};

    #[test]
    fn composer_normal_forms() {
        for (version, want) in [
            ("1.2.3", "1.2.3.0"),
            ("v1.2.3", "1.2.3.0"),
            ("1.2", "1.2.0.0"),
            ("1", "1.0.0.0"),
            ("1.2.3.4", "1.2.3.4"),
            ("1.0.0-beta2", "1.0.0.0-beta2"),
            ("1.0.0b2", "1.0.0.0-beta2"),
            ("1.0-RC1", "1.0.0.0-RC1"),
            ("1.0.0-rc.1", "1.0.0.0-RC.1"),
            ("2.0.0-alpha", "2.0.0.0-alpha"),
            ("1.0.0-pl3", "1.0.0.0-patch3"),
            ("1.0.0-stable", "1.0.0.0"),
            ("dev-main", "dev-main"),
            ("v-weird", "v-weird"),
        ] {
            assert_eq!(
                String::from_utf8_lossy(&normalize(version.as_bytes())),
                want,
                "{version}"
            );
        }
    }

    #[test]
    fn php_version_compare_examples() {
        // The orders PHP's manual and tests give for version_compare, on versions Composer
        // leaves alone (four numbers).
        check_table(
            |a, b| version_compare(&canonical(a.as_bytes()), &canonical(b.as_bytes())),
            &[
                ("5.2", "5.2.0", Less),
                ("1.0rc1", "1.0", Less),
                ("1.0", "1.0pl1", Less),
                ("1.0-dev", "1.0a1", Less),
                ("1.0a1", "1.0b1", Less),
                ("1.0b1", "1.0RC1", Less),
                ("1.0RC1", "1.0", Less),
                ("1.0", "1.0.1", Less),
                ("1.0-foo", "1.0-dev", Less),
                ("1.0alpha", "1.0a", Equal),
                ("1.0patch1", "1.0pl1", Equal),
            ],
        );
    }

    #[test]
    fn packagist_orders() {
        let chain = [
            "1.0.0-dev",
            "1.0.0-alpha1",
            "1.0.0-beta1",
            "1.0.0-beta2",
            "1.0.0-RC1",
            "1.0.0",
            "1.0.0-p1",
            "1.0.1",
            "1.10.0",
            "2.0",
        ];
        check_chain(compare, &chain);
        check_table(
            compare,
            &[
                ("v6.4.1", "6.4.1", Equal),
                ("6.4", "6.4.0", Equal),
                ("6.4.1.0", "6.4.1", Equal),
                ("1.0.0-b2", "1.0.0-beta2", Equal),
                ("1.0.0-rc1", "1.0.0-RC1", Equal),
                ("1.0.0-beta10", "1.0.0-beta9", Greater),
                ("99999999999999999999.0", "1.0", Greater),
                ("1.0.0\0junk", "1.0.0", Equal),
            ],
        );
    }
}
