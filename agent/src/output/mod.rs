//! Where detections go: JSON lines, Kubernetes Events, PolicyReport results.

pub mod throttle;
