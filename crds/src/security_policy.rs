use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A SecurityPolicy says which pods may run: Pod Security Standards presets plus individual
/// controls, in one of three modes, for the namespaces and workloads it matches.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "palisade.dev",
    version = "v1alpha1",
    kind = "SecurityPolicy",
    doc = "SecurityPolicy decides which pods may run in the namespaces it matches: Pod Security Standards levels, individual controls and image rules, enforced, warned about or audited.",
    plural = "securitypolicies",
    shortname = "secpol",
    category = "palisade",
    status = "SecurityPolicyStatus",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Level","type":"string","jsonPath":".spec.podSecurity.level"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.podSecurity.version","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Violations","type":"integer","jsonPath":".status.violations"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SecurityPolicySpec {
    /// What happens on a violation: `Enforce` denies the request, `Warn` admits it and
    /// returns admission warnings, `Audit` admits it and only records the result.
    #[serde(default)]
    pub mode: Mode,

    /// Which objects the policy judges. An empty or missing `match` means every namespace.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<MatchResources>,

    /// Objects left out even when `match` selects them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ExcludeResources>,

    /// A Kubernetes Pod Security Standards level at a given version, with the exact upstream
    /// semantics of that version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<PodSecurity>,

    /// Linux capabilities containers may add, and whether they must drop ALL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,

    /// `Deny` refuses containers with `securityContext.privileged: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<Privileged>,

    /// `true` requires every container to run as a non-root user: `runAsNonRoot: true` (on the
    /// pod or the container) and no `runAsUser: 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,

    /// `false` requires every container to set `allowPrivilegeEscalation: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,

    /// `true` requires every container to set `readOnlyRootFilesystem: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,

    /// Rules on container image references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageRules>,

    /// What the node agent watches running containers of the matched pods for: runtime rules
    /// (Falco's stable rule names and Palisade's own), reported or, opt-in per rule, acted on
    /// by killing the offending process. Independent of `mode`, which is about admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeRules>,

    /// Named, owned and dated waivers of specific rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<PolicyException>,

    /// How far ahead an exception's `expires` may lie, in days (default 180), so every
    /// waiver comes up for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub max_exception_days: Option<u32>,
}

/// What a policy does with a violation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Mode {
    /// Deny the request.
    #[default]
    Enforce,
    /// Admit the request and return admission warnings (kubectl prints them).
    Warn,
    /// Admit the request and only record the result (Events, metrics, reports).
    Audit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "Enforce",
            Mode::Warn => "Warn",
            Mode::Audit => "Audit",
        }
    }
}

/// The runtime rules a policy applies to the running containers of the pods it matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeRules {
    /// `Audit` (the default) only reports detections (Events, PolicyReport results, metrics,
    /// JSON lines); `Enforce` also kills the offending process for the rules in `enforce`.
    // No schema default: a defaulted `mode` has no owner under server-side apply, so it would
    // keep `runtime` (every default rule) alive after its applier removed the section.
    #[serde(default)]
    #[schemars(transform = no_schema_default)]
    pub mode: RuntimeMode,

    /// Runtime rule ids to apply (`runtime.terminalShell`, …; see docs/rules/). Empty or
    /// unset: every default rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,

    /// With `mode: Enforce`, the rule ids whose offending process is killed (each must be
    /// among the applied rules), or `"*"` for every applied rule. Detections of other rules
    /// are reported only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enforce: Vec<String>,
}

fn no_schema_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

/// What the node agent does with a runtime detection.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum RuntimeMode {
    /// Report only.
    #[default]
    Audit,
    /// Report, and kill the offending process for the rules listed in `enforce`.
    Enforce,
}

impl RuntimeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeMode::Audit => "Audit",
            RuntimeMode::Enforce => "Enforce",
        }
    }
}

/// Which objects a policy judges. All given criteria must hold.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchResources {
    /// Namespaces whose labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Pods whose labels match this selector (for a workload: its pod template's labels, so
    /// the workload and the pods it creates are judged alike).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
}

/// Objects a policy leaves out. Any given criterion is enough to exclude.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExcludeResources {
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Pods (or pod templates) whose labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
}

/// A Pod Security Standards level at a version.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurity {
    /// `privileged` (no restriction), `baseline` or `restricted`.
    pub level: PodSecurityLevel,
    /// `latest`, or `v1.N` to pin the checks of Kubernetes 1.N. A version newer than
    /// Palisade knows is evaluated as `latest`.
    #[serde(default = "latest")]
    #[schemars(regex(pattern = r"^(latest|v1\.(0|[1-9][0-9]*))$"))]
    pub version: String,
}

fn latest() -> String {
    "latest".to_owned()
}

/// The Pod Security Standards levels.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    /// No restriction.
    Privileged,
    /// Prevents known privilege escalations.
    #[default]
    Baseline,
    /// Current pod hardening best practice.
    Restricted,
}

impl PodSecurityLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurityLevel::Privileged => "privileged",
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Restricted => "restricted",
        }
    }
}

/// Capability controls.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Capability names a container may add, canonical form (`NET_BIND_SERVICE`, not
    /// `CAP_NET_BIND_SERVICE` or `net_bind_service`). Matched exactly; anything else added
    /// is denied. Leave unset to not restrict added capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^[A-Z][A-Z0-9_]*$")))]
    pub allowed: Option<Vec<String>>,
    /// Require every container to drop `ALL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_drop_all: Option<bool>,
}

/// Whether privileged containers are allowed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Privileged {
    Allow,
    Deny,
}

/// Image reference rules.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageRules {
    /// Registries images may come from: a whole host (`registry.example.com`,
    /// `registry.example.com:5000`, `docker.io`) or a host with a path prefix ending in `/`
    /// (`ghcr.io/my-org/`). Image references are normalized first, so `nginx` is
    /// `docker.io/library/nginx:latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^[A-Za-z0-9.-]+(:[0-9]+)?(/([a-z0-9._/-]*/)?)?$")))]
    pub allowed_registries: Option<Vec<String>>,
    /// Deny images tagged `latest` or with no tag (unless pinned by digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_latest_tag: Option<bool>,
    /// Require images pinned by digest (`@sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_digest: Option<bool>,
}

/// A waiver: rules it waives, for what, why, who owns it, and until when.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyException {
    /// A name for the exception, shown in decisions and reports.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Rule ids it waives (as shown in denials and detections, e.g. `podSecurity.privileged`,
    /// `capabilities.allowed`, `runtime.terminalShell`); a trailing `*` matches a prefix
    /// (`runtime.*`), `*` alone every rule.
    #[schemars(length(min = 1))]
    pub rules: Vec<String>,
    /// Namespaces it covers (all when unset).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Image patterns it covers (`*` matches any run of characters, e.g.
    /// `docker.io/library/nginx:*`); a container-level violation is waived only for a
    /// container whose normalized image matches. Pod-level violations are never covered by an
    /// image-scoped exception. A runtime detection is waived for the image of the container
    /// the process runs in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Service accounts it covers: `name` (any covered namespace) or `namespace/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<String>,
    /// Pods (or pod templates) whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
    /// Why the exception exists. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who is accountable for it (a team or a person). Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// When it stops applying (RFC 3339), at most `maxExceptionDays` ahead. Required. Past
    /// this instant, the violations it waived are reported again and the decision says the
    /// exception expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Time>,
}

/// Observed state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityPolicyStatus {
    /// `Ready`: whether the current generation is valid and in force (reason `Valid`,
    /// `Invalid` with the problems in the message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last valid generation and its spec. When an update is invalid, this stays in
    /// force (the webhook enforces it) until a valid generation replaces it, so a typo never
    /// silently drops enforcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced: Option<EnforcedSpec>,
    /// Violations found by the last background audit of running workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violations: Option<i64>,
    /// When the last background audit finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_audit_time: Option<Time>,
    /// Exceptions that expire within 7 days, or have expired: review or renew them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expiring_exceptions: Vec<ExpiringException>,
}

/// An exception (or ignore entry) near or past its expiry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiringException {
    /// The exception's name (SecurityPolicy) or the ignored id (ScanPolicy).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub expires: Time,
    /// `true` once `expires` has passed.
    #[serde(default)]
    pub expired: bool,
}

/// A generation of a policy that was valid, with its spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnforcedSpec {
    pub generation: i64,
    pub spec: SecurityPolicySpec,
}
