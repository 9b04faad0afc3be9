//! `palisade scan` as a CI pipeline runs it: the real binary against a real registry and OSV
//! databases (a directory of exports, one export zip, a directory of JSON advisories) holding
//! Alpine advisories for the exact versions in the images.

use std::process::{Command, Output};

use palisade_oci_fixtures::alpine::{ALPINE_OS, alpine_advisories, alpine_layer, write_alpine_db};
use palisade_oci_fixtures::osv::{write_export, write_json_dir};
use palisade_oci_fixtures::{Compression, LayerBuilder, Registry};

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("run palisade")
}

/// `palisade scan IMAGE --db DB --cache-dir CACHE EXTRA…`
fn scan_with(db: &str, cache: &str, image: &str, extra: &[&str]) -> Output {
    let mut args = vec!["scan", image, "--db", db, "--cache-dir", cache];
    args.extend_from_slice(extra);
    palisade(&args)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[tokio::test]
async fn scan_reports_findings_and_gates_on_severity() {
    let registry = Registry::start().expect("registry");
    let push = registry.pusher().expect("pusher");
    push.image(
        "alpine",
        "3.18.4",
        &[alpine_layer("3.1.3-r0")],
        "linux",
        "amd64",
    )
    .await
    .expect("old");
    push.image(
        "alpine",
        "3.18.6",
        &[alpine_layer("3.1.4-r5")],
        "linux",
        "amd64",
    )
    .await
    .expect("new");
    let bare = LayerBuilder::new()
        .file("app/main", "binary")
        .build(Compression::Gzip);
    push.image("static", "1", &[bare], "linux", "amd64")
        .await
        .expect("static");
    // musl is read, the second record of the apk database is not.
    let damaged = LayerBuilder::new()
        .file("etc/os-release", ALPINE_OS)
        .file(
            "lib/apk/db/installed",
            "P:musl\nV:1.2.4-r2\no:musl\n\nP:libssl3\nthis is not a field\n\n",
        )
        .build(Compression::Gzip);
    push.image("damaged", "1", &[damaged], "linux", "amd64")
        .await
        .expect("damaged");
    let work = tempfile::tempdir().expect("tempdir");
    let db = work.path().join("db");
    write_alpine_db(&db).expect("advisories");
    let db = db.to_str().expect("utf-8");
    let cache = work.path().join("cache");
    let cache = cache.to_str().expect("utf-8");
    let host = registry.host().to_owned();
    let old = format!("{host}/alpine:3.18.4");

    // JSON: every finding, with ids, aliases, fixed versions and severities.
    let out = scan_with(db, cache, &old, &["-o", "json", "--fail-on", "high"]);
    assert_eq!(
        code(&out),
        1,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["ecosystem"], "Alpine:v3.18");
    assert_eq!(report["coverage"], "Full");
    assert_eq!(report["gaps"], serde_json::Value::Null, "no gaps: {report}");
    assert_eq!(report["packages"], 3);
    assert_eq!(report["summary"]["high"], 2);
    assert_eq!(report["summary"]["medium"], 2);
    let findings: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {} {}",
                f["severity"],
                f["id"],
                f["aliases"][0],
                f["package"],
                f["installedVersion"],
                f["fixedVersion"]
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            r#""High" "ALPINE-CVE-2023-5363" "CVE-2023-5363" "libcrypto3" "3.1.3-r0" "3.1.4-r0""#,
            r#""High" "ALPINE-CVE-2023-5363" "CVE-2023-5363" "libssl3" "3.1.3-r0" "3.1.4-r0""#,
            r#""Medium" "ALPINE-CVE-2024-0727" "CVE-2024-0727" "libcrypto3" "3.1.3-r0" "3.1.4-r5""#,
            r#""Medium" "ALPINE-CVE-2024-0727" "CVE-2024-0727" "libssl3" "3.1.3-r0" "3.1.4-r5""#,
        ]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 finding(s) at or above High"));

    // Text, as a pipeline log shows it; Critical is not reached, so the gate passes.
    let out = scan_with(db, cache, &old, &["--fail-on", "Critical"]);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OS:        Alpine Linux v3.18"), "{text}");
    assert!(text.contains("\nCoverage:  Full\n"), "{text}");
    assert!(
        text.contains("Findings:  4 (Critical 0, High 2, Medium 2, Low 0, Unknown 0; 4 fixable)"),
        "{text}"
    );
    assert!(text.contains("SEVERITY  ID"), "{text}");
    assert!(
        text.contains("ALPINE-CVE-2023-5363  CVE-2023-5363  libcrypto3  3.1.3-r0   3.1.4-r0"),
        "{text}"
    );

    // The fixed tag passes even a Low gate.
    let out = scan_with(
        db,
        cache,
        &format!("{host}/alpine:3.18.6"),
        &["--fail-on", "LOW"],
    );
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Findings:  0 "));

    // An image with no OS cannot be judged: reported, and a gate does not pass it.
    let out = scan_with(db, cache, &format!("{host}/static:1"), &[]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "Coverage:  None (no OS recognised: no /etc/os-release, so OS packages cannot be \
             matched to advisories)"
        ),
        "{text}"
    );
    let out = scan_with(
        db,
        cache,
        &format!("{host}/static:1"),
        &["--fail-on", "critical", "-o", "json"],
    );
    assert_eq!(code(&out), 1);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("could not be fully judged (coverage None): no OS recognised")
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["coverage"], "None");
    assert_eq!(report["gaps"][0]["reason"], "NoOsRecognised");

    // A package database read in part: what was read is judged, the rest is a gap, and a
    // gate does not pass the image even with no finding.
    let damaged = format!("{host}/damaged:1");
    let out = scan_with(db, cache, &damaged, &["-o", "json", "--fail-on", "low"]);
    assert_eq!(
        code(&out),
        1,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["packages"], 1);
    assert_eq!(report["summary"]["low"], 0);
    assert_eq!(report["coverage"], "Partial");
    assert_eq!(report["gaps"][0]["reason"], "UnreadablePackageDatabase");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "could not be fully judged (coverage Partial): lib/apk/db/installed: 1 unreadable \
             record(s) skipped"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Bad input and a registry that went away: exit 2 with the reason.
    let out = palisade(&["scan", "Not A Reference", "--db", db]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("image \"Not A Reference\""));
    let out = palisade(&[
        "scan",
        &old,
        "--db",
        "/nonexistent/db",
        "--cache-dir",
        cache,
    ]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "--db /nonexistent/db: not a zip file, a directory of OSV JSON, a database \
             directory or an http(s) URL"
    ));
    let out = scan_with(db, cache, &old, &["--only-fixable"]);
    assert_eq!(code(&out), 2, "--only-fixable needs --fail-on");
    drop(registry);
    let out = scan_with(db, cache, &old, &[]);
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("registry {host}")), "{err}");
}

/// The findings of a JSON report as `id package`, in report order.
fn finding_ids(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| format!("{} {}", f["id"], f["package"]))
        .collect()
}

#[tokio::test]
async fn scan_reads_one_export_zip_or_a_directory_of_json() {
    let registry = Registry::start().expect("registry");
    let push = registry.pusher().expect("pusher");
    push.image(
        "alpine",
        "3.18.4",
        &[alpine_layer("3.1.3-r0")],
        "linux",
        "amd64",
    )
    .await
    .expect("image");
    let image = format!("{}/alpine:3.18.4", registry.host());
    let work = tempfile::tempdir().expect("tempdir");
    let path = |p: &str| work.path().join(p).to_str().expect("utf-8").to_owned();

    // The layout the operator reads, one zip as OSV serves it, and the same unzipped.
    write_alpine_db(&work.path().join("layout")).expect("layout");
    let zip = path("layout/Alpine:v3.18/all.zip");
    write_json_dir(&work.path().join("json"), &alpine_advisories()).expect("json");
    std::fs::write(work.path().join("json/README.txt"), "OSV Alpine export").expect("readme");

    let expected = [
        r#""ALPINE-CVE-2023-5363" "libcrypto3""#,
        r#""ALPINE-CVE-2023-5363" "libssl3""#,
        r#""ALPINE-CVE-2024-0727" "libcrypto3""#,
        r#""ALPINE-CVE-2024-0727" "libssl3""#,
    ];
    for db in [path("layout"), zip.clone(), path("json")] {
        let cache = path("cache");
        let out = scan_with(
            &db,
            &cache,
            &image,
            &["-o", "json", "--fail-on", "Critical"],
        );
        assert_eq!(
            code(&out),
            0,
            "--db {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(report["ecosystem"], "Alpine:v3.18", "--db {db}");
        assert_eq!(report["coverage"], "Full", "--db {db}");
        assert_eq!(finding_ids(&report), expected, "--db {db}");
        assert!(
            report["databaseVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("Alpine:v3.18@")),
            "--db {db}: {report}"
        );
    }

    // A zip of another ecosystem has no data for the image: not judged, not clean.
    let debian = serde_json::json!({
        "id": "DSA-0000-1",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1"}]}]}]
    });
    write_export(&work.path().join("other"), "Debian:12", &[debian]).expect("debian");
    let out = scan_with(
        &path("other/Debian:12/all.zip"),
        &path("cache"),
        &image,
        &["-o", "json", "--fail-on", "critical"],
    );
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["coverage"], "None");
    assert_eq!(report["gaps"][0]["reason"], "NoVulnerabilityData");
    assert_eq!(
        report["gaps"][0]["message"],
        "the vulnerability database has no Alpine:v3.18 data: its packages were not matched"
    );

    // Anything else is refused, saying what it is; a file that is no advisory fails the load.
    std::fs::create_dir_all(work.path().join("empty")).expect("empty");
    std::fs::write(work.path().join("advisory.txt"), "not a zip").expect("txt");
    std::fs::write(work.path().join("json/broken.json"), "{\"id\": 1}").expect("broken");
    let refused = [
        (
            path("empty"),
            2,
            "not a zip file, a directory of OSV JSON, a database directory or an http(s) URL \
             (a directory with no <ecosystem>/all.zip and no *.json file)",
        ),
        (
            path("advisory.txt"),
            2,
            "not a zip file, a directory of OSV JSON, a database directory or an http(s) URL \
             (a file that is not a zip archive)",
        ),
        (path("json"), 2, "broken.json: not an OSV record"),
    ];
    for (db, want_code, want) in refused {
        let out = scan_with(&db, &path("cache"), &image, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), want_code, "--db {db}: {err}");
        assert!(err.contains(want), "--db {db}: {err}");
    }
}

/// The Go binary the registry fixture runs: Debian's docker-registry, a real Go build.
const GO_BINARY: &str = "/usr/bin/docker-registry";

#[tokio::test]
async fn scan_judges_language_packages_and_names_their_files() {
    let go_binary = std::fs::read(GO_BINARY)
        .unwrap_or_else(|e| panic!("{GO_BINARY}: {e} (from hack/scan-tools.sh)"));
    let info = palisade_scanner::inventory::language::go::read_elf(GO_BINARY, &go_binary)
        .expect("build info")
        .expect("a Go binary");
    let built = info.packages("usr/local/bin/registry");
    // Debian builds it without module information: its standard library is what advisories
    // can name, at the toolchain's exact version.
    let module = built
        .iter()
        .find(|p| p.name == "stdlib")
        .expect("the standard library");
    let jar = palisade_oci_fixtures::osv::zip_archive(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n"),
        (
            "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
            b"groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n",
        ),
    ])
    .expect("jar");
    let registry = Registry::start().expect("registry");
    let push = registry.pusher().expect("pusher");
    let app = LayerBuilder::new()
        .executable("usr/local/bin/registry", &go_binary)
        .file(
            "app/node_modules/lodash/package.json",
            r#"{"name": "lodash", "version": "4.17.20"}"#,
        )
        .file(
            "usr/lib/python3/dist-packages/PyYAML-5.3.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: PyYAML\nVersion: 5.3\n",
        )
        .file("app/lib/log4j-core-2.14.1.jar", &jar)
        // Uncompressed: this test's (unoptimised) gzip of a 20 MB binary takes long.
        .build(Compression::None);
    // The next layer upgrades lodash past its advisory.
    let upgrade = LayerBuilder::new()
        .file(
            "app/node_modules/lodash/package.json",
            r#"{"name": "lodash", "version": "4.17.21"}"#,
        )
        .build(Compression::Gzip);
    push.image(
        "app",
        "1",
        &[alpine_layer("3.1.4-r5"), app, upgrade],
        "linux",
        "amd64",
    )
    .await
    .expect("image");
    let image = format!("{}/app:1", registry.host());

    let advisory = |id: &str, ecosystem: &str, name: &str, events: serde_json::Value| {
        serde_json::json!({
            "id": id,
            "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
            "database_specific": {"severity": "HIGH"}
        })
    };
    let version = module.version.trim_start_matches('v');
    let mut advisories = alpine_advisories();
    advisories.extend([
        advisory(
            "GHSA-35jh-r3h4-6jhm",
            "npm",
            "lodash",
            serde_json::json!([{"introduced": "0"}, {"fixed": "4.17.21"}]),
        ),
        advisory(
            "GHSA-8q59-q68h-6hv4",
            "PyPI",
            "pyyaml",
            serde_json::json!([{"introduced": "0"}, {"fixed": "5.4"}]),
        ),
        advisory(
            "GHSA-jfh8-c2jp-5v3q",
            "Maven",
            "org.apache.logging.log4j:log4j-core",
            serde_json::json!([{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"}]),
        ),
        // Written for the version built in, and for one fixed at it.
        advisory(
            "GO-2099-0001",
            "Go",
            &module.name,
            serde_json::json!([{"introduced": "0"}, {"last_affected": version}]),
        ),
        advisory(
            "GO-2099-0002",
            "Go",
            &module.name,
            serde_json::json!([{"introduced": "0"}, {"fixed": version}]),
        ),
    ]);
    let work = tempfile::tempdir().expect("tempdir");
    let db = work.path().join("json");
    write_json_dir(&db, &advisories).expect("json");
    let db = db.to_str().expect("utf-8");
    let cache = work.path().join("cache");
    let cache = cache.to_str().expect("utf-8");

    let out = scan_with(db, cache, &image, &["-o", "json"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {}",
                f["id"], f["ecosystem"], f["package"], f["installedVersion"], f["location"]
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            r#""GHSA-8q59-q68h-6hv4" "PyPI" "pyyaml" "5.3" "usr/lib/python3/dist-packages/PyYAML-5.3.dist-info/METADATA""#
                .to_owned(),
            r#""GHSA-jfh8-c2jp-5v3q" "Maven" "org.apache.logging.log4j:log4j-core" "2.14.1" "app/lib/log4j-core-2.14.1.jar!META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties""#
                .to_owned(),
            format!(
                r#""GO-2099-0001" "Go" "{}" "{}" "usr/local/bin/registry""#,
                module.name, module.version
            ),
        ],
        "lodash 4.17.21 and the module at its fixed version are not affected"
    );
    assert_eq!(report["coverage"], "Full", "{report}");
    assert_eq!(
        report["ecosystems"],
        serde_json::json!(["Alpine:v3.18", "Go", "npm", "PyPI", "Maven"])
    );
    // Alpine's packages, the binary's modules and standard library, and one each of npm,
    // PyPI and Maven.
    assert_eq!(report["packages"], 3 + built.len() + 3, "{report}");

    let out = scan_with(db, cache, &image, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("pyyaml (PyPI)") && text.contains("FILE"),
        "{text}"
    );
    assert!(
        text.contains("Packages:  ") && text.contains("(Alpine:v3.18, Go, npm, PyPI, Maven)"),
        "{text}"
    );
}

/// The purls of a CycloneDX BOM's components, or of an SPDX document's packages.
fn purls(doc: &serde_json::Value) -> Vec<String> {
    let from_cyclonedx = doc["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["purl"].as_str());
    let from_spdx = doc["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["externalRefs"].as_array().into_iter().flatten())
        .filter(|r| r["referenceType"] == "purl")
        .filter_map(|r| r["referenceLocator"].as_str());
    from_cyclonedx.chain(from_spdx).map(str::to_owned).collect()
}

#[tokio::test]
async fn scan_writes_sboms_that_validate() {
    use palisade_oci_fixtures::sbom::{cyclonedx_1_5, spdx_2_3, violations};

    let go_binary = std::fs::read(GO_BINARY)
        .unwrap_or_else(|e| panic!("{GO_BINARY}: {e} (from hack/scan-tools.sh)"));
    let info = palisade_scanner::inventory::language::go::read_elf(GO_BINARY, &go_binary)
        .expect("build info")
        .expect("a Go binary");
    let stdlib = info
        .packages("usr/local/bin/registry")
        .into_iter()
        .find(|p| p.name == "stdlib")
        .expect("the standard library");
    let jar = palisade_oci_fixtures::osv::zip_archive(&[(
        "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
        b"groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n",
    )])
    .expect("jar");
    let registry = Registry::start().expect("registry");
    let push = registry.pusher().expect("pusher");
    let app = LayerBuilder::new()
        .executable("usr/local/bin/registry", &go_binary)
        .file(
            "app/node_modules/@babel/core/package.json",
            r#"{"name": "@babel/core", "version": "7.23.2"}"#,
        )
        .file(
            "app/node_modules/lodash/package.json",
            r#"{"name": "lodash", "version": "4.17.21"}"#,
        )
        .file(
            "usr/lib/python3/dist-packages/PyYAML-5.3.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: PyYAML\nVersion: 5.3\n",
        )
        .file("app/lib/log4j-core-2.14.1.jar", &jar)
        // Uncompressed: this test's (unoptimised) gzip of a 20 MB binary takes long.
        .build(Compression::None);
    let pushed = push
        .image(
            "app",
            "1",
            &[alpine_layer("3.1.4-r5"), app],
            "linux",
            "amd64",
        )
        .await
        .expect("image");
    let damaged = LayerBuilder::new()
        .file("etc/os-release", ALPINE_OS)
        .file(
            "lib/apk/db/installed",
            "P:musl\nV:1.2.4-r2\no:musl\n\nP:libssl3\nthis is not a field\n\n",
        )
        .build(Compression::Gzip);
    push.image("damaged", "1", &[damaged], "linux", "amd64")
        .await
        .expect("damaged");
    let image = format!("{}/app:1", registry.host());
    let work = tempfile::tempdir().expect("tempdir");
    let cache = work.path().join("cache");
    let cache = cache.to_str().expect("utf-8");
    // A database that does not exist: the SBOM must not need one.
    let no_db = "/nonexistent/db";
    let sbom = |extra: &[&str]| {
        let mut args = vec!["scan", &image, "--db", no_db, "--cache-dir", cache];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(&args)
            .env("SOURCE_DATE_EPOCH", "1714564800")
            .output()
            .expect("run palisade")
    };
    let expected = [
        "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4",
        "pkg:apk/alpine/libssl3@3.1.4-r5?arch=x86_64&distro=alpine-3.18.4",
        "pkg:npm/%40babel/core@7.23.2",
        "pkg:npm/lodash@4.17.21",
        "pkg:pypi/pyyaml@5.3",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    ];
    let go_stdlib = format!("pkg:golang/stdlib@{}", stdlib.version);

    // CycloneDX on standard output.
    let out = sbom(&["--sbom", "cyclonedx"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let bom: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let schema = cyclonedx_1_5().expect("CycloneDX schema");
    assert_eq!(violations(&schema, &bom), Vec::<String>::new(), "{bom:#}");
    assert_eq!(bom["specVersion"], "1.5");
    assert_eq!(bom["metadata"]["timestamp"], "2024-05-01T12:00:00Z");
    let subject = &bom["metadata"]["component"];
    assert_eq!(subject["type"], "container");
    assert_eq!(subject["name"], image);
    assert_eq!(subject["version"], pushed.digest);
    let got = purls(&bom);
    for want in expected.iter().copied().chain([go_stdlib.as_str()]) {
        assert!(got.iter().any(|p| p == want), "{want} in {got:#?}");
    }
    let npm = bom["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["purl"] == "pkg:npm/%40babel/core@7.23.2")
        .expect("scoped npm package");
    assert_eq!(
        npm["evidence"]["occurrences"][0]["location"],
        "app/node_modules/@babel/core/package.json"
    );
    // The same image and time give the same bytes (the second run reads the cache).
    let again = sbom(&["--sbom", "cyclonedx"]);
    assert_eq!(again.stdout, out.stdout, "deterministic");

    // SPDX into a file.
    let file = work.path().join("app.spdx.json");
    let out = sbom(&[
        "--sbom",
        "spdx",
        "--sbom-output",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "the document goes to the file only");
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote "));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("written")).expect("json");
    let schema = spdx_2_3().expect("SPDX schema");
    assert_eq!(violations(&schema, &doc), Vec::<String>::new(), "{doc:#}");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2024-05-01T12:00:00Z");
    assert_eq!(doc["relationships"][0]["relationshipType"], "DESCRIBES");
    let got = purls(&doc);
    for want in expected.iter().copied().chain([go_stdlib.as_str()]) {
        assert!(got.iter().any(|p| p == want), "{want} in {got:#?}");
    }
    let pyyaml = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "pyyaml")
        .expect("pyyaml");
    assert_eq!(pyyaml["versionInfo"], "5.3");
    assert_eq!(pyyaml["downloadLocation"], "NOASSERTION");
    assert_eq!(
        pyyaml["sourceInfo"],
        "PyPI package read from usr/lib/python3/dist-packages/PyYAML-5.3.dist-info/METADATA"
    );

    // A database read in part: the SBOM has what was read, and says the rest is missing.
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "scan",
            &format!("{}/damaged:1", registry.host()),
            "--cache-dir",
            cache,
            "--sbom",
            "cyclonedx",
        ])
        .output()
        .expect("run palisade");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "warning: the SBOM is incomplete: lib/apk/db/installed: 1 unreadable record(s) skipped"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bom: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        violations(&cyclonedx_1_5().expect("schema"), &bom),
        Vec::<String>::new()
    );
    assert_eq!(
        bom["metadata"]["properties"][0]["name"],
        "palisade:unreadable"
    );

    // Usage errors: exit 2, saying what is accepted.
    let out = sbom(&["--sbom", "swid"]);
    assert_eq!(code(&out), 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[possible values: cyclonedx, spdx]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sbom(&["--sbom-output", "x.json"]);
    assert_eq!(code(&out), 2, "--sbom-output needs --sbom");
}
