use crate::{Finding, Level, PodView, Version};

/// Every finding of the checks of `level` at `version` on `pod`. Empty means the pod passes.
pub fn evaluate(level: Level, version: Version, pod: PodView<'_>) -> Vec<Finding> {
    let _ = (level, version, pod);
    Vec::new()
}
