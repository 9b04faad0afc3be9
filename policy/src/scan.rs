//! ScanPolicy: judging a pod's images by their vulnerability scans.
//!
//! Pure like the rest of the engine: the caller says what it knows about each image (its
//! report, or that none exists yet, or why its digest is unknown) and this decides. The
//! webhook and the operator (ScanPolicy status, reports on running workloads) share it.

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use palisade_crds::{
    Coverage, CoverageGap, ImageScanReportStatus, Mode, OnUnscanned, ReportFinding, ScanPhase,
    ScanPolicy, SecretRef, SeverityThreshold, report_name_for,
};
use palisade_imageref::ImageRef;
use palisade_pod_security::{ContainerRef, containers};

use crate::decision::{Decision, ExpiredException, PolicyKind, Undecided, Violation, Waiver};
use crate::engine::{Applies, Facts, applies};
use crate::error::{Error, Problem};
use crate::exceptions::{WaiverLimits, Waivers, check_accountability, glob_match};
use crate::policy::Scope;
use crate::rule_id::RuleId;
use crate::subject::Subject;

/// The longest `scanWait` a ScanPolicy may ask for: admission must answer well inside the
/// webhook's timeout (at most 30 s, 10 s by default).
pub const MAX_SCAN_WAIT: Duration = Duration::from_secs(8);
/// `scanWait` when unset.
pub const DEFAULT_SCAN_WAIT: Duration = Duration::from_secs(3);
/// `maxReportAge` when unset.
pub const DEFAULT_MAX_REPORT_AGE: Duration = Duration::from_secs(24 * 3600);

/// At most this many findings are named in one denial line; the counts cover all.
const NAMED_FINDINGS: usize = 3;

/// A validated ScanPolicy.
#[derive(Debug, Clone)]
pub struct CompiledScanPolicy {
    name: String,
    mode: Mode,
    generation: Option<i64>,
    scope: Scope,
    include: Vec<String>,
    exclude: Vec<String>,
    threshold: SeverityThreshold,
    only_fixable: bool,
    ignore: Vec<Ignore>,
    on_unscanned: OnUnscanned,
    on_unjudged: OnUnscanned,
    scan_wait: Duration,
    max_report_age: Duration,
    registry_credentials: Vec<SecretRef>,
}

#[derive(Debug, Clone)]
struct Ignore {
    id: String,
    images: Vec<String>,
    owner: Option<String>,
    reason: Option<String>,
    expires: Option<Timestamp>,
}

/// The ignore id that admits images whose scan could not judge them.
pub const UNJUDGED_IGNORE_ID: &str = "scan.unjudged";

impl Ignore {
    fn covers_image(&self, image: &str) -> bool {
        self.images.is_empty() || self.images.iter().any(|p| glob_match(p, image))
    }

    fn covers(&self, finding: &ReportFinding, image: &str) -> bool {
        let id_matches = finding.id.eq_ignore_ascii_case(&self.id)
            || finding
                .aliases
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&self.id));
        id_matches && self.covers_image(image)
    }
}

impl CompiledScanPolicy {
    /// Check what the schema cannot; every problem is reported at once, with its field.
    /// Ignore entry expiries are checked against now.
    pub fn compile(policy: &ScanPolicy) -> Result<CompiledScanPolicy, Error> {
        CompiledScanPolicy::compile_at(policy, Timestamp::now())
    }

    /// [`compile`](Self::compile), judging `maxExceptionDays` from `now`.
    pub fn compile_at(policy: &ScanPolicy, now: Timestamp) -> Result<CompiledScanPolicy, Error> {
        CompiledScanPolicy::compile_with(policy, now, Waivers::Checked)
    }

    /// Compile, checking ignore entries as `waivers` says.
    pub fn compile_with(
        policy: &ScanPolicy,
        now: Timestamp,
        waivers: Waivers,
    ) -> Result<CompiledScanPolicy, Error> {
        let name = policy.metadata.name.clone().unwrap_or_default();
        let spec = &policy.spec;
        let mut problems = Vec::new();
        if name.is_empty() {
            problems.push(Problem::new("metadata.name", "a ScanPolicy needs a name"));
        }
        let scope = Scope::compile(spec.match_.as_ref(), spec.exclude.as_ref(), &mut problems);
        let (include, exclude) = match &spec.images {
            Some(sel) => {
                for (field, list) in [
                    ("spec.images.include", &sel.include),
                    ("spec.images.exclude", &sel.exclude),
                ] {
                    for (i, p) in list.iter().enumerate() {
                        if p.trim().is_empty() {
                            problems.push(Problem::new(
                                format!("{field}[{i}]"),
                                "an image pattern cannot be empty",
                            ));
                        }
                    }
                }
                (sel.include.clone(), sel.exclude.clone())
            }
            None => (Vec::new(), Vec::new()),
        };
        let limits = WaiverLimits::new(now, spec.max_exception_days, waivers);
        let mut ignore = Vec::with_capacity(spec.ignore.len());
        for (i, e) in spec.ignore.iter().enumerate() {
            let field = format!("spec.ignore[{i}]");
            if e.id.trim().is_empty() {
                problems.push(Problem::new(
                    format!("{field}.id"),
                    "name the finding to ignore (e.g. CVE-2023-5363)",
                ));
            }
            for (j, p) in e.images.iter().enumerate() {
                if p.trim().is_empty() {
                    problems.push(Problem::new(
                        format!("{field}.images[{j}]"),
                        "an image pattern cannot be empty",
                    ));
                }
            }
            check_accountability(
                e.owner.as_deref(),
                e.reason.as_deref(),
                e.expires.as_ref().map(|t| t.0),
                &field,
                &limits,
                &mut problems,
            );
            ignore.push(Ignore {
                id: e.id.trim().to_owned(),
                images: e.images.clone(),
                owner: e.owner.clone(),
                reason: e.reason.clone(),
                expires: e.expires.as_ref().map(|t| t.0),
            });
        }
        let scan_wait = match spec.scan_wait.as_deref() {
            None => DEFAULT_SCAN_WAIT,
            Some(text) => match parse_duration(text) {
                Some(d) if d <= MAX_SCAN_WAIT => d,
                Some(_) => {
                    problems.push(Problem::new(
                        "spec.scanWait",
                        format!(
                            "{text:?} is longer than {}s: admission must answer well inside the webhook's timeout",
                            MAX_SCAN_WAIT.as_secs()
                        ),
                    ));
                    MAX_SCAN_WAIT
                }
                None => {
                    problems.push(Problem::new(
                        "spec.scanWait",
                        format!("{text:?} is not a duration like 2s or 500ms"),
                    ));
                    DEFAULT_SCAN_WAIT
                }
            },
        };
        let max_report_age = match spec.max_report_age.as_deref() {
            None => DEFAULT_MAX_REPORT_AGE,
            Some(text) => match parse_duration(text) {
                Some(d) if d >= Duration::from_secs(60) => d,
                _ => {
                    problems.push(Problem::new(
                        "spec.maxReportAge",
                        format!("{text:?} is not a duration of at least 1m, like 12h or 7d"),
                    ));
                    DEFAULT_MAX_REPORT_AGE
                }
            },
        };
        if problems.is_empty() {
            Ok(CompiledScanPolicy {
                name,
                mode: spec.mode,
                generation: policy.metadata.generation,
                scope,
                include,
                exclude,
                threshold: spec.fail_on.severity,
                only_fixable: spec.fail_on.only_fixable,
                ignore,
                on_unscanned: spec.on_unscanned,
                on_unjudged: spec.on_unjudged,
                scan_wait,
                max_report_age,
                registry_credentials: spec.registry_credentials.clone(),
            })
        } else {
            Err(Error::InvalidScanPolicy {
                policy: if name.is_empty() {
                    "(unnamed)".into()
                } else {
                    name
                },
                problems,
            })
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn generation(&self) -> Option<i64> {
        self.generation
    }

    pub fn on_unscanned(&self) -> OnUnscanned {
        self.on_unscanned
    }

    pub fn on_unjudged(&self) -> OnUnscanned {
        self.on_unjudged
    }

    /// Ignore entries that expire within `within` of `now`, or have expired, soonest first.
    pub fn expiring_exceptions(
        &self,
        now: Timestamp,
        within: Duration,
    ) -> Vec<palisade_crds::ExpiringException> {
        crate::policy::expiring(
            self.ignore
                .iter()
                .map(|e| (e.id.as_str(), e.owner.as_deref(), e.expires)),
            now,
            within,
        )
    }

    /// The unexpired ignore entry that waives `finding` in `image`, if any.
    fn waiver_for(
        &self,
        id_of: impl Fn(&Ignore) -> bool,
        image: &str,
        now: Timestamp,
    ) -> Option<&Ignore> {
        self.ignore
            .iter()
            .find(|e| id_of(e) && e.covers_image(image) && e.expires.is_none_or(|at| at > now))
    }

    /// How long admission may wait for a queued scan.
    pub fn scan_wait(&self) -> Duration {
        self.scan_wait
    }

    /// Reports older than this are re-scanned.
    pub fn max_report_age(&self) -> Duration {
        self.max_report_age
    }

    pub fn registry_credentials(&self) -> &[SecretRef] {
        &self.registry_credentials
    }

    /// Whether the policy's `match` / `exclude` select the subject.
    pub fn applies_to(&self, subject: &Subject, facts: &Facts<'_>) -> bool {
        applies(&self.scope, subject, facts) == Applies::Yes
    }

    /// Whether the policy judges this image (normalized, `docker.io/library/nginx:1.25`):
    /// any `images.include` pattern (all when none) and no `images.exclude` pattern.
    pub fn selects_image(&self, image: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| glob_match(p, image)))
            && !self.exclude.iter().any(|p| glob_match(p, image))
    }

    /// The policy's verdict on one image.
    pub fn judge<'r>(&self, image: &str, facts: &ImageFacts<'r>, now: Timestamp) -> Verdict<'r> {
        let (digest, status, platform) = match facts {
            ImageFacts::Unresolved { reason } => {
                return Verdict::Unscanned(Unscanned::Unresolved((*reason).to_owned()));
            }
            ImageFacts::Digest {
                digest,
                platform,
                report,
            } => (*digest, *report, *platform),
        };
        let status = match status {
            Some(s) if s.phase == ScanPhase::Scanned => s,
            Some(s) if s.phase == ScanPhase::Failed => {
                return Verdict::Unscanned(Unscanned::Failed {
                    digest: digest.to_owned(),
                    report: report_name_for(digest, platform),
                    message: s.message.clone().unwrap_or_default(),
                });
            }
            _ => {
                return Verdict::Unscanned(Unscanned::Queued {
                    digest: digest.to_owned(),
                    report: report_name_for(digest, platform),
                });
            }
        };
        let threshold = rank_of_threshold(self.threshold);
        let counted = |f: &ReportFinding| {
            severity_rank(&f.severity) >= threshold
                && (!self.only_fixable || f.fixed_version.is_some())
        };
        // Counts at or above the threshold, from the summary (which covers findings the
        // report does not list), less the listed findings that an ignore entry waives.
        let base = if self.only_fixable {
            status.fixable.or(status.summary)
        } else {
            status.summary
        }
        .unwrap_or_default();
        let mut counts = [
            base.critical,
            base.high,
            base.medium,
            base.low,
            base.unknown,
        ];
        for (i, c) in counts.iter_mut().enumerate() {
            if SEVERITIES[i].1 < threshold {
                *c = 0;
            }
        }
        let mut ignored = Vec::new();
        let mut expired: Option<ExpiredException> = None;
        let mut worst = Vec::new();
        for f in status.findings.iter().filter(|f| counted(f)) {
            let mut waived = false;
            for e in self.ignore.iter().filter(|e| e.covers(f, image)) {
                match e.expires {
                    Some(at) if at <= now => {
                        expired.get_or_insert(ExpiredException {
                            name: e.id.clone(),
                            expired_at: at,
                        });
                    }
                    _ => {
                        waived = true;
                        break;
                    }
                }
            }
            if waived {
                if let Some(slot) = SEVERITIES
                    .iter()
                    .position(|(_, r)| *r == severity_rank(&f.severity))
                {
                    counts[slot] = counts[slot].saturating_sub(1);
                }
                ignored.push(f);
            } else {
                worst.push(f);
            }
        }
        if counts.iter().all(|c| *c == 0) {
            // Zero findings from a scan that did not see everything are not a clean bill.
            let coverage = status.coverage();
            if coverage != Coverage::Full {
                let waiver = self.waiver_for(|e| e.id == UNJUDGED_IGNORE_ID, image, now);
                if waiver.is_none() {
                    return Verdict::Unjudged(Unjudged {
                        digest: digest.to_owned(),
                        coverage,
                        gaps: status.gaps.clone(),
                        os: status.os.clone(),
                    });
                }
                return Verdict::Pass {
                    ignored,
                    unjudged_waived: true,
                };
            }
            return Verdict::Pass {
                ignored,
                unjudged_waived: false,
            };
        }
        worst.sort_by_key(|f| std::cmp::Reverse(severity_rank(&f.severity)));
        worst.truncate(NAMED_FINDINGS);
        Verdict::Fail(Failure {
            digest: digest.to_owned(),
            counts,
            worst,
            ignored,
            expired,
        })
    }

    /// "allows at most High", as the denial ends.
    fn allowance(&self) -> String {
        let fixable = if self.only_fixable { " fixable" } else { "" };
        match self.threshold {
            SeverityThreshold::Critical => format!("this policy allows at most High{fixable}"),
            SeverityThreshold::High => format!("this policy allows at most Medium{fixable}"),
            SeverityThreshold::Medium => format!("this policy allows at most Low{fixable}"),
            SeverityThreshold::Low => {
                format!("this policy allows no{fixable} finding of Low severity or above")
            }
        }
    }
}

/// What the caller knows about one image.
#[derive(Debug, Clone, Copy)]
pub enum ImageFacts<'r> {
    /// The image's digest and its report, if one exists, scanned for `platform` (`None`:
    /// the default platform; `Some("linux/arm64")` for a pod pinned to arm64 nodes).
    Digest {
        digest: &'r str,
        platform: Option<&'r str>,
        report: Option<&'r ImageScanReportStatus>,
    },
    /// The digest is unknown (the registry cannot be reached, the tag does not exist…).
    Unresolved { reason: &'r str },
}

/// One policy's verdict on one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict<'r> {
    /// Nothing at or above the threshold, once ignore entries are applied.
    Pass {
        ignored: Vec<&'r ReportFinding>,
        /// The scan did not judge all of the image, and an ignore entry `scan.unjudged`
        /// admits it anyway.
        unjudged_waived: bool,
    },
    Fail(Failure<'r>),
    /// No usable report; `onUnscanned` decides.
    Unscanned(Unscanned),
    /// Scanned, nothing found, but the scan could not judge all of the image;
    /// `onUnjudged` decides.
    Unjudged(Unjudged),
}

/// An image whose scan found nothing but did not see all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unjudged {
    pub digest: String,
    pub coverage: Coverage,
    pub gaps: Vec<CoverageGap>,
    /// The OS recognised, if any.
    pub os: Option<String>,
}

impl Verdict<'_> {
    pub fn is_failing(&self) -> bool {
        matches!(self, Verdict::Fail(_))
    }
}

/// Why an image has no usable report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unscanned {
    /// No report yet, or one still pending: a scan is queued (`report` names it).
    Queued { digest: String, report: String },
    /// The last scan failed.
    Failed {
        digest: String,
        report: String,
        message: String,
    },
    /// The image's digest is unknown.
    Unresolved(String),
}

/// The findings that fail an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<'r> {
    pub digest: String,
    /// Failing findings by severity: Critical, High, Medium, Low, Unknown.
    pub counts: [u32; 5],
    /// The most severe failing findings the report lists, worst first (a few).
    pub worst: Vec<&'r ReportFinding>,
    /// Listed findings that an ignore entry waived.
    pub ignored: Vec<&'r ReportFinding>,
    /// An ignore entry that would have waived a finding, had it not expired.
    pub expired: Option<ExpiredException>,
}

const SEVERITIES: [(&str, u8); 5] = [
    ("Critical", 4),
    ("High", 3),
    ("Medium", 2),
    ("Low", 1),
    ("Unknown", 0),
];

fn severity_rank(s: &str) -> u8 {
    SEVERITIES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map_or(0, |(_, r)| *r)
}

fn rank_of_threshold(t: SeverityThreshold) -> u8 {
    severity_rank(t.as_str())
}

/// Compiled ScanPolicies, in name order.
#[derive(Debug, Clone, Default)]
pub struct ScanPolicySet {
    policies: Vec<CompiledScanPolicy>,
}

impl ScanPolicySet {
    pub fn new(mut policies: Vec<CompiledScanPolicy>) -> ScanPolicySet {
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        ScanPolicySet { policies }
    }

    /// Compile every policy; the valid ones form the set, the others come back as errors.
    pub fn compile_all<'a>(
        policies: impl IntoIterator<Item = &'a ScanPolicy>,
    ) -> (ScanPolicySet, Vec<Error>) {
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for p in policies {
            match CompiledScanPolicy::compile(p) {
                Ok(c) => ok.push(c),
                Err(e) => errors.push(e),
            }
        }
        (ScanPolicySet::new(ok), errors)
    }

    /// For enforcement: as [`compile_all`](Self::compile_all), except that a policy whose
    /// only problems are in its ignore entries' owner, reason or expiry is enforced as
    /// written (it comes back among the errors too, so its status says what to fix). A
    /// stricter check must never turn a policy that was enforced into none at all.
    pub fn compile_for_enforcement<'a>(
        policies: impl IntoIterator<Item = &'a ScanPolicy>,
        now: Timestamp,
    ) -> (ScanPolicySet, Vec<Error>) {
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for p in policies {
            match CompiledScanPolicy::compile_at(p, now) {
                Ok(c) => ok.push(c),
                Err(e) => {
                    if let Ok(c) = CompiledScanPolicy::compile_with(p, now, Waivers::AsAccepted) {
                        ok.push(c);
                    }
                    errors.push(e);
                }
            }
        }
        (ScanPolicySet::new(ok), errors)
    }

    pub fn policies(&self) -> &[CompiledScanPolicy] {
        &self.policies
    }

    /// Whether any policy selects namespaces by label (and so needs the namespace's labels).
    pub fn uses_namespace_labels(&self) -> bool {
        self.policies
            .iter()
            .any(|p| p.scope.namespace_selector.is_some())
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The images of a subject that a matching policy judges, with the longest `scanWait`
    /// among those policies: what the caller must find reports (or digests) for.
    pub fn images_to_judge(&self, subject: &Subject, facts: &Facts<'_>) -> ScanNeeds {
        let mut needs = ScanNeeds::default();
        let matching: Vec<&CompiledScanPolicy> = self
            .policies
            .iter()
            .filter(|p| p.applies_to(subject, facts))
            .collect();
        if matching.is_empty() {
            return needs;
        }
        for c in containers(&subject.pod_spec) {
            let Some(raw) = c.image else { continue };
            let Some(image) = normalize(raw) else {
                continue;
            };
            let judged: Vec<&&CompiledScanPolicy> = matching
                .iter()
                .filter(|p| p.selects_image(&image))
                .collect();
            if judged.is_empty() || needs.images.iter().any(|i| i.image == image) {
                continue;
            }
            for p in judged {
                needs.wait = needs.wait.max(p.scan_wait);
            }
            needs.images.push(ImageNeed {
                image,
                written: raw.to_owned(),
            });
        }
        needs
    }
}

/// What judging a subject's images takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanNeeds {
    /// Distinct images, in container order.
    pub images: Vec<ImageNeed>,
    /// The longest a matching policy lets admission wait for a queued scan.
    pub wait: Duration,
}

/// One image to find a report for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageNeed {
    /// Normalized (`docker.io/library/nginx:1.25`, or `…@sha256:…`).
    pub image: String,
    /// As the pod writes it (`nginx:1.25`), for messages.
    pub written: String,
}

impl ImageNeed {
    /// The digest the reference pins, if it pins one.
    pub fn pinned_digest(&self) -> Option<&str> {
        self.image.rsplit_once('@').map(|(_, d)| d)
    }
}

/// The normalized form of an image reference, or `None` when it does not parse (a
/// SecurityPolicy's `images.reference` rule reports that).
pub fn normalize(raw: &str) -> Option<String> {
    ImageRef::parse(raw).ok().map(|r| r.to_string())
}

/// One distinct image of a subject, with the container that first names it.
struct SubjectImage<'s> {
    /// Normalized.
    image: String,
    /// As written, for messages.
    shown: &'s str,
    container: ContainerRef,
    /// The field a violation points at.
    field: String,
}

fn subject_images(subject: &Subject) -> Vec<SubjectImage<'_>> {
    let mut images: Vec<SubjectImage<'_>> = Vec::new();
    for c in containers(&subject.pod_spec) {
        let Some(raw) = c.image else { continue };
        let Some(image) = normalize(raw) else {
            continue;
        };
        if images.iter().any(|i| i.image == image) {
            continue;
        }
        let field = subject.object_field(&format!("spec.{}[{}].image", c.kind.field(), c.index));
        let container = ContainerRef {
            kind: c.kind,
            index: c.index,
            name: c.name.to_owned(),
        };
        images.push(SubjectImage {
            image,
            shown: raw,
            container,
            field,
        });
    }
    images
}

/// Every (matching policy, selected image) pair of `subject` with what the caller knows of
/// the image and the policy's verdict on it.
fn for_each_verdict<'r>(
    set: &ScanPolicySet,
    subject: &Subject,
    facts: &Facts<'_>,
    lookup: &dyn Fn(&str) -> Option<ImageFacts<'r>>,
    mut each: impl FnMut(&CompiledScanPolicy, &SubjectImage<'_>, &ImageFacts<'r>, Verdict<'r>),
) {
    for_each_verdict_of(set, subject, facts, lookup, Applies::Yes, &mut each);
}

/// [`for_each_verdict`] over the policies whose match of `subject` is `applies`.
fn for_each_verdict_of<'r>(
    set: &ScanPolicySet,
    subject: &Subject,
    facts: &Facts<'_>,
    lookup: &dyn Fn(&str) -> Option<ImageFacts<'r>>,
    applies_as: Applies,
    each: &mut impl FnMut(&CompiledScanPolicy, &SubjectImage<'_>, &ImageFacts<'r>, Verdict<'r>),
) {
    let images = subject_images(subject);
    for policy in set.policies() {
        if applies(&policy.scope, subject, facts) != applies_as {
            continue;
        }
        for judged in &images {
            if !policy.selects_image(&judged.image) {
                continue;
            }
            let unknown = ImageFacts::Unresolved {
                reason: "its digest is not known yet",
            };
            let image_facts = lookup(&judged.image).unwrap_or(unknown);
            let verdict = policy.judge(&judged.image, &image_facts, facts.now);
            each(policy, judged, &image_facts, verdict);
        }
    }
}

/// What one ScanPolicy found over many subjects: distinct digests judged from a usable
/// report, and those of them that fail. A ScanPolicy's status counts these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageTally {
    pub scanned: std::collections::BTreeSet<String>,
    pub failing: std::collections::BTreeSet<String>,
    /// Scanned, but the scan could not judge all of the image (not in `scanned`).
    pub unjudged: std::collections::BTreeSet<String>,
}

/// Add the images of `subject` to the tally of each matching policy (by name). Images with
/// no usable report (unscanned, unresolved) are not counted.
pub fn tally_scans<'r>(
    set: &ScanPolicySet,
    subject: &Subject,
    facts: &Facts<'_>,
    lookup: &dyn Fn(&str) -> Option<ImageFacts<'r>>,
    tally: &mut std::collections::BTreeMap<String, ImageTally>,
) {
    for_each_verdict(
        set,
        subject,
        facts,
        lookup,
        |policy, _, image_facts, verdict| {
            let ImageFacts::Digest { digest, .. } = image_facts else {
                return;
            };
            let entry = tally.entry(policy.name.clone()).or_default();
            match verdict {
                Verdict::Pass { .. } => {
                    entry.scanned.insert((*digest).to_owned());
                }
                Verdict::Fail(_) => {
                    entry.scanned.insert((*digest).to_owned());
                    entry.failing.insert((*digest).to_owned());
                }
                Verdict::Unjudged(_) => {
                    entry.unjudged.insert((*digest).to_owned());
                }
                Verdict::Unscanned(_) => {}
            }
        },
    );
}

/// Run every ScanPolicy matching `subject` over its images and add the violations (and the
/// ignored findings, as waivers) to `decision`. `lookup` answers for the normalized images
/// of [`ScanPolicySet::images_to_judge`]; an image it does not know counts as unresolved.
pub fn review_scans<'r>(
    set: &ScanPolicySet,
    subject: &Subject,
    facts: &Facts<'_>,
    lookup: &dyn Fn(&str) -> Option<ImageFacts<'r>>,
    decision: &mut Decision,
) {
    // An Enforce policy that only the namespace's unknown labels could leave out, and that
    // would refuse an image if it matched, refuses and says why.
    let mut would_refuse: Vec<String> = Vec::new();
    for_each_verdict_of(
        set,
        subject,
        facts,
        lookup,
        Applies::Unknown,
        &mut |policy, _, _, verdict| {
            let refuses = match &verdict {
                Verdict::Pass { .. } => false,
                Verdict::Fail(_) => true,
                Verdict::Unscanned(_) => policy.on_unscanned == OnUnscanned::Deny,
                Verdict::Unjudged(_) => policy.on_unjudged == OnUnscanned::Deny,
            };
            if refuses && policy.mode == Mode::Enforce && !would_refuse.contains(&policy.name) {
                would_refuse.push(policy.name.clone());
            }
        },
    );
    for name in would_refuse {
        decision.undecided.push(Undecided {
            kind: PolicyKind::ScanPolicy,
            policy: name,
            namespace: subject.namespace.clone(),
        });
    }
    for_each_verdict(set, subject, facts, lookup, |policy, judged, _, verdict| {
        let SubjectImage {
            image,
            shown,
            container,
            field,
        } = judged;
        let mut seen_ignored = Vec::new();
        let (ignored, unjudged_waived) = match &verdict {
            Verdict::Pass {
                ignored,
                unjudged_waived,
            } => (ignored.as_slice(), *unjudged_waived),
            Verdict::Fail(f) => (f.ignored.as_slice(), false),
            Verdict::Unscanned(_) | Verdict::Unjudged(_) => (&[][..], false),
        };
        let mut waive = |rule: RuleId, e: &Ignore, id: &str| {
            decision.waived.push(Waiver {
                kind: PolicyKind::ScanPolicy,
                policy: policy.name.clone(),
                exception: id.to_owned(),
                rule,
                field: field.clone(),
                owner: e.owner.clone(),
                reason: e.reason.clone(),
                expires: e.expires,
            });
        };
        for f in ignored {
            if seen_ignored.contains(&&f.id) {
                continue;
            }
            seen_ignored.push(&f.id);
            if let Some(e) = policy.waiver_for(|e| e.covers(f, image), image, facts.now) {
                waive(RuleId::ScanVulnerabilities, e, &f.id);
            }
        }
        if unjudged_waived
            && let Some(e) = policy.waiver_for(|e| e.id == UNJUDGED_IGNORE_ID, image, facts.now)
        {
            waive(RuleId::ScanUnjudged, e, UNJUDGED_IGNORE_ID);
        }
        let (rule, mode, message, fix, expired) = match verdict {
            Verdict::Pass { .. } => return,
            Verdict::Fail(f) => (
                RuleId::ScanVulnerabilities,
                policy.mode,
                failure_message(shown, &f, policy.only_fixable),
                format!(
                    "{}; update the image, or ask the owner of ScanPolicy/{} for an ignore entry (spec.ignore: id, reason, owner, expires)",
                    policy.allowance(),
                    policy.name
                ),
                f.expired,
            ),
            Verdict::Unjudged(u) => {
                let mode = match (policy.on_unjudged, policy.mode) {
                    (OnUnscanned::Allow, _) => return,
                    (OnUnscanned::Warn, Mode::Enforce) => Mode::Warn,
                    (_, mode) => mode,
                };
                let fix = match policy.on_unjudged {
                    OnUnscanned::Warn => {
                        "admitted although its scan could not judge it (onUnjudged: Warn)"
                            .to_owned()
                    }
                    _ => format!(
                        "this policy admits only images its scanner can judge (onUnjudged: Deny): build it on a base image with a recognised OS, or ask the owner of ScanPolicy/{} to admit it deliberately (spec.images.exclude, or spec.ignore with id {UNJUDGED_IGNORE_ID}, images, owner, reason, expires)",
                        policy.name
                    ),
                };
                (
                    RuleId::ScanUnjudged,
                    mode,
                    unjudged_message(shown, &u),
                    fix,
                    None,
                )
            }
            Verdict::Unscanned(why) => {
                let mode = match (policy.on_unscanned, policy.mode) {
                    (OnUnscanned::Allow, _) => return,
                    (OnUnscanned::Warn, Mode::Enforce) => Mode::Warn,
                    (_, mode) => mode,
                };
                let fix = match policy.on_unscanned {
                    OnUnscanned::Warn => "admitted without a scan (onUnscanned: Warn)".to_owned(),
                    _ => "this policy admits only scanned images (onUnscanned: Deny)".to_owned(),
                };
                (
                    RuleId::ScanUnscanned,
                    mode,
                    unscanned_message(shown, &why),
                    fix,
                    None,
                )
            }
        };
        decision.violations.push(Violation {
            kind: PolicyKind::ScanPolicy,
            policy: policy.name.clone(),
            mode,
            rule,
            container: Some(container.clone()),
            field: field.clone(),
            message,
            fix,
            expired_exception: expired,
            compliance: crate::compliance::refs(rule),
        });
    });
}

/// `sha256:0123456789ab…`: enough to tell digests apart in a message.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}…", &hex[..12]),
        _ => digest.to_owned(),
    }
}

fn failure_message(image: &str, f: &Failure<'_>, only_fixable: bool) -> String {
    let mut s = String::with_capacity(200);
    let _ = write!(s, "image {image} ({}): ", short_digest(&f.digest));
    let total: u32 = f.counts.iter().sum();
    let mut first = true;
    for (i, n) in f.counts.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        if !first {
            s.push_str(", ");
        }
        first = false;
        let _ = write!(s, "{n} {}", SEVERITIES[i].0);
    }
    let _ = write!(
        s,
        "{} vulnerabilit{}",
        if only_fixable { " fixable" } else { "" },
        if total == 1 { "y" } else { "ies" }
    );
    if !f.worst.is_empty() {
        s.push_str(" (");
        for (i, w) in f.worst.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            // Developers search for the CVE; the distribution's own id is in the report.
            let id = w
                .aliases
                .iter()
                .find(|a| a.starts_with("CVE-"))
                .unwrap_or(&w.id);
            let _ = write!(s, "{id} in {} {}", w.package, w.installed_version);
            match &w.fixed_version {
                Some(v) => {
                    let _ = write!(s, " fixed in {v}");
                }
                None => s.push_str(" with no fix yet"),
            }
        }
        let named = u32::try_from(f.worst.len()).unwrap_or(u32::MAX);
        if total > named {
            let _ = write!(s, ", and {} more", total - named);
        }
        s.push(')');
    }
    if !f.ignored.is_empty() {
        let _ = write!(s, "; {} ignored by spec.ignore", f.ignored.len());
    }
    s
}

fn unjudged_message(image: &str, u: &Unjudged) -> String {
    let mut s = format!(
        "image {image} ({}): its scan could not judge {} of it",
        short_digest(&u.digest),
        if u.coverage == Coverage::Partial {
            "all"
        } else {
            "any"
        }
    );
    if u.gaps.is_empty() {
        match &u.os {
            None => s.push_str(" (no OS recognised)"),
            Some(os) => {
                let _ = write!(s, " (no vulnerability data for {os})");
            }
        }
    } else {
        s.push_str(" (");
        for (i, g) in u.gaps.iter().enumerate() {
            if i > 0 {
                s.push_str("; ");
            }
            s.push_str(&g.message);
        }
        s.push(')');
    }
    s.push_str(", so finding nothing does not make it clean");
    s
}

fn unscanned_message(image: &str, why: &Unscanned) -> String {
    match why {
        Unscanned::Queued { digest, report } => format!(
            "image {image} ({}): not scanned yet; a scan is queued, retry in a minute (kubectl get isr {report} shows when it is done)",
            short_digest(digest),
        ),
        Unscanned::Failed {
            digest,
            report,
            message,
        } => format!(
            "image {image} ({}): the scan failed: {message}; the operator retries it (kubectl describe isr {report})",
            short_digest(digest),
        ),
        Unscanned::Unresolved(reason) => {
            format!("image {image}: cannot be scanned: {reason}")
        }
    }
}

/// `3s`, `500ms`, `1.5s`, `12h`, `7d`, `1h30m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let seconds = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86400.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(seconds).ok()?;
        rest = next;
    }
    Some(total)
}

#[cfg(test)]
mod tests;
