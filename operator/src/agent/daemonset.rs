//! The node agent's DaemonSet, planned from the operator's settings: pure, so every field
//! and every privilege is decided (and tested) here, and the controller only applies it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

/// The DaemonSet's name, and its pods' `app.kubernetes.io/name`.
pub const NAME: &str = "palisade-agent";
/// The port of the agent's health, readiness and metrics endpoints. With the host's network
/// (see [`Sensor::needs_host_network`]) it is a port of the node, so not a common one.
pub const ADMIN_PORT: i32 = 9477;

/// Which sensor the agent runs (its `--sensor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensor {
    /// eBPF where it loads, else the process connector.
    #[default]
    Auto,
    Ebpf,
    Fallback,
}

impl Sensor {
    fn flag(self) -> &'static str {
        match self {
            Sensor::Auto => "--sensor=auto",
            Sensor::Ebpf => "--sensor=ebpf",
            Sensor::Fallback => "--sensor=fallback",
        }
    }

    /// The process connector, which the fallback sensor reads, answers only in the host's
    /// network namespace; an agent pinned to eBPF keeps the pod's own.
    pub fn needs_host_network(self) -> bool {
        self != Sensor::Ebpf
    }
}

/// The capabilities the agent runs with, each for one reason. Everything else is dropped.
pub const CAPABILITIES: &[(&str, &str)] = &[
    ("BPF", "load the eBPF programs and create their maps"),
    (
        "PERFMON",
        "attach tracing programs and let them read kernel memory",
    ),
    (
        "SYS_PTRACE",
        "read other processes' /proc entries (exe, namespaces) to describe them",
    ),
    (
        "DAC_READ_SEARCH",
        "read /proc files of processes owned by other users",
    ),
    ("KILL", "kill an offending process in Enforce mode"),
    (
        "NET_ADMIN",
        "subscribe to the netlink process connector, the fallback sensor",
    ),
];

/// What the operator is told about the agent: the chart's `agent.*` values, as JSON in
/// `PALISADE_AGENT` (unset: no agent).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentSettings {
    #[serde(default)]
    pub namespace: String,
    pub image: String,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    #[serde(default = "default_service_account")]
    pub service_account: String,
    #[serde(default)]
    pub priority_class_name: Option<String>,
    #[serde(default)]
    pub resources: Option<ResourceRequirements>,
    /// Empty: tolerate every taint, so no node goes unwatched.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Extra node selection (the Fargate exclusion always applies).
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Capabilities added to [`CAPABILITIES`], e.g. `SYS_RESOURCE` where kernels before 5.11
    /// charge BPF maps to RLIMIT_MEMLOCK (Amazon Linux 2).
    #[serde(default)]
    pub extra_capabilities: Vec<String>,
    #[serde(default)]
    pub sensor: Sensor,
    /// The agent's other flags (`--log-format=json`, …).
    #[serde(default)]
    pub args: Vec<String>,
    /// RUST_LOG for the agent.
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub image_pull_secrets: Vec<String>,
    #[serde(default)]
    pub pod_annotations: BTreeMap<String, String>,
    /// The install's ClusterRole (`--owner-cluster-role`), so that the DaemonSet, written at
    /// run time and unknown to `helm uninstall`, goes with the install.
    #[serde(skip)]
    pub owner: Option<OwnerReference>,
}

fn default_service_account() -> String {
    NAME.into()
}

impl AgentSettings {
    /// Parses `PALISADE_AGENT`; the namespace is the operator's own.
    pub fn from_json(text: &str, namespace: &str) -> Result<AgentSettings, serde_json::Error> {
        let mut s: AgentSettings = serde_json::from_str(text)?;
        s.namespace = namespace.to_string();
        Ok(s)
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), NAME.into()),
            ("app.kubernetes.io/part-of".into(), "palisade".into()),
            (
                "app.kubernetes.io/managed-by".into(),
                "palisade-operator".into(),
            ),
        ])
    }
}

fn env_from_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The DaemonSet for `settings`. Its pod template changes whenever the image, the arguments
/// or any setting does, and the DaemonSet controller then rolls every node.
pub fn plan(settings: &AgentSettings) -> DaemonSet {
    let labels = settings.labels();
    let selector = BTreeMap::from([("app.kubernetes.io/name".to_string(), NAME.to_string())]);
    let mut add: Vec<String> = CAPABILITIES.iter().map(|(c, _)| c.to_string()).collect();
    for c in &settings.extra_capabilities {
        if !add.contains(c) {
            add.push(c.clone());
        }
    }
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("admin".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        ..Probe::default()
    };
    let host_network = settings.sensor.needs_host_network();
    let mut args = vec![
        format!("--admin-addr=0.0.0.0:{ADMIN_PORT}"),
        settings.sensor.flag().to_string(),
    ];
    args.extend(settings.args.iter().cloned());
    let container = Container {
        name: "agent".into(),
        image: Some(settings.image.clone()),
        image_pull_policy: settings.image_pull_policy.clone(),
        args: Some(args),
        env: Some(
            [
                env_from_field("NODE_NAME", "spec.nodeName"),
                env_from_field("POD_NAME", "metadata.name"),
                env_from_field("POD_NAMESPACE", "metadata.namespace"),
            ]
            .into_iter()
            .chain(settings.log_level.as_ref().map(|level| EnvVar {
                name: "RUST_LOG".into(),
                value: Some(level.clone()),
                ..EnvVar::default()
            }))
            .collect(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("admin".into()),
            container_port: ADMIN_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: settings.resources.clone(),
        liveness_probe: Some(probe("/livez", 20)),
        readiness_probe: Some(probe("/readyz", 5)),
        security_context: Some(SecurityContext {
            // Root, for the capabilities above to be effective; no other privilege.
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                add: Some(add),
                drop: Some(vec!["ALL".into()]),
            }),
            // The runtime's default profile may refuse bpf(2) and perf_event_open(2).
            seccomp_profile: Some(SeccompProfile {
                type_: "Unconfined".into(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    let tolerations = if settings.tolerations.is_empty() {
        vec![Toleration {
            operator: Some("Exists".into()),
            ..Toleration::default()
        }]
    } else {
        settings.tolerations.clone()
    };
    DaemonSet {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            owner_references: crate::certs::owner::references(settings.owner.as_ref()),
            ..ObjectMeta::default()
        },
        spec: DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::String("10%".into())),
                    ..RollingUpdateDaemonSet::default()
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: (!settings.pod_annotations.is_empty())
                        .then(|| settings.pod_annotations.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(settings.service_account.clone()),
                    // Host processes and their /proc entries: the sensor's whole subject.
                    host_pid: Some(true),
                    host_network: host_network.then_some(true),
                    // Cluster DNS still answers with the host's network.
                    dns_policy: host_network.then(|| "ClusterFirstWithHostNet".to_string()),
                    priority_class_name: settings.priority_class_name.clone(),
                    node_selector: (!settings.node_selector.is_empty())
                        .then(|| settings.node_selector.clone()),
                    tolerations: Some(tolerations),
                    affinity: Some(Affinity {
                        node_affinity: Some(NodeAffinity {
                            required_during_scheduling_ignored_during_execution: Some(
                                NodeSelector {
                                    node_selector_terms: vec![NodeSelectorTerm {
                                        match_expressions: Some(vec![NodeSelectorRequirement {
                                            // Fargate runs no DaemonSets: its pods are
                                            // micro-VMs without a node to watch.
                                            key: "eks.amazonaws.com/compute-type".into(),
                                            operator: "NotIn".into(),
                                            values: Some(vec!["fargate".into()]),
                                        }]),
                                        ..NodeSelectorTerm::default()
                                    }],
                                },
                            ),
                            ..NodeAffinity::default()
                        }),
                        ..Affinity::default()
                    }),
                    image_pull_secrets: (!settings.image_pull_secrets.is_empty()).then(|| {
                        settings
                            .image_pull_secrets
                            .iter()
                            .map(|name| k8s_openapi::api::core::v1::LocalObjectReference {
                                name: name.clone(),
                            })
                            .collect()
                    }),
                    termination_grace_period_seconds: Some(10),
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DaemonSetSpec::default()
        },
        ..DaemonSet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AgentSettings {
        AgentSettings::from_json(
            r#"{"image": "registry.example.com/palisade-agent:1.0",
                "priorityClassName": "system-node-critical",
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                "sensor": "auto",
                "args": ["--log-format=json"]}"#,
            "palisade-system",
        )
        .expect("settings")
    }

    #[test]
    fn only_an_agent_pinned_to_ebpf_keeps_the_pods_network() {
        for (sensor, flag, host) in [
            (Sensor::Auto, "--sensor=auto", true),
            (Sensor::Fallback, "--sensor=fallback", true),
            (Sensor::Ebpf, "--sensor=ebpf", false),
        ] {
            let ds = plan(&AgentSettings {
                sensor,
                ..settings()
            });
            let spec = pod(&ds);
            let args = spec.containers[0].args.as_ref().expect("args");
            assert_eq!(
                args.iter()
                    .filter(|a| a.starts_with("--sensor"))
                    .collect::<Vec<_>>(),
                [flag],
                "{sensor:?}"
            );
            assert_eq!(spec.host_network, host.then_some(true), "{sensor:?}");
            assert_eq!(
                spec.dns_policy.as_deref(),
                host.then_some("ClusterFirstWithHostNet"),
                "{sensor:?}"
            );
        }
        let unset = AgentSettings::from_json(r#"{"image": "a:1"}"#, "ns").expect("settings");
        assert_eq!(unset.sensor, Sensor::Auto);
        let wrong = AgentSettings::from_json(r#"{"image": "a:1", "sensor": "kprobe"}"#, "ns");
        assert!(wrong.is_err(), "an unknown sensor is refused: {wrong:?}");
    }

    #[test]
    fn the_install_owns_the_daemonset_when_told() {
        assert_eq!(plan(&settings()).metadata.owner_references, None);
        let owner = OwnerReference {
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: "ClusterRole".into(),
            name: "palisade-operator".into(),
            uid: "u-1".into(),
            ..OwnerReference::default()
        };
        let ds = plan(&AgentSettings {
            owner: Some(owner.clone()),
            ..settings()
        });
        assert_eq!(ds.metadata.owner_references, Some(vec![owner]));
    }

    fn pod(ds: &DaemonSet) -> &PodSpec {
        ds.spec.template.spec.as_ref().expect("a pod spec")
    }

    #[test]
    fn the_agent_runs_on_every_node_but_fargate_with_only_its_capabilities() {
        let ds = plan(&settings());
        let pod = pod(&ds);
        assert_eq!(pod.host_pid, Some(true));
        assert_eq!(
            pod.host_network,
            Some(true),
            "the process connector's namespace"
        );
        assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
        assert_eq!(
            pod.volumes, None,
            "no host mounts: BTF and /proc come with hostPID"
        );
        let tolerations = pod.tolerations.as_ref().expect("tolerations");
        assert_eq!(tolerations.len(), 1);
        assert_eq!(tolerations[0].operator.as_deref(), Some("Exists"));
        assert_eq!(tolerations[0].key, None, "every taint");
        let term = &pod
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .expect("node affinity")
            .node_selector_terms[0];
        let req = &term.match_expressions.as_ref().expect("expressions")[0];
        assert_eq!(
            (req.key.as_str(), req.operator.as_str()),
            ("eks.amazonaws.com/compute-type", "NotIn")
        );
        let sc = pod.containers[0]
            .security_context
            .as_ref()
            .expect("a security context");
        assert_eq!(sc.privileged, Some(false));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        let caps = sc.capabilities.as_ref().expect("capabilities");
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(
            caps.add.as_deref(),
            Some(
                &[
                    "BPF",
                    "PERFMON",
                    "SYS_PTRACE",
                    "DAC_READ_SEARCH",
                    "KILL",
                    "NET_ADMIN"
                ]
                .map(String::from)[..]
            )
        );
        assert!(
            !caps
                .add
                .iter()
                .flatten()
                .any(|c| c == "SYS_ADMIN" || c == "ALL")
        );
    }

    #[test]
    fn settings_reach_the_pod_template() {
        let mut s = settings();
        s.tolerations = vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("gpu".into()),
            effect: Some("NoSchedule".into()),
            ..Toleration::default()
        }];
        s.extra_capabilities = vec!["SYS_RESOURCE".into(), "BPF".into()];
        s.resources =
            serde_json::from_value(serde_json::json!({"limits": {"cpu": "1", "memory": "256Mi"}}))
                .expect("resources");
        s.log_level = Some("debug".into());
        s.image_pull_secrets = vec!["regcred".into()];
        let ds = plan(&s);
        let pod = pod(&ds);
        let c = &pod.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some("registry.example.com/palisade-agent:1.0")
        );
        assert_eq!(
            c.args.as_deref(),
            Some(
                &[
                    "--admin-addr=0.0.0.0:9477".to_string(),
                    "--sensor=auto".into(),
                    "--log-format=json".into()
                ][..]
            )
        );
        assert_eq!(pod.tolerations.as_ref().map(Vec::len), Some(1));
        assert_eq!(
            pod.priority_class_name.as_deref(),
            Some("system-node-critical")
        );
        assert_eq!(pod.service_account_name.as_deref(), Some("palisade-agent"));
        let caps = c
            .security_context
            .as_ref()
            .and_then(|s| s.capabilities.as_ref())
            .and_then(|c| c.add.as_ref())
            .expect("added capabilities");
        assert_eq!(caps.iter().filter(|c| *c == "BPF").count(), 1);
        assert!(caps.contains(&"SYS_RESOURCE".to_string()));
        let limits = c
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .expect("limits");
        assert_eq!(limits.get("cpu").map(|q| q.0.as_str()), Some("1"));
        assert_eq!(
            pod.image_pull_secrets.as_ref().map(|s| s[0].name.as_str()),
            Some("regcred")
        );
        let env = c.env.as_ref().expect("env");
        assert!(
            env.iter()
                .any(|e| e.name == "RUST_LOG" && e.value.as_deref() == Some("debug"))
        );
    }

    #[test]
    fn settings_come_from_the_charts_json_and_typos_are_refused() {
        let s = settings();
        assert_eq!(s.namespace, "palisade-system");
        assert_eq!(s.service_account, "palisade-agent");
        assert!(AgentSettings::from_json(r#"{"image": "x", "tolerationz": []}"#, "ns").is_err());
        assert!(
            AgentSettings::from_json(r#"{"tolerations": []}"#, "ns").is_err(),
            "no image"
        );
    }

    #[test]
    fn a_changed_image_changes_the_template_so_nodes_roll() {
        let a = plan(&settings());
        let mut s = settings();
        s.image = "registry.example.com/palisade-agent:1.1".into();
        let b = plan(&s);
        assert_ne!(a.spec.template, b.spec.template);
        assert_eq!(
            plan(&settings()),
            a,
            "the same settings plan the same object"
        );
    }
}
