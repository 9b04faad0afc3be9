/// Everything the engine can refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A policy that cannot be put in force, with every problem found in it.
    #[error("SecurityPolicy {policy}: {}", problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    InvalidPolicy {
        policy: String,
        problems: Vec<Problem>,
    },

    /// A ScanPolicy that cannot be put in force, with every problem found in it.
    #[error("ScanPolicy {policy}: {}", problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    InvalidScanPolicy {
        policy: String,
        problems: Vec<Problem>,
    },

    /// A document that is not valid YAML or JSON.
    #[error("document {index}: not valid YAML or JSON: {message}")]
    Syntax { index: usize, message: String },

    /// A document (or API object, with no index) that does not fit the SecurityPolicy schema.
    #[error("{}field {field}: {source}", where_(*index, name.as_deref()))]
    Schema {
        index: Option<usize>,
        name: Option<String>,
        field: String,
        #[source]
        source: serde_json::Error,
    },

    /// A document of a kind where a SecurityPolicy was expected.
    #[error(
        "document {index}: expected kind SecurityPolicy (palisade.dev/v1alpha1), found {found}"
    )]
    NotAPolicy { index: usize, found: String },

    /// An object whose pod spec cannot be read.
    #[error("{kind} {name}: {path} is not a valid pod spec: {source}")]
    Object {
        kind: String,
        name: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// One problem in one field of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the field, e.g. `spec.exceptions[0].expires`.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `document 2 (SecurityPolicy p): `, `SecurityPolicy p: ` or nothing.
fn where_(index: Option<usize>, name: Option<&str>) -> String {
    match (index, name) {
        (Some(i), Some(n)) => format!("document {i} (SecurityPolicy {n}): "),
        (Some(i), None) => format!("document {i}: "),
        (None, Some(n)) => format!("SecurityPolicy {n}: "),
        (None, None) => String::new(),
    }
}
