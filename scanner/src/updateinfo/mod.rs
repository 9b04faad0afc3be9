//! Advisories from a yum/dnf repository's `updateinfo.xml`: the second kind of vulnerability
//! database, beside OSV exports.
//!
//! Amazon Linux publishes its advisories (ALAS) only this way, and RHEL, Oracle Linux and
//! SUSE repositories carry the same format. A document is a list of `<update>` entries, each
//! with an id, a type (`security`, `bugfix`, `enhancement`), a severity word, dates, CVE
//! references and the fixed binary packages (`<package name epoch version release arch>`).
//!
//! - [`parse`]: the document → [`Advisory`] values, streamed and bounded.
//! - [`convert`]: security advisories → OSV records, so that the [`Index`], matching,
//!   severity and alias grouping work on them unchanged.
//! - [`repo`]: locating the document (a file, a repository's `repomd.xml`, a `mirror.list`)
//!   and undoing its compression.
//!
//! Where a source is fetched and cached is [`crate::osv::store`]'s job: an ecosystem given an
//! updateinfo location there is read from it instead of from an OSV export.

pub mod convert;
pub mod parse;
pub mod repo;

use std::io::Read;

use crate::Error;
use crate::osv::index::Builder;
use crate::osv::{Ecosystem, Index, Limits};

/// Where the ecosystems without an OSV export get their updateinfo by default: each
/// release's x86_64 core repository, through its `mirror.list`. The advisories name binary
/// packages and versions, which are the same for every architecture.
pub const DEFAULT_SOURCES: [(&str, &str); 2] = [
    (
        "Amazon Linux:2",
        "https://cdn.amazonlinux.com/2/core/latest/x86_64/mirror.list",
    ),
    (
        "Amazon Linux:2023",
        "https://cdn.amazonlinux.com/al2023/core/mirrors/latest/x86_64/mirror.list",
    ),
];

/// A `ECOSYSTEM=URL|PATH` argument (`--scan-updateinfo "Amazon Linux:2=/mnt/al2/mirror.list"`):
/// the ecosystem, which must be an rpm one this scanner knows (updateinfo lists rpm
/// packages), and the location, as [`Store::with_updateinfo`](crate::osv::Store::with_updateinfo)
/// takes them.
pub fn parse_source(arg: &str) -> Result<(String, String), String> {
    let Some((ecosystem, location)) = arg.split_once('=') else {
        return Err(format!(
            "{arg:?}: not ECOSYSTEM=URL|PATH (e.g. \"Amazon Linux:2=https://…/mirror.list\")"
        ));
    };
    let (ecosystem, location) = (ecosystem.trim(), location.trim());
    match Ecosystem::from_name(ecosystem) {
        Some(e) if e.scheme == crate::version::Scheme::Rpm => {}
        Some(_) => {
            return Err(format!(
                "{ecosystem}: updateinfo lists rpm packages; this ecosystem's are not"
            ));
        }
        None => return Err(format!("{ecosystem}: not an ecosystem this scanner knows")),
    }
    if location.is_empty() {
        return Err(format!("{ecosystem}: no URL or path after ="));
    }
    Ok((ecosystem.to_owned(), location.to_owned()))
}

/// One `<update>` of the document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advisory {
    /// `ALAS2-2023-2020`, `ALAS2023-2024-500`, `RHSA-2024:2447`.
    pub id: String,
    pub kind: Kind,
    /// The `<severity>` word as written (`important`, `Moderate`), if any.
    pub severity: Option<String>,
    /// `<issued date=…>` and `<updated date=…>` as written (`2023-04-26 20:10`).
    pub issued: Option<String>,
    pub updated: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub references: Vec<Reference>,
    /// Every `<package>` of every `<collection>`, source packages included.
    pub packages: Vec<Package>,
}

impl Advisory {
    /// The CVE ids it fixes (`<reference type="cve" id=…>`), in document order, once each.
    pub fn cves(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.references {
            let id = r.id.trim();
            if r.kind.eq_ignore_ascii_case("cve") && !id.is_empty() && !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// The advisory's own page: a reference of type `self` (Red Hat, Oracle), else the
    /// first `vendor` one.
    pub fn url(&self) -> Option<&str> {
        ["self", "vendor"].iter().find_map(|kind| {
            self.references
                .iter()
                .find(|r| r.kind.eq_ignore_ascii_case(kind) && !r.href.trim().is_empty())
                .map(|r| r.href.trim())
        })
    }
}

/// An update's `type` attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    Security,
    Bugfix,
    Enhancement,
    /// Another word, or none.
    #[default]
    Unknown,
    Other(String),
}

impl Kind {
    pub fn from_word(word: &str) -> Kind {
        match word.trim().to_ascii_lowercase().as_str() {
            "security" => Kind::Security,
            "bugfix" => Kind::Bugfix,
            "enhancement" => Kind::Enhancement,
            "" => Kind::Unknown,
            other => Kind::Other(other.to_owned()),
        }
    }
}

/// One `<reference>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reference {
    /// `cve`, `self`, `bugzilla`, …
    pub kind: String,
    pub id: String,
    pub href: String,
    pub title: String,
}

/// One `<package>` of a collection: a build that carries the fix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    /// As written; `None` when the attribute is absent or empty.
    pub epoch: Option<String>,
    pub version: String,
    pub release: String,
    /// `x86_64`, `aarch64`, `noarch`, `src`, …
    pub arch: String,
}

/// An ecosystem's [`Index`] from an updateinfo document (plain, gzip or zstd, told apart by
/// their first bytes). Only security advisories are kept. `source_name` names the document
/// in errors.
pub fn index(
    ecosystem: Ecosystem,
    input: impl Read,
    source_name: &str,
    limits: Limits,
) -> Result<Index, Error> {
    let reader = repo::decompress(input, source_name)?;
    let mut builder = Builder::new(ecosystem.clone());
    parse::for_each_advisory(reader, source_name, limits, |advisory| {
        if let Some(record) = convert::to_osv(&advisory, &ecosystem.name) {
            builder.add(&record);
        }
    })?;
    Ok(builder.finish())
}

#[cfg(test)]
mod tests;
