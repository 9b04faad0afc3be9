//! The SecurityPolicy controller: checks each generation with the engine the webhook runs,
//! and says on the status (and in Events) whether it is in force.
//!
//! Objects are watched untyped, like the webhook does, so that one object this version
//! cannot read is reported on its own status instead of stalling the whole watch.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use palisade_crds::{SecurityPolicy, SecurityPolicyStatus};
use palisade_kube_plumbing::backoff::PerObject;
use palisade_kube_plumbing::controller::log_result;
use palisade_kube_plumbing::events::Publisher;
use palisade_kube_plumbing::lease::Health;
use palisade_policy::CompiledPolicy;
use tracing::{info, warn};

use crate::FIELD_MANAGER;
use crate::error::{Error, report};
use crate::metrics::Metrics;
use crate::status::{self, Verdict};

/// The `controller` label of this controller's metrics.
pub const CONTROLLER: &str = "securitypolicy";

/// How often a policy is checked again with no change (exception expiry, lost writes).
pub const RESYNC: Duration = Duration::from_secs(300);

/// Retry delays after API errors: doubling from 1 s, at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What every reconcile shares.
pub struct Context {
    client: Client,
    resource: ApiResource,
    events: Publisher,
    metrics: Arc<Metrics>,
    store: Store<DynamicObject>,
    /// Consecutive failures per policy, for the backoff of [`error_policy`].
    backoff: PerObject,
    /// Ready per policy as last written, for the `palisade_securitypolicies` gauge.
    ready: Mutex<BTreeMap<String, bool>>,
}

impl Context {
    fn api(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &self.resource)
    }

    fn record_ready(&self, name: &str, ready: bool) {
        let mut map = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(name.to_owned(), ready);
        // Deleted policies leave the store (there is no finalizer to reconcile them).
        let live: std::collections::HashSet<String> =
            self.store.state().iter().map(|o| o.name_any()).collect();
        map.retain(|n, _| n == name || live.contains(n));
        let ready = map.values().filter(|r| **r).count();
        self.metrics.set_policies(ready, map.len() - ready);
    }
}

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Config {
    /// `reportingInstance` of Events: the pod name or host and pid.
    pub instance: String,
}

/// Run the controller until `shutdown` fires, then finish in-flight reconciles. `health`
/// is told once the first list of SecurityPolicies is in the controller's store.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let resource = ApiResource::erase::<SecurityPolicy>(&());
    let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    let controller = Controller::new_with(api, watcher::Config::default(), resource.clone())
        .graceful_shutdown_on(shutdown);
    let store = controller.store();
    let events = Publisher::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(config.instance),
        },
    );
    let context = Arc::new(Context {
        client,
        resource,
        events,
        metrics,
        store: store.clone(),
        backoff: PerObject::new(MAX_BACKOFF),
        ready: Mutex::default(),
    });
    let readiness = async move {
        if store.wait_until_ready().await.is_ok() {
            info!(policies = store.len(), "SecurityPolicies listed");
            health.set_synced(true);
        }
    };
    let controller = controller
        .run(reconcile, error_policy, context)
        .for_each(|result| {
            log_result("SecurityPolicy controller", result);
            futures::future::ready(())
        });
    tokio::join!(controller, readiness);
    info!("SecurityPolicy controller stopped");
}

/// Check the current generation and bring the status (and Events) in line.
pub async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&object, &ctx).await;
    ctx.metrics
        .reconciled(CONTROLLER, result.is_ok(), started.elapsed());
    if result.is_ok() {
        ctx.backoff.succeeded(&object.name_any());
    }
    result
}

async fn reconcile_inner(object: &DynamicObject, ctx: &Context) -> Result<Action, Error> {
    let name = object.name_any();
    if object.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let generation = object.metadata.generation.unwrap_or(0);
    let now = Timestamp::now();
    let verdict = check(object, now);
    // A status this version cannot read is treated as none: it is rewritten whole.
    let previous: Option<SecurityPolicyStatus> = object
        .data
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    let desired = status::desired(previous.as_ref(), generation, &verdict, Time(now));
    let ready = matches!(verdict, Verdict::Valid { .. });
    if let Verdict::Valid { spec, .. } = &verdict {
        ctx.metrics.set_exceptions(
            "SecurityPolicy",
            &name,
            spec.exceptions
                .iter()
                .map(|e| crate::metrics::ExceptionInfo {
                    name: &e.name,
                    owner: e.owner.as_deref(),
                    reason: e.reason.as_deref(),
                    expires: e.expires.as_ref().map(|t| t.0),
                }),
        );
    }

    if status::needs_write(previous.as_ref(), &desired) {
        let expiry = status::expiry_notices(
            previous
                .as_ref()
                .map(|p| p.expiring_exceptions.as_slice())
                .unwrap_or_default(),
            &desired.expiring_exceptions,
            "exception",
            now,
        );
        // The Events go first: if the status write fails, the retry says them again.
        for notice in status::notice(previous.as_ref(), &desired)
            .into_iter()
            .chain(expiry)
        {
            let event = Event {
                type_: if notice.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: notice.reason.into(),
                note: Some(notice.message.clone()),
                action: "Validate".into(),
                secondary: None,
            };
            let reference = object.object_ref(&ctx.resource);
            // Events are for people; a lost one must not hold up the status.
            if let Err(e) = ctx.events.publish(&event, &reference).await {
                warn!(policy = %name, error = %report(&e), reason = notice.reason, "cannot publish Event");
            }
            if notice.warning {
                warn!(policy = %name, generation, reason = notice.reason, message = %notice.message, "SecurityPolicy needs attention");
            } else {
                info!(policy = %name, generation, message = %notice.message, "SecurityPolicy accepted");
            }
        }
        let patch = serde_json::json!({
            "apiVersion": ctx.resource.api_version,
            "kind": ctx.resource.kind,
            "status": serde_json::to_value(&desired).map_err(|source| Error::Serialize {
                policy: name.clone(),
                source,
            })?,
        });
        ctx.api()
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(Error::kube(format!(
                "write the status of SecurityPolicy {name}"
            )))?;
    }
    ctx.record_ready(&name, ready);
    Ok(Action::requeue(RESYNC))
}

/// Judge a policy object exactly as the webhook reads and compiles it.
pub fn check(object: &DynamicObject, now: Timestamp) -> Verdict {
    let value = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::Invalid {
                problems: vec![palisade_policy::Problem {
                    field: "spec".into(),
                    message: e.to_string(),
                }],
            };
        }
    };
    let policy = match palisade_policy::policy_from_value(&value) {
        Ok(p) => p,
        Err(e) => return Verdict::from_error(&e),
    };
    match CompiledPolicy::compile_at(&policy, now) {
        Ok(compiled) => Verdict::Valid {
            expired_exceptions: compiled
                .expired_exceptions(now)
                .map(str::to_owned)
                .collect(),
            expiring: compiled.expiring_exceptions(now, status::EXPIRY_WINDOW),
            spec: Box::new(policy.spec),
        },
        Err(e) => Verdict::from_error(&e),
    }
}

/// API errors: retry the object with exponential backoff, per object.
pub fn error_policy(object: Arc<DynamicObject>, _error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(CONTROLLER);
    Action::requeue(ctx.backoff.failed(&object.name_any()))
}

/// The SecurityPolicy kind as the API server names it, for other modules and tests.
pub fn resource() -> ApiResource {
    ApiResource::erase::<SecurityPolicy>(&())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: serde_json::Value) -> DynamicObject {
        serde_json::from_value(v).expect("an object")
    }

    #[test]
    fn the_check_is_the_webhooks() {
        let now = Timestamp::now();
        let ok = object(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
            "metadata": {"name": "p", "generation": 2},
            "spec": {"privileged": "Deny", "exceptions": [{"name": "old", "rules": ["privileged"],
                "owner": "sre", "reason": "migration", "expires": "2020-01-01T00:00:00Z"}]}
        }));
        match check(&ok, now) {
            Verdict::Valid {
                expired_exceptions, ..
            } => assert_eq!(expired_exceptions, ["old"]),
            v => panic!("{v:?}"),
        }
        let bad = object(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
            "metadata": {"name": "p", "generation": 3},
            "spec": {"exceptions": [{"name": "x", "rules": ["noSuchRule"]}],
                "match": {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}}
        }));
        let Verdict::Invalid { problems } = check(&bad, now) else {
            panic!("invalid");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(
            fields.contains(&"spec.exceptions[0].rules[0]"),
            "{problems:?}"
        );
        assert!(
            fields
                .iter()
                .any(|f| f.starts_with("spec.match.namespaceSelector")),
            "{problems:?}"
        );
    }
}
