//! The settings of the audit.

use std::time::Duration;

use palisade_policy::RuleDocs;

/// Settings of the audit.
#[derive(Debug, Clone)]
pub struct Config {
    /// Time between two audits with no policy change.
    pub interval: Duration,
    /// At most this many results per report (the summary counts them all).
    pub max_results: usize,
    /// Create the PolicyReport CRDs when the cluster has none.
    pub install_crds: bool,
    /// Namespaces never judged (the webhook's exclusions: kube-system, its own, configured).
    pub excluded_namespaces: Vec<String>,
    /// Where results link each rule's page.
    pub rule_docs: RuleDocs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Duration::from_secs(600),
            max_results: 100,
            install_crds: true,
            excluded_namespaces: vec!["kube-system".into()],
            rule_docs: RuleDocs::default(),
        }
    }
}
