//! ScanPolicy status and the background audit of running images: a valid ScanPolicy is
//! Ready for its generation, an invalid one says which field is wrong; pods already
//! running a vulnerable image (admitted by an Audit-mode policy) show up in the
//! ScanPolicy's Scanned / Failing columns, in the namespace's PolicyReport, in an Event
//! and in the operator's metrics.

use palisade_e2e::Test;
use palisade_e2e::scan::{Blob, alpine_layer_marked};
use serde_json::Value;

use crate::{E2E, cell, table};

const NS: &str = "e2e-scan-audit";
const POLICY: &str = "e2e-scan-audit";

/// An Alpine 3.18 layer with openssl at `openssl`, marked as this test's so that its
/// digests are scanned for it alone.
fn layer(openssl: &str) -> Blob {
    alpine_layer_marked(openssl, Some(NS))
}

fn policy(scan_wait: &str) -> String {
    format!(
        r#"apiVersion: palisade.dev/v1alpha1
kind: ScanPolicy
metadata:
  name: {POLICY}
  labels:
    {E2E}
spec:
  mode: Audit
  match:
    namespaces: [{NS}]
  failOn:
    severity: High
  scanWait: {scan_wait}
"#
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
  automountServiceAccountToken: false
  containers:
  - name: app
    image: {image}
"#
    )
}

fn policy_json(t: &Test) -> Value {
    let out = t.kubectl(["get", "scanpol", POLICY, "-o", "json"]).ok();
    serde_json::from_str(&out.stdout).expect("ScanPolicy JSON")
}

/// Wait until Ready has `status` for the policy's current generation; returns the policy.
fn wait_ready(t: &Test, status: &str) -> Value {
    t.eventually(
        &format!("ScanPolicy {POLICY} Ready={status} for its generation"),
        60,
        || {
            let p = policy_json(t);
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .cloned()
                .unwrap_or_default();
            let generation = &p["metadata"]["generation"];
            if ready["status"] == status
                && &ready["observedGeneration"] == generation
                && &p["status"]["observedGeneration"] == generation
            {
                Ok(p)
            } else {
                Err(format!("generation {generation}, status {}", p["status"]))
            }
        },
    )
}

#[test]
fn scan_policy_status_and_the_audit_of_running_images() {
    let t = Test::new("scan-audit");
    t.namespace(NS, &[]);
    let scan = t.env.scan();
    let host = scan.registry_host().to_owned();
    // openssl 3.1.3-r0: two High findings (CVE-2023-5363) and two Medium; 3.1.4-r5: none.
    let vulnerable_digest = scan
        .push("e2e-scan-audit/app", "1.0", &[layer("3.1.3-r0")])
        .expect("push");
    scan.push("e2e-scan-audit/app", "1.1", &[layer("3.1.4-r5")])
        .expect("push");
    let vulnerable = format!("{host}/e2e-scan-audit/app:1.0");
    let fixed = format!("{host}/e2e-scan-audit/app:1.1");

    t.apply("policy.yaml", &policy("0s"));
    let p = wait_ready(&t, "True");
    let ready = &p["status"]["conditions"][0];
    assert_eq!(ready["reason"], "Valid", "{p}");
    assert_eq!(
        ready["message"],
        "generation 1 in force (Audit mode; fails on High or above; onUnscanned Deny; onUnjudged Deny; scanWait 0s)",
        "{p}"
    );

    // Audit mode admits both; the operator scans what runs, and the audit judges it.
    for (name, image) in [("vulnerable", &vulnerable), ("fixed", &fixed)] {
        let out = t.apply(&format!("{name}.yaml"), &pod(name, image));
        assert_eq!(out.stdout.trim(), format!("pod/{name} created"), "{out}");
    }
    let p = t.eventually("two images scanned, one failing", 120, || {
        let p = policy_json(&t);
        let s = &p["status"];
        if s["imagesScanned"] == 2 && s["imagesFailing"] == 1 {
            Ok(p)
        } else {
            Err(format!("status {s}"))
        }
    });
    assert!(p["status"]["lastEvaluationTime"].is_string(), "{p}");
    // The Ready condition is the controller's; the counts did not disturb it.
    assert_eq!(p["status"]["conditions"][0]["status"], "True", "{p}");
    let out = t.kubectl(["get", "scanpol", POLICY]).ok();
    let rows = table(&out.stdout);
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(cell(&rows[0], "READY"), "True", "{out}");
    assert_eq!(cell(&rows[0], "SCANNED"), "2", "{out}");
    assert_eq!(cell(&rows[0], "FAILING"), "1", "{out}");

    // The namespace's PolicyReport names the pod, the image and what to do.
    let result = t.eventually("the PolicyReport result", 30, || {
        let out = t.kubectl(["get", "policyreport", "-n", NS, "-o", "json"]);
        if !out.success() {
            return Err(out.to_string());
        }
        let list: Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
            .find(|r| r["policy"] == POLICY)
            .ok_or_else(|| format!("no result of {POLICY}: {}", out.stdout))
    });
    assert_eq!(result["rule"], "scan.vulnerabilities", "{result}");
    assert_eq!(result["category"], "Image Vulnerabilities", "{result}");
    assert_eq!(result["result"], "fail", "{result}");
    assert_eq!(result["properties"]["policyKind"], "ScanPolicy", "{result}");
    assert_eq!(result["resources"][0]["name"], "vulnerable", "{result}");
    let message = result["message"].as_str().unwrap_or_default();
    let short = &vulnerable_digest[..19];
    assert!(
        message.contains(&format!(
            "image {vulnerable} ({short}…): 2 High vulnerabilities (CVE-2023-5363 in libcrypto3 3.1.3-r0 fixed in 3.1.4-r0"
        )),
        "{result}"
    );

    // An Event on the policy, and the gauge.
    t.eventually("the FailingImages Event", 30, || {
        let out = t.kubectl([
            "get",
            "events",
            "-A",
            "--field-selector",
            &format!("involvedObject.name={POLICY},reason=FailingImages"),
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        if out.success() && out.stdout.contains("1 image of running workloads fails") {
            Ok(())
        } else {
            Err(out.to_string())
        }
    });
    let metrics = t.env.operator_metrics().expect("operator metrics");
    for (state, n) in [("scanned", 2), ("failing", 1)] {
        let line =
            format!("palisade_scanpolicy_images{{policy=\"{POLICY}\",state=\"{state}\"}} {n}");
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // The vulnerable pod goes: the next audits count it no more.
    t.kubectl(["delete", "pod", "-n", NS, "vulnerable", "--wait=true"])
        .ok();
    t.eventually("no failing image left", 60, || {
        let s = policy_json(&t)["status"].clone();
        if s["imagesScanned"] == 1 && s["imagesFailing"] == 0 {
            Ok(())
        } else {
            Err(format!("status {s}"))
        }
    });

    // A generation that cannot be enforced is refused at apply, naming the field (the
    // schema admits any duration; admission may wait only well inside its timeout), and the
    // generation in force stays.
    let file = t.write("policy-invalid.yaml", &policy("20s"));
    let out = t.kubectl(["apply", "-f", &file]).failed();
    assert!(
        out.stderr.contains(
            r#"admission webhook "policies.palisade.dev" denied the request: ScanPolicy "e2e-scan-audit" is invalid (1 problem):"#
        ) && out.stderr.contains(
            r#"- spec.scanWait: "20s" is longer than 8s: admission must answer well inside the webhook's timeout"#
        ),
        "{out}"
    );
    let p = wait_ready(&t, "True");
    assert_eq!(p["metadata"]["generation"], 1, "{p}");
}
