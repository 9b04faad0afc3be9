//! Where the policies in force come from: files read once at start-up, or the API server
//! through reflectors. Either way the hot path reads a compiled [`PolicySet`] from memory.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::core::{ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use palisade_policy::{PolicySet, SecurityPolicy};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::error::Error;
use crate::metrics::Metrics;

/// A policy generation that is not in force, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The SecurityPolicy's name (empty when it has none).
    pub policy: String,
    /// What is wrong, naming the field.
    pub message: String,
    /// The older, valid generation (`status.enforced`) enforced in its place, if any.
    pub in_force: Option<i64>,
}

/// One compiled generation of the policies.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub set: Arc<PolicySet>,
    /// Policies whose current generation is left out of `set` (some replaced by their last
    /// valid generation, see [`PolicyError::in_force`]).
    pub errors: Vec<PolicyError>,
    /// Increases with every published snapshot.
    pub revision: u64,
}

/// The policies in force and the namespace labels, shared by every request.
#[derive(Clone, Debug)]
pub struct PolicyStore {
    inner: Arc<Inner>,
    /// Reads a namespace the watch has not delivered yet.
    reader: Option<NamespaceReader>,
}

/// How long a namespace read on a cache miss may take by default: well inside the webhook's
/// timeout, with room left for the rest of the decision.
pub const DEFAULT_NAMESPACE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads one namespace's labels from the API server, within a time limit.
#[derive(Clone)]
pub struct NamespaceReader {
    api: Api<Namespace>,
    timeout: Duration,
}

impl std::fmt::Debug for NamespaceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceReader")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl NamespaceReader {
    pub fn new(client: Client, timeout: Duration) -> NamespaceReader {
        NamespaceReader {
            api: Api::all(client),
            timeout,
        }
    }
}

/// What is known of a request's namespace.
#[derive(Debug, Clone)]
pub enum NamespaceLookup {
    /// From the watch, or read from the API server on a miss.
    Known(Arc<PartialObjectMeta<Namespace>>),
    /// Namespaces are not watched (policies from files): judge by name only.
    NotWatched,
    /// Needed, but neither in the cache nor readable in time; says why.
    Unreadable(String),
}

#[derive(Debug)]
struct Inner {
    // A watch channel doubles as the swap cell (readers clone the Arc under a short read
    // lock) and as the subscription point for anything that reports on policies.
    snapshot: watch::Sender<Arc<Snapshot>>,
    namespaces: Option<Store<PartialObjectMeta<Namespace>>>,
    ready: AtomicBool,
    metrics: Arc<Metrics>,
}

impl PolicyStore {
    /// A store that never changes: policies from files, or from a test.
    /// Namespace labels are unknown; the engine still provides `kubernetes.io/metadata.name`.
    pub fn fixed(set: PolicySet, metrics: Arc<Metrics>) -> PolicyStore {
        metrics.set_policies(set.len(), 0);
        let snapshot = Snapshot {
            set: Arc::new(set),
            errors: Vec::new(),
            revision: 1,
        };
        PolicyStore {
            inner: Arc::new(Inner {
                snapshot: watch::Sender::new(Arc::new(snapshot)),
                namespaces: None,
                ready: AtomicBool::new(true),
                metrics,
            }),
            reader: None,
        }
    }

    /// Read namespaces missing from the cache through `reader` (every namespace, when there
    /// is no watch).
    pub fn with_namespace_reader(mut self, reader: NamespaceReader) -> PolicyStore {
        self.reader = Some(reader);
        self
    }

    /// A store fed by the caller through [`publish`](Self::publish); not ready until
    /// [`set_ready`](Self::set_ready). For embedding the webhook behind another source.
    pub fn pending(metrics: Arc<Metrics>) -> PolicyStore {
        PolicyStore {
            inner: Arc::new(Inner {
                snapshot: watch::Sender::new(Arc::new(Snapshot::default())),
                namespaces: None,
                ready: AtomicBool::new(false),
                metrics,
            }),
            reader: None,
        }
    }

    /// Read `--policy-file`s and every `*.yaml`, `*.yml` and `*.json` in `--policy-dir`s.
    /// Any error stops start-up: a policy file is meant to be complete and correct.
    pub fn from_files(
        files: &[PathBuf],
        dirs: &[PathBuf],
        metrics: Arc<Metrics>,
    ) -> Result<PolicyStore, Error> {
        Ok(PolicyStore::fixed(load_files(files, dirs)?, metrics))
    }

    /// Policies and namespace labels from the API server. The store is ready once both
    /// reflectors have listed everything; the returned future drives them and never ends.
    pub fn from_cluster(
        client: Client,
        metrics: Arc<Metrics>,
    ) -> (PolicyStore, impl Future<Output = ()> + Send + 'static) {
        // SecurityPolicies are read as untyped objects and converted one by one, so a single
        // object this version cannot read (say, from a newer CRD) is reported and left out
        // instead of failing the whole list and keeping the webhook unready.
        let resource = ApiResource::erase::<SecurityPolicy>(&());
        let policies_api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let policies_writer = reflector::store::Writer::<DynamicObject>::new(resource);
        let policies = policies_writer.as_reader();
        let namespaces_api = Api::<PartialObjectMeta<Namespace>>::all(client.clone());
        let (namespaces, namespaces_writer) = reflector::store();

        let store = PolicyStore {
            inner: Arc::new(Inner {
                snapshot: watch::Sender::new(Arc::new(Snapshot::default())),
                namespaces: Some(namespaces.clone()),
                ready: AtomicBool::new(false),
                metrics,
            }),
            reader: Some(NamespaceReader::new(client, DEFAULT_NAMESPACE_READ_TIMEOUT)),
        };

        // Fires once the first full list is compiled and in force. The reflector's own
        // readiness is no substitute: it turns before the event reaches the compile below.
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel::<()>();
        let policy_events = {
            let store = store.clone();
            let mut synced_tx = Some(synced_tx);
            let mut seen: Option<Fingerprint> = None;
            watcher(policies_api, watcher::Config::default())
                .default_backoff()
                .reflect(policies_writer)
                .for_each(move |event| {
                    match event {
                        Ok(
                            ref e @ (watcher::Event::InitDone
                            | watcher::Event::Apply(_)
                            | watcher::Event::Delete(_)),
                        ) => {
                            let objects = policies.state();
                            let fingerprint = Fingerprint::of(&objects);
                            // Status writes change no generation: nothing to recompile.
                            if seen.as_ref() != Some(&fingerprint) {
                                store.publish(compile_objects(&objects));
                                seen = Some(fingerprint);
                            }
                            if matches!(e, watcher::Event::InitDone)
                                && let Some(tx) = synced_tx.take()
                            {
                                let _ = tx.send(());
                            }
                        }
                        Ok(_) => {}
                        Err(e) => warn!(error = %crate::error::report(&e), "SecurityPolicy watch failed; retrying"),
                    }
                    futures::future::ready(())
                })
        };
        let namespace_events = watcher(namespaces_api, watcher::Config::default())
            .default_backoff()
            // Only labels are used; dropping the rest keeps big clusters cheap to mirror.
            .modify(|ns| {
                ns.metadata.managed_fields = None;
                ns.metadata.annotations = None;
            })
            .reflect(namespaces_writer)
            .for_each(|event| {
                if let Err(e) = event {
                    warn!(error = %crate::error::report(&e), "Namespace watch failed; retrying");
                }
                futures::future::ready(())
            });
        let readiness = {
            let store = store.clone();
            async move {
                let (p, n) = tokio::join!(synced_rx, namespaces.wait_until_ready());
                if p.is_ok() && n.is_ok() {
                    info!(
                        policies = store.current().len(),
                        namespaces = namespaces.len(),
                        "SecurityPolicies and Namespaces synced; ready"
                    );
                    store.set_ready();
                }
            }
        };
        let driver = async move {
            tokio::join!(policy_events, namespace_events, readiness);
        };
        (store, driver)
    }

    /// The policies in force now.
    pub fn current(&self) -> Arc<PolicySet> {
        Arc::clone(&self.inner.snapshot.borrow().set)
    }

    /// The current snapshot, with the policies left out and why.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.inner.snapshot.borrow())
    }

    /// Be told of every new snapshot. This is the hook for reporting invalid policies
    /// (e.g. on the SecurityPolicy status).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.snapshot.subscribe()
    }

    /// The labels of a namespace, when known. `None` in file mode and for a namespace the
    /// reflector has not seen yet; the engine then uses only `kubernetes.io/metadata.name`.
    pub fn namespace(&self, name: &str) -> Option<Arc<PartialObjectMeta<Namespace>>> {
        self.inner
            .namespaces
            .as_ref()
            .and_then(|s| s.get(&ObjectRef::new(name)))
    }

    /// A namespace's labels: from the watch, else (a namespace created a moment ago, or
    /// while the watch re-establishes) read from the API server within the reader's time
    /// limit. Never "no labels" for a namespace that may have some.
    pub async fn namespace_lookup(&self, name: &str) -> NamespaceLookup {
        if let Some(ns) = self.namespace(name) {
            return NamespaceLookup::Known(ns);
        }
        let Some(reader) = &self.reader else {
            return NamespaceLookup::NotWatched;
        };
        let read = tokio::time::timeout(reader.timeout, reader.api.get_metadata_opt(name)).await;
        let result = match read {
            Ok(Ok(Some(ns))) => {
                self.inner.metrics.namespace_read("found");
                return NamespaceLookup::Known(Arc::new(ns));
            }
            Ok(Ok(None)) => format!("namespace {name:?} does not exist"),
            Ok(Err(e)) => format!(
                "reading namespace {name:?} failed: {}",
                crate::error::report(&e)
            ),
            Err(_) => format!(
                "the API server did not answer within {} ms",
                reader.timeout.as_millis()
            ),
        };
        self.inner.metrics.namespace_read("unreadable");
        warn!(namespace = name, error = %result, "namespace labels unknown");
        NamespaceLookup::Unreadable(result)
    }

    /// True once everything needed for a decision is in memory.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Declare everything needed for a decision loaded.
    pub fn set_ready(&self) {
        self.inner.ready.store(true, Ordering::Release);
    }

    /// Put a new generation in force.
    pub fn publish(&self, compiled: Compiled) {
        let Compiled { set, errors } = compiled;
        self.inner.metrics.set_policies(set.len(), errors.len());
        for e in &errors {
            match e.in_force {
                Some(generation) => warn!(
                    policy = %e.policy,
                    error = %e.message,
                    enforced_generation = generation,
                    "SecurityPolicy's current generation is invalid; its last valid generation stays in force"
                ),
                None => warn!(policy = %e.policy, error = %e.message, "SecurityPolicy left out"),
            }
        }
        self.inner.snapshot.send_modify(|current| {
            *current = Arc::new(Snapshot {
                set: Arc::new(set),
                errors,
                revision: current.revision + 1,
            });
        });
        let s = self.snapshot();
        info!(
            revision = s.revision,
            policies = s.set.len(),
            invalid = s.errors.len(),
            "policies compiled"
        );
    }
}

/// The valid policies of one generation and the problems of the others.
#[derive(Debug, Default)]
pub struct Compiled {
    pub set: PolicySet,
    pub errors: Vec<PolicyError>,
}

/// Compile the SecurityPolicies of the API server. Invalid ones are left out, except that a
/// policy whose current generation is invalid keeps its last valid generation in force: the
/// spec the operator recorded in `status.enforced`. An invalid update never silently drops
/// enforcement.
pub fn compile_objects(objects: &[Arc<DynamicObject>]) -> Compiled {
    let mut policies = Vec::with_capacity(objects.len());
    let mut errors = Vec::new();
    for obj in objects {
        let value = match serde_json::to_value(obj.as_ref()) {
            Ok(v) => v,
            Err(e) => {
                errors.push(PolicyError {
                    policy: obj.name_any(),
                    message: e.to_string(),
                    in_force: None,
                });
                continue;
            }
        };
        let in_force = palisade_policy::compile_in_force(&value, Timestamp::now());
        policies.extend(in_force.policy);
        if let Some(message) = in_force.problem {
            errors.push(PolicyError {
                policy: obj.name_any(),
                message,
                in_force: in_force.fallback_generation,
            });
        }
    }
    Compiled {
        set: PolicySet::new(policies),
        errors,
    }
}

/// What makes two reflector states compile to the same set: each policy's generation, and
/// the generation recorded in `status.enforced` (the fallback for an invalid one).
#[derive(Debug, Default, PartialEq, Eq)]
struct Fingerprint(Vec<PolicyVersion>);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PolicyVersion {
    name: String,
    uid: Option<String>,
    generation: Option<i64>,
    enforced: Option<i64>,
}

impl Fingerprint {
    fn of(objects: &[Arc<DynamicObject>]) -> Fingerprint {
        let mut v: Vec<_> = objects
            .iter()
            .map(|o| PolicyVersion {
                name: o.name_any(),
                uid: o.metadata.uid.clone(),
                generation: o.metadata.generation,
                enforced: o
                    .data
                    .pointer("/status/enforced/generation")
                    .and_then(|g| g.as_i64()),
            })
            .collect();
        v.sort();
        Fingerprint(v)
    }
}

/// Read and compile policy files. Every error names the file; the engine's error names the
/// document and the field.
pub fn load_files(files: &[PathBuf], dirs: &[PathBuf]) -> Result<PolicySet, Error> {
    let mut paths = files.to_vec();
    for dir in dirs {
        paths.extend(policy_files_in(dir)?);
    }
    let mut compiled = Vec::new();
    let mut defined_in: HashMap<String, PathBuf> = HashMap::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let policy_error = |source| Error::PolicyFile {
            path: path.clone(),
            source,
        };
        for policy in palisade_policy::parse_policies(&text).map_err(policy_error)? {
            let c = palisade_policy::CompiledPolicy::compile(&policy).map_err(policy_error)?;
            if let Some(first) = defined_in.insert(c.name().to_owned(), path.clone()) {
                return Err(Error::DuplicatePolicy {
                    name: c.name().to_owned(),
                    path: path.clone(),
                    first,
                });
            }
            compiled.push(c);
        }
    }
    if compiled.is_empty() {
        warn!(files = ?paths, "no SecurityPolicy in the policy files: every request is admitted");
    }
    Ok(PolicySet::new(compiled))
}

/// The policy files directly in `dir`, in name order. Hidden entries are skipped: a mounted
/// ConfigMap keeps its real files under `..data` and timestamped `..2024_…` folders.
fn policy_files_in(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read_error = |source| Error::Read {
        path: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let wanted = !name.starts_with('.')
            && [".yaml", ".yml", ".json"]
                .iter()
                .any(|ext| name.ends_with(ext));
        // `metadata` follows symlinks, as ConfigMap volumes use them.
        if wanted && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Labels of a namespace as the engine wants them.
pub fn labels(ns: &PartialObjectMeta<Namespace>) -> Option<&BTreeMap<String, String>> {
    ns.metadata.labels.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: serde_json::Value) -> Arc<DynamicObject> {
        Arc::new(serde_json::from_value(v).expect("a Kubernetes object"))
    }

    fn policy(name: &str, generation: i64, spec: serde_json::Value) -> Arc<DynamicObject> {
        object(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1",
            "kind": "SecurityPolicy",
            "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": generation},
            "spec": spec,
            "status": {"observedGeneration": generation}
        }))
    }

    #[test]
    fn invalid_cluster_policies_are_left_out_and_named() {
        let objects = [
            policy("good", 1, serde_json::json!({"privileged": "Deny"})),
            policy("bad-enum", 1, serde_json::json!({"mode": "Enforced"})),
            policy(
                "bad-cap",
                3,
                serde_json::json!({"capabilities": {"allowed": ["CAP_SYS_ADMIN"]}}),
            ),
        ];
        let compiled = compile_objects(&objects);
        let names: Vec<_> = compiled.set.policies().iter().map(|p| p.name()).collect();
        assert_eq!(names, ["good"]);
        let mut errors = compiled.errors;
        errors.sort_by(|a, b| a.policy.cmp(&b.policy));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].policy, "bad-cap");
        assert!(
            errors[0].message.starts_with("spec.capabilities.allowed"),
            "{errors:?}"
        );
        assert_eq!(errors[1].policy, "bad-enum");
        assert!(
            errors[1].message.starts_with("field spec.mode: "),
            "{errors:?}"
        );
    }

    fn policy_with_enforced(
        name: &str,
        generation: i64,
        spec: serde_json::Value,
        enforced_generation: i64,
        enforced_spec: serde_json::Value,
    ) -> Arc<DynamicObject> {
        object(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1",
            "kind": "SecurityPolicy",
            "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": generation},
            "spec": spec,
            "status": {
                "observedGeneration": generation,
                "enforced": {"generation": enforced_generation, "spec": enforced_spec}
            }
        }))
    }

    fn privileged_pod_denied(set: &PolicySet) -> bool {
        let pod: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25",
                "securityContext": {"privileged": true}}]}
        }))
        .expect("a pod");
        let subject = palisade_policy::Subject::from_manifest(&pod, "default")
            .expect("readable")
            .expect("a pod carrier");
        let facts = palisade_policy::Facts::new(None, k8s_openapi::jiff::Timestamp::now());
        !palisade_policy::review(set, &subject, &facts).allowed()
    }

    #[test]
    fn an_invalid_generation_keeps_the_enforced_one_in_force() {
        let objects = [policy_with_enforced(
            "strict",
            3,
            // Generation 3 waives a rule that does not exist: invalid.
            serde_json::json!({"privileged": "Deny",
                "exceptions": [{"name": "x", "rules": ["noSuchRule"]}]}),
            2,
            serde_json::json!({"privileged": "Deny"}),
        )];
        let compiled = compile_objects(&objects);
        assert_eq!(compiled.set.len(), 1, "{:?}", compiled.errors);
        assert_eq!(compiled.set.policies()[0].name(), "strict");
        assert_eq!(compiled.set.policies()[0].generation(), Some(2));
        assert_eq!(compiled.errors.len(), 1);
        assert_eq!(compiled.errors[0].in_force, Some(2));
        assert!(
            compiled.errors[0]
                .message
                .contains("spec.exceptions[0].rules"),
            "{:?}",
            compiled.errors
        );
        assert!(privileged_pod_denied(&compiled.set));
    }

    #[test]
    fn an_unreadable_generation_keeps_the_enforced_one_in_force() {
        let objects = [policy_with_enforced(
            "strict",
            5,
            serde_json::json!({"mode": "Enforced", "privileged": "Deny"}),
            4,
            serde_json::json!({"privileged": "Deny"}),
        )];
        let compiled = compile_objects(&objects);
        assert_eq!(
            compiled.errors[0].in_force,
            Some(4),
            "{:?}",
            compiled.errors
        );
        assert!(privileged_pod_denied(&compiled.set));
    }

    #[test]
    fn the_enforced_spec_is_used_only_for_an_older_generation_and_when_needed() {
        // Valid current generation: it wins over the recorded one.
        let valid = [policy_with_enforced(
            "p",
            2,
            serde_json::json!({"mode": "Audit", "privileged": "Deny"}),
            1,
            serde_json::json!({"privileged": "Deny"}),
        )];
        let compiled = compile_objects(&valid);
        assert!(compiled.errors.is_empty());
        assert_eq!(compiled.set.policies()[0].generation(), Some(2));
        assert!(!privileged_pod_denied(&compiled.set), "Audit mode admits");

        // A recorded generation that is not older is no fallback.
        let same = [policy_with_enforced(
            "p",
            2,
            serde_json::json!({"mode": "Sometimes"}),
            2,
            serde_json::json!({"privileged": "Deny"}),
        )];
        let compiled = compile_objects(&same);
        assert!(compiled.set.is_empty());
        assert_eq!(compiled.errors[0].in_force, None);
    }

    #[test]
    fn a_new_enforced_generation_triggers_a_recompile() {
        let spec = serde_json::json!({"mode": "Sometimes"});
        let a = [policy("p", 2, spec.clone())];
        let b = [policy_with_enforced("p", 2, spec, 1, serde_json::json!({}))];
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
    }

    #[test]
    fn list_items_without_type_information_are_read() {
        let mut obj = (*policy("bare", 1, serde_json::json!({"privileged": "Deny"}))).clone();
        obj.types = None;
        let compiled = compile_objects(&[Arc::new(obj)]);
        assert!(compiled.errors.is_empty(), "{:?}", compiled.errors);
        assert_eq!(compiled.set.len(), 1);
    }

    #[test]
    fn only_generation_changes_trigger_a_recompile() {
        let a = [policy("p", 1, serde_json::json!({}))];
        let mut status_only = (*a[0]).clone();
        status_only.metadata.resource_version = Some("999".into());
        status_only.data["status"] = serde_json::json!({"observedGeneration": 1, "conditions": []});
        assert_eq!(
            Fingerprint::of(&a),
            Fingerprint::of(&[Arc::new(status_only)])
        );
        assert_ne!(
            Fingerprint::of(&a),
            Fingerprint::of(&[policy("p", 2, serde_json::json!({}))])
        );
    }

    #[test]
    fn publishing_updates_subscribers_and_metrics() {
        let metrics = Arc::new(Metrics::new());
        let store = PolicyStore::fixed(PolicySet::default(), metrics.clone());
        let mut rx = store.subscribe();
        store.publish(compile_objects(&[
            policy("a", 1, serde_json::json!({"privileged": "Deny"})),
            policy("b", 1, serde_json::json!({"mode": "Sometimes"})),
        ]));
        assert!(rx.has_changed().expect("sender alive"));
        let snap = rx.borrow_and_update().clone();
        assert_eq!(
            (snap.set.len(), snap.errors.len(), snap.revision),
            (1, 1, 2)
        );
        assert_eq!(store.current().len(), 1);
        let text = metrics.encode().expect("metrics");
        assert!(text.contains("palisade_policies_loaded 1"), "{text}");
        assert!(text.contains("palisade_policy_errors 1"), "{text}");
    }
}
