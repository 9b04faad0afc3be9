//! Alpine-style test images and the OSV advisories that match them, shared by the CLI's,
//! the scanner's and the end-to-end tests so that they agree on what a scan finds.
//!
//! With [`write_alpine_db`]'s database, openssl 3.1.3-r0 has two High findings
//! (CVE-2023-5363 in libcrypto3 and libssl3) and two Medium (CVE-2024-0727), 3.1.4-r0 the
//! two Medium only, 3.1.4-r5 none; musl 1.2.4-r2 is past its advisory's fix.

use std::path::Path;

use crate::{Blob, Compression, FixtureError, LayerBuilder};

/// `/etc/os-release` of the images: Alpine 3.18, so the ecosystem is `Alpine:v3.18`.
pub const ALPINE_OS: &str =
    "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n";

fn apk(name: &str, version: &str, origin: &str) -> String {
    format!("P:{name}\nV:{version}\nA:x86_64\no:{origin}\n\n")
}

/// One gzip layer of an Alpine 3.18 image: musl 1.2.4-r2, and openssl's libcrypto3 and
/// libssl3 at `openssl`.
pub fn alpine_layer(openssl: &str) -> Blob {
    alpine_layer_marked(openssl, None)
}

/// [`alpine_layer`] with `/etc/e2e-test` holding `marker`: a digest of its own, so a test
/// sees its images scanned for the first time whatever other tests pushed.
pub fn alpine_layer_marked(openssl: &str, marker: Option<&str>) -> Blob {
    let mut layer = LayerBuilder::new().file("etc/os-release", ALPINE_OS);
    if let Some(marker) = marker {
        layer = layer.file("etc/e2e-test", marker);
    }
    layer
        .file(
            "lib/apk/db/installed",
            [
                apk("musl", "1.2.4-r2", "musl"),
                apk("libcrypto3", openssl, "openssl"),
                apk("libssl3", openssl, "openssl"),
            ]
            .concat(),
        )
        .build(Compression::Gzip)
}

/// The advisories of openssl and musl as the Alpine OSV export writes them (ids, upstream
/// CVEs, CVSS vectors, fixed versions).
pub fn alpine_advisories() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({
            "id": "ALPINE-CVE-2023-5363", "upstream": ["CVE-2023-5363"],
            "summary": "Incorrect cipher key and IV length processing",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
            "affected": [{"package": {"ecosystem": "Alpine:v3.18", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r0"}]}]}]
        }),
        serde_json::json!({
            "id": "ALPINE-CVE-2024-0727", "upstream": ["CVE-2024-0727"],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H"}],
            "affected": [{"package": {"ecosystem": "Alpine:v3.18", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r5"}]}]}]
        }),
        serde_json::json!({
            "id": "ALPINE-CVE-2020-28928", "upstream": ["CVE-2020-28928"],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H"}],
            "affected": [{"package": {"ecosystem": "Alpine:v3.18", "name": "musl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.2_pre2-r0"}]}]}]
        }),
    ]
}

/// Write `<dir>/Alpine:v3.18/all.zip` holding [`alpine_advisories`].
pub fn write_alpine_db(dir: &Path) -> Result<(), FixtureError> {
    crate::osv::write_export(dir, "Alpine:v3.18", &alpine_advisories())
}
