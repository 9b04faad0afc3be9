//! Registry access with the logins that ScanPolicies name in `registryCredentials`, shared
//! by the scan controller and the running-images watcher: the Secrets are read again at
//! most every minute, or at once when the set named changes.

use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::reflector::Store;
use palisade_crds::ScanPolicy;
use palisade_kube_plumbing::registry_credentials::reader::read_docker_configs;
use palisade_scanner::oci::RegistryClient;

use super::plan::secret_refs;

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
    /// `CREDENTIALS_TTL`, or at once when the set of Secrets changes).
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
