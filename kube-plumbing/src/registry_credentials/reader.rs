//! Registry logins read from the API server: a pod's pull Secrets and its ServiceAccount,
//! at admission ([`PullSecretReader`]), and the Secrets a configuration names
//! ([`read_docker_configs`]).
//!
//! Every read of [`PullSecretReader`] is bounded by the request's deadline and cached by (namespace, name) for the
//! gate's `credentials_ttl`, answers that say "missing" or "forbidden" included, so a busy
//! namespace costs a few reads a minute, not one per pod. Nothing here fails a request: a
//! Secret that is missing or unreadable is passed over (logged at debug), one that cannot
//! be parsed is passed over with a warning naming it, and the next source is tried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{LocalObjectReference, PodSpec, Secret, ServiceAccount};
use kube::{Api, Client};
use palisade_scanner::oci::auth::Credentials;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use super::{
    LoginSource, docker_config_of, parse_pull_secret, pull_secret_names, service_account_of,
};
use crate::error::{Error, report};

/// Entries past this many are pruned of the expired ones.
const MAX_ENTRIES: usize = 10_000;

/// Answers by (namespace, name), with when they were read.
type Cache<V> = Mutex<HashMap<(String, String), (Instant, V)>>;

/// Reads and caches pull Secrets and ServiceAccounts.
pub struct PullSecretReader {
    client: Client,
    ttl: Duration,
    /// `None`: missing, unreadable or unusable, until the entry expires.
    secrets: Cache<Option<Arc<Credentials>>>,
    /// The ServiceAccount's `imagePullSecrets` (empty when it cannot be read).
    accounts: Cache<Vec<LocalObjectReference>>,
}

impl std::fmt::Debug for PullSecretReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullSecretReader")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PullSecretReader {
    pub fn new(client: Client, ttl: Duration) -> PullSecretReader {
        PullSecretReader {
            client,
            ttl,
            secrets: Mutex::default(),
            accounts: Mutex::default(),
        }
    }

    /// The logins of a pod in `namespace`: its pull Secrets, then its ServiceAccount's, in
    /// that order, those that could be read and parsed by `deadline`.
    pub async fn sources(
        &self,
        namespace: &str,
        spec: &PodSpec,
        deadline: Instant,
    ) -> Vec<LoginSource> {
        if namespace.is_empty() {
            return Vec::new();
        }
        let account = self
            .service_account(namespace, service_account_of(spec), deadline)
            .await;
        let names = pull_secret_names(
            spec.image_pull_secrets.as_deref().unwrap_or_default(),
            &account,
        );
        let read = names.iter().map(|name| async move {
            let credentials = self.secret(namespace, name, deadline).await?;
            Some(LoginSource {
                name: format!("Secret {namespace}/{name}"),
                credentials,
            })
        });
        futures::future::join_all(read)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn service_account(
        &self,
        namespace: &str,
        name: &str,
        deadline: Instant,
    ) -> Vec<LocalObjectReference> {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(hit) = fresh(&self.accounts, &key, self.ttl) {
            return hit;
        }
        let what = format!("ServiceAccount {namespace}/{name}");
        let refs =
            match read::<ServiceAccount>(&self.client, namespace, name, &what, deadline).await {
                Read::Found(sa) => sa.image_pull_secrets.unwrap_or_default(),
                Read::Absent => Vec::new(),
                // Not cached: the next request may have the time this one had not.
                Read::Late => return Vec::new(),
            };
        store(&self.accounts, key, refs.clone(), self.ttl);
        refs
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
        deadline: Instant,
    ) -> Option<Arc<Credentials>> {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(hit) = fresh(&self.secrets, &key, self.ttl) {
            return hit;
        }
        let what = format!("Secret {namespace}/{name}");
        let credentials = match read::<Secret>(&self.client, namespace, name, &what, deadline).await
        {
            Read::Found(secret) => match parse_pull_secret(&what, &secret) {
                Ok(c) => Some(Arc::new(c)),
                Err(reason) => {
                    let e = Error::PullSecret { reason };
                    warn!(secret = %what, error = %report(&e), "pull secret skipped");
                    None
                }
            },
            Read::Absent => None,
            Read::Late => return None,
        };
        store(&self.secrets, key, credentials.clone(), self.ttl);
        credentials
    }
}

enum Read<T> {
    Found(T),
    /// Missing, forbidden, or the API server failed: the same to the caller.
    Absent,
    /// The deadline came first.
    Late,
}

/// Half of the time left: tag resolution at the registry needs the rest.
fn read_deadline(deadline: Instant) -> Instant {
    let now = Instant::now();
    now + deadline.saturating_duration_since(now) / 2
}

async fn read<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    what: &str,
    deadline: Instant,
) -> Read<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let limit = tokio::time::Instant::from_std(read_deadline(deadline));
    match tokio::time::timeout_at(limit, api.get_opt(name)).await {
        Ok(Ok(Some(object))) => Read::Found(object),
        Ok(Ok(None)) => {
            debug!(object = %what, "not found; its pull secrets are not used");
            Read::Absent
        }
        Ok(Err(source)) => {
            let e = Error::ApiRead {
                what: what.to_owned(),
                source,
            };
            debug!(error = %report(&e), "its pull secrets are not used");
            Read::Absent
        }
        Err(_) => {
            debug!(object = %what, "not read before the request's deadline; its pull secrets are not used");
            Read::Late
        }
    }
}

fn fresh<V: Clone>(cache: &Cache<V>, key: &(String, String), ttl: Duration) -> Option<V> {
    let cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .get(key)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

fn store<V>(cache: &Cache<V>, key: (String, String), value: V, ttl: Duration) {
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() > MAX_ENTRIES {
        cache.retain(|_, (at, _)| at.elapsed() < ttl);
    }
    cache.insert(key, (Instant::now(), value));
}

/// The logins of the `kubernetes.io/dockerconfigjson` Secrets named (namespace, name), in
/// that order, as one set. A Secret that is missing, unreadable or of another form is
/// skipped with a warning naming it.
pub async fn read_docker_configs(client: &Client, refs: &[(String, String)]) -> Credentials {
    let mut credentials = Credentials::new();
    for (namespace, name) in refs {
        let what = format!("Secret {namespace}/{name}");
        let api = Api::<Secret>::namespaced(client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(secret)) => {
                let added = docker_config_of(&secret)
                    .and_then(|json| credentials.add_docker_config(&what, json));
                if let Err(reason) = added {
                    warn!(secret = %what, %reason, "registry credentials skipped");
                }
            }
            Ok(None) => warn!(secret = %what, "registry credentials skipped: no such Secret"),
            Err(e) => {
                warn!(secret = %what, error = %report(&e), "registry credentials skipped")
            }
        }
    }
    credentials
}
