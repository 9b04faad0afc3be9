//! One reconcile of a ScanPolicy: compile it, then write the fields this controller owns and
//! the Events when they change; API errors back off per policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client, Resource, ResourceExt};
use palisade_crds::ScanPolicy;
use palisade_kube_plumbing::backoff::PerObject;
use palisade_kube_plumbing::events::Publisher;
use tracing::{info, warn};

use super::plan::{desired, needs_write, next_check, notice};
use crate::FIELD_MANAGER;
use crate::controllers::conditions::{Notice, expiry_notices};
use crate::error::{Error, report};
use crate::metrics::Metrics;

/// The `controller` label of this controller's metrics.
pub const CONTROLLER: &str = "scanpolicy";

/// Retry delays after API errors: doubling from 1 s, at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What every reconcile shares.
pub struct Context {
    client: Client,
    events: Publisher,
    metrics: Arc<Metrics>,
    /// Consecutive failures per policy, for the backoff of [`error_policy`].
    backoff: PerObject,
}

impl Context {
    /// The Context of a controller publishing through `events`.
    pub fn new(client: Client, events: Publisher, metrics: Arc<Metrics>) -> Context {
        Context {
            client,
            events,
            metrics,
            backoff: PerObject::new(MAX_BACKOFF),
        }
    }
}

/// Check the current generation and bring `Ready` and `observedGeneration` in line.
pub async fn reconcile(policy: Arc<ScanPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&policy, &ctx).await;
    ctx.metrics
        .reconciled(CONTROLLER, result.is_ok(), started.elapsed());
    if result.is_ok() {
        ctx.backoff.succeeded(&policy.name_any());
    }
    result
}

async fn reconcile_inner(policy: &ScanPolicy, ctx: &Context) -> Result<Action, Error> {
    let name = policy.name_any();
    if policy.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let previous = policy.status.as_ref();
    let desired = desired(policy, previous, Time(now));
    let next = Action::requeue(next_check(policy, now));
    ctx.metrics.set_exceptions(
        "ScanPolicy",
        &name,
        policy
            .spec
            .ignore
            .iter()
            .map(|e| crate::metrics::ExceptionInfo {
                name: &e.id,
                owner: e.owner.as_deref(),
                reason: e.reason.as_deref(),
                expires: e.expires.as_ref().map(|t| t.0),
            }),
    );
    if !needs_write(previous, &desired) {
        return Ok(next);
    }
    let expiry = expiry_notices(
        previous
            .map(|p| p.expiring_exceptions.as_slice())
            .unwrap_or_default(),
        &desired.expiring_exceptions,
        "ignore entry",
        now,
    );
    for Notice {
        warning,
        reason,
        message,
    } in notice(previous, &desired).into_iter().chain(expiry)
    {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(message.clone()),
            action: "Validate".into(),
            secondary: None,
        };
        let reference = policy.object_ref(&());
        // Events are for people; a lost one must not hold up the status.
        if let Err(e) = ctx.events.publish(&event, &reference).await {
            warn!(policy = %name, error = %report(&e), "cannot publish Event");
        }
        if warning {
            warn!(policy = %name, %message, "ScanPolicy invalid");
        } else {
            info!(policy = %name, %message, "ScanPolicy accepted");
        }
    }
    let patch = serde_json::json!({
        "apiVersion": ScanPolicy::api_version(&()),
        "kind": ScanPolicy::kind(&()),
        "status": {
            "conditions": desired.conditions,
            "observedGeneration": desired.observed_generation,
            "expiringExceptions": desired.expiring_exceptions,
        },
    });
    Api::<ScanPolicy>::all(ctx.client.clone())
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::kube(format!(
            "write the status of ScanPolicy {name}"
        )))?;
    Ok(next)
}

/// API errors: retry the object with exponential backoff, per object.
pub fn error_policy(policy: Arc<ScanPolicy>, _error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(CONTROLLER);
    Action::requeue(ctx.backoff.failed(&policy.name_any()))
}
