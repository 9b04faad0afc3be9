//! `appArmorProfile` (baseline, v1.0+): AppArmor must not be disabled or overridden with an
//! arbitrary profile, through either the `appArmorProfile` fields (pod and containers) or the
//! deprecated per-container annotations. Upstream checks both at every policy version.

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const FIX_FIELD: &str = "set the type to RuntimeDefault or Localhost, or remove it";

fn allowed_type(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn allowed_annotation(v: &str) -> bool {
    v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
}

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if let Some(p) = ctx
        .pod_security_context()
        .and_then(|sc| sc.app_armor_profile.as_ref())
        .filter(|p| !allowed_type(&p.type_))
    {
        out.push(pod_finding(
            CheckId::AppArmorProfile,
            "spec.securityContext.appArmorProfile.type",
            format!(
                "spec.securityContext.appArmorProfile.type={} is not allowed",
                p.type_
            ),
            FIX_FIELD,
        ));
    }
    for c in ctx.containers() {
        if let Some(p) = c
            .security_context
            .and_then(|sc| sc.app_armor_profile.as_ref())
            .filter(|p| !allowed_type(&p.type_))
        {
            out.push(c.finding(
                CheckId::AppArmorProfile,
                "securityContext.appArmorProfile.type",
                format!(
                    "securityContext.appArmorProfile.type={} is not allowed",
                    p.type_
                ),
                FIX_FIELD,
            ));
        }
    }
    for (key, value) in ctx.meta.annotations.iter().flatten() {
        let Some(name) = key.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        if allowed_annotation(value) {
            continue;
        }
        let mut f = pod_finding(
            CheckId::AppArmorProfile,
            format!("metadata.annotations[{key}]"),
            format!("AppArmor annotation {key}={value:?} is not allowed"),
            "set it to runtime/default or localhost/<profile>, or remove it \
             (better: set securityContext.appArmorProfile.type)",
        );
        f.container = ctx.container_named(name).map(|c| c.reference());
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_table, run};
    use crate::CheckId;

    #[test]
    fn table() {
        assert_table(
            CheckId::AppArmorProfile,
            &[
                (
                    r#"{"metadata":{"annotations":{
                        "container.apparmor.security.beta.kubernetes.io/a":"runtime/default",
                        "container.apparmor.security.beta.kubernetes.io/b":"localhost/my",
                        "container.apparmor.security.beta.kubernetes.io/c":"",
                        "other":"unconfined"}},
                      "spec":{"securityContext":{"appArmorProfile":{"type":"RuntimeDefault"}},
                        "containers":[{"name":"a","securityContext":{"appArmorProfile":{"type":"Localhost","localhostProfile":"p"}}}]}}"#,
                    0,
                    &[],
                ),
                (
                    r#"{"metadata":{"annotations":{"container.apparmor.security.beta.kubernetes.io/app":"unconfined"}},
                      "spec":{"securityContext":{"appArmorProfile":{"type":"Unconfined"}},
                        "containers":[{"name":"app","securityContext":{"appArmorProfile":{"type":"Unconfined"}}}]}}"#,
                    37,
                    &[
                        (
                            "spec.securityContext.appArmorProfile.type",
                            "spec.securityContext.appArmorProfile.type=Unconfined is not allowed",
                        ),
                        (
                            "spec.containers[0].securityContext.appArmorProfile.type",
                            "securityContext.appArmorProfile.type=Unconfined is not allowed",
                        ),
                        (
                            "metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]",
                            "AppArmor annotation container.apparmor.security.beta.kubernetes.io/app=\"unconfined\" is not allowed",
                        ),
                    ],
                ),
                // The fields count at every version, as upstream patched them into its v1.0 check.
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"appArmorProfile":{"type":"Unconfined"}}}]}}"#,
                    0,
                    &[(
                        "spec.containers[0].securityContext.appArmorProfile.type",
                        "securityContext.appArmorProfile.type=Unconfined is not allowed",
                    )],
                ),
            ],
        );
    }

    #[test]
    fn annotation_names_its_container_when_it_exists() {
        let got = run(
            CheckId::AppArmorProfile,
            37,
            r#"{"metadata":{"annotations":{
                "container.apparmor.security.beta.kubernetes.io/init":"unconfined",
                "container.apparmor.security.beta.kubernetes.io/gone":"unconfined"}},
              "spec":{"containers":[{"name":"app"}],"initContainers":[{"name":"init"}]}}"#,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].container, None, "no container named gone");
        let init = got[1].container.as_ref().expect("init container");
        assert_eq!((init.name.as_str(), init.index), ("init", 0));
    }
}
