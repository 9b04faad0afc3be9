//! Where detections go: JSON lines, Kubernetes Events, PolicyReport results.

pub mod events;
pub mod json;
pub mod publisher;
pub mod throttle;
