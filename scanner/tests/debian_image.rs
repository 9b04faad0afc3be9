//! A real Debian image: debootstrap's minbase root filesystem packed by umoci, copied into a
//! real registry by skopeo (hack/debian-image.sh builds it once and caches it). The scanner's
//! inventory must be exactly what dpkg-query reads from the same dpkg database.

use std::process::Command;

use palisade_imageref::ImageRef;
use palisade_oci_fixtures::{Registry, debian_layout, skopeo_copy};
use palisade_scanner::layers::Limits;
use palisade_scanner::oci::{ClientConfig, Platform, RegistryClient};
use palisade_scanner::scan::{InventoryCache, inventory_image};

#[tokio::test]
async fn debootstrap_image_matches_dpkg_query() {
    let layout = debian_layout("bookworm").expect("hack/debian-image.sh bookworm");
    let registry = Registry::start().expect("registry");
    skopeo_copy(&layout, "bookworm", &registry, "debian:12").expect("skopeo copy");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = RegistryClient::new(ClientConfig::default()).expect("client");
    let reference = format!("{}/debian:12", registry.host());
    let image = ImageRef::parse(&reference).expect("reference");
    let inv = inventory_image(&client, &image, &Platform::linux_amd64(), Limits::default())
        .await
        .expect("scan");

    let os = inv.inventory.os.as_ref().expect("os-release");
    assert_eq!(os.id, "debian");
    assert_eq!(os.version_id.as_deref(), Some("12"));
    assert_eq!(os.version_codename.as_deref(), Some("bookworm"));

    // dpkg-query's view of the very database the image holds.
    let admin = tempfile::tempdir().expect("tempdir");
    std::fs::copy(layout.join("dpkg-status"), admin.path().join("status")).expect("status copy");
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}", admin.path().display()))
        .args([
            "-W",
            "-f",
            "${Package}\t${Version}\t${source:Package}\t${source:Version}\n",
        ])
        .output()
        .expect("dpkg-query (run hack/scan-tools.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    expected.sort();
    let mut got: Vec<String> = inv
        .inventory
        .packages
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\t{}\t{}",
                p.name,
                p.version,
                p.source_name.as_deref().unwrap_or(&p.name),
                p.source_version.as_deref().unwrap_or(&p.version)
            )
        })
        .collect();
    got.sort();
    assert!(
        expected.len() > 50,
        "a minbase system has dozens of packages: {}",
        expected.len()
    );
    assert_eq!(got, expected);
    println!(
        "debootstrap image: {} packages, {} layer bytes",
        got.len(),
        inv.layer_bytes
    );

    // The cache returns the same inventory without the registry.
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = InventoryCache::new(dir.path());
    cache.put(&inv).expect("cache put");
    drop(registry);
    assert_eq!(cache.get(&inv.manifest_digest), Some(inv));
}
