//! The operator against a real kube-apiserver, in one test binary. Run with a
//! cluster in `PALISADE_E2E_KUBECONFIG` (e.g. from `hack/local-cluster.sh up`):
//!
//! ```sh
//! PALISADE_E2E_KUBECONFIG=$KUBECONFIG cargo test -p palisade-operator --test api_server -- --ignored --test-threads=1
//! ```
//!
//! `make e2e` does this on the control plane it starts. Each test uses objects
//! of its own names, so tests and repeated runs do not interfere.

mod audit;
mod certs;
mod common;
mod install;
mod policies;
mod registration;
