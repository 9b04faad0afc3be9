//! The individual controls of a SecurityPolicy (outside the Pod Security Standards presets),
//! as pure functions over a pod spec.

use k8s_openapi::api::core::v1::PodSpec;
use palisade_imageref::ImageRef;
use palisade_pod_security::{ContainerRef, ContainerView, containers};

use crate::policy::{Controls, canonical_capability};
use crate::rule_id::RuleId;

/// A rule's finding before policy, mode and exceptions are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) rule: RuleId,
    pub(crate) container: Option<ContainerRef>,
    /// Pod-relative path.
    pub(crate) field: String,
    pub(crate) message: String,
    pub(crate) fix: String,
}

/// Run the individual controls over a pod spec, appending findings to `out`.
pub(crate) fn evaluate(controls: &Controls, spec: &PodSpec, out: &mut Vec<Finding>) {
    let pod_sc = spec.security_context.as_ref();
    for c in containers(spec) {
        let sc = c.security_context;
        if controls.deny_privileged && sc.and_then(|s| s.privileged) == Some(true) {
            out.push(Finding {
                rule: RuleId::Privileged,
                container: Some(c.reference()),
                field: c.field("securityContext.privileged"),
                message: "securityContext.privileged=true is not allowed".into(),
                fix: "remove it or set false".into(),
            });
        }
        if controls.run_as_non_root {
            run_as_non_root(&c, pod_sc, out);
        }
        if controls.forbid_privilege_escalation
            && sc.and_then(|s| s.allow_privilege_escalation) != Some(false)
        {
            out.push(Finding {
                rule: RuleId::AllowPrivilegeEscalation,
                container: Some(c.reference()),
                field: c.field("securityContext.allowPrivilegeEscalation"),
                message: "securityContext.allowPrivilegeEscalation must be false".into(),
                fix: "set securityContext.allowPrivilegeEscalation: false".into(),
            });
        }
        if controls.read_only_root_filesystem
            && sc.and_then(|s| s.read_only_root_filesystem) != Some(true)
        {
            out.push(Finding {
                rule: RuleId::ReadOnlyRootFilesystem,
                container: Some(c.reference()),
                field: c.field("securityContext.readOnlyRootFilesystem"),
                message: "securityContext.readOnlyRootFilesystem must be true".into(),
                fix: "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the app writes".into(),
            });
        }
        let caps = sc.and_then(|s| s.capabilities.as_ref());
        if let Some(allowed) = &controls.allowed_capabilities {
            let added = caps.and_then(|c| c.add.as_deref()).unwrap_or_default();
            for (i, cap) in added.iter().enumerate() {
                if !allowed.iter().any(|a| a == cap) {
                    out.push(Finding {
                        rule: RuleId::CapabilitiesAllowed,
                        container: Some(c.reference()),
                        field: c.field(&format!("securityContext.capabilities.add[{i}]")),
                        message: format!("securityContext.capabilities.add includes {cap:?}, which this policy does not approve"),
                        fix: capability_fix(cap, allowed),
                    });
                }
            }
        }
        if controls.require_drop_all {
            let dropped = caps.and_then(|c| c.drop.as_deref()).unwrap_or_default();
            if !dropped.iter().any(|d| d == "ALL") {
                let near = dropped.iter().find(|d| canonical_capability(d) == "ALL");
                out.push(Finding {
                    rule: RuleId::CapabilitiesRequireDropAll,
                    container: Some(c.reference()),
                    field: c.field("securityContext.capabilities.drop"),
                    message: "securityContext.capabilities.drop must include ALL".into(),
                    fix: match near {
                        Some(n) => format!("write {n:?} as \"ALL\" (capability names are case-sensitive)"),
                        None => "add ALL to securityContext.capabilities.drop and add back only what the container needs".into(),
                    },
                });
            }
        }
        if controls.checks_images() {
            images(controls, &c, out);
        }
    }
}

fn run_as_non_root(
    c: &ContainerView<'_>,
    pod_sc: Option<&k8s_openapi::api::core::v1::PodSecurityContext>,
    out: &mut Vec<Finding>,
) {
    let sc = c.security_context;
    let container_setting = sc.and_then(|s| s.run_as_non_root);
    let pod_setting = pod_sc.and_then(|s| s.run_as_non_root);
    if container_setting.or(pod_setting) != Some(true) {
        let (field, message) = if container_setting == Some(false) {
            (
                c.field("securityContext.runAsNonRoot"),
                "securityContext.runAsNonRoot=false is not allowed",
            )
        } else {
            (
                c.field("securityContext.runAsNonRoot"),
                "securityContext.runAsNonRoot must be true (on the container or the pod)",
            )
        };
        out.push(Finding {
            rule: RuleId::RunAsNonRoot,
            container: Some(c.reference()),
            field,
            message: message.into(),
            fix: "set securityContext.runAsNonRoot: true and run as a non-zero UID".into(),
        });
    }
    let container_user = sc.and_then(|s| s.run_as_user);
    let user = container_user.or_else(|| pod_sc.and_then(|s| s.run_as_user));
    if user == Some(0) {
        let field = if container_user.is_some() {
            c.field("securityContext.runAsUser")
        } else {
            "spec.securityContext.runAsUser".to_owned()
        };
        out.push(Finding {
            rule: RuleId::RunAsNonRoot,
            container: Some(c.reference()),
            field,
            message: "runAsUser=0 runs the container as root".into(),
            fix: "set runAsUser to a non-zero UID".into(),
        });
    }
}

fn capability_fix(cap: &str, allowed: &[String]) -> String {
    let approved = if allowed.is_empty() {
        "none".to_owned()
    } else {
        allowed.join(", ")
    };
    let canonical = canonical_capability(cap);
    if canonical == "ALL" {
        return format!(
            "add only the capabilities the container needs, by name (approved: {approved})"
        );
    }
    if canonical != cap {
        if allowed.contains(&canonical) {
            return format!("write it as {canonical:?}, the exact name this policy approves");
        }
        return format!(
            "remove it (its canonical name {canonical:?} is not approved either; approved: {approved})"
        );
    }
    format!("remove it; this policy approves only: {approved}")
}

fn images(controls: &Controls, c: &ContainerView<'_>, out: &mut Vec<Finding>) {
    let Some(raw) = c.image else {
        return;
    };
    let image = match ImageRef::parse(raw) {
        Ok(r) => r,
        Err(e) => {
            out.push(Finding {
                rule: RuleId::ImagesReference,
                container: Some(c.reference()),
                field: c.field("image"),
                message: e.to_string(),
                fix: "write the image as [registry/]repository[:tag][@sha256:digest]".into(),
            });
            return;
        }
    };
    if let Some(registries) = &controls.allowed_registries
        && !registries.iter().any(|entry| image.registry_matches(entry))
    {
        out.push(Finding {
            rule: RuleId::ImagesAllowedRegistries,
            container: Some(c.reference()),
            field: c.field("image"),
            message: format!("image {raw:?} ({image}) is not from an allowed registry"),
            fix: format!("use an image from {}", registries.join(", ")),
        });
    }
    if controls.forbid_latest_tag && image.is_latest() {
        out.push(Finding {
            rule: RuleId::ImagesForbidLatestTag,
            container: Some(c.reference()),
            field: c.field("image"),
            message: format!("image {raw:?} uses the latest tag"),
            fix: "pin a version tag or a digest".into(),
        });
    }
    if controls.require_digest && image.digest().is_none() {
        out.push(Finding {
            rule: RuleId::ImagesRequireDigest,
            container: Some(c.reference()),
            field: c.field("image"),
            message: format!("image {raw:?} is not pinned by digest"),
            fix: format!(
                "reference it as {}/{}@sha256:<digest>",
                image.registry(),
                image.repository()
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Capabilities, Container, PodSecurityContext, SecurityContext,
    };
    use palisade_pod_security::ContainerKind;

    fn pod(containers: Vec<Container>) -> PodSpec {
        PodSpec {
            containers,
            ..Default::default()
        }
    }

    fn container(name: &str, image: &str, sc: SecurityContext) -> Container {
        Container {
            name: name.into(),
            image: Some(image.into()),
            security_context: Some(sc),
            ..Default::default()
        }
    }

    fn caps(add: &[&str], drop: &[&str]) -> SecurityContext {
        SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(add.iter().map(|s| s.to_string()).collect()),
                drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            }),
            ..Default::default()
        }
    }

    fn run(controls: &Controls, spec: &PodSpec) -> Vec<Finding> {
        let mut out = Vec::new();
        evaluate(controls, spec, &mut out);
        out
    }

    #[test]
    fn capability_allowlist_matches_exactly() {
        let controls = Controls {
            allowed_capabilities: Some(vec!["SYS_PTRACE".into(), "SYS_ADMIN".into()]),
            ..Default::default()
        };
        // (added, denied?, part of the fix)
        let table = [
            ("SYS_PTRACE", false, ""),
            ("SYS_ADMIN", false, ""),
            ("sys_admin", true, "write it as \"SYS_ADMIN\""),
            ("CAP_SYS_ADMIN", true, "write it as \"SYS_ADMIN\""),
            ("ALL", true, "add only the capabilities the container needs"),
            ("NET_ADMIN", true, "approves only: SYS_PTRACE, SYS_ADMIN"),
            (
                "net_raw",
                true,
                "canonical name \"NET_RAW\" is not approved either",
            ),
        ];
        for (cap, denied, fix) in table {
            let spec = pod(vec![container("app", "nginx:1", caps(&[cap], &[]))]);
            let got = run(&controls, &spec);
            assert_eq!(!got.is_empty(), denied, "{cap}: {got:?}");
            if denied {
                assert_eq!(
                    got[0].field,
                    "spec.containers[0].securityContext.capabilities.add[0]"
                );
                assert!(got[0].fix.contains(fix), "{cap}: {}", got[0].fix);
                assert!(got[0].message.contains(&format!("{cap:?}")));
            }
        }
    }

    #[test]
    fn drop_all_is_case_sensitive() {
        let controls = Controls {
            require_drop_all: true,
            ..Default::default()
        };
        let ok = pod(vec![container("a", "x:1", caps(&[], &["ALL"]))]);
        assert!(run(&controls, &ok).is_empty());
        let lower = pod(vec![container("a", "x:1", caps(&[], &["all"]))]);
        let got = run(&controls, &lower);
        assert_eq!(got.len(), 1);
        assert!(got[0].fix.contains("write \"all\" as \"ALL\""));
        let none = pod(vec![container("a", "x:1", SecurityContext::default())]);
        assert_eq!(
            run(&controls, &none)[0].rule,
            RuleId::CapabilitiesRequireDropAll
        );
    }

    #[test]
    fn run_as_non_root_precedence() {
        let controls = Controls {
            run_as_non_root: true,
            ..Default::default()
        };
        let sc = |non_root: Option<bool>, user: Option<i64>| SecurityContext {
            run_as_non_root: non_root,
            run_as_user: user,
            ..Default::default()
        };
        let pod_sc = |non_root: Option<bool>, user: Option<i64>| PodSecurityContext {
            run_as_non_root: non_root,
            run_as_user: user,
            ..Default::default()
        };
        // (pod-level, container-level, findings)
        let table = [
            (pod_sc(Some(true), None), sc(None, None), 0),
            (pod_sc(None, None), sc(Some(true), None), 0),
            (pod_sc(None, None), sc(None, None), 1),
            (pod_sc(Some(true), None), sc(Some(false), None), 1),
            (pod_sc(Some(false), None), sc(Some(true), None), 0),
            (pod_sc(Some(true), Some(0)), sc(None, None), 1),
            (pod_sc(Some(true), Some(0)), sc(None, Some(1000)), 0),
            (pod_sc(Some(true), None), sc(None, Some(0)), 1),
            (pod_sc(None, Some(0)), sc(None, None), 2),
        ];
        for (i, (p, c, want)) in table.into_iter().enumerate() {
            let mut spec = pod(vec![container("app", "x:1", c)]);
            spec.security_context = Some(p);
            let got = run(&controls, &spec);
            assert_eq!(got.len(), want, "row {i}: {got:?}");
        }
    }

    #[test]
    fn image_rules() {
        let controls = Controls {
            allowed_registries: Some(vec!["registry.example.com".into(), "ghcr.io/acme/".into()]),
            forbid_latest_tag: true,
            require_digest: false,
            ..Default::default()
        };
        let table = [
            ("registry.example.com/app:1.0", vec![]),
            ("ghcr.io/acme/api:2", vec![]),
            (
                "registry.example.com.evil.io/app:1.0",
                vec![RuleId::ImagesAllowedRegistries],
            ),
            (
                "nginx",
                vec![
                    RuleId::ImagesAllowedRegistries,
                    RuleId::ImagesForbidLatestTag,
                ],
            ),
            ("ghcr.io/acme/api", vec![RuleId::ImagesForbidLatestTag]),
            ("ghcr.io/acme/API:1", vec![RuleId::ImagesReference]),
        ];
        for (image, want) in table {
            let spec = pod(vec![container("app", image, SecurityContext::default())]);
            let got: Vec<_> = run(&controls, &spec).into_iter().map(|f| f.rule).collect();
            assert_eq!(got, want, "{image}");
        }
    }

    #[test]
    fn init_and_ephemeral_containers_have_their_paths() {
        use k8s_openapi::api::core::v1::EphemeralContainer;
        let controls = Controls {
            deny_privileged: true,
            ..Default::default()
        };
        let privileged = SecurityContext {
            privileged: Some(true),
            ..Default::default()
        };
        let mut spec = pod(vec![container("app", "x:1", SecurityContext::default())]);
        spec.init_containers = Some(vec![container("init", "x:1", privileged.clone())]);
        spec.ephemeral_containers = Some(vec![EphemeralContainer {
            name: "debug".into(),
            security_context: Some(privileged),
            ..Default::default()
        }]);
        let got = run(&controls, &spec);
        let fields: Vec<_> = got.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.initContainers[0].securityContext.privileged",
                "spec.ephemeralContainers[0].securityContext.privileged"
            ]
        );
        assert_eq!(
            got[1].container.as_ref().map(|c| c.kind),
            Some(ContainerKind::EphemeralContainer)
        );
    }
}
