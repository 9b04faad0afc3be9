//! `seccompProfile_baseline` (baseline): seccomp must not be disabled. Before v1.19 the policy
//! reads the alpha annotations; from v1.19 the `seccompProfile` fields, where unset is allowed.
//! At restricted, `seccompProfile_restricted` replaces it from v1.19.

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

const POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";
const FIX_ANNOTATION: &str = "set it to runtime/default or localhost/<profile>, or remove it";
const FIX_FIELD: &str = "set the type to RuntimeDefault or Localhost, or remove it";

pub(super) fn valid_type(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn valid_annotation(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if ctx.version.at_least(19) {
        check_fields(ctx, out);
    } else {
        check_annotations(ctx, out);
    }
}

fn check_annotations(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (key, value) in ctx.meta.annotations.iter().flatten() {
        // Upstream reads only the pod key and the keys of containers the pod has.
        let container = if key == POD_ANNOTATION {
            None
        } else if let Some(name) = key.strip_prefix(CONTAINER_ANNOTATION_PREFIX) {
            match ctx.container_named(name) {
                Some(c) => Some(c.reference()),
                None => continue,
            }
        } else {
            continue;
        };
        if valid_annotation(value) {
            continue;
        }
        let mut f = pod_finding(
            CheckId::SeccompProfileBaseline,
            format!("metadata.annotations[{key}]"),
            format!("seccomp annotation {key}={value:?} is not allowed"),
            FIX_ANNOTATION,
        );
        f.container = container;
        out.push(f);
    }
}

fn check_fields(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if let Some(p) = ctx
        .pod_security_context()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        .filter(|p| !valid_type(&p.type_))
    {
        out.push(pod_finding(
            CheckId::SeccompProfileBaseline,
            "spec.securityContext.seccompProfile.type",
            format!(
                "spec.securityContext.seccompProfile.type={} is not allowed",
                p.type_
            ),
            FIX_FIELD,
        ));
    }
    for c in ctx.containers() {
        if let Some(p) = c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref())
            .filter(|p| !valid_type(&p.type_))
        {
            out.push(c.finding(
                CheckId::SeccompProfileBaseline,
                "securityContext.seccompProfile.type",
                format!(
                    "securityContext.seccompProfile.type={} is not allowed",
                    p.type_
                ),
                FIX_FIELD,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_table;
    use crate::CheckId;

    const ANNOTATED: &str = r#"{"metadata":{"annotations":{
        "seccomp.security.alpha.kubernetes.io/pod":"unconfined",
        "container.seccomp.security.alpha.kubernetes.io/a":"localhost/x",
        "container.seccomp.security.alpha.kubernetes.io/b":"",
        "container.seccomp.security.alpha.kubernetes.io/gone":"unconfined"}},
      "spec":{"containers":[{"name":"a"},{"name":"b"}]}}"#;

    const FIELDS: &str = r#"{"spec":{"securityContext":{"seccompProfile":{"type":"Unconfined"}},
        "containers":[{"name":"a","securityContext":{"seccompProfile":{"type":"Unconfined"}}},
                      {"name":"b","securityContext":{"seccompProfile":{"type":"Localhost","localhostProfile":"p"}}}]}}"#;

    #[test]
    fn annotations_before_1_19() {
        assert_table(
            CheckId::SeccompProfileBaseline,
            &[
                (
                    r#"{"metadata":{"annotations":{
                        "seccomp.security.alpha.kubernetes.io/pod":"docker/default",
                        "container.seccomp.security.alpha.kubernetes.io/a":"runtime/default"}},
                      "spec":{"containers":[{"name":"a"}]}}"#,
                    0,
                    &[],
                ),
                (
                    ANNOTATED,
                    18,
                    &[
                        (
                            "metadata.annotations[container.seccomp.security.alpha.kubernetes.io/b]",
                            "seccomp annotation container.seccomp.security.alpha.kubernetes.io/b=\"\" is not allowed",
                        ),
                        (
                            "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]",
                            "seccomp annotation seccomp.security.alpha.kubernetes.io/pod=\"unconfined\" is not allowed",
                        ),
                    ],
                ),
                // Fields are not read before v1.19.
                (FIELDS, 18, &[]),
            ],
        );
    }

    #[test]
    fn fields_from_1_19() {
        assert_table(
            CheckId::SeccompProfileBaseline,
            &[
                (ANNOTATED, 19, &[]),
                (r#"{"spec":{"containers":[{"name":"a"}]}}"#, 37, &[]),
                (
                    FIELDS,
                    19,
                    &[
                        (
                            "spec.securityContext.seccompProfile.type",
                            "spec.securityContext.seccompProfile.type=Unconfined is not allowed",
                        ),
                        (
                            "spec.containers[0].securityContext.seccompProfile.type",
                            "securityContext.seccompProfile.type=Unconfined is not allowed",
                        ),
                    ],
                ),
            ],
        );
    }
}
