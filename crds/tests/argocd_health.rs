//! Argo CD health checks: `config/argocd/health/<Kind>.lua`, one per Palisade kind.
//!
//! Each script runs in a real Lua 5.1 (`lua5.1`; Argo CD's gopher-lua speaks 5.1) on objects
//! built from the Rust types with the status the operator writes, so a change of the status
//! shape breaks these tests. The scripts see only what Argo CD opens for a health check by
//! default: the base and table libraries, and no string methods.
//!
//! `config/argocd/argocd-cm.yaml` (for `kubectl patch` or a kustomize patch of `argocd-cm`)
//! and `config/argocd/argo-cd-values.yaml` (Helm values of the argo-cd chart) hold the scripts'
//! text verbatim and are generated from them; after changing a script, run:
//!
//! ```sh
//! PALISADE_UPDATE_ARGOCD=1 cargo test -p palisade-crds --test argocd_health
//! ```

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use palisade_crds::{
    Coverage, CoverageGap, EnforcedSpec, FailOn, GapReason, ImageScanReport, ImageScanReportSpec,
    ImageScanReportStatus, Mode, PodSecurity, PodSecurityLevel, ReportFinding, ScanPhase,
    ScanPolicy, ScanPolicySpec, ScanPolicyStatus, SecurityPolicy, SecurityPolicySpec,
    SecurityPolicyStatus, SeveritySummary, SeverityThreshold,
};
use serde_json::Value;

const UPDATE_VAR: &str = "PALISADE_UPDATE_ARGOCD";
const REGENERATE: &str =
    "PALISADE_UPDATE_ARGOCD=1 cargo test -p palisade-crds --test argocd_health";
const KEY_PREFIX: &str = "resource.customizations.health.palisade.dev_";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds/ sits in the repository root")
        .to_owned()
}

fn argocd_dir() -> PathBuf {
    repo_root().join("config/argocd")
}

/// Every `config/argocd/health/<Kind>.lua`, as (kind, text), sorted by kind.
fn scripts() -> Vec<(String, String)> {
    let dir = argocd_dir().join("health");
    let mut scripts: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let kind = path.file_name()?.to_str()?.strip_suffix(".lua")?.to_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Some((kind, text))
        })
        .collect();
    scripts.sort();
    scripts
}

fn script(kind: &str) -> String {
    scripts()
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, text)| text)
        .unwrap_or_else(|| panic!("config/argocd/health/{kind}.lua is missing"))
}

// ---- the generated files ----

/// `text` as the lines of a YAML literal block scalar, each indented by `indent` spaces.
fn block(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    text.lines()
        .map(|line| {
            if line.is_empty() {
                "\n".to_owned()
            } else {
                format!("{pad}{line}\n")
            }
        })
        .collect()
}

fn render_argocd_cm(scripts: &[(String, String)]) -> String {
    let mut out = String::from(
        "# Argo CD health checks for Palisade's kinds, as data of the ConfigMap argocd-cm.\n\
         # Generated from config/argocd/health/*.lua by crds/tests/argocd_health.rs; do not edit.\n",
    );
    out.push_str(&format!("# Regenerate: {REGENERATE}\n"));
    out.push_str(
        "#\n\
         #   kubectl -n argocd patch configmap argocd-cm --patch-file config/argocd/argocd-cm.yaml\n\
         #\n\
         # or list this file under `patches:` of the kustomization that installs Argo CD.\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n\
         \x20 name: argocd-cm\n\
         \x20 labels:\n\
         \x20   app.kubernetes.io/name: argocd-cm\n\
         \x20   app.kubernetes.io/part-of: argocd\n\
         data:\n",
    );
    for (kind, text) in scripts {
        out.push_str(&format!("  {KEY_PREFIX}{kind}: |\n"));
        out.push_str(&block(text, 4));
    }
    out
}

fn render_helm_values(scripts: &[(String, String)]) -> String {
    let mut out = String::from(
        "# Argo CD health checks for Palisade's kinds, as values of the argo-cd Helm chart\n\
         # (https://argoproj.github.io/argo-helm), which writes configs.cm into argocd-cm.\n\
         # Generated from config/argocd/health/*.lua by crds/tests/argocd_health.rs; do not edit.\n",
    );
    out.push_str(&format!("# Regenerate: {REGENERATE}\n"));
    out.push_str(
        "#\n\
         #   helm upgrade argocd argo/argo-cd -n argocd --reuse-values -f config/argocd/argo-cd-values.yaml\n\
         configs:\n\
         \x20 cm:\n",
    );
    for (kind, text) in scripts {
        out.push_str(&format!("    {KEY_PREFIX}{kind}: |\n"));
        out.push_str(&block(text, 6));
    }
    out
}

#[test]
fn every_kind_has_a_health_check() {
    let kinds: BTreeSet<String> = palisade_crds::all()
        .into_iter()
        .map(|crd| crd.spec.names.kind)
        .collect();
    let scripted: BTreeSet<String> = scripts().into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(
        scripted, kinds,
        "config/argocd/health/ must hold one <Kind>.lua per Palisade kind"
    );
    for crd in palisade_crds::all() {
        assert_eq!(crd.spec.group, "palisade.dev", "the keys name this group");
    }
}

#[test]
fn scripts_can_be_held_verbatim_in_a_yaml_literal_block() {
    for (kind, text) in scripts() {
        assert!(
            text.ends_with('\n') && !text.ends_with("\n\n"),
            "{kind}.lua must end with exactly one newline"
        );
        for (n, line) in text.lines().enumerate() {
            assert!(
                !line.ends_with(' ') && !line.contains('\t'),
                "{kind}.lua:{}: no tabs nor trailing spaces",
                n + 1
            );
        }
        assert!(
            text.lines().next().is_some_and(|l| !l.starts_with(' ')),
            "{kind}.lua: the first line sets the block's indentation; it cannot be indented"
        );
    }
}

#[test]
fn generated_files_hold_the_scripts_verbatim() {
    let scripts = scripts();
    assert!(!scripts.is_empty());
    let update = std::env::var_os(UPDATE_VAR).is_some();
    let files = [
        ("argocd-cm.yaml", render_argocd_cm(&scripts)),
        ("argo-cd-values.yaml", render_helm_values(&scripts)),
    ];
    for (file, text) in &files {
        let path = argocd_dir().join(file);
        if update {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run {REGENERATE}", path.display()));
        assert!(
            committed == *text,
            "{} drifted from config/argocd/health/*.lua; run {REGENERATE} and commit the result",
            path.display()
        );
    }

    // Read back as YAML, each key holds its script byte for byte, and nothing else is there.
    let parse = |file: &str| -> Value {
        let path = argocd_dir().join(file);
        let text = std::fs::read_to_string(&path).expect("written above or committed");
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let cm = parse("argocd-cm.yaml");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/part-of"], "argocd",
        "Argo CD reads only ConfigMaps labelled part-of: argocd"
    );
    let values = parse("argo-cd-values.yaml");
    for (what, data) in [
        ("argocd-cm.yaml data", &cm["data"]),
        ("argo-cd-values.yaml configs.cm", &values["configs"]["cm"]),
    ] {
        let data = data.as_object().unwrap_or_else(|| panic!("{what}: a map"));
        let keys: Vec<&String> = data.keys().collect();
        let want: Vec<String> = scripts
            .iter()
            .map(|(kind, _)| format!("{KEY_PREFIX}{kind}"))
            .collect();
        assert_eq!(keys, want.iter().collect::<Vec<_>>(), "{what}: keys");
        for (kind, text) in &scripts {
            assert_eq!(
                data[&format!("{KEY_PREFIX}{kind}")].as_str(),
                Some(text.as_str()),
                "{what}: {kind}.lua verbatim"
            );
        }
    }
}

// ---- running a health check ----

/// `s` as a Lua 5.1 string literal.
fn lua_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            // Three digits always, so that a digit after the escape is not read into it.
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\{:03}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `value` as a Lua table constructor, the way Argo CD hands `obj` to a script: objects
/// become tables keyed by string, arrays sequences, null nil.
fn lua_literal(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => lua_string(s, out),
        Value::Array(items) => {
            out.push('{');
            for item in items {
                assert!(
                    !item.is_null(),
                    "Argo CD drops nulls from arrays; avoid them"
                );
                lua_literal(item, out);
                out.push_str(", ");
            }
            out.push('}');
        }
        Value::Object(map) => {
            out.push('{');
            for (key, item) in map {
                out.push('[');
                lua_string(key, out);
                out.push_str("] = ");
                lua_literal(item, out);
                out.push_str(", ");
            }
            out.push('}');
        }
    }
}

/// A Lua 5.1 program that runs `script` as Argo CD does: `obj` set, only the base and table
/// libraries reachable, strings without methods; it prints the status, a newline and the
/// message, and exits non-zero when the script fails or returns what Argo CD cannot use.
/// Everything before the script sits on the first line, so that Lua's `stdin:N` in an
/// error is line N of the script.
fn harness(script: &str, object: &Value) -> String {
    let mut obj = String::new();
    lua_literal(object, &mut obj);
    // One line: `\` at the end of a line in a Rust string drops the newline.
    let prelude = format!(
        "obj = {obj}; local env = {{ obj = obj, table = table }}; \
         for _, name in ipairs({{ {BASE_LIBRARY} }}) do env[name] = _G[name] end; \
         local health = function() "
    );
    format!("{prelude}{script}\nend\n{EPILOGUE}")
}

/// The functions of Lua's base library that gopher-lua opens for Argo CD's health checks
/// (less those that load code or print).
const BASE_LIBRARY: &str = "\"assert\", \"error\", \"getmetatable\", \"ipairs\", \"next\", \
    \"pairs\", \"pcall\", \"rawequal\", \"rawget\", \"rawset\", \"select\", \"setmetatable\", \
    \"tonumber\", \"tostring\", \"type\", \"unpack\", \"xpcall\"";

/// After the script: no string library (and so no string methods), then the checks Argo CD
/// makes of the returned table, and the output.
const EPILOGUE: &str = r#"setfenv(health, env)
getmetatable("").__index = nil
local ok, hs = pcall(health)
if not ok then
  io.stderr:write("the script raised an error (stdin:N is its line N): ", tostring(hs), "\n")
  os.exit(2)
end
if type(hs) ~= "table" then
  io.stderr:write("the script returned a ", type(hs), ", not a table\n")
  os.exit(3)
end
local statuses = { Healthy = true, Progressing = true, Degraded = true, Suspended = true,
  Missing = true, Unknown = true }
if type(hs.status) ~= "string" or not statuses[hs.status] then
  io.stderr:write("hs.status is not a health status Argo CD knows: ", tostring(hs.status), "\n")
  os.exit(4)
end
if hs.message ~= nil and type(hs.message) ~= "string" then
  io.stderr:write("hs.message is a ", type(hs.message), ", not a string\n")
  os.exit(5)
end
io.write(hs.status, "\n", hs.message or "")
"#;

/// What `script` says of `object`: (status, message), or why it failed.
fn run(script: &str, object: &Value) -> Result<(String, String), String> {
    let mut child = match Command::new("lua5.1")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "lua5.1 is not installed; run hack/scan-tools.sh (it installs Debian's lua5.1, \
             which these tests need to run the Argo CD health checks)"
        ),
        Err(e) => panic!("cannot start lua5.1: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(harness(script, object).as_bytes())
        .expect("lua5.1 reads its program");
    let output = child.wait_with_output().expect("lua5.1 runs");
    if !output.status.success() {
        return Err(format!(
            "lua5.1 exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8(output.stdout).map_err(|e| e.to_string())?;
    let (status, message) = stdout
        .split_once('\n')
        .ok_or_else(|| format!("no status line in {stdout:?}"))?;
    Ok((status.to_owned(), message.to_owned()))
}

enum Message {
    /// Exactly this text.
    Is(String),
    /// Contains each of these.
    Has(Vec<&'static str>),
}

struct Case {
    name: &'static str,
    object: Value,
    status: &'static str,
    message: Message,
}

/// Run every case through the kind's script; fail naming each case that went wrong.
fn check(kind: &str, cases: &[Case]) {
    let script = script(kind);
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "{kind}: case names are unique");
    let mut failures = Vec::new();
    for case in cases {
        let (status, message) = match run(&script, &case.object) {
            Ok(outcome) => outcome,
            Err(e) => {
                failures.push(format!("{kind} / {}: {e}", case.name));
                continue;
            }
        };
        if status != case.status {
            failures.push(format!(
                "{kind} / {}: status {status}, want {} (message {message:?})",
                case.name, case.status
            ));
        }
        match &case.message {
            Message::Is(want) if message != *want => failures.push(format!(
                "{kind} / {}: message {message:?}, want {want:?}",
                case.name
            )),
            Message::Has(parts) => {
                for part in parts {
                    if !message.contains(part) {
                        failures.push(format!(
                            "{kind} / {}: message {message:?} lacks {part:?}",
                            case.name
                        ));
                    }
                }
            }
            Message::Is(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---- objects as the operator leaves them ----

fn at(s: &str) -> Time {
    Time(s.parse().expect("timestamp"))
}

/// The Ready condition as the operator writes it for `generation`.
fn ready(status: &str, reason: &str, message: &str, generation: i64) -> Condition {
    Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: Some(generation),
        last_transition_time: at("2026-03-02T10:15:00Z"),
    }
}

/// What the policy controller writes: the conditions and `observedGeneration` (`None` for
/// a policy it has not reached yet).
struct Written {
    conditions: Vec<Condition>,
    observed_generation: Option<i64>,
}

fn written(condition: Condition, observed_generation: i64) -> Option<Written> {
    Some(Written {
        conditions: vec![condition],
        observed_generation: Some(observed_generation),
    })
}

fn restricted() -> SecurityPolicySpec {
    SecurityPolicySpec {
        mode: Mode::Enforce,
        pod_security: Some(PodSecurity {
            level: PodSecurityLevel::Restricted,
            version: "latest".into(),
        }),
        ..SecurityPolicySpec::default()
    }
}

/// A SecurityPolicy at `generation`. With `Some(written)` the audit's fields are there too
/// (they are written on their own schedule, by another field manager).
fn security_policy(generation: i64, status: Option<Written>, audited: bool) -> Value {
    let mut policy = SecurityPolicy::new("restricted-production", restricted());
    policy.metadata.generation = Some(generation);
    policy.metadata.creation_timestamp = Some(at("2026-03-01T08:00:00Z"));
    let audit = |s: &mut SecurityPolicyStatus| {
        if audited {
            s.violations = Some(2);
            s.last_audit_time = Some(at("2026-03-02T10:20:00Z"));
        }
    };
    policy.status = match status {
        Some(w) => {
            // The newest valid generation stays enforced: the checked one when it is valid,
            // else (in these cases) the one before it, if any.
            let valid = w.conditions.iter().any(|c| c.status == "True");
            let checked = w.observed_generation.unwrap_or(generation);
            let enforced = if valid { checked } else { checked - 1 };
            let mut s = SecurityPolicyStatus {
                conditions: w.conditions,
                observed_generation: w.observed_generation,
                enforced: (enforced > 0).then(|| EnforcedSpec {
                    generation: enforced,
                    spec: restricted(),
                }),
                ..SecurityPolicyStatus::default()
            };
            audit(&mut s);
            Some(s)
        }
        None if audited => {
            let mut s = SecurityPolicyStatus::default();
            audit(&mut s);
            Some(s)
        }
        None => None,
    };
    serde_json::to_value(&policy).expect("SecurityPolicy serializes")
}

fn scan_policy(generation: i64, status: Option<Written>, audited: bool) -> Value {
    let mut policy = ScanPolicy::new(
        "prod",
        ScanPolicySpec {
            mode: Mode::Enforce,
            fail_on: FailOn {
                severity: SeverityThreshold::High,
                ..FailOn::default()
            },
            ..ScanPolicySpec::default()
        },
    );
    policy.metadata.generation = Some(generation);
    policy.metadata.creation_timestamp = Some(at("2026-03-01T08:00:00Z"));
    let audit = |s: &mut ScanPolicyStatus| {
        if audited {
            s.images_scanned = Some(14);
            s.images_failing = Some(3);
            s.last_evaluation_time = Some(at("2026-03-02T10:20:00Z"));
        }
    };
    policy.status = match status {
        Some(w) => {
            let mut s = ScanPolicyStatus {
                conditions: w.conditions,
                observed_generation: w.observed_generation,
                ..ScanPolicyStatus::default()
            };
            audit(&mut s);
            Some(s)
        }
        None if audited => {
            let mut s = ScanPolicyStatus::default();
            audit(&mut s);
            Some(s)
        }
        None => None,
    };
    serde_json::to_value(&policy).expect("ScanPolicy serializes")
}

/// The cases every policy kind shares, for a builder of (generation, status, audited), the
/// kind's Ready messages for a valid generation 3, an invalid generation 4 (3 staying in
/// force for SecurityPolicy), and an invalid first generation.
fn policy_cases(
    build: fn(i64, Option<Written>, bool) -> Value,
    valid: &str,
    invalid: &str,
    invalid_first: &str,
) -> Vec<Case> {
    vec![
        Case {
            name: "ready_for_the_current_generation",
            object: build(3, written(ready("True", "Valid", valid, 3), 3), true),
            status: "Healthy",
            message: Message::Is(valid.into()),
        },
        Case {
            name: "ready_before_any_audit",
            object: build(3, written(ready("True", "Valid", valid, 3), 3), false),
            status: "Healthy",
            message: Message::Is(valid.into()),
        },
        Case {
            name: "invalid_update",
            object: build(4, written(ready("False", "Invalid", invalid, 4), 4), true),
            status: "Degraded",
            message: Message::Is(invalid.into()),
        },
        Case {
            name: "invalid_first_generation",
            object: build(
                1,
                written(ready("False", "Invalid", invalid_first, 1), 1),
                false,
            ),
            status: "Degraded",
            message: Message::Is(invalid_first.into()),
        },
        Case {
            name: "no_status_yet",
            object: build(1, None, false),
            status: "Progressing",
            message: Message::Has(vec!["waiting for the operator"]),
        },
        Case {
            name: "only_the_audit_has_written",
            object: build(1, None, true),
            status: "Progressing",
            message: Message::Has(vec!["waiting for the operator"]),
        },
        Case {
            name: "stale_observed_generation_was_ready",
            object: build(4, written(ready("True", "Valid", valid, 3), 3), true),
            status: "Progressing",
            message: Message::Has(vec![
                "waiting for the operator",
                "generation 4",
                "(the status describes generation 3)",
            ]),
        },
        Case {
            name: "stale_observed_generation_was_invalid",
            object: build(5, written(ready("False", "Invalid", invalid, 4), 4), true),
            status: "Progressing",
            message: Message::Has(vec!["waiting for the operator", "generation 5"]),
        },
        Case {
            name: "ready_condition_behind_observed_generation",
            object: build(4, written(ready("True", "Valid", valid, 3), 4), true),
            status: "Progressing",
            message: Message::Has(vec![
                "waiting for the operator",
                "generation 4",
                "(Ready describes generation 3)",
            ]),
        },
        Case {
            name: "observed_generation_without_ready",
            object: build(
                2,
                Some(Written {
                    conditions: Vec::new(),
                    observed_generation: Some(2),
                }),
                false,
            ),
            status: "Progressing",
            message: Message::Has(vec!["waiting for the operator", "Ready"]),
        },
    ]
}

#[test]
fn security_policy_health() {
    check(
        "SecurityPolicy",
        &policy_cases(
            security_policy,
            "generation 3 in force (Enforce mode; restricted latest preset)",
            "generation 4 is invalid; generation 3 stays in force: spec.exceptions[0].rules[0]: \
             unknown rule id \"noSuchRule\"",
            "generation 1 is invalid and not enforced: spec.podSecurity.version: \"v1.99\" is \
             newer than the newest known version v1.37",
        ),
    );
}

#[test]
fn scan_policy_health() {
    check(
        "ScanPolicy",
        &policy_cases(
            scan_policy,
            "generation 3 in force (Enforce mode; fails on High or above; onUnscanned Deny; \
             scanWait 3s)",
            "generation 4 is invalid and not enforced: spec.scanWait: \"9s\" is above the \
             8s limit",
            "generation 1 is invalid and not enforced: spec.ignore[0].expires: missing",
        ),
    );
}

const DIGEST: &str = "sha256:0f3ad1a7c8c3e1f5b2a64f8c6d2e0b9a7c5e3f1d9b7a5c3e1f0d2b4a6c8e0f2a";
const IMAGE: &str = "registry.example.com/shop/web:1.4@sha256:0f3ad1a7c8c3e1f5b2a64f8c6d2e0b9a7c5e3f1d9b7a5c3e1f0d2b4a6c8e0f2a";

fn image_scan_report(status: Option<ImageScanReportStatus>) -> Value {
    let mut report = ImageScanReport::new(
        &palisade_crds::report_name(DIGEST),
        ImageScanReportSpec {
            image: IMAGE.into(),
            digest: DIGEST.into(),
            platform: None,
        },
    );
    report.metadata.generation = Some(1);
    report.metadata.creation_timestamp = Some(at("2026-03-02T09:00:00Z"));
    report.status = status;
    serde_json::to_value(&report).expect("ImageScanReport serializes")
}

fn summary(critical: u32, high: u32, medium: u32, low: u32, unknown: u32) -> SeveritySummary {
    SeveritySummary {
        critical,
        high,
        medium,
        low,
        unknown,
    }
}

/// A successful scan, as the scan controller writes it.
fn scanned(packages: u32, all: SeveritySummary, fixable: SeveritySummary) -> ImageScanReportStatus {
    let findings = if all.critical > 0 {
        vec![ReportFinding {
            id: "DSA-5532-1".into(),
            aliases: vec!["CVE-2023-5363".into()],
            package: "openssl".into(),
            installed_version: "3.0.9-1".into(),
            fixed_version: Some("3.0.11-1~deb12u2".into()),
            severity: "Critical".into(),
            ..ReportFinding::default()
        }]
    } else {
        Vec::new()
    };
    ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        // The health check counts from `summary`, not from this line.
        message: Some("the operator's one-line summary".into()),
        manifest_digest: Some(DIGEST.into()),
        platform: Some("linux/amd64".into()),
        os: Some("Debian GNU/Linux 12 (bookworm)".into()),
        ecosystem: Some("Debian:12".into()),
        ecosystems: vec!["Debian:12".into()],
        coverage: Some(Coverage::Full),
        gaps: Vec::new(),
        packages: Some(packages),
        summary: Some(all),
        fixable: Some(fixable),
        findings,
        findings_omitted: Some(0),
        scanner_version: Some("1".into()),
        database_version: Some("osv-2026-03-02".into()),
        scanned_at: Some(at("2026-03-02T09:00:04Z")),
        scan_duration_ms: Some(3810),
        failures: Some(0),
    }
}

fn failed(
    previous: Option<ImageScanReportStatus>,
    failures: u32,
    message: &str,
) -> ImageScanReportStatus {
    let mut s = previous.unwrap_or_default();
    s.phase = ScanPhase::Failed;
    s.message = Some(message.into());
    s.failures = Some(failures);
    s
}

const PULL_ERROR: &str =
    "cannot fetch the manifest of registry.example.com/shop/web: 401 Unauthorized";

fn image_scan_report_cases() -> Vec<Case> {
    vec![
        Case {
            name: "no_status_yet",
            object: image_scan_report(None),
            status: "Progressing",
            message: Message::Is(format!("waiting for the operator to scan {IMAGE}")),
        },
        Case {
            name: "pending_with_a_message",
            object: image_scan_report(Some(ImageScanReportStatus {
                phase: ScanPhase::Pending,
                message: Some("waiting for the vulnerability database".into()),
                ..ImageScanReportStatus::default()
            })),
            status: "Progressing",
            message: Message::Is("waiting for the vulnerability database".into()),
        },
        Case {
            name: "pending",
            object: image_scan_report(Some(ImageScanReportStatus::default())),
            status: "Progressing",
            message: Message::Is(format!("queued for a scan: {IMAGE}")),
        },
        Case {
            name: "scanned_nothing_found",
            object: image_scan_report(Some(scanned(
                87,
                summary(0, 0, 0, 0, 0),
                summary(0, 0, 0, 0, 0),
            ))),
            status: "Healthy",
            message: Message::Is("no known vulnerabilities in 87 packages".into()),
        },
        Case {
            name: "scanned_but_nothing_judged",
            object: image_scan_report(Some({
                let mut s = scanned(0, summary(0, 0, 0, 0, 0), summary(0, 0, 0, 0, 0));
                s.coverage = Some(Coverage::None);
                s.gaps = vec![CoverageGap {
                    reason: GapReason::NoOsRecognised,
                    message: "no OS recognised (no /etc/os-release)".into(),
                }];
                s
            })),
            status: "Healthy",
            message: Message::Is(
                "not judged (no OS recognised (no /etc/os-release)): no known vulnerabilities in 0 packages"
                    .into(),
            ),
        },
        Case {
            name: "scanned_one_finding",
            object: image_scan_report(Some(scanned(
                87,
                summary(0, 0, 0, 1, 0),
                summary(0, 0, 0, 0, 0),
            ))),
            status: "Healthy",
            message: Message::Is(
                "1 vulnerability in 87 packages (Critical 0, High 0, Medium 0, Low 1, Unknown 0; \
                 0 fixable)"
                    .into(),
            ),
        },
        Case {
            name: "scanned_with_critical_findings_is_still_healthy",
            object: image_scan_report(Some(scanned(
                140,
                summary(1, 2, 5, 3, 1),
                summary(1, 2, 1, 0, 0),
            ))),
            status: "Healthy",
            message: Message::Is(
                "12 vulnerabilities in 140 packages (Critical 1, High 2, Medium 5, Low 3, \
                 Unknown 1; 4 fixable)"
                    .into(),
            ),
        },
        Case {
            name: "failed_first_scan",
            object: image_scan_report(Some(failed(None, 1, PULL_ERROR))),
            status: "Degraded",
            message: Message::Is(format!("scan failed: {PULL_ERROR}")),
        },
        Case {
            name: "failed_again_after_an_earlier_scan",
            object: image_scan_report(Some(failed(
                Some(scanned(140, summary(1, 2, 5, 3, 1), summary(1, 2, 1, 0, 0))),
                3,
                PULL_ERROR,
            ))),
            status: "Degraded",
            message: Message::Is(format!(
                "scan failed: {PULL_ERROR} (3 failures in a row; retried with backoff)"
            )),
        },
    ]
}

#[test]
fn image_scan_report_health() {
    check("ImageScanReport", &image_scan_report_cases());
}

/// The phases the CRD admits, read from its schema (so a new `ScanPhase` shows up here).
fn scan_phases() -> BTreeSet<String> {
    let crd = palisade_crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "ImageScanReport")
        .expect("ImageScanReport CRD");
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema serializes");
    schema["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]["enum"]
        .as_array()
        .expect("status.phase is an enum")
        .iter()
        .map(|v| v.as_str().expect("phase names are strings").to_owned())
        .collect()
}

#[test]
fn every_scan_phase_has_a_case_and_a_known_health() {
    let phases = scan_phases();
    assert!(phases.contains("Scanned"), "{phases:?}");
    let covered: BTreeSet<String> = image_scan_report_cases()
        .iter()
        .filter_map(|c| c.object["status"]["phase"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        covered, phases,
        "image_scan_report_cases must hold a case for every phase the CRD admits"
    );
    let script = script("ImageScanReport");
    for phase in &phases {
        let mut object = image_scan_report(Some(ImageScanReportStatus::default()));
        object["status"]["phase"] = Value::String(phase.clone());
        let (status, message) = run(&script, &object).unwrap_or_else(|e| panic!("{phase}: {e}"));
        assert_ne!(status, "Unknown", "phase {phase}: {message}");
    }
    // A phase this check does not know is reported as such, not guessed.
    let mut object = image_scan_report(Some(ImageScanReportStatus::default()));
    object["status"]["phase"] = "Quarantined".into();
    let (status, message) = run(&script, &object).expect("runs");
    assert_eq!(status, "Unknown");
    assert!(message.contains("Quarantined"), "{message}");
}

/// The harness itself: a script using what Argo CD does not open fails, and so does one
/// that returns a status Argo CD does not know; a string with quotes, backslashes, newlines
/// and control characters reaches the script unchanged.
#[test]
fn harness_holds_scripts_to_what_argo_cd_allows() {
    let object = serde_json::json!({"metadata": {"name": "x"}});
    for (name, script) in [
        (
            "string library",
            "hs = {}\nhs.status = string.upper(\"healthy\")\nreturn hs",
        ),
        (
            "string methods",
            "hs = {}\nhs.status = (\"Healthy\"):sub(1)\nreturn hs",
        ),
        (
            "math library",
            "hs = {}\nhs.status = \"Healthy\"\nhs.message = tostring(math.floor(1.5))\nreturn hs",
        ),
        ("unknown status", "hs = {}\nhs.status = \"Fine\"\nreturn hs"),
        (
            "message not a string",
            "hs = {}\nhs.status = \"Healthy\"\nhs.message = 3\nreturn hs",
        ),
        ("no table", "return \"Healthy\""),
    ] {
        assert!(
            run(script, &object).is_err(),
            "{name}: the harness let it through"
        );
    }
    let tricky = "a \"quoted\" \\ back\nslash\ttab \u{1}1 ü ]] end";
    let object =
        serde_json::json!({"metadata": {"name": tricky}, "list": [1, 2.5, true, {"k": "v"}]});
    let (status, message) = run(
        "hs = {}\nhs.status = \"Healthy\"\nhs.message = obj.metadata.name .. \"|\" .. tostring(#obj.list) .. tostring(obj.list[2]) .. obj.list[4].k\nreturn hs",
        &object,
    )
    .expect("runs");
    assert_eq!(status, "Healthy");
    assert_eq!(message, format!("{tricky}|42.5v"));
}
