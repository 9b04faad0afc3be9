//! `registration::apply` against a real API server: the configuration is accepted, a second
//! apply writes nothing, and in label mode the excluded namespaces carry the exempt label
//! (and a namespace that set it on its own loses it). Needs PALISADE_E2E_KUBECONFIG.

use std::time::{Duration, SystemTime};

use crate::common::{client, suffix};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use palisade_operator::certs::registration::{
    self, EXEMPT_LABEL, FailurePolicy, NamespaceSelectorMode, PODS_WEBHOOK, POLICIES_WEBHOOK,
    RegistrationConfig, Target, WORKLOADS_WEBHOOK,
};
use palisade_operator::certs::{self, CaBundle, CertConfig};

async fn create_namespace(client: &Client, name: &str, labels: &[(&str, &str)]) {
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

fn exempt(ns: &Namespace) -> Option<String> {
    ns.labels().get(EXEMPT_LABEL).cloned()
}

/// A real CA bundle: the API server rejects one that does not parse.
fn ca_bundle() -> CaBundle {
    let cfg = CertConfig::new("palisade-system", "palisade-webhook");
    let ca = certs::issue_ca(&cfg, SystemTime::now()).expect("CA");
    CaBundle::from_pem(ca.cert_pem)
}

/// A configuration that cannot disturb anything else on the cluster: nothing listens on the
/// URL, failures are ignored.
fn config(name: &str, operator_ns: &str) -> RegistrationConfig {
    let mut cfg = RegistrationConfig::new(operator_ns, Target::Url("https://127.0.0.1:9/".into()));
    cfg.name = name.to_string();
    cfg.failure_policy = FailurePolicy::Ignore;
    cfg.timeout_seconds = 3;
    cfg
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn apply_in_label_mode() {
    let client = client().await;
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let id = suffix();
    let operator_ns = format!("palisade-reg-{id}");
    let extra_ns = format!("palisade-extra-{id}");
    let stray_ns = format!("palisade-stray-{id}");
    create_namespace(&client, &operator_ns, &[]).await;
    create_namespace(&client, &extra_ns, &[]).await;
    create_namespace(&client, &stray_ns, &[(EXEMPT_LABEL, "true")]).await;

    let mut cfg = config(&format!("palisade-test-{id}"), &operator_ns);
    cfg.namespace_selector_mode = NamespaceSelectorMode::ExemptLabel;
    cfg.excluded_namespaces = vec![extra_ns.clone(), format!("palisade-absent-{id}")];
    // Namespaces exempted by others on a shared cluster stay as they are.
    let already = ns_api
        .list_metadata(&ListParams::default().labels(EXEMPT_LABEL))
        .await
        .expect("list");
    for ns in already.items {
        let name = ns.metadata.name.unwrap_or_default();
        if name != stray_ns {
            cfg.excluded_namespaces.push(name);
        }
    }

    let bundle = ca_bundle();
    registration::apply(&client, &cfg, &bundle)
        .await
        .expect("apply");

    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let vwc = api.get(&cfg.name).await.expect("configuration exists");
    let names: Vec<&str> = vwc
        .webhooks
        .iter()
        .flatten()
        .map(|w| w.name.as_str())
        .collect();
    assert_eq!(
        names,
        vec![PODS_WEBHOOK, WORKLOADS_WEBHOOK, POLICIES_WEBHOOK]
    );
    for w in vwc.webhooks.iter().flatten() {
        assert_eq!(
            w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()),
            Some(bundle.as_bytes())
        );
        assert_eq!(w.side_effects, "None");
        assert_eq!(w.failure_policy.as_deref(), Some("Ignore"));
    }
    assert!(
        vwc.managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some(palisade_operator::FIELD_MANAGER))
    );

    for ns in ["kube-system", operator_ns.as_str(), extra_ns.as_str()] {
        let got = ns_api.get(ns).await.expect("namespace");
        assert_eq!(exempt(&got).as_deref(), Some("true"), "{ns}");
    }
    let stray = ns_api.get(&stray_ns).await.expect("namespace");
    assert_eq!(
        exempt(&stray),
        None,
        "a namespace outside the list loses the label"
    );
    assert!(
        ns_api
            .get_opt(&format!("palisade-absent-{id}"))
            .await
            .expect("get")
            .is_none(),
        "an absent excluded namespace is not created"
    );

    // A second apply writes nothing.
    let rv = vwc.resource_version();
    let ns_rv = ns_api
        .get(&operator_ns)
        .await
        .expect("ns")
        .resource_version();
    registration::apply(&client, &cfg, &bundle)
        .await
        .expect("apply again");
    assert_eq!(
        api.get(&cfg.name).await.expect("get").resource_version(),
        rv
    );
    assert_eq!(
        ns_api
            .get(&operator_ns)
            .await
            .expect("ns")
            .resource_version(),
        ns_rv
    );

    // A new bundle is written.
    let next = ca_bundle();
    registration::apply(&client, &cfg, &next)
        .await
        .expect("apply new bundle");
    let updated = api.get(&cfg.name).await.expect("get");
    assert_ne!(updated.resource_version(), rv);
    assert!(updated.webhooks.iter().flatten().all(|w| {
        w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) == Some(next.as_bytes())
    }));

    let _ = api.delete(&cfg.name, &DeleteParams::default()).await;
    for ns in [&operator_ns, &extra_ns, &stray_ns] {
        let _ = ns_api.delete(ns, &DeleteParams::default()).await;
    }
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn apply_with_the_mode_of_the_server() {
    let client = client().await;
    let version = client.apiserver_version().await.expect("version");
    let mode = registration::selector_mode_for(&version);
    let minor: u32 = version
        .minor
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("minor version");
    assert_eq!(
        mode == NamespaceSelectorMode::MetadataName,
        minor >= 21,
        "{version:?}"
    );

    let id = suffix();
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    // Label mode is covered (and serialised) in `apply_in_label_mode`: two tests relabelling
    // namespaces at once would undo each other.
    {
        let mode = NamespaceSelectorMode::MetadataName;
        let mut cfg = config(&format!("palisade-test-{id}"), "palisade-system");
        cfg.namespace_selector_mode = mode;
        cfg.target = Target::Service {
            namespace: "palisade-system".into(),
            name: "palisade-webhook".into(),
            port: 8443,
            path_prefix: String::new(),
        };
        registration::apply(&client, &cfg, &ca_bundle())
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e:?}"));
        let vwc = api.get(&cfg.name).await.expect("get");
        let rv = vwc.resource_version();
        let path = vwc
            .webhooks
            .iter()
            .flatten()
            .find(|w| w.name == WORKLOADS_WEBHOOK)
            .and_then(|w| w.client_config.service.as_ref())
            .and_then(|s| s.path.clone());
        assert_eq!(path.as_deref(), Some("/validate/workloads"));
        // Idempotent with the API server's defaults filled in.
        let bundle = CaBundle::from_pem(
            vwc.webhooks
                .iter()
                .flatten()
                .next()
                .and_then(|w| w.client_config.ca_bundle.as_ref())
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default(),
        );
        registration::apply(&client, &cfg, &bundle)
            .await
            .expect("again");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            api.get(&cfg.name).await.expect("get").resource_version(),
            rv,
            "{mode:?}"
        );
        let _ = api.delete(&cfg.name, &DeleteParams::default()).await;
    }
}

/// With an owner ClusterRole, the registration and the certificate Secret are deleted by the
/// garbage collector once the ClusterRole is: what makes `helm uninstall` leave nothing
/// that refuses pods. A registration written before the owner was configured gains it.
#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn registration_and_secret_go_with_their_owner_cluster_role() {
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::api::rbac::v1::ClusterRole;

    let client = client().await;
    let name = format!("palisade-owner-{}", suffix());
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let role = ClusterRole {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    roles
        .create(&PostParams::default(), &role)
        .await
        .expect("create ClusterRole");
    let owner = palisade_operator::certs::cluster_role(&client, &name)
        .await
        .expect("owner reference");

    let namespace = format!("palisade-owner-{}", suffix());
    create_namespace(&client, &namespace, &[]).await;
    let mut cert = CertConfig::new(namespace.clone(), "palisade-webhook");
    cert.secret_name = name.clone();
    // First without the owner, as an older operator wrote them.
    let mut cfg = config(&name, &namespace);
    // Labels on namespaces are another test's subject.
    cfg.namespace_selector_mode = NamespaceSelectorMode::MetadataName;
    registration::apply(&client, &cfg, &ca_bundle())
        .await
        .expect("apply");
    certs::ensure(&client, &cert).await.expect("Secret");
    cfg.owner = Some(owner.clone());
    cert.owner = Some(owner.clone());
    registration::apply(&client, &cfg, &ca_bundle())
        .await
        .expect("apply with owner");
    certs::ensure(&client, &cert)
        .await
        .expect("Secret with owner");
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let vwc = vwcs.get(&name).await.expect("registration");
    assert_eq!(
        vwc.owner_references(),
        std::slice::from_ref(&owner),
        "the registration gained its owner"
    );
    let secret = secrets.get(&name).await.expect("Secret");
    assert_eq!(
        secret.owner_references(),
        [owner],
        "the Secret gained its owner"
    );

    roles
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete ClusterRole");
    crate::common::eventually("the garbage collector deletes both", || {
        let (vwcs, secrets, name) = (vwcs.clone(), secrets.clone(), name.clone());
        async move {
            let vwc = vwcs.get_opt(&name).await.expect("get registration");
            let secret = secrets.get_opt(&name).await.expect("get Secret");
            (vwc.is_none() && secret.is_none()).then_some(())
        }
    })
    .await;
    let _ = Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await;
}
