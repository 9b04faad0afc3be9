//! The field managers of Palisade's server-side apply writes, in one place so that no two
//! writers share one by accident.
//!
//! Server-side apply removes fields a manager stops sending, so every write under a name
//! carries all the fields that name owns; a writer of other fields of the same object (the
//! audit's status counts beside the controller's conditions) needs a name of its own.

/// The operator's controllers: policy status conditions, the webhook registration, the
/// certificate Secret, ImageScanReport status. Also the component named on its Events.
pub const OPERATOR: &str = "palisade-operator";

/// The operator's background audit: PolicyReports and the policies' audit counts.
pub const OPERATOR_AUDIT: &str = "palisade-operator-audit";

/// The node agent: its runtime PolicyReports and the coverage annotations on its own pod.
pub const AGENT: &str = "palisade-agent";

/// Every field manager above.
pub const ALL: &[&str] = &[OPERATOR, OPERATOR_AUDIT, AGENT];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writer_has_a_name_of_its_own() {
        let mut names = ALL.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
