//! The policies' runtime parts as one set the agent judges events with: which rules run for
//! an event, which policies select its pod, what their exceptions waive, and whether the
//! process is to be killed.

use k8s_openapi::jiff::Timestamp;
use palisade_crds::{RuntimeMode, SecurityPolicy};

use crate::decision::ExpiredException;
use crate::engine::{Applies, applies_to};
use crate::error::Error;
use crate::exceptions::Target;
use crate::policy::CompiledPolicy;
use crate::rule_id::RuleId;
use crate::runtime::{
    ClusterFacts, CompiledRuntime, Hook, HookSet, Interest, PodFacts, Priority, RuleSet,
    RuntimeEvent, RuntimeRule,
};

/// What happens to the process a detection is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Report it (Audit mode, or a rule not in `enforce`).
    Report,
    /// Report it and kill the process (Enforce mode, a rule in `enforce`).
    Kill,
    /// A current exception of the policy covers it: report it as waived, never kill.
    Waived {
        exception: String,
        owner: Option<String>,
        reason: Option<String>,
        expires: Option<Timestamp>,
    },
}

/// One rule of one policy matching one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The SecurityPolicy whose `spec.runtime` applied the rule.
    pub policy: String,
    pub rule: RuntimeRule,
    pub verdict: Verdict,
    /// The message: a sentence, then Falco-style `key=value` fields.
    pub output: String,
    /// An exception that covered this until it expired.
    pub expired_exception: Option<ExpiredException>,
}

impl Detection {
    /// The rule id, as exceptions, reports and docs/rules/ name it.
    pub fn rule_id(&self) -> RuleId {
        RuleId::Runtime(self.rule)
    }

    pub fn priority(&self) -> Priority {
        self.rule.priority()
    }
}

/// A policy with a `spec.runtime`.
#[derive(Debug, Clone)]
struct RuntimePolicy {
    policy: CompiledPolicy,
    runtime: CompiledRuntime,
}

/// The runtime parts of a set of policies, compiled for judging events.
#[derive(Debug, Clone, Default)]
pub struct RuntimePolicySet {
    /// In policy name order.
    policies: Vec<RuntimePolicy>,
    /// The rules any policy applies, by the hook of the event that can match them.
    by_hook: [RuleSet; Hook::ALL.len()],
    /// The rules any policy applies.
    selected: RuleSet,
}

impl RuntimePolicySet {
    /// Compile every policy at `now` (exception expiries judged from it); those with a
    /// `spec.runtime` form the set, the invalid ones come back as errors.
    pub fn compile(policies: &[SecurityPolicy], now: Timestamp) -> (RuntimePolicySet, Vec<Error>) {
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for p in policies {
            match CompiledPolicy::compile_at(p, now) {
                Ok(c) => ok.push(c),
                Err(e) => errors.push(e),
            }
        }
        (RuntimePolicySet::new(ok), errors)
    }

    /// The set of already compiled policies (those without `spec.runtime` are left out), as
    /// the webhook and operator hold them, generations in force included.
    pub fn new(policies: impl IntoIterator<Item = CompiledPolicy>) -> RuntimePolicySet {
        let mut set = RuntimePolicySet::default();
        for mut policy in policies {
            let Some(runtime) = policy.runtime.take() else {
                continue;
            };
            set.selected = set.selected.union(runtime.rules);
            set.policies.push(RuntimePolicy { policy, runtime });
        }
        set.policies
            .sort_by(|a, b| a.policy.name().cmp(b.policy.name()));
        for rule in set.selected.iter() {
            for hook in rule.hooks().iter() {
                set.by_hook[hook as usize].insert(rule);
            }
        }
        set
    }

    /// Whether no policy has runtime rules (the agent then needs no sensor at all).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Names of the policies with runtime rules, in order.
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.policy.name())
    }

    /// The rules any policy applies, in catalogue order.
    pub fn rules(&self) -> Vec<RuntimeRule> {
        self.selected.iter().collect()
    }

    /// The hooks the applied rules need.
    pub fn hooks(&self) -> HookSet {
        self.selected
            .iter()
            .map(RuntimeRule::hooks)
            .fold(HookSet::EMPTY, HookSet::union)
    }

    /// What the kernel pre-filter must let through (see [`Interest`]).
    pub fn interest(&self, cluster: &ClusterFacts) -> Interest {
        Interest::of(self.selected.iter(), cluster)
    }

    /// The applied rules a sensor with only `available` hooks cannot fully see (the fallback
    /// sensor offers [`HookSet::EXEC_ONLY`]), in catalogue order. A rule needing several
    /// hooks is listed when any is missing; [`RuntimeRule::hooks`] says which.
    pub fn uncovered(&self, available: HookSet) -> Vec<RuntimeRule> {
        self.selected
            .iter()
            .filter(|r| !r.hooks().is_subset(available))
            .collect()
    }

    /// Every detection of `event`, by a process of the container `pod` describes: one per
    /// policy selecting the pod and rule of that policy matching, in policy then catalogue
    /// order. Exceptions are judged at the event's time. Kill the process when any detection
    /// says [`Verdict::Kill`].
    ///
    /// Cheap when nothing matches, which is nearly always: only the rules that can match the
    /// event's kind run, each once whatever the number of policies, and nothing is
    /// allocated until one matches.
    pub fn judge(
        &self,
        event: &RuntimeEvent,
        pod: &PodFacts,
        cluster: &ClusterFacts,
    ) -> Vec<Detection> {
        let candidates = self.by_hook[Hook::of(&event.action) as usize];
        let matched: RuleSet = candidates
            .iter()
            .filter(|r| r.matches(event, pod, cluster))
            .collect();
        if matched.is_empty() {
            return Vec::new();
        }
        let now = i128::from(event.time_ns);
        let now = Timestamp::from_nanosecond(now).unwrap_or(Timestamp::UNIX_EPOCH);
        let mut outputs: Vec<(RuntimeRule, String)> = Vec::new();
        let mut detections = Vec::new();
        for p in &self.policies {
            let hits = matched.intersection(p.runtime.rules);
            if hits.is_empty() || !selects(&p.policy, pod) {
                continue;
            }
            for rule in hits.iter() {
                let text = match outputs.iter().find(|(r, _)| *r == rule) {
                    Some((_, text)) => text.clone(),
                    None => {
                        let text = rule.output(event, pod);
                        outputs.push((rule, text.clone()));
                        text
                    }
                };
                detections.push(detect(p, rule, pod, now, text));
            }
        }
        detections
    }
}

/// Whether the policy's `match`/`exclude` select the pod, exactly as at admission.
fn selects(policy: &CompiledPolicy, pod: &PodFacts) -> bool {
    applies_to(
        &policy.scope,
        &pod.namespace,
        Some(&pod.labels),
        Some(&pod.namespace_labels),
        false,
    ) == Applies::Yes
}

fn detect(
    p: &RuntimePolicy,
    rule: RuntimeRule,
    pod: &PodFacts,
    now: Timestamp,
    output: String,
) -> Detection {
    let mut expired = None;
    let mut waiver = None;
    if !p.policy.exceptions.is_empty() {
        let target = Target {
            rule: RuleId::Runtime(rule),
            namespace: &pod.namespace,
            service_account: &pod.service_account,
            labels: Some(&pod.labels),
            image: Some(&pod.image),
        };
        for e in p.policy.exceptions.iter().filter(|e| e.covers(&target)) {
            match e.expires {
                Some(at) if at <= now => {
                    expired.get_or_insert(ExpiredException {
                        name: e.name.clone(),
                        expired_at: at,
                    });
                }
                _ => {
                    waiver = Some(Verdict::Waived {
                        exception: e.name.clone(),
                        owner: e.owner.clone(),
                        reason: e.reason.clone(),
                        expires: e.expires,
                    });
                    break;
                }
            }
        }
    }
    let verdict = waiver.unwrap_or(
        if p.runtime.mode == RuntimeMode::Enforce && p.runtime.kill.contains(rule) {
            Verdict::Kill
        } else {
            Verdict::Report
        },
    );
    Detection {
        policy: p.policy.name().to_owned(),
        rule,
        expired_exception: if matches!(verdict, Verdict::Waived { .. }) {
            None
        } else {
            expired
        },
        verdict,
        output,
    }
}
