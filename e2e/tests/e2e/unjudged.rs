//! An image the scanner cannot judge: a `scratch` image holding one static binary, pinned by
//! digest in the cluster's registry. Its scan finds no OS, so it finds nothing; under an
//! Enforce ScanPolicy that is a refusal that says why and how to admit it deliberately, and
//! under `onUnjudged: Warn` the pod is admitted with that warning.

use palisade_e2e::Test;
use palisade_e2e::scan::{Compression, LayerBuilder};

use crate::E2E;

const NS_DENY: &str = "e2e-unjudged";
const NS_WARN: &str = "e2e-unjudged-warn";

fn policy(name: &str, namespace: &str, on_unjudged: &str) -> String {
    format!(
        r#"apiVersion: palisade.dev/v1alpha1
kind: ScanPolicy
metadata:
  name: {name}
  labels:
    {E2E}
spec:
  mode: Enforce
  match:
    namespaces: [{namespace}]
  failOn:
    severity: Low
  onUnjudged: {on_unjudged}
  scanWait: 5s
"#
    )
}

fn pod(namespace: &str, image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: static
  namespace: {namespace}
  labels:
    {E2E}
spec:
  containers:
  - name: app
    image: {image}
"#
    )
}

/// Bytes that start like a static x86-64 ELF executable: what such an image holds, and
/// nothing a package database would describe.
fn static_binary() -> Vec<u8> {
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    elf.resize(4096, 0);
    elf.extend_from_slice(NS_DENY.as_bytes());
    elf
}

#[test]
fn an_image_that_cannot_be_judged_is_refused_or_warned_as_the_policy_says() {
    let t = Test::new("unjudged");
    t.namespace(NS_DENY, &[]);
    t.namespace(NS_WARN, &[]);
    let scan = t.env.scan();
    let layer = LayerBuilder::new()
        .file("app", static_binary())
        .build(Compression::Gzip);
    let digest = scan
        .push("e2e-unjudged/static", "1.0", &[layer])
        .expect("push");
    let image = format!("{}/e2e-unjudged/static@{digest}", scan.registry_host());
    // A report left by an earlier run on a reused cluster would be judged as it is: start
    // from none, so the scan under test writes it.
    t.kubectl([
        "delete",
        "isr",
        &digest.replace(':', "-"),
        "--ignore-not-found",
    ])
    .ok();

    t.apply("deny.yaml", &policy("e2e-unjudged", NS_DENY, "Deny"));
    t.apply("warn.yaml", &policy("e2e-unjudged-warn", NS_WARN, "Warn"));

    // The first attempts may meet the scan still queued; then the verdict is the report's.
    let file = t.write("pod-deny.yaml", &pod(NS_DENY, &image));
    let refused = t.eventually("the scratch image refused as unjudged", 120, || {
        let out = t.kubectl(["create", "-f", &file]);
        if out.success() {
            t.kubectl(["delete", "pod", "-n", NS_DENY, "static", "--wait=false"]);
            return Err(format!("admitted: {out}"));
        }
        if out.stderr.contains("could not judge") {
            Ok(out)
        } else {
            Err(out.to_string())
        }
    });
    let lines = refused.stderr_lines();
    assert_eq!(
        lines[0],
        r#"Error from server (Forbidden): error when creating "pod-deny.yaml": admission webhook "pods.palisade.dev" denied the request: Pod static: 1 violation"#,
        "{refused}"
    );
    let short = &digest["sha256:".len().."sha256:".len() + 12];
    for part in [
        format!("- ScanPolicy/e2e-unjudged: image {image} (sha256:{short}…): its scan could not judge any of it ("),
        "no OS recognised".to_owned(),
        "so finding nothing does not make it clean; this policy admits only images its scanner can judge (onUnjudged: Deny)".to_owned(),
        "ask the owner of ScanPolicy/e2e-unjudged to admit it deliberately (spec.images.exclude, or spec.ignore with id scan.unjudged, images, owner, reason, expires)".to_owned(),
        "(rule scan.unjudged at spec.containers[0].image; https://github.com/palisade-dev/palisade/blob/main/docs/rules/scan.unjudged.md)".to_owned(),
    ] {
        assert!(lines[1].contains(&part), "{part:?} not in\n{refused}");
    }
    eprintln!("kubectl printed:\n{}", refused.stderr);

    // The report says how much was judged, and why not more.
    let report = t
        .kubectl([
            "get",
            "isr",
            &digest.replace(':', "-"),
            "-o",
            "jsonpath={.status.phase} {.status.coverage} {.status.gaps[0].reason}",
        ])
        .ok();
    assert_eq!(
        report.stdout.trim(),
        "Scanned None NoOsRecognised",
        "{report}"
    );

    // onUnjudged: Warn admits it, with the reason as a warning.
    let file = t.write("pod-warn.yaml", &pod(NS_WARN, &image));
    let out = t.kubectl(["create", "-f", &file]).ok();
    assert_eq!(out.stdout.trim(), "pod/static created", "{out}");
    let warnings = out.warnings();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(
        warnings[0].starts_with(&format!(
            "Warning: ScanPolicy/e2e-unjudged-warn: image {image} (sha256:{short}…): its scan could not judge any of it ("
        )) && warnings[0].contains("admitted although its scan could not judge it (onUnjudged: Warn)"),
        "{out}"
    );
    eprintln!("kubectl printed:\n{}", out.stderr);
}
