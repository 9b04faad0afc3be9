//! Bearer-token authentication against a real registry: Debian's docker-registry with
//! `auth: token`, verifying ES256 tokens from a token server the test runs in-process.

use palisade_imageref::ImageRef;
use palisade_oci_fixtures::{Compression, LayerBuilder, Registry};
use palisade_scanner::layers::Limits;
use palisade_scanner::oci::{ClientConfig, Credentials, Login, Platform, RegistryClient};
use palisade_scanner::scan::{ImageInventory, inventory_image};

fn client(credentials: Credentials) -> RegistryClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    RegistryClient::new(ClientConfig {
        credentials,
        ..ClientConfig::default()
    })
    .expect("client")
}

fn login(registry: &Registry, user: &str, password: &str) -> Credentials {
    let mut c = Credentials::new();
    c.insert(
        registry.host(),
        Login {
            username: user.into(),
            password: password.into(),
        },
    );
    c
}

async fn scan(
    c: &RegistryClient,
    reference: &str,
) -> Result<ImageInventory, palisade_scanner::Error> {
    let image = ImageRef::parse(reference).expect("reference");
    inventory_image(
        c,
        &image,
        &Platform::parse("linux/amd64").expect("platform"),
        Limits::default(),
    )
    .await
}

const ALPINE_OS: &str = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\n";

fn apk_record(name: &str, version: &str) -> String {
    format!("P:{name}\nV:{version}\nA:x86_64\no:{name}\n\n")
}

/// Push a two-layer image (so a scan fetches a manifest, a config and two blobs).
async fn push_app(registry: &Registry, repo: &str) {
    let push = registry.pusher().expect("pusher");
    let base = LayerBuilder::new()
        .file("etc/os-release", ALPINE_OS)
        .file("lib/apk/db/installed", apk_record("musl", "1.2.4-r2"))
        .build(Compression::Gzip);
    let top = LayerBuilder::new()
        .file(
            "lib/apk/db/installed",
            [
                apk_record("musl", "1.2.4-r2"),
                apk_record("busybox", "1.36.1-r5"),
            ]
            .concat(),
        )
        .build(Compression::Gzip);
    push.image(repo, "1.0", &[base, top], "linux", "amd64")
        .await
        .expect("push through a token");
}

#[tokio::test]
async fn the_registry_enforces_tokens() {
    let registry = Registry::start_with_token_auth("ci", "s3cret").expect("registry");
    push_app(&registry, "team/app").await;
    let server = registry.token_server().expect("token server");

    // Without a token the registry challenges with the token server's realm: the success
    // of the other tests is the token's doing, not an open registry's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let resp = http
        .get(format!(
            "http://{}/v2/team/app/manifests/1.0",
            registry.host()
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(&server.realm()),
        "{challenge}"
    );

    // A token for another repository does not open this one.
    let other = server
        .issuer()
        .mint("ci", &[("team/other".into(), vec!["pull".into()])]);
    let resp = http
        .get(format!(
            "http://{}/v2/team/app/manifests/1.0",
            registry.host()
        ))
        .bearer_auth(other)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401, "a token for team/other");

    // A token signed by a key the registry does not trust is refused.
    let stranger = palisade_oci_fixtures::TokenIssuer::generate().expect("issuer");
    let forged = stranger.mint("ci", &[("team/app".into(), vec!["pull".into()])]);
    let resp = http
        .get(format!(
            "http://{}/v2/team/app/manifests/1.0",
            registry.host()
        ))
        .bearer_auth(forged)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401, "a token from an untrusted CA");
}

#[tokio::test]
async fn scanning_with_the_login_fetches_one_token_per_repository() {
    let registry = Registry::start_with_token_auth("ci", "s3cret").expect("registry");
    push_app(&registry, "team/app").await;
    push_app(&registry, "team/worker").await;
    let server = registry.token_server().expect("token server");
    assert_eq!(server.requests(), 0, "pushes sign their own tokens");

    let c = client(login(&registry, "ci", "s3cret"));
    let reference = format!("{}/team/app:1.0", registry.host());
    let inv = scan(&c, &reference).await.expect("scan with the login");
    let mut names: Vec<String> = inv
        .inventory
        .packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    names.sort();
    assert_eq!(names, ["busybox=1.36.1-r5", "musl=1.2.4-r2"]);
    assert_eq!(
        server.requests(),
        1,
        "one token for the manifest, the config and both layers"
    );

    // The same client scans the same repository again on its cached token.
    scan(&c, &reference).await.expect("second scan");
    assert_eq!(server.requests(), 1, "the token is reused");

    // Another repository needs its own scope, hence its own token.
    scan(&c, &format!("{}/team/worker:1.0", registry.host()))
        .await
        .expect("scan another repository");
    assert_eq!(server.requests(), 2, "one more token for team/worker");
}

#[tokio::test]
async fn without_or_with_wrong_credentials_the_scan_fails_clearly() {
    let registry = Registry::start_with_token_auth("ci", "s3cret").expect("registry");
    push_app(&registry, "team/app").await;
    let server = registry.token_server().expect("token server");
    let reference = format!("{}/team/app:1.0", registry.host());

    // Anonymous: the token server hands out a token granting nothing; the registry refuses it.
    let err = scan(&client(Credentials::new()), &reference)
        .await
        .expect_err("anonymous")
        .to_string();
    assert!(
        err.contains(&format!("registry {}", registry.host()))
            && err.contains("team/app: access denied (401 Unauthorized)")
            && err.contains("private or does not exist")
            && err.contains("registryCredentials"),
        "{err}"
    );
    assert_eq!(
        server.requests(),
        1,
        "the anonymous client asked for a token"
    );

    // A wrong password: the token server refuses, and the error names it and the scope.
    let err = scan(&client(login(&registry, "ci", "nope")), &reference)
        .await
        .expect_err("wrong password")
        .to_string();
    assert!(
        err.contains(&format!("registry {}", registry.host()))
            && err.contains(&format!("token endpoint {}", server.realm()))
            && err.contains("refused repository:team/app:pull (401 Unauthorized)")
            && err.contains("check the registryCredentials Secret"),
        "{err}"
    );
    assert_eq!(server.requests(), 2);

    // An unknown user is refused the same way.
    let err = scan(&client(login(&registry, "mallory", "s3cret")), &reference)
        .await
        .expect_err("unknown user")
        .to_string();
    assert!(err.contains("401 Unauthorized"), "{err}");
}
