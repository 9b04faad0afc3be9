//! The agent's coverage on its own pod, for the operator's SecurityPolicy conditions: which
//! sensor runs here, why eBPF does not when it does not, and which applied rules the sensor
//! cannot see. Written as annotations by server-side apply.

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::watch;
use tracing::warn;

use crate::sensor::Coverage;

pub const SENSOR: &str = "palisade.dev/sensor";
pub const FALLBACK_REASON: &str = "palisade.dev/sensor-fallback-reason";
pub const UNCOVERED: &str = "palisade.dev/uncovered-rules";
/// The field manager of the agent's writes.
pub const FIELD_MANAGER: &str = palisade_kube_plumbing::field_manager::AGENT;

/// The apply patch for the annotations.
pub fn annotations(
    coverage: Coverage,
    fallback_reason: Option<&str>,
    uncovered: &[&str],
) -> serde_json::Value {
    let mut a = serde_json::Map::new();
    a.insert(SENSOR.into(), coverage.as_str().into());
    if let Some(r) = fallback_reason {
        let r: String = r.chars().take(512).collect();
        a.insert(FALLBACK_REASON.into(), r.into());
    }
    a.insert(UNCOVERED.into(), uncovered.join(",").into());
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"annotations": a},
    })
}

/// Writes the annotations now and whenever the uncovered rules change; retries on failure.
pub async fn publish(
    client: Client,
    namespace: String,
    pod: String,
    coverage: Coverage,
    fallback_reason: Option<String>,
    mut uncovered: watch::Receiver<Vec<&'static str>>,
) {
    let api = Api::<Pod>::namespaced(client, &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    loop {
        let patch = annotations(
            coverage,
            fallback_reason.as_deref(),
            &uncovered.borrow_and_update(),
        );
        let mut delay = std::time::Duration::from_secs(1);
        while let Err(e) = api.patch(&pod, &params, &Patch::Apply(&patch)).await {
            warn!(error = %e, "could not write the sensor's coverage on the agent's pod; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(60));
        }
        if uncovered.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotations_say_the_sensor_and_what_it_misses() {
        let a = annotations(
            Coverage::Fallback,
            Some("no BTF"),
            &["runtime.packetSocket", "runtime.ptraceAttached"],
        );
        assert_eq!(a["metadata"]["annotations"][SENSOR], "fallback");
        assert_eq!(a["metadata"]["annotations"][FALLBACK_REASON], "no BTF");
        assert_eq!(
            a["metadata"]["annotations"][UNCOVERED],
            "runtime.packetSocket,runtime.ptraceAttached"
        );
        let a = annotations(Coverage::Ebpf, None, &[]);
        assert_eq!(a["metadata"]["annotations"][UNCOVERED], "");
        assert!(a["metadata"]["annotations"].get(FALLBACK_REASON).is_none());
    }
}
