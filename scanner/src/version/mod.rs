//! Package version comparison exactly as each package manager defines it.
//!
//! Advisories say "fixed in X"; whether an installed package is affected depends on
//! comparing its version with X the way its own package manager would, quirks included.
//! Each scheme lives in its own module with a `compare(a, b)` function:
//!
//! - [`dpkg`]: Debian's `dpkg --compare-versions`,
//! - [`rpm`]: rpm's `rpm.vercmp` (EVR strings, `~` and `^`),
//! - [`apk`]: Alpine's apk-tools version ordering,
//! - [`semver`]: Semantic Versioning precedence (npm, crates.io, Go),
//! - [`pep440`]: Python's PEP 440 (PyPI),
//! - [`maven`]: Maven's version order specification,
//! - [`rubygems`]: RubyGems' `Gem::Version`,
//! - [`composer`]: Composer's normal form and PHP's `version_compare` (Packagist).
//!
//! Every comparison is total: it never panics or fails, whatever the strings hold (empty,
//! malformed, non-ASCII). Each module documents what it does with inputs its package
//! manager would reject. The functions are pure and do not allocate, because they run for
//! every package against every advisory that names it.

use std::cmp::Ordering;

use crate::inventory::PackageKind;

pub mod apk;
pub mod composer;
pub mod dpkg;
pub mod maven;
pub mod pep440;
pub mod rpm;
pub mod rubygems;
pub mod semver;

/// A version ordering: which package manager's rules decide between two versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian and Ubuntu (`[epoch:]upstream[-revision]`), see [`dpkg::compare`].
    Dpkg,
    /// Alpine (`1.2.3_rc1-r0`), see [`apk::compare`].
    Apk,
    /// Red Hat, Fedora, SUSE and friends (`[epoch:]version[-release]`), see [`rpm::compare`].
    Rpm,
    /// npm, crates.io and Go modules (`1.2.3-rc.1+build`), see [`semver::compare`].
    Semver,
    /// PyPI (`1!2.0rc1.post2.dev3+local`), see [`pep440::compare`].
    Pep440,
    /// Maven (`2.17.0-rc1`, `5.3.30.RELEASE`), see [`maven::compare`].
    Maven,
    /// RubyGems (`1.0.0.rc1`), see [`rubygems::compare`].
    RubyGems,
    /// Packagist (`v6.4.1`, `1.0.0-RC1`), see [`composer::compare`].
    Composer,
}

impl Scheme {
    /// Orders version `a` relative to version `b` under this scheme's rules.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Apk => apk::compare(a, b),
            Scheme::Rpm => rpm::compare(a, b),
            Scheme::Semver => semver::compare(a, b),
            Scheme::Pep440 => pep440::compare(a, b),
            Scheme::Maven => maven::compare(a, b),
            Scheme::RubyGems => rubygems::compare(a, b),
            Scheme::Composer => composer::compare(a, b),
        }
    }
}

impl From<PackageKind> for Scheme {
    fn from(kind: PackageKind) -> Self {
        match kind {
            PackageKind::Dpkg => Scheme::Dpkg,
            PackageKind::Apk => Scheme::Apk,
            PackageKind::Rpm => Scheme::Rpm,
        }
    }
}

/// The bytes of `s` up to its first NUL: the package managers take C strings, so a NUL
/// ends the version for them, and the same must hold here.
fn c_str(s: &str) -> &[u8] {
    let bytes = s.as_bytes();
    match bytes.iter().position(|&b| b == 0) {
        Some(nul) => &bytes[..nul],
        None => bytes,
    }
}

/// Compares two runs of ASCII digits as unbounded non-negative integers: leading zeros
/// are ignored, then the longer number is the larger, then the digits decide. Never
/// overflows, whatever the length.
fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_zeros(a);
    let b = strip_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

/// The length of the run at the start of `s` whose bytes satisfy `pred`.
fn span(s: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    s.iter().position(|&c| !pred(c)).unwrap_or(s.len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks every `(a, b, want)` row both ways round, reporting all mismatches at once.
    pub(crate) fn check_table(
        compare: fn(&str, &str) -> Ordering,
        table: &[(&str, &str, Ordering)],
    ) {
        let mut wrong = Vec::new();
        for &(a, b, want) in table {
            for (x, y, want) in [(a, b, want), (b, a, want.reverse())] {
                let got = compare(x, y);
                if got != want {
                    wrong.push(format!("{x:?} vs {y:?}: got {got:?}, want {want:?}"));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} rows wrong:\n{}",
            wrong.len(),
            table.len(),
            wrong.join("\n")
        );
    }

    /// Checks that each version of `chain` sorts below the next, both ways round.
    pub(crate) fn check_chain(compare: fn(&str, &str) -> Ordering, chain: &[&str]) {
        let rows: Vec<(&str, &str, Ordering)> = chain
            .windows(2)
            .map(|pair| (pair[0], pair[1], Ordering::Less))
            .collect();
        check_table(compare, &rows);
    }

    /// Checks the three orderings among `a`, `b` and `c` for consistency in every
    /// arrangement: `x <= y <= z` implies `x <= z`, with equality carried through.
    pub(crate) fn check_transitive(
        compare: fn(&str, &str) -> Ordering,
        a: &str,
        b: &str,
        c: &str,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let all = [a, b, c];
        for (x, y, z) in [
            (0, 1, 2),
            (0, 2, 1),
            (1, 0, 2),
            (1, 2, 0),
            (2, 0, 1),
            (2, 1, 0),
        ] {
            let (x, y, z) = (all[x], all[y], all[z]);
            let xy = compare(x, y);
            let yz = compare(y, z);
            if xy != Ordering::Greater && yz != Ordering::Greater {
                let want = if xy == Ordering::Equal { yz } else { xy };
                proptest::prop_assert_eq!(compare(x, z), want, "{:?} {:?} {:?}", x, y, z);
            }
        }
        Ok(())
    }

    const ALL: [Scheme; 8] = [
        Scheme::Dpkg,
        Scheme::Apk,
        Scheme::Rpm,
        Scheme::Semver,
        Scheme::Pep440,
        Scheme::Maven,
        Scheme::RubyGems,
        Scheme::Composer,
    ];

    proptest::proptest! {
        /// Whatever the strings hold, every scheme answers, and consistently both ways round.
        #[test]
        fn every_scheme_is_total_on_any_input(a in ".{0,12}", b in ".{0,12}") {
            for scheme in ALL {
                proptest::prop_assert_eq!(scheme.compare(&a, &b), scheme.compare(&b, &a).reverse(), "{:?}", scheme);
                proptest::prop_assert_eq!(scheme.compare(&a, &a), Ordering::Equal, "{:?}", scheme);
            }
        }
    }

    #[test]
    fn scheme_dispatches_to_its_module() {
        // The same pairs order differently under each scheme's rules.
        assert_eq!(Scheme::Dpkg.compare("1.0_rc1", "1.0"), Ordering::Greater);
        assert_eq!(Scheme::Rpm.compare("1.0_rc1", "1.0"), Ordering::Greater);
        assert_eq!(Scheme::Apk.compare("1.0_rc1", "1.0"), Ordering::Less);
        assert_eq!(Scheme::Dpkg.compare("1.01", "1.1"), Ordering::Equal);
        assert_eq!(Scheme::Rpm.compare("1.01", "1.1"), Ordering::Equal);
        assert_eq!(Scheme::Apk.compare("1.01", "1.1"), Ordering::Less);
        assert_eq!(Scheme::Dpkg.compare("1.0-1", "1.0-0"), Ordering::Greater);
        assert_eq!(Scheme::Rpm.compare("1.0^", "1.0"), Ordering::Greater);
        // A pre-release: below the release under SemVer, PEP 440, Maven and RubyGems.
        assert_eq!(Scheme::Semver.compare("1.0.0-rc1", "1.0.0"), Ordering::Less);
        assert_eq!(Scheme::Pep440.compare("1.0rc1", "1.0"), Ordering::Less);
        assert_eq!(Scheme::Maven.compare("1.0-rc1", "1.0"), Ordering::Less);
        assert_eq!(Scheme::RubyGems.compare("1.0.rc1", "1.0"), Ordering::Less);
        assert_eq!(Scheme::Composer.compare("1.0-RC1", "1.0"), Ordering::Less);
        // Where they part: a fourth number, a post-release, a service pack.
        assert_eq!(
            Scheme::Semver.compare("1.0.0.1", "1.0.0"),
            Ordering::Greater
        );
        assert_eq!(
            Scheme::Pep440.compare("1.0.post1", "1.0"),
            Ordering::Greater
        );
        assert_eq!(Scheme::Maven.compare("1.0-sp1", "1.0"), Ordering::Greater);
        assert_eq!(Scheme::Semver.compare("1.0.0-sp1", "1.0.0"), Ordering::Less);
    }

    #[test]
    fn scheme_from_package_kind() {
        assert_eq!(Scheme::from(PackageKind::Dpkg), Scheme::Dpkg);
        assert_eq!(Scheme::from(PackageKind::Apk), Scheme::Apk);
        assert_eq!(Scheme::from(PackageKind::Rpm), Scheme::Rpm);
    }

    #[test]
    fn digits_compare_without_overflow() {
        assert_eq!(cmp_digits(b"007", b"7"), Ordering::Equal);
        assert_eq!(cmp_digits(b"", b"0"), Ordering::Equal);
        assert_eq!(cmp_digits(b"10", b"9"), Ordering::Greater);
        assert_eq!(
            cmp_digits(
                b"123456789012345678901234567890",
                b"123456789012345678901234567891"
            ),
            Ordering::Less
        );
        assert_eq!(
            cmp_digits(
                b"00000000000000000000000000000018446744073709551616",
                b"18446744073709551615"
            ),
            Ordering::Greater
        );
    }

    #[test]
    fn c_str_stops_at_nul() {
        assert_eq!(c_str("1.0\0junk"), b"1.0");
        assert_eq!(c_str("\0"), b"");
        assert_eq!(c_str("1.0"), b"1.0");
    }
}
