//! Semantic Versioning 2.0.0 precedence: npm, crates.io and Go modules (OSV's `SEMVER`
//! ranges), as node-semver, Cargo and `golang.org/x/mod/semver` order valid versions.
//!
//! A version is `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`:
//!
//! - the three numbers compare as numbers;
//! - a version with a pre-release sorts below the same version without one
//!   (`1.0.0-rc.1 < 1.0.0`);
//! - pre-release identifiers compare one by one: numeric ones as numbers, below
//!   alphanumeric ones, which compare by ASCII; a longer list wins when all before are
//!   equal (`1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta`);
//! - build metadata is ignored (`1.0.0+a == 1.0.0+b`), so Go's `+incompatible` makes no
//!   difference.
//!
//! Go's pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`) are pre-releases and order
//! by their timestamp, as the go command orders them.
//!
//! Inputs that are not strict SemVer still get a deterministic place, which agrees with the
//! strict order wherever both versions are valid (a property test holds this against the
//! `semver` crate): surrounding whitespace and a leading `v` or `=` (npm's loose form, Go's
//! prefix) are ignored; the release part may have any number of dot-separated numbers,
//! missing ones counting as 0 (`1.2 == 1.2.0`, NuGet's `1.2.3.4 > 1.2.3`); a release
//! component that is not a plain number compares by its leading digits, then by the rest
//! as bytes; numbers of any length compare exactly.

use std::cmp::Ordering;

use super::{c_str, cmp_digits, span};

/// Orders version `a` relative to `b` by SemVer precedence.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (Parts::of(c_str(a)), Parts::of(c_str(b)));
    cmp_release(a.release, b.release).then_with(|| cmp_prerelease(a.prerelease, b.prerelease))
}

/// A version split into its release numbers and its pre-release, build metadata dropped.
struct Parts<'a> {
    release: &'a [u8],
    prerelease: Option<&'a [u8]>,
}

impl<'a> Parts<'a> {
    fn of(s: &'a [u8]) -> Parts<'a> {
        let s = s.trim_ascii();
        let s = match s.first() {
            Some(b'v' | b'V' | b'=') => &s[1..],
            _ => s,
        };
        let s = s.split(|&c| c == b'+').next().unwrap_or(s);
        match s.iter().position(|&c| c == b'-') {
            Some(dash) => Parts {
                release: &s[..dash],
                prerelease: Some(&s[dash + 1..]),
            },
            None => Parts {
                release: s,
                prerelease: None,
            },
        }
    }
}

/// Release components, compared one by one, the missing ones as 0.
fn cmp_release(a: &[u8], b: &[u8]) -> Ordering {
    let mut a = a.split(|&c| c == b'.');
    let mut b = b.split(|&c| c == b'.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => {
                let (x, y) = (x.unwrap_or(b"0"), y.unwrap_or(b"0"));
                let (dx, dy) = (
                    span(x, |c| c.is_ascii_digit()),
                    span(y, |c| c.is_ascii_digit()),
                );
                let order = cmp_digits(&x[..dx], &y[..dy]).then_with(|| x[dx..].cmp(&y[dy..]));
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// No pre-release sorts above any; otherwise identifier by identifier.
fn cmp_prerelease(a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
    let (a, b) = match (a, b) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Greater,
        (Some(_), None) => return Ordering::Less,
        (Some(a), Some(b)) => (a, b),
    };
    let mut a = a.split(|&c| c == b'.');
    let mut b = b.split(|&c| c == b'.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let numeric = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
                let order = match (numeric(x), numeric(y)) {
                    (true, true) => cmp_digits(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::{Equal, Greater, Less};

    use super::*;
    use crate::version::tests::{check_chain, check_table, check_transitive};

    #[test]
    fn the_semver_specification_examples() {
        // SemVer 2.0.0, items 9 to 11: every step of its example chain, and the rest.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        check_chain(compare, &chain);
        check_table(
            compare,
            &[
                ("1.0.0+20130313144700", "1.0.0", Equal),
                ("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta", Equal),
                ("1.0.0-0.3.7", "1.0.0-x.7.z.92", Less),
                ("1.0.0-x-y-z.--", "1.0.0-x-y-z.-", Greater),
                ("1.9.0", "1.10.0", Less),
                ("1.10.0", "1.11.0", Less),
            ],
        );
    }

    #[test]
    fn npm_cargo_and_go_spellings() {
        check_table(
            compare,
            &[
                // npm's loose parse and Go's prefix.
                ("v1.2.3", "1.2.3", Equal),
                ("=1.2.3", "1.2.3", Equal),
                (" 1.2.3 ", "1.2.3", Equal),
                ("v1.2.3", "v1.2.4", Less),
                // Go: +incompatible is build metadata.
                ("v2.0.0+incompatible", "v2.0.0", Equal),
                ("v2.0.0+incompatible", "v2.0.1+incompatible", Less),
                // Go pseudo-versions order by time, below the release they precede.
                (
                    "v0.0.0-20191109021931-daa7c04131f5",
                    "v0.0.0-20200101000000-000000000000",
                    Less,
                ),
                ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4", Less),
                ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3", Greater),
                (
                    "v1.2.4-pre.0.20191109021931-daa7c04131f5",
                    "v1.2.4-pre",
                    Greater,
                ),
                // OSV's Go stdlib ranges start at "1.21.0-0".
                ("1.21.0-0", "1.21.0-rc.2", Less),
                ("1.21.0-rc.2", "1.21.0", Less),
                // Numbers of any size.
                (
                    "1.0.0-18446744073709551616",
                    "1.0.0-18446744073709551615",
                    Greater,
                ),
                ("99999999999999999999.0.0", "1.0.0", Greater),
            ],
        );
    }

    #[test]
    fn lenient_for_what_is_not_strict_semver() {
        check_table(
            compare,
            &[
                ("1.2", "1.2.0", Equal),
                ("1", "1.0.0", Equal),
                ("1.2.3.4", "1.2.3", Greater),
                ("1.2.3.0", "1.2.3", Equal),
                ("01.2.3", "1.2.3", Equal),
                ("1.2.3a", "1.2.3", Greater),
                ("", "0.0.0", Equal),
                ("", "0.0.1", Less),
                ("1.0.0-", "1.0.0", Less),
                ("1.0.0\0junk", "1.0.0", Equal),
            ],
        );
    }

    /// Valid SemVer versions, from parts that exercise every rule.
    fn valid() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let number = prop_oneof![Just("0".to_string()), "[1-9][0-9]{0,2}"];
        let identifier = prop_oneof![
            Just("0".to_string()),
            "[1-9][0-9]{0,2}",
            "[a-zA-Z-][0-9a-zA-Z-]{0,3}",
        ];
        (
            number.clone(),
            number.clone(),
            number,
            proptest::option::of(proptest::collection::vec(identifier, 1..4)),
            proptest::option::of("[0-9a-z]{1,4}"),
        )
            .prop_map(|(major, minor, patch, pre, build)| {
                let mut v = format!("{major}.{minor}.{patch}");
                if let Some(pre) = pre {
                    v.push('-');
                    v.push_str(&pre.join("."));
                }
                if let Some(build) = build {
                    v.push('+');
                    v.push_str(&build);
                }
                v
            })
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_semver_crate_on_valid_versions(a in valid(), b in valid()) {
            let (x, y) = (::semver::Version::parse(&a).expect("valid"), ::semver::Version::parse(&b).expect("valid"));
            // The crate's Ord also orders build metadata; precedence ignores it.
            let want = (x.major, x.minor, x.patch, &x.pre).cmp(&(y.major, y.minor, y.patch, &y.pre));
            proptest::prop_assert_eq!(compare(&a, &b), want, "{} vs {}", a, b);
        }

        #[test]
        fn transitive(a in "[v0-9.a-z+-]{0,8}", b in "[v0-9.a-z+-]{0,8}", c in "[v0-9.a-z+-]{0,8}") {
            check_transitive(compare, &a, &b, &c)?;
        }
    }
}
