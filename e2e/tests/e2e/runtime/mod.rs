//! The runtime rules on the cluster's real node: a behaviour done inside a real pod, and the
//! node agent's three outputs about it within 5 s — the Event on the pod naming the rule, the
//! result in the namespace's runtime PolicyReport and the JSON line on the agent's stdout.
//!
//! Each test has a namespace, a SecurityPolicy matching only that namespace (named after
//! it) and pods of the workload image (`palisade_e2e::runtime::workload_image`): busybox and
//! a probe for what busybox cannot do. Commands in the pods name programs by absolute path:
//! busybox's shell runs an applet named without one by re-executing /proc/self/exe, which
//! the kernel then calls `exe`, and the name-based rules would not see `grep` or `nc`.
//!
//! - `rules`: one test per rule;
//! - `benign`: a web server under requests and periodic jobs for a minute, no detection;
//! - `enforce`: the offending process is killed, and only for the rules listed;
//! - `exception`: an exception waives exactly its rule;
//! - `fallback`: with the process connector instead of eBPF, the exec-based rules still fire.

mod benign;
mod enforce;
mod exception;
mod fallback;
mod rules;

use std::time::Instant;

use palisade_e2e::runtime::{self, PodRef, Rule};
use palisade_e2e::{Output, Test};
use serde_json::{Value, json};

use crate::{E2E, wait_ready};

const fn rule(
    id: &'static str,
    name: &'static str,
    priority: &'static str,
    reason: &'static str,
) -> Rule {
    Rule {
        id,
        name,
        priority,
        reason,
    }
}

// The catalogue as users meet it (docs/rules/runtime.*.md): id, name, priority, Event reason.
pub const TERMINAL_SHELL: Rule = rule(
    "runtime.terminalShell",
    "Terminal shell in container",
    "Notice",
    "TerminalShellInContainer",
);
pub const RUN_SHELL_UNTRUSTED: Rule = rule(
    "runtime.runShellUntrusted",
    "Run shell untrusted",
    "Notice",
    "RunShellUntrusted",
);
pub const DROP_AND_EXECUTE_NEW_BINARY: Rule = rule(
    "runtime.dropAndExecuteNewBinary",
    "Drop and execute new binary in container",
    "Critical",
    "DropAndExecuteNewBinaryInContainer",
);
pub const EXECUTION_FROM_DEV_SHM: Rule = rule(
    "runtime.executionFromDevShm",
    "Execution from /dev/shm",
    "Warning",
    "ExecutionFromDevShm",
);
pub const FILELESS_EXECUTION: Rule = rule(
    "runtime.filelessExecution",
    "Fileless execution via memfd_create",
    "Critical",
    "FilelessExecutionViaMemfdCreate",
);
pub const DEBUGFS_IN_PRIVILEGED_CONTAINER: Rule = rule(
    "runtime.debugfsInPrivilegedContainer",
    "Debugfs Launched in Privileged Container",
    "Warning",
    "DebugfsLaunchedInPrivilegedContainer",
);
pub const KERNEL_MODULE_INJECTION: Rule = rule(
    "runtime.kernelModuleInjection",
    "Linux Kernel Module Injection Detected",
    "Warning",
    "LinuxKernelModuleInjectionDetected",
);
pub const PTRACE_ATTACHED: Rule = rule(
    "runtime.ptraceAttached",
    "PTRACE attached to process",
    "Warning",
    "PTRACEAttachedToProcess",
);
pub const PTRACE_ANTI_DEBUG: Rule = rule(
    "runtime.ptraceAntiDebug",
    "PTRACE anti-debug attempt",
    "Notice",
    "PTRACEAntiDebugAttempt",
);
pub const READ_SENSITIVE_FILE_UNTRUSTED: Rule = rule(
    "runtime.readSensitiveFileUntrusted",
    "Read sensitive file untrusted",
    "Warning",
    "ReadSensitiveFileUntrusted",
);
pub const READ_SENSITIVE_FILE_TRUSTED_AFTER_STARTUP: Rule = rule(
    "runtime.readSensitiveFileTrustedAfterStartup",
    "Read sensitive file trusted after startup",
    "Warning",
    "ReadSensitiveFileTrustedAfterStartup",
);
pub const DIRECTORY_TRAVERSAL_READ: Rule = rule(
    "runtime.directoryTraversalRead",
    "Directory traversal monitored file read",
    "Warning",
    "DirectoryTraversalMonitoredFileRead",
);
pub const SEARCH_PRIVATE_KEYS_OR_PASSWORDS: Rule = rule(
    "runtime.searchPrivateKeysOrPasswords",
    "Search Private Keys or Passwords",
    "Warning",
    "SearchPrivateKeysOrPasswords",
);
pub const FIND_AWS_CREDENTIALS: Rule = rule(
    "runtime.findAwsCredentials",
    "Find AWS Credentials",
    "Warning",
    "FindAWSCredentials",
);
pub const CLEAR_LOG_ACTIVITIES: Rule = rule(
    "runtime.clearLogActivities",
    "Clear Log Activities",
    "Warning",
    "ClearLogActivities",
);
pub const REMOVE_BULK_DATA: Rule = rule(
    "runtime.removeBulkData",
    "Remove Bulk Data from Disk",
    "Warning",
    "RemoveBulkDataFromDisk",
);
pub const SYMLINK_OVER_SENSITIVE_FILES: Rule = rule(
    "runtime.symlinkOverSensitiveFiles",
    "Create Symlink Over Sensitive Files",
    "Warning",
    "CreateSymlinkOverSensitiveFiles",
);
pub const HARDLINK_OVER_SENSITIVE_FILES: Rule = rule(
    "runtime.hardlinkOverSensitiveFiles",
    "Create Hardlink Over Sensitive Files",
    "Warning",
    "CreateHardlinkOverSensitiveFiles",
);
pub const RELEASE_AGENT_ESCAPE: Rule = rule(
    "runtime.releaseAgentEscape",
    "Detect release_agent File Container Escapes",
    "Critical",
    "DetectReleaseAgentFileContainerEscapes",
);
pub const CONTACT_K8S_API_SERVER: Rule = rule(
    "runtime.contactK8sApiServer",
    "Contact K8S API Server From Container",
    "Notice",
    "ContactK8SAPIServerFromContainer",
);
pub const NETCAT_REMOTE_CODE_EXECUTION: Rule = rule(
    "runtime.netcatRemoteCodeExecution",
    "Netcat Remote Code Execution in Container",
    "Warning",
    "NetcatRemoteCodeExecutionInContainer",
);
pub const REDIRECT_STDIO_TO_NETWORK: Rule = rule(
    "runtime.redirectStdioToNetwork",
    "Redirect STDOUT/STDIN to Network Connection in Container",
    "Notice",
    "RedirectSTDOUTSTDINToNetworkConnectionInContainer",
);
pub const PACKET_SOCKET: Rule = rule(
    "runtime.packetSocket",
    "Packet socket created in container",
    "Notice",
    "PacketSocketCreatedInContainer",
);
pub const SSH_NON_STANDARD_PORT: Rule = rule(
    "runtime.sshNonStandardPort",
    "Disallowed SSH Connection Non Standard Port",
    "Notice",
    "DisallowedSSHConnectionNonStandardPort",
);
pub const PACKAGE_MANAGEMENT: Rule = rule(
    "runtime.packageManagement",
    "Package management in container",
    "Error",
    "PackageManagementInContainer",
);
pub const WRITE_BELOW_BINARY_DIR_OR_ETC: Rule = rule(
    "runtime.writeBelowBinaryDirOrEtc",
    "Write below binary directory or /etc",
    "Error",
    "WriteBelowBinaryDirectoryOrEtc",
);
pub const CRYPTO_MINING_POOL: Rule = rule(
    "runtime.cryptoMiningPool",
    "Connection to crypto-mining pool port",
    "Critical",
    "ConnectionToCryptoMiningPoolPort",
);

/// Every rule, in catalogue order.
pub const ALL: [Rule; 27] = [
    TERMINAL_SHELL,
    RUN_SHELL_UNTRUSTED,
    DROP_AND_EXECUTE_NEW_BINARY,
    EXECUTION_FROM_DEV_SHM,
    FILELESS_EXECUTION,
    DEBUGFS_IN_PRIVILEGED_CONTAINER,
    KERNEL_MODULE_INJECTION,
    PTRACE_ATTACHED,
    PTRACE_ANTI_DEBUG,
    READ_SENSITIVE_FILE_UNTRUSTED,
    READ_SENSITIVE_FILE_TRUSTED_AFTER_STARTUP,
    DIRECTORY_TRAVERSAL_READ,
    SEARCH_PRIVATE_KEYS_OR_PASSWORDS,
    FIND_AWS_CREDENTIALS,
    CLEAR_LOG_ACTIVITIES,
    REMOVE_BULK_DATA,
    SYMLINK_OVER_SENSITIVE_FILES,
    HARDLINK_OVER_SENSITIVE_FILES,
    RELEASE_AGENT_ESCAPE,
    CONTACT_K8S_API_SERVER,
    NETCAT_REMOTE_CODE_EXECUTION,
    REDIRECT_STDIO_TO_NETWORK,
    PACKET_SOCKET,
    SSH_NON_STANDARD_PORT,
    PACKAGE_MANAGEMENT,
    WRITE_BELOW_BINARY_DIR_OR_ETC,
    CRYPTO_MINING_POOL,
];

/// The rules the fallback sensor (exec events only) sees: every one whose only hook is exec.
pub const EXEC_ONLY: [Rule; 11] = [
    TERMINAL_SHELL,
    RUN_SHELL_UNTRUSTED,
    DROP_AND_EXECUTE_NEW_BINARY,
    EXECUTION_FROM_DEV_SHM,
    FILELESS_EXECUTION,
    DEBUGFS_IN_PRIVILEGED_CONTAINER,
    SEARCH_PRIVATE_KEYS_OR_PASSWORDS,
    FIND_AWS_CREDENTIALS,
    REMOVE_BULK_DATA,
    NETCAT_REMOTE_CODE_EXECUTION,
    PACKAGE_MANAGEMENT,
];

/// An address the rules count as public (TEST-NET-3, routed nowhere), put on the pod's
/// loopback by an init container when a workload asks for it, so that connections to it
/// succeed without the Internet.
pub const PUBLIC_ADDRESS: &str = "203.0.113.7";

/// The workload container's name.
pub const CONTAINER: &str = "app";

/// The workload's main process: busybox httpd on 8080 (its readiness), with more listeners
/// for connections to succeed: httpd on 443 and 3333, and on 4444 a netcat listener that
/// sends `/usr/bin/id; exit` to whoever connects (an attacker's end of a reverse shell,
/// whose answer lands in /tmp/attacker.log).
const WORKLOAD_SCRIPT: &str = r#"/usr/sbin/httpd -p 443 -h /var/www
/usr/sbin/httpd -p 3333 -h /var/www
/bin/sh -c '/bin/echo "/usr/bin/id; exit" | /usr/bin/nc -l -p 4444 >/tmp/attacker.log 2>&1' &
exec /usr/sbin/httpd -f -p 8080 -h /var/www
"#;

/// How a workload pod is made beyond the defaults (root, the runtime's default
/// capabilities).
#[derive(Clone, Copy, Debug, Default)]
pub struct Workload {
    pub privileged: bool,
    /// Capabilities added to the container's.
    pub capabilities: &'static [&'static str],
    /// [`PUBLIC_ADDRESS`] on the pod's loopback.
    pub public_address: bool,
}

/// One test's namespace and SecurityPolicy (both named `name`), and its pods.
pub struct Site<'t> {
    pub t: &'t Test,
    pub namespace: String,
    pub policy: String,
    pub image: String,
}

impl<'t> Site<'t> {
    /// Namespace `name` and SecurityPolicy `name` matching it, with `runtime` as its
    /// `spec.runtime` (YAML lines indented by 4) and `exceptions` as its `spec.exceptions`
    /// (YAML list lines indented by 2, or empty); returns once the operator says the policy
    /// is Ready.
    pub fn new(t: &'t Test, name: &str, runtime: &str, exceptions: &str) -> Site<'t> {
        let image = runtime::workload_image(t.env);
        t.namespace(name, &[]);
        let exceptions = if exceptions.is_empty() {
            String::new()
        } else {
            format!("  exceptions:\n{exceptions}")
        };
        t.apply(
            "policy.yaml",
            &format!(
                r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: {name}
  labels:
    {E2E}
spec:
  match:
    namespaces: [{name}]
  runtime:
{runtime}
{exceptions}"#
            ),
        );
        let (reason, message) = wait_ready(t, name, "True");
        assert_eq!(reason, "Valid", "{message}");
        Site {
            t,
            namespace: name.to_owned(),
            policy: name.to_owned(),
            image,
        }
    }

    /// A workload pod `name`, Ready, on a node whose agent runs the eBPF sensor.
    pub fn workload(&self, name: &str, w: Workload) -> PodRef {
        self.workload_with_sensor(name, w, "ebpf")
    }

    /// [`Site::workload`] on a node whose agent runs `sensor`.
    pub fn workload_with_sensor(&self, name: &str, w: Workload, sensor: &str) -> PodRef {
        let mut security = json!({});
        if w.privileged {
            security["privileged"] = json!(true);
        }
        if !w.capabilities.is_empty() {
            security["capabilities"] = json!({ "add": w.capabilities });
        }
        let mut spec = json!({
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": CONTAINER,
                "image": self.image,
                "command": ["/bin/sh", "-c", WORKLOAD_SCRIPT],
                "securityContext": security,
                "readinessProbe": {
                    "httpGet": {"path": "/", "port": 8080},
                    "periodSeconds": 1,
                },
            }],
        });
        if w.public_address {
            spec["initContainers"] = json!([{
                "name": "public-address",
                "image": self.image,
                "command": ["/sbin/ip", "addr", "add", format!("{PUBLIC_ADDRESS}/32"), "dev", "lo"],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
            }]);
        }
        self.apply_pod(name, spec);
        let pod = PodRef::ready(self.t, &self.namespace, name, CONTAINER);
        runtime::wait_agent(self.t, &pod.node, sensor, 60);
        pod
    }

    /// Create pod `name` with `spec` in the namespace.
    pub fn apply_pod(&self, name: &str, spec: Value) {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {"palisade.dev/e2e": "true", "app": name},
            },
            "spec": spec,
        });
        self.t.apply(&format!("{name}.json"), &pod.to_string());
    }

    /// `kubectl exec` of `command` in the pod's workload container (at a terminal, as `-it`,
    /// when `tty`); returns what it printed and when it returned.
    pub fn exec(&self, pod: &PodRef, tty: bool, command: &[&str]) -> (Output, Instant) {
        let mut args = vec!["exec"];
        if tty {
            args.push("-it");
        }
        args.extend([
            "-n",
            pod.namespace.as_str(),
            pod.name.as_str(),
            "-c",
            pod.container.as_str(),
            "--",
        ]);
        args.extend(command);
        let out = if tty {
            self.t.kubectl_tty(&args)
        } else {
            self.t.kubectl(&args)
        };
        (out, Instant::now())
    }
}

/// A rule's id as a DNS label: `runtime.contactK8sApiServer` → `contact-k8s-api-server`.
pub fn kebab(id: &str) -> String {
    let camel = id.trim_start_matches("runtime.");
    let mut s = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            s.push('-');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

#[test]
fn rule_names_follow_the_event_reason_rule() {
    // The Event's reason is the name's words in UpperCamelCase; the table above says each
    // one, and this keeps them consistent with each other (not with the agent's code).
    for r in ALL {
        let camel: String = r
            .name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
            .collect();
        assert_eq!(camel, r.reason, "{}", r.id);
    }
    assert_eq!(
        kebab("runtime.contactK8sApiServer"),
        "contact-k8s-api-server"
    );
}

#[test]
fn the_table_has_every_documented_rule() {
    let docs = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rules"))
        .expect("docs/rules");
    let mut documented: Vec<String> = docs
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_prefix("runtime.")
                .and_then(|n| n.strip_suffix(".md"))
                .map(|camel| format!("runtime.{camel}"))
        })
        .collect();
    documented.sort();
    let mut ids: Vec<String> = ALL.iter().map(|r| r.id.to_owned()).collect();
    ids.sort();
    assert_eq!(
        ids, documented,
        "docs/rules/runtime.*.md and the table here"
    );
}
