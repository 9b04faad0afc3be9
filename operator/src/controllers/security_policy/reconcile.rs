//! One reconcile of a SecurityPolicy: check it, then write its status and Events when they
//! change; API errors back off per policy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use palisade_crds::{SecurityPolicy, SecurityPolicyStatus};
use palisade_kube_plumbing::backoff::PerObject;
use palisade_kube_plumbing::events::Publisher;
use tracing::{info, warn};

use tokio::sync::watch;

use super::plan::{Verdict, check, desired, needs_write, notice};
use crate::FIELD_MANAGER;
use crate::agent::fleet::{Fleet, runtime_condition, with_runtime_condition};
use crate::controllers::conditions::expiry_notices;
use crate::error::{Error, report};
use crate::metrics::Metrics;

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
    /// The node agents, for the `RuntimeSensors` condition (`None` until first seen).
    fleet: watch::Receiver<Option<Fleet>>,
}

impl Context {
    /// The Context of a controller publishing through `events`, over the policies of
    /// `store`.
    pub fn new(
        client: Client,
        resource: ApiResource,
        events: Publisher,
        metrics: Arc<Metrics>,
        store: Store<DynamicObject>,
        fleet: watch::Receiver<Option<Fleet>>,
    ) -> Context {
        Context {
            client,
            resource,
            events,
            metrics,
            store,
            backoff: PerObject::new(MAX_BACKOFF),
            ready: Mutex::default(),
            fleet,
        }
    }

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
    let mut desired = desired(previous.as_ref(), generation, &verdict, Time(now));
    // An invalid generation, or agents not seen yet, leave the condition as it is.
    let fleet = ctx.fleet.borrow().clone();
    if let (Verdict::Valid { runtime_rules, .. }, Some(fleet)) = (&verdict, fleet) {
        let condition = runtime_rules.as_ref().map(|rules| {
            runtime_condition(&fleet, rules, &desired.conditions, generation, Time(now))
        });
        desired.conditions = with_runtime_condition(desired.conditions, condition);
    }
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

    if needs_write(previous.as_ref(), &desired) {
        let expiry = expiry_notices(
            previous
                .as_ref()
                .map(|p| p.expiring_exceptions.as_slice())
                .unwrap_or_default(),
            &desired.expiring_exceptions,
            "exception",
            now,
        );
        // The Events go first: if the status write fails, the retry says them again.
        for notice in notice(previous.as_ref(), &desired)
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

/// API errors: retry the object with exponential backoff, per object.
pub fn error_policy(object: Arc<DynamicObject>, _error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(CONTROLLER);
    Action::requeue(ctx.backoff.failed(&object.name_any()))
}

/// The SecurityPolicy kind as the API server names it, for other modules and tests.
pub fn resource() -> ApiResource {
    ApiResource::erase::<SecurityPolicy>(&())
}
