//! `palisade check`: the webhook's answer for manifests on disk.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use palisade_policy::{Decision, Facts, Mode, PodCarrier, PolicySet, SecurityPolicy, Subject};
use serde_json::{Value, json};

use crate::input::{self, InputError, Sourced};
use crate::{CheckArgs, Output};

/// Parse `k=v,k2=v2`.
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not key=value"))?;
            let k = k.trim();
            if k.is_empty() {
                return Err(format!("{pair:?} has an empty key"));
            }
            Ok((k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// One judged (or skipped) object.
struct Outcome {
    source: String,
    index: usize,
    kind: String,
    name: String,
    namespace: String,
    carrier: Option<PodCarrier>,
    decision: Decision,
}

pub fn run(args: &CheckArgs) -> ExitCode {
    let (docs, manifest_errors) = input::read_all(&args.files, args.recursive);
    // Policy problems are kept apart: they stop everything, a bad manifest stops only itself.
    let (policy_docs, mut errors) = input::read_all(&args.policies, args.recursive);

    let mut policies: Vec<(String, SecurityPolicy)> = Vec::new();
    // ScanPolicies judge images by scan reports, which `palisade check` does not have
    // (`palisade scan` judges an image); they are left out here, not refused.
    for d in policy_docs
        .iter()
        .filter(|d| !is_scan_policy(&d.document.value))
    {
        match palisade_policy::policy_from_document(&d.document) {
            Ok(p) => policies.push((d.source.clone(), p)),
            Err(e) => errors.push(InputError {
                source: d.source.clone(),
                message: e.to_string(),
            }),
        }
    }
    let mut manifests = Vec::new();
    for d in docs {
        if is_policy(&d.document.value) {
            match palisade_policy::policy_from_document(&d.document) {
                Ok(p) => policies.push((d.source.clone(), p)),
                Err(e) => errors.push(InputError {
                    source: d.source.clone(),
                    message: e.to_string(),
                }),
            }
        } else if is_scan_policy(&d.document.value) {
            // Judged by image scans, which need reports: `palisade scan` covers images.
            continue;
        } else {
            manifests.push(d);
        }
    }

    let mut compiled = Vec::new();
    for (source, p) in &policies {
        match palisade_policy::CompiledPolicy::compile(p) {
            Ok(c) => compiled.push(c),
            Err(e) => errors.push(InputError {
                source: source.clone(),
                message: e.to_string(),
            }),
        }
    }
    if policies.is_empty() && errors.is_empty() {
        errors.push(InputError {
            source: "--policy".into(),
            message: "no SecurityPolicy given: pass --policy FILE|DIR (or include policies in -f)"
                .into(),
        });
    }
    // Judging against a partial policy set would print verdicts that are wrong: stop here.
    if !errors.is_empty() {
        errors.extend(manifest_errors);
        for e in &errors {
            eprintln!("error: {}: {}", e.source, e.message);
        }
        return ExitCode::from(2);
    }
    let mut errors = manifest_errors;
    let set = PolicySet::new(compiled);
    // Namespace objects among the inputs supply their own labels.
    let namespaces: BTreeMap<String, BTreeMap<String, String>> = manifests
        .iter()
        .filter(|m| m.document.value.get("kind").and_then(Value::as_str) == Some("Namespace"))
        .filter_map(|m| {
            let meta = m.document.value.get("metadata")?;
            let name = meta.get("name")?.as_str()?.to_owned();
            let labels = meta
                .get("labels")
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default();
            Some((name, labels))
        })
        .collect();
    let now = args.at.unwrap_or_else(Timestamp::now);
    let mut outcomes = Vec::new();
    for m in &manifests {
        match judge(&set, m, args, &namespaces, now) {
            Ok(o) => outcomes.push(o),
            Err(message) => errors.push(InputError {
                source: format!("{} (document {})", m.source, m.document.index),
                message,
            }),
        }
    }

    match args.output {
        Output::Text => print_text(&outcomes),
        Output::Json => print_json(&outcomes, &errors),
    }
    for e in &errors {
        eprintln!("error: {}: {}", e.source, e.message);
    }
    if !errors.is_empty() {
        ExitCode::from(2)
    } else if outcomes.iter().any(|o| !o.decision.allowed()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn is_scan_policy(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("ScanPolicy")
        && v.get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|a| a.starts_with("palisade.dev/"))
}

fn is_policy(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("SecurityPolicy")
        && v.get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|a| a.starts_with("palisade.dev/"))
}

fn judge(
    set: &PolicySet,
    m: &Sourced,
    args: &CheckArgs,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    now: Timestamp,
) -> Result<Outcome, String> {
    let v = &m.document.value;
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if kind.is_empty() {
        return Err("not a Kubernetes object: it has no kind".into());
    }
    if kind == "AdmissionReview" {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(v.clone())
            .map_err(|e| format!("not a valid AdmissionReview: {e}"))?;
        let req = review
            .request
            .ok_or("an AdmissionReview without a request has nothing to judge")?;
        let ns = req
            .namespace
            .clone()
            .unwrap_or_else(|| args.namespace.clone());
        let labels = namespace_labels(args, namespaces, &ns);
        let facts = Facts::new(Some(&labels), now);
        let decision =
            palisade_policy::review_request(set, &req, &facts).map_err(|e| e.to_string())?;
        return Ok(Outcome {
            source: m.source.clone(),
            index: m.document.index,
            kind: req.kind.kind.clone(),
            name: req.name.clone(),
            namespace: ns,
            carrier: PodCarrier::from_group_kind(&req.kind.group, &req.kind.kind),
            decision,
        });
    }
    let object: DynamicObject = serde_json::from_value(v.clone())
        .map_err(|e| format!("not a valid Kubernetes object: {e}"))?;
    let name = object.metadata.name.clone().unwrap_or_default();
    let subject = Subject::from_manifest(&object, &args.namespace).map_err(|e| e.to_string())?;
    let Some(subject) = subject else {
        return Ok(Outcome {
            source: m.source.clone(),
            index: m.document.index,
            kind,
            name,
            namespace: object
                .metadata
                .namespace
                .unwrap_or_else(|| args.namespace.clone()),
            carrier: None,
            decision: Decision::default(),
        });
    };
    let labels = namespace_labels(args, namespaces, &subject.namespace);
    let facts = Facts::new(Some(&labels), now);
    let decision = palisade_policy::review(set, &subject, &facts);
    Ok(Outcome {
        source: m.source.clone(),
        index: m.document.index,
        kind,
        name: subject.name.clone(),
        namespace: subject.namespace.clone(),
        carrier: Some(subject.carrier),
        decision,
    })
}

fn namespace_labels(
    args: &CheckArgs,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    ns: &str,
) -> BTreeMap<String, String> {
    let mut labels = match namespaces.get(ns) {
        Some(l) => l.clone(),
        None => args.namespace_labels.clone().unwrap_or_default(),
    };
    labels.insert("kubernetes.io/metadata.name".into(), ns.to_owned());
    labels
}

fn print_text(outcomes: &[Outcome]) {
    let mut out = String::new();
    let (mut admitted, mut denied, mut skipped) = (0, 0, 0);
    for o in outcomes {
        // Services, ConfigMaps, Namespaces… carry no pod: counted, not listed.
        let Some(carrier) = o.carrier else {
            skipped += 1;
            continue;
        };
        let d = &o.decision;
        for w in d.warnings() {
            let _ = writeln!(out, "Warning: {w}");
        }
        match d.denial_message() {
            Some(message) => {
                denied += 1;
                let _ = writeln!(
                    out,
                    "Error from server (Forbidden): error when creating {:?}: admission webhook {:?} denied the request: {message}",
                    o.source,
                    carrier.webhook_name()
                );
            }
            None => {
                admitted += 1;
                let why = match d.skipped {
                    Some(palisade_policy::Skipped::PodSpecUnchanged) => " (pod spec unchanged)",
                    Some(palisade_policy::Skipped::NotAPodCarrier) => " (nothing to judge)",
                    None if d.matched_policies.is_empty() => " (no policy matches)",
                    None => "",
                };
                let _ = writeln!(out, "{}/{} admitted{why}", carrier.resource(), o.name);
            }
        }
        // What kubectl would not show, but a developer checking offline wants to know.
        for v in d.in_mode(Mode::Audit) {
            let _ = writeln!(out, "  audit: {}", v.line());
        }
        for w in &d.waived {
            let _ = writeln!(
                out,
                "  waived: {}/{}: {} waives {} at {}",
                w.kind.as_str(),
                w.policy,
                w.describe(),
                w.rule,
                w.field
            );
        }
    }
    let _ = writeln!(
        out,
        "{admitted} admitted, {denied} denied, {skipped} not judged"
    );
    emit(&out);
}

fn print_json(outcomes: &[Outcome], errors: &[InputError]) {
    let results: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let d = &o.decision;
            json!({
                "source": o.source,
                "document": o.index,
                "kind": o.kind,
                "name": o.name,
                "namespace": o.namespace,
                "judged": o.carrier.is_some(),
                "allowed": d.allowed(),
                "webhook": o.carrier.map(PodCarrier::webhook_name),
                "message": d.denial_message(),
                "warnings": d.warnings(),
                "violations": d.violations,
                "waived": d.waived,
                "matchedPolicies": d.matched_policies,
                "skipped": d.skipped,
            })
        })
        .collect();
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| json!({"source": e.source, "message": e.message}))
        .collect();
    let out = json!({
        "admitted": outcomes.iter().filter(|o| o.carrier.is_some() && o.decision.allowed()).count(),
        "denied": outcomes.iter().filter(|o| !o.decision.allowed()).count(),
        "results": results,
        "errors": errors,
    });
    match serde_json::to_string_pretty(&out) {
        Ok(s) => emit(&format!("{s}\n")),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let got = parse_labels("env=prod, team=a,").expect("parses");
        assert_eq!(got.get("env").map(String::as_str), Some("prod"));
        assert_eq!(got.get("team").map(String::as_str), Some("a"));
        assert!(parse_labels("env").is_err());
        assert!(parse_labels("=x").is_err());
    }
}
