//! Audit mode: a violating workload is admitted without a word, and the operator's
//! background audit reports it — in the namespace's PolicyReport and in the policy's
//! Violations column.

use palisade_e2e::Test;
use serde_json::Value;

use crate::{E2E, cell, secpol_row, wait_ready};

const NS: &str = "e2e-audit";
const POLICY: &str = "e2e-audit";

/// The results of the PolicyReports in `NS` whose policy is ours.
fn our_results(t: &Test) -> Result<(Vec<Value>, String), String> {
    let out = t.kubectl(["get", "policyreport", "-n", NS, "-o", "json"]);
    if !out.success() {
        return Err(out.to_string());
    }
    let list: Value = serde_json::from_str(&out.stdout).map_err(|e| format!("{e}:\n{out}"))?;
    let results: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["policy"] == POLICY)
        .collect();
    Ok((results, out.stdout))
}

#[test]
fn audit_mode_admits_and_reports_in_policy_report_and_status() {
    let t = Test::new("audit");
    t.namespace(NS, &[]);
    t.apply(
        "policy.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: {POLICY}
  labels:
    {E2E}
spec:
  mode: Audit
  match:
    namespaces: [{NS}]
  privileged: Deny
"#
        ),
    );
    let (reason, message) = wait_ready(&t, POLICY, "True");
    assert_eq!(reason, "Valid", "{message}");

    // Nothing to report yet: the namespace holds nothing (no cell, or 0).
    let row = secpol_row(&t, POLICY);
    assert!(
        matches!(cell(&row, "VIOLATIONS"), "" | "<none>" | "0"),
        "{row:?}"
    );

    let file = t.write(
        "privileged-deployment.yaml",
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: privileged
  namespace: {NS}
  labels:
    {E2E}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: privileged}}
  template:
    metadata:
      labels: {{app: privileged}}
    spec:
      containers:
      - name: app
        image: registry.example.com/tools/netshoot:0.13
        securityContext:
          privileged: true
"#
        ),
    );
    // Audit mode: admitted, and kubectl prints no warning.
    let out = t.kubectl(["apply", "-f", &file]).ok();
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/privileged created",
        "{out}"
    );
    assert!(out.stderr_lines().is_empty(), "{out}");

    let (results, report) = t.eventually("the PolicyReport shows our violation", 60, || {
        let (results, text) = our_results(&t)?;
        if results.is_empty() {
            Err(text)
        } else {
            Ok((results, text))
        }
    });
    // One bad template, one result: the Deployment's, not also its ReplicaSet's and pod's.
    assert_eq!(results.len(), 1, "{report}");
    let r = &results[0];
    assert_eq!(r["policy"], POLICY, "{report}");
    assert_eq!(r["rule"], "privileged", "{report}");
    assert_eq!(r["result"], "fail", "{report}");
    assert_eq!(r["source"], "palisade", "{report}");
    let resource = &r["resources"][0];
    assert_eq!(
        (&resource["kind"], &resource["name"], &resource["namespace"]),
        (
            &Value::from("Deployment"),
            &Value::from("privileged"),
            &Value::from(NS)
        ),
        "{report}"
    );
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("securityContext.privileged=true is not allowed")),
        "{report}"
    );

    // The policy's Violations column counts it.
    t.eventually("kubectl get secpol shows 1 violation", 60, || {
        let row = secpol_row(&t, POLICY);
        match cell(&row, "VIOLATIONS") {
            "1" => Ok(()),
            other => Err(format!("VIOLATIONS {other:?} in {row:?}")),
        }
    });
    assert_eq!(cell(&secpol_row(&t, POLICY), "READY"), "True");
    assert_eq!(cell(&secpol_row(&t, POLICY), "MODE"), "Audit");

    // The Deployment and its pod exist: audit never refuses.
    let out = t
        .kubectl(["get", "deployment", "privileged", "-n", NS, "-o", "name"])
        .ok();
    assert_eq!(out.stdout.trim(), "deployment.apps/privileged", "{out}");
}
