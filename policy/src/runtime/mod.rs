//! Runtime rules: what a container process did, as the node sensor reports it
//! ([`RuntimeEvent`]), judged against Falco's stable rules (same names, same meanings) and
//! three of Palisade's own, as pure functions. The agent feeds events in; no I/O happens here.
//!
//! - [`RuntimeRule`] is the catalogue: id, name, priority, MITRE ATT&CK ids and the sensor
//!   hooks each rule needs.
//! - `RuntimePolicySet` (crate root) holds the `spec.runtime` of the SecurityPolicies in force and
//!   [`judges`](RuntimePolicySet::judge) one event of one pod ([`PodFacts`]) into
//!   [`Detection`]s: report, kill, or waived by an exception.
//! - [`Interest`] is what the kernel-side filter must let through for the applied rules, and
//!   [`RuntimePolicySet::uncovered`] what a sensor lacking some hooks cannot see.

mod catalogue;
mod compile;
pub mod event;
mod facts;
mod interest;
mod lists;
mod matching;
mod output;
#[cfg(test)]
mod tests;

pub use catalogue::{Hook, HookSet, Priority, RuntimeRule};
pub use compile::ENFORCE_ALL;
pub use event::{Action, Connect, Open, Process, PtraceRequest, RuntimeEvent, SocketPeer};
pub use facts::{ClusterFacts, PodFacts};
pub use interest::{Access, Interest, PathMatch, PathPattern};

pub(crate) use catalogue::RuleSet;
pub(crate) use compile::CompiledRuntime;

impl RuntimeRule {
    /// Whether the rule matches `event` of a process in `pod`, policies aside (what
    /// [`RuntimePolicySet::judge`] asks of every rule that can match the event's kind).
    pub fn matches(self, event: &RuntimeEvent, pod: &PodFacts, cluster: &ClusterFacts) -> bool {
        matching::matches(self, event, pod, cluster)
    }

    /// The detection message for `event` in `pod` (meaningful when the rule matches it).
    pub fn output(self, event: &RuntimeEvent, pod: &PodFacts) -> String {
        output::output(self, event, pod)
    }
}
