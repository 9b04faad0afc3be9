//! `palisade check` as a user runs it: real files, real process, exit codes and output.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn palisade(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("palisade runs");
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes()).expect("stdin written");
    }
    child.wait_with_output().expect("palisade finishes")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const POLICY: &str = "apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: restricted}
spec:
  podSecurity: {level: restricted}
";

const PRIVILEGED_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: shop}
spec:
  containers:
  - name: app
    image: nginx:1.25
    securityContext: {privileged: true}
";

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("file written");
    path.display().to_string()
}

#[test]
fn samples_give_the_documented_verdicts() {
    let out = palisade(
        &[
            "check",
            "-f",
            "config/samples/workloads",
            "-p",
            "config/samples",
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains(
        "admission webhook \"pods.palisade.dev\" denied the request: Pod debug-shell: 5 violations\n\
         - SecurityPolicy/restricted-production: container \"shell\": securityContext.privileged=true is not allowed; remove it or set false"
    ), "{stdout}");
    assert!(stdout.contains(
        "admission webhook \"workloads.palisade.dev\" denied the request: Deployment api:"
    ));
    assert!(stdout.contains("deployment.apps/web admitted\n"));
    assert!(
        stdout.contains(
            "Warning: SecurityPolicy/baseline-everywhere: volume \"varlog\" uses hostPath"
        )
    );
    assert!(stdout.contains(
        "waived: SecurityPolicy/restricted-production: exception \"payments-legacy-batch-root\""
    ));
    assert!(
        stdout.ends_with("3 admitted, 3 denied, 4 not judged\n"),
        "{stdout}"
    );
}

#[test]
fn an_exception_stops_applying_when_it_expires() {
    let out = palisade(
        &[
            "check",
            "-f",
            "config/samples/workloads/legacy-batch-cronjob.yaml",
            "-f",
            "config/samples/workloads/namespaces.yaml",
            "-p",
            "config/samples/restricted-production.yaml",
            "--at",
            "2027-04-01T00:00:00Z",
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(
        "(exception \"payments-legacy-batch-root\" expired at 2027-03-31T00:00:00Z, so it no longer applies)"
    ), "{stdout}");
}

#[test]
fn stdin_lists_and_json_output() {
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n- {{apiVersion: v1, kind: Pod, metadata: {{name: ok}}, spec: {{containers: [{{name: a, image: x}}]}}}}\n",
        serde_json::to_string(
            &serde_saphyr::from_str::<serde_json::Value>(PRIVILEGED_POD).expect("yaml")
        )
        .expect("json")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = write(
        dir.path(),
        "policy.yaml",
        "apiVersion: palisade.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {name: p}\nspec: {privileged: Deny}\n",
    );
    let out = palisade(
        &["check", "-f", "-", "-p", &policy, "-o", "json"],
        Some(&list),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["denied"], 1);
    assert_eq!(v["admitted"], 1);
    let bad = &v["results"][0];
    assert_eq!(bad["name"], "bad");
    assert_eq!(bad["allowed"], false);
    assert_eq!(bad["webhook"], "pods.palisade.dev");
    let violation = &bad["violations"][0];
    assert_eq!(violation["rule"], "privileged");
    assert_eq!(
        violation["field"],
        "spec.containers[0].securityContext.privileged"
    );
    assert_eq!(violation["container"]["name"], "app");
    assert_eq!(violation["fix"], "remove it or set false");
    assert!(
        violation["compliance"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    assert_eq!(v["results"][1]["allowed"], true);
}

#[test]
fn admission_review_documents_are_judged_like_the_webhook() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = write(dir.path(), "policy.yaml", POLICY);
    let pod: serde_json::Value = serde_saphyr::from_str(PRIVILEGED_POD).expect("yaml");
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "bad", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "dev"}, "object": pod
        }
    });
    let file = write(dir.path(), "review.json", &review.to_string());
    let out = palisade(&["check", "-f", &file, "-p", &policy], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("denied the request: Pod bad:"), "{stdout}");
}

#[test]
fn everything_admitted_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = write(
        dir.path(),
        "policy.yaml",
        "apiVersion: palisade.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {name: p}\nspec: {privileged: Deny}\n",
    );
    let ok = write(
        dir.path(),
        "ok.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: a, image: x}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
    );
    let out = palisade(&["check", "-f", &ok, "-p", &policy], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stdout),
        "pod/ok admitted\n1 admitted, 0 denied, 1 not judged\n"
    );
}

#[test]
fn bad_input_exits_two_and_names_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "pod.yaml", PRIVILEGED_POD);
    let bad_policy = write(
        dir.path(),
        "bad-policy.yaml",
        "apiVersion: palisade.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {name: p}\nspec:\n  podSecurity: {level: restricted}\n  privileged: Forbid\n",
    );
    let out = palisade(&["check", "-f", &good, "-p", &bad_policy], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&bad_policy) && stderr.contains("spec.privileged"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing is judged against a broken policy set"
    );

    let broken_yaml = write(dir.path(), "broken.yaml", "kind: Pod\nmetadata: [\n");
    let policy = write(dir.path(), "policy.yaml", POLICY);
    let out = palisade(
        &["check", "-f", &broken_yaml, "-f", &good, "-p", &policy],
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&broken_yaml), "{stderr}");
    // The readable file is still judged: bad input loses nothing else.
    assert!(text(&out.stdout).contains("Pod bad:"));

    let out = palisade(&["check", "-f", &good], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no SecurityPolicy given"));

    let out = palisade(&["check"], None);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn crds_prints_the_generated_yaml() {
    let out = palisade(&["crds"], None);
    assert_eq!(out.status.code(), Some(0));
    let printed = text(&out.stdout);
    // One YAML stream: every committed CRD, in the generator's order.
    for name in [
        "securitypolicies.palisade.dev.yaml",
        "scanpolicies.palisade.dev.yaml",
        "imagescanreports.palisade.dev.yaml",
    ] {
        let committed = std::fs::read_to_string(repo_root().join("config/crd").join(name))
            .expect("committed CRD");
        assert!(
            printed.contains(committed.trim_end()),
            "{name} is not in `palisade crds`"
        );
    }
    assert_eq!(printed.matches("kind: CustomResourceDefinition").count(), 3);
}
