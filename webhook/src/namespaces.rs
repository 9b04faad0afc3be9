//! `namespaces.palisade.dev`: who may carry the exempt label.
//!
//! On Kubernetes 1.20 and older the operator leaves namespaces out of the pod and workload
//! webhooks by labelling them [`EXEMPT_LABEL`]`=true` (there is no
//! `kubernetes.io/metadata.name` label to select on). Anyone allowed to patch a namespace
//! could set that label and escape every policy. The operator registers a third webhook,
//! `namespaces.palisade.dev`, for every Namespace CREATE/UPDATE whose old or new labels carry
//! the key, pointing at `/validate/namespaces`; this module decides those requests:
//!
//! - a namespace that ends up *without* the label is always admitted (removing it only makes
//!   the namespace judged again);
//! - a namespace that ends up *with* it (added, changed or kept) is admitted only when it is
//!   one the operator excludes: `kube-system`, Palisade's own namespace and the configured
//!   `--exclude-namespace` list, which must mirror the operator's;
//! - requests by the operator's own service account are always admitted, so a list that
//!   drifts from the operator's never stops the operator from doing its job.
//!
//! [`ExemptLabelGuard::judge`] is a pure function of the request; [`decide`] wraps it for
//! the admission route.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::response::StatusSummary;

/// The label that leaves a namespace out of the pod and workload webhooks (label mode).
pub const EXEMPT_LABEL: &str = "palisade.dev/exempt";

/// The namespace the operator and webhook run in when nothing else is said.
pub const DEFAULT_NAMESPACE: &str = "palisade-system";

/// The operator's service account name when nothing else is said.
pub const DEFAULT_OPERATOR_SERVICE_ACCOUNT: &str = "palisade-operator";

/// Which namespaces may carry [`EXEMPT_LABEL`], and whose requests are trusted regardless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExemptLabelGuard {
    allowed: BTreeSet<String>,
    trusted_users: BTreeSet<String>,
}

impl Default for ExemptLabelGuard {
    /// `kube-system` and `palisade-system`, trusting
    /// `system:serviceaccount:palisade-system:palisade-operator`.
    fn default() -> Self {
        ExemptLabelGuard::new(DEFAULT_NAMESPACE, Vec::<String>::new())
            .trust_service_account(DEFAULT_NAMESPACE, DEFAULT_OPERATOR_SERVICE_ACCOUNT)
    }
}

/// What a request does to the label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelChange<'a> {
    /// Neither the old nor the new object carries it.
    Absent,
    /// The old object carries it, the new one does not.
    Removed,
    /// The new object carries it, the old one (if any) does not.
    Added(&'a str),
    /// Both carry it, with different values.
    Changed { from: &'a str, to: &'a str },
    /// Both carry it with the same value (an unrelated update).
    Kept(&'a str),
}

impl<'a> LabelChange<'a> {
    pub fn of(old: Option<&'a str>, new: Option<&'a str>) -> LabelChange<'a> {
        match (old, new) {
            (None, None) => LabelChange::Absent,
            (Some(_), None) => LabelChange::Removed,
            (None, Some(v)) => LabelChange::Added(v),
            (Some(from), Some(to)) if from == to => LabelChange::Kept(to),
            (Some(from), Some(to)) => LabelChange::Changed { from, to },
        }
    }
}

impl ExemptLabelGuard {
    /// `kube-system`, `operator_namespace` and `excluded` may carry the label. Empty names
    /// are ignored.
    pub fn new<I, S>(operator_namespace: &str, excluded: I) -> ExemptLabelGuard
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut allowed: BTreeSet<String> = excluded
            .into_iter()
            .map(Into::into)
            .filter(|n| !n.is_empty())
            .collect();
        allowed.insert("kube-system".to_owned());
        if !operator_namespace.is_empty() {
            allowed.insert(operator_namespace.to_owned());
        }
        ExemptLabelGuard {
            allowed,
            trusted_users: BTreeSet::new(),
        }
    }

    /// Always admit requests by `system:serviceaccount:<namespace>:<name>`.
    pub fn trust_service_account(mut self, namespace: &str, name: &str) -> ExemptLabelGuard {
        if !namespace.is_empty() && !name.is_empty() {
            self.trusted_users
                .insert(format!("system:serviceaccount:{namespace}:{name}"));
        }
        self
    }

    /// The namespaces that may carry the label, sorted.
    pub fn allowed_namespaces(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().map(String::as_str)
    }

    /// The user names whose requests are always admitted, sorted.
    pub fn trusted_users(&self) -> impl Iterator<Item = &str> {
        self.trusted_users.iter().map(String::as_str)
    }

    /// Whether `namespace`, by `username`, may make `change`; `Err` holds the denial text.
    pub fn judge(
        &self,
        namespace: &str,
        username: &str,
        change: LabelChange<'_>,
    ) -> Result<(), String> {
        let what = match change {
            LabelChange::Absent | LabelChange::Removed => return Ok(()),
            _ if self.allowed.contains(namespace) => return Ok(()),
            _ if self.trusted_users.contains(username) => return Ok(()),
            LabelChange::Added(v) => format!("may not be given the label {EXEMPT_LABEL}={v}"),
            LabelChange::Changed { from, to } => format!(
                "may not change the label {EXEMPT_LABEL} from {from:?} to {to:?}; remove the label instead"
            ),
            LabelChange::Kept(v) => format!(
                "carries the label {EXEMPT_LABEL}={v}, which it may not keep: remove the label in this update"
            ),
        };
        let allowed = self
            .allowed
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        Err(format!(
            "namespace {namespace:?} {what}. The label leaves a namespace out of every \
             SecurityPolicy, so only the namespaces Palisade is configured to exclude may carry \
             it ({allowed}). To exempt a namespace, add it to the operator's --exclude-namespace \
             (PALISADE_EXCLUDE_NAMESPACES; excludedNamespaces in the Helm values), which labels \
             it for you, and give the webhook the same list"
        ))
    }
}

/// The value of [`EXEMPT_LABEL`] in a Namespace object, if any.
fn exempt_value(object: Option<&DynamicObject>) -> Option<&str> {
    object?
        .metadata
        .labels
        .as_ref()
        .and_then(|labels: &BTreeMap<String, String>| labels.get(EXEMPT_LABEL))
        .map(String::as_str)
}

/// How a request was decided, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The label is not set by the request's result, or the namespace / user may set it.
    Allowed,
    /// The label is refused.
    Denied,
    /// Not a Namespace CREATE/UPDATE: nothing to judge here.
    Skipped,
}

/// Judge one review sent to `/validate/namespaces`.
pub fn decide(
    guard: &ExemptLabelGuard,
    req: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, Verdict) {
    let response = AdmissionResponse::from(req);
    let is_namespace = req.kind.group.is_empty() && req.kind.kind == "Namespace";
    let judged = matches!(req.operation, Operation::Create | Operation::Update);
    if !is_namespace || !judged || req.sub_resource.is_some() {
        return (response, Verdict::Skipped);
    }
    // A Namespace review carries the name in `name`; the object's own name is the fallback
    // (for CREATE with generateName the API server has filled it in by now).
    let name = if req.name.is_empty() {
        req.object
            .as_ref()
            .and_then(|o| o.metadata.name.as_deref())
            .unwrap_or_default()
    } else {
        req.name.as_str()
    };
    let change = LabelChange::of(
        exempt_value(req.old_object.as_ref()),
        exempt_value(req.object.as_ref()),
    );
    match guard.judge(
        name,
        req.user_info.username.as_deref().unwrap_or_default(),
        change,
    ) {
        Ok(()) => (response, Verdict::Allowed),
        Err(message) => {
            let mut response = response.deny(message);
            response.result.status = Some(StatusSummary::Failure);
            response.result.code = 403;
            response.result.reason = "Forbidden".to_owned();
            (response, Verdict::Denied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> ExemptLabelGuard {
        ExemptLabelGuard::new("palisade", ["monitoring", ""])
            .trust_service_account("palisade", "palisade-operator")
    }

    const USER: &str = "alice";
    const OPERATOR: &str = "system:serviceaccount:palisade:palisade-operator";

    #[test]
    fn the_allowed_list_is_kube_system_the_own_namespace_and_the_configured_ones() {
        let g = guard();
        assert_eq!(
            g.allowed_namespaces().collect::<Vec<_>>(),
            ["kube-system", "monitoring", "palisade"]
        );
        assert_eq!(g.trusted_users().collect::<Vec<_>>(), [OPERATOR]);
        let d = ExemptLabelGuard::default();
        assert_eq!(
            d.allowed_namespaces().collect::<Vec<_>>(),
            ["kube-system", "palisade-system"]
        );
        assert_eq!(
            d.trusted_users().collect::<Vec<_>>(),
            ["system:serviceaccount:palisade-system:palisade-operator"]
        );
        // No service account without both parts.
        let none = ExemptLabelGuard::new("", Vec::<String>::new()).trust_service_account("", "x");
        assert_eq!(none.trusted_users().count(), 0);
        assert_eq!(
            none.allowed_namespaces().collect::<Vec<_>>(),
            ["kube-system"]
        );
    }

    #[test]
    fn label_change_from_old_and_new_values() {
        use LabelChange::*;
        assert_eq!(LabelChange::of(None, None), Absent);
        assert_eq!(LabelChange::of(Some("true"), None), Removed);
        assert_eq!(LabelChange::of(None, Some("true")), Added("true"));
        assert_eq!(LabelChange::of(Some("true"), Some("true")), Kept("true"));
        assert_eq!(
            LabelChange::of(Some("false"), Some("true")),
            Changed {
                from: "false",
                to: "true"
            }
        );
    }

    #[test]
    fn table() {
        use LabelChange::*;
        // (namespace, user, change, allowed)
        let cases: &[(&str, &str, LabelChange<'_>, bool)] = &[
            // Allowed namespaces may add, change, keep and remove it.
            ("kube-system", USER, Added("true"), true),
            ("palisade", USER, Kept("true"), true),
            (
                "monitoring",
                USER,
                Changed {
                    from: "false",
                    to: "true",
                },
                true,
            ),
            ("monitoring", USER, Removed, true),
            // Any other namespace: removing or never having it is fine...
            ("team-a", USER, Removed, true),
            ("team-a", USER, Absent, true),
            // ...ending up with it is not, whatever the value.
            ("team-a", USER, Added("true"), false),
            ("team-a", USER, Added("false"), false),
            (
                "team-a",
                USER,
                Changed {
                    from: "false",
                    to: "true",
                },
                false,
            ),
            ("team-a", USER, Kept("true"), false),
            // Names are exact: no prefixes, no case folding.
            ("kube-system-2", USER, Added("true"), false),
            ("Monitoring", USER, Added("true"), false),
            ("", USER, Added("true"), false),
            // The operator's service account is never refused...
            ("team-a", OPERATOR, Added("true"), true),
            ("team-a", OPERATOR, Kept("true"), true),
            // ...but only that exact account.
            (
                "team-a",
                "system:serviceaccount:team-a:palisade-operator",
                Added("true"),
                false,
            ),
            (
                "team-a",
                "system:serviceaccount:palisade:default",
                Added("true"),
                false,
            ),
        ];
        let g = guard();
        for (namespace, user, change, allowed) in cases {
            let got = g.judge(namespace, user, *change);
            assert_eq!(
                got.is_ok(),
                *allowed,
                "{namespace} {user} {change:?}: {got:?}"
            );
        }
    }

    #[test]
    fn the_denial_names_the_label_the_namespace_and_the_way_to_exempt() {
        let g = guard();
        let added = g
            .judge("team-a", USER, LabelChange::Added("true"))
            .expect_err("denied");
        assert_eq!(
            added,
            "namespace \"team-a\" may not be given the label palisade.dev/exempt=true. The label \
             leaves a namespace out of every SecurityPolicy, so only the namespaces Palisade is \
             configured to exclude may carry it (kube-system, monitoring, palisade). To exempt a \
             namespace, add it to the operator's --exclude-namespace (PALISADE_EXCLUDE_NAMESPACES; \
             excludedNamespaces in the Helm values), which labels it for you, and give the webhook \
             the same list"
        );
        let kept = g
            .judge("team-a", USER, LabelChange::Kept("true"))
            .expect_err("denied");
        assert!(
            kept.starts_with(
                "namespace \"team-a\" carries the label palisade.dev/exempt=true, which it may not keep: remove the label in this update."
            ),
            "{kept}"
        );
        let changed = g
            .judge(
                "team-a",
                USER,
                LabelChange::Changed {
                    from: "false",
                    to: "true",
                },
            )
            .expect_err("denied");
        assert!(
            changed.starts_with(
                "namespace \"team-a\" may not change the label palisade.dev/exempt from \"false\" to \"true\"; remove the label instead."
            ),
            "{changed}"
        );
    }
}
