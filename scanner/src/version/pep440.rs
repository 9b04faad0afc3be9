//! Python version ordering (PyPI), as PEP 440 defines it and pip applies it.
//!
//! A version is `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`: the epoch first, then the
//! release numbers (missing ones are 0, so `1.0 == 1.0.0`), then `.devN < aN < bN < rcN <`
//! the release `< .postN`, and a local label above the same public version. The spellings
//! PEP 440 normalises compare as their normal form (`1.0c1 == 1.0rc1`, `1.0-1 ==
//! 1.0.post1`, `v1.0 == 1.0`, upper case).
//!
//! The parsing and the order are the `pep440_rs` crate's. A string PEP 440 rejects
//! (`foo`, `1.0.`, setuptools' legacy versions, which pip no longer installs) sorts below
//! every valid version, and such strings compare among themselves as bytes, so that the
//! order stays total.

use std::cmp::Ordering;
use std::str::FromStr;

use pep440_rs::Version;

use super::c_str;

/// Orders Python version `a` relative to `b` by PEP 440.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (c_str(a), c_str(b));
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

fn parse(s: &[u8]) -> Option<Version> {
    Version::from_str(std::str::from_utf8(s).ok()?.trim()).ok()
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::{Equal, Greater, Less};

    use super::*;
    use crate::version::tests::{check_chain, check_table, check_transitive};

    #[test]
    fn the_orders_pep_440_gives() {
        // PEP 440's own summary of the order within one release, then across releases.
        let chain = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        check_chain(compare, &chain);
        check_table(
            compare,
            &[
                // Epochs decide first.
                ("1!1.0", "2.0", Greater),
                ("0!2.0", "2.0", Equal),
                // Padding and leading zeros.
                ("1.0", "1.0.0", Equal),
                ("1.01", "1.1", Equal),
                ("1.10", "1.9", Greater),
                // Normalised spellings.
                ("1.0c1", "1.0rc1", Equal),
                ("1.0-1", "1.0.post1", Equal),
                ("1.0.rev1", "1.0.post1", Equal),
                ("1.0alpha1", "1.0a1", Equal),
                ("1.0-BETA.2", "1.0b2", Equal),
                ("v1.0", "1.0", Equal),
                ("  1.0  ", "1.0", Equal),
                ("1.0a", "1.0a0", Equal),
                ("1.0.dev", "1.0.dev0", Equal),
            ],
        );
    }

    #[test]
    fn what_pep_440_rejects_sorts_below_every_version() {
        check_table(
            compare,
            &[
                ("foo", "0", Less),
                ("foo", "0.dev0", Less),
                ("1.0.", "1.0", Less),
                ("bar", "foo", Less),
                ("foo", "foo", Equal),
                ("", "0", Less),
                ("1.0\0junk", "1.0", Equal),
            ],
        );
    }

    proptest::proptest! {
        #[test]
        fn transitive(
            a in "[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(a|b|rc|\\.post|\\.dev|x)?[0-9]?",
            b in "[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(a|b|rc|\\.post|\\.dev|x)?[0-9]?",
            c in "[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(a|b|rc|\\.post|\\.dev|x)?[0-9]?",
        ) {
            check_transitive(compare, &a, &b, &c)?;
        }
    }
}
