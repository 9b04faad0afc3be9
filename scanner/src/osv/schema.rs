//! The OSV record as the public exports write it (<https://ossf.github.io/osv-schema/>).
//!
//! Only the fields the scanner uses are typed; unknown fields are ignored so that a newer
//! schema version still loads. A field of the wrong JSON type is an error: such a file is
//! not an OSV record (or is damaged), and the store refuses the whole export for it.

use serde::Deserialize;
use serde_json::{Map, Value};

/// One advisory (one JSON file of an export).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Vulnerability {
    pub id: String,
    #[serde(default)]
    pub modified: Option<String>,
    #[serde(default)]
    pub published: Option<String>,
    /// Set when the advisory was retracted; such advisories are not matched.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Ids of the same vulnerability in other databases.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Ids this advisory derives from (schema 1.7; Debian, Alpine and Ubuntu put the CVE here).
    #[serde(default)]
    pub upstream: Vec<String>,
    /// Related but not identical vulnerabilities (AlmaLinux and Rocky list the fixed CVEs here).
    #[serde(default)]
    pub related: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    #[serde(default)]
    pub database_specific: Option<Map<String, Value>>,
}

/// A severity score: `CVSS_V2`, `CVSS_V3`, `CVSS_V4` vectors, or a distribution's own word
/// (`Ubuntu`: `low` … `critical`).
#[derive(Clone, Debug, Deserialize)]
pub struct SeverityScore {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

/// One affected package of an advisory.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Affected {
    #[serde(default)]
    pub package: Option<PackageId>,
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Exact affected versions, in addition to the ranges.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Per-package severity (then the top-level one must be absent).
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    #[serde(default)]
    pub ecosystem_specific: Option<Map<String, Value>>,
    #[serde(default)]
    pub database_specific: Option<Map<String, Value>>,
}

/// Which package an [`Affected`] entry is about.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PackageId {
    pub ecosystem: String,
    pub name: String,
    #[serde(default)]
    pub purl: Option<String>,
}

/// A range of affected versions: a timeline of events in the ecosystem's version order.
#[derive(Clone, Debug, Deserialize)]
pub struct Range {
    /// `ECOSYSTEM`, `SEMVER` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event of a range. The schema allows exactly one of the fields per event.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub introduced: Option<String>,
    #[serde(default)]
    pub fixed: Option<String>,
    #[serde(default)]
    pub last_affected: Option<String>,
    #[serde(default)]
    pub limit: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debian_record_with_unknown_fields_parses() {
        let json = r#"{
          "schema_version": "1.7.0",
          "id": "DEBIAN-CVE-2023-5363",
          "modified": "2024-09-18T03:00:00Z",
          "published": "2023-10-25T18:17:43Z",
          "upstream": ["CVE-2023-5363"],
          "details": "Issue summary: A bug has been identified...",
          "references": [{"type": "ADVISORY", "url": "https://security-tracker.debian.org/tracker/CVE-2023-5363"}],
          "affected": [{
            "package": {"ecosystem": "Debian:12", "name": "openssl", "purl": "pkg:deb/debian/openssl?arch=source"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}],
            "versions": ["3.0.9-1", "3.0.11-1~deb12u1"],
            "ecosystem_specific": {"urgency": "not yet assigned"}
          }]
        }"#;
        let v: Vulnerability = serde_json::from_str(json).expect("test fixture");
        assert_eq!(v.id, "DEBIAN-CVE-2023-5363");
        assert_eq!(v.upstream, ["CVE-2023-5363"]);
        let a = &v.affected[0];
        assert_eq!(a.package.as_ref().expect("test fixture").name, "openssl");
        assert_eq!(
            a.ranges[0].events[1].fixed.as_deref(),
            Some("3.0.11-1~deb12u2")
        );
        assert_eq!(a.versions.len(), 2);
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_error() {
        assert!(serde_json::from_str::<Vulnerability>(r#"{"id": "X", "aliases": 5}"#).is_err());
        assert!(serde_json::from_str::<Vulnerability>(r#"{"aliases": []}"#).is_err());
        assert!(serde_json::from_str::<Vulnerability>("[1, 2]").is_err());
    }
}
