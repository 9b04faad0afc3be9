//! `sysctls` (baseline, v1.0+): only namespaced, node-isolated ("safe") sysctls. The list grew
//! at v1.27, v1.29, v1.32 and v1.37.

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

/// Each safe sysctl with the policy minor version that allowed it.
const SAFE: &[(&str, u16)] = &[
    ("kernel.shm_rmid_forced", 0),
    ("net.ipv4.ip_local_port_range", 0),
    ("net.ipv4.tcp_syncookies", 0),
    ("net.ipv4.ping_group_range", 0),
    ("net.ipv4.ip_unprivileged_port_start", 0),
    ("net.ipv4.ip_local_reserved_ports", 27),
    ("net.ipv4.tcp_keepalive_time", 29),
    ("net.ipv4.tcp_fin_timeout", 29),
    ("net.ipv4.tcp_keepalive_intvl", 29),
    ("net.ipv4.tcp_keepalive_probes", 29),
    ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_wmem", 32),
    ("net.ipv4.tcp_slow_start_after_idle", 37),
    ("net.ipv4.tcp_notsent_lowat", 37),
];

fn allowed(ctx: &Ctx<'_>, name: &str) -> bool {
    SAFE.iter()
        .any(|&(safe, since)| safe == name && ctx.version.at_least(since))
}

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let sysctls = ctx
        .pod_security_context()
        .and_then(|sc| sc.sysctls.as_deref())
        .unwrap_or_default();
    for (i, s) in sysctls.iter().enumerate() {
        if !allowed(ctx, &s.name) {
            let safe: Vec<&str> = SAFE
                .iter()
                .filter(|&&(_, since)| ctx.version.at_least(since))
                .map(|&(name, _)| name)
                .collect();
            out.push(pod_finding(
                CheckId::Sysctls,
                format!("spec.securityContext.sysctls[{i}].name"),
                format!("sysctl {:?} is not allowed", s.name),
                format!("remove it; the allowed sysctls are {}", safe.join(", ")),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_table, run};
    use crate::CheckId;

    fn pod(names: &[&str]) -> String {
        let list: Vec<String> = names
            .iter()
            .map(|n| format!(r#"{{"name":"{n}","value":"1"}}"#))
            .collect();
        format!(
            r#"{{"spec":{{"containers":[],"securityContext":{{"sysctls":[{}]}}}}}}"#,
            list.join(",")
        )
    }

    #[test]
    fn table() {
        let base = pod(&[
            "kernel.shm_rmid_forced",
            "net.ipv4.ip_unprivileged_port_start",
        ]);
        let bad = pod(&["net.ipv4.tcp_syncookies", "kernel.msgmax"]);
        assert_table(
            CheckId::Sysctls,
            &[
                (&base, 0, &[]),
                (
                    &bad,
                    37,
                    &[(
                        "spec.securityContext.sysctls[1].name",
                        "sysctl \"kernel.msgmax\" is not allowed",
                    )],
                ),
            ],
        );
    }

    #[test]
    fn allowlist_grows_by_version() {
        let table: &[(&str, u16)] = &[
            ("net.ipv4.ip_local_reserved_ports", 27),
            ("net.ipv4.tcp_keepalive_time", 29),
            ("net.ipv4.tcp_fin_timeout", 29),
            ("net.ipv4.tcp_keepalive_intvl", 29),
            ("net.ipv4.tcp_keepalive_probes", 29),
            ("net.ipv4.tcp_rmem", 32),
            ("net.ipv4.tcp_wmem", 32),
            ("net.ipv4.tcp_slow_start_after_idle", 37),
            ("net.ipv4.tcp_notsent_lowat", 37),
        ];
        for &(name, since) in table {
            let json = pod(&[name]);
            assert_eq!(
                run(CheckId::Sysctls, since - 1, &json).len(),
                1,
                "{name} before v1.{since}"
            );
            assert!(
                run(CheckId::Sysctls, since, &json).is_empty(),
                "{name} at v1.{since}"
            );
        }
    }

    #[test]
    fn fix_lists_the_allowlist_of_the_version() {
        let json = pod(&["x"]);
        assert!(
            !run(CheckId::Sysctls, 26, &json)[0]
                .fix
                .contains("reserved_ports")
        );
        assert!(
            run(CheckId::Sysctls, 27, &json)[0]
                .fix
                .contains("reserved_ports")
        );
    }
}
