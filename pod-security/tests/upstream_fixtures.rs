//! Conformance with the upstream Pod Security Standards fixtures: under level L and version V,
//! every `pass/` pod must give no findings and every `fail/` pod must be denied, and denied by
//! the check its file name gives (or the restricted check that replaces it at V) and by no
//! other, save a few pairs the API forces on the fixture (`INCIDENTAL`).
//!
//! The corpus is `$PALISADE_PSA_CORPUS`, or `shared/corpora/psa` beside the repository.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use palisade_pod_security::{CheckId, Finding, Level, PodView, Version, evaluate};

/// The corpus holds 4537 files; a much smaller count means it was not found whole.
const MIN_FILES: usize = 4000;

fn corpus_dir() -> PathBuf {
    match std::env::var_os("PALISADE_PSA_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/psa"),
    }
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    entries
}

/// The check a fixture is named after: `capabilities_restricted3` → `capabilities_restricted`.
/// `None` for the `base*` pods, which every level admits.
fn named_check(stem: &str) -> Result<Option<CheckId>, String> {
    let prefix = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    if prefix.starts_with("base") {
        return Ok(None);
    }
    CheckId::ALL
        .into_iter()
        .find(|id| id.as_str().eq_ignore_ascii_case(prefix))
        .map(Some)
        .ok_or_else(|| format!("no check is named {prefix:?}"))
}

struct Outcome {
    files: usize,
    mismatches: Vec<String>,
}

fn check_file(
    path: &Path,
    level: Level,
    version: Version,
    expect_pass: bool,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let pod: Pod = serde_saphyr::from_str(&text).map_err(|e| format!("parse: {e}"))?;
    let metadata = pod.metadata;
    let spec = pod.spec.ok_or("no spec")?;
    let findings = evaluate(
        level,
        version,
        PodView {
            metadata: &metadata,
            spec: &spec,
        },
    );
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("bad file name")?;
    if expect_pass {
        if !findings.is_empty() {
            return Err(format!("expected pass, got {}", describe(&findings)));
        }
        return Ok(());
    }
    if findings.is_empty() {
        return Err("expected fail, got no findings".into());
    }
    let named = named_check(stem)?.ok_or("a base pod in fail/")?;
    let replacement = match level {
        Level::Restricted => named.superseded_by(version),
        _ => None,
    };
    let expected = |id: CheckId| id == named || Some(id) == replacement;
    if !findings.iter().any(|f| expected(f.check)) {
        return Err(format!(
            "denied, but not by {}: {}",
            named.as_str(),
            describe(&findings)
        ));
    }
    for f in &findings {
        if !expected(f.check) && !INCIDENTAL.contains(&(named, f.check)) {
            return Err(format!(
                "denied for a reason besides {}: {}",
                named.as_str(),
                describe(&findings)
            ));
        }
        if f.field.is_empty() || f.message.is_empty() || f.fix.is_empty() {
            return Err(format!("incomplete finding {f:?}"));
        }
    }
    Ok(())
}

/// Other checks that some upstream fail fixtures break too, because the API server would
/// reject the pod otherwise: `(check the file is named after, the other check)`.
const INCIDENTAL: &[(CheckId, CheckId)] = &[
    // A Windows HostProcess pod must use the host network.
    (CheckId::WindowsHostProcess, CheckId::HostNamespaces),
    // allowPrivilegeEscalation: false is rejected on a privileged container.
    (CheckId::Privileged, CheckId::AllowPrivilegeEscalation),
    // One fixture leaves a container's securityContext out, and with it drop: [ALL].
    (
        CheckId::AllowPrivilegeEscalation,
        CheckId::CapabilitiesRestricted,
    ),
];

fn describe(findings: &[Finding]) -> String {
    let list: Vec<String> = findings
        .iter()
        .map(|f| format!("{}: {} ({})", f.check.as_str(), f.field, f.message))
        .collect();
    list.join("; ")
}

fn walk(corpus: &Path) -> Outcome {
    let mut out = Outcome {
        files: 0,
        mismatches: Vec::new(),
    };
    for (level_name, level) in [
        ("baseline", Level::Baseline),
        ("restricted", Level::Restricted),
    ] {
        for version_dir in sorted_entries(&corpus.join(level_name)) {
            let name = version_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let Ok(version) = name.parse::<Version>() else {
                out.mismatches
                    .push(format!("{}: not a version", version_dir.display()));
                continue;
            };
            // The newest folder is also what `latest` means.
            let mut versions = vec![version];
            if version == Version::V1(Version::NEWEST_KNOWN_MINOR) {
                versions.push(Version::Latest);
            }
            for (verdict, expect_pass) in [("pass", true), ("fail", false)] {
                let dir = version_dir.join(verdict);
                if !dir.is_dir() {
                    continue;
                }
                for file in sorted_entries(&dir) {
                    if file.extension().and_then(|e| e.to_str()) != Some("yaml") {
                        continue;
                    }
                    out.files += 1;
                    for &v in &versions {
                        if let Err(e) = check_file(&file, level, v, expect_pass) {
                            out.mismatches
                                .push(format!("{level} {v} {verdict}/{}: {e}", file_name(&file)));
                        }
                    }
                }
            }
        }
    }
    out
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn upstream_fixtures_give_the_upstream_verdict() {
    let corpus = corpus_dir();
    assert!(
        corpus.join("baseline").is_dir() && corpus.join("restricted").is_dir(),
        "PSA corpus not found at {} (set PALISADE_PSA_CORPUS)",
        corpus.display()
    );
    let outcome = walk(&corpus);
    if !outcome.mismatches.is_empty() {
        let mut msg = format!(
            "{} of {} fixtures disagree with upstream:\n",
            outcome.mismatches.len(),
            outcome.files
        );
        for m in &outcome.mismatches {
            let _ = writeln!(msg, "  {m}");
        }
        panic!("{msg}");
    }
    assert!(
        outcome.files > MIN_FILES,
        "only {} fixtures under {}; expected more than {MIN_FILES}",
        outcome.files,
        corpus.display()
    );
    eprintln!("checked {} upstream fixtures", outcome.files);
}

#[test]
fn fixture_names_map_to_checks() {
    assert_eq!(
        named_check("capabilities_restricted3"),
        Ok(Some(CheckId::CapabilitiesRestricted))
    );
    assert_eq!(
        named_check("hostprobesandhostlifecycle12"),
        Ok(Some(CheckId::HostProbesAndHostLifecycle))
    );
    assert_eq!(
        named_check("procmount_restricted0"),
        Ok(Some(CheckId::ProcMountRestricted))
    );
    assert_eq!(named_check("base_windows"), Ok(None));
    assert!(named_check("nosuchcheck0").is_err());
}
