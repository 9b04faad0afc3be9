//! Rule identifiers: the stable names every violation carries and exceptions, waivers and
//! documentation refer to. A leaf module, so that policies, exceptions, scans and decisions
//! can all name rules without importing one another.

use std::fmt;

use palisade_pod_security::CheckId;

use crate::runtime::RuntimeRule;

/// The runtime rules as rule ids, for [`RuleId::RUNTIME`].
const RULE_IDS: [RuleId; RuntimeRule::ALL.len()] = {
    let mut ids = [RuleId::Privileged; RuntimeRule::ALL.len()];
    let mut i = 0;
    while i < ids.len() {
        ids[i] = RuleId::Runtime(RuntimeRule::ALL[i]);
        i += 1;
    }
    ids
};

/// A stable rule identifier, shown in every violation and named by exceptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    /// A Pod Security Standards check (`podSecurity.<upstream id>`).
    PodSecurity(CheckId),
    Privileged,
    RunAsNonRoot,
    AllowPrivilegeEscalation,
    ReadOnlyRootFilesystem,
    CapabilitiesAllowed,
    CapabilitiesRequireDropAll,
    ImagesReference,
    ImagesAllowedRegistries,
    ImagesForbidLatestTag,
    ImagesRequireDigest,
    /// A ScanPolicy: the image has findings at or above `failOn`.
    ScanVulnerabilities,
    /// A ScanPolicy: the image has no usable scan report (`onUnscanned`).
    ScanUnscanned,
    /// A ScanPolicy: the image's scan could not judge all of it (`onUnjudged`).
    ScanUnjudged,
    /// A runtime rule (`runtime.<rule>`), judged by the node agent.
    Runtime(RuntimeRule),
}

impl RuleId {
    /// The rule ids of ScanPolicy violations.
    pub const SCAN: &'static [RuleId] = &[
        RuleId::ScanVulnerabilities,
        RuleId::ScanUnscanned,
        RuleId::ScanUnjudged,
    ];

    /// The runtime rule ids (`spec.runtime`), which exceptions also name.
    pub const RUNTIME: &'static [RuleId] = &RULE_IDS;

    /// Every SecurityPolicy admission rule id, for validating exception patterns and for
    /// documentation. ScanPolicy's own ([`RuleId::SCAN`]) are waived by `spec.ignore`; the
    /// runtime ones are [`RuleId::RUNTIME`].
    pub const ALL: &'static [RuleId] = &[
        RuleId::PodSecurity(CheckId::Privileged),
        RuleId::PodSecurity(CheckId::HostNamespaces),
        RuleId::PodSecurity(CheckId::HostPathVolumes),
        RuleId::PodSecurity(CheckId::HostPorts),
        RuleId::PodSecurity(CheckId::CapabilitiesBaseline),
        RuleId::PodSecurity(CheckId::AppArmorProfile),
        RuleId::PodSecurity(CheckId::SeLinuxOptions),
        RuleId::PodSecurity(CheckId::ProcMount),
        RuleId::PodSecurity(CheckId::SeccompProfileBaseline),
        RuleId::PodSecurity(CheckId::Sysctls),
        RuleId::PodSecurity(CheckId::WindowsHostProcess),
        RuleId::PodSecurity(CheckId::HostProbesAndHostLifecycle),
        RuleId::PodSecurity(CheckId::AllowPrivilegeEscalation),
        RuleId::PodSecurity(CheckId::RunAsNonRoot),
        RuleId::PodSecurity(CheckId::RunAsUser),
        RuleId::PodSecurity(CheckId::SeccompProfileRestricted),
        RuleId::PodSecurity(CheckId::CapabilitiesRestricted),
        RuleId::PodSecurity(CheckId::RestrictedVolumes),
        RuleId::PodSecurity(CheckId::ProcMountRestricted),
        RuleId::Privileged,
        RuleId::RunAsNonRoot,
        RuleId::AllowPrivilegeEscalation,
        RuleId::ReadOnlyRootFilesystem,
        RuleId::CapabilitiesAllowed,
        RuleId::CapabilitiesRequireDropAll,
        RuleId::ImagesReference,
        RuleId::ImagesAllowedRegistries,
        RuleId::ImagesForbidLatestTag,
        RuleId::ImagesRequireDigest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::PodSecurity(check) => match check {
                CheckId::Privileged => "podSecurity.privileged",
                CheckId::HostNamespaces => "podSecurity.hostNamespaces",
                CheckId::HostPathVolumes => "podSecurity.hostPathVolumes",
                CheckId::HostPorts => "podSecurity.hostPorts",
                CheckId::CapabilitiesBaseline => "podSecurity.capabilities_baseline",
                CheckId::AppArmorProfile => "podSecurity.appArmorProfile",
                CheckId::SeLinuxOptions => "podSecurity.seLinuxOptions",
                CheckId::ProcMount => "podSecurity.procMount",
                CheckId::SeccompProfileBaseline => "podSecurity.seccompProfile_baseline",
                CheckId::Sysctls => "podSecurity.sysctls",
                CheckId::WindowsHostProcess => "podSecurity.windowsHostProcess",
                CheckId::HostProbesAndHostLifecycle => "podSecurity.hostProbesAndHostLifecycle",
                CheckId::AllowPrivilegeEscalation => "podSecurity.allowPrivilegeEscalation",
                CheckId::RunAsNonRoot => "podSecurity.runAsNonRoot",
                CheckId::RunAsUser => "podSecurity.runAsUser",
                CheckId::SeccompProfileRestricted => "podSecurity.seccompProfile_restricted",
                CheckId::CapabilitiesRestricted => "podSecurity.capabilities_restricted",
                CheckId::RestrictedVolumes => "podSecurity.restrictedVolumes",
                CheckId::ProcMountRestricted => "podSecurity.procMount_restricted",
            },
            RuleId::Privileged => "privileged",
            RuleId::RunAsNonRoot => "runAsNonRoot",
            RuleId::AllowPrivilegeEscalation => "allowPrivilegeEscalation",
            RuleId::ReadOnlyRootFilesystem => "readOnlyRootFilesystem",
            RuleId::CapabilitiesAllowed => "capabilities.allowed",
            RuleId::CapabilitiesRequireDropAll => "capabilities.requireDropAll",
            RuleId::ImagesReference => "images.reference",
            RuleId::ImagesAllowedRegistries => "images.allowedRegistries",
            RuleId::ImagesForbidLatestTag => "images.forbidLatestTag",
            RuleId::ImagesRequireDigest => "images.requireDigest",
            RuleId::ScanVulnerabilities => "scan.vulnerabilities",
            RuleId::ScanUnscanned => "scan.unscanned",
            RuleId::ScanUnjudged => "scan.unjudged",
            RuleId::Runtime(rule) => rule.id(),
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique() {
        let mut names: Vec<_> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
