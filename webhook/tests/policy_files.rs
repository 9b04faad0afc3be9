//! Policies from files: what loads, and errors that name the file and the field.

mod common;

use common::TempDir;
use palisade_webhook::error::report;
use palisade_webhook::policies::load_files;

fn policy(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: palisade.dev/v1alpha1\nkind: SecurityPolicy\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

fn load_error(files: &[std::path::PathBuf], dirs: &[std::path::PathBuf]) -> String {
    match load_files(files, dirs) {
        Ok(set) => panic!("expected an error, loaded {} policies", set.len()),
        Err(e) => report(&e),
    }
}

#[test]
fn a_bad_field_names_the_file_and_the_field() {
    let dir = TempDir::new("policies");
    let table = [
        ("  privilegd: Deny\n", "spec.privilegd"),
        ("  mode: Enforced\n", "spec.mode"),
        (
            "  capabilities:\n    allowed: [CAP_SYS_ADMIN]\n",
            "spec.capabilities.allowed",
        ),
        (
            "  podSecurity:\n    level: restricted\n    version: v2.0\n",
            "spec.podSecurity.version",
        ),
    ];
    for (i, (spec, field)) in table.into_iter().enumerate() {
        let good = dir.write(
            &format!("good-{i}.yaml"),
            &policy("fine", "  privileged: Deny\n"),
        );
        let bad = dir.write(
            &format!("bad-{i}.yaml"),
            &format!(
                "{}---\n{}",
                policy("ok", "  runAsNonRoot: true\n"),
                policy("broken", spec)
            ),
        );
        let text = load_error(&[good, bad.clone()], &[]);
        assert!(
            text.starts_with(&format!("policy file {}: ", bad.display())),
            "{text}"
        );
        assert!(text.contains(field), "{field}: {text}");
    }
}

#[test]
fn syntax_errors_and_other_kinds_name_the_file() {
    let dir = TempDir::new("policies");
    let bad = dir.write("broken.yaml", "spec: [1,\n");
    let text = load_error(std::slice::from_ref(&bad), &[]);
    assert!(
        text.starts_with(&format!("policy file {}: ", bad.display())),
        "{text}"
    );

    let pod = dir.write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
    );
    let text = load_error(&[pod], &[]);
    assert!(text.contains("expected kind SecurityPolicy"), "{text}");

    let missing = dir.path().join("missing.yaml");
    let text = load_error(std::slice::from_ref(&missing), &[]);
    assert!(
        text.starts_with(&format!("cannot read {}", missing.display())),
        "{text}"
    );
}

#[test]
fn a_directory_contributes_its_yaml_and_json_files() {
    let dir = TempDir::new("policy-dir");
    dir.write("a.yaml", &policy("a", "  privileged: Deny\n"));
    dir.write("b.yml", &policy("b", "  runAsNonRoot: true\n"));
    dir.write(
        "c.json",
        r#"{"apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy", "metadata": {"name": "c"}, "spec": {"mode": "Warn", "privileged": "Deny"}}"#,
    );
    dir.write("README.txt", "not a policy");
    dir.write(".hidden.yaml", "garbage: [");
    // A ConfigMap mount's internals are skipped.
    std::fs::create_dir(dir.path().join("..2026_01_01_00_00_00.000")).expect("mkdir");
    let set = load_files(&[], &[dir.path().to_owned()]).expect("loads");
    let names: Vec<_> = set.policies().iter().map(|p| p.name().to_owned()).collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn a_policy_defined_twice_is_an_error() {
    let dir = TempDir::new("policies");
    let first = dir.write("one.yaml", &policy("same", "  privileged: Deny\n"));
    let second = dir.write("two.yaml", &policy("same", "  runAsNonRoot: true\n"));
    let text = load_error(&[first.clone(), second.clone()], &[]);
    assert!(text.contains(&second.display().to_string()), "{text}");
    assert!(text.contains(&first.display().to_string()), "{text}");
    assert!(text.contains("\"same\""), "{text}");
}

#[test]
fn the_binary_refuses_to_start_with_a_bad_policy_file() {
    let dir = TempDir::new("policies");
    let bad = dir.write("bad.yaml", &policy("broken", "  privilegd: Deny\n"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade-webhook"))
        .arg("--policy-file")
        .arg(&bad)
        .args([
            "--tls-cert-file",
            "/nonexistent/tls.crt",
            "--tls-key-file",
            "/nonexistent/tls.key",
        ])
        .args(["--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .output()
        .expect("run palisade-webhook");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(stderr.contains("spec.privilegd"), "{stderr}");
}
