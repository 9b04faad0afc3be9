//! The ValidatingWebhookConfiguration the operator owns.
//!
//! [`render`] is pure: two webhooks, `pods.palisade.dev` (pods, and the
//! `pods/ephemeralcontainers` sub-resource that `kubectl debug` writes) and
//! `workloads.palisade.dev` (every kind that carries a pod template), both with
//! `sideEffects: None`, `admissionReviewVersions: [v1]`, `matchPolicy: Equivalent`, the
//! configured timeout and failure policy, and the `caBundle` from [`crate::certs`]; and
//! `policies.palisade.dev` (SecurityPolicy and ScanPolicy CREATE/UPDATE, `/validate/policies`)
//! with `failurePolicy: Ignore`, so `kubectl apply` of an invalid policy is refused at once
//! with its problems while a webhook that is down never blocks fixing one.
//! [`apply`] writes it by server-side apply under [`crate::FIELD_MANAGER`].
//!
//! # Leaving namespaces out
//!
//! `kube-system`, the operator's namespace and the configured namespaces are never judged,
//! so the webhook can never block the control plane or itself. How the `namespaceSelector`
//! names them depends on the API server ([`selector_mode_for`]):
//!
//! - Kubernetes ≥ 1.21 ([`NamespaceSelectorMode::MetadataName`]):
//!   `kubernetes.io/metadata.name NotIn [...]`. The API server sets that label on every
//!   namespace to its name and refuses any other value, so nobody can escape by relabelling.
//! - Kubernetes 1.20 and older ([`NamespaceSelectorMode::ExemptLabel`]): that label does not
//!   exist. The operator labels the excluded namespaces [`EXEMPT_LABEL`]`=true` and the
//!   selector is `palisade.dev/exempt NotIn [true]` (a namespace without the label is
//!   judged). This label *can* be set by anyone allowed to patch namespaces, so:
//!   1. [`apply`] removes it from every namespace not in the excluded list, each time it
//!      runs (it corrects, it does not prevent);
//!   2. with [`RegistrationConfig::protect_exempt_label`], a third webhook
//!      `namespaces.palisade.dev` sees every namespace CREATE/UPDATE whose old or new labels
//!      carry the key (`objectSelector: palisade.dev/exempt Exists`, so unrelated namespace
//!      writes never depend on the webhook) with `failurePolicy: Fail`. The webhook server
//!      (`/validate/namespaces`) refuses the label on any namespace outside the list it is
//!      given (the same `--namespace` and `--exclude-namespace` as the operator) and always
//!      admits removing it and the operator's own service account, so what [`apply`] does to
//!      labels is never refused. Off in [`RegistrationConfig::new`]; the operator binary
//!      turns it on when the webhook is registered by Service (see its
//!      `--protect-exempt-label`).
//!   3. In any case, who may patch namespaces is an RBAC decision: grant it to cluster
//!      administrators only.

mod api;
mod plan;

pub use api::apply;
pub use plan::{
    EXEMPT_LABEL, Error, FailurePolicy, MAX_TIMEOUT_SECONDS, METADATA_NAME_LABEL,
    NAMESPACES_WEBHOOK, NamespaceSelectorMode, PODS_WEBHOOK, POLICIES_WEBHOOK, RegistrationConfig,
    Target, WORKLOADS_WEBHOOK, labels, namespace_selector, render, selector_mode_for,
};
