//! The admin port's read-only view of the reports' files ([`ReportFiles`]):
//!
//! - `GET /reports/{name}`: the full findings, as stored (JSON);
//! - `GET /reports/{name}/sbom?format=cyclonedx|spdx`: the SBOM of the inventory the findings
//!   were judged from, CycloneDX by default, rendered on request.
//!
//! Only the leading replica scans, and the cache is the pod's own (an emptyDir unless the
//! chart names a claim), so a replica that does not lead answers 503 and names the leader
//! rather than a 404 that would say the report has no files. Names are checked against the
//! Kubernetes name alphabet before any path is made of them.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kube::Client;
use palisade_kube_plumbing::lease::{self, Health, Role};
use palisade_scanner::sbom::{self, Format, Subject};
use serde::Deserialize;
use tokio_util::io::ReaderStream;
use tracing::{debug, warn};

use super::files::{ReportFiles, is_report_name};
use crate::error::report as error_report;

/// How long a standby reuses the leader's name it read from the Lease: requests to a
/// standby cost at most one API read per this time.
const LEADER_TTL: Duration = Duration::from_secs(5);
/// A standby's answer never waits longer than this for the Lease.
const LEASE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Who leads, for the answer of a replica that does not.
pub enum Leader {
    /// The holder of a Lease, read when asked (and kept [`LEADER_TTL`]).
    Lease {
        client: Client,
        namespace: String,
        name: String,
        last: Mutex<Option<(Instant, Option<String>)>>,
    },
    /// Known without asking (or not at all).
    Fixed(Option<String>),
}

impl Leader {
    /// The holder of Lease `namespace`/`name`.
    pub fn lease(client: Client, namespace: impl Into<String>, name: impl Into<String>) -> Leader {
        Leader::Lease {
            client,
            namespace: namespace.into(),
            name: name.into(),
            last: Mutex::new(None),
        }
    }

    /// The leader's identity (its pod name), when it can be had quickly.
    async fn identity(&self) -> Option<String> {
        let (client, namespace, name, last) = match self {
            Leader::Fixed(identity) => return identity.clone(),
            Leader::Lease {
                client,
                namespace,
                name,
                last,
            } => (client, namespace, name, last),
        };
        if let Some((at, holder)) = last.lock().unwrap_or_else(PoisonError::into_inner).clone()
            && at.elapsed() < LEADER_TTL
        {
            return holder;
        }
        let read = lease::holder(client.clone(), namespace, name);
        let holder = match tokio::time::timeout(LEASE_READ_TIMEOUT, read).await {
            Ok(Ok(holder)) => holder,
            Ok(Err(e)) => {
                debug!(error = %error_report(&e), "cannot name the leader");
                None
            }
            Err(_) => None,
        };
        *last.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), holder.clone()));
        holder
    }

    /// Where a reader finds the leader's name without this replica's help.
    fn lease_name(&self) -> Option<String> {
        match self {
            Leader::Lease {
                namespace, name, ..
            } => Some(format!("{namespace}/{name}")),
            Leader::Fixed(_) => None,
        }
    }
}

/// What the report routes share.
#[derive(Clone)]
pub struct ReportsApi {
    inner: Arc<Inner>,
}

struct Inner {
    files: ReportFiles,
    health: Health,
    leader: Leader,
}

impl ReportsApi {
    pub fn new(files: ReportFiles, health: Health, leader: Leader) -> ReportsApi {
        ReportsApi {
            inner: Arc::new(Inner {
                files,
                health,
                leader,
            }),
        }
    }

    /// `Ok` when this replica may answer for report `name`; else the answer to give.
    async fn admit(&self, name: &str) -> Result<(), Response> {
        if !is_report_name(name) {
            return Err(plain(
                StatusCode::BAD_REQUEST,
                format!(
                    "{name:?} is not a report name: ImageScanReport names are Kubernetes names \
                     (lowercase letters, digits, '-' and '.'), such as sha256-<hex> or \
                     sha256-<hex>-linux-arm64\n"
                ),
            ));
        }
        let state = match self.inner.health.role() {
            Role::Leader => return Ok(()),
            Role::Standby => "stands by",
            Role::Starting => "has not joined the leader election yet",
            Role::Stopping => "is shutting down",
        };
        let leader = match (
            self.inner.leader.identity().await,
            self.inner.leader.lease_name(),
        ) {
            (Some(id), Some(lease)) => format!("the leader, {id} (holder of Lease {lease})"),
            (Some(id), None) => format!("the leader, {id}"),
            (None, Some(lease)) => format!("the leader (the holder of Lease {lease})"),
            (None, None) => "the leader".to_owned(),
        };
        Err(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this operator replica {state} and is not the leader: only the leader scans, \
                 and it keeps the reports' files in its own cache; ask {leader}\n"
            ),
        ))
    }
}

/// `?format=`.
#[derive(Debug, Deserialize)]
pub struct SbomQuery {
    format: Option<String>,
}

/// The report routes over `api`, for the admin server to merge.
pub fn routes(api: ReportsApi) -> Router {
    Router::new()
        .route("/reports/{name}", get(findings))
        .route("/reports/{name}/sbom", get(sbom))
        .with_state(api)
}

/// The same paths when this operator does not scan: saying so rather than an empty 404.
pub fn routes_scanning_off() -> Router {
    let off = || async {
        plain(
            StatusCode::NOT_FOUND,
            "image scanning is off in this operator (--scanning=false): it keeps no reports\n"
                .to_owned(),
        )
    };
    Router::new()
        .route("/reports/{name}", get(off))
        .route("/reports/{name}/sbom", get(off))
}

async fn findings(State(api): State<ReportsApi>, Path(name): Path<String>) -> Response {
    if let Err(answer) = api.admit(&name).await {
        return answer;
    }
    let path = api.inner.files.findings(&name);
    match tokio::fs::File::open(&path).await {
        // Streamed: the findings of a large image run to megabytes.
        Ok(file) => (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(ReaderStream::new(file)),
        )
            .into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => not_found(&name),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read a full report");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the findings of report {name}: {e}\n"),
            )
        }
    }
}

async fn sbom(
    State(api): State<ReportsApi>,
    Path(name): Path<String>,
    Query(query): Query<SbomQuery>,
) -> Response {
    let format = match query.format.as_deref() {
        None => Format::CycloneDx,
        Some(asked) => match Format::from_name(asked) {
            Some(f) => f,
            None => {
                let accepted: Vec<String> = Format::ALL
                    .iter()
                    .map(|f| format!("format={}", f.name()))
                    .collect();
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unknown SBOM format {asked:?}: use {} (the default is {})\n",
                        accepted.join(" or "),
                        Format::CycloneDx.name()
                    ),
                );
            }
        },
    };
    if let Err(answer) = api.admit(&name).await {
        return answer;
    }
    let stored = match api.inner.files.read_inventory(&name).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            if tokio::fs::try_exists(api.inner.files.findings(&name))
                .await
                .unwrap_or(false)
            {
                return plain(
                    StatusCode::NOT_FOUND,
                    format!(
                        "report {name} has findings but no stored inventory: it was scanned \
                         before the operator kept them; its next scan stores one\n"
                    ),
                );
            }
            return not_found(&name);
        }
        Err(e) => {
            let message = error_report(&e);
            warn!(report = %name, error = %message, "cannot read a stored inventory");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the inventory of report {name}: {message}\n"),
            );
        }
    };
    // Serialising thousands of packages is CPU work: off the async threads.
    let rendered = tokio::task::spawn_blocking(move || {
        sbom::render(format, &Subject::of(&stored.image), stored.scanned_at)
    })
    .await;
    match rendered {
        Ok(Ok(json)) => ([(header::CONTENT_TYPE, format.media_type())], json).into_response(),
        Ok(Err(e)) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the SBOM of report {name}: {e}\n"),
        ),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the SBOM of report {name}: {e}\n"),
        ),
    }
}

fn not_found(name: &str) -> Response {
    plain(
        StatusCode::NOT_FOUND,
        format!(
            "no files for report {name} here: no such ImageScanReport, or it was not scanned \
             since this replica leads (the cache is per pod; annotate the report \
             palisade.dev/rescan-requested=<now> to scan it again)\n"
        ),
    )
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use axum::http::Request;
    use palisade_scanner::inventory::language::{Language, LanguagePackage};
    use palisade_scanner::inventory::{Inventory, OsRelease, Package, PackageKind};
    use palisade_scanner::scan::{ImageInventory, ScanReport};
    use serde_json::Value;
    use tower::ServiceExt as _;

    use super::super::files::StoredInventory;
    use super::*;

    const NAME: &str = "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image() -> ImageInventory {
        let digest = format!("sha256:{}", "01".repeat(32));
        ImageInventory {
            image: "registry.example/team/app:1".into(),
            digest: digest.clone(),
            manifest_digest: digest,
            platform: Some("linux/amd64".into()),
            platform_requested: None,
            layers: 1,
            layer_bytes: 10,
            inventory: Inventory {
                os: Some(OsRelease {
                    id: "alpine".into(),
                    version_id: Some("3.18.4".into()),
                    ..OsRelease::default()
                }),
                packages: vec![Package {
                    kind: PackageKind::Apk,
                    name: "libssl3".into(),
                    version: "3.1.3-r0".into(),
                    source_name: Some("openssl".into()),
                    source_version: None,
                    arch: Some("x86_64".into()),
                    location: "lib/apk/db/installed".into(),
                }],
                language_packages: vec![LanguagePackage {
                    language: Language::Npm,
                    name: "lodash".into(),
                    version: "4.17.21".into(),
                    location: "app/node_modules/lodash/package.json".into(),
                }],
                unreadable: Vec::new(),
            },
        }
    }

    fn scan_report() -> ScanReport {
        serde_json::from_value(serde_json::json!({
            "image": "registry.example/team/app:1",
            "digest": format!("sha256:{}", "01".repeat(32)),
            "manifestDigest": format!("sha256:{}", "01".repeat(32)),
            "packages": 2,
            "summary": {"critical": 0, "high": 1, "medium": 0, "low": 0, "unknown": 0},
            "fixable": {"critical": 0, "high": 1, "medium": 0, "low": 0, "unknown": 0},
            "findings": [],
            "coverage": "Full",
            "scannerVersion": "palisade-scanner/test",
            "databaseVersion": "Alpine:v3.18@test",
            "scannedAt": "2024-05-01T12:00:00Z",
            "durationMs": 1,
        }))
        .expect("a scan report")
    }

    /// A leading replica's routes over a cache holding report [`NAME`]'s files.
    async fn leading() -> (tempfile::TempDir, ReportsApi) {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = ReportFiles::new(dir.path().join("reports"));
        let stored = StoredInventory::new("2024-05-01T12:00:00Z".parse().expect("time"), image());
        files
            .write(NAME, &scan_report(), &stored)
            .await
            .expect("write");
        let health = Health::default();
        health.set_role(Role::Leader);
        let api = ReportsApi::new(files, health, Leader::Fixed(Some("operator-0".into())));
        (dir, api)
    }

    async fn get(api: &ReportsApi, uri: &str) -> (StatusCode, String, Vec<u8>) {
        let response = routes(api.clone())
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("body")
            .to_vec();
        (status, content_type, body)
    }

    fn text(body: &[u8]) -> String {
        String::from_utf8_lossy(body).into_owned()
    }

    #[tokio::test]
    async fn the_full_findings_are_served_as_stored() {
        let (_dir, api) = leading().await;
        let (status, content_type, body) = get(&api, &format!("/reports/{NAME}")).await;
        assert_eq!(status, StatusCode::OK, "{}", text(&body));
        assert_eq!(content_type, "application/json");
        let served: ScanReport = serde_json::from_slice(&body).expect("a scan report");
        assert_eq!(served, scan_report());
    }

    #[tokio::test]
    async fn the_sbom_is_served_in_either_format_from_the_stored_inventory() {
        let (_dir, api) = leading().await;
        let inv = image();
        let mut want: Vec<String> = vec!["libssl3".into(), "lodash".into()];
        want.sort();
        for (uri, media_type) in [
            (
                format!("/reports/{NAME}/sbom"),
                "application/vnd.cyclonedx+json",
            ),
            (
                format!("/reports/{NAME}/sbom?format=cyclonedx"),
                "application/vnd.cyclonedx+json",
            ),
        ] {
            let (status, content_type, body) = get(&api, &uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {}", text(&body));
            assert_eq!(content_type, media_type, "{uri}");
            let bom: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(bom["bomFormat"], "CycloneDX", "{uri}");
            assert_eq!(bom["specVersion"], "1.5", "{uri}");
            assert_eq!(bom["metadata"]["timestamp"], "2024-05-01T12:00:00Z");
            assert_eq!(bom["metadata"]["component"]["version"], inv.digest.as_str());
            let mut libraries: Vec<String> = bom["components"]
                .as_array()
                .expect("components")
                .iter()
                .filter(|c| c["type"] == "library")
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect();
            libraries.sort();
            assert_eq!(libraries, want, "{uri}: one component per stored package");
            let purls: Vec<&str> = bom["components"]
                .as_array()
                .expect("components")
                .iter()
                .filter_map(|c| c["purl"].as_str())
                .collect();
            assert!(
                purls.contains(&"pkg:npm/lodash@4.17.21"),
                "{uri}: {purls:?}"
            );
        }
        let (status, content_type, body) =
            get(&api, &format!("/reports/{NAME}/sbom?format=spdx")).await;
        assert_eq!(status, StatusCode::OK, "{}", text(&body));
        assert_eq!(content_type, "application/spdx+json");
        let doc: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        let mut names: Vec<String> = doc["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .filter(|p| p["primaryPackagePurpose"] == "LIBRARY")
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        assert_eq!(names, want);
        // The same scan renders the same bytes.
        let (_, _, again) = get(&api, &format!("/reports/{NAME}/sbom?format=spdx")).await;
        assert_eq!(again, body);
    }

    #[tokio::test]
    async fn a_bad_format_is_a_400_naming_the_accepted_ones() {
        let (_dir, api) = leading().await;
        let (status, content_type, body) =
            get(&api, &format!("/reports/{NAME}/sbom?format=swid")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert_eq!(
            text(&body),
            "unknown SBOM format \"swid\": use format=cyclonedx or format=spdx (the default is cyclonedx)\n"
        );
    }

    #[tokio::test]
    async fn an_unknown_report_is_a_404_naming_it() {
        let (_dir, api) = leading().await;
        for uri in ["/reports/sha256-ffff", "/reports/sha256-ffff/sbom"] {
            let (status, _, body) = get(&api, uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert!(
                text(&body).starts_with("no files for report sha256-ffff here: "),
                "{uri}: {}",
                text(&body)
            );
        }
        // Findings kept before inventories were: said as such.
        std::fs::remove_file(api.inner.files.inventory(NAME)).expect("remove");
        let (status, _, body) = get(&api, &format!("/reports/{NAME}/sbom")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            text(&body).contains("has findings but no stored inventory"),
            "{}",
            text(&body)
        );
    }

    #[tokio::test]
    async fn names_that_are_paths_are_refused() {
        let (dir, api) = leading().await;
        // Files a path escape would reach.
        std::fs::write(dir.path().join("secret.json"), b"{}").expect("write");
        std::fs::write(dir.path().join("secret_inventory.json"), b"{}").expect("write");
        for uri in [
            "/reports/..%2Fsecret",
            "/reports/..%2Fsecret/sbom",
            "/reports/%2E%2E%2Fsecret",
            "/reports/.secret",
            "/reports/..",
            "/reports/a%5C..%5Csecret",
            "/reports/SHA256-AB",
            "/reports/a%00b",
        ] {
            let (status, _, body) = get(&api, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {}", text(&body));
            assert!(
                text(&body).contains("is not a report name"),
                "{uri}: {}",
                text(&body)
            );
        }
        // A literal `..` segment is no route at all.
        let (status, _, _) = get(&api, "/reports/../secret").await;
        assert_ne!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_replica_that_does_not_lead_says_so_and_names_the_leader() {
        let (_dir, api) = leading().await;
        api.inner.health.set_role(Role::Standby);
        for uri in [
            format!("/reports/{NAME}"),
            format!("/reports/{NAME}/sbom?format=spdx"),
        ] {
            let (status, _, body) = get(&api, &uri).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
            assert_eq!(
                text(&body),
                "this operator replica stands by and is not the leader: only the leader \
                 scans, and it keeps the reports' files in its own cache; ask the leader, \
                 operator-0\n",
                "{uri}"
            );
        }
        api.inner.health.set_role(Role::Starting);
        let (status, _, body) = get(&api, &format!("/reports/{NAME}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(text(&body).contains("has not joined the leader election yet"));
        // Without the leader's name, still no 404.
        let unnamed = ReportsApi::new(
            api.inner.files.clone(),
            api.inner.health.clone(),
            Leader::Fixed(None),
        );
        let (status, _, body) = get(&unnamed, &format!("/reports/{NAME}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(text(&body).ends_with("ask the leader\n"), "{}", text(&body));
    }

    #[tokio::test]
    async fn without_scanning_the_paths_say_so() {
        let response = routes_scanning_off()
            .oneshot(
                Request::get(format!("/reports/{NAME}/sbom"))
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        assert!(text(&body).starts_with("image scanning is off"));
    }
}
