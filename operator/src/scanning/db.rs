//! The vulnerability database as the scan controller uses it: ecosystems loaded on first
//! need through the [`Store`] (which reads its on-disk cache first, so a restart does not
//! download again), refreshed on a timer, and a signal when any ecosystem changed.
//!
//! Reports are matched against a database holding only their own ecosystem, so a report's
//! `databaseVersion` (`Alpine:v3.18@1a2b…`) changes only when that ecosystem's export does,
//! not when another ecosystem is loaded for some other image.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use palisade_scanner::osv::store::{Refresh, Store};
use palisade_scanner::osv::{Database, Ecosystem, Loaded};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::error::report;
use crate::metrics::Metrics;

/// The loaded ecosystems, shared by every scan.
pub struct ScanDb {
    store: Store,
    loaded: Mutex<BTreeMap<String, Loaded>>,
    metrics: Arc<Metrics>,
    /// Bumped whenever a refresh replaced an ecosystem's export.
    changed: watch::Sender<u64>,
}

impl ScanDb {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Self {
        ScanDb {
            store,
            loaded: Mutex::default(),
            metrics,
            changed: watch::Sender::new(0),
        }
    }

    /// Fires after a refresh changed the database.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn cached(&self, name: &str) -> Option<Loaded> {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn keep(&self, loaded: &Loaded, checked_at: Timestamp) {
        let name = loaded.index.ecosystem().name.clone();
        self.metrics
            .set_scan_database(&name, &version_of(loaded), checked_at);
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, loaded.clone());
    }

    /// A database of this one ecosystem, loading it on first need.
    pub async fn for_ecosystem(
        &self,
        ecosystem: &Ecosystem,
    ) -> Result<Database, palisade_scanner::Error> {
        let loaded = match self.cached(&ecosystem.name) {
            Some(l) => l,
            None => {
                let l = self.store.load(ecosystem).await?;
                info!(ecosystem = %ecosystem.name, version = %version_of(&l), advisories = l.meta.advisories, "vulnerability database loaded");
                self.keep(&l, l.meta.fetched_at);
                l
            }
        };
        let mut db = Database::new();
        db.insert_loaded(&loaded);
        Ok(db)
    }

    /// The `databaseVersion` a report matched against `ecosystem` would carry now; `None`
    /// when the ecosystem cannot be loaded (a report is then not re-scanned for it).
    pub async fn version_for(&self, ecosystem: Option<&str>) -> Option<String> {
        let Some(name) = ecosystem else {
            // No ecosystem: matched against nothing, which never changes.
            return Some(Database::new().version());
        };
        let eco = Ecosystem::from_name(name)?;
        match self.for_ecosystem(&eco).await {
            Ok(db) => Some(db.version()),
            Err(e) => {
                warn!(ecosystem = %name, error = %report(&e), "cannot load the vulnerability database");
                None
            }
        }
    }

    /// Ask the source for newer exports of every loaded ecosystem. A failure keeps the
    /// ecosystem's current export. Returns whether any changed.
    pub async fn refresh(&self) -> bool {
        let names: Vec<(String, Ecosystem)> = self
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(n, l)| (n.clone(), l.index.ecosystem().clone()))
            .collect();
        let mut changed = false;
        for (name, eco) in names {
            match self.store.refresh(&eco).await {
                Ok(Refresh::Updated(loaded)) => {
                    info!(ecosystem = %name, version = %version_of(&loaded), "vulnerability database updated");
                    self.keep(&loaded, Timestamp::now());
                    changed = true;
                }
                Ok(Refresh::NotModified) => {
                    if let Some(l) = self.cached(&name) {
                        self.metrics
                            .set_scan_database(&name, &version_of(&l), Timestamp::now());
                    }
                }
                Err(e) => {
                    warn!(ecosystem = %name, error = %report(&e), "vulnerability database refresh failed; keeping the current export")
                }
            }
        }
        if changed {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        changed
    }
}

fn version_of(loaded: &Loaded) -> String {
    let mut db = Database::new();
    db.insert_loaded(loaded);
    db.version()
}
