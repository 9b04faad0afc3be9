//! The vulnerability database as the scan controller uses it: ecosystems loaded on first
//! need through the [`Store`] (which reads its on-disk cache first, so a restart does not
//! download again), refreshed on a timer, and a signal when any ecosystem changed.
//!
//! Reports are matched against a database holding only their own ecosystem, so a report's
//! `databaseVersion` (`Alpine:v3.18@1a2b…`) changes only when that ecosystem's export does,
//! not when another ecosystem is loaded for some other image.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use palisade_scanner::inventory::language::Language;
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
    /// Ecosystems that last failed to load: when, and why.
    failed: Mutex<BTreeMap<String, (Instant, String)>>,
}

/// How long an ecosystem that failed to load is not asked for again.
pub const RETRY_FAILED: Duration = Duration::from_secs(300);

impl ScanDb {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Self {
        ScanDb {
            store,
            loaded: Mutex::default(),
            metrics,
            changed: watch::Sender::new(0),
            failed: Mutex::default(),
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

    /// A database of an image's ecosystems: the OS's (a name that is no language
    /// ecosystem) must load, or this fails; a language ecosystem that cannot be loaded is left out (the report then
    /// says its packages were not judged) and logged. An ecosystem that failed is not asked
    /// for again within [`RETRY_FAILED`], so that a source without it is not hammered.
    pub async fn for_ecosystems(
        &self,
        ecosystems: &[Ecosystem],
    ) -> Result<Database, (String, palisade_scanner::Error)> {
        let mut db = Database::new();
        for eco in ecosystems {
            match self.load_remembering_failure(eco).await {
                Ok(loaded) => db.insert_loaded(&loaded),
                Err(e) if Language::from_osv_ecosystem(&eco.name).is_none() => {
                    return Err((eco.name.clone(), e));
                }
                Err(e) => {
                    warn!(ecosystem = %eco.name, error = %report(&e), "cannot load the vulnerability database; its packages are not judged");
                }
            }
        }
        Ok(db)
    }

    async fn load_remembering_failure(
        &self,
        ecosystem: &Ecosystem,
    ) -> Result<Loaded, palisade_scanner::Error> {
        if let Some(l) = self.cached(&ecosystem.name) {
            return Ok(l);
        }
        let recent = self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&ecosystem.name)
            .filter(|(at, _)| at.elapsed() < RETRY_FAILED)
            .map(|(_, reason)| reason.clone());
        if let Some(reason) = recent {
            return Err(palisade_scanner::Error::VulnDb {
                source_name: ecosystem.name.clone(),
                reason: format!("{reason} (tried less than {}s ago)", RETRY_FAILED.as_secs()),
            });
        }
        let loaded = self.for_ecosystem(ecosystem).await.and_then(|_| {
            self.cached(&ecosystem.name)
                .ok_or_else(|| palisade_scanner::Error::VulnDb {
                    source_name: ecosystem.name.clone(),
                    reason: "loaded, then gone".to_owned(),
                })
        });
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        match &loaded {
            Ok(_) => {
                failed.remove(&ecosystem.name);
            }
            Err(e) => {
                failed.insert(ecosystem.name.clone(), (Instant::now(), report(e)));
            }
        }
        loaded
    }

    /// The `databaseVersion` a report of these ecosystems would carry now; `None` when the OS's cannot be loaded (the report is then not
    /// re-scanned for it). Language ecosystems that cannot be loaded are left out, as a scan
    /// leaves them out: once one loads, the version changes and the report is re-scanned.
    pub async fn version_for(&self, ecosystems: &[String]) -> Option<String> {
        // An unknown name (from a newer operator) cannot be loaded: left out.
        let known: Vec<Ecosystem> = ecosystems
            .iter()
            .filter_map(|n| Ecosystem::from_name(n))
            .collect();
        match self.for_ecosystems(&known).await {
            Ok(db) => Some(db.version()),
            Err((name, e)) => {
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

#[cfg(test)]
mod tests {
    use palisade_scanner::osv::store::Source;

    use super::*;

    fn advisory(id: &str, ecosystem: &str, name: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id,
            "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]
        })
    }

    #[tokio::test]
    async fn the_os_ecosystem_must_load_a_language_one_may_be_missing() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The registry client's HTTP client, as the operator's store uses.
        let http = || {
            palisade_scanner::oci::RegistryClient::new(
                palisade_scanner::oci::ClientConfig::default(),
            )
            .expect("client")
            .http_client()
        };
        let work = tempfile::tempdir().expect("tempdir");
        let source = work.path().join("osv");
        palisade_oci_fixtures::osv::write_export(
            &source,
            "Alpine:v3.20",
            &[advisory("ALPINE-1", "Alpine:v3.20", "musl")],
        )
        .expect("export");
        palisade_oci_fixtures::osv::write_export(
            &source,
            "Go",
            &[advisory("GO-1", "Go", "stdlib")],
        )
        .expect("export");
        let store = Store::new(
            Source::Dir(source.clone()),
            work.path().join("cache"),
            http(),
        );
        let db = ScanDb::new(store, Arc::new(Metrics::new()));
        let eco = |n: &str| Ecosystem::from_name(n).expect("known");

        let got = db
            .for_ecosystems(&[eco("Alpine:v3.20"), eco("Go"), eco("npm")])
            .await
            .expect("the OS's loads");
        assert_eq!(got.ecosystems().collect::<Vec<_>>(), ["Alpine:v3.20", "Go"]);
        let err = db
            .for_ecosystems(&[eco("Debian:12"), eco("Go")])
            .await
            .expect_err("no Debian export");
        assert_eq!(err.0, "Debian:12");

        // The version a report would carry leaves out what cannot load, and follows it once
        // it can (after the retry delay; a new ScanDb has none).
        let names: Vec<String> = ["Alpine:v3.20", "npm"].map(str::to_owned).to_vec();
        let before = db.version_for(&names).await.expect("version");
        assert!(
            before.starts_with("Alpine:v3.20@") && !before.contains("npm"),
            "{before}"
        );
        palisade_oci_fixtures::osv::write_export(&source, "npm", &[advisory("GHSA-1", "npm", "x")])
            .expect("export");
        assert_eq!(
            db.version_for(&names).await.as_deref(),
            Some(before.as_str()),
            "not asked again at once"
        );
        let store = Store::new(Source::Dir(source), work.path().join("cache"), http());
        let fresh = ScanDb::new(store, Arc::new(Metrics::new()));
        let after = fresh.version_for(&names).await.expect("version");
        assert!(after.contains(",npm@"), "{after}");
        assert_eq!(fresh.version_for(&["Debian:12".to_owned()]).await, None);
    }
}
