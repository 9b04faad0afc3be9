//! Reading the Prometheus text that the components' `/metrics` serve.

/// The value of a Prometheus sample line `name{labels} value` (exact `series` match).
pub fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}
