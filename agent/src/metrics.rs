//! The agent's Prometheus metrics. Counts the sensor keeps in atomics are read at scrape
//! time (a collector), so the hot path never touches the registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::sensor::Stats;
use crate::sensor::record::Kind;

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DetectionLabels {
    rule: &'static str,
    priority: &'static str,
    /// `reported`, `killed`, `kill_failed` or `waived`.
    action: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SensorLabels {
    sensor: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutputLabels {
    output: &'static str,
}

/// The process table's fill, written by the thread that owns the table.
#[derive(Debug, Default)]
pub struct TableFill {
    pub entries: AtomicU64,
    pub capacity: AtomicU64,
    /// Events whose container stayed unknown past the wait.
    pub unattributed: AtomicU64,
}

/// Seconds from the system call to the Event's creation.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub struct Metrics {
    registry: Registry,
    detections: Family<DetectionLabels, Counter>,
    sensor: Family<SensorLabels, Gauge>,
    uncovered: Family<RuleLabels, Gauge>,
    output_dropped: Family<OutputLabels, Counter>,
    latency: Histogram,
    pub table: Arc<TableFill>,
}

impl Metrics {
    pub fn new(stats: Arc<Stats>) -> Metrics {
        let mut registry = Registry::with_prefix("palisade_agent");
        let detections = Family::<DetectionLabels, Counter>::default();
        registry.register(
            "detections",
            "Runtime rule detections, by rule, priority and what was done",
            detections.clone(),
        );
        let sensor = Family::<SensorLabels, Gauge>::default();
        registry.register(
            "sensor",
            "1 for the sensor running on this node: ebpf, or fallback (the process connector)",
            sensor.clone(),
        );
        let uncovered = Family::<RuleLabels, Gauge>::default();
        registry.register(
            "rule_uncovered",
            "1 for each selected rule the running sensor cannot see on this node",
            uncovered.clone(),
        );
        let output_dropped = Family::<OutputLabels, Counter>::default();
        registry.register(
            "output_dropped",
            "Detections not delivered to an output (events, reports) because its queue was full",
            output_dropped.clone(),
        );
        let latency = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "detection_latency_seconds",
            "From the system call to the Kubernetes Event about it",
            latency.clone(),
        );
        let table = Arc::new(TableFill::default());
        registry.register_collector(Box::new(SensorCollector {
            stats,
            table: table.clone(),
        }));
        Metrics {
            registry,
            detections,
            sensor,
            uncovered,
            output_dropped,
            latency,
            table,
        }
    }

    pub fn detection(&self, rule: &'static str, priority: &'static str, action: &'static str) {
        self.detections
            .get_or_create(&DetectionLabels {
                rule,
                priority,
                action,
            })
            .inc();
    }

    pub fn set_sensor(&self, sensor: &'static str) {
        self.sensor.clear();
        self.sensor.get_or_create(&SensorLabels { sensor }).set(1);
    }

    pub fn set_uncovered<'a>(&self, rules: impl IntoIterator<Item = &'a str>) {
        self.uncovered.clear();
        for rule in rules {
            self.uncovered
                .get_or_create(&RuleLabels { rule: rule.into() })
                .set(1);
        }
    }

    pub fn output_dropped(&self, output: &'static str) {
        self.output_dropped
            .get_or_create(&OutputLabels { output })
            .inc();
    }

    pub fn set_unattributed(&self, n: u64) {
        self.table.unattributed.store(n, Ordering::Relaxed);
    }

    pub fn latency(&self, seconds: f64) {
        self.latency.observe(seconds);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[derive(Debug)]
struct SensorCollector {
    stats: Arc<Stats>,
    table: Arc<TableFill>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WhereLabels {
    r#where: &'static str,
}

impl Collector for SensorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut records = encoder.encode_descriptor(
            "sensor_records",
            "Records the sensor delivered, by kind (exec, open, connect, ...)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for kind in Kind::ALL {
            ConstCounter::new(self.stats.received(kind)).encode(records.encode_family(
                &KindLabels {
                    kind: kind.as_str(),
                },
            )?)?;
        }
        let mut dropped = encoder.encode_descriptor(
            "sensor_dropped",
            "Records lost: in the kernel (ring buffer full) or in the agent (queue full)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (place, n) in [
            ("kernel", &self.stats.dropped_kernel),
            ("agent", &self.stats.dropped_agent),
        ] {
            ConstCounter::new(n.load(Ordering::Relaxed))
                .encode(dropped.encode_family(&WhereLabels { r#where: place })?)?;
        }
        ConstCounter::new(self.stats.undecodable.load(Ordering::Relaxed)).encode(
            encoder.encode_descriptor(
                "sensor_undecodable",
                "Records from the kernel the agent could not decode",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?,
        )?;
        ConstGauge::new(self.table.entries.load(Ordering::Relaxed) as i64).encode(
            encoder.encode_descriptor(
                "process_table_entries",
                "Processes in the agent's process table",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?,
        )?;
        ConstCounter::new(self.table.unattributed.load(Ordering::Relaxed)).encode(
            encoder.encode_descriptor(
                "events_unattributed",
                "Container events not judged: their container was not in any pod of this node within the wait",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?,
        )?;
        ConstGauge::new(self.table.capacity.load(Ordering::Relaxed) as i64).encode(
            encoder.encode_descriptor(
                "process_table_capacity",
                "The process table's fixed capacity",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sensor_counts_and_detections_render() {
        let stats = Arc::new(Stats::default());
        stats.dropped_kernel.store(3, Ordering::Relaxed);
        let m = Metrics::new(stats);
        m.table.entries.store(12, Ordering::Relaxed);
        m.table.capacity.store(32768, Ordering::Relaxed);
        m.set_sensor("ebpf");
        m.set_uncovered(["runtime.packetSocket"]);
        m.detection("runtime.terminalShell", "Notice", "reported");
        m.latency(0.02);
        let text = m.render();
        for line in [
            "palisade_agent_sensor_records_total{kind=\"exec\"} 0",
            "palisade_agent_sensor_dropped_total{where=\"kernel\"} 3",
            "palisade_agent_process_table_entries 12",
            "palisade_agent_process_table_capacity 32768",
            "palisade_agent_sensor{sensor=\"ebpf\"} 1",
            "palisade_agent_rule_uncovered{rule=\"runtime.packetSocket\"} 1",
            "palisade_agent_detections_total{rule=\"runtime.terminalShell\",priority=\"Notice\",action=\"reported\"} 1",
            "palisade_agent_detection_latency_seconds_count 1",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
    }
}
