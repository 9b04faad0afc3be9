//! The OSV vulnerability database: the exports' schema, an in-memory index per ecosystem,
//! matching an inventory against it, and the on-disk store that fetches and caches exports.
//!
//! - [`schema`]: the OSV record.
//! - [`ecosystem`]: OS → OSV ecosystem (`Debian:12`), and which package name and version its
//!   advisories use.
//! - [`index`]: an export zip → compact per-package index.
//! - [`matching`]: OSV range semantics, one finding per (advisory, package).
//! - [`severity`]: the distribution's rating, else the highest CVSS base score.
//! - [`store`]: the I/O edge: download or copy exports, cache them, refresh them safely.
//! - [`local`]: one export zip or a directory of advisory JSON, read in place.

pub mod ecosystem;
pub mod grouping;
pub mod index;
pub mod local;
pub mod matching;
pub mod schema;
pub mod severity;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use crate::version::Scheme;
pub use ecosystem::{Ecosystem, ecosystem_for};
pub use index::{Index, Limits};
pub use store::{Loaded, Metadata, Refresh, Source, Store};

use crate::inventory::language::Language;
use crate::inventory::{Inventory, OsRelease};
use crate::report::Finding;

/// The loaded ecosystems, each with the digest of the export it came from.
#[derive(Clone, Debug, Default)]
pub struct Database {
    ecosystems: BTreeMap<String, (Arc<Index>, String)>,
}

impl Database {
    /// An empty database (matches nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace an ecosystem's index; `sha256` is the hex digest of its export.
    pub fn insert(&mut self, index: Arc<Index>, sha256: impl Into<String>) {
        self.ecosystems
            .insert(index.ecosystem().name.clone(), (index, sha256.into()));
    }

    /// Add or replace an ecosystem loaded by the [`Store`].
    pub fn insert_loaded(&mut self, loaded: &Loaded) {
        self.insert(loaded.index.clone(), loaded.meta.sha256.clone());
    }

    /// Add every ecosystem of `other`, replacing those of the same name.
    pub fn merge(&mut self, other: Database) {
        self.ecosystems.extend(other.ecosystems);
    }

    /// The index of an ecosystem, by OSV name.
    pub fn get(&self, ecosystem: &str) -> Option<&Arc<Index>> {
        self.ecosystems.get(ecosystem).map(|(i, _)| i)
    }

    /// The index for an OS, if the database has its ecosystem. `None` means the image cannot
    /// be judged (unknown OS, or its ecosystem not loaded), which is not the same as clean.
    pub fn index_for(&self, os: &OsRelease) -> Option<&Arc<Index>> {
        self.get(&ecosystem_for(os)?.name)
    }

    /// The loaded ecosystems' names, sorted.
    pub fn ecosystems(&self) -> impl Iterator<Item = &str> {
        self.ecosystems.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.ecosystems.is_empty()
    }

    /// What the database holds: `Alpine:v3.20@1a2b3c4d5e6f,Debian:12@…` (each ecosystem with
    /// the first 12 hex digits of its export's sha256), or `empty`. Changes exactly when an
    /// export's content changes, so reports carrying another version are due for a re-scan.
    pub fn version(&self) -> String {
        if self.ecosystems.is_empty() {
            return "empty".to_owned();
        }
        self.ecosystems
            .iter()
            .map(|(name, (_, sha))| format!("{name}@{}", sha.get(..12).unwrap_or(sha)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The findings of an inventory; see [`match_inventory`].
    pub fn match_inventory(&self, inventory: &Inventory) -> Vec<Finding> {
        match_inventory(self, inventory)
    }
}

/// Match an inventory against the database: the ecosystem of its OS ([`ecosystem_for`]),
/// each package under the name and version its advisories use
/// ([`ecosystem::advisory_keys`]), the OSV range rules ([`matching`]) and the severity rule
/// ([`severity`]). One finding per (advisory, binary package), worst severity first, then by
/// id, then by package. An OS the database does not cover gives no findings: check
/// [`Database::index_for`] to tell that apart from a clean image.
///
/// Language packages are matched against their own ecosystems (`npm`, `Go`, …), each by
/// its version order; their findings name the ecosystem and the file.
pub fn match_inventory(db: &Database, inventory: &Inventory) -> Vec<Finding> {
    let mut findings = match inventory.os.as_ref().and_then(|os| db.index_for(os)) {
        Some(index) => matching::match_index(index, inventory),
        None => Vec::new(),
    };
    for language in Language::ALL {
        let Some(index) = db.get(language.osv_ecosystem()) else {
            continue;
        };
        let packages = inventory
            .language_packages
            .iter()
            .filter(|p| p.language == language);
        findings.extend(matching::match_language(index, packages));
    }
    matching::sort_findings(&mut findings);
    findings
}

/// The ecosystems an inventory's packages are judged in: its OS's (when known), then each
/// language ecosystem it has packages of, in [`Language::ALL`] order.
pub fn needed_ecosystems(inventory: &Inventory) -> Vec<Ecosystem> {
    let os = inventory.os.as_ref().and_then(ecosystem_for);
    let languages = Language::ALL
        .into_iter()
        .filter(|l| inventory.language_packages.iter().any(|p| p.language == *l))
        .filter_map(|l| Ecosystem::from_name(l.osv_ecosystem()));
    os.into_iter().chain(languages).collect()
}

#[cfg(test)]
mod tests;
