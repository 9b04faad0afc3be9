//! `spec.runtime` end to end: policies as users write them, events as the sensor reports them,
//! detections as the agent acts on them.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use palisade_policy::runtime::{Action, Hook, Open, Process};
use palisade_policy::{
    ClusterFacts, Detection, Facts, HookSet, PodFacts, PolicySet, RuntimeEvent, RuntimePolicySet,
    RuntimeRule, Subject, Verdict, parse_policies, policy_problems, review,
};
use serde_json::{Value, json};

fn now() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().expect("timestamp")
}

fn set(yaml: &str) -> RuntimePolicySet {
    let parsed = parse_policies(yaml).expect("policies parse");
    let (set, errors) = RuntimePolicySet::compile(&parsed, now());
    assert!(errors.is_empty(), "{errors:?}");
    set
}

fn pod(ns: &str, labels: &[(&str, &str)]) -> PodFacts {
    PodFacts {
        namespace: ns.into(),
        pod_name: "web-1".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        namespace_labels: BTreeMap::new(),
        service_account: "web".into(),
        container_name: "app".into(),
        image: "registry.example.com/shop/web:1.4.2".into(),
        privileged: false,
    }
}

/// `bash` started with a terminal by `kubectl exec -it`, at `at`.
fn terminal_shell(at: &str) -> RuntimeEvent {
    let at: Timestamp = at.parse().expect("timestamp");
    let ns = u64::try_from(at.as_nanosecond()).expect("after 1970");
    RuntimeEvent {
        time_ns: ns,
        process: Process {
            pid: 31337,
            vpid: 12,
            name: "bash".into(),
            exe: "/bin/bash".into(),
            tty: 34816,
            started_ns: ns,
            container_id: "ab".repeat(32),
            ..Process::default()
        },
        action: Action::Exec,
    }
}

/// `cat /etc/shadow`, which matches `runtime.readSensitiveFileUntrusted`.
fn read_shadow() -> RuntimeEvent {
    let mut e = terminal_shell("2026-06-02T00:00:00Z");
    e.process.name = "cat".into();
    e.process.exe = "/usr/bin/cat".into();
    e.process.tty = 0;
    e.process.parent_name = Some("node".into());
    e.action = Action::Open(Open {
        path: "/etc/shadow".into(),
        raw_path: "/etc/shadow".into(),
        read: true,
        ..Open::default()
    });
    e
}

fn cluster() -> ClusterFacts {
    ClusterFacts::default()
}

/// (policy, rule id, verdict in short) of each detection.
fn summary(ds: &[Detection]) -> Vec<(String, &'static str, String)> {
    ds.iter()
        .map(|d| {
            let verdict = match &d.verdict {
                Verdict::Report => "report".to_owned(),
                Verdict::Kill => "kill".to_owned(),
                Verdict::Waived {
                    exception, owner, ..
                } => format!("waived by {exception} ({})", owner.as_deref().unwrap_or("")),
            };
            (d.policy.clone(), d.rule.id(), verdict)
        })
        .collect()
}

const AUDIT_ALL: &str = "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: runtime-audit}
spec:
  exclude: {namespaces: [kube-system]}
  runtime: {}
";

#[test]
fn a_runtime_only_policy_audits_every_rule() {
    let set = set(AUDIT_ALL);
    assert_eq!(set.rules(), RuntimeRule::ALL.to_vec());
    assert_eq!(set.policy_names().collect::<Vec<_>>(), ["runtime-audit"]);

    let got = set.judge(
        &terminal_shell("2026-06-02T00:00:00Z"),
        &pod("shop", &[]),
        &cluster(),
    );
    assert_eq!(
        summary(&got),
        [(
            "runtime-audit".into(),
            "runtime.terminalShell",
            "report".into()
        )]
    );
    let d = &got[0];
    assert_eq!(d.rule.name(), "Terminal shell in container");
    assert_eq!(d.priority().as_str(), "Notice");
    assert_eq!(d.rule.mitre().collect::<Vec<_>>(), ["T1059"]);
    assert_eq!(d.rule_id().as_str(), "runtime.terminalShell");
    assert!(
        d.output
            .starts_with("Shell with a terminal started in a container | ")
            && d.output.contains(" k8s_ns=shop k8s_pod=web-1 ")
            && d.output.contains(" container_id=abababababab "),
        "{}",
        d.output
    );

    // Excluded namespace: nothing.
    let none = set.judge(
        &terminal_shell("2026-06-02T00:00:00Z"),
        &pod("kube-system", &[]),
        &cluster(),
    );
    assert_eq!(none, vec![]);
    // An event no rule matches: nothing.
    let mut quiet = terminal_shell("2026-06-02T00:00:00Z");
    quiet.process.name = "node".into();
    assert_eq!(set.judge(&quiet, &pod("shop", &[]), &cluster()), vec![]);
}

#[test]
fn admission_judges_nothing_for_a_runtime_only_policy() {
    let parsed = parse_policies(AUDIT_ALL).expect("parse");
    let (admission, errors) = PolicySet::compile_all(&parsed);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(!admission.policies()[0].judges_admission());
    assert!(admission.policies()[0].has_runtime());

    let manifest = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "nginx:latest",
            "securityContext": {"privileged": true, "runAsUser": 0}}]}
    });
    let object: DynamicObject = serde_json::from_value(manifest).expect("object");
    let subject = Subject::from_manifest(&object, "default")
        .expect("readable")
        .expect("a pod");
    let d = review(&admission, &subject, &Facts::new(None, now()));
    assert!(d.allowed());
    assert!(d.violations.is_empty() && d.waived.is_empty() && d.undecided.is_empty());
    assert!(d.matched_policies.is_empty(), "{:?}", d.matched_policies);

    // With an admission control as well, the same policy judges at admission.
    let both = parse_policies(&format!("{AUDIT_ALL}  privileged: Deny\n")).expect("parse");
    let (admission, _) = PolicySet::compile_all(&both);
    let d = review(&admission, &subject, &Facts::new(None, now()));
    assert!(!d.allowed());
    assert_eq!(d.matched_policies, ["runtime-audit"]);
}

#[test]
fn a_runtime_only_policy_with_a_namespace_selector_needs_no_labels_at_admission() {
    let parsed = parse_policies(
        "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: prod-runtime}
spec:
  match: {namespaceSelector: {matchLabels: {env: prod}}}
  runtime: {}
",
    )
    .expect("parse");
    let (admission, _) = PolicySet::compile_all(&parsed);
    assert!(!admission.uses_namespace_labels());
}

#[test]
fn enforce_kills_only_the_listed_rules_and_match_selects_pods_as_at_admission() {
    let set = set("
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: prod}
spec:
  match:
    namespaceSelector: {matchLabels: {env: prod}}
    objectSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [debug]}]}
  runtime:
    mode: Enforce
    rules: [runtime.terminalShell, runtime.readSensitiveFileUntrusted]
    enforce: [runtime.readSensitiveFileUntrusted]
");
    let prod = |labels: &[(&str, &str)]| {
        let mut p = pod("shop", labels);
        p.namespace_labels.insert("env".into(), "prod".into());
        p
    };
    let shell = terminal_shell("2026-06-02T00:00:00Z");
    type Row<'a> = (&'a str, RuntimeEvent, PodFacts, Vec<&'a str>);
    let table: Vec<Row> = vec![
        ("shell: reported", shell.clone(), prod(&[]), vec!["report"]),
        ("shadow: killed", read_shadow(), prod(&[]), vec!["kill"]),
        (
            "debug tier: not selected",
            read_shadow(),
            prod(&[("tier", "debug")]),
            vec![],
        ),
        (
            "other namespace labels",
            read_shadow(),
            pod("shop", &[]),
            vec![],
        ),
    ];
    for (name, event, pod, want) in table {
        let got: Vec<String> = summary(&set.judge(&event, &pod, &cluster()))
            .into_iter()
            .map(|(_, _, v)| v)
            .collect();
        assert_eq!(got, want, "{name}");
    }
    // A rule the policy does not apply is never judged.
    let mut module = shell.clone();
    module.action = Action::ModuleLoad;
    module.process.cap_effective = u64::MAX;
    assert_eq!(set.judge(&module, &prod(&[]), &cluster()), vec![]);
}

#[test]
fn enforce_star_kills_for_every_applied_rule_and_each_policy_reports_its_own() {
    let set = set("
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: b-kill-all}
spec:
  runtime: {mode: Enforce, enforce: ['*']}
---
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: a-audit}
spec:
  runtime: {rules: [runtime.terminalShell]}
");
    let got = set.judge(
        &terminal_shell("2026-06-02T00:00:00Z"),
        &pod("shop", &[]),
        &cluster(),
    );
    assert_eq!(
        summary(&got),
        [
            ("a-audit".into(), "runtime.terminalShell", "report".into()),
            ("b-kill-all".into(), "runtime.terminalShell", "kill".into()),
        ]
    );
    assert_eq!(got[0].output, got[1].output);
    let got = set.judge(&read_shadow(), &pod("shop", &[]), &cluster());
    assert_eq!(
        summary(&got),
        [(
            "b-kill-all".into(),
            "runtime.readSensitiveFileUntrusted",
            "kill".into()
        )]
    );
}

const WITH_EXCEPTIONS: &str = "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: prod}
spec:
  runtime: {mode: Enforce, enforce: ['*']}
  exceptions:
    - name: web-debug-shells
      rules: [runtime.terminalShell]
      namespaces: [shop]
      images: ['registry.example.com/shop/web:*']
      serviceAccounts: [web]
      owner: team-shop
      reason: On-call debugging with kubectl exec (OPS-12)
      expires: '2026-09-01T00:00:00Z'
    - name: batch-everything
      rules: ['runtime.*']
      objectSelector: {matchLabels: {tier: batch}}
      owner: team-data
      reason: Legacy batch jobs being rewritten (DATA-7)
      expires: '2026-06-15T00:00:00Z'
";

#[test]
fn exceptions_waive_until_they_expire() {
    let set = set(WITH_EXCEPTIONS);
    let mut other_image = pod("shop", &[]);
    other_image.image = "docker.io/library/busybox:1.36".into();
    let mut other_sa = pod("shop", &[]);
    other_sa.service_account = "default".into();
    let table: Vec<(&str, RuntimeEvent, PodFacts, &str)> = vec![
        (
            "the web image's shell",
            terminal_shell("2026-06-02T00:00:00Z"),
            pod("shop", &[]),
            "waived by web-debug-shells (team-shop)",
        ),
        (
            "another image",
            terminal_shell("2026-06-02T00:00:00Z"),
            other_image,
            "kill",
        ),
        (
            "another service account",
            terminal_shell("2026-06-02T00:00:00Z"),
            other_sa,
            "kill",
        ),
        (
            "another namespace",
            terminal_shell("2026-06-02T00:00:00Z"),
            pod("payments", &[]),
            "kill",
        ),
        ("another rule", read_shadow(), pod("shop", &[]), "kill"),
        (
            "runtime.* for batch pods",
            read_shadow(),
            pod("etl", &[("tier", "batch")]),
            "waived by batch-everything (team-data)",
        ),
        (
            "after the shell exception expired",
            terminal_shell("2026-09-01T00:00:00Z"),
            pod("shop", &[]),
            "kill",
        ),
    ];
    for (name, event, pod, want) in table {
        let got = set.judge(&event, &pod, &cluster());
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert_eq!(summary(&got)[0].2, want, "{name}");
    }
    let expired = set.judge(
        &terminal_shell("2026-09-02T00:00:00Z"),
        &pod("shop", &[]),
        &cluster(),
    );
    assert_eq!(
        expired[0]
            .expired_exception
            .as_ref()
            .map(|e| e.name.as_str()),
        Some("web-debug-shells")
    );
    let waived = set.judge(
        &terminal_shell("2026-06-02T00:00:00Z"),
        &pod("shop", &[]),
        &cluster(),
    );
    match &waived[0].verdict {
        Verdict::Waived {
            reason, expires, ..
        } => {
            assert_eq!(
                reason.as_deref(),
                Some("On-call debugging with kubectl exec (OPS-12)")
            );
            assert_eq!(
                expires.map(|t| t.to_string()),
                Some("2026-09-01T00:00:00Z".into())
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(waived[0].expired_exception, None);
}

#[test]
fn what_the_sensor_must_provide() {
    let set = set("
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: p}
spec:
  runtime:
    rules: [runtime.terminalShell, runtime.readSensitiveFileUntrusted, runtime.writeBelowBinaryDirOrEtc, runtime.contactK8sApiServer]
");
    assert_eq!(
        set.hooks(),
        HookSet::of(&[
            Hook::Exec,
            Hook::Open,
            Hook::Connect,
            Hook::Unlink,
            Hook::Rename,
            Hook::Link
        ])
    );
    assert_eq!(
        set.uncovered(HookSet::EXEC_ONLY),
        [
            RuntimeRule::ReadSensitiveFileUntrusted,
            RuntimeRule::ContactK8sApiServer,
            RuntimeRule::WriteBelowBinaryDirOrEtc,
        ]
    );
    assert_eq!(
        set.uncovered(HookSet::all().without(HookSet::of(&[Hook::Rename]))),
        [RuntimeRule::WriteBelowBinaryDirOrEtc]
    );
    assert_eq!(set.uncovered(HookSet::all()), []);

    let cluster = ClusterFacts {
        api_server: vec!["10.96.0.1:443".parse().expect("address")],
    };
    let interest = set.interest(&cluster);
    assert_eq!(interest.connect_endpoints, cluster.api_server);
    assert!(interest.connect_ports.is_empty());
    assert!(interest.wants_open("/etc/shadow", "/etc/shadow", true, false));
    assert!(interest.wants_open("/usr/bin/x", "/usr/bin/x", false, true));
    assert!(!interest.wants_open("/app/x", "/app/x", true, true));
    assert!(!interest.open_raw_traversal);

    assert!(RuntimePolicySet::default().is_empty());
    assert_eq!(
        RuntimePolicySet::default().interest(&cluster).hooks,
        HookSet::EMPTY
    );
}

fn problems(runtime: Value, exceptions: Value) -> Vec<String> {
    let object = json!({
        "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
        "metadata": {"name": "p"},
        "spec": {"runtime": runtime, "exceptions": exceptions}
    });
    policy_problems(&object, now())
        .expect("a policy")
        .into_iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect()
}

#[test]
fn bad_runtime_specs_are_refused_with_the_field_and_a_way_out() {
    let exception = |rules: Value| {
        json!([{"name": "x", "rules": rules, "owner": "sre", "reason": "r",
            "expires": "2026-07-01T00:00:00Z"}])
    };
    let table: Vec<(&str, Value, Value, Vec<&str>)> = vec![
        ("everything, audited", json!({}), json!([]), vec![]),
        (
            "enforced by id and by star",
            json!({"mode": "Enforce", "rules": ["runtime.terminalShell", "runtime.packetSocket"],
                "enforce": ["runtime.packetSocket"]}),
            exception(json!(["runtime.*", "runtime.terminalShell", "*"])),
            vec![],
        ),
        (
            "an unknown rule",
            json!({"rules": ["runtime.terminalShel"]}),
            json!([]),
            vec![
                "spec.runtime.rules[0]: \"runtime.terminalShel\" is not a runtime rule id; runtime rule ids are: runtime.terminalShell, ",
            ],
        ),
        (
            "a Falco name instead of an id",
            json!({"rules": ["Terminal shell in container"]}),
            json!([]),
            vec![
                "spec.runtime.rules[0]: \"Terminal shell in container\" is not a runtime rule id; did you mean \"runtime.terminalShell\"?",
            ],
        ),
        (
            "a rule twice",
            json!({"rules": ["runtime.packetSocket", "runtime.packetSocket"]}),
            json!([]),
            vec!["spec.runtime.rules[1]: \"runtime.packetSocket\" is listed twice"],
        ),
        (
            "star in rules",
            json!({"rules": ["*"]}),
            json!([]),
            vec!["spec.runtime.rules[0]: leave `rules` empty"],
        ),
        (
            "an enforced rule not applied",
            json!({"mode": "Enforce", "rules": ["runtime.terminalShell"],
                "enforce": ["runtime.packetSocket"]}),
            json!([]),
            vec![
                "spec.runtime.enforce[0]: \"runtime.packetSocket\" is not among the applied rules",
            ],
        ),
        (
            "an unknown enforced rule",
            json!({"mode": "Enforce", "enforce": ["runtime.nope"]}),
            json!([]),
            vec!["spec.runtime.enforce[0]: \"runtime.nope\" is not a runtime rule id"],
        ),
        (
            "enforce in Audit mode",
            json!({"enforce": ["runtime.packetSocket"]}),
            json!([]),
            vec!["spec.runtime.enforce: mode is Audit, which never kills"],
        ),
        (
            "Enforce with nothing to kill",
            json!({"mode": "Enforce"}),
            json!([]),
            vec!["spec.runtime.enforce: mode Enforce kills only for the rule ids listed here"],
        ),
        (
            "an unknown mode",
            json!({"mode": "Kill"}),
            json!([]),
            vec!["spec.runtime.mode: unknown variant `Kill`"],
        ),
        (
            "an exception naming no runtime rule",
            json!({}),
            exception(json!(["runtime.nope"])),
            vec!["spec.exceptions[0].rules[0]: \"runtime.nope\" names no rule; rule ids are: "],
        ),
    ];
    for (name, runtime, exceptions, want) in table {
        let got = problems(runtime, exceptions);
        assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.starts_with(w), "{name}: {g:?} does not start with {w:?}");
        }
    }
}
