//! A security advisory of updateinfo → one OSV record, so the index, matching, severity and
//! alias grouping need nothing of their own for it.
//!
//! - `id`: the advisory's (`ALAS2-2023-2020`); `aliases`: its CVE ids.
//! - `affected`: one entry per binary package name, an `ECOSYSTEM` range from `0` to the
//!   fixed `[epoch:]version-release`. An updateinfo entry lists the builds that fix the
//!   issue; every earlier build of the package is taken as affected, which is how the
//!   distributions' own tools read it. Source packages (`src`, `nosrc`) are left out; the
//!   builds of one name for several architectures (`x86_64`, `aarch64`, `noarch`) collapse
//!   into one entry with the highest EVR, should they differ.
//! - The epoch is written only when it is not `0`: rpm prints an installed package's EVR
//!   without one when its header has none, which is the case for nearly every package that
//!   updateinfo gives `epoch="0"`, and rpm's order treats a missing epoch as `0` anyway.
//! - `database_specific.severity`: the advisory's word as the scanner's levels
//!   (`critical` → Critical, `important` → High, `medium`/`moderate` → Medium, `low` → Low);
//!   no word, or another one, is no rating.
//! - `summary`, `details`, `published`, `modified`: title, description, issued and updated.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Advisory, Kind, Package};
use crate::osv::Scheme;
use crate::osv::schema::{Affected, Event, PackageId, Range, Vulnerability};

/// The OSV record of a security advisory, for `ecosystem` (`Amazon Linux:2`). `None` for
/// other kinds of update, and for one that lists no binary package.
pub fn to_osv(advisory: &Advisory, ecosystem: &str) -> Option<Vulnerability> {
    if advisory.kind != Kind::Security {
        return None;
    }
    let mut fixed: BTreeMap<&str, String> = BTreeMap::new();
    for p in advisory.packages.iter().filter(|p| is_binary(p)) {
        let evr = evr(p);
        match fixed.get_mut(p.name.as_str()) {
            Some(have) => {
                if Scheme::Rpm.compare(&evr, have) == Ordering::Greater {
                    *have = evr;
                }
            }
            None => {
                fixed.insert(&p.name, evr);
            }
        }
    }
    if fixed.is_empty() {
        return None;
    }
    let affected = fixed
        .into_iter()
        .map(|(name, evr)| Affected {
            package: Some(PackageId {
                ecosystem: ecosystem.to_owned(),
                name: name.to_owned(),
                purl: None,
            }),
            ranges: vec![Range {
                kind: "ECOSYSTEM".to_owned(),
                repo: None,
                events: vec![
                    Event {
                        introduced: Some("0".to_owned()),
                        ..Event::default()
                    },
                    Event {
                        fixed: Some(evr),
                        ..Event::default()
                    },
                ],
            }],
            ..Affected::default()
        })
        .collect();
    let mut database_specific = Map::new();
    if let Some(level) = advisory.severity.as_deref().and_then(level) {
        database_specific.insert("severity".to_owned(), Value::from(level));
    }
    if let Some(url) = advisory.url() {
        database_specific.insert("url".to_owned(), Value::from(url));
    }
    Some(Vulnerability {
        id: advisory.id.clone(),
        modified: advisory.updated.clone(),
        published: advisory.issued.clone(),
        aliases: advisory.cves().into_iter().map(str::to_owned).collect(),
        summary: advisory.title.clone(),
        details: advisory.description.clone(),
        affected,
        database_specific: Some(database_specific).filter(|m| !m.is_empty()),
        ..Vulnerability::default()
    })
}

/// Not a source package.
fn is_binary(p: &Package) -> bool {
    !matches!(p.arch.trim(), "src" | "nosrc")
}

/// `[epoch:]version-release`, the epoch left out when it is `0` (see the module's notes).
pub fn evr(p: &Package) -> String {
    let (v, r) = (p.version.trim(), p.release.trim());
    match p.epoch.as_deref().map(str::trim) {
        Some(e) if !e.is_empty() && e.bytes().any(|b| b != b'0') => format!("{e}:{v}-{r}"),
        _ => format!("{v}-{r}"),
    }
}

/// The scanner's level for an updateinfo severity word.
fn level(word: &str) -> Option<&'static str> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "critical" => "critical",
        "important" | "high" => "high",
        "medium" | "moderate" => "medium",
        "low" => "low",
        _ => return None,
    })
}
