//! Registry access with the logins that ScanPolicies name in `registryCredentials`, shared
//! by the scan controller and the running-images watcher.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::reflector::Store;
use palisade_crds::{ScanPolicy, SecretRef};
use palisade_kube_plumbing::registry_credentials::reader::read_docker_configs;
use palisade_scanner::oci::RegistryClient;

/// Registry logins are read again after this long.
const CREDENTIALS_TTL: Duration = Duration::from_secs(60);

/// When the logins were read, from which Secrets, and the client carrying them.
type CachedLogins = (Instant, Vec<(String, String)>, RegistryClient);

/// Registry access with the logins named by ScanPolicies, shared by the controller and the
/// running-images watcher.
pub struct RegistryAccess {
    client: Client,
    base: RegistryClient,
    namespace: String,
    policies: Store<ScanPolicy>,
    cached: tokio::sync::Mutex<Option<CachedLogins>>,
}

impl RegistryAccess {
    pub fn new(
        client: Client,
        base: RegistryClient,
        namespace: String,
        policies: Store<ScanPolicy>,
    ) -> Self {
        RegistryAccess {
            client,
            base,
            namespace,
            policies,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The registry client with the current logins (re-read at most every
    /// [`CREDENTIALS_TTL`], or at once when the set of Secrets changes).
    pub async fn registry(&self) -> RegistryClient {
        let refs = secret_refs(
            self.policies
                .state()
                .iter()
                .flat_map(|p| p.spec.registry_credentials.iter()),
            &self.namespace,
        );
        let mut cached = self.cached.lock().await;
        if let Some((at, key, client)) = cached.as_ref()
            && at.elapsed() < CREDENTIALS_TTL
            && *key == refs
        {
            return client.clone();
        }
        let credentials = read_docker_configs(&self.client, &refs).await;
        let client = self.base.with_credentials(credentials);
        *cached = Some((Instant::now(), refs, client.clone()));
        client
    }
}

/// The Secrets to read, as (namespace, name), each once; no namespace means `default_ns`.
pub fn secret_refs<'a>(
    refs: impl IntoIterator<Item = &'a SecretRef>,
    default_ns: &str,
) -> Vec<(String, String)> {
    let set: BTreeSet<(String, String)> = refs
        .into_iter()
        .filter(|r| !r.name.is_empty())
        .map(|r| {
            (
                r.namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| default_ns.to_owned()),
                r.name.clone(),
            )
        })
        .collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs_default_their_namespace_and_dedupe() {
        let r = |name: &str, ns: Option<&str>| SecretRef {
            name: name.into(),
            namespace: ns.map(str::to_owned),
        };
        let refs = [
            r("b", None),
            r("a", Some("team")),
            r("b", Some("palisade")),
            r("", None),
            r("c", Some("")),
        ];
        assert_eq!(
            secret_refs(refs.iter(), "palisade"),
            [
                ("palisade".to_owned(), "b".to_owned()),
                ("palisade".to_owned(), "c".to_owned()),
                ("team".to_owned(), "a".to_owned()),
            ]
        );
    }
}
