//! From kernel records to detections: the process table describes the process, the pod
//! index says which pod and container it runs in, and the SecurityPolicies' runtime rules
//! judge it. Pure: the run loop (`pipeline`) does the I/O around it.
//!
//! A process in a container the index does not know yet (its pod's status is written a
//! moment after the container starts) is held for a short while and judged once the
//! container is known; past the wait it is counted as unattributed, never judged as if it
//! were in no pod.

use std::collections::VecDeque;
use std::sync::Arc;

use palisade_policy::{ClusterFacts, Detection, RuntimeEvent, RuntimePolicySet};

use crate::pods::{Index, Known};
use crate::process_table::{BootClock, ProcessTable, written_after_start};
use crate::sensor::record::Record;

/// What the judging reads: swapped whole when policies, pods or cluster facts change.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub policies: Arc<RuntimePolicySet>,
    pub index: Arc<Index>,
    pub cluster: Arc<ClusterFacts>,
    /// What a container the index does not know is judged as, instead of waiting for it
    /// (`--standalone`, where no pod is ever known).
    pub any_container: Option<Arc<Known>>,
}

impl Snapshot {
    fn container(&self, id: &str) -> Option<&Arc<Known>> {
        self.index.get(id).or(self.any_container.as_ref())
    }
}

/// One event that some rule matched, with every detection of it.
#[derive(Clone, Debug)]
pub struct Found {
    pub event: RuntimeEvent,
    /// The process's start on the boot clock, as /proc has it: pins the process for a kill.
    pub start_boot_ns: u64,
    pub container: Arc<Known>,
    pub detections: Vec<Detection>,
}

pub struct Detector {
    table: ProcessTable,
    pending: VecDeque<(u64, u64, RuntimeEvent)>,
    max_pending: usize,
    wait_ns: u64,
    /// Events dropped because their container stayed unknown (or the wait queue was full).
    pub unattributed: u64,
}

impl Detector {
    /// `capacity` bounds the process table, `max_pending` the events waiting for their
    /// container, `wait_ns` how long one waits.
    pub fn new(capacity: usize, max_pending: usize, wait_ns: u64) -> Detector {
        Detector::with_table(ProcessTable::new(capacity), max_pending, wait_ns)
    }

    pub fn with_table(table: ProcessTable, max_pending: usize, wait_ns: u64) -> Detector {
        Detector {
            table,
            pending: VecDeque::new(),
            max_pending,
            wait_ns,
            unattributed: 0,
        }
    }

    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    pub fn table_mut(&mut self) -> &mut ProcessTable {
        &mut self.table
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Judges one record. `now_ns` is the boot-clock time, for the wait of unknown
    /// containers.
    pub fn handle(
        &mut self,
        record: &Record,
        clock: BootClock,
        now_ns: u64,
        snapshot: &Snapshot,
    ) -> Option<Found> {
        self.table.observe(record);
        if snapshot.policies.is_empty() {
            return None;
        }
        let index = &snapshot.index;
        let event = self.table.event(record, clock, |id| {
            index.get(id).and_then(|k| k.info.started_ns)
        })?;
        let start = record.header().start_ns;
        match snapshot.container(&event.process.container_id) {
            Some(known) => judge(event, start, known.clone(), snapshot),
            None => {
                if self.pending.len() >= self.max_pending {
                    self.pending.pop_front();
                    self.unattributed += 1;
                }
                self.pending
                    .push_back((now_ns + self.wait_ns, start, event));
                None
            }
        }
    }

    /// Judges the waiting events whose container is now known, and drops those whose wait
    /// is over.
    pub fn retry(&mut self, now_ns: u64, snapshot: &Snapshot) -> Vec<Found> {
        let mut found = Vec::new();
        let mut still = VecDeque::with_capacity(self.pending.len());
        for (deadline, start, mut event) in self.pending.drain(..) {
            match snapshot.container(&event.process.container_id) {
                Some(known) => {
                    // Only now is the container's start time known.
                    if let (Some(started), Some(entry)) =
                        (known.info.started_ns, self.table.get(event.process.pid))
                    {
                        event.process.exe_written_after_start =
                            written_after_start(entry.exe_ctime_ns, started);
                    }
                    found.extend(judge(event, start, known.clone(), snapshot));
                }
                None if deadline <= now_ns => self.unattributed += 1,
                None => still.push_back((deadline, start, event)),
            }
        }
        self.pending = still;
        found
    }
}

fn judge(
    event: RuntimeEvent,
    start_boot_ns: u64,
    container: Arc<Known>,
    snapshot: &Snapshot,
) -> Option<Found> {
    let detections = snapshot
        .policies
        .judge(&event, &container.facts, &snapshot.cluster);
    (!detections.is_empty()).then_some(Found {
        event,
        start_boot_ns,
        container,
        detections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::ContainerInfo;
    use crate::sensor::record::Header;
    use palisade_policy::{SecurityPolicy, Verdict};

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn policies(yaml: &str) -> Arc<RuntimePolicySet> {
        let p: SecurityPolicy = serde_saphyr::from_str(yaml).expect("a policy");
        let now = k8s_openapi::jiff::Timestamp::UNIX_EPOCH;
        let (set, errors) = RuntimePolicySet::compile(&[p], now);
        assert!(errors.is_empty(), "{errors:?}");
        Arc::new(set)
    }

    fn snapshot(with_container: bool) -> Snapshot {
        let mut index = Index::new();
        if with_container {
            let info = ContainerInfo {
                namespace: "shop".into(),
                pod_name: "web-1".into(),
                container_name: "app".into(),
                image: "docker.io/library/nginx:1.25".into(),
                started_ns: Some(1),
                ..ContainerInfo::default()
            };
            let facts = palisade_policy::PodFacts {
                namespace: "shop".into(),
                pod_name: "web-1".into(),
                container_name: "app".into(),
                image: info.image.clone(),
                service_account: "default".into(),
                ..palisade_policy::PodFacts::default()
            };
            index.insert(ID.into(), Arc::new(Known { info, facts }));
        }
        Snapshot {
            policies: policies(
                "apiVersion: palisade.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {name: runtime}\nspec:\n  runtime: {mode: Audit}\n",
            ),
            index: Arc::new(index),
            cluster: Arc::new(ClusterFacts::default()),
            any_container: None,
        }
    }

    fn shell_exec(pid: u32) -> Record {
        Record::Exec {
            header: Header {
                time_ns: 100,
                start_ns: 90,
                pid,
                tid: pid,
                ppid: 10,
                vpid: 5,
                tty: 34816,
                mnt_ns: 2,
                parent_mnt_ns: 1,
                comm: "bash".into(),
                cgroup_v1: format!("cri-containerd-{ID}.scope"),
                ..Header::default()
            },
            exe_ctime_ns: 0,
            from_memfd: false,
            filename: "/bin/bash".into(),
            exe: "/bin/bash".into(),
            argv: vec!["bash".into()],
        }
    }

    #[test]
    fn a_terminal_shell_in_a_known_container_is_detected() {
        let mut d = Detector::new(64, 8, 1_000);
        let found = d
            .handle(&shell_exec(100), BootClock::default(), 0, &snapshot(true))
            .expect("a detection");
        assert_eq!(found.container.info.pod_name, "web-1");
        let rules: Vec<&str> = found.detections.iter().map(|x| x.rule.id()).collect();
        assert!(rules.contains(&"runtime.terminalShell"), "{rules:?}");
        assert!(
            found
                .detections
                .iter()
                .all(|x| x.verdict == Verdict::Report)
        );
    }

    #[test]
    fn an_unknown_container_waits_then_is_judged_or_dropped() {
        let mut d = Detector::new(64, 8, 1_000);
        assert!(
            d.handle(&shell_exec(100), BootClock::default(), 0, &snapshot(false))
                .is_none()
        );
        assert_eq!(d.pending(), 1);
        assert!(d.retry(500, &snapshot(false)).is_empty(), "still waiting");
        let found = d.retry(600, &snapshot(true));
        assert_eq!(found.len(), 1, "judged once its pod is known");
        assert_eq!(d.pending(), 0);

        d.handle(&shell_exec(101), BootClock::default(), 0, &snapshot(false));
        assert!(d.retry(1_000, &snapshot(false)).is_empty());
        assert_eq!(
            (d.pending(), d.unattributed),
            (0, 1),
            "dropped after the wait, counted"
        );
    }

    #[test]
    fn no_runtime_policy_judges_nothing_but_the_table_still_learns() {
        let mut d = Detector::new(64, 8, 1_000);
        let empty = Snapshot::default();
        assert!(
            d.handle(&shell_exec(100), BootClock::default(), 0, &empty)
                .is_none()
        );
        assert_eq!(d.pending(), 0);
        assert!(d.table().get(100).is_some());
    }
}
