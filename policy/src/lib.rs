//! The admission decision, as pure functions: which policies apply to an object, what they
//! find, and the message a developer reads. No I/O happens here; the webhook and the CLI feed
//! it what they read from the API server or from files.
//!
//! The path of one request:
//! 1. [`ReviewTarget::from_request`] finds the pod spec the object carries (a Pod, the
//!    ephemeral containers sub-resource, or any workload's pod template), or says there is
//!    none or that an UPDATE leaves it unchanged; the webhook reads the common case straight
//!    from the body with [`PodRequest::from_json`];
//! 2. [`review`] runs every matching policy of a compiled [`PolicySet`] over it;
//! 3. the [`Decision`] says allowed or not, with one [`Violation`] per problem, and renders
//!    the denial text and the warnings.
//!
//! The node agent's path is [`runtime`]: a [`RuntimePolicySet`] judges what a container
//! process did against the policies' `spec.runtime`.

mod compliance;
mod decision;
mod engine;
mod error;
mod exceptions;
mod in_force;
mod load;
mod policy;
mod request;
mod rule_id;
mod rules;
pub mod runtime;
mod runtime_policy;
pub mod scan;
mod selector;
mod subject;
mod validate;

pub use compliance::{ComplianceRef, Framework, compliance_properties, refs as compliance_refs};
pub use decision::{
    DEFAULT_RULE_DOCS, Decision, ExpiredException, PolicyKind, RuleDocs, Skipped, Undecided,
    Violation, Waiver,
};
pub use engine::{Facts, review, review_request, review_request_keeping_subject, review_target};
pub use error::{Error, Problem};
pub use exceptions::{DEFAULT_MAX_EXCEPTION_DAYS, Waivers};
pub use in_force::{InForce, compile_in_force, object_error_message};
pub use load::{
    Document, enforced_generation, parse_documents, parse_policies, policy_from_document,
    policy_from_value,
};
pub use policy::{CompiledPolicy, PolicySet};
pub use request::{PodRequest, ReviewTarget};
pub use rule_id::RuleId;
pub use subject::{PodCarrier, Subject};
pub use validate::{KINDS as POLICY_KINDS, policy_problems};

pub use palisade_crds::{Mode, RuntimeMode, ScanPolicy, SecurityPolicy};
pub use palisade_pod_security::{ContainerKind, ContainerRef};
pub use runtime::{ClusterFacts, HookSet, Interest, PodFacts, RuntimeEvent, RuntimeRule};
pub use runtime_policy::{Detection, RuntimePolicySet, Verdict};
pub use scan::{CompiledScanPolicy, ImageTally, ScanPolicySet, review_scans, tally_scans};
