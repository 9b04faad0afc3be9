//! The operator's tests that need no API server, in one test binary.

mod audit_crds;
mod audit_reports;
mod audit_scans;
mod certs_plan;
mod registration_render;
