//! Alpine version ordering, as apk-tools (`apk version -t`) decides it.
//!
//! An Alpine version reads `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`, e.g.
//! `1.2.3`, `1.2a`, `1.2.3_rc1`, `1.2.3_p2-r1`, `0.0_git20240101~abc123-r0`. The two versions
//! are cut into tokens and compared token by token:
//!
//! - the first number, `_suffix` numbers and the `-rN` revision compare as numbers;
//! - later `.digits` components compare as numbers too, except that when either starts
//!   with `0` both compare as strings (`1.01 < 1.1`, `1.010 > 1.01`), as in Gentoo;
//! - a letter compares by its byte (`1.2a < 1.2b`);
//! - suffixes order `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p`;
//! - a commit hash compares as a string.
//!
//! When one version runs out of tokens or has a different kind of token at the same place,
//! the kind decides: a pre-release suffix (`_alpha` .. `_rc`) is older than anything,
//! otherwise the sequence is `.digits` > letter > `_suffix` > suffix number > `~hash` >
//! `-rN` > end of the version > invalid rest. So `1.2.1 > 1.2a > 1.2_p1 > 1.2-r1 > 1.2 >
//! 1.2_rc1`.
//!
//! Malformed versions are ordered the way apk orders them: tokens up to the first
//! malformed spot count, the malformed rest sorts below the end of a version, and two
//! versions that turn malformed at the same spot after equal tokens are equal (`1.0_foo`
//! == `1.0_bar` < `1.0`; `` == `abc` < `0`). A NUL ends the string; upper-case letters
//! and non-ASCII bytes are malformed. This follows apk-tools 3; apk-tools 2 differs only
//! on malformed versions (it has no `~hash`, and it accepts a bare `_` and `-r` without a
//! number). Numbers of any length compare exactly, where apk's 64-bit arithmetic would
//! wrap above 18446744073709551615.

use std::cmp::Ordering;

use super::{c_str, cmp_digits, span};

/// Orders Alpine version `a` relative to `b` as apk-tools does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let mut ta = Tokens::new(c_str(a));
    let mut tb = Tokens::new(c_str(b));
    let (mut x, mut y) = (ta.first(), tb.first());
    while x.kind == y.kind && x.kind < Kind::End {
        let order = x.cmp_same_kind(&y);
        if order != Ordering::Equal {
            return order;
        }
        x = ta.next(x.kind);
        y = tb.next(y.kind);
    }
    if x.kind == y.kind {
        return Ordering::Equal;
    }
    // Equal so far and then different kinds of token: a pre-release suffix is older
    // than anything, otherwise the kind that comes later in a version is older.
    if x.is_pre_release() {
        return Ordering::Less;
    }
    if y.is_pre_release() {
        return Ordering::Greater;
    }
    y.kind.cmp(&x.kind)
}

/// Token kinds, in the order they may follow one another in a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigits,
    Digits,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
    End,
    Invalid,
}

/// The rank of `_none` among suffixes: lower ranks are pre-releases.
const SUFFIX_NONE: u8 = 5;

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Kind,
    /// Digits, the letter, the suffix name or the hash.
    text: &'a [u8],
    /// For suffixes: the rank in `SUFFIXES` (1-based, `SUFFIX_NONE` in the middle).
    suffix: u8,
}

impl<'a> Token<'a> {
    fn new(kind: Kind, text: &'a [u8]) -> Self {
        Token {
            kind,
            text,
            suffix: 0,
        }
    }

    fn is_pre_release(&self) -> bool {
        self.kind == Kind::Suffix && self.suffix < SUFFIX_NONE
    }

    /// Compares two tokens of the same kind.
    fn cmp_same_kind(&self, other: &Self) -> Ordering {
        match self.kind {
            // A leading zero in either makes it a string comparison (Gentoo's rule for
            // fractional components).
            Kind::Digits
                if self.text.first() == Some(&b'0') || other.text.first() == Some(&b'0') =>
            {
                self.text.cmp(other.text)
            }
            Kind::InitialDigits | Kind::Digits | Kind::SuffixNumber | Kind::Revision => {
                cmp_digits(self.text, other.text)
            }
            Kind::Suffix => self.suffix.cmp(&other.suffix),
            Kind::Letter | Kind::CommitHash | Kind::End | Kind::Invalid => {
                self.text.cmp(other.text)
            }
        }
    }
}

/// Suffix names in ascending order; no suffix sits between `rc` and `cvs`.
const SUFFIXES: [&[u8]; 9] = [
    b"alpha", b"beta", b"pre", b"rc", b"cvs", b"svn", b"git", b"hg", b"p",
];

/// The rank of a suffix name, `None` for a name apk does not know (the empty one too).
fn suffix_rank(name: &[u8]) -> Option<u8> {
    let index = SUFFIXES.iter().position(|s| *s == name)?;
    let rank = u8::try_from(index).ok()? + 1;
    // Ranks 1..=4 are pre-releases; the post-release ones come after `_none`.
    Some(if rank < SUFFIX_NONE { rank } else { rank + 1 })
}

/// A cursor over the tokens of one version.
struct Tokens<'a> {
    rest: &'a [u8],
}

impl<'a> Tokens<'a> {
    fn new(version: &'a [u8]) -> Self {
        Tokens { rest: version }
    }

    fn digits(&mut self) -> &'a [u8] {
        let n = span(self.rest, |c| c.is_ascii_digit());
        let (digits, rest) = self.rest.split_at(n);
        self.rest = rest;
        digits
    }

    fn first(&mut self) -> Token<'a> {
        let digits = self.digits();
        if digits.is_empty() {
            return Token::new(Kind::Invalid, b"");
        }
        Token::new(Kind::InitialDigits, digits)
    }

    /// The token after one of kind `prev`, checking that it may follow it.
    fn next(&mut self, prev: Kind) -> Token<'a> {
        let invalid = Token::new(Kind::Invalid, b"");
        let Some((&c, after)) = self.rest.split_first() else {
            return Token::new(Kind::End, b"");
        };
        match c {
            b'a'..=b'z' if prev <= Kind::Digits => {
                let letter = &self.rest[..1];
                self.rest = after;
                Token::new(Kind::Letter, letter)
            }
            b'.' | b'0'..=b'9' => {
                let kind = match prev {
                    Kind::InitialDigits | Kind::Digits => Kind::Digits,
                    // A number directly after a suffix; `_rc.1` is malformed.
                    Kind::Suffix if c != b'.' => Kind::SuffixNumber,
                    _ => return invalid,
                };
                if c == b'.' {
                    self.rest = after;
                }
                let digits = self.digits();
                if digits.is_empty() {
                    return invalid;
                }
                Token::new(kind, digits)
            }
            b'_' if prev <= Kind::SuffixNumber => {
                let n = span(after, |c| c.is_ascii_lowercase());
                let (name, rest) = after.split_at(n);
                self.rest = rest;
                match suffix_rank(name) {
                    Some(suffix) => Token {
                        kind: Kind::Suffix,
                        text: name,
                        suffix,
                    },
                    None => invalid,
                }
            }
            b'~' if prev < Kind::CommitHash => {
                let n = span(after, |c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
                let (hash, rest) = after.split_at(n);
                self.rest = rest;
                if hash.is_empty() {
                    return invalid;
                }
                Token::new(Kind::CommitHash, hash)
            }
            b'-' if prev < Kind::Revision => match after.split_first() {
                Some((b'r', rest)) => {
                    self.rest = rest;
                    let digits = self.digits();
                    if digits.is_empty() {
                        return invalid;
                    }
                    Token::new(Kind::Revision, digits)
                }
                _ => invalid,
            },
            _ => invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// `(a, b, a compared with b)`; every row is also checked reversed.
    const TABLE: &[(&str, &str, Ordering)] = &[
        // Numbers.
        ("1", "1", Equal),
        ("1", "2", Less),
        ("2", "10", Less),
        ("1.2", "1.10", Less),
        ("1.9.9", "1.10", Less),
        ("1.0", "1.0.0", Less),
        ("1.2.3", "1.2.3.0", Less),
        ("001", "1", Equal),
        ("010.1", "9.1", Greater),
        ("2024.01.05", "2024.1.5", Less),
        ("20240105", "3.20", Greater),
        // Leading zeros after the first number: string comparison.
        ("1.01", "1.1", Less),
        ("1.01", "1.001", Greater),
        ("1.010", "1.01", Greater),
        ("1.0", "1.00", Less),
        ("1.00", "1.1", Less),
        ("1.09", "1.1", Less),
        ("1.09", "1.10", Less),
        ("1.0.5", "1.00.5", Less),
        ("1.02.3", "1.02.10", Less),
        ("1.2.03", "1.2.3", Less),
        // Letters.
        ("1.2a", "1.2", Greater),
        ("1.2a", "1.2b", Less),
        ("1.2z", "1.3", Less),
        ("1.2a", "1.2.0", Less),
        ("1.2a", "1.2_p1", Greater),
        ("1.2a-r1", "1.2a", Greater),
        ("1.2a_rc1", "1.2a", Less),
        ("1.2a_rc1", "1.2", Greater),
        ("1a", "1", Greater),
        // Suffixes.
        ("1.0_alpha", "1.0_beta", Less),
        ("1.0_beta", "1.0_pre", Less),
        ("1.0_pre", "1.0_rc", Less),
        ("1.0_rc", "1.0", Less),
        ("1.0", "1.0_cvs", Less),
        ("1.0_cvs", "1.0_svn", Less),
        ("1.0_svn", "1.0_git", Less),
        ("1.0_git", "1.0_hg", Less),
        ("1.0_hg", "1.0_p", Less),
        ("1.0_p", "1.0.1", Less),
        ("1.0_p", "1.0a", Less),
        ("1.0_rc1", "1.0_rc2", Less),
        ("1.0_rc2", "1.0_rc10", Less),
        ("1.0_rc01", "1.0_rc1", Equal),
        ("1.0_rc", "1.0_rc0", Less),
        ("1.0_rc1", "1.0_rc", Greater),
        ("1.0_p1", "1.0_p", Greater),
        ("1.0_alpha10", "1.0_beta1", Less),
        ("1.0_rc1", "0.9", Greater),
        ("1.0_p9", "1.0_p10", Less),
        ("1.0_alpha_pre1", "1.0_alpha", Less),
        ("1.0_alpha_p1", "1.0_alpha", Greater),
        ("1.0_alpha_p1", "1.0_beta", Less),
        ("1.0_rc1_p2", "1.0_rc1_p1", Greater),
        ("1.0_git20240101", "1.0_git20231231", Greater),
        ("0_git20240101", "0.1", Less),
        ("1.0_pre20240101-r0", "1.0_pre20231231-r9", Greater),
        // Revisions.
        ("1.0-r0", "1.0", Greater),
        ("1.0-r1", "1.0", Greater),
        ("1.0-r1", "1.0-r2", Less),
        ("1.0-r9", "1.0-r10", Less),
        ("1.0-r01", "1.0-r1", Equal),
        ("1.0-r1", "1.0.1", Less),
        ("1.0-r1", "1.0_p1", Less),
        ("1.0-r1", "1.0a", Less),
        ("1.0_rc1-r5", "1.0-r0", Less),
        ("1.0_rc1-r5", "1.0_rc1-r4", Greater),
        ("1.2.3_p2-r1", "1.2.3_p2-r0", Greater),
        ("3.0.11-r0", "3.0.8-r3", Greater),
        // Commit hashes.
        ("1.0~abc", "1.0", Greater),
        ("1.0~abc", "1.0~abd", Less),
        ("1.0~abc", "1.0~ab", Greater),
        ("1.0~abc-r1", "1.0~abc", Greater),
        ("1.0~abc", "1.0-r1", Greater),
        ("1.0~abc", "1.0_p1", Less),
        ("1.0_git1~0f", "1.0_git1~10", Less),
        // Numbers beyond u64.
        (
            "1.99999999999999999999999",
            "1.99999999999999999999998",
            Greater,
        ),
        ("18446744073709551616", "18446744073709551615", Greater),
        ("1-r18446744073709551616", "1-r1", Greater),
        // Malformed: equal up to the malformed spot, which sorts below the end.
        ("1.0_foo", "1.0_bar", Equal),
        ("1.0_foo", "1.0", Less),
        ("1.0_foo", "1.0_rc1", Greater),
        ("1.0_foo", "1.0-r1", Less),
        ("1.0_foo", "0.9", Greater),
        ("1.0bc", "1.0", Greater),
        ("1.0bc", "1.0b", Less),
        ("1.0b", "1.0bc", Greater),
        ("1.0.", "1.0", Less),
        ("1.0-", "1.0", Less),
        ("1.0-r", "1.0", Less),
        ("1.0-1", "1.0", Less),
        ("1.0_", "1.0", Less),
        ("1.0_rc.1", "1.0_rc", Less),
        ("1.0_rc.1", "1.0_alpha", Greater),
        ("1.0~", "1.0", Less),
        ("1.0~xyz", "1.0~", Equal),
        ("1.0-r1-r2", "1.0-r1", Less),
        ("1.0A", "1.0", Less),
        ("1.0é", "1.0", Less),
        ("1.0 ", "1.0", Less),
        ("1.0\0junk", "1.0", Equal),
        ("", "", Equal),
        ("", "abc", Equal),
        ("", "0", Less),
        ("abc", "0", Less),
        ("v1.0", "0.0", Less),
        // Real Alpine versions.
        ("3.1.4-r5", "3.1.4-r6", Less),
        ("1.36.1-r15", "1.36.1-r29", Less),
        ("2.38-r11", "2.40-r0", Less),
        ("8.5.0-r0", "8.11.1-r0", Less),
        ("1.2.4_git20230717-r4", "1.2.4-r0", Greater),
        ("1.2.4_git20230717-r4", "1.2.5-r0", Less),
        ("3.3.2-r0", "3.3.2_rc1-r0", Greater),
        ("9.4_p1-r1", "9.4-r9", Greater),
        ("9.4_p1-r1", "9.5-r0", Less),
    ];

    #[test]
    fn table() {
        super::super::tests::check_table(compare, TABLE);
    }

    #[test]
    fn sorted_list_is_strictly_increasing() {
        let chain = [
            "",
            "0",
            "0.1_alpha",
            "0.1_alpha1",
            "0.1_beta",
            "0.1_pre",
            "0.1_rc1",
            "0.1_rc2",
            "0.1",
            "0.1-r1",
            "0.1~1a",
            "0.1_cvs",
            "0.1_svn",
            "0.1_git",
            "0.1_hg",
            "0.1_p",
            "0.1_p1",
            "0.1a",
            "0.1b",
            "0.1.0",
            "0.1.01",
            "0.1.1",
            "0.2",
            "0.10",
            "1",
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

    proptest::proptest! {
        #[test]
        fn never_panics_and_is_antisymmetric(a in "\\PC{0,16}", b in "\\PC{0,16}") {
            proptest::prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            proptest::prop_assert_eq!(compare(&a, &a), Equal);
        }

        #[test]
        fn transitive(
            a in "[0-9]{1,2}(\\.0?[0-9]{1,2}){0,2}[a-c]?(_(alpha|rc|p|git|x)[0-9]?){0,2}(~[0-9a-f]{0,2})?(-r[0-9]?)?",
            b in "[0-9]{1,2}(\\.0?[0-9]{1,2}){0,2}[a-c]?(_(alpha|rc|p|git|x)[0-9]?){0,2}(~[0-9a-f]{0,2})?(-r[0-9]?)?",
            c in "[0-9]{1,2}(\\.0?[0-9]{1,2}){0,2}[a-c]?(_(alpha|rc|p|git|x)[0-9]?){0,2}(~[0-9a-f]{0,2})?(-r[0-9]?)?",
        ) {
            super::super::tests::check_transitive(compare, &a, &b, &c)?;
        }

        #[test]
        fn transitive_on_noise(
            a in "[0-9._~ra-c-]{0,8}",
            b in "[0-9._~ra-c-]{0,8}",
            c in "[0-9._~ra-c-]{0,8}",
        ) {
            super::super::tests::check_transitive(compare, &a, &b, &c)?;
        }
    }
}
