//! The Kubernetes Pod Security Standards (`baseline`, `restricted`) as pure functions over a
//! pod's metadata and spec, with the exact semantics of each Kubernetes version.
//!
//! Nothing here allocates for a pod that passes; a violation allocates its own finding.

mod checks;
mod version;

pub use checks::{ContainerView, containers, evaluate, evaluate_check};
pub use version::{Level, ParseError, Version};

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The parts of a pod the checks read: its metadata (annotations for AppArmor and legacy
/// seccomp) and its spec. For a workload these are the pod template's.
#[derive(Clone, Copy, Debug)]
pub struct PodView<'a> {
    pub metadata: &'a ObjectMeta,
    pub spec: &'a PodSpec,
}

/// Which list of the pod spec a container stands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    Container,
    InitContainer,
    EphemeralContainer,
}

impl ContainerKind {
    /// The word used in messages ("container", "initContainer", "ephemeralContainer").
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerKind::Container => "container",
            ContainerKind::InitContainer => "initContainer",
            ContainerKind::EphemeralContainer => "ephemeralContainer",
        }
    }

    /// The field of the pod spec holding this kind of container.
    pub fn field(self) -> &'static str {
        match self {
            ContainerKind::Container => "containers",
            ContainerKind::InitContainer => "initContainers",
            ContainerKind::EphemeralContainer => "ephemeralContainers",
        }
    }
}

/// A container a finding is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    pub kind: ContainerKind,
    /// Index in its list.
    pub index: usize,
    pub name: String,
}

/// The upstream check identifiers (as in `k8s.io/pod-security-admission/policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    // baseline
    Privileged,
    HostNamespaces,
    HostPathVolumes,
    HostPorts,
    CapabilitiesBaseline,
    AppArmorProfile,
    SeLinuxOptions,
    ProcMount,
    SeccompProfileBaseline,
    Sysctls,
    WindowsHostProcess,
    HostProbesAndHostLifecycle,
    // restricted
    AllowPrivilegeEscalation,
    RunAsNonRoot,
    RunAsUser,
    SeccompProfileRestricted,
    CapabilitiesRestricted,
    RestrictedVolumes,
    ProcMountRestricted,
}

impl CheckId {
    /// The upstream id (`privileged`, `capabilities_baseline`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Privileged => "privileged",
            CheckId::HostNamespaces => "hostNamespaces",
            CheckId::HostPathVolumes => "hostPathVolumes",
            CheckId::HostPorts => "hostPorts",
            CheckId::CapabilitiesBaseline => "capabilities_baseline",
            CheckId::AppArmorProfile => "appArmorProfile",
            CheckId::SeLinuxOptions => "seLinuxOptions",
            CheckId::ProcMount => "procMount",
            CheckId::SeccompProfileBaseline => "seccompProfile_baseline",
            CheckId::Sysctls => "sysctls",
            CheckId::WindowsHostProcess => "windowsHostProcess",
            CheckId::HostProbesAndHostLifecycle => "hostProbesAndHostLifecycle",
            CheckId::AllowPrivilegeEscalation => "allowPrivilegeEscalation",
            CheckId::RunAsNonRoot => "runAsNonRoot",
            CheckId::RunAsUser => "runAsUser",
            CheckId::SeccompProfileRestricted => "seccompProfile_restricted",
            CheckId::CapabilitiesRestricted => "capabilities_restricted",
            CheckId::RestrictedVolumes => "restrictedVolumes",
            CheckId::ProcMountRestricted => "procMount_restricted",
        }
    }

    /// Every check, baseline first, in the order `evaluate` runs them.
    pub const ALL: [CheckId; 19] = [
        CheckId::Privileged,
        CheckId::HostNamespaces,
        CheckId::HostPathVolumes,
        CheckId::HostPorts,
        CheckId::CapabilitiesBaseline,
        CheckId::AppArmorProfile,
        CheckId::SeLinuxOptions,
        CheckId::ProcMount,
        CheckId::SeccompProfileBaseline,
        CheckId::Sysctls,
        CheckId::WindowsHostProcess,
        CheckId::HostProbesAndHostLifecycle,
        CheckId::AllowPrivilegeEscalation,
        CheckId::RunAsNonRoot,
        CheckId::RunAsUser,
        CheckId::SeccompProfileRestricted,
        CheckId::CapabilitiesRestricted,
        CheckId::RestrictedVolumes,
        CheckId::ProcMountRestricted,
    ];

    /// The first policy minor version (`v1.N`) that has the check.
    pub fn min_version(self) -> u16 {
        match self {
            CheckId::AllowPrivilegeEscalation => 8,
            CheckId::SeccompProfileRestricted => 19,
            CheckId::CapabilitiesRestricted => 22,
            CheckId::RunAsUser => 23,
            CheckId::HostProbesAndHostLifecycle => 34,
            CheckId::ProcMountRestricted => 35,
            _ => 0,
        }
    }

    /// The restricted check that replaces this baseline check when the restricted level is
    /// enforced at `version` (upstream's `OverrideCheckIDs`).
    pub fn superseded_by(self, version: Version) -> Option<CheckId> {
        let by = match self {
            CheckId::HostPathVolumes => CheckId::RestrictedVolumes,
            CheckId::SeccompProfileBaseline => CheckId::SeccompProfileRestricted,
            CheckId::CapabilitiesBaseline => CheckId::CapabilitiesRestricted,
            CheckId::ProcMount => CheckId::ProcMountRestricted,
            _ => return None,
        };
        version.at_least(by.min_version()).then_some(by)
    }

    /// Whether `evaluate(level, version, _)` runs this check.
    pub fn applies(self, level: Level, version: Version) -> bool {
        if level == Level::Privileged || !version.at_least(self.min_version()) {
            return false;
        }
        match self.level() {
            Level::Restricted => level == Level::Restricted,
            _ => level == Level::Baseline || self.superseded_by(version).is_none(),
        }
    }

    /// The level that introduced the check.
    pub fn level(self) -> Level {
        match self {
            CheckId::AllowPrivilegeEscalation
            | CheckId::RunAsNonRoot
            | CheckId::RunAsUser
            | CheckId::SeccompProfileRestricted
            | CheckId::CapabilitiesRestricted
            | CheckId::RestrictedVolumes
            | CheckId::ProcMountRestricted => Level::Restricted,
            _ => Level::Baseline,
        }
    }
}

/// One violation of one check, precise enough for a developer to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub check: CheckId,
    /// The container at fault; `None` for pod-level fields.
    pub container: Option<ContainerRef>,
    /// Path of the offending field relative to the pod (`spec.containers[0].securityContext.privileged`,
    /// `metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]`,
    /// `spec.hostNetwork`). A missing required field is named where it must be set.
    pub field: String,
    /// What is wrong, in the form `securityContext.privileged=true is not allowed`
    /// (container-relative for container findings).
    pub message: String,
    /// How to fix it, e.g. `remove it or set false`.
    pub fix: String,
}
