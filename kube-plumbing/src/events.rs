//! Publishing Events, on every supported Kubernetes version.
//!
//! [`Publisher`] goes through `events.k8s.io/v1` and falls back to `core/v1` where an older
//! API server refuses the former; [`core_event`] and [`create_core`] write a `core/v1` Event
//! directly, for a writer that always wants that API.

use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use tracing::debug;

/// The namespace of Events about cluster-scoped objects.
const CLUSTER_EVENTS_NAMESPACE: &str = "default";

/// Publishes Events as one component (`reporter.controller`) and replica
/// (`reporter.instance`).
pub struct Publisher {
    recorder: Recorder,
    client: Client,
    reporter: Reporter,
}

impl Publisher {
    pub fn new(client: Client, reporter: Reporter) -> Publisher {
        Publisher {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
        }
    }

    /// Publish through `events.k8s.io/v1`. Kubernetes before 1.22 refuses that API for a
    /// cluster-scoped object (its Event lives in `default`, and validation wants the
    /// namespaces equal); there the same Event goes through `core/v1`, which accepts it as
    /// the kubelet's Node events are, so `kubectl describe` shows it everywhere.
    pub async fn publish(
        &self,
        event: &Event,
        reference: &ObjectReference,
    ) -> Result<(), kube::Error> {
        match self.recorder.publish(event, reference).await {
            Err(kube::Error::Api(status))
                if status.code == 422 && reference.namespace.is_none() =>
            {
                debug!(message = %status.message, "events.k8s.io refused an Event about a cluster-scoped object; using core/v1");
                let now = Timestamp::now();
                let name = format!(
                    "{}.{:x}",
                    reference
                        .name
                        .as_deref()
                        .unwrap_or(&self.reporter.controller),
                    now.as_nanosecond()
                );
                let core = CoreEvent {
                    reporting_component: Some(self.reporter.controller.clone()),
                    reporting_instance: self.reporter.instance.clone(),
                    ..core_event(reference, event, &self.reporter.controller, name, now)
                };
                create_core(&self.client, &core).await
            }
            other => other,
        }
    }
}

/// A `core/v1` Event named `name` about `reference`, from `component`, happening once at
/// `now`. It lives in the object's namespace, or in `default` for a cluster-scoped object.
pub fn core_event(
    reference: &ObjectReference,
    event: &Event,
    component: &str,
    name: String,
    now: Timestamp,
) -> CoreEvent {
    CoreEvent {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(
                reference
                    .namespace
                    .clone()
                    .unwrap_or_else(|| CLUSTER_EVENTS_NAMESPACE.into()),
            ),
            ..ObjectMeta::default()
        },
        involved_object: reference.clone(),
        type_: Some(
            match event.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        reason: Some(event.reason.clone()),
        message: event.note.clone(),
        action: Some(event.action.clone()),
        source: Some(EventSource {
            component: Some(component.into()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..CoreEvent::default()
    }
}

/// Create a `core/v1` Event in its namespace.
pub async fn create_core(client: &Client, event: &CoreEvent) -> Result<(), kube::Error> {
    let namespace = event
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(CLUSTER_EVENTS_NAMESPACE);
    Api::<CoreEvent>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), event)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_event_lives_beside_its_object_or_in_default() {
        let event = Event {
            type_: EventType::Warning,
            reason: "Reason".into(),
            note: Some("what happened".into()),
            action: "Act".into(),
            secondary: None,
        };
        let now = Timestamp::UNIX_EPOCH;
        let cluster_scoped = ObjectReference {
            kind: Some("SecurityPolicy".into()),
            name: Some("p".into()),
            ..ObjectReference::default()
        };
        let e = core_event(&cluster_scoped, &event, "component", "p.1".into(), now);
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(e.metadata.name.as_deref(), Some("p.1"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("Reason"));
        assert_eq!(e.message.as_deref(), Some("what happened"));
        assert_eq!(e.action.as_deref(), Some("Act"));
        assert_eq!(
            e.source.and_then(|s| s.component).as_deref(),
            Some("component")
        );
        assert_eq!(e.count, Some(1));
        assert_eq!(e.reporting_component, None);
        let namespaced = ObjectReference {
            namespace: Some("shop".into()),
            ..cluster_scoped
        };
        let e = core_event(&namespaced, &event, "component", "p.2".into(), now);
        assert_eq!(e.metadata.namespace.as_deref(), Some("shop"));
    }
}
