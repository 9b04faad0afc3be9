//! The ValidatingWebhookConfiguration, as pure functions: its settings, the rendering, and
//! whether what the API server holds already says it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::version::Info;

use crate::certs::CaBundle;

/// The label the API server (≥ 1.21) sets to each namespace's name.
pub const METADATA_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The label the operator sets on excluded namespaces on Kubernetes 1.20 and older.
pub const EXEMPT_LABEL: &str = "palisade.dev/exempt";
pub const PODS_WEBHOOK: &str = "pods.palisade.dev";
pub const WORKLOADS_WEBHOOK: &str = "workloads.palisade.dev";
pub const NAMESPACES_WEBHOOK: &str = "namespaces.palisade.dev";
/// Validates SecurityPolicies and ScanPolicies (`/validate/policies`).
pub const POLICIES_WEBHOOK: &str = "policies.palisade.dev";
/// The longest timeout the API server accepts.
pub const MAX_TIMEOUT_SECONDS: i32 = 30;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid webhook registration: {0}")]
    Config(String),
    #[error("cannot apply ValidatingWebhookConfiguration {name}")]
    Apply {
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot {action} namespace {namespace}")]
    Namespace {
        action: &'static str,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot list namespaces labelled {EXEMPT_LABEL}")]
    ListNamespaces(#[source] Box<kube::Error>),
}

/// Where the API server sends reviews.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The webhook's Service in the cluster; `path_prefix` goes before `/validate/...`
    /// (usually empty).
    Service {
        namespace: String,
        name: String,
        port: i32,
        path_prefix: String,
    },
    /// A base URL such as `https://127.0.0.1:8443` (for `make run`); `/validate/...` is
    /// appended.
    Url(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    #[default]
    Fail,
    Ignore,
}

impl FailurePolicy {
    fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        }
    }
}

/// How the excluded namespaces are told apart (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceSelectorMode {
    /// `kubernetes.io/metadata.name NotIn [...]` (Kubernetes ≥ 1.21).
    MetadataName,
    /// `palisade.dev/exempt NotIn [true]`, the operator labelling the namespaces (≤ 1.20).
    ExemptLabel,
}

#[derive(Clone, Debug)]
pub struct RegistrationConfig {
    /// The ValidatingWebhookConfiguration's name.
    pub name: String,
    pub target: Target,
    pub failure_policy: FailurePolicy,
    /// 1 to 30.
    pub timeout_seconds: i32,
    /// The operator's namespace: always excluded, as is `kube-system`.
    pub operator_namespace: String,
    /// More namespaces to leave out.
    pub excluded_namespaces: Vec<String>,
    pub namespace_selector_mode: NamespaceSelectorMode,
    /// Render `namespaces.palisade.dev` (label mode only; see the module doc).
    pub protect_exempt_label: bool,
    /// The owner of the registration (see [`crate::certs::owner`]): deleting it deletes the
    /// registration.
    pub owner: Option<OwnerReference>,
}

impl RegistrationConfig {
    /// Defaults: name `palisade`, `Fail`, 5 s, label mode (safe on every version; call
    /// [`selector_mode_for`] with the server's version to choose).
    pub fn new(operator_namespace: impl Into<String>, target: Target) -> RegistrationConfig {
        RegistrationConfig {
            name: "palisade".into(),
            target,
            failure_policy: FailurePolicy::Fail,
            timeout_seconds: 5,
            operator_namespace: operator_namespace.into(),
            excluded_namespaces: Vec::new(),
            namespace_selector_mode: NamespaceSelectorMode::ExemptLabel,
            protect_exempt_label: false,
            owner: None,
        }
    }

    /// `kube-system`, the operator's namespace and the configured ones, sorted, no repeats.
    pub fn excluded(&self) -> Vec<String> {
        let mut set: BTreeSet<String> = self
            .excluded_namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect();
        set.insert("kube-system".into());
        if !self.operator_namespace.is_empty() {
            set.insert(self.operator_namespace.clone());
        }
        set.into_iter().collect()
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        if self.name.is_empty() {
            return Err(Error::Config("empty name".into()));
        }
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            return Err(Error::Config(format!(
                "timeoutSeconds {} is outside 1..={MAX_TIMEOUT_SECONDS}",
                self.timeout_seconds
            )));
        }
        match &self.target {
            Target::Url(url) if !url.starts_with("https://") => {
                Err(Error::Config(format!("webhook URL {url:?} must use https")))
            }
            Target::Service { port, .. } if !(1..=65535).contains(port) => {
                Err(Error::Config(format!("service port {port} out of range")))
            }
            _ => Ok(()),
        }
    }
}

/// [`NamespaceSelectorMode::MetadataName`] from Kubernetes 1.21 on. Versions that cannot be
/// read get the label mode, which excludes correctly everywhere.
pub fn selector_mode_for(version: &Info) -> NamespaceSelectorMode {
    let digits = |s: &str| -> Option<u32> {
        let d: String = s.chars().take_while(char::is_ascii_digit).collect();
        d.parse().ok()
    };
    // Managed clusters report e.g. minor "20+"; git_version "v1.20.2-eks-..." is the fallback.
    let from_fields = digits(&version.major).zip(digits(&version.minor));
    let from_git = || {
        let rest = version.git_version.strip_prefix('v')?;
        let mut parts = rest.split('.');
        Some((digits(parts.next()?)?, digits(parts.next()?)?))
    };
    match from_fields.or_else(from_git) {
        Some((major, minor)) if major > 1 || (major == 1 && minor >= 21) => {
            NamespaceSelectorMode::MetadataName
        }
        _ => NamespaceSelectorMode::ExemptLabel,
    }
}

/// The labels on everything the operator creates.
pub fn labels() -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", "palisade"),
        ("app.kubernetes.io/part-of", "palisade"),
        ("app.kubernetes.io/managed-by", "palisade-operator"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The `namespaceSelector` that leaves out [`RegistrationConfig::excluded`].
pub fn namespace_selector(cfg: &RegistrationConfig) -> LabelSelector {
    let requirement = match cfg.namespace_selector_mode {
        NamespaceSelectorMode::MetadataName => LabelSelectorRequirement {
            key: METADATA_NAME_LABEL.into(),
            operator: "NotIn".into(),
            values: Some(cfg.excluded()),
        },
        NamespaceSelectorMode::ExemptLabel => LabelSelectorRequirement {
            key: EXEMPT_LABEL.into(),
            operator: "NotIn".into(),
            values: Some(vec!["true".into()]),
        },
    };
    LabelSelector {
        match_expressions: Some(vec![requirement]),
        match_labels: None,
    }
}

fn rule(
    group: &str,
    versions: &str,
    resources: &[&str],
    operations: &[&str],
) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        // Any version: CronJob is batch/v1beta1 on 1.20, batch/v1 later.
        api_versions: Some(vec![versions.into()]),
        operations: Some(operations.iter().map(|o| o.to_string()).collect()),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        scope: Some("Namespaced".into()),
    }
}

fn client_config(target: &Target, path: &str, ca_bundle: &CaBundle) -> WebhookClientConfig {
    let ca_bundle = Some(ByteString(ca_bundle.as_bytes().to_vec()));
    match target {
        Target::Service {
            namespace,
            name,
            port,
            path_prefix,
        } => WebhookClientConfig {
            ca_bundle,
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                port: Some(*port),
                path: Some(format!("{}{path}", path_prefix.trim_end_matches('/'))),
            }),
            url: None,
        },
        Target::Url(base) => WebhookClientConfig {
            ca_bundle,
            service: None,
            url: Some(format!("{}{path}", base.trim_end_matches('/'))),
        },
    }
}

/// The configuration for `cfg` with `ca_bundle`.
pub fn render(cfg: &RegistrationConfig, ca_bundle: &CaBundle) -> ValidatingWebhookConfiguration {
    let webhook = |name: &str, path: &str, rules: Vec<RuleWithOperations>| ValidatingWebhook {
        name: name.into(),
        admission_review_versions: vec!["v1".into()],
        client_config: client_config(&cfg.target, path, ca_bundle),
        failure_policy: Some(cfg.failure_policy.as_str().into()),
        match_policy: Some("Equivalent".into()),
        namespace_selector: Some(namespace_selector(cfg)),
        // Explicit empty values, as the API server defaults them: applies then compare equal.
        object_selector: Some(LabelSelector::default()),
        rules: Some(rules),
        side_effects: "None".into(),
        timeout_seconds: Some(cfg.timeout_seconds),
        match_conditions: None,
    };
    let mut webhooks = vec![
        webhook(
            PODS_WEBHOOK,
            "/validate/pods",
            vec![
                rule("", "v1", &["pods"], &["CREATE", "UPDATE"]),
                // `kubectl debug`: kind EphemeralContainers up to 1.21, a whole Pod after.
                rule("", "v1", &["pods/ephemeralcontainers"], &["UPDATE"]),
            ],
        ),
        webhook(
            WORKLOADS_WEBHOOK,
            "/validate/workloads",
            vec![
                rule(
                    "apps",
                    "*",
                    &["deployments", "replicasets", "statefulsets", "daemonsets"],
                    &["CREATE", "UPDATE"],
                ),
                rule("batch", "*", &["jobs", "cronjobs"], &["CREATE", "UPDATE"]),
                rule(
                    "",
                    "v1",
                    &["replicationcontrollers", "podtemplates"],
                    &["CREATE", "UPDATE"],
                ),
            ],
        ),
    ];
    // Palisade's own policies, refused at apply with the problems the operator would write
    // to their status. Ignore: a broken webhook must never block fixing a policy; Ready=False
    // stays the backstop.
    let mut policies = webhook(
        POLICIES_WEBHOOK,
        "/validate/policies",
        vec![RuleWithOperations {
            scope: Some("Cluster".into()),
            ..rule(
                palisade_crds::GROUP,
                "*",
                &["securitypolicies", "scanpolicies"],
                &["CREATE", "UPDATE"],
            )
        }],
    );
    policies.namespace_selector = Some(LabelSelector::default());
    policies.failure_policy = Some(FailurePolicy::Ignore.as_str().into());
    webhooks.push(policies);
    if cfg.protect_exempt_label && cfg.namespace_selector_mode == NamespaceSelectorMode::ExemptLabel
    {
        let mut guard = webhook(
            NAMESPACES_WEBHOOK,
            "/validate/namespaces",
            vec![RuleWithOperations {
                scope: Some("Cluster".into()),
                ..rule("", "v1", &["namespaces"], &["CREATE", "UPDATE"])
            }],
        );
        // For a Namespace the selectors see the namespace itself: call the webhook only when
        // the old or new object carries the key, and never let it pass unchecked.
        guard.namespace_selector = Some(LabelSelector::default());
        guard.object_selector = Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: EXEMPT_LABEL.into(),
                operator: "Exists".into(),
                values: None,
            }]),
            match_labels: None,
        });
        guard.failure_policy = Some(FailurePolicy::Fail.as_str().into());
        webhooks.push(guard);
    }
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(cfg.name.clone()),
            labels: Some(labels()),
            owner_references: crate::certs::owner::references(cfg.owner.as_ref()),
            ..ObjectMeta::default()
        },
        webhooks: Some(webhooks),
    }
}

/// Whether `current` already holds everything `desired` sets.
pub(super) fn same(
    current: &ValidatingWebhookConfiguration,
    desired: &ValidatingWebhookConfiguration,
) -> bool {
    let labels_present = desired
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| current.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
    let normalize = |w: &ValidatingWebhook| {
        let mut w = w.clone();
        // Defaults the API server fills in.
        if let Some(service) = &mut w.client_config.service {
            service.port.get_or_insert(443);
        }
        if w.object_selector.is_none() {
            w.object_selector = Some(LabelSelector::default());
        }
        if w.namespace_selector.is_none() {
            w.namespace_selector = Some(LabelSelector::default());
        }
        w
    };
    let webhooks = |c: &ValidatingWebhookConfiguration| -> Vec<ValidatingWebhook> {
        c.webhooks.iter().flatten().map(normalize).collect()
    };
    let owners_present = desired
        .metadata
        .owner_references
        .iter()
        .flatten()
        .all(|o| crate::certs::owner::has(&current.metadata, Some(o)));
    labels_present && owners_present && webhooks(current) == webhooks(desired)
}
