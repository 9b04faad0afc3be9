//! The background audit's pure parts: which objects are judged, and the reports built from
//! the engine's decisions (summary, ordering, bounds).

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::core::DynamicObject;
use palisade_operator::audit::policy_report::{Outcome, PolicyReport, Severity};
use palisade_operator::audit::{self, Judged};
use palisade_policy::PolicySet;

fn policy(name: &str, mode: &str, spec: serde_json::Value) -> serde_json::Value {
    let mut spec = spec;
    spec["mode"] = mode.into();
    serde_json::json!({
        "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
        "metadata": {"name": name, "generation": 1},
        "spec": spec,
    })
}

fn objects(values: Vec<serde_json::Value>) -> Vec<DynamicObject> {
    values
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("an object"))
        .collect()
}

fn set(values: Vec<serde_json::Value>) -> PolicySet {
    audit::compile_policies(&objects(values))
}

fn deployment(ns: &str, name: &str, uid: &str, privileged: bool, root: bool) -> serde_json::Value {
    let mut sc = serde_json::json!({"privileged": privileged});
    if root {
        sc["runAsUser"] = 0.into();
    }
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": uid},
        "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "nginx:1.25", "securityContext": sc}
        ]}}}
    })
}

fn pod(ns: &str, name: &str, uid: &str, owner: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": uid},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25",
            "securityContext": {"privileged": true}}]}
    });
    if let Some(owner) = owner {
        v["metadata"]["ownerReferences"] = serde_json::json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner,
            "controller": true
        }]);
    }
    v
}

fn judge_all(objs: &[DynamicObject], set: &PolicySet, excluded: &[String]) -> Vec<Judged> {
    let labels = HashMap::new();
    audit::top_level(objs, excluded)
        .into_iter()
        .filter_map(|o| audit::judge(o, set, &labels, Timestamp::UNIX_EPOCH))
        .collect()
}

#[test]
fn only_top_level_objects_outside_excluded_namespaces_are_judged() {
    let objs = objects(vec![
        deployment("a", "web", "d1", true, false),
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-1", "namespace": "a", "uid": "rs1",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                    "name": "web", "uid": "d1", "controller": true}]},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}}
        }),
        pod("a", "web-1-x", "p1", Some("rs1")),
        // Owner not listed (a custom controller's): the pod is judged.
        pod("a", "orphan", "p2", Some("unknown-uid")),
        pod("a", "bare", "p3", None),
        pod("kube-system", "etcd", "p4", None),
    ]);
    let judged = judge_all(&objs, &PolicySet::default(), &["kube-system".into()]);
    let names: HashSet<String> = judged
        .iter()
        .map(|j| {
            format!(
                "{}/{}",
                j.reference.kind.as_deref().unwrap_or(""),
                j.reference.name.as_deref().unwrap_or("")
            )
        })
        .collect();
    let want: HashSet<String> = ["Deployment/web", "Pod/orphan", "Pod/bare"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, want);
}

#[test]
fn summary_counts_passes_per_policy_and_violations_by_mode() {
    let set = set(vec![
        policy(
            "enforce-priv",
            "Enforce",
            serde_json::json!({"privileged": "Deny"}),
        ),
        policy(
            "warn-root",
            "Warn",
            serde_json::json!({"runAsNonRoot": true}),
        ),
        policy(
            "audit-priv",
            "Audit",
            serde_json::json!({"privileged": "Deny"}),
        ),
    ]);
    let objs = objects(vec![
        deployment("a", "bad", "1", true, false),
        deployment("a", "good", "2", false, false),
        deployment("b", "good", "3", false, false),
    ]);
    let judged = judge_all(&objs, &set, &[]);
    let f = audit::build_reports(
        &judged,
        &set,
        100,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::default(),
    );
    let a = &f.reports["a"].summary;
    let b = &f.reports["b"].summary;
    // Every object runs as root (no runAsNonRoot): one warn each.
    // a/bad: 2 fails (enforce + audit), 1 warn; a/good: 2 passes, 1 warn.
    assert_eq!((a.pass, a.fail, a.warn, a.error), (2, 2, 2, 0), "{a:?}");
    assert_eq!((b.pass, b.fail, b.warn, b.error), (2, 0, 1, 0), "{b:?}");
    assert_eq!(f.violations("enforce-priv"), 1);
    assert_eq!(f.violations("audit-priv"), 1);
    assert_eq!(f.violations("warn-root"), 3);
    assert_eq!(f.by_policy["audit-priv"]["privileged"], 1);
    // Results: one per violation, most severe first.
    let modes: Vec<&str> = f.reports["a"]
        .results
        .iter()
        .map(|r| r.properties["mode"].as_str())
        .collect();
    assert_eq!(modes, ["Enforce", "Warn", "Warn", "Audit"]);
}

#[test]
fn a_result_names_policy_rule_field_container_and_fix() {
    let set = set(vec![policy(
        "audit-priv",
        "Audit",
        serde_json::json!({"privileged": "Deny"}),
    )]);
    let objs = objects(vec![deployment("a", "web", "d1", true, false)]);
    let f = audit::build_reports(
        &judge_all(&objs, &set, &[]),
        &set,
        100,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::default(),
    );
    let r = &f.reports["a"].results[0];
    assert_eq!(r.policy, "audit-priv");
    assert_eq!(r.rule.as_deref(), Some("privileged"));
    assert_eq!(r.result, Some(Outcome::Fail));
    assert_eq!(r.severity, Some(Severity::Low));
    assert_eq!(r.source.as_deref(), Some("palisade"));
    assert_eq!(
        r.properties["field"],
        "spec.template.spec.containers[0].securityContext.privileged"
    );
    assert_eq!(r.properties["container"], "app");
    assert_eq!(r.properties["mode"], "Audit");
    let message = r.message.as_deref().unwrap_or("");
    assert!(
        message.contains("\"app\"") && message.contains("privileged"),
        "{message}"
    );
    assert!(message.contains("; "), "message and fix: {message}");
    // What auditors filter on: the compliance references and the rule's page.
    for (key, value) in [
        ("cis-kubernetes", "5.2.2"),
        ("nist-sp-800-53", "AC-6"),
        ("nist-sp-800-190", "4.4.3"),
        ("mitre-attack", "T1611"),
        (
            "docs",
            "https://github.com/palisade-dev/palisade/blob/main/docs/rules/privileged.md",
        ),
    ] {
        assert_eq!(
            r.properties.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    let res = &r.resources[0];
    assert_eq!(
        (
            res.kind.as_deref(),
            res.name.as_deref(),
            res.namespace.as_deref(),
            res.api_version.as_deref(),
            res.uid.as_deref()
        ),
        (
            Some("Deployment"),
            Some("web"),
            Some("a"),
            Some("apps/v1"),
            Some("d1")
        )
    );
}

#[test]
fn reports_are_bounded_and_keep_the_most_severe() {
    let set = set(vec![
        policy(
            "audit-priv",
            "Audit",
            serde_json::json!({"privileged": "Deny"}),
        ),
        policy(
            "enforce-root",
            "Enforce",
            serde_json::json!({"runAsNonRoot": true}),
        ),
    ]);
    let mut values = Vec::new();
    for i in 0..30 {
        values.push(deployment(
            "a",
            &format!("w{i:02}"),
            &format!("u{i}"),
            true,
            false,
        ));
    }
    let judged = judge_all(&objects(values), &set, &[]);
    for max in [0usize, 1, 7, 100] {
        let f = audit::build_reports(
            &judged,
            &set,
            max,
            Timestamp::UNIX_EPOCH,
            &palisade_policy::RuleDocs::default(),
        );
        let body = &f.reports["a"];
        assert_eq!(body.results.len(), max.min(60), "max {max}");
        // The summary counts everything whatever the bound.
        assert_eq!(body.summary.fail, 60);
        assert!(
            body.results
                .iter()
                .take(30)
                .all(|r| r.policy == "enforce-root"),
            "Enforce first"
        );
    }
    // Stable: the same input gives the same report.
    let a = audit::build_reports(
        &judged,
        &set,
        10,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::default(),
    );
    let b = audit::build_reports(
        &judged,
        &set,
        10,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::default(),
    );
    assert_eq!(a, b);
}

#[test]
fn unreadable_objects_are_errors_and_unmatched_policies_count_zero() {
    let set = set(vec![policy(
        "only-prod",
        "Enforce",
        serde_json::json!({"privileged": "Deny", "match": {"namespaces": ["prod"]}}),
    )]);
    let objs = objects(vec![
        deployment("dev", "web", "1", true, false),
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "broken", "namespace": "dev", "uid": "2"},
            "spec": {"containers": "not a list"}
        }),
    ]);
    let f = audit::build_reports(
        &judge_all(&objs, &set, &[]),
        &set,
        100,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::default(),
    );
    let s = &f.reports["dev"].summary;
    assert_eq!((s.pass, s.fail, s.warn, s.error), (0, 0, 0, 1), "{s:?}");
    assert_eq!(f.reports["dev"].results[0].result, Some(Outcome::Error));
    assert_eq!(f.violations("only-prod"), 0);
    assert!(f.by_policy.contains_key("only-prod"));
}

#[test]
fn an_invalid_generation_is_audited_with_the_enforced_one() {
    let mut p = policy(
        "p",
        "Audit",
        serde_json::json!({"exceptions": [{"name": "x", "rules": ["nope"]}]}),
    );
    p["metadata"]["generation"] = 2.into();
    p["status"] = serde_json::json!({"enforced": {"generation": 1, "spec": {"mode": "Audit", "privileged": "Deny"}}});
    let set = set(vec![p]);
    assert_eq!(set.len(), 1);
    let f = audit::build_reports(
        &judge_all(
            &objects(vec![deployment("a", "w", "1", true, false)]),
            &set,
            &[],
        ),
        &set,
        100,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::default(),
    );
    assert_eq!(f.violations("p"), 1);
}

#[test]
fn a_report_serializes_with_top_level_fields() {
    let set = set(vec![policy(
        "audit-priv",
        "Audit",
        serde_json::json!({"privileged": "Deny"}),
    )]);
    let f = audit::build_reports(
        &judge_all(
            &objects(vec![deployment("a", "w", "1", true, false)]),
            &set,
            &[],
        ),
        &set,
        100,
        Timestamp::from_second(1_700_000_000).expect("a time"),
        &palisade_policy::RuleDocs::default(),
    );
    let report = PolicyReport::new(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(audit::report_name("a")),
            namespace: Some("a".into()),
            ..Default::default()
        },
        f.reports["a"].clone(),
    );
    let v = serde_json::to_value(&report).expect("serializes");
    assert_eq!(v["apiVersion"], "wgpolicyk8s.io/v1alpha2");
    assert_eq!(v["kind"], "PolicyReport");
    assert_eq!(v["metadata"]["name"], "palisade-a");
    assert_eq!(v["summary"]["fail"], 1);
    assert_eq!(v["results"][0]["result"], "fail");
    assert_eq!(v["results"][0]["severity"], "low");
    assert_eq!(v["results"][0]["timestamp"]["seconds"], 1_700_000_000i64);
    assert!(v.get("spec").is_none());
    let back: PolicyReport = serde_json::from_value(v).expect("reads back");
    assert_eq!(back, report);
}

#[test]
fn generation_changes_trigger_audits_but_status_writes_do_not() {
    use kube::runtime::watcher::Event;
    let obj = |name: &str, generation: i64, status: u64| -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
            "metadata": {"name": name, "generation": generation},
            "status": {"violations": status}
        }))
        .expect("an object")
    };
    let mut generations = std::collections::HashMap::new();
    let mut primed = false;
    let mut step = |e| audit::generation_changed(&mut generations, &mut primed, e);
    assert!(!step(Event::Init));
    assert!(!step(Event::InitApply(obj("a", 1, 0))));
    assert!(!step(Event::InitDone));
    assert!(!step(Event::Apply(obj("a", 1, 5))), "status only");
    assert!(step(Event::Apply(obj("a", 2, 5))), "new generation");
    assert!(step(Event::Apply(obj("b", 1, 0))), "new policy");
    assert!(step(Event::Delete(obj("b", 1, 0))), "deleted");
}

#[test]
fn empty_cluster_gives_no_reports() {
    let f = audit::build_reports(
        &[],
        &PolicySet::default(),
        100,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::default(),
    );
    assert!(f.reports.is_empty());
    assert_eq!(f.by_policy, BTreeMap::new());
}

#[test]
fn an_event_is_due_only_when_a_policy_count_changes() {
    let p = |name: &str, status: Option<i64>| {
        let mut v = policy(name, "Audit", serde_json::json!({"privileged": "Deny"}));
        if let Some(n) = status {
            v["status"] = serde_json::json!({"violations": n});
        }
        v
    };
    let policies = objects(vec![
        p("new-clean", None),
        p("new-dirty", None),
        p("same", Some(1)),
        p("fixed", Some(4)),
        p("worse", Some(1)),
    ]);
    let set = audit::compile_policies(&policies);
    let objs = objects(vec![deployment("a", "w", "1", true, false)]);
    let mut f = audit::build_reports(
        &judge_all(&objs, &set, &[]),
        &set,
        100,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::default(),
    );
    // Every policy found the one privileged Deployment; pretend two found nothing / more.
    f.by_policy.insert("new-clean".into(), BTreeMap::new());
    f.by_policy.insert("fixed".into(), BTreeMap::new());
    f.by_policy.insert(
        "worse".into(),
        BTreeMap::from([("privileged".to_owned(), 3)]),
    );
    let changes = audit::count_changes(&policies, &f);
    let got: Vec<(String, Option<i64>, u64, String)> = changes
        .iter()
        .map(|c| (c.object.name_any(), c.before, c.now, c.by_rule.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("new-dirty".to_owned(), None, 1, "privileged 1".to_owned()),
            ("fixed".to_owned(), Some(4), 0, String::new()),
            ("worse".to_owned(), Some(1), 3, "privileged 3".to_owned()),
        ]
    );
}

#[test]
fn waived_violations_are_skip_results_naming_the_exception_owner_reason_and_expiry() {
    // Within maxExceptionDays of today, as a policy must be to be applied.
    let expires = Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_hours(24 * 30))
        .expect("a time")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let set = set(vec![policy(
        "no-privileged",
        "Enforce",
        serde_json::json!({"privileged": "Deny", "exceptions": [{
            "name": "node-debug", "rules": ["privileged"], "namespaces": ["a"],
            "owner": "team-sre", "reason": "node debugging during the migration",
            "expires": expires}]}),
    )]);
    let objs = objects(vec![deployment("a", "debugger", "d1", true, false)]);
    let f = audit::build_reports(
        &judge_all(&objs, &set, &[]),
        &set,
        100,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::new("https://docs.internal/rules/"),
    );
    let body = &f.reports["a"];
    assert_eq!((body.summary.fail, body.summary.skip), (0, 1));
    let r = &body.results[0];
    assert_eq!(r.result, Some(Outcome::Skip));
    assert_eq!(r.rule.as_deref(), Some("privileged"));
    for (key, value) in [
        ("exception", "node-debug"),
        ("owner", "team-sre"),
        ("reason", "node debugging during the migration"),
        ("expires", expires.as_str()),
        ("docs", "https://docs.internal/rules/privileged.md"),
        ("cis-kubernetes", "5.2.2"),
    ] {
        assert_eq!(
            r.properties.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    assert_eq!(
        r.message.as_deref(),
        Some(
            format!(
                "waived by exception \"node-debug\" (owner team-sre, until {expires}): node debugging during the migration"
            )
            .as_str()
        )
    );
}
