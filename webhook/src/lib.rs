//! The Palisade validating admission webhook: an HTTPS server that judges AdmissionReviews
//! with the policy engine, from policies held in memory.
//!
//! The [`admission::router`] and [`admin::router`] are plain axum routers, so they can be
//! exercised without sockets; [`server::start`] binds them, with TLS from [`tls`].

pub mod admin;
pub mod admission;
pub mod error;
pub mod metrics;
pub mod namespaces;
pub mod policies;
pub mod scans;
pub mod server;
pub mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use error::{Error, TlsError};
pub use metrics::{Metrics, Outcome};
pub use namespaces::ExemptLabelGuard;
pub use palisade_policy::{DEFAULT_RULE_DOCS as RULE_DOCS_DEFAULT, RuleDocs};
pub use policies::{NamespaceLookup, NamespaceReader, PolicyStore};
pub use scans::ScanGate;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: PolicyStore,
    pub metrics: Arc<Metrics>,
    /// Who may carry the exempt label (`/validate/namespaces`).
    pub exempt_label: Arc<ExemptLabelGuard>,
    /// ScanPolicies and image reports; `None` when images are not judged.
    pub scans: Option<ScanGate>,
    /// Where denials and warnings link each rule's page.
    pub rule_docs: Arc<RuleDocs>,
    draining: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(store: PolicyStore, metrics: Arc<Metrics>) -> AppState {
        AppState {
            store,
            metrics,
            exempt_label: Arc::new(ExemptLabelGuard::default()),
            scans: None,
            rule_docs: Arc::new(RuleDocs::default()),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Judge `/validate/namespaces` with `guard` instead of the default (`kube-system` and
    /// `palisade-system` only).
    pub fn with_exempt_label_guard(mut self, guard: ExemptLabelGuard) -> AppState {
        self.exempt_label = Arc::new(guard);
        self
    }

    /// Link rule pages under `docs` instead of the project's own.
    pub fn with_rule_docs(mut self, docs: RuleDocs) -> AppState {
        self.rule_docs = Arc::new(docs);
        self
    }

    /// Judge images by ScanPolicies through `gate`.
    pub fn with_scan_gate(mut self, gate: ScanGate) -> AppState {
        self.scans = Some(gate);
        self
    }

    /// Policies (and, with a scan gate, ScanPolicies and reports) are synced.
    pub fn is_synced(&self) -> bool {
        self.store.is_ready() && self.scans.as_ref().is_none_or(ScanGate::is_ready)
    }

    /// From now on `/readyz` fails, so the replica is taken out of the Service.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}
