//! The async side of the outputs: notices from the pipeline become Events (throttled per
//! rule and container), and feed the PolicyReports.

use std::sync::Arc;
use std::time::Duration;

use hashlink::LruCache;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use palisade_crds::policy_report::PolicyReport;
use tokio::sync::mpsc;
use tracing::warn;

use super::events::{Notice, publish};
use super::reports::{MANAGED_BY, NODE_LABEL, Reports, Seen, label_value, report_name};
use super::throttle::{Key, Throttle, Verdict};
use crate::metrics::Metrics;
use crate::sensor::epoch_ns;
use crate::status::FIELD_MANAGER;

pub struct EventSettings {
    /// Repeats within this window are counted and published together when it ends.
    pub window: Duration,
    /// (rule, container) pairs remembered.
    pub capacity: usize,
    /// `reportingInstance`: the agent's pod.
    pub instance: String,
}

/// Publishes Events until the pipeline's side of `notices` closes.
pub async fn run_events(
    client: Client,
    settings: EventSettings,
    mut notices: mpsc::Receiver<Notice>,
    metrics: Arc<Metrics>,
) {
    let window_ns = settings.window.as_nanos() as u64;
    let mut throttle = Throttle::new(window_ns, settings.capacity);
    let mut held: LruCache<Key, Notice> = LruCache::new(settings.capacity.max(1));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            notice = notices.recv() => {
                let Some(notice) = notice else { return };
                let key = Key { rule: notice.rule_id, container_id: notice.container_id.clone() };
                match throttle.observe(key.clone(), epoch_ns()) {
                    Verdict::Publish { total } => {
                        send(&client, &notice, total, &settings.instance, &metrics).await;
                        held.remove(&key);
                    }
                    Verdict::Held => {
                        held.insert(key, notice);
                    }
                }
            }
            _ = tick.tick() => {
                for (key, total) in throttle.due(epoch_ns()) {
                    if let Some(notice) = held.remove(&key) {
                        send(&client, &notice, total, &settings.instance, &metrics).await;
                    }
                }
            }
        }
    }
}

async fn send(client: &Client, notice: &Notice, total: u64, instance: &str, metrics: &Metrics) {
    match publish(client, notice, total, instance).await {
        Ok(()) => {
            if total <= 1 {
                let seconds = epoch_ns().saturating_sub(notice.time_ns) as f64 / 1e9;
                metrics.latency(seconds);
            }
        }
        Err(e) => {
            metrics.output_dropped("events");
            warn!(
                error = %e,
                rule = notice.rule_id,
                pod = %format!("{}/{}", notice.container.namespace, notice.container.pod_name),
                "could not publish a detection Event"
            );
        }
    }
}

/// Report settings.
pub struct ReportSettings {
    pub node: String,
    pub max_results: usize,
    pub retention: Duration,
    /// How often changed reports are written.
    pub interval: Duration,
}

/// Keeps this node's runtime PolicyReports: restores what earlier runs wrote, records every
/// detection, writes changed reports every `interval` and expires old results.
pub async fn run_reports(
    client: Client,
    settings: ReportSettings,
    mut seen: mpsc::Receiver<Seen>,
    metrics: Arc<Metrics>,
) {
    let mut reports = Reports::new(
        &settings.node,
        settings.max_results,
        settings.retention.as_nanos() as u64,
    );
    let all = Api::<PolicyReport>::all(client.clone());
    let selector = format!(
        "{}={},{}={}",
        MANAGED_BY.0,
        MANAGED_BY.1,
        NODE_LABEL,
        label_value(&settings.node)
    );
    match all.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => {
            for report in &list.items {
                reports.restore(report);
            }
        }
        Err(e) => {
            warn!(error = %e, "could not read this node's earlier runtime reports; starting afresh")
        }
    }
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            s = seen.recv() => {
                let Some(s) = s else { return };
                reports.record(&s);
            }
            _ = tick.tick() => {
                reports.expire(epoch_ns());
                for namespace in reports.take_dirty() {
                    let api = Api::<PolicyReport>::namespaced(client.clone(), &namespace);
                    let name = report_name(&settings.node);
                    let result = match reports.report(&namespace) {
                        Some(report) => api
                            .patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&report))
                            .await
                            .map(|_| ()),
                        None => match api.delete(&name, &DeleteParams::default()).await {
                            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                            other => other.map(|_| ()),
                        },
                    };
                    if let Err(e) = result {
                        metrics.output_dropped("reports");
                        warn!(error = %e, namespace = %namespace, "could not write the runtime PolicyReport");
                    }
                }
            }
        }
    }
}
