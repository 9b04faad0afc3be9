//! The background audit: the engine the webhook runs, over what already runs in the cluster.
//!
//! On every SecurityPolicy generation change and every interval, the audit lists pods and the
//! workload kinds, judges the top-level objects (a workload, or a pod no judged workload
//! owns, so one bad template is counted once), and writes:
//! - one `PolicyReport` per namespace (`palisade-<namespace>`): counts plus the most severe
//!   results, bounded in size;
//! - each SecurityPolicy's `status.violations` and `status.lastAuditTime`, under a field
//!   manager of its own ([`FIELD_MANAGER`]) so that server-side apply never removes the
//!   controller's `conditions`, `observedGeneration` or `enforced`, nor they these;
//! - `palisade_audit_violations{policy,rule}`;
//! - an Event on a policy whose violation count changed (at most one per policy per audit).
//!
//! Audit-mode policies surface only here. Judging ([`judge`]) and the report building
//! ([`build_reports`]) are pure; [`audit_once`] does the I/O around them and [`run`] loops.

mod api;
mod config;
mod findings;
mod judge;
/// The Policy WG's report types live with the other API types, so the node agent writes them too.
pub use palisade_crds::policy_report;
mod run;
mod trigger;

pub use api::{FIELD_MANAGER, MANAGED_BY, audit_once, ensure_crds};
pub use config::Config;
pub use findings::{
    CountChange, EVENT_REASON, Findings, SCAN_EVENT_REASON, SOURCE, announcement, build_reports,
    compliance_properties, count_changes, failing_changes, report_name, violation_result,
    waiver_result,
};
pub use judge::{
    Judged, KINDS, ScanAudit, compile_policies, compile_scan_policies, judge, judge_with_scans,
    top_level,
};
pub use run::run;
pub use trigger::generation_changed;
