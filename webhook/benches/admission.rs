//! In-process cost of one admission review through the real router:
//! `cargo bench -p palisade-webhook --bench admission`.
//!
//! The body (`pod-create.json`) is a Pod CREATE as the API server forwards `kubectl apply`:
//! managedFields, the last-applied annotation, the defaulted fields and the service account
//! token volume. The pod meets the restricted level and is judged by an Enforce
//! SecurityPolicy at that level, so the default case is the allow path every compliant pod
//! takes; `--case deny` makes its first container privileged.
//!
//! Without `--iters` it prints the median wall time per review, which is noisy on a shared
//! machine. `--iters N` runs exactly N reviews and prints nothing, for callgrind, whose
//! instruction counts repeat: the difference between two values of N, divided by their
//! difference, is the cost of one review without the setup (see `hack/bench-handler.sh`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::http::{Request, StatusCode, header};
use palisade_policy::PolicySet;
use palisade_webhook::{AppState, Metrics, PolicyStore, admission};
use serde_json::Value;
use tower::ServiceExt;

const POLICY: &str = "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: restricted}
spec:
  mode: Enforce
  podSecurity: {level: restricted, version: latest}
";

const POD_CREATE: &str = include_str!("pod-create.json");

/// The first container's securityContext in the fixture.
const FIRST_CONTEXT: &str =
    r#""securityContext": {"capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true,"#;

/// The body as the API server sends it: compact JSON, fields in the order of the Go types
/// (`kind` and `operation` before `object`), which a `serde_json::Value` would sort.
fn body(deny: bool) -> Bytes {
    let review = if deny {
        let privileged = FIRST_CONTEXT.replacen(": {", ": {\"privileged\": true, ", 1);
        POD_CREATE.replacen(FIRST_CONTEXT, &privileged, 1)
    } else {
        POD_CREATE.to_owned()
    };
    serde_json::from_str::<Value>(&review).expect("fixture is JSON");
    Bytes::from(compact(&review))
}

/// `json` without the whitespace between tokens.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

fn router() -> Router {
    let parsed = palisade_policy::parse_policies(POLICY).expect("policy parses");
    let (set, errors) = PolicySet::compile_all(&parsed);
    assert!(errors.is_empty(), "{errors:?}");
    let metrics = Arc::new(Metrics::new());
    admission::router(AppState::new(
        PolicyStore::fixed(set, metrics.clone()),
        metrics,
    ))
}

/// One review, answer read to the end.
async fn review(router: &Router, body: &Bytes) -> Bytes {
    let request = Request::post("/validate/pods")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.clone()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
}

struct Args {
    iters: Option<u64>,
    deny: bool,
}

fn args() -> Args {
    let mut args = Args {
        iters: None,
        deny: false,
    };
    // `cargo bench` adds `--bench`; anything not ours is ignored.
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--iters" => args.iters = it.next().and_then(|n| n.parse().ok()),
            "--case" => args.deny = it.next().as_deref() == Some("deny"),
            _ => {}
        }
    }
    args
}

fn main() {
    let args = args();
    // As deployed: JSON logs at info, so the allow path's debug line is filtered out.
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let router = router();
    let body = body(args.deny);

    runtime.block_on(async {
        let answer: Value =
            serde_json::from_slice(&review(&router, &body).await).expect("JSON answer");
        assert_eq!(
            answer["response"]["allowed"],
            Value::Bool(!args.deny),
            "{answer}"
        );
        if let Some(n) = args.iters {
            for _ in 0..n {
                black_box(review(&router, black_box(&body)).await);
            }
            return;
        }
        let case = if args.deny { "deny" } else { "allow" };
        let iters = 2_000;
        for _ in 0..iters / 10 {
            black_box(review(&router, &body).await);
        }
        let mut rounds = Vec::with_capacity(15);
        for _ in 0..15 {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(review(&router, black_box(&body)).await);
            }
            rounds.push(start.elapsed().as_nanos() as f64 / f64::from(iters));
        }
        rounds.sort_by(f64::total_cmp);
        println!(
            "{case}: Pod CREATE ({} bytes) through the router: median {:.0} ns, min {:.0} ns per review",
            body.len(),
            rounds[rounds.len() / 2],
            rounds[0]
        );
    });
}
