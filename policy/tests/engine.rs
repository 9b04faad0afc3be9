//! The engine end to end: policies as users write them, objects as the API server sends them.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use palisade_policy::{
    Decision, Facts, Mode, PodCarrier, PolicySet, RuleDocs, RuleId, Skipped, Subject,
    parse_policies, review, review_request,
};
use serde_json::{Value, json};

fn policies(yaml: &str) -> PolicySet {
    let parsed = parse_policies(yaml).expect("policies parse");
    let (set, errors) = PolicySet::compile_all(&parsed);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

fn now() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().expect("timestamp")
}

fn judge_manifest(set: &PolicySet, manifest: Value, ns_labels: &[(&str, &str)]) -> Decision {
    let object: DynamicObject = serde_json::from_value(manifest).expect("object");
    let subject = Subject::from_manifest(&object, "default")
        .expect("readable")
        .expect("a pod carrier");
    let labels: BTreeMap<String, String> = ns_labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    review(set, &subject, &Facts::new(Some(&labels), now()))
}

fn request(review: Value) -> AdmissionRequest<DynamicObject> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(review).expect("review");
    review.try_into().expect("has a request")
}

fn judge_request(set: &PolicySet, req: Value) -> Decision {
    review_request(set, &request(req), &Facts::new(None, now())).expect("readable")
}

fn container(name: &str, image: &str, sc: Value) -> Value {
    json!({"name": name, "image": image, "securityContext": sc})
}

fn pod(name: &str, ns: &str, containers: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"containers": containers}
    })
}

fn deployment(name: &str, ns: &str, containers: Vec<Value>) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}
        }
    })
}

const DENY_PRIVILEGED: &str = "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: no-privileged}
spec:
  privileged: Deny
";

#[test]
fn denial_has_the_documented_shape() {
    let set = policies(
        "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: restricted}
spec:
  privileged: Deny
  capabilities: {allowed: [NET_BIND_SERVICE]}
",
    );
    let d = judge_manifest(
        &set,
        deployment(
            "web",
            "shop",
            vec![container(
                "app",
                "nginx:1.19",
                json!({"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}),
            )],
        ),
        &[],
    );
    assert!(!d.allowed());
    // The rule pages live where the installation says (the chart sets the base).
    let docs = RuleDocs::new("https://docs.example.com/palisade/rules");
    assert_eq!(
        d.denial_message_with(&docs).expect("denied"),
        "Deployment web: 2 violations\n\
         - SecurityPolicy/restricted: container \"app\": securityContext.privileged=true is not allowed; remove it or set false; \
         to waive it, ask the owner of SecurityPolicy/restricted for an exception (spec.exceptions: name, rules, owner, reason, expires) \
         (rule privileged at spec.template.spec.containers[0].securityContext.privileged; https://docs.example.com/palisade/rules/privileged.md)\n\
         - SecurityPolicy/restricted: container \"app\": securityContext.capabilities.add includes \"SYS_ADMIN\", which this policy does not approve; remove it; this policy approves only: NET_BIND_SERVICE; \
         to waive it, ask the owner of SecurityPolicy/restricted for an exception (spec.exceptions: name, rules, owner, reason, expires) \
         (rule capabilities.allowed at spec.template.spec.containers[0].securityContext.capabilities.add[0]; https://docs.example.com/palisade/rules/capabilities.allowed.md)"
    );
    // By default, the project's own pages.
    assert!(d.denial_message().expect("denied").contains(
        "(rule privileged at spec.template.spec.containers[0].securityContext.privileged; \
         https://github.com/palisade-dev/palisade/blob/main/docs/rules/privileged.md)"
    ));
    assert_eq!(
        d.violations[0].field,
        "spec.template.spec.containers[0].securityContext.privileged"
    );
    assert_eq!(d.violations[0].rule, RuleId::Privileged);
    assert!(d.violations[0].compliance.iter().any(|r| r.id == "5.2.2"));
}

#[test]
fn every_carrier_is_judged_with_its_own_field_path() {
    let set = policies(DENY_PRIVILEGED);
    let c = vec![container("app", "nginx:1", json!({"privileged": true}))];
    let template = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": c}});
    let table: Vec<(Value, PodCarrier, &str)> = vec![
        (
            pod("p", "ns", c.clone()),
            PodCarrier::Pod,
            "spec.containers[0]",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"template": template}}),
            PodCarrier::Deployment,
            "spec.template.spec.containers[0]",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "x"}, "spec": {"template": template}}),
            PodCarrier::ReplicaSet,
            "spec.template.spec.containers[0]",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"}, "spec": {"template": template}}),
            PodCarrier::StatefulSet,
            "spec.template.spec.containers[0]",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "x"}, "spec": {"template": template}}),
            PodCarrier::DaemonSet,
            "spec.template.spec.containers[0]",
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}, "spec": {"template": template}}),
            PodCarrier::Job,
            "spec.template.spec.containers[0]",
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"},
                   "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
            PodCarrier::CronJob,
            "spec.jobTemplate.spec.template.spec.containers[0]",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "x"}, "spec": {"template": template}}),
            PodCarrier::ReplicationController,
            "spec.template.spec.containers[0]",
        ),
        (
            json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"}, "template": template}),
            PodCarrier::PodTemplate,
            "template.spec.containers[0]",
        ),
    ];
    for (manifest, carrier, path) in table {
        let object: DynamicObject = serde_json::from_value(manifest).expect("object");
        let subject = Subject::from_manifest(&object, "default")
            .expect("ok")
            .expect("carrier");
        assert_eq!(subject.carrier, carrier);
        let d = review(&set, &subject, &Facts::new(None, now()));
        assert!(!d.allowed(), "{carrier:?}");
        assert_eq!(
            d.violations[0].field,
            format!("{path}.securityContext.privileged"),
            "{carrier:?}"
        );
    }
    let cm: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
    )
    .expect("object");
    assert!(
        Subject::from_manifest(&cm, "default")
            .expect("ok")
            .is_none()
    );
}

#[test]
fn modes_enforce_beats_warn_beats_audit_and_all_are_reported() {
    let set = policies(
        "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: a-enforce}
spec: {mode: Enforce, privileged: Deny}
---
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: b-warn}
spec: {mode: Warn, allowPrivilegeEscalation: false}
---
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: c-audit}
spec: {mode: Audit, readOnlyRootFilesystem: true}
",
    );
    let bad = pod(
        "p",
        "ns",
        vec![container("app", "nginx:1", json!({"privileged": true}))],
    );
    let d = judge_manifest(&set, bad, &[]);
    assert!(!d.allowed());
    let msg = d.denial_message().expect("denied");
    assert!(
        msg.starts_with("Pod p: 1 violation\n- SecurityPolicy/a-enforce:"),
        "{msg}"
    );
    assert!(!msg.contains("b-warn") && !msg.contains("c-audit"));
    assert_eq!(
        d.warnings(),
        [
            "SecurityPolicy/b-warn: container \"app\": securityContext.allowPrivilegeEscalation must be false; \
             set securityContext.allowPrivilegeEscalation: false; to waive it, ask the owner of SecurityPolicy/b-warn \
             for an exception (spec.exceptions: name, rules, owner, reason, expires) (rule allowPrivilegeEscalation at \
             spec.containers[0].securityContext.allowPrivilegeEscalation; \
             https://github.com/palisade-dev/palisade/blob/main/docs/rules/allowPrivilegeEscalation.md)"
        ]
    );
    assert_eq!(d.in_mode(Mode::Audit).count(), 1);

    let unprivileged = pod("p", "ns", vec![container("app", "nginx:1", json!({}))]);
    let d = judge_manifest(&set, unprivileged, &[]);
    assert!(d.allowed());
    assert_eq!(d.warnings().len(), 1);
    assert_eq!(d.denial_message(), None);
}

#[test]
fn match_and_exclude() {
    let set = policies(
        "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: prod}
spec:
  privileged: Deny
  match:
    namespaceSelector: {matchLabels: {env: prod}}
    objectSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [debug]}]}
  exclude:
    namespaces: [prod-sandbox]
---
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: by-name}
spec:
  privileged: Deny
  match:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: payments}}
",
    );
    let privileged = |ns: &str, labels: Value| {
        let mut p = pod(
            "p",
            ns,
            vec![container("app", "nginx:1", json!({"privileged": true}))],
        );
        p["metadata"]["labels"] = labels;
        p
    };
    type Row<'a> = (Value, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let table: Vec<Row> = vec![
        (
            privileged("shop", json!({})),
            vec![("env", "prod")],
            vec!["prod"],
        ),
        (privileged("shop", json!({})), vec![("env", "dev")], vec![]),
        (
            privileged("shop", json!({"tier": "debug"})),
            vec![("env", "prod")],
            vec![],
        ),
        (
            privileged("prod-sandbox", json!({})),
            vec![("env", "prod")],
            vec![],
        ),
        // Older clusters lack the name label; the engine supplies it.
        (privileged("payments", json!({})), vec![], vec!["by-name"]),
    ];
    for (i, (manifest, ns_labels, want)) in table.into_iter().enumerate() {
        let d = judge_manifest(&set, manifest, &ns_labels);
        assert_eq!(d.matched_policies, want, "row {i}");
        assert_eq!(d.allowed(), want.is_empty(), "row {i}");
    }

    // objectSelector reads a workload's pod template labels, so the Deployment and its pods agree.
    let mut dep = deployment(
        "d",
        "shop",
        vec![container("app", "nginx:1", json!({"privileged": true}))],
    );
    dep["metadata"]["labels"] = json!({"tier": "web"});
    dep["spec"]["template"]["metadata"]["labels"] = json!({"tier": "debug"});
    assert!(judge_manifest(&set, dep, &[("env", "prod")]).allowed());
}

#[test]
fn exceptions_waive_until_they_expire() {
    let yaml = |expires: &str| {
        format!(
            "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: p}}
spec:
  privileged: Deny
  runAsNonRoot: true
  exceptions:
  - name: debug-tools
    rules: [privileged]
    namespaces: [ops]
    images: ['registry.example.com/tools/*']
    serviceAccounts: [ops/debugger]
    reason: node debugging
    owner: sre
    expires: '{expires}'
"
        )
    };
    let manifest = |image: &str, sa: &str| {
        let mut p = pod(
            "dbg",
            "ops",
            vec![container(
                "shell",
                image,
                json!({"privileged": true, "runAsNonRoot": true}),
            )],
        );
        p["spec"]["serviceAccountName"] = json!(sa);
        p
    };
    let live = policies(&yaml("2027-01-01T00:00:00Z"));
    let d = judge_manifest(
        &live,
        manifest("registry.example.com/tools/shell:1", "debugger"),
        &[],
    );
    assert!(d.allowed(), "{:?}", d.violations);
    assert_eq!(d.waived.len(), 1);
    assert_eq!(d.waived[0].exception, "debug-tools");
    // The waiver says who answers for it, why, and until when.
    assert_eq!(
        d.waived[0].describe(),
        "exception \"debug-tools\" (owner sre, until 2027-01-01T00:00:00Z): node debugging"
    );

    // Out of scope: another image, another service account.
    for (image, sa) in [
        ("docker.io/library/busybox:1", "debugger"),
        ("registry.example.com/tools/shell:1", "default"),
    ] {
        let d = judge_manifest(&live, manifest(image, sa), &[]);
        assert!(!d.allowed(), "{image} {sa}");
        assert!(d.waived.is_empty());
    }

    let expired = policies(&yaml("2026-01-01T00:00:00Z"));
    let d = judge_manifest(
        &expired,
        manifest("registry.example.com/tools/shell:1", "debugger"),
        &[],
    );
    assert!(!d.allowed());
    let msg = d.denial_message().expect("denied");
    assert!(
        msg.contains(
            "(exception \"debug-tools\" expired at 2026-01-01T00:00:00Z, so it no longer applies)"
        ),
        "{msg}"
    );
}

#[test]
fn image_scoped_exceptions_never_cover_pod_level_settings() {
    let set = policies(
        "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: p}
spec:
  podSecurity: {level: baseline}
  exceptions:
  - name: agent
    rules: ['podSecurity.*']
    images: ['registry.example.com/agent:*']
    owner: platform
    reason: the node agent needs the host
    expires: '2026-09-01T00:00:00Z'
",
    );
    let mut p = pod(
        "agent",
        "ns",
        vec![container(
            "agent",
            "registry.example.com/agent:1",
            json!({"privileged": true}),
        )],
    );
    p["spec"]["hostNetwork"] = json!(true);
    let d = judge_manifest(&set, p, &[]);
    // The container's own violation is waived; the pod's hostNetwork is not.
    assert!(!d.allowed());
    assert_eq!(d.violations.len(), 1, "{:?}", d.violations);
    assert_eq!(d.violations[0].field, "spec.hostNetwork");
    assert!(d.violations[0].container.is_none());
    assert_eq!(d.waived.len(), 1, "{:?}", d.waived);
    assert_eq!(
        d.waived[0].field,
        "spec.containers[0].securityContext.privileged"
    );
}

fn admission(
    operation: &str,
    kind: (&str, &str),
    sub: Option<&str>,
    object: Value,
    old: Option<Value>,
) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0df28fbd-5f5f-4ab9-a0e2-7f6b43e7b2a9",
            "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
            "resource": {"group": kind.0, "version": "v1", "resource": if kind.1 == "Deployment" { "deployments" } else { "pods" }},
            "subResource": sub,
            "name": object["metadata"]["name"],
            "namespace": "shop",
            "operation": operation,
            "userInfo": {"username": "dev"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

#[test]
fn updates_that_leave_the_pod_alone_are_admitted() {
    let set = policies(DENY_PRIVILEGED);
    let old = deployment(
        "web",
        "shop",
        vec![container("app", "nginx:1", json!({"privileged": true}))],
    );
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"owner": "team-a"});
    relabelled["metadata"]["finalizers"] = json!(["example.com/keep"]);
    relabelled["spec"]["template"]["metadata"]["labels"]["extra"] = json!("x");
    let d = judge_request(
        &set,
        admission(
            "UPDATE",
            ("apps", "Deployment"),
            None,
            relabelled,
            Some(old.clone()),
        ),
    );
    assert!(d.allowed());
    assert_eq!(d.skipped, Some(Skipped::PodSpecUnchanged));

    let mut new_image = old.clone();
    new_image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let d = judge_request(
        &set,
        admission(
            "UPDATE",
            ("apps", "Deployment"),
            None,
            new_image,
            Some(old.clone()),
        ),
    );
    assert!(!d.allowed());

    let mut added = old.clone();
    added["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("list")
        .push(container("sidecar", "envoy:1", json!({})));
    let d = judge_request(
        &set,
        admission("UPDATE", ("apps", "Deployment"), None, added, Some(old)),
    );
    assert!(!d.allowed());
}

#[test]
fn ephemeral_containers_in_both_forms() {
    let set = policies(DENY_PRIVILEGED);
    // Kubernetes <= 1.21: kind EphemeralContainers with only the list.
    let legacy = json!({
        "apiVersion": "v1", "kind": "EphemeralContainers",
        "metadata": {"name": "web-0", "namespace": "shop"},
        "ephemeralContainers": [{"name": "debugger", "image": "busybox", "securityContext": {"privileged": true},
                                 "targetContainerName": "app"}]
    });
    let d = judge_request(
        &set,
        admission(
            "UPDATE",
            ("", "EphemeralContainers"),
            Some("ephemeralcontainers"),
            legacy.clone(),
            Some(legacy),
        ),
    );
    let msg = d.denial_message().expect("denied");
    assert!(
        msg.starts_with("EphemeralContainers web-0: 1 violation"),
        "{msg}"
    );
    assert!(
        msg.contains("ephemeralContainer \"debugger\": securityContext.privileged=true"),
        "{msg}"
    );
    assert_eq!(
        d.violations[0].field,
        "ephemeralContainers[0].securityContext.privileged"
    );

    // Kubernetes >= 1.22: a whole Pod; judged even though it is an UPDATE.
    let old = pod(
        "web-0",
        "shop",
        vec![container("app", "nginx:1", json!({}))],
    );
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] =
        json!([{"name": "debugger", "image": "busybox", "securityContext": {"privileged": true}}]);
    let d = judge_request(
        &set,
        admission(
            "UPDATE",
            ("", "Pod"),
            Some("ephemeralcontainers"),
            new,
            Some(old),
        ),
    );
    assert!(!d.allowed());
    assert_eq!(
        d.violations[0].field,
        "spec.ephemeralContainers[0].securityContext.privileged"
    );
}

#[test]
fn requests_with_nothing_to_judge_are_skipped() {
    let set = policies(DENY_PRIVILEGED);
    let p = pod(
        "p",
        "shop",
        vec![container("app", "nginx:1", json!({"privileged": true}))],
    );
    for (op, sub) in [
        ("UPDATE", Some("status")),
        ("DELETE", None),
        ("CONNECT", Some("exec")),
    ] {
        let d = judge_request(
            &set,
            admission(op, ("", "Pod"), sub, p.clone(), Some(p.clone())),
        );
        assert!(d.allowed(), "{op} {sub:?}");
        assert_eq!(d.skipped, Some(Skipped::NotAPodCarrier), "{op} {sub:?}");
    }
    let d = judge_request(&set, admission("CREATE", ("", "Pod"), None, p, None));
    assert!(!d.allowed());
}

#[test]
fn unreadable_pod_spec_is_an_error_naming_the_field() {
    let set = policies(DENY_PRIVILEGED);
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": "nope"}});
    let err = review_request(
        &set,
        &request(admission("CREATE", ("", "Pod"), None, bad, None)),
        &Facts::new(None, now()),
    )
    .expect_err("unreadable");
    assert!(
        err.to_string()
            .starts_with("Pod p: spec is not a valid pod spec"),
        "{err}"
    );
}

#[test]
fn invalid_policies_report_every_field() {
    let parsed = parse_policies(
        "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: broken}
spec:
  podSecurity: {level: restricted, version: v1.030}
  capabilities: {allowed: [CAP_NET_RAW]}
  match:
    namespaceSelector: {matchExpressions: [{key: env, operator: Equals, values: [a]}]}
  exceptions:
  - {name: a, rules: [nope]}
  - {name: a, rules: ['*']}
",
    )
    .expect("schema-valid");
    let (set, errors) = PolicySet::compile_all(&parsed);
    assert!(set.is_empty());
    let palisade_policy::Error::InvalidPolicy { policy, problems } = &errors[0] else {
        panic!("{errors:?}")
    };
    assert_eq!(policy, "broken");
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.match.namespaceSelector.matchExpressions[0].operator",
            "spec.podSecurity.version",
            "spec.capabilities.allowed[0]",
            "spec.exceptions[0].rules[0]",
            "spec.exceptions[0].owner",
            "spec.exceptions[0].reason",
            "spec.exceptions[0].expires",
            "spec.exceptions[1].name",
            "spec.exceptions[1].owner",
            "spec.exceptions[1].reason",
            "spec.exceptions[1].expires",
        ]
    );
}

#[test]
fn unreadable_namespace_labels_refuse_only_where_they_could_change_the_verdict() {
    let set = policies(
        "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: prod-only}
spec:
  privileged: Deny
  match: {namespaceSelector: {matchLabels: {env: prod}}}
---
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: prod-advice}
spec:
  mode: Warn
  readOnlyRootFilesystem: true
  match: {namespaceSelector: {matchLabels: {env: prod}}}
---
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: shop-by-name}
spec:
  runAsNonRoot: true
  match: {namespaces: [shop]}
",
    );
    let unreadable = Facts {
        namespace_unreadable: true,
        ..Facts::new(None, now())
    };
    let judge = |privileged: bool, facts: &Facts<'_>| {
        let object: DynamicObject = serde_json::from_value(pod(
            "web",
            "billing",
            vec![container(
                "app",
                "nginx:1",
                json!({"privileged": privileged, "runAsNonRoot": true}),
            )],
        ))
        .expect("object");
        let subject = Subject::from_manifest(&object, "default")
            .expect("readable")
            .expect("a pod");
        review(&set, &subject, facts)
    };
    // A pod the label-selected Enforce policy would refuse: refused, saying why.
    let d = judge(true, &unreadable);
    assert!(!d.allowed());
    assert_eq!(
        d.denial_message().expect("denied"),
        "Pod web: cannot be judged now\n\
         - SecurityPolicy/prod-only: the labels of namespace \"billing\" could not be read from the API server in time, \
         and this policy selects namespaces by label; nothing was decided as if it had none: retry in a few seconds"
    );
    // A pod no such policy would refuse: admitted; Warn policies never block.
    let d = judge(false, &unreadable);
    assert!(d.allowed(), "{:?}", d.undecided);
    assert!(d.undecided.is_empty() && d.violations.is_empty());
    // Labels known: judged by them.
    let prod: BTreeMap<String, String> = [("env".to_owned(), "prod".to_owned())].into();
    let d = judge(true, &Facts::new(Some(&prod), now()));
    assert!(!d.allowed());
    assert_eq!(
        d.in_mode(Mode::Enforce)
            .map(|v| v.policy.as_str())
            .collect::<Vec<_>>(),
        ["prod-only"]
    );
    let none = BTreeMap::new();
    assert!(judge(true, &Facts::new(Some(&none), now())).allowed());
    // Without a watch (files, the CLI) labels are unknown but not unreadable: as before.
    assert!(judge(true, &Facts::new(None, now())).allowed());
}
