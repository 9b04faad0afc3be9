//! End-to-end tests on a real control plane (see the crate docs of `palisade_e2e`): the
//! API server calls the real webhook over TLS, and each test asserts what kubectl prints.
//!
//! One test binary, so all tests share one control plane and one webhook; each test works
//! in namespaces of its own and can run in parallel with the others.

mod audit;
mod controller;
mod crds;
mod enforce;
mod ephemeral;
mod exempt_label;
mod invalid_policy;
mod namespace_together;
mod operator_restart;
mod rotation;
mod runtime;
mod scan;
mod scan_audit;
mod scan_gate;
mod unjudged;
mod warn;
mod webhook_down;

use palisade_e2e::Test;

/// Labels every object a test creates (so that a run on a user's cluster can clean up).
pub const E2E: &str = "palisade.dev/e2e: \"true\"";

/// A SecurityPolicy violation line as denials and warnings print it: what is wrong and how to
/// fix it (`text`), how to ask for an exception, the rule id, the field of the submitted
/// object and the rule's page.
pub fn sp_line(policy: &str, text: &str, rule: &str, field: &str) -> String {
    format!(
        "SecurityPolicy/{policy}: {text}; to waive it, ask the owner of SecurityPolicy/{policy} for an exception \
         (spec.exceptions: name, rules, owner, reason, expires) (rule {rule} at {field}; \
         https://github.com/palisade-dev/palisade/blob/main/docs/rules/{rule}.md)"
    )
}

/// `kubectl get` output as (column header, cell) pairs, cut at the header's column starts.
pub fn table(out: &str) -> Vec<Vec<(String, String)>> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header.as_bytes()[i - 1] == b' '))
        .map(|(i, _)| i)
        .collect();
    lines
        .map(|row| {
            starts
                .iter()
                .enumerate()
                .map(|(n, &from)| {
                    let to = starts.get(n + 1).copied().unwrap_or(usize::MAX);
                    let cell = |s: &str| {
                        s.get(from..to.min(s.len()))
                            .unwrap_or_default()
                            .trim()
                            .to_owned()
                    };
                    (cell(header), cell(row))
                })
                .collect()
        })
        .collect()
}

pub fn cell<'a>(row: &'a [(String, String)], column: &str) -> &'a str {
    row.iter()
        .find(|(h, _)| h == column)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no column {column} in {row:?}"))
}

/// The row of `kubectl get secpol <name>` as (column, cell) pairs.
pub fn secpol_row(t: &Test, name: &str) -> Vec<(String, String)> {
    let out = t.kubectl(["get", "secpol", name]).ok();
    let mut rows = table(&out.stdout);
    assert_eq!(rows.len(), 1, "{out}");
    rows.remove(0)
}

/// `.status.conditions[Ready]` of SecurityPolicy `name`: (status, reason, message), and the
/// policy's generation and observedGeneration.
pub fn ready_condition(t: &Test, name: &str) -> (String, String, String, i64, i64) {
    let out = t.kubectl(["get", "secpol", name, "-o", "json"]).ok();
    let p: serde_json::Value = serde_json::from_str(&out.stdout).expect("SecurityPolicy JSON");
    let ready = p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    (
        text(&ready["status"]),
        text(&ready["reason"]),
        text(&ready["message"]),
        p["metadata"]["generation"].as_i64().unwrap_or(-1),
        p["status"]["observedGeneration"].as_i64().unwrap_or(-1),
    )
}

/// Wait until the operator has judged the current generation of `name` with Ready = `ready`;
/// returns the condition's (reason, message).
pub fn wait_ready(t: &Test, name: &str, ready: &str) -> (String, String) {
    t.eventually(
        &format!("SecurityPolicy {name} has Ready={ready} for its current generation"),
        60,
        || {
            let (status, reason, message, generation, observed) = ready_condition(t, name);
            if status == ready && generation == observed {
                Ok((reason, message))
            } else {
                Err(format!(
                    "Ready={status} ({reason}: {message}), generation {generation}, observed {observed}"
                ))
            }
        },
    )
}
