//! The severity of an advisory for one affected package.
//!
//! Rule, first that gives an answer:
//! 1. The distribution's own rating, when the record carries one: Debian's
//!    `ecosystem_specific.urgency`, a `severity[]` entry of type `Ubuntu`, a `severity` string
//!    in the package's `ecosystem_specific` or `database_specific` or in the record's
//!    `database_specific` (Alpine, AlmaLinux, Rocky, GitHub), or the rating that opens a
//!    Red Hat-style summary (`Important: openssl security update`). Words map as
//!    [`Severity::parse`] does (`important` = High, `moderate` = Medium), except that
//!    Debian's `unimportant` is Low; `not yet assigned`, `end-of-life` and unknown words are
//!    no rating.
//! 2. The highest CVSS base score among the package's `severity[]` and the record's
//!    (`CVSS_V4`, `CVSS_V3`, `CVSS_V2` vectors): ≥ 9.0 Critical, ≥ 7.0 High, ≥ 4.0 Medium,
//!    > 0 Low; a vector that does not parse is skipped.
//! 3. Unknown.

use std::str::FromStr;

use serde_json::{Map, Value};

use super::schema::{Affected, SeverityScore, Vulnerability};
use crate::report::Severity;

/// The severity of `vuln` for one of its affected entries; see the module documentation.
pub fn severity_of(vuln: &Vulnerability, affected: &Affected) -> Severity {
    distribution_rating(vuln, affected)
        .or_else(|| max_cvss(affected.severity.iter().chain(&vuln.severity)).map(band))
        .unwrap_or(Severity::Unknown)
}

fn distribution_rating(vuln: &Vulnerability, affected: &Affected) -> Option<Severity> {
    let word = |map: &Option<Map<String, Value>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .and_then(rating)
    };
    let typed = |scores: &[SeverityScore]| {
        scores
            .iter()
            .filter(|s| !s.kind.starts_with("CVSS"))
            .find_map(|s| rating(&s.score))
    };
    word(&affected.ecosystem_specific, "urgency")
        .or_else(|| word(&affected.ecosystem_specific, "severity"))
        .or_else(|| word(&affected.database_specific, "severity"))
        .or_else(|| typed(&affected.severity))
        .or_else(|| typed(&vuln.severity))
        .or_else(|| word(&vuln.database_specific, "severity"))
        .or_else(|| summary_rating(vuln.summary.as_deref()?))
}

/// A distribution's severity word, or `None` when it is no rating.
fn rating(word: &str) -> Option<Severity> {
    let w = word.trim().to_ascii_lowercase();
    // Debian: "unimportant" is a judgement (the issue does not matter in Debian's builds).
    let w = w.trim_end_matches('*');
    if w == "unimportant" {
        return Some(Severity::Low);
    }
    match Severity::parse(w)? {
        Severity::Unknown => None,
        s => Some(s),
    }
}

/// `Important: openssl security update` (Red Hat, AlmaLinux, Rocky).
fn summary_rating(summary: &str) -> Option<Severity> {
    let (word, _) = summary.split_once(':')?;
    match word.trim() {
        "Critical" => Some(Severity::Critical),
        "Important" => Some(Severity::High),
        "Moderate" => Some(Severity::Medium),
        "Low" => Some(Severity::Low),
        _ => None,
    }
}

/// The highest CVSS base score among the vectors that parse.
pub fn max_cvss<'a>(scores: impl IntoIterator<Item = &'a SeverityScore>) -> Option<f64> {
    scores
        .into_iter()
        .filter(|s| s.kind.starts_with("CVSS_V"))
        .filter_map(|s| cvss::Cvss::from_str(s.score.trim()).ok())
        .map(|c| c.score())
        .fold(None, |acc: Option<f64>, s| {
            Some(acc.map_or(s, |a| a.max(s)))
        })
}

/// The qualitative band of a CVSS base score.
pub fn band(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(kind: &str, s: &str) -> SeverityScore {
        SeverityScore {
            kind: kind.into(),
            score: s.into(),
        }
    }

    #[test]
    fn cvss_base_scores_of_real_vectors() {
        let table = [
            // CVE-2021-44228 (Log4Shell)
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
                10.0,
                Severity::Critical,
            ),
            // CVE-2014-0160 (Heartbleed) and CVE-2023-5363 (OpenSSL), NVD v3.1
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
                7.5,
                Severity::High,
            ),
            // CVE-2024-6387 (regreSSHion)
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H",
                8.1,
                Severity::High,
            ),
            // CVE-2023-4911 (Looping Tunables)
            (
                "CVSS_V3",
                "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
                7.8,
                Severity::High,
            ),
            // CVE-2016-2781 (coreutils chroot), NVD v3.0
            (
                "CVSS_V3",
                "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:C/C:N/I:H/A:N",
                6.5,
                Severity::Medium,
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N",
                3.1,
                Severity::Low,
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N",
                0.0,
                Severity::Unknown,
            ),
            // CVE-2014-0160, NVD v2
            (
                "CVSS_V2",
                "AV:N/AC:L/Au:N/C:P/I:N/A:N",
                5.0,
                Severity::Medium,
            ),
            (
                "CVSS_V2",
                "AV:N/AC:L/Au:N/C:C/I:C/A:C",
                10.0,
                Severity::Critical,
            ),
            (
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
                Severity::Critical,
            ),
        ];
        for (kind, vector, want, sev) in table {
            let got = max_cvss([&score(kind, vector)]).expect("a score");
            assert!((got - want).abs() < 0.05, "{vector}: {got} != {want}");
            assert_eq!(band(got), sev, "{vector}");
        }
        assert_eq!(max_cvss([&score("CVSS_V3", "CVSS:3.1/garbage")]), None);
        assert_eq!(max_cvss([&score("Ubuntu", "high")]), None);
    }

    fn vuln(json: &str) -> Vulnerability {
        serde_json::from_str(json).expect("test fixture")
    }

    #[test]
    fn the_distributions_rating_wins_over_cvss() {
        let log4shell =
            r#"{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}"#;
        let table = [
            // Debian urgency on the package
            (
                format!(r#"{{"id": "DEBIAN-CVE-2021-44228", "severity": [{log4shell}], "affected": [{{"ecosystem_specific": {{"urgency": "low"}}}}]}}"#),
                Severity::Low,
            ),
            (
                format!(r#"{{"id": "DEBIAN-CVE-2016-2781", "severity": [{log4shell}], "affected": [{{"ecosystem_specific": {{"urgency": "unimportant"}}}}]}}"#),
                Severity::Low,
            ),
            // "not yet assigned" is no rating: CVSS decides
            (
                format!(r#"{{"id": "DEBIAN-CVE-2021-44228", "severity": [{log4shell}], "affected": [{{"ecosystem_specific": {{"urgency": "not yet assigned"}}}}]}}"#),
                Severity::Critical,
            ),
            // Ubuntu's word in severity[]
            (
                format!(r#"{{"id": "UBUNTU-CVE-2021-44228", "severity": [{log4shell}, {{"type": "Ubuntu", "score": "medium"}}], "affected": [{{}}]}}"#),
                Severity::Medium,
            ),
            // Alpine / GitHub: database_specific.severity
            (
                r#"{"id": "GHSA-r9p9-mrjm-926w", "database_specific": {"severity": "MODERATE"}, "affected": [{}]}"#.to_owned(),
                Severity::Medium,
            ),
            // AlmaLinux / Rocky summaries
            (
                r#"{"id": "ALSA-2024:2447", "summary": "Important: openssl security update", "affected": [{}]}"#.to_owned(),
                Severity::High,
            ),
            // only CVSS, on the package
            (
                format!(r#"{{"id": "X-1", "affected": [{{"severity": [{log4shell}]}}]}}"#),
                Severity::Critical,
            ),
            // several vectors: the highest
            (
                format!(r#"{{"id": "X-2", "severity": [{{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:N/A:N"}}, {log4shell}], "affected": [{{}}]}}"#),
                Severity::Critical,
            ),
            (r#"{"id": "DLA-3530-1", "affected": [{}]}"#.to_owned(), Severity::Unknown),
        ];
        for (json, want) in table {
            let v = vuln(&json);
            assert_eq!(severity_of(&v, &v.affected[0]), want, "{json}");
        }
    }
}
