//! The contract between a binary's metrics and the chart's monitoring (the Grafana dashboard
//! and the PrometheusRule): every `palisade_*` series they query under a binary's job must
//! be one that binary registers. Pure text functions; each binary's tests feed them its own
//! rendered registry and the chart's files.

use std::collections::BTreeSet;
use std::path::Path;

/// The jobs the chart's ServiceMonitor scrapes (named after the metrics Services).
pub const JOBS: [&str; 2] = ["palisade-webhook-metrics", "palisade-operator-metrics"];

/// Sample names an OpenMetrics text exposes, from its `# TYPE` lines: a counter's `_total`,
/// a histogram's `_bucket`, `_sum` and `_count`, any other kind's own name.
pub fn exposed_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .flat_map(|(name, kind)| {
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            suffixes.iter().map(move |s| format!("{name}{s}"))
        })
        .collect()
}

/// Every `palisade_*` metric `text` names, each with the job its selector names first
/// (`palisade_x{job="…"`). A name without its job is an error naming the place.
pub fn queried_metrics(text: &str) -> Result<Vec<(String, &'static str)>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("palisade_") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let (name, after) = tail.split_at(len);
        let job = JOBS
            .into_iter()
            .find(|job| after.starts_with(&format!("{{job=\"{job}\"")))
            .ok_or_else(|| {
                format!(
                    "{name} must be selected by its job first ({{job=\"…\",…}}): {}",
                    after.chars().take(60).collect::<String>()
                )
            })?;
        found.push((name.to_owned(), job));
        rest = after;
    }
    Ok(found)
}

/// The text of the chart's monitoring files under `chart` (the dashboard's strings, and the
/// PrometheusRule template), by file.
pub fn chart_queries(chart: &Path) -> Result<Vec<(&'static str, String)>, String> {
    fn strings(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let read = |file: &str| {
        let path = chart.join(file);
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    const DASHBOARD: &str = "dashboards/palisade.json";
    const RULES: &str = "templates/prometheusrule.yaml";
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(DASHBOARD)?).map_err(|e| format!("{DASHBOARD}: {e}"))?;
    let mut text = String::new();
    strings(&dashboard, &mut text);
    Ok(vec![(DASHBOARD, text), (RULES, read(RULES)?)])
}

/// What is wrong with the chart's monitoring under `chart` for the binary scraped as `job`,
/// whose registry renders as `registry`: files that query none of its metrics, and metrics
/// queried that it does not register. Empty when all is well.
pub fn problems(chart: &Path, job: &str, registry: &str) -> Result<Vec<String>, String> {
    let exposed = exposed_names(registry);
    let mut problems = Vec::new();
    for (file, text) in chart_queries(chart)? {
        let mine: BTreeSet<String> = queried_metrics(&text)
            .map_err(|e| format!("{file}: {e}"))?
            .into_iter()
            .filter(|(_, j)| *j == job)
            .map(|(name, _)| name)
            .collect();
        if mine.is_empty() {
            problems.push(format!("{file} queries none of the metrics of {job}"));
        }
        for unknown in mine.difference(&exposed) {
            problems.push(format!(
                "{file} queries {unknown} under job {job}, which does not register it"
            ));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_names_follow_the_kind() {
        let text = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total 1\n\
                    # TYPE a_duration_seconds histogram\n# TYPE a_ready gauge\n# EOF\n";
        let names: Vec<String> = exposed_names(text).into_iter().collect();
        assert_eq!(
            names,
            [
                "a_duration_seconds_bucket",
                "a_duration_seconds_count",
                "a_duration_seconds_sum",
                "a_ready",
                "a_requests_total"
            ]
        );
    }

    #[test]
    fn queried_metrics_need_their_job_first() {
        let q = r#"sum(rate(palisade_admission_requests_total{job="palisade-webhook-metrics",decision="denied"}[5m]))
            / palisade_operator_leader{job="palisade-operator-metrics"}"#;
        assert_eq!(
            queried_metrics(q).expect("every name has its job"),
            [
                (
                    "palisade_admission_requests_total".to_owned(),
                    "palisade-webhook-metrics"
                ),
                (
                    "palisade_operator_leader".to_owned(),
                    "palisade-operator-metrics"
                ),
            ]
        );
        for bad in [
            r#"palisade_webhook_ready{decision="x"}"#,
            "palisade_webhook_ready",
            r#"palisade_webhook_ready{job="other"}"#,
        ] {
            let e = queried_metrics(bad).expect_err(bad);
            assert!(
                e.starts_with("palisade_webhook_ready must be selected"),
                "{e}"
            );
        }
        assert_eq!(queried_metrics("up{job=\"x\"}"), Ok(vec![]));
    }

    #[test]
    fn problems_name_the_file_and_the_metric() {
        let dir = std::env::temp_dir().join(format!("palisade-monitoring-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dashboards")).expect("dir");
        std::fs::create_dir_all(dir.join("templates")).expect("dir");
        std::fs::write(
            dir.join("dashboards/palisade.json"),
            r#"{"panels": [{"targets": [{"expr": "palisade_webhook_ready{job=\"palisade-webhook-metrics\"}"}]}]}"#,
        )
        .expect("write");
        std::fs::write(
            dir.join("templates/prometheusrule.yaml"),
            "expr: palisade_gone_total{job=\"palisade-webhook-metrics\"} > 0\n",
        )
        .expect("write");
        let registry = "# TYPE palisade_webhook_ready gauge\n";
        let found = problems(&dir, "palisade-webhook-metrics", registry).expect("readable");
        assert_eq!(
            found,
            [
                "templates/prometheusrule.yaml queries palisade_gone_total under job palisade-webhook-metrics, which does not register it"
            ]
        );
        let found = problems(&dir, "palisade-operator-metrics", registry).expect("readable");
        assert_eq!(found.len(), 2, "{found:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
