//! Publishing Events about the operator's objects, on every supported Kubernetes version.

use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client};
use tracing::debug;

use crate::FIELD_MANAGER;

/// Publish through `events.k8s.io/v1`. Kubernetes before 1.22 refuses that API for a
/// cluster-scoped object (its Event lives in `default`, and validation wants the
/// namespaces equal); there the same Event goes through `core/v1`, which accepts it as the
/// kubelet's Node events are, so `kubectl describe secpol` shows it everywhere.
pub async fn publish(
    recorder: &Recorder,
    client: &Client,
    instance: &str,
    event: &Event,
    reference: &ObjectReference,
) -> Result<(), kube::Error> {
    match recorder.publish(event, reference).await {
        Err(kube::Error::Api(status)) if status.code == 422 && reference.namespace.is_none() => {
            debug!(message = %status.message, "events.k8s.io refused an Event about a cluster-scoped object; using core/v1");
            let now = Timestamp::now();
            let core = CoreEvent {
                metadata: ObjectMeta {
                    name: Some(format!(
                        "{}.{:x}",
                        reference.name.as_deref().unwrap_or(FIELD_MANAGER),
                        now.as_nanosecond()
                    )),
                    namespace: Some("default".into()),
                    ..ObjectMeta::default()
                },
                involved_object: reference.clone(),
                type_: Some(match event.type_ {
                    EventType::Normal => "Normal".into(),
                    EventType::Warning => "Warning".into(),
                }),
                reason: Some(event.reason.clone()),
                message: event.note.clone(),
                action: Some(event.action.clone()),
                source: Some(EventSource {
                    component: Some(FIELD_MANAGER.into()),
                    host: None,
                }),
                reporting_component: Some(FIELD_MANAGER.into()),
                reporting_instance: Some(instance.to_owned()),
                first_timestamp: Some(Time(now)),
                last_timestamp: Some(Time(now)),
                count: Some(1),
                ..CoreEvent::default()
            };
            Api::<CoreEvent>::namespaced(client.clone(), "default")
                .create(&PostParams::default(), &core)
                .await
                .map(|_| ())
        }
        other => other,
    }
}
