//! The images `make images` built: how they run, what they hold, and what Palisade's own
//! scanner finds in them (`palisade scan` against the registry the node pulls from).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use palisade_e2e::install::Release;

use crate::release;

const IMAGES: [&str; 4] = [
    "palisade-operator",
    "palisade-webhook",
    "palisade",
    "palisade-agent",
];

/// The Debian packages each image carries beyond the shared base (glibc, libgcc, the CA
/// certificates and base-files for os-release): exactly what hack/image-rootfs.sh put in
/// its own layer, the libraries only that binary loads.
fn own_packages(image: &str) -> &'static [&'static str] {
    match image {
        // libbpf, linked in statically, loads ELF objects with libelf and zlib.
        "palisade-agent" => &["libelf1", "zlib1g"],
        _ => &[],
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn reference(r: &Release, image: &str) -> String {
    format!("{}/{image}:{}", r.registry, r.tag)
}

fn scratch(name: &str) -> PathBuf {
    let dir = release().work.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Every path in the image's layers, as tar lists them (`etc/passwd`, `usr/lib/...`).
fn files(r: &Release, image: &str) -> Vec<String> {
    let dir = scratch(&format!("layers-{image}"));
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}", reference(r, image)),
        &format!("dir:{}", dir.display()),
    ]));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let mut all = Vec::new();
    for layer in manifest["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("digest");
        let blob = dir.join(digest.trim_start_matches("sha256:"));
        let list = run(Command::new("tar").arg("-tzf").arg(&blob));
        all.extend(
            list.lines()
                .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_owned()),
        );
    }
    all
}

#[test]
fn images_run_as_65532_hold_no_shell_and_carry_oci_labels() {
    let r = release();
    let revision = run(Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&r.repo));
    for image in IMAGES {
        let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            "--config",
            &format!("docker://{}", reference(r, image)),
        ])))
        .expect("image config JSON");
        let c = &config["config"];
        assert_eq!(c["User"], "65532:65532", "{image}: {c}");
        assert_eq!(
            c["Entrypoint"],
            serde_json::json!([format!("/usr/local/bin/{image}")]),
            "{image}"
        );
        let labels = &c["Labels"];
        assert_eq!(
            labels["org.opencontainers.image.source"], "https://github.com/palisade-dev/palisade",
            "{image}: {labels}"
        );
        assert_eq!(
            labels["org.opencontainers.image.revision"],
            revision.trim(),
            "{image}: {labels}"
        );
        assert_eq!(
            labels["org.opencontainers.image.title"], image,
            "{image}: {labels}"
        );
        assert!(
            labels["org.opencontainers.image.version"]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "{image}: {labels}"
        );

        let files = files(r, image);
        for wanted in [
            format!("usr/local/bin/{image}"),
            "etc/passwd".into(),
            "etc/group".into(),
            "etc/os-release".into(),
            "etc/ssl/certs/ca-certificates.crt".into(),
            "var/lib/dpkg/status.d/libc6".into(),
        ] {
            assert!(files.contains(&wanted), "{image} lacks {wanted}: {files:?}");
        }
        let stanzas: Vec<&str> = files
            .iter()
            .filter_map(|f| f.strip_prefix("var/lib/dpkg/status.d/"))
            .filter(|p| !p.is_empty())
            .collect();
        let mut expected = vec!["base-files", "ca-certificates", "libc6", "libgcc-s1"];
        expected.extend(own_packages(image));
        let mut got = stanzas.clone();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected, "{image}: the Debian packages it carries");
        // No shell, no package manager, no tool of any kind: the one program is Palisade's.
        let programs: Vec<&String> = files
            .iter()
            .filter(|f| {
                ["bin/", "sbin/", "usr/bin/", "usr/sbin/"]
                    .iter()
                    .any(|d| f.starts_with(d))
                    || f.ends_with("/sh")
                    || f.contains("apt")
                    || f.ends_with("bin/dpkg")
            })
            .collect();
        assert!(programs.is_empty(), "{image} holds programs: {programs:?}");
    }
}

/// Advisories for the image's packages: one for glibc fixed long before the version the
/// image carries (it must not be reported) and one for gcc-12 with no fix, Low (reported,
/// but no reason to fail). The real OSV data cannot be fetched here; with
/// `PALISADE_E2E_OSV_DB` (a mirror's URL or directory) the scan uses it instead.
fn fixture_db(dir: &Path) {
    let advisory = |id: &str, source: &str, severity: &str, events: serde_json::Value| {
        serde_json::json!({
            "id": id,
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": source},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "ecosystem_specific": {"urgency": severity}
            }],
            "database_specific": {"severity": severity}
        })
    };
    palisade_oci_fixtures::osv::write_export(
        dir,
        "Debian:12",
        &[
            advisory(
                "E2E-GLIBC-OLD",
                "glibc",
                "high",
                serde_json::json!([{"introduced": "0"}, {"fixed": "2.36-1"}]),
            ),
            advisory(
                "E2E-GCC-UNFIXED",
                "gcc-12",
                "low",
                serde_json::json!([{"introduced": "0"}]),
            ),
        ],
    )
    .expect("OSV fixture");
}

#[test]
fn palisade_scans_its_own_images_and_finds_nothing_high_with_a_fix() {
    let r = release();
    let cli = r.repo.join("target/release/palisade");
    assert!(cli.exists(), "{} is built by hack/images.sh", cli.display());
    let real_db = std::env::var("PALISADE_E2E_OSV_DB").ok();
    let db = match &real_db {
        Some(db) => db.clone(),
        None => {
            let dir = scratch("self-scan-db");
            fixture_db(&dir);
            dir.display().to_string()
        }
    };
    for image in IMAGES {
        let cache = scratch(&format!("self-scan-cache-{image}"));
        let host = r.registry.clone();
        let out = Command::new(&cli)
            .args([
                "scan",
                &reference(r, image),
                "--db",
                &db,
                "--insecure-registry",
                &host,
            ])
            .args([
                "--fail-on",
                "high",
                "--only-fixable",
                "-o",
                "json",
                "--cache-dir",
            ])
            .arg(&cache)
            .stdin(Stdio::null())
            .output()
            .expect("run palisade scan");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "palisade scan {image}: exit {} (1 = a finding at or above High with a fix):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("scan JSON");
        eprintln!(
            "palisade scan {image}: {} packages, {} findings, {}",
            report["packages"],
            report["findings"].as_array().map_or(0, Vec::len),
            report["summary"]
        );
        assert_eq!(report["ecosystem"], "Debian:12", "{report}");
        // glibc, libgcc, the CA certificates and base-files (os-release), and the image's
        // own: exactly what hack/image-rootfs.sh put there.
        assert_eq!(
            report["packages"],
            4 + own_packages(image).len(),
            "{report}"
        );
        assert!(
            report["notes"].as_array().is_none_or(Vec::is_empty),
            "nothing left unjudged: {report}"
        );
        if real_db.is_none() {
            let ids: Vec<&str> = report["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .filter_map(|f| f["id"].as_str())
                .collect();
            assert!(
                ids.contains(&"E2E-GCC-UNFIXED"),
                "the packages were matched: {ids:?}"
            );
            assert!(
                !ids.contains(&"E2E-GLIBC-OLD"),
                "the image's glibc is past that fix: {ids:?}"
            );
        }
    }
}
