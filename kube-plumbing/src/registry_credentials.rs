//! Registry logins from Secrets, found where the kubelet finds them: a pod's
//! `spec.imagePullSecrets`, then its ServiceAccount's `imagePullSecrets`; and Secrets named
//! by configuration (Palisade's ScanPolicies' `registryCredentials`).
//!
//! This module is pure: parsing pull Secrets and choosing the logins to try for a registry.
//! [`reader`] reads the Secrets and ServiceAccounts from the API server.

pub mod reader;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{LocalObjectReference, PodSpec, Secret};
use palisade_scanner::oci::auth::{Credentials, Login};

/// The Secret types the kubelet takes pull credentials from, and the key each holds them in.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
pub const DOCKER_CFG_TYPE: &str = "kubernetes.io/dockercfg";
pub const DOCKER_CFG_KEY: &str = ".dockercfg";

/// The `.dockerconfigjson` of a Secret of type `kubernetes.io/dockerconfigjson`, the only
/// form a Secret named by configuration may take.
pub fn docker_config_of(secret: &Secret) -> Result<&[u8], String> {
    let type_ = secret.type_.as_deref().unwrap_or("Opaque");
    if type_ != DOCKER_CONFIG_JSON_TYPE {
        return Err(format!(
            "type is {type_:?}, not {DOCKER_CONFIG_JSON_TYPE:?}"
        ));
    }
    data_of(secret, DOCKER_CONFIG_JSON_KEY)
        .ok_or_else(|| format!("no {DOCKER_CONFIG_JSON_KEY:?} key"))
}

/// The bytes under `key` of a Secret's `data`.
fn data_of<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
}

/// The ServiceAccount of a pod that names none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// Registry logins from one place, named for logs and messages (`Secret shop/regcred`).
#[derive(Clone, Debug)]
pub struct LoginSource {
    pub name: String,
    pub credentials: Arc<Credentials>,
}

/// The logins of a pull Secret, as the kubelet reads them: `.dockerconfigjson` of a
/// `kubernetes.io/dockerconfigjson` Secret (`{"auths": {host: …}}`), or `.dockercfg` of a
/// `kubernetes.io/dockercfg` one (the older form, the same entries without `auths`). `what`
/// names the Secret in errors.
pub fn parse_pull_secret(what: &str, secret: &Secret) -> Result<Credentials, String> {
    let type_ = secret.type_.as_deref().unwrap_or("Opaque");
    let key = match type_ {
        DOCKER_CONFIG_JSON_TYPE => DOCKER_CONFIG_JSON_KEY,
        DOCKER_CFG_TYPE => DOCKER_CFG_KEY,
        _ => {
            return Err(format!(
                "{what}: type is {type_:?}, not {DOCKER_CONFIG_JSON_TYPE:?} or {DOCKER_CFG_TYPE:?}"
            ));
        }
    };
    let bytes = data_of(secret, key).ok_or_else(|| format!("{what}: no {key:?} key"))?;
    let mut credentials = Credentials::new();
    if key == DOCKER_CONFIG_JSON_KEY {
        credentials.add_docker_config(what, bytes)?;
    } else {
        // The scanner reads the `auths` form only: wrap the old one in it.
        let entries: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)
            .map_err(|e| format!("{what}: not a .dockercfg document: {e}"))?;
        let wrapped = serde_json::json!({ "auths": entries }).to_string();
        credentials.add_docker_config(what, wrapped.as_bytes())?;
    }
    Ok(credentials)
}

/// The logins to try for a registry `host`, in the order of `sources`, each distinct login
/// once (the same Secret listed by the pod and its ServiceAccount is tried once). Empty:
/// the registry is asked anonymously.
pub fn logins_for<'a>(host: &str, sources: &'a [LoginSource]) -> Vec<(&'a str, &'a Login)> {
    let mut out: Vec<(&str, &Login)> = Vec::new();
    for source in sources {
        if let Some(login) = source.credentials.for_host(host)
            && !out.iter().any(|(_, l)| *l == login)
        {
            out.push((source.name.as_str(), login));
        }
    }
    out
}

/// The names of a pod's pull Secrets in the order the kubelet tries them: the pod's own,
/// then its ServiceAccount's; each once, empty names left out.
pub fn pull_secret_names(
    pod: &[LocalObjectReference],
    account: &[LocalObjectReference],
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in pod.iter().chain(account) {
        if !r.name.is_empty() && !names.contains(&r.name) {
            names.push(r.name.clone());
        }
    }
    names
}

/// The ServiceAccount a pod runs as: `serviceAccountName`, else the deprecated
/// `serviceAccount`, else `default` (what the ServiceAccount admission plugin sets).
pub fn service_account_of(spec: &PodSpec) -> &str {
    #[allow(deprecated)]
    let legacy = spec.service_account.as_deref();
    spec.service_account_name
        .as_deref()
        .or(legacy)
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret(type_: Option<&str>, key: &str, value: &str) -> Secret {
        Secret {
            type_: type_.map(str::to_owned),
            data: Some(BTreeMap::from([(
                key.to_owned(),
                ByteString(value.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        }
    }

    fn login(user: &str, password: &str) -> Login {
        Login {
            username: user.into(),
            password: password.into(),
        }
    }

    fn source(name: &str, entries: &[(&str, Login)]) -> LoginSource {
        let mut credentials = Credentials::new();
        for (host, login) in entries {
            credentials.insert(host, login.clone());
        }
        LoginSource {
            name: name.into(),
            credentials: Arc::new(credentials),
        }
    }

    #[test]
    fn pull_secrets_parse_as_the_kubelet_reads_them() {
        // base64 of alice:pw
        let alice = "YWxpY2U6cHc=";
        let json = format!(r#"{{"auths":{{"registry.example.com":{{"auth":"{alice}"}}}}}}"#);
        let cfg = format!(r#"{{"https://registry.example.com/v1/":{{"auth":"{alice}"}}}}"#);
        // (case, secret, the login for registry.example.com, or the error's words)
        let table: Vec<(&str, Secret, Result<&str, &str>)> = vec![
            (
                "dockerconfigjson",
                secret(Some(DOCKER_CONFIG_JSON_TYPE), DOCKER_CONFIG_JSON_KEY, &json),
                Ok("alice"),
            ),
            (
                "dockercfg, with a scheme and path in the key",
                secret(Some(DOCKER_CFG_TYPE), DOCKER_CFG_KEY, &cfg),
                Ok("alice"),
            ),
            (
                "dockercfg with username and password",
                secret(
                    Some(DOCKER_CFG_TYPE),
                    DOCKER_CFG_KEY,
                    r#"{"registry.example.com":{"username":"bob","password":"x","email":"b@x"}}"#,
                ),
                Ok("bob"),
            ),
            (
                "an Opaque Secret",
                secret(None, DOCKER_CONFIG_JSON_KEY, &json),
                Err("type is \"Opaque\""),
            ),
            (
                "the key of the other type",
                secret(Some(DOCKER_CFG_TYPE), DOCKER_CONFIG_JSON_KEY, &json),
                Err("no \".dockercfg\" key"),
            ),
            (
                "dockercfg that is not an object",
                secret(Some(DOCKER_CFG_TYPE), DOCKER_CFG_KEY, "[1]"),
                Err("not a .dockercfg document"),
            ),
            (
                "dockerconfigjson with a bad auth",
                secret(
                    Some(DOCKER_CONFIG_JSON_TYPE),
                    DOCKER_CONFIG_JSON_KEY,
                    r#"{"auths":{"r":{"auth":"!!"}}}"#,
                ),
                Err("not base64"),
            ),
            (
                "dockercfg with an entry without a login",
                secret(
                    Some(DOCKER_CFG_TYPE),
                    DOCKER_CFG_KEY,
                    r#"{"r":{"email":"a@b"}}"#,
                ),
                Err("neither auth nor username"),
            ),
        ];
        for (case, secret, want) in table {
            let got = parse_pull_secret("Secret shop/regcred", &secret);
            match (got, want) {
                (Ok(c), Ok(user)) => assert_eq!(
                    c.for_host("registry.example.com")
                        .map(|l| l.username.as_str()),
                    Some(user),
                    "{case}"
                ),
                (Err(e), Err(words)) => assert!(
                    e.contains(words) && e.starts_with("Secret shop/regcred: "),
                    "{case}: {e}"
                ),
                (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn docker_config_secrets() {
        let json = r#"{"auths":{"registry.example.com":{"username":"u","password":"p"}}}"#;
        let ok = secret(Some(DOCKER_CONFIG_JSON_TYPE), DOCKER_CONFIG_JSON_KEY, json);
        let bytes = docker_config_of(&ok).expect("a docker config");
        let mut c = Credentials::new();
        c.add_docker_config("s", bytes).expect("parses");
        assert!(c.for_host("registry.example.com").is_some());
        for (what, s) in [
            ("opaque", secret(None, DOCKER_CONFIG_JSON_KEY, json)),
            (
                "other type",
                secret(Some("kubernetes.io/dockercfg"), ".dockercfg", json),
            ),
            (
                "no key",
                secret(Some(DOCKER_CONFIG_JSON_TYPE), "config.json", json),
            ),
        ] {
            assert!(docker_config_of(&s).is_err(), "{what}");
        }
        let bad = secret(
            Some(DOCKER_CONFIG_JSON_TYPE),
            DOCKER_CONFIG_JSON_KEY,
            "{not json",
        );
        let bytes = docker_config_of(&bad).expect("the key is there");
        assert!(Credentials::new().add_docker_config("s", bytes).is_err());
    }

    #[test]
    fn logins_are_tried_in_source_order_each_once() {
        let pod = source(
            "Secret shop/pod",
            &[("registry.example.com", login("pod", "1"))],
        );
        let other_host = source("Secret shop/hub", &[("docker.io", login("hub", "2"))]);
        let account = source(
            "Secret shop/account",
            &[("registry.example.com", login("sa", "3"))],
        );
        let same_as_pod = source(
            "Secret shop/copy",
            &[("registry.example.com", login("pod", "1"))],
        );
        let policy = source(
            "ScanPolicy registryCredentials",
            &[("registry.example.com", login("policy", "4"))],
        );
        // (case, sources, host, the source names tried in order)
        let table: Vec<(&str, Vec<LoginSource>, &str, Vec<&str>)> = vec![
            ("none", vec![], "registry.example.com", vec![]),
            (
                "the pod's, then the ServiceAccount's, then the policies'",
                vec![pod.clone(), account.clone(), policy.clone()],
                "registry.example.com",
                vec![
                    "Secret shop/pod",
                    "Secret shop/account",
                    "ScanPolicy registryCredentials",
                ],
            ),
            (
                "only sources with a login for the host",
                vec![other_host.clone(), account.clone()],
                "registry.example.com",
                vec!["Secret shop/account"],
            ),
            (
                "Docker Hub under its other names",
                vec![pod.clone(), other_host.clone()],
                "index.docker.io",
                vec!["Secret shop/hub"],
            ),
            (
                "the same login twice is tried once",
                vec![pod.clone(), same_as_pod, policy.clone()],
                "registry.example.com",
                vec!["Secret shop/pod", "ScanPolicy registryCredentials"],
            ),
            (
                "no login for this host: anonymous",
                vec![pod, account, policy],
                "ghcr.io",
                vec![],
            ),
        ];
        for (case, sources, host, want) in table {
            let got: Vec<&str> = logins_for(host, &sources)
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn pull_secret_names_and_service_accounts() {
        let refs = |names: &[&str]| -> Vec<LocalObjectReference> {
            names
                .iter()
                .map(|n| LocalObjectReference { name: (*n).into() })
                .collect()
        };
        let table: [(&[&str], &[&str], &[&str]); 4] = [
            (&[], &[], &[]),
            (&["a", "b"], &["c"], &["a", "b", "c"]),
            (&["a", ""], &["a", "c"], &["a", "c"]),
            (&[], &["sa"], &["sa"]),
        ];
        for (pod, account, want) in table {
            assert_eq!(
                pull_secret_names(&refs(pod), &refs(account)),
                want,
                "{pod:?} {account:?}"
            );
        }

        #[allow(deprecated)]
        let legacy = PodSpec {
            service_account: Some("old".into()),
            ..PodSpec::default()
        };
        let table = [
            (PodSpec::default(), "default"),
            (
                PodSpec {
                    service_account_name: Some("builder".into()),
                    ..legacy.clone()
                },
                "builder",
            ),
            (legacy, "old"),
            (
                PodSpec {
                    service_account_name: Some(String::new()),
                    ..PodSpec::default()
                },
                "default",
            ),
        ];
        for (spec, want) in table {
            assert_eq!(service_account_of(&spec), want);
        }
    }
}
