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
    /// No os-release file: the packages its package databases list (this many) cannot be
    /// tied to an advisory source.
    NotRecognised(usize),
    /// The OS is known but there is no data for it; the message says which and why.
    NoData(String),
    /// Matched against the database: this many packages were judged.
    Judged(usize),
}

/// What a scan knows about its own reach; the input of [`assess`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach<'a> {
    pub os: OsPackages,
    /// The language ecosystems the image has packages of.
    pub languages: &'a [LanguageReach],
    /// Package databases present but not (wholly) read.
    pub unreadable: &'a [Unreadable],
    /// `(asked for, scanned)` when the image had no manifest for the platform asked for
    /// and another variant of its architecture was scanned instead.
    pub platform_substitute: Option<(&'a str, &'a str)>,
}

/// One language ecosystem of an image: its packages, and whether the database had its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LanguageReach {
    /// The OSV ecosystem (`npm`).
    pub ecosystem: String,
    pub packages: usize,
    pub judged: bool,
}

/// The coverage and the gaps of a scan. No gap is `Full`; gaps with some packages judged are
/// `Partial`; gaps with nothing judged are `None`. Language packages count as judged when
/// their ecosystem's data was there. An image without an OS release counts that as a gap
/// when it has OS packages (they cannot be matched) or when nothing else was judged; a
/// `scratch` image holding a Go binary whose modules were all judged is covered in full.
pub fn assess(reach: &Reach<'_>) -> (Coverage, Vec<Gap>) {
    let mut gaps = Vec::new();
    let language_judged: usize = reach
        .languages
        .iter()
        .filter(|l| l.judged)
        .map(|l| l.packages)
        .sum();
    let os_judged = match &reach.os {
        OsPackages::NotRecognised(packages) => {
            if *packages > 0 || language_judged == 0 {
                gaps.push(Gap {
                    reason: GapReason::NoOsRecognised,
                    message: "no OS recognised: no /etc/os-release, so OS packages cannot be \
                              matched to advisories"
                        .to_owned(),
                });
            }
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
    for l in reach.languages.iter().filter(|l| !l.judged) {
        gaps.push(Gap {
            reason: GapReason::NoVulnerabilityData,
            message: format!(
                "the vulnerability database has no {} data: {} {} package(s) were not matched",
                l.ecosystem, l.packages, l.ecosystem
            ),
        });
    }
    let judged = os_judged + language_judged;
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
                    languages: &[],
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
                    languages: &[],
                    unreadable: &[],
                    platform_substitute: None,
                },
                C::Full,
                &[],
            ),
            (
                "no OS",
                Reach {
                    os: OsPackages::NotRecognised(0),
                    languages: &[],
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
                    languages: &[],
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
                    languages: &[],
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
                    languages: &[],
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
                    languages: &[],
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
                    languages: &[],
                    unreadable: &[],
                    platform_substitute: Some(("linux/arm/v6", "linux/arm/v7")),
                },
                C::Partial,
                &[G::ArchitectureNotScanned],
            ),
            (
                "another variant scanned, no OS",
                Reach {
                    os: OsPackages::NotRecognised(0),
                    languages: &[],
                    unreadable: &[],
                    platform_substitute: Some(("linux/arm/v6", "linux/arm/v7")),
                },
                C::None,
                &[G::NoOsRecognised, G::ArchitectureNotScanned],
            ),
            (
                "scratch, with a Go binary judged",
                Reach {
                    os: OsPackages::NotRecognised(0),
                    languages: &[lang("Go", 14, true)],
                    unreadable: &[],
                    platform_substitute: None,
                },
                C::Full,
                &[],
            ),
            (
                "OS packages without an OS release, npm judged",
                Reach {
                    os: OsPackages::NotRecognised(5),
                    languages: &[lang("npm", 3, true)],
                    unreadable: &[],
                    platform_substitute: None,
                },
                C::Partial,
                &[G::NoOsRecognised],
            ),
            (
                "OS judged, no npm data",
                Reach {
                    os: OsPackages::Judged(10),
                    languages: &[lang("Go", 2, true), lang("npm", 3, false)],
                    unreadable: &[],
                    platform_substitute: None,
                },
                C::Partial,
                &[G::NoVulnerabilityData],
            ),
            (
                "no OS, and no PyPI data",
                Reach {
                    os: OsPackages::NotRecognised(0),
                    languages: &[lang("PyPI", 2, false)],
                    unreadable: &[],
                    platform_substitute: None,
                },
                C::None,
                &[G::NoOsRecognised, G::NoVulnerabilityData],
            ),
        ];
        for (what, reach, coverage, reasons) in table {
            let (got, gaps) = assess(reach);
            assert_eq!(got, *coverage, "{what}");
            let got: Vec<GapReason> = gaps.iter().map(|g| g.reason).collect();
            assert_eq!(got, *reasons, "{what}");
        }
    }

    fn lang(ecosystem: &str, packages: usize, judged: bool) -> LanguageReach {
        LanguageReach {
            ecosystem: ecosystem.to_owned(),
            packages,
            judged,
        }
    }

    #[test]
    fn messages_say_what_and_why() {
        let unreadable = [Unreadable {
            path: "lib/apk/db/installed".into(),
            reason: "1 unreadable record(s) skipped (first: record 2 has no P: (name) line)".into(),
        }];
        let (_, gaps) = assess(&Reach {
            os: OsPackages::NotRecognised(0),
            languages: &[lang("npm", 3, false)],
            unreadable: &unreadable,
            platform_substitute: Some(("linux/arm/v6", "linux/arm/v7")),
        });
        let got: Vec<&str> = gaps.iter().map(|g| g.message.as_str()).collect();
        assert_eq!(
            got,
            [
                "no OS recognised: no /etc/os-release, so OS packages cannot be matched to \
                 advisories",
                "the vulnerability database has no npm data: 3 npm package(s) were not matched",
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
