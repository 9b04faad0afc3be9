//! How much of an image a scan judged. Zero findings mean a clean image only when the
//! coverage is [`Coverage::Full`]; every [`Gap`] says what was not judged and why.
//!
//! The names and JSON spelling match the `coverage` and `gaps` of an ImageScanReport's
//! status, which the operator fills from these (the scanner does not depend on the CRDs).

use serde::{Deserialize, Serialize};

use crate::inventory::Unreadable;

/// How much of an image a scan judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Coverage {
    /// Every package the scanner found was matched against vulnerability data.
    Full,
    /// Some of the image was judged, some not (see the gaps).
    Partial,
    /// Nothing was judged: zero findings say nothing about the image.
    None,
}

impl Coverage {
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Full => "Full",
            Coverage::Partial => "Partial",
            Coverage::None => "None",
        }
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why part of an image was not judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GapReason {
    /// No OS release file was found (`scratch`, distroless without one).
    NoOsRecognised,
    /// The OS is recognised, but there is no vulnerability data for it.
    NoVulnerabilityData,
    /// A package database (or part of one) was present but could not be read.
    UnreadablePackageDatabase,
    /// The platform asked for is not the one scanned.
    ArchitectureNotScanned,
}

/// One part of an image a scan did not judge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    pub reason: GapReason,
    /// What exactly, for people.
    pub message: String,
}

/// What became of the OS packages of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OsPackages {
    /// No os-release file: the packages cannot be tied to an advisory source.
    NotRecognised,
    /// The OS is known but there is no data for it; the message says which and why.
    NoData(String),
    /// Matched against the database: this many packages were judged.
    Judged(usize),
}

/// What a scan knows about its own reach; the input of [`assess`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach<'a> {
    pub os: OsPackages,
    /// Package databases present but not (wholly) read.
    pub unreadable: &'a [Unreadable],
    /// `(asked for, scanned)` when the image had no manifest for the platform asked for
    /// and another variant of its architecture was scanned instead.
    pub platform_substitute: Option<(&'a str, &'a str)>,
}

/// The coverage and the gaps of a scan. No gap is `Full`; gaps with some packages judged are
/// `Partial`; gaps with nothing judged are `None`. Language ecosystems, when they come, add
/// their judged packages to the count, so an image without an OS but with judged language
/// packages is `Partial`, not `None`.
pub fn assess(reach: &Reach<'_>) -> (Coverage, Vec<Gap>) {
    let mut gaps = Vec::new();
    let judged = match &reach.os {
        OsPackages::NotRecognised => {
            gaps.push(Gap {
                reason: GapReason::NoOsRecognised,
                message: "no OS recognised: no /etc/os-release, so OS packages cannot be \
                          matched to advisories"
                    .to_owned(),
            });
            0
        }
        OsPackages::NoData(message) => {
            gaps.push(Gap {
                reason: GapReason::NoVulnerabilityData,
                message: message.clone(),
            });
            0
        }
        OsPackages::Judged(packages) => *packages,
    };
    for u in reach.unreadable {
        gaps.push(Gap {
            reason: GapReason::UnreadablePackageDatabase,
            message: format!("{}: {}; those packages were not judged", u.path, u.reason),
        });
    }
    if let Some((asked, scanned)) = reach.platform_substitute {
        gaps.push(Gap {
            reason: GapReason::ArchitectureNotScanned,
            message: format!("the image has no {asked} manifest; {scanned} was scanned instead"),
        });
    }
    let coverage = if gaps.is_empty() {
        Coverage::Full
    } else if judged > 0 {
        Coverage::Partial
    } else {
        Coverage::None
    };
    (coverage, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_table() {
        let unreadable = [Unreadable {
            path: "var/lib/dpkg/status".into(),
            reason: "2 unreadable stanza(s) skipped (first: stanza 3 has no Package field)".into(),
        }];
        let no_data = || OsPackages::NoData("no data for Debian:12".into());
        use Coverage as C;
        use GapReason as G;
        let table: &[(&str, Reach<'_>, Coverage, &[GapReason])] = &[
            (
                "judged",
                Reach {
                    os: OsPackages::Judged(12),
                    unreadable: &[],
                    platform_substitute: None,
                },
                C::Full,
                &[],
            ),
            (
                "judged, no packages",
                Reach {
                    os: OsPackages::Judged(0),
                    unreadable: &[],
                    platform_substitute: None,
                },
                C::Full,
                &[],
            ),
            (
                "no OS",
                Reach {
                    os: OsPackages::NotRecognised,
                    unreadable: &[],
                    platform_substitute: None,
                },
                C::None,
                &[G::NoOsRecognised],
            ),
            (
                "no data",
                Reach {
                    os: no_data(),
                    unreadable: &[],
                    platform_substitute: None,
                },
                C::None,
                &[G::NoVulnerabilityData],
            ),
            (
                "part of a database unreadable, the rest judged",
                Reach {
                    os: OsPackages::Judged(12),
                    unreadable: &unreadable,
                    platform_substitute: None,
                },
                C::Partial,
                &[G::UnreadablePackageDatabase],
            ),
            (
                "part of a database unreadable, nothing judged",
                Reach {
                    os: OsPackages::Judged(0),
                    unreadable: &unreadable,
                    platform_substitute: None,
                },
                C::None,
                &[G::UnreadablePackageDatabase],
            ),
            (
                "unreadable and no data",
                Reach {
                    os: no_data(),
                    unreadable: &unreadable,
                    platform_substitute: None,
                },
                C::None,
                &[G::NoVulnerabilityData, G::UnreadablePackageDatabase],
            ),
            (
                "another variant scanned",
                Reach {
                    os: OsPackages::Judged(3),
                    unreadable: &[],
                    platform_substitute: Some(("linux/arm/v6", "linux/arm/v7")),
                },
                C::Partial,
                &[G::ArchitectureNotScanned],
            ),
            (
                "another variant scanned, no OS",
                Reach {
                    os: OsPackages::NotRecognised,
                    unreadable: &[],
                    platform_substitute: Some(("linux/arm/v6", "linux/arm/v7")),
                },
                C::None,
                &[G::NoOsRecognised, G::ArchitectureNotScanned],
            ),
        ];
        for (what, reach, coverage, reasons) in table {
            let (got, gaps) = assess(reach);
            assert_eq!(got, *coverage, "{what}");
            let got: Vec<GapReason> = gaps.iter().map(|g| g.reason).collect();
            assert_eq!(got, *reasons, "{what}");
        }
    }

    #[test]
    fn messages_say_what_and_why() {
        let unreadable = [Unreadable {
            path: "lib/apk/db/installed".into(),
            reason: "1 unreadable record(s) skipped (first: record 2 has no P: (name) line)".into(),
        }];
        let (_, gaps) = assess(&Reach {
            os: OsPackages::NotRecognised,
            unreadable: &unreadable,
            platform_substitute: Some(("linux/arm/v6", "linux/arm/v7")),
        });
        let got: Vec<&str> = gaps.iter().map(|g| g.message.as_str()).collect();
        assert_eq!(
            got,
            [
                "no OS recognised: no /etc/os-release, so OS packages cannot be matched to \
                 advisories",
                "lib/apk/db/installed: 1 unreadable record(s) skipped (first: record 2 has no \
                 P: (name) line); those packages were not judged",
                "the image has no linux/arm/v6 manifest; linux/arm/v7 was scanned instead",
            ]
        );
        // The JSON spelling is the ImageScanReport status's.
        assert_eq!(
            serde_json::to_value(&gaps[0]).expect("json"),
            serde_json::json!({"reason": "NoOsRecognised", "message": gaps[0].message})
        );
        assert_eq!(
            serde_json::to_value(Coverage::Partial).expect("json"),
            "Partial"
        );
    }
}
