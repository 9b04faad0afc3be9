//! Image vulnerability scanning: pull an image from its registry, inventory the OS packages
//! its layers install, and match them against a vulnerability database in the OSV format
//! (OSV exports, and distributions' `updateinfo.xml` advisories converted to it,
//! [`updateinfo`]).
//!
//! The same inventory can be written as an SBOM (CycloneDX or SPDX, [`sbom`]).
//!
//! Usable from the operator (background scans), the webhook (tag resolution) and the CLI
//! (`palisade scan`). Pure parts (version comparison, package database parsers, matching, SBOMs) do
//! no I/O; the registry client and the database store are the edges.

pub mod coverage;
pub mod error;
pub mod inventory;
pub mod layers;
pub mod oci;
pub mod osv;
pub mod report;
pub mod sbom;
pub mod scan;
pub mod updateinfo;
pub mod version;

pub use error::Error;

/// This scanner's version, recorded in every report.
pub const SCANNER_VERSION: &str = concat!("palisade-scanner/", env!("CARGO_PKG_VERSION"));
