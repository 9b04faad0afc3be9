//! Where each rule stands in the compliance frameworks auditors ask about.

use std::fmt;

use palisade_pod_security::CheckId;

use crate::rule_id::RuleId;
use crate::runtime::RuntimeRule;

/// A compliance framework.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framework {
    /// CIS Kubernetes Benchmark (v1.8 numbering).
    CisKubernetes,
    /// NIST SP 800-53 Rev. 5 controls.
    Nist80053,
    /// NIST SP 800-190, Application Container Security Guide (section numbers).
    Nist800190,
    /// MITRE ATT&CK for Containers techniques.
    MitreAttack,
}

impl Framework {
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::CisKubernetes => "CIS Kubernetes",
            Framework::Nist80053 => "NIST SP 800-53",
            Framework::Nist800190 => "NIST SP 800-190",
            Framework::MitreAttack => "MITRE ATT&CK",
        }
    }
}

/// One reference: framework, item id and its title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComplianceRef {
    pub framework: Framework,
    pub id: &'static str,
    pub title: &'static str,
}

impl fmt::Display for ComplianceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.framework.as_str(), self.id)
    }
}

const fn r(framework: Framework, id: &'static str, title: &'static str) -> ComplianceRef {
    ComplianceRef {
        framework,
        id,
        title,
    }
}

use Framework::{
    CisKubernetes as CIS, MitreAttack as ATTACK, Nist80053 as N53, Nist800190 as N190,
};

const LEAST_PRIVILEGE: ComplianceRef = r(N53, "AC-6", "Least Privilege");
const LEAST_FUNCTIONALITY: ComplianceRef = r(N53, "CM-7", "Least Functionality");
const CONFIG_SETTINGS: ComplianceRef = r(N53, "CM-6", "Configuration Settings");
const PROCESS_ISOLATION: ComplianceRef = r(N53, "SC-39", "Process Isolation");
const RUNTIME_CONFIG: ComplianceRef = r(N190, "4.4.3", "Insecure container runtime configurations");
const ESCAPE: ComplianceRef = r(ATTACK, "T1611", "Escape to Host");
const PRIV_ESC: ComplianceRef = r(ATTACK, "T1068", "Exploitation for Privilege Escalation");
const ABUSE_ELEVATION: ComplianceRef = r(ATTACK, "T1548", "Abuse Elevation Control Mechanism");
const UNTRUSTED_IMAGES: ComplianceRef = r(N190, "4.1.5", "Use of untrusted images");
const IMAGE_CONFIG: ComplianceRef = r(N190, "4.1.2", "Image configuration defects");
const SUPPLY_CHAIN: ComplianceRef = r(N53, "SR-11", "Component Authenticity");
const IMPLANT_IMAGE: ComplianceRef = r(ATTACK, "T1525", "Implant Internal Image");

/// The references of a rule (empty where no framework names it).
pub fn refs(rule: RuleId) -> &'static [ComplianceRef] {
    use CheckId as C;
    match rule {
        RuleId::Privileged | RuleId::PodSecurity(C::Privileged) => {
            const {
                &[
                    r(
                        CIS,
                        "5.2.2",
                        "Minimize the admission of privileged containers",
                    ),
                    LEAST_PRIVILEGE,
                    RUNTIME_CONFIG,
                    ESCAPE,
                ]
            }
        }
        RuleId::PodSecurity(C::HostNamespaces) => {
            const {
                &[
                    r(
                        CIS,
                        "5.2.3",
                        "Minimize the admission of containers wishing to share the host process ID namespace",
                    ),
                    r(
                        CIS,
                        "5.2.4",
                        "Minimize the admission of containers wishing to share the host IPC namespace",
                    ),
                    r(
                        CIS,
                        "5.2.5",
                        "Minimize the admission of containers wishing to share the host network namespace",
                    ),
                    PROCESS_ISOLATION,
                    RUNTIME_CONFIG,
                    ESCAPE,
                ]
            }
        }
        RuleId::PodSecurity(C::HostPathVolumes) => {
            const {
                &[
                    r(CIS, "5.2.12", "Minimize the admission of HostPath volumes"),
                    LEAST_PRIVILEGE,
                    RUNTIME_CONFIG,
                    ESCAPE,
                ]
            }
        }
        RuleId::PodSecurity(C::HostPorts) => {
            const {
                &[
                    r(
                        CIS,
                        "5.2.13",
                        "Minimize the admission of containers which use HostPorts",
                    ),
                    LEAST_FUNCTIONALITY,
                    r(N190, "4.4.2", "Unbounded network access from containers"),
                ]
            }
        }
        RuleId::CapabilitiesAllowed | RuleId::PodSecurity(C::CapabilitiesBaseline) => {
            const {
                &[
                    r(
                        CIS,
                        "5.2.9",
                        "Minimize the admission of containers with added capabilities",
                    ),
                    LEAST_PRIVILEGE,
                    RUNTIME_CONFIG,
                    PRIV_ESC,
                ]
            }
        }
        RuleId::CapabilitiesRequireDropAll | RuleId::PodSecurity(C::CapabilitiesRestricted) => {
            const {
                &[
                    r(
                        CIS,
                        "5.2.10",
                        "Minimize the admission of containers with capabilities assigned",
                    ),
                    r(
                        CIS,
                        "5.2.8",
                        "Minimize the admission of containers with the NET_RAW capability",
                    ),
                    LEAST_PRIVILEGE,
                    RUNTIME_CONFIG,
                ]
            }
        }
        RuleId::PodSecurity(C::AppArmorProfile | C::SeLinuxOptions) => {
            const {
                &[
                    r(
                        CIS,
                        "5.7.3",
                        "Apply Security Context to Your Pods and Containers",
                    ),
                    PROCESS_ISOLATION,
                    RUNTIME_CONFIG,
                ]
            }
        }
        RuleId::PodSecurity(C::ProcMount | C::ProcMountRestricted) => {
            const {
                &[
                    r(
                        CIS,
                        "5.7.3",
                        "Apply Security Context to Your Pods and Containers",
                    ),
                    PROCESS_ISOLATION,
                    ESCAPE,
                ]
            }
        }
        RuleId::PodSecurity(C::SeccompProfileBaseline | C::SeccompProfileRestricted) => {
            const {
                &[
                    r(
                        CIS,
                        "5.7.2",
                        "Ensure that the seccomp profile is set to docker/default in your pod definitions",
                    ),
                    PROCESS_ISOLATION,
                    RUNTIME_CONFIG,
                    ESCAPE,
                ]
            }
        }
        RuleId::PodSecurity(C::Sysctls) => &[CONFIG_SETTINGS, PROCESS_ISOLATION, RUNTIME_CONFIG],
        RuleId::PodSecurity(C::WindowsHostProcess) => {
            const {
                &[
                    r(
                        CIS,
                        "5.2.11",
                        "Minimize the admission of Windows HostProcess Containers",
                    ),
                    LEAST_PRIVILEGE,
                    ESCAPE,
                ]
            }
        }
        RuleId::PodSecurity(C::HostProbesAndHostLifecycle) => {
            const {
                &[
                    LEAST_FUNCTIONALITY,
                    r(N190, "4.4.2", "Unbounded network access from containers"),
                ]
            }
        }
        RuleId::AllowPrivilegeEscalation | RuleId::PodSecurity(C::AllowPrivilegeEscalation) => {
            const {
                &[
                    r(
                        CIS,
                        "5.2.6",
                        "Minimize the admission of containers with allowPrivilegeEscalation",
                    ),
                    LEAST_PRIVILEGE,
                    RUNTIME_CONFIG,
                    ABUSE_ELEVATION,
                ]
            }
        }
        RuleId::RunAsNonRoot | RuleId::PodSecurity(C::RunAsNonRoot | C::RunAsUser) => {
            const {
                &[
                    r(CIS, "5.2.7", "Minimize the admission of root containers"),
                    LEAST_PRIVILEGE,
                    RUNTIME_CONFIG,
                    PRIV_ESC,
                ]
            }
        }
        RuleId::PodSecurity(C::RestrictedVolumes) => {
            const {
                &[
                    r(
                        CIS,
                        "5.7.3",
                        "Apply Security Context to Your Pods and Containers",
                    ),
                    LEAST_FUNCTIONALITY,
                    RUNTIME_CONFIG,
                ]
            }
        }
        RuleId::ReadOnlyRootFilesystem => {
            const {
                &[
                    r(
                        CIS,
                        "5.7.3",
                        "Apply Security Context to Your Pods and Containers",
                    ),
                    CONFIG_SETTINGS,
                    RUNTIME_CONFIG,
                ]
            }
        }
        RuleId::ImagesAllowedRegistries => {
            const {
                &[
                    r(CIS, "5.5.1", "Configure Image Provenance"),
                    SUPPLY_CHAIN,
                    UNTRUSTED_IMAGES,
                    IMPLANT_IMAGE,
                ]
            }
        }
        RuleId::ImagesForbidLatestTag | RuleId::ImagesRequireDigest => {
            const {
                &[
                    r(CIS, "5.5.1", "Configure Image Provenance"),
                    SUPPLY_CHAIN,
                    IMAGE_CONFIG,
                    IMPLANT_IMAGE,
                ]
            }
        }
        RuleId::ImagesReference => &[CONFIG_SETTINGS],
        RuleId::ScanVulnerabilities => {
            const {
                &[
                    r(N53, "RA-5", "Vulnerability Monitoring and Scanning"),
                    r(N53, "SI-2", "Flaw Remediation"),
                    r(N190, "4.1.1", "Image vulnerabilities"),
                ]
            }
        }
        RuleId::ScanUnscanned | RuleId::ScanUnjudged => {
            const {
                &[
                    r(N53, "RA-5", "Vulnerability Monitoring and Scanning"),
                    r(N190, "4.1.1", "Image vulnerabilities"),
                ]
            }
        }
        RuleId::Runtime(rule) => runtime_refs(rule),
    }
}

// The runtime rules: every one is system monitoring; the MITRE ATT&CK ids of Falco's rules
// are Falco's tags, with the technique added where Falco tags only a tactic (TA0003) or a
// technique that fits poorly (T1565 for API server contact).
const MONITORING: ComplianceRef = r(N53, "SI-4", "System Monitoring");
const MALICIOUS_CODE: ComplianceRef = r(N53, "SI-3", "Malicious Code Protection");
const INTEGRITY: ComplianceRef = r(N53, "SI-7", "Software, Firmware, and Information Integrity");
const AUDIT_PROTECTION: ComplianceRef = r(N53, "AU-9", "Protection of Audit Information");
const USER_SOFTWARE: ComplianceRef = r(N53, "CM-11", "User-Installed Software");
const SCRIPTING: ComplianceRef = r(ATTACK, "T1059", "Command and Scripting Interpreter");
const UNIX_SHELL: ComplianceRef = r(
    ATTACK,
    "T1059.004",
    "Command and Scripting Interpreter: Unix Shell",
);
const PERSISTENCE: ComplianceRef = r(ATTACK, "TA0003", "Persistence");
const TOOL_TRANSFER: ComplianceRef = r(ATTACK, "T1105", "Ingress Tool Transfer");
const REFLECTIVE_LOADING: ComplianceRef = r(ATTACK, "T1620", "Reflective Code Loading");
const KERNEL_MODULES: ComplianceRef = r(
    ATTACK,
    "T1547.006",
    "Boot or Logon Autostart Execution: Kernel Modules and Extensions",
);
const PTRACE_INJECTION: ComplianceRef = r(
    ATTACK,
    "T1055.008",
    "Process Injection: Ptrace System Calls",
);
const DEBUGGER_EVASION: ComplianceRef = r(ATTACK, "T1622", "Debugger Evasion");
const PASSWORD_STORES: ComplianceRef = r(ATTACK, "T1555", "Credentials from Password Stores");
const UNSECURED_CREDENTIALS: ComplianceRef = r(ATTACK, "T1552", "Unsecured Credentials");
const CREDENTIALS_IN_FILES: ComplianceRef = r(
    ATTACK,
    "T1552.001",
    "Unsecured Credentials: Credentials In Files",
);
const INDICATOR_REMOVAL: ComplianceRef = r(ATTACK, "T1070", "Indicator Removal");
const DATA_DESTRUCTION: ComplianceRef = r(ATTACK, "T1485", "Data Destruction");
const DATA_MANIPULATION: ComplianceRef = r(ATTACK, "T1565", "Data Manipulation");
const RESOURCE_DISCOVERY: ComplianceRef = r(ATTACK, "T1613", "Container and Resource Discovery");
const ARP_POISONING: ComplianceRef = r(
    ATTACK,
    "T1557.002",
    "Adversary-in-the-Middle: ARP Cache Poisoning",
);
const RESOURCE_HIJACKING: ComplianceRef = r(ATTACK, "T1496", "Resource Hijacking");
const SYSTEM_PROCESS: ComplianceRef = r(ATTACK, "T1543", "Create or Modify System Process");
const ACCOUNT_MANIPULATION: ComplianceRef = r(ATTACK, "T1098", "Account Manipulation");

/// The references of a runtime rule: NIST SP 800-53 first, then MITRE ATT&CK.
impl RuntimeRule {
    /// Its compliance references (NIST SP 800-53, MITRE ATT&CK).
    pub fn compliance(self) -> &'static [ComplianceRef] {
        refs(RuleId::Runtime(self))
    }

    /// Its MITRE ATT&CK ids (`T1059`, `T1055.008`, or a tactic such as `TA0003`).
    pub fn mitre(self) -> impl Iterator<Item = &'static str> {
        self.compliance()
            .iter()
            .filter(|r| r.framework == Framework::MitreAttack)
            .map(|r| r.id)
    }
}

fn runtime_refs(rule: RuntimeRule) -> &'static [ComplianceRef] {
    use RuntimeRule as R;
    match rule {
        R::TerminalShell
        | R::NetcatRemoteCodeExecution
        | R::RedirectStdioToNetwork
        | R::SshNonStandardPort => &[MONITORING, SCRIPTING],
        R::RunShellUntrusted | R::ExecutionFromDevShm => &[MONITORING, UNIX_SHELL],
        R::DropAndExecuteNewBinary => &[MONITORING, INTEGRITY, PERSISTENCE, TOOL_TRANSFER],
        R::FilelessExecution => &[MONITORING, MALICIOUS_CODE, REFLECTIVE_LOADING],
        R::DebugfsInPrivilegedContainer | R::ReleaseAgentEscape => &[MONITORING, ESCAPE],
        R::KernelModuleInjection => &[MONITORING, PERSISTENCE, KERNEL_MODULES],
        R::PtraceAttached => &[MONITORING, PTRACE_INJECTION],
        R::PtraceAntiDebug => &[MONITORING, DEBUGGER_EVASION],
        R::ReadSensitiveFileUntrusted
        | R::ReadSensitiveFileTrustedAfterStartup
        | R::DirectoryTraversalRead
        | R::SymlinkOverSensitiveFiles
        | R::HardlinkOverSensitiveFiles => &[MONITORING, PASSWORD_STORES],
        R::SearchPrivateKeysOrPasswords => &[MONITORING, CREDENTIALS_IN_FILES],
        R::FindAwsCredentials => &[MONITORING, UNSECURED_CREDENTIALS],
        R::ClearLogActivities => &[MONITORING, AUDIT_PROTECTION, INDICATOR_REMOVAL],
        R::RemoveBulkData => &[MONITORING, DATA_DESTRUCTION],
        R::ContactK8sApiServer => &[MONITORING, DATA_MANIPULATION, RESOURCE_DISCOVERY],
        R::PacketSocket => &[MONITORING, ARP_POISONING],
        R::PackageManagement => &[MONITORING, USER_SOFTWARE, TOOL_TRANSFER],
        R::WriteBelowBinaryDirOrEtc => {
            &[MONITORING, INTEGRITY, SYSTEM_PROCESS, ACCOUNT_MANIPULATION]
        }
        R::CryptoMiningPool => &[MONITORING, MALICIOUS_CODE, RESOURCE_HIJACKING],
    }
}

/// The rule's compliance references as result properties, one per framework, ids joined
/// by `, ` (`cis-kubernetes: 5.2.2`, `nist-sp-800-53: AC-6`, `mitre-attack: T1611`), so
/// report consumers can filter on them without knowing Palisade's rules.
pub fn compliance_properties(
    rule: RuleId,
    properties: &mut std::collections::BTreeMap<String, String>,
) {
    for r in refs(rule) {
        let key = match r.framework {
            Framework::CisKubernetes => "cis-kubernetes",
            Framework::Nist80053 => "nist-sp-800-53",
            Framework::Nist800190 => "nist-sp-800-190",
            Framework::MitreAttack => "mitre-attack",
        };
        properties
            .entry(key.to_owned())
            .and_modify(|ids| {
                ids.push_str(", ");
                ids.push_str(r.id);
            })
            .or_insert_with(|| r.id.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_security_rule_has_a_nist_reference() {
        for rule in RuleId::ALL
            .iter()
            .chain(RuleId::SCAN)
            .chain(RuleId::RUNTIME)
        {
            assert!(
                refs(*rule)
                    .iter()
                    .any(|r| r.framework == Framework::Nist80053),
                "{rule} has no NIST SP 800-53 reference"
            );
        }
    }

    #[test]
    fn every_runtime_rule_has_a_mitre_technique() {
        for rule in RuntimeRule::ALL {
            assert!(
                rule.mitre()
                    .any(|id| id.starts_with('T') && !id.starts_with("TA")),
                "{} has no MITRE ATT&CK technique",
                rule.id()
            );
        }
    }
}
