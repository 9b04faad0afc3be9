//! The scanner's one error type. Each variant says what was being read and why it failed,
//! in words an operator can act on.

/// Why a scan, a registry call, a package database or a vulnerability database failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // -- inventory (package databases inside the image) --
    /// A package database inside the image could not be read.
    #[error("{path}: {reason}")]
    PackageDb { path: String, reason: String },

    // -- osv (vulnerability database) --
    /// A vulnerability database source could not be read or is not a valid OSV export.
    #[error("vulnerability database {source_name}: {reason}")]
    VulnDb { source_name: String, reason: String },
    /// An advisory document (`updateinfo.xml`) is not well-formed XML.
    #[error(
        "vulnerability database {source_name}: not well-formed XML at byte {position}: {source}"
    )]
    VulnDbXml {
        source_name: String,
        position: u64,
        #[source]
        source: quick_xml::Error,
    },

    // -- oci (registry client) and layers --
    /// A registry answered with an error or could not be reached.
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
    /// A registry could not be reached at all (connection refused, DNS, TLS, timeout).
    #[error("registry {registry}: {what}: {source}")]
    Unreachable {
        registry: String,
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// An image layer is corrupt, hostile or not a layer this scanner reads.
    #[error("layer {digest}: {reason}")]
    Layer { digest: String, reason: String },

    // -- shared --
    /// Reading or writing the scanner's own files (cache, temporary space) failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
