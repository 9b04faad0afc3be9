//! `--standalone`: the agent without a cluster. Policies come from files; no pod is known, so
//! every container is judged with the same empty facts (no namespace, no labels), which a
//! policy without `match` selects.

use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use palisade_policy::{ClusterFacts, RuntimePolicySet, parse_policies};

use crate::detect::Snapshot;
use crate::pods::Known;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("policy file {path}: {source}")]
    Policy {
        path: String,
        #[source]
        source: palisade_policy::Error,
    },
}

/// The snapshot of `files`' SecurityPolicies, with a catch-all container.
pub fn snapshot(files: &[PathBuf]) -> Result<Snapshot, Error> {
    let mut policies = Vec::new();
    for file in files {
        let path = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        policies.extend(parse_policies(&text).map_err(|source| Error::Policy {
            path: path.clone(),
            source,
        })?);
    }
    let (set, errors) = RuntimePolicySet::compile(&policies, Timestamp::now());
    if let Some(source) = errors.into_iter().next() {
        return Err(Error::Policy {
            path: files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            source,
        });
    }
    Ok(Snapshot {
        policies: Arc::new(set),
        index: Arc::default(),
        cluster: Arc::new(ClusterFacts::default()),
        any_container: Some(Arc::new(Known::default())),
    })
}
