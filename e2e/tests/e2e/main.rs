//! End-to-end tests on a real control plane (see the crate docs of `palisade_e2e`): the
//! API server calls the real webhook over TLS, and each test asserts what kubectl prints.
//!
//! One test binary, so all tests share one control plane and one webhook; each test works
//! in namespaces of its own and can run in parallel with the others.

mod controller;
mod crds;
mod enforce;
mod ephemeral;
mod rotation;
mod warn;
mod webhook_down;

/// Labels every object a test creates (so that a run on a user's cluster can clean up).
pub const E2E: &str = "palisade.dev/e2e: \"true\"";
