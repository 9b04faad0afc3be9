//! A SecurityPolicy checked once and turned into what the hot path needs.

use k8s_openapi::jiff::Timestamp;
use palisade_crds::{Mode, Privileged, SecurityPolicy};
use palisade_imageref::ImageRef;
use palisade_pod_security::{Level, Version};

use crate::error::{Error, Problem};
use crate::exceptions::{CompiledException, WaiverLimits, Waivers};
use crate::selector::{Selector, is_dns_label};

/// A validated SecurityPolicy, ready for the hot path.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub(crate) name: String,
    pub(crate) mode: Mode,
    pub(crate) generation: Option<i64>,
    pub(crate) scope: Scope,
    pub(crate) pod_security: Option<(Level, Version)>,
    pub(crate) controls: Controls,
    pub(crate) exceptions: Vec<CompiledException>,
    /// `spec.runtime`, for the node agent.
    pub(crate) runtime: Option<crate::runtime::CompiledRuntime>,
}

/// Where a policy applies.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub(crate) namespaces: Vec<String>,
    pub(crate) namespace_selector: Option<Selector>,
    pub(crate) object_selector: Option<Selector>,
    pub(crate) exclude_namespaces: Vec<String>,
    pub(crate) exclude_object_selector: Option<Selector>,
}

impl Scope {
    /// `spec.match` and `spec.exclude`, as SecurityPolicy and ScanPolicy both write them.
    pub(crate) fn compile(
        match_: Option<&palisade_crds::MatchResources>,
        exclude: Option<&palisade_crds::ExcludeResources>,
        problems: &mut Vec<Problem>,
    ) -> Scope {
        let mut scope = Scope::default();
        if let Some(m) = match_ {
            scope.namespaces = checked_namespaces(&m.namespaces, "spec.match.namespaces", problems);
            scope.namespace_selector = m
                .namespace_selector
                .as_ref()
                .map(|s| Selector::compile(s, "spec.match.namespaceSelector", problems));
            scope.object_selector = m
                .object_selector
                .as_ref()
                .map(|s| Selector::compile(s, "spec.match.objectSelector", problems));
        }
        if let Some(x) = exclude {
            scope.exclude_namespaces =
                checked_namespaces(&x.namespaces, "spec.exclude.namespaces", problems);
            scope.exclude_object_selector = x
                .object_selector
                .as_ref()
                .map(|s| Selector::compile(s, "spec.exclude.objectSelector", problems));
        }
        scope
    }
}

/// The individual controls, outside any preset.
#[derive(Debug, Clone, Default)]
pub(crate) struct Controls {
    pub(crate) deny_privileged: bool,
    pub(crate) run_as_non_root: bool,
    pub(crate) forbid_privilege_escalation: bool,
    pub(crate) read_only_root_filesystem: bool,
    pub(crate) allowed_capabilities: Option<Vec<String>>,
    pub(crate) require_drop_all: bool,
    pub(crate) allowed_registries: Option<Vec<String>>,
    pub(crate) forbid_latest_tag: bool,
    pub(crate) require_digest: bool,
}

impl Controls {
    pub(crate) fn checks_images(&self) -> bool {
        self.allowed_registries.is_some() || self.forbid_latest_tag || self.require_digest
    }

    /// Whether any control is on.
    fn any(&self) -> bool {
        self.deny_privileged
            || self.run_as_non_root
            || self.forbid_privilege_escalation
            || self.read_only_root_filesystem
            || self.allowed_capabilities.is_some()
            || self.require_drop_all
            || self.checks_images()
    }
}

impl CompiledPolicy {
    /// Check everything the schema cannot and build the evaluable form. All problems are
    /// reported at once, each with its field. Exception expiries are checked against now.
    pub fn compile(policy: &SecurityPolicy) -> Result<CompiledPolicy, Error> {
        CompiledPolicy::compile_at(policy, Timestamp::now())
    }

    /// [`compile`](Self::compile), judging `maxExceptionDays` from `now`.
    pub fn compile_at(policy: &SecurityPolicy, now: Timestamp) -> Result<CompiledPolicy, Error> {
        CompiledPolicy::compile_with(policy, now, Waivers::Checked)
    }

    /// Compile, checking waivers as `waivers` says.
    pub fn compile_with(
        policy: &SecurityPolicy,
        now: Timestamp,
        waivers: Waivers,
    ) -> Result<CompiledPolicy, Error> {
        let name = policy.metadata.name.clone().unwrap_or_default();
        let spec = &policy.spec;
        let mut problems = Vec::new();
        if name.is_empty() {
            problems.push(Problem::new(
                "metadata.name",
                "a SecurityPolicy needs a name",
            ));
        }

        let scope = Scope::compile(spec.match_.as_ref(), spec.exclude.as_ref(), &mut problems);

        let pod_security = spec.pod_security.as_ref().and_then(|ps| {
            let level = match ps.level {
                palisade_crds::PodSecurityLevel::Privileged => Level::Privileged,
                palisade_crds::PodSecurityLevel::Baseline => Level::Baseline,
                palisade_crds::PodSecurityLevel::Restricted => Level::Restricted,
            };
            match ps.version.parse::<Version>() {
                Ok(version) => Some((level, version)),
                Err(e) => {
                    problems.push(Problem::new("spec.podSecurity.version", e.to_string()));
                    None
                }
            }
        });

        let mut controls = Controls {
            deny_privileged: spec.privileged == Some(Privileged::Deny),
            run_as_non_root: spec.run_as_non_root == Some(true),
            forbid_privilege_escalation: spec.allow_privilege_escalation == Some(false),
            read_only_root_filesystem: spec.read_only_root_filesystem == Some(true),
            ..Controls::default()
        };
        if let Some(caps) = &spec.capabilities {
            controls.require_drop_all = caps.require_drop_all == Some(true);
            if let Some(allowed) = &caps.allowed {
                for (i, cap) in allowed.iter().enumerate() {
                    if let Some(msg) = capability_name_problem(cap) {
                        problems.push(Problem::new(format!("spec.capabilities.allowed[{i}]"), msg));
                    }
                }
                controls.allowed_capabilities = Some(allowed.clone());
            }
        }
        if let Some(images) = &spec.images {
            controls.forbid_latest_tag = images.forbid_latest_tag == Some(true);
            controls.require_digest = images.require_digest == Some(true);
            if let Some(registries) = &images.allowed_registries {
                for (i, entry) in registries.iter().enumerate() {
                    if let Some(msg) = registry_entry_problem(entry) {
                        problems.push(Problem::new(
                            format!("spec.images.allowedRegistries[{i}]"),
                            msg,
                        ));
                    }
                }
                controls.allowed_registries = Some(registries.clone());
            }
        }

        let runtime = spec
            .runtime
            .as_ref()
            .map(|r| crate::runtime::CompiledRuntime::compile(r, &mut problems));

        let limits = WaiverLimits::new(now, spec.max_exception_days, waivers);
        let mut exceptions = Vec::with_capacity(spec.exceptions.len());
        for (i, e) in spec.exceptions.iter().enumerate() {
            let field = format!("spec.exceptions[{i}]");
            if spec.exceptions[..i].iter().any(|prev| prev.name == e.name) {
                problems.push(Problem::new(
                    format!("{field}.name"),
                    format!("exception name {:?} is used twice", e.name),
                ));
            }
            exceptions.push(CompiledException::compile(
                e,
                &field,
                &limits,
                &mut problems,
            ));
        }

        if problems.is_empty() {
            Ok(CompiledPolicy {
                name,
                mode: spec.mode,
                generation: policy.metadata.generation,
                scope,
                pod_security,
                controls,
                exceptions,
                runtime,
            })
        } else {
            Err(Error::InvalidPolicy {
                policy: if name.is_empty() {
                    "(unnamed)".into()
                } else {
                    name
                },
                problems,
            })
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the policy judges anything at admission. A policy that sets only
    /// `spec.runtime` does not: admission skips it (it neither matches nor passes a pod).
    pub fn judges_admission(&self) -> bool {
        self.runtime.is_none() || self.pod_security.is_some() || self.controls.any()
    }

    /// Whether the policy has runtime rules (`spec.runtime`) for the node agent.
    pub fn has_runtime(&self) -> bool {
        self.runtime.is_some()
    }

    /// `metadata.generation` of the policy this was compiled from.
    pub fn generation(&self) -> Option<i64> {
        self.generation
    }

    /// Exceptions that expire within `within` of `now`, or have expired, soonest first.
    pub fn expiring_exceptions(
        &self,
        now: Timestamp,
        within: std::time::Duration,
    ) -> Vec<palisade_crds::ExpiringException> {
        expiring(
            self.exceptions
                .iter()
                .map(|e| (e.name.as_str(), e.owner.as_deref(), e.expires)),
            now,
            within,
        )
    }

    /// The exceptions that have expired at `now`, by name.
    pub fn expired_exceptions(&self, now: Timestamp) -> impl Iterator<Item = &str> {
        self.exceptions
            .iter()
            .filter(move |e| e.is_expired(now))
            .map(|e| e.name.as_str())
    }
}

/// Waivers (name, owner, expiry) that expire within `within` of `now` or have expired,
/// soonest first.
pub(crate) fn expiring<'a>(
    waivers: impl Iterator<Item = (&'a str, Option<&'a str>, Option<Timestamp>)>,
    now: Timestamp,
    within: std::time::Duration,
) -> Vec<palisade_crds::ExpiringException> {
    let horizon = k8s_openapi::jiff::SignedDuration::try_from(within)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX);
    let mut out: Vec<palisade_crds::ExpiringException> = waivers
        .filter_map(|(name, owner, expires)| {
            let at = expires?;
            (at <= horizon).then(|| palisade_crds::ExpiringException {
                name: name.to_owned(),
                owner: owner.map(str::to_owned),
                expires: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at),
                expired: at <= now,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.expires
            .0
            .cmp(&b.expires.0)
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

fn checked_namespaces(names: &[String], field: &str, problems: &mut Vec<Problem>) -> Vec<String> {
    for (i, n) in names.iter().enumerate() {
        if !is_dns_label(n) {
            problems.push(Problem::new(
                format!("{field}[{i}]"),
                format!("{n:?} is not a valid namespace name (lowercase letters, digits and '-', at most 63)"),
            ));
        }
    }
    names.to_vec()
}

/// Why a name is not a canonical Linux capability name, if it is not.
pub(crate) fn capability_name_problem(cap: &str) -> Option<String> {
    if cap == "ALL" {
        return Some(
            "\"ALL\" cannot be approved: list the capabilities containers may add by name".into(),
        );
    }
    if let Some(rest) = cap.strip_prefix("CAP_") {
        return Some(format!("write {cap:?} without the CAP_ prefix: {rest:?}"));
    }
    let canonical = !cap.is_empty()
        && cap.as_bytes()[0].is_ascii_uppercase()
        && cap
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !canonical {
        return Some(format!(
            "{cap:?} is not a canonical capability name (uppercase, e.g. {:?})",
            canonical_capability(cap)
        ));
    }
    None
}

/// The canonical spelling of a capability name as users write it in many ways
/// (`cap_sys_admin`, `sys_admin` → `SYS_ADMIN`).
pub(crate) fn canonical_capability(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_owned)
        .unwrap_or(upper)
}

fn registry_entry_problem(entry: &str) -> Option<String> {
    let (host, prefix) = match entry.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (entry, None),
    };
    // Validate by parsing a reference under the entry.
    let probe = match prefix {
        Some(p) if !p.is_empty() && !p.ends_with('/') => {
            return Some(format!(
                "{entry:?}: a path prefix must end with '/' (write {:?}) so it matches whole path components",
                format!("{entry}/")
            ));
        }
        Some(p) => format!("{host}/{p}x"),
        None => format!("{host}/x"),
    };
    let host_like = host.contains(['.', ':']) || host == "localhost";
    if !host_like {
        return Some(format!(
            "{entry:?} is not a registry host (a host has a '.' or a port, e.g. docker.io, registry.example.com:5000)"
        ));
    }
    match ImageRef::parse(&probe) {
        Ok(_) => None,
        Err(_) => Some(format!(
            "{entry:?} is not a valid registry host or path prefix"
        )),
    }
}

/// Compiled policies, in name order.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<CompiledPolicy>,
}

impl PolicySet {
    pub fn new(mut policies: Vec<CompiledPolicy>) -> PolicySet {
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        PolicySet { policies }
    }

    /// Compile every policy; the valid ones form the set, the others come back as errors.
    pub fn compile_all<'a>(
        policies: impl IntoIterator<Item = &'a SecurityPolicy>,
    ) -> (PolicySet, Vec<Error>) {
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for p in policies {
            match CompiledPolicy::compile(p) {
                Ok(c) => ok.push(c),
                Err(e) => errors.push(e),
            }
        }
        (PolicySet::new(ok), errors)
    }

    pub fn policies(&self) -> &[CompiledPolicy] {
        &self.policies
    }

    /// Whether any policy selects namespaces by label (and so needs the namespace's labels).
    pub fn uses_namespace_labels(&self) -> bool {
        self.policies
            .iter()
            .any(|p| p.judges_admission() && p.scope.namespace_selector.is_some())
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        let table = [
            ("SYS_PTRACE", None),
            ("NET_BIND_SERVICE", None),
            ("ALL", Some("\"ALL\" cannot be approved")),
            (
                "CAP_SYS_ADMIN",
                Some("without the CAP_ prefix: \"SYS_ADMIN\""),
            ),
            ("sys_admin", Some("e.g. \"SYS_ADMIN\"")),
            ("", Some("not a canonical")),
        ];
        for (cap, want) in table {
            let got = capability_name_problem(cap);
            match want {
                None => assert_eq!(got, None, "{cap}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{cap}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn registry_entries() {
        let table = [
            ("docker.io", true),
            ("registry.example.com:5000", true),
            ("localhost:5000", true),
            ("ghcr.io/my-org/", true),
            ("ghcr.io/my-org", false),
            ("myregistry", false),
            ("bad host.io", false),
        ];
        for (entry, ok) in table {
            assert_eq!(registry_entry_problem(entry).is_none(), ok, "{entry}");
        }
    }
}
