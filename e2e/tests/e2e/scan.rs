//! Image scanning in the cluster: an ImageScanReport made by hand gets its status from the
//! operator (counts, the findings, versions, an Event, the full list on disk and served with
//! the image's SBOM), and a pod's image gets a report by itself.

use palisade_e2e::Test;
use palisade_e2e::scan::alpine_layer;
use serde_json::Value;

use crate::{E2E, cell, table};

const NS: &str = "e2e-scan";

fn report_json(t: &Test, name: &str) -> Result<Value, String> {
    let out = t.kubectl(["get", "imagescanreport", name, "-o", "json"]);
    if !out.success() {
        return Err(out.to_string());
    }
    serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {out}"))
}

/// Wait until report `name` has `phase`; returns it.
fn wait_phase(t: &Test, name: &str, phase: &str) -> Value {
    t.eventually(&format!("ImageScanReport {name} is {phase}"), 90, || {
        let r = report_json(t, name)?;
        if r["status"]["phase"] == phase {
            Ok(r)
        } else {
            Err(format!("status: {}", r["status"]))
        }
    })
}

/// Report `name`'s SBOMs as the leading operator serves them: valid against the official
/// schemas, describing image `host/e2e-scan/alpine@digest` and its three Alpine packages.
fn check_served_sboms(t: &Test, name: &str, host: &str, digest: &str) {
    use palisade_oci_fixtures::sbom::{cyclonedx_1_5, spdx_2_3, violations};

    let fetch = |query: &str| -> Value {
        let path = format!("/reports/{name}/sbom{query}");
        let body = t
            .env
            .operator_get(&path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    };
    let apk_purls = |purls: Vec<&str>| -> Vec<String> {
        let mut apk: Vec<String> = purls
            .into_iter()
            .filter(|p| p.starts_with("pkg:apk/alpine/"))
            .map(str::to_owned)
            .collect();
        apk.sort();
        apk
    };

    let cyclonedx = cyclonedx_1_5().expect("CycloneDX schema");
    for query in ["", "?format=cyclonedx"] {
        let bom = fetch(query);
        assert_eq!(violations(&cyclonedx, &bom), Vec::<String>::new(), "{bom}");
        assert_eq!(bom["bomFormat"], "CycloneDX", "{bom}");
        assert_eq!(bom["specVersion"], "1.5", "{bom}");
        let image = &bom["metadata"]["component"];
        assert_eq!(image["version"], digest, "{bom}");
        assert!(
            image["name"].as_str().is_some_and(|n| n
                .ends_with(&format!("/e2e-scan/alpine@{digest}"))
                && n.contains(host)),
            "{bom}"
        );
        let purls = bom["components"]
            .as_array()
            .expect("components")
            .iter()
            .filter_map(|c| c["purl"].as_str())
            .collect();
        assert_eq!(apk_purls(purls).len(), 3, "{bom}");
    }

    let spdx = spdx_2_3().expect("SPDX schema");
    let doc = fetch("?format=spdx");
    assert_eq!(violations(&spdx, &doc), Vec::<String>::new(), "{doc}");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3", "{doc}");
    let purls = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().into_iter().flatten())
        .filter(|r| r["referenceType"] == "purl")
        .filter_map(|r| r["referenceLocator"].as_str())
        .collect();
    assert_eq!(apk_purls(purls).len(), 3, "{doc}");

    // A format that does not exist is refused; so is an unknown report.
    assert!(
        t.env
            .operator_get(&format!("/reports/{name}/sbom?format=swid"))
            .is_err()
    );
    assert!(
        t.env
            .operator_get(&format!("/reports/sha256-{}/sbom", "0".repeat(64)))
            .is_err()
    );
}

#[test]
fn reports_are_scanned_and_running_images_get_reports() {
    let t = Test::new("scan");
    let scan = t.env.scan();
    let host = scan.registry_host().to_owned();

    // openssl 3.1.3-r0: two High and two Medium findings (libcrypto3 and libssl3 each).
    let vulnerable = scan
        .push("e2e-scan/alpine", "3.18.4", &[alpine_layer("3.1.3-r0")])
        .expect("push");
    let name = vulnerable.replace(':', "-");
    t.apply(
        "report.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: ImageScanReport
metadata:
  name: {name}
  labels:
    {E2E}
spec:
  image: {host}/e2e-scan/alpine@{vulnerable}
  digest: {vulnerable}
"#
        ),
    );
    let r = wait_phase(&t, &name, "Scanned");
    let s = &r["status"];
    assert_eq!(s["ecosystem"], "Alpine:v3.18", "{s}");
    assert_eq!(s["os"], "Alpine Linux v3.18", "{s}");
    assert_eq!(s["packages"], 3, "{s}");
    assert_eq!(
        s["summary"],
        serde_json::json!({"critical": 0, "high": 2, "medium": 2, "low": 0, "unknown": 0}),
        "{s}"
    );
    assert_eq!(s["fixable"], s["summary"], "{s}");
    assert_eq!(s["findingsOmitted"], 0, "{s}");
    assert_eq!(s["failures"], 0, "{s}");
    let findings: Vec<String> = s["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {}",
                f["severity"].as_str().unwrap_or_default(),
                f["id"].as_str().unwrap_or_default(),
                f["aliases"][0].as_str().unwrap_or_default(),
                f["package"].as_str().unwrap_or_default(),
                f["fixedVersion"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            "High ALPINE-CVE-2023-5363 CVE-2023-5363 libcrypto3 3.1.4-r0",
            "High ALPINE-CVE-2023-5363 CVE-2023-5363 libssl3 3.1.4-r0",
            "Medium ALPINE-CVE-2024-0727 CVE-2024-0727 libcrypto3 3.1.4-r5",
            "Medium ALPINE-CVE-2024-0727 CVE-2024-0727 libssl3 3.1.4-r5",
        ]
    );
    let db = s["databaseVersion"].as_str().unwrap_or_default();
    assert!(db.starts_with("Alpine:v3.18@"), "{s}");
    assert!(
        s["scannerVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("palisade-scanner/")),
        "{s}"
    );
    assert!(s["scannedAt"].is_string(), "{s}");
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("4 vulnerabilities in 3 packages")),
        "{s}"
    );
    // As `kubectl get` shows it.
    let out = t.kubectl(["get", "isr", &name]).ok();
    let rows = table(&out.stdout);
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(cell(&rows[0], "PHASE"), "Scanned", "{out}");
    assert_eq!(cell(&rows[0], "CRITICAL"), "0", "{out}");
    assert_eq!(cell(&rows[0], "HIGH"), "2", "{out}");
    // The full findings, on the operator's disk (its emptyDir, readable here only when this
    // machine runs the node).
    let hex = vulnerable.trim_start_matches("sha256:");
    match t.env.operator_cache_file(&format!("reports/{hex}.json")) {
        Ok(bytes) => {
            let full: Value = serde_json::from_slice(&bytes).expect("full report JSON");
            assert_eq!(full["findings"].as_array().map(Vec::len), Some(4), "{full}");
            assert_eq!(full["databaseVersion"], db, "{full}");
        }
        Err(e) if t.env.cluster.local_dir.is_none() => {
            eprintln!("scan: the full report is not checked: {e}");
        }
        Err(e) => panic!("the full report: {e}"),
    }
    // The same findings, and the image's SBOM in both formats, from the leader's admin
    // port through the API server's proxy.
    let served: Value = serde_json::from_str(
        &t.env
            .operator_get(&format!("/reports/{name}"))
            .expect("the full report through the proxy"),
    )
    .expect("full report JSON");
    assert_eq!(
        served["findings"].as_array().map(Vec::len),
        Some(4),
        "{served}"
    );
    assert_eq!(served["databaseVersion"], db, "{served}");
    check_served_sboms(&t, &name, &host, &vulnerable);
    // An Event for people (in `default` on Kubernetes before 1.22).
    t.eventually("the Scanned Event", 30, || {
        let out = t.kubectl([
            "get",
            "events",
            "-A",
            "--field-selector",
            &format!("involvedObject.name={name},reason=Scanned"),
            "-o",
            "name",
        ]);
        if out.success() && !out.stdout.trim().is_empty() {
            Ok(())
        } else {
            Err(out.to_string())
        }
    });

    // A report whose image is not a reference fails, saying why.
    let bad_digest = format!("sha256:{}", "0".repeat(64));
    let bad = bad_digest.replace(':', "-");
    t.apply(
        "bad.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: ImageScanReport
metadata:
  name: {bad}
  labels:
    {E2E}
spec:
  image: "Not An Image!"
  digest: {bad_digest}
"#
        ),
    );
    let r = wait_phase(&t, &bad, "Failed");
    assert!(
        r["status"]["message"].as_str().is_some_and(
            |m| m.starts_with("spec.image \"Not An Image!\" is not a valid image reference: ")
        ),
        "{r}"
    );
    assert_eq!(r["status"]["failures"], 1, "{r}");

    // A pod (no policies in its namespace) runs a tag; its digest gets a report by itself.
    // Without a kubelet the pod has no imageID: the operator resolves the tag.
    let patched = scan
        .push("e2e-scan/app", "1", &[alpine_layer("3.1.4-r0")])
        .expect("push");
    t.namespace(NS, &[]);
    let out = t.apply(
        "pod.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: {NS}
  labels:
    {E2E}
spec:
  automountServiceAccountToken: false
  containers:
  - name: app
    image: {host}/e2e-scan/app:1
"#
        ),
    );
    assert_eq!(out.stdout.trim(), "pod/app created", "{out}");
    let running = patched.replace(':', "-");
    let r = wait_phase(&t, &running, "Scanned");
    assert_eq!(
        r["spec"]["image"],
        format!("{host}/e2e-scan/app@{patched}"),
        "{r}"
    );
    assert_eq!(r["spec"]["digest"], patched, "{r}");
    assert_eq!(r["status"]["summary"]["high"], 0, "{r}");
    assert_eq!(r["status"]["summary"]["medium"], 2, "{r}");

    let metrics = t.env.operator_metrics().expect("operator metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("palisade_scans_total{result=\"scanned\"}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("palisade_scan_database_info{ecosystem=\"Alpine:v3.18\""),
        "{metrics}"
    );

    for report in [&name, &bad, &running] {
        t.kubectl(["delete", "imagescanreport", report, "--ignore-not-found"]);
    }
}
