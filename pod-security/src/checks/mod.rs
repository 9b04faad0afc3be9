//! One module per upstream check. Each exposes `check(ctx, out)`, which appends one finding
//! per offending field; `evaluate` decides which checks run at a level and version.

mod allow_privilege_escalation;
mod app_armor_profile;
mod capabilities_baseline;
mod capabilities_restricted;
mod host_namespaces;
mod host_path_volumes;
mod host_ports;
mod host_probes_and_host_lifecycle;
mod privileged;
mod proc_mount;
mod restricted_volumes;
mod run_as_non_root;
mod run_as_user;
mod se_linux_options;
mod seccomp_profile_baseline;
mod seccomp_profile_restricted;
mod sysctls;
mod windows_host_process;

#[cfg(test)]
mod test_support;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EphemeralContainer, Lifecycle, PodSecurityContext, PodSpec, Probe,
    SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{CheckId, ContainerKind, ContainerRef, Finding, Level, PodView, Version};

/// Every finding of the checks of `level` at `version` on `pod`. Empty means the pod passes.
pub fn evaluate(level: Level, version: Version, pod: PodView<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for id in CheckId::ALL {
        if id.applies(level, version) {
            run(id, version, pod, &mut out);
        }
    }
    out
}

/// The findings of one check as it stood at `version`, whatever the level (for policies that
/// enable controls one by one). A check that `version` does not have finds nothing.
pub fn evaluate_check(check: CheckId, version: Version, pod: PodView<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if version.at_least(check.min_version()) {
        run(check, version, pod, &mut out);
    }
    out
}

fn run(id: CheckId, version: Version, pod: PodView<'_>, out: &mut Vec<Finding>) {
    let ctx = Ctx {
        meta: pod.metadata,
        spec: pod.spec,
        version,
    };
    match id {
        CheckId::Privileged => privileged::check(&ctx, out),
        CheckId::HostNamespaces => host_namespaces::check(&ctx, out),
        CheckId::HostPathVolumes => host_path_volumes::check(&ctx, out),
        CheckId::HostPorts => host_ports::check(&ctx, out),
        CheckId::CapabilitiesBaseline => capabilities_baseline::check(&ctx, out),
        CheckId::AppArmorProfile => app_armor_profile::check(&ctx, out),
        CheckId::SeLinuxOptions => se_linux_options::check(&ctx, out),
        CheckId::ProcMount => proc_mount::check_baseline(&ctx, out),
        CheckId::SeccompProfileBaseline => seccomp_profile_baseline::check(&ctx, out),
        CheckId::Sysctls => sysctls::check(&ctx, out),
        CheckId::WindowsHostProcess => windows_host_process::check(&ctx, out),
        CheckId::HostProbesAndHostLifecycle => host_probes_and_host_lifecycle::check(&ctx, out),
        CheckId::AllowPrivilegeEscalation => allow_privilege_escalation::check(&ctx, out),
        CheckId::RunAsNonRoot => run_as_non_root::check(&ctx, out),
        CheckId::RunAsUser => run_as_user::check(&ctx, out),
        CheckId::SeccompProfileRestricted => seccomp_profile_restricted::check(&ctx, out),
        CheckId::CapabilitiesRestricted => capabilities_restricted::check(&ctx, out),
        CheckId::RestrictedVolumes => restricted_volumes::check(&ctx, out),
        CheckId::ProcMountRestricted => proc_mount::check_restricted(&ctx, out),
    }
}

/// Every container of a pod: containers, then initContainers, then ephemeralContainers.
pub fn containers(spec: &PodSpec) -> impl Iterator<Item = ContainerView<'_>> {
    let plain = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| ContainerView::of(ContainerKind::Container, i, c));
    let init = spec
        .init_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, c)| ContainerView::of(ContainerKind::InitContainer, i, c));
    let ephemeral = spec
        .ephemeral_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, c)| ContainerView::of_ephemeral(i, c));
    plain.chain(init).chain(ephemeral)
}

/// What a check sees: the pod and the policy version.
pub(crate) struct Ctx<'a> {
    pub meta: &'a ObjectMeta,
    pub spec: &'a PodSpec,
    pub version: Version,
}

impl<'a> Ctx<'a> {
    /// Containers, then init containers, then ephemeral containers.
    pub fn containers(&self) -> impl Iterator<Item = ContainerView<'a>> + 'a {
        containers(self.spec)
    }

    pub fn pod_security_context(&self) -> Option<&'a PodSecurityContext> {
        self.spec.security_context.as_ref()
    }

    /// `spec.os.name == "windows"`, which exempts the pod from some restricted checks from v1.25.
    pub fn is_windows(&self) -> bool {
        self.spec.os.as_ref().is_some_and(|os| os.name == "windows")
    }

    /// `spec.hostUsers: false`: the pod runs in its own user namespace.
    pub fn in_user_namespace(&self) -> bool {
        self.spec.host_users == Some(false)
    }

    /// The container with this name, for findings on annotations keyed by container name.
    pub fn container_named(&self, name: &str) -> Option<ContainerView<'a>> {
        self.containers().find(|c| c.name == name)
    }
}

/// The fields of a container (or ephemeral container) that the checks read, whichever of
/// the three lists it stands in.
#[derive(Clone, Copy, Debug)]
pub struct ContainerView<'a> {
    pub kind: ContainerKind,
    pub index: usize,
    pub name: &'a str,
    pub image: Option<&'a str>,
    pub security_context: Option<&'a SecurityContext>,
    pub ports: &'a [ContainerPort],
    pub liveness_probe: Option<&'a Probe>,
    pub readiness_probe: Option<&'a Probe>,
    pub startup_probe: Option<&'a Probe>,
    pub lifecycle: Option<&'a Lifecycle>,
}

impl<'a> ContainerView<'a> {
    fn of(kind: ContainerKind, index: usize, c: &'a Container) -> Self {
        ContainerView {
            kind,
            index,
            name: &c.name,
            image: c.image.as_deref(),
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            liveness_probe: c.liveness_probe.as_ref(),
            readiness_probe: c.readiness_probe.as_ref(),
            startup_probe: c.startup_probe.as_ref(),
            lifecycle: c.lifecycle.as_ref(),
        }
    }

    fn of_ephemeral(index: usize, c: &'a EphemeralContainer) -> Self {
        ContainerView {
            kind: ContainerKind::EphemeralContainer,
            index,
            name: &c.name,
            image: c.image.as_deref(),
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            liveness_probe: c.liveness_probe.as_ref(),
            readiness_probe: c.readiness_probe.as_ref(),
            startup_probe: c.startup_probe.as_ref(),
            lifecycle: c.lifecycle.as_ref(),
        }
    }

    pub fn reference(&self) -> ContainerRef {
        ContainerRef {
            kind: self.kind,
            index: self.index,
            name: self.name.to_owned(),
        }
    }

    /// The pod-relative path of a field of this container (`spec.initContainers[1].image`).
    pub fn field(&self, sub: &str) -> String {
        format!("spec.{}[{}].{sub}", self.kind.field(), self.index)
    }

    /// A finding about `sub` (a path relative to the container, e.g. `securityContext.privileged`).
    pub(crate) fn finding(
        &self,
        check: CheckId,
        sub: &str,
        message: String,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            container: Some(self.reference()),
            field: self.field(sub),
            message,
            fix: fix.into(),
        }
    }
}

/// A finding about a pod-level field (`spec.hostNetwork`, `metadata.annotations[…]`).
pub(crate) fn pod_finding(
    check: CheckId,
    field: impl Into<String>,
    message: String,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        check,
        container: None,
        field: field.into(),
        message,
        fix: fix.into(),
    }
}

/// `"a", "b"`: distinct values in first-seen order, quoted, for messages.
pub(crate) fn quote_distinct<'s>(values: impl Iterator<Item = &'s str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    let mut s = String::new();
    for (i, v) in seen.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('"');
        s.push_str(v);
        s.push('"');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn privileged_level_finds_nothing() {
        let pod = pod(
            r#"{"spec":{"hostNetwork":true,"containers":[{"name":"a","securityContext":{"privileged":true}}]}}"#,
        );
        assert!(evaluate(Level::Privileged, Version::Latest, pod.view()).is_empty());
        assert!(!evaluate(Level::Baseline, Version::Latest, pod.view()).is_empty());
    }

    #[test]
    fn container_order_and_paths() {
        let pod = pod(r#"{"spec":{
                "containers":[{"name":"c0"},{"name":"c1","securityContext":{"privileged":true}}],
                "initContainers":[{"name":"i0","securityContext":{"privileged":true}}],
                "ephemeralContainers":[{"name":"e0","securityContext":{"privileged":true}}]}}"#);
        let got = evaluate(Level::Baseline, Version::Latest, pod.view());
        let fields: Vec<&str> = got.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.containers[1].securityContext.privileged",
                "spec.initContainers[0].securityContext.privileged",
                "spec.ephemeralContainers[0].securityContext.privileged",
            ]
        );
        let refs: Vec<_> = got.iter().filter_map(|f| f.container.clone()).collect();
        assert_eq!(
            refs[2],
            ContainerRef {
                kind: ContainerKind::EphemeralContainer,
                index: 0,
                name: "e0".into()
            }
        );
    }

    #[test]
    fn restricted_overrides_follow_upstream() {
        use CheckId::*;
        let table: &[(CheckId, u16, bool)] = &[
            // (baseline check, version, still runs at restricted)
            (HostPathVolumes, 0, false),
            (HostPathVolumes, 37, false),
            (SeccompProfileBaseline, 18, true),
            (SeccompProfileBaseline, 19, false),
            (CapabilitiesBaseline, 21, true),
            (CapabilitiesBaseline, 22, false),
            (ProcMount, 34, true),
            (ProcMount, 35, false),
            (Privileged, 37, true),
        ];
        for &(id, v, runs) in table {
            assert_eq!(
                id.applies(Level::Restricted, Version::V1(v)),
                runs,
                "{id:?} v1.{v}"
            );
            assert!(id.applies(Level::Baseline, Version::V1(v)), "{id:?} v1.{v}");
        }
        assert!(!HostProbesAndHostLifecycle.applies(Level::Baseline, Version::V1(33)));
        assert!(HostProbesAndHostLifecycle.applies(Level::Restricted, Version::V1(34)));
        assert!(!AllowPrivilegeEscalation.applies(Level::Restricted, Version::V1(7)));
        assert!(!RunAsNonRoot.applies(Level::Baseline, Version::Latest));
        assert!(ProcMountRestricted.applies(Level::Restricted, Version::Latest));
    }

    #[test]
    fn passing_pod_finds_nothing_at_every_version() {
        let pod = pod(RESTRICTED_OK);
        for v in 0..=40 {
            for level in [Level::Baseline, Level::Restricted] {
                let got = evaluate(level, Version::V1(v), pod.view());
                assert!(got.is_empty(), "{level} v1.{v}: {got:#?}");
            }
        }
    }

    #[test]
    fn evaluate_check_ignores_level_but_not_version() {
        let pod = pod(r#"{"spec":{"containers":[{"name":"a"}]}}"#);
        assert_eq!(
            evaluate_check(CheckId::RunAsNonRoot, Version::Latest, pod.view()).len(),
            1
        );
        assert!(evaluate_check(CheckId::RunAsUser, Version::V1(22), pod.view()).is_empty());
    }
}
