//! Cost of evaluating a typical pod, the admission hot path. Run with
//! `cargo test -p palisade-pod-security --release --test hot_path -- --ignored --nocapture`.

use std::hint::black_box;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use palisade_pod_security::{Level, PodView, Version, evaluate};

const TYPICAL: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
  annotations: {prometheus.io/scrape: "true"}
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    seccompProfile: {type: RuntimeDefault}
  initContainers:
  - name: migrate
    image: registry.example/web:1.2.3
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
  containers:
  - name: app
    image: registry.example/web:1.2.3
    ports: [{containerPort: 8080}]
    livenessProbe: {httpGet: {path: /healthz, port: 8080}}
    readinessProbe: {httpGet: {path: /ready, port: 8080}}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
  - name: sidecar
    image: registry.example/proxy:2.0
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
  volumes:
  - {name: config, configMap: {name: web}}
  - {name: tmp, emptyDir: {}}
"#;

#[test]
fn typical_pod_passes_without_allocating_output() {
    let pod: Pod = serde_saphyr::from_str(TYPICAL).expect("pod");
    let spec = pod.spec.expect("spec");
    let view = PodView {
        metadata: &pod.metadata,
        spec: &spec,
    };
    let findings = evaluate(Level::Restricted, Version::Latest, view);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(findings.capacity(), 0);
}

#[test]
#[ignore = "timing; run in release"]
fn restricted_evaluation_cost() {
    let pod: Pod = serde_saphyr::from_str(TYPICAL).expect("pod");
    let spec = pod.spec.expect("spec");
    let view = PodView {
        metadata: &pod.metadata,
        spec: &spec,
    };
    let rounds = 200_000u32;
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(evaluate(
            Level::Restricted,
            Version::Latest,
            black_box(view),
        ));
    }
    let per = start.elapsed() / rounds;
    eprintln!("restricted evaluation of a typical pod: {per:?}");
}
