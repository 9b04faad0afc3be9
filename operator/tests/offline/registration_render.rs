//! `registration::render` and `selector_mode_for`: every rule, the exclusion per mode, URL or
//! Service, failure policy and timeout.

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhook;
use k8s_openapi::apimachinery::pkg::version::Info;
use palisade_operator::certs::CaBundle;
use palisade_operator::certs::registration::{
    self, EXEMPT_LABEL, FailurePolicy, METADATA_NAME_LABEL, NAMESPACES_WEBHOOK,
    NamespaceSelectorMode, PODS_WEBHOOK, POLICIES_WEBHOOK, RegistrationConfig, Target,
    WORKLOADS_WEBHOOK,
};

fn service() -> Target {
    Target::Service {
        namespace: "palisade-system".into(),
        name: "palisade-webhook".into(),
        port: 443,
        path_prefix: String::new(),
    }
}

fn bundle() -> CaBundle {
    CaBundle::from_pem("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
}

fn webhook<'a>(
    vwc: &'a k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
    name: &str,
) -> &'a ValidatingWebhook {
    vwc.webhooks
        .iter()
        .flatten()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no webhook {name}"))
}

/// (group, version, resource, operation) for every rule of a webhook.
fn rules(w: &ValidatingWebhook) -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in w.rules.iter().flatten() {
        // Palisade's policies are cluster-scoped; what carries a pod is namespaced.
        let scope = if w.name == POLICIES_WEBHOOK {
            "Cluster"
        } else {
            "Namespaced"
        };
        assert_eq!(rule.scope.as_deref(), Some(scope), "{}", w.name);
        for g in rule.api_groups.iter().flatten() {
            for v in rule.api_versions.iter().flatten() {
                for r in rule.resources.iter().flatten() {
                    for o in rule.operations.iter().flatten() {
                        out.insert((g.clone(), v.clone(), r.clone(), o.clone()));
                    }
                }
            }
        }
    }
    out
}

fn set(items: &[(&str, &str, &str, &str)]) -> BTreeSet<(String, String, String, String)> {
    items
        .iter()
        .map(|(g, v, r, o)| (g.to_string(), v.to_string(), r.to_string(), o.to_string()))
        .collect()
}

#[test]
fn pods_and_workloads_rules() {
    let cfg = RegistrationConfig::new("palisade-system", service());
    let vwc = registration::render(&cfg, &bundle());
    assert_eq!(vwc.webhooks.as_ref().map(Vec::len), Some(3));

    let pods = webhook(&vwc, PODS_WEBHOOK);
    assert_eq!(
        rules(pods),
        set(&[
            ("", "v1", "pods", "CREATE"),
            ("", "v1", "pods", "UPDATE"),
            ("", "v1", "pods/ephemeralcontainers", "UPDATE"),
        ])
    );

    let workloads = webhook(&vwc, WORKLOADS_WEBHOOK);
    let mut want = Vec::new();
    for (g, v, resources) in [
        (
            "apps",
            "*",
            &["deployments", "replicasets", "statefulsets", "daemonsets"][..],
        ),
        ("batch", "*", &["jobs", "cronjobs"][..]),
        ("", "v1", &["replicationcontrollers", "podtemplates"][..]),
    ] {
        for r in resources {
            for o in ["CREATE", "UPDATE"] {
                want.push((g, v, *r, o));
            }
        }
    }
    assert_eq!(rules(workloads), set(&want));

    // Palisade's own policies: refused at apply when invalid, but never blocked by a
    // webhook that is down (Ready=False on the policy is the backstop).
    let policies = webhook(&vwc, POLICIES_WEBHOOK);
    assert_eq!(
        rules(policies),
        set(&[
            ("palisade.dev", "*", "scanpolicies", "CREATE"),
            ("palisade.dev", "*", "scanpolicies", "UPDATE"),
            ("palisade.dev", "*", "securitypolicies", "CREATE"),
            ("palisade.dev", "*", "securitypolicies", "UPDATE"),
        ])
    );
    assert_eq!(policies.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(
        policies.rules.as_ref().expect("rules")[0].scope.as_deref(),
        Some("Cluster")
    );
    assert_eq!(
        policies
            .client_config
            .service
            .as_ref()
            .and_then(|s| s.path.as_deref()),
        Some("/validate/policies")
    );
}

#[test]
fn common_fields() {
    let mut cfg = RegistrationConfig::new("palisade-system", service());
    cfg.timeout_seconds = 7;
    let vwc = registration::render(&cfg, &bundle());
    assert_eq!(vwc.metadata.name.as_deref(), Some("palisade"));
    let labels = vwc.metadata.labels.clone().unwrap_or_default();
    for (k, v) in [
        ("app.kubernetes.io/name", "palisade"),
        ("app.kubernetes.io/part-of", "palisade"),
        ("app.kubernetes.io/managed-by", "palisade-operator"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
    }
    for w in vwc.webhooks.iter().flatten() {
        assert_eq!(w.side_effects, "None");
        assert_eq!(w.admission_review_versions, vec!["v1".to_string()]);
        assert_eq!(w.match_policy.as_deref(), Some("Equivalent"));
        assert_eq!(w.timeout_seconds, Some(7));
        let want = if w.name == POLICIES_WEBHOOK {
            "Ignore"
        } else {
            "Fail"
        };
        assert_eq!(w.failure_policy.as_deref(), Some(want), "{}", w.name);
        assert_eq!(
            w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()),
            Some(bundle().as_bytes())
        );
        // Not known to a 1.20 API server.
        assert!(w.match_conditions.is_none());
    }
}

#[test]
fn service_or_url_targets() {
    let cases = [
        (
            service(),
            PODS_WEBHOOK,
            None,
            Some(("palisade-system", "palisade-webhook", 443, "/validate/pods")),
        ),
        (
            Target::Service {
                namespace: "ns".into(),
                name: "svc".into(),
                port: 8443,
                path_prefix: "/palisade/".into(),
            },
            WORKLOADS_WEBHOOK,
            None,
            Some(("ns", "svc", 8443, "/palisade/validate/workloads")),
        ),
        (
            Target::Url("https://127.0.0.1:8443".into()),
            PODS_WEBHOOK,
            Some("https://127.0.0.1:8443/validate/pods"),
            None,
        ),
        (
            Target::Url("https://127.0.0.1:8443/".into()),
            WORKLOADS_WEBHOOK,
            Some("https://127.0.0.1:8443/validate/workloads"),
            None,
        ),
    ];
    for (target, name, url, svc) in cases {
        let cfg = RegistrationConfig::new("palisade-system", target.clone());
        let vwc = registration::render(&cfg, &bundle());
        let cc = &webhook(&vwc, name).client_config;
        assert_eq!(cc.url.as_deref(), url, "{target:?}");
        let got = cc.service.as_ref().map(|s| {
            (
                s.namespace.as_str(),
                s.name.as_str(),
                s.port.unwrap_or_default(),
                s.path.as_deref().unwrap_or_default(),
            )
        });
        assert_eq!(got, svc, "{target:?}");
    }
}

#[test]
fn failure_policy_is_configurable() {
    for (policy, want) in [
        (FailurePolicy::Fail, "Fail"),
        (FailurePolicy::Ignore, "Ignore"),
    ] {
        let mut cfg = RegistrationConfig::new("palisade-system", service());
        cfg.failure_policy = policy;
        let vwc = registration::render(&cfg, &bundle());
        for name in [PODS_WEBHOOK, WORKLOADS_WEBHOOK] {
            assert_eq!(webhook(&vwc, name).failure_policy.as_deref(), Some(want));
        }
    }
}

#[test]
fn exclusion_selector_per_mode() {
    let mut cfg = RegistrationConfig::new("palisade-system", service());
    cfg.excluded_namespaces = vec!["monitoring".into(), "kube-system".into(), String::new()];
    assert_eq!(
        cfg.excluded(),
        vec!["kube-system", "monitoring", "palisade-system"]
    );

    cfg.namespace_selector_mode = NamespaceSelectorMode::MetadataName;
    let vwc = registration::render(&cfg, &bundle());
    for name in [PODS_WEBHOOK, WORKLOADS_WEBHOOK] {
        let sel = webhook(&vwc, name)
            .namespace_selector
            .clone()
            .expect("selector");
        let exprs = sel.match_expressions.expect("expressions");
        assert_eq!(exprs.len(), 1);
        assert_eq!(exprs[0].key, METADATA_NAME_LABEL);
        assert_eq!(exprs[0].operator, "NotIn");
        assert_eq!(
            exprs[0].values.clone().unwrap_or_default(),
            vec!["kube-system", "monitoring", "palisade-system"]
        );
    }

    cfg.namespace_selector_mode = NamespaceSelectorMode::ExemptLabel;
    let vwc = registration::render(&cfg, &bundle());
    for name in [PODS_WEBHOOK, WORKLOADS_WEBHOOK] {
        let sel = webhook(&vwc, name)
            .namespace_selector
            .clone()
            .expect("selector");
        let exprs = sel.match_expressions.expect("expressions");
        assert_eq!(exprs.len(), 1);
        assert_eq!(exprs[0].key, EXEMPT_LABEL);
        // NotIn also selects namespaces that lack the label.
        assert_eq!(exprs[0].operator, "NotIn");
        assert_eq!(exprs[0].values.clone().unwrap_or_default(), vec!["true"]);
    }
}

#[test]
fn namespaces_guard_only_when_asked_and_in_label_mode() {
    let mut cfg = RegistrationConfig::new("palisade-system", service());
    cfg.protect_exempt_label = true;
    let vwc = registration::render(&cfg, &bundle());
    assert_eq!(vwc.webhooks.as_ref().map(Vec::len), Some(4));
    let guard = webhook(&vwc, NAMESPACES_WEBHOOK);
    assert_eq!(guard.failure_policy.as_deref(), Some("Fail"));
    let rule = &guard.rules.as_ref().expect("rules")[0];
    assert_eq!(rule.scope.as_deref(), Some("Cluster"));
    assert_eq!(
        rule.resources.as_deref(),
        Some(&["namespaces".to_string()][..])
    );
    let obj = guard.object_selector.clone().expect("objectSelector");
    let exprs = obj.match_expressions.expect("expressions");
    assert_eq!(
        (exprs[0].key.as_str(), exprs[0].operator.as_str()),
        (EXEMPT_LABEL, "Exists")
    );
    assert_eq!(
        guard
            .client_config
            .service
            .as_ref()
            .and_then(|s| s.path.as_deref()),
        Some("/validate/namespaces")
    );

    cfg.namespace_selector_mode = NamespaceSelectorMode::MetadataName;
    assert_eq!(
        registration::render(&cfg, &bundle())
            .webhooks
            .map(|w| w.len()),
        Some(3)
    );
    cfg.protect_exempt_label = false;
    cfg.namespace_selector_mode = NamespaceSelectorMode::ExemptLabel;
    assert_eq!(
        registration::render(&cfg, &bundle())
            .webhooks
            .map(|w| w.len()),
        Some(3)
    );
}

#[test]
fn selector_mode_by_server_version() {
    let info = |major: &str, minor: &str, git: &str| Info {
        major: major.into(),
        minor: minor.into(),
        git_version: git.into(),
        ..Info::default()
    };
    use NamespaceSelectorMode::*;
    let cases = [
        (info("1", "20", "v1.20.2"), ExemptLabel),
        (info("1", "20+", "v1.20.15-eks-abc"), ExemptLabel),
        (info("1", "16", "v1.16.0"), ExemptLabel),
        (info("1", "21", "v1.21.0"), MetadataName),
        (info("1", "21+", "v1.21.5-gke.1"), MetadataName),
        (info("1", "33", "v1.33.1"), MetadataName),
        (info("", "", "v1.29.3"), MetadataName),
        (info("", "", "v1.19.3"), ExemptLabel),
        (info("", "", "garbage"), ExemptLabel),
        (info("2", "0", "v2.0.0"), MetadataName),
    ];
    for (version, want) in cases {
        assert_eq!(
            registration::selector_mode_for(&version),
            want,
            "{version:?}"
        );
    }
}

#[test]
fn the_owner_goes_into_the_metadata_only_when_configured() {
    let mut cfg = RegistrationConfig::new("palisade-system", service());
    let vwc = registration::render(&cfg, &bundle());
    assert_eq!(vwc.metadata.owner_references, None);

    let owner = k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: "ClusterRole".into(),
        name: "palisade-operator".into(),
        uid: "0b5e".into(),
        ..Default::default()
    };
    cfg.owner = Some(owner.clone());
    let vwc = registration::render(&cfg, &bundle());
    assert_eq!(vwc.metadata.owner_references, Some(vec![owner]));
}
