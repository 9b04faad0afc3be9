//! The scan gate end to end: the API server calls the webhook, which judges images by the
//! reports the operator writes. A vulnerable tag is refused with its findings, a fixed tag is
//! admitted, an ignore entry admits until it expires, an unscanned image gets `onUnscanned`
//! and then the real verdict, and a registry that is down gives a clear refusal in time.

use std::time::{Duration, Instant};

use palisade_e2e::Test;
use palisade_e2e::scan::{Blob, alpine_layer_marked};

use crate::E2E;

const NS: &str = "e2e-scan-gate";
const POLICY: &str = "e2e-scan-gate";

/// An Alpine 3.18 layer with openssl at `openssl`, like the scan test's but marked as this
/// test's: the shared registry then holds other digests, which no other test has scanned.
fn layer(openssl: &str) -> Blob {
    alpine_layer_marked(openssl, Some(NS))
}

fn policy(extra: &str) -> String {
    format!(
        r#"apiVersion: palisade.dev/v1alpha1
kind: ScanPolicy
metadata:
  name: {POLICY}
  labels:
    {E2E}
spec:
  mode: Enforce
  match:
    namespaces: [{NS}]
  failOn:
    severity: High
{extra}"#
    )
}

fn pod(name: &str, image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {NS}
  labels:
    {E2E}
spec:
  containers:
  - name: app
    image: {image}
"#
    )
}

/// Create a pod; `Ok(stderr)` when admitted (warnings), `Err(stderr)` when refused.
fn create(t: &Test, name: &str, image: &str) -> Result<String, String> {
    let file = t.write(&format!("{name}.yaml"), &pod(name, image));
    let out = t.kubectl(["create", "-f", &file]);
    if out.success() {
        t.kubectl(["delete", "pod", "-n", NS, name, "--wait=false"]);
        Ok(out.stderr)
    } else {
        Err(out.stderr)
    }
}

#[test]
fn images_are_judged_by_their_scan_reports() {
    let t = Test::new("scan-gate");
    t.namespace(NS, &[]);
    let scan = t.env.scan();
    let host = scan.registry_host().to_owned();
    // openssl 3.1.3-r0: two High findings (CVE-2023-5363 in libcrypto3 and libssl3) and two
    // Medium; 3.1.4-r5: none.
    scan.push("e2e-gate/app", "1.0", &[layer("3.1.3-r0")])
        .expect("push");
    scan.push("e2e-gate/app", "1.1", &[layer("3.1.4-r5")])
        .expect("push");
    scan.push("e2e-gate/app", "1.2", &[layer("3.1.4-r0")])
        .expect("push");
    let vulnerable = format!("{host}/e2e-gate/app:1.0");
    let fixed = format!("{host}/e2e-gate/app:1.1");
    let unscanned = format!("{host}/e2e-gate/app:1.2");

    // A registry nobody listens on: a refusal that needs no scan, so it also tells when the
    // webhook has the policy.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let gone = format!("127.0.0.1:{port}/e2e-gate/app:1.0");

    // No wait at all first: the first attempt meets an image with no report.
    t.apply("policy.yaml", &policy("  scanWait: 0s\n"));
    let started = Instant::now();
    let down = t.eventually(
        "the ScanPolicy in force (a registry that is down)",
        30,
        || match create(&t, "down", &gone) {
            Err(e) if e.contains("cannot be scanned: its digest cannot be resolved") => Ok(e),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(
        down.contains(&format!(
            "ScanPolicy/{POLICY}: image {gone}: cannot be scanned"
        )),
        "{down}"
    );
    // Reported, not asserted: the refusal came through the API server within its timeout.
    eprintln!(
        "registry down: refused within {} ms of the policy's creation (including kubectl)",
        started.elapsed().as_millis()
    );

    let first = create(&t, "first", &vulnerable).expect_err("an unscanned image refused");
    assert!(
        first.contains(
            "not scanned yet; a scan is queued, retry in a minute (kubectl get isr sha256-"
        ),
        "{first}"
    );
    assert!(
        first.contains("this policy admits only scanned images (onUnscanned: Deny)"),
        "{first}"
    );

    // A pod pinned to arm64 nodes is judged by the image's linux/arm64 scan, which the
    // webhook queues as a report of its own.
    let pinned = t.write(
        "pinned.yaml",
        &pod("pinned", &vulnerable).replace(
            "spec:\n",
            "spec:\n  nodeSelector:\n    kubernetes.io/arch: arm64\n",
        ),
    );
    let out = t.kubectl(["create", "-f", &pinned]);
    assert!(!out.success(), "an unscanned platform admitted: {out}");
    let arm64_report = out
        .stderr
        .split("kubectl get isr ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    assert!(
        arm64_report.starts_with("sha256-") && arm64_report.ends_with("-linux-arm64"),
        "{out}"
    );
    t.eventually("the linux/arm64 report queued", 30, || {
        let out = t.kubectl([
            "get",
            "isr",
            &arm64_report,
            "-o",
            "jsonpath={.spec.platform}",
        ]);
        if out.success() && out.stdout.trim() == "linux/arm64" {
            Ok(())
        } else {
            Err(out.to_string())
        }
    });

    // The operator scans the queued report; a retry gets the real verdict.
    let refused = t.eventually(
        "the vulnerable tag refused with its findings",
        90,
        || match create(&t, "vulnerable", &vulnerable) {
            Err(e) if e.contains("2 High vulnerabilities") => Ok(e),
            other => Err(format!("{other:?}")),
        },
    );
    let line = refused
        .lines()
        .find(|l| l.contains(&format!("ScanPolicy/{POLICY}")))
        .unwrap_or_default();
    assert!(
        line.contains(": 2 High vulnerabilities (CVE-2023-5363 in libcrypto3 3.1.3-r0 fixed in 3.1.4-r0, CVE-2023-5363 in libssl3 3.1.3-r0 fixed in 3.1.4-r0); this policy allows at most Medium; update the image, or ask the owner of ScanPolicy/e2e-scan-gate for an ignore entry (spec.ignore: id, reason, owner, expires)"),
        "{refused}"
    );
    assert!(
        refused.contains("denied the request: Pod vulnerable: 1 violation"),
        "{refused}"
    );

    // The fixed tag: admitted once scanned (queued by the first attempt).
    t.eventually("the fixed tag admitted", 90, || create(&t, "fixed", &fixed));

    // An ignore entry admits the vulnerable tag until it expires (the Medium findings stay
    // below the threshold).
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(20);
    let ignore = format!(
        "  scanWait: 0s\n  ignore:\n  - id: CVE-2023-5363\n    images: [\"{host}/e2e-gate/*\"]\n    reason: not reachable\n    owner: team-e2e\n    expires: \"{}\"\n",
        expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    t.apply("policy.yaml", &policy(&ignore));
    t.eventually("the ignore entry in force", 30, || {
        create(&t, "ignored", &vulnerable)
    });
    let wait = expires.duration_since(jiff::Timestamp::now());
    if let Ok(wait) = Duration::try_from(wait) {
        std::thread::sleep(wait + Duration::from_secs(1));
    }
    let expired = create(&t, "expired", &vulnerable).expect_err("refused after the expiry");
    assert!(expired.contains("2 High vulnerabilities"), "{expired}");
    assert!(
        expired.contains("(exception \"CVE-2023-5363\" expired at "),
        "{expired}"
    );

    // onUnscanned: Warn admits an image with no report, saying so; then its scan decides.
    t.apply(
        "policy.yaml",
        &policy("  scanWait: 0s\n  onUnscanned: Warn\n"),
    );
    let warned = t.eventually(
        "an unscanned image admitted with a warning",
        30,
        || match create(&t, "unscanned", &unscanned) {
            Ok(w) if w.contains("admitted without a scan (onUnscanned: Warn)") => Ok(w),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(
        warned.contains("not scanned yet; a scan is queued"),
        "{warned}"
    );
    // 3.1.4-r0 has only Medium findings: admitted without a warning once scanned.
    t.eventually(
        "the scanned image admitted without a warning",
        90,
        || match create(&t, "scanned", &unscanned) {
            Ok(w) if !w.contains("ScanPolicy") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}
