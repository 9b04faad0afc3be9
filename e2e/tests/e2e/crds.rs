//! The CRD as a user meets it: `kubectl apply`, `kubectl explain`, `kubectl get secpol`.

use palisade_e2e::Test;

use crate::{E2E, cell, table};

#[test]
fn crds_apply_and_show_in_explain_and_get() {
    let t = Test::new("crds");
    let crd_dir = t.env.repo.join("config/crd");

    // The harness applied the CRDs already; applying again is what a user does on upgrade.
    let out = t
        .kubectl(["apply", "-f", &format!("{}/", crd_dir.display())])
        .ok();
    // One line per CRD file; more kinds may join SecurityPolicy there.
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.contains(
            &"customresourcedefinition.apiextensions.k8s.io/securitypolicies.palisade.dev unchanged"
        ) || lines.contains(
            &"customresourcedefinition.apiextensions.k8s.io/securitypolicies.palisade.dev configured"
        ),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("customresourcedefinition.apiextensions.k8s.io/")),
        "{out}"
    );
    assert!(out.stderr_lines().is_empty(), "{out}");

    let out = t
        .kubectl(["api-resources", "--api-group=palisade.dev", "--no-headers"])
        .ok();
    // Every kind cluster-scoped, with its short name.
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            [
                "imagescanreports",
                "isr",
                "palisade.dev/v1alpha1",
                "false",
                "ImageScanReport"
            ],
            [
                "scanpolicies",
                "scanpol",
                "palisade.dev/v1alpha1",
                "false",
                "ScanPolicy"
            ],
            [
                "securitypolicies",
                "secpol",
                "palisade.dev/v1alpha1",
                "false",
                "SecurityPolicy"
            ],
        ],
        "{out}"
    );

    // The OpenAPI document is republished a moment after the CRD is established.
    let out = t.eventually("kubectl explain knows SecurityPolicy", 60, || {
        let out = t.kubectl(["explain", "securitypolicy.spec"]);
        if out.success() {
            Ok(out)
        } else {
            Err(out.to_string())
        }
    });
    let text = &out.stdout;
    assert!(
        text.starts_with("KIND:     SecurityPolicy\nVERSION:  palisade.dev/v1alpha1\n"),
        "{out}"
    );
    for field in [
        "mode",
        "match",
        "exclude",
        "podSecurity",
        "privileged",
        "runAsNonRoot",
        "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
        "capabilities",
        "images",
        "exceptions",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("   {field}\t<"))),
            "kubectl explain securitypolicy.spec lists no field {field}:\n{out}"
        );
    }
    let out = t.kubectl(["explain", "secpol.spec.exceptions"]).ok();
    for field in [
        "name",
        "rules",
        "namespaces",
        "images",
        "reason",
        "owner",
        "expires",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("   {field}\t<"))),
            "kubectl explain secpol.spec.exceptions lists no field {field}:\n{out}"
        );
    }

    t.apply(
        "columns.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: e2e-columns
  labels:
    {E2E}
spec:
  mode: Warn
  match:
    namespaces: [e2e-columns-nothing-here]
  podSecurity:
    level: baseline
    version: v1.20
"#
        ),
    );
    let out = t.kubectl(["get", "secpol", "e2e-columns"]).ok();
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "MODE", "LEVEL", "READY", "VIOLATIONS", "AGE"],
        "{out}"
    );
    let rows = table(&out.stdout);
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(cell(&rows[0], "NAME"), "e2e-columns", "{out}");
    assert_eq!(cell(&rows[0], "MODE"), "Warn", "{out}");
    assert_eq!(cell(&rows[0], "LEVEL"), "baseline", "{out}");
    assert!(cell(&rows[0], "AGE").ends_with('s'), "{out}");

    let out = t
        .kubectl(["get", "secpol", "e2e-columns", "-o", "wide"])
        .ok();
    let rows = table(&out.stdout);
    assert_eq!(cell(&rows[0], "VERSION"), "v1.20", "{out}");
}
