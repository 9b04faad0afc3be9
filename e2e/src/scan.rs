//! What image scanning needs in the shared environment: the cluster's registry, which tests
//! push images to and the operator's and webhook's pods pull from, and an OSV database the
//! operator reads (`scan.db`), handed to its pod as a ConfigMap volume.
//!
//! Images are built and pushed with `palisade-oci-fixtures`, as the scanner's and the CLI's
//! tests do.

use std::path::{Path, PathBuf};

use base64::Engine as _;
pub use palisade_oci_fixtures::alpine::{
    ALPINE_OS, alpine_layer, alpine_layer_marked, write_alpine_db,
};
pub use palisade_oci_fixtures::{Blob, Compression, LayerBuilder};

/// The ConfigMap holding the OSV database, in the release namespace.
pub const OSV_CONFIG_MAP: &str = "palisade-e2e-osv";
/// Where the operator's container finds it (`scan.db`).
pub const OSV_MOUNT: &str = "/var/lib/palisade-e2e/osv";

/// The registry (plain HTTP) and the OSV directory.
#[derive(Debug)]
pub struct ScanFixtures {
    host: String,
    osv_dir: PathBuf,
}

impl ScanFixtures {
    /// Write the database under `work`; images go to `registry`.
    pub fn new(work: &Path, registry: &str) -> Result<ScanFixtures, String> {
        let osv_dir = work.join("osv");
        write_alpine_db(&osv_dir).map_err(|e| e.to_string())?;
        Ok(ScanFixtures {
            host: registry.to_owned(),
            osv_dir,
        })
    }

    /// `host:port` of the registry, as image references name it.
    pub fn registry_host(&self) -> &str {
        &self.host
    }

    /// The ConfigMap (labelled `label=true`) with every `<ecosystem>/all.zip` of the
    /// database, and the Helm values that mount it into the operator at [`OSV_MOUNT`], as
    /// JSON (which is YAML too).
    pub fn osv_config_map(&self, namespace: &str, label: &str) -> Result<(String, String), String> {
        let mut data = serde_json::Map::new();
        let mut items = Vec::new();
        let entries = std::fs::read_dir(&self.osv_dir)
            .map_err(|e| format!("{}: {e}", self.osv_dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", self.osv_dir.display()))?;
            let ecosystem = entry.file_name().to_string_lossy().into_owned();
            let zip = entry.path().join("all.zip");
            let bytes = std::fs::read(&zip).map_err(|e| format!("{}: {e}", zip.display()))?;
            // Keys allow [-._a-zA-Z0-9] only; the item path restores the ecosystem's name.
            let key: String = ecosystem
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
                + ".zip";
            data.insert(
                key.clone(),
                base64::engine::general_purpose::STANDARD
                    .encode(bytes)
                    .into(),
            );
            items.push(serde_json::json!({"key": key, "path": format!("{ecosystem}/all.zip")}));
        }
        let config_map = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": OSV_CONFIG_MAP, "namespace": namespace, "labels": {label: "true"}},
            "binaryData": data,
        });
        let values = serde_json::json!({
            "scan": {"db": OSV_MOUNT},
            "operator": {
                "extraVolumes": [{"name": "osv", "configMap": {"name": OSV_CONFIG_MAP, "items": items}}],
                "extraVolumeMounts": [{"name": "osv", "mountPath": OSV_MOUNT, "readOnly": true}],
            },
        });
        Ok((config_map.to_string(), values.to_string()))
    }

    /// Push a linux/amd64 image `repo:tag` of `layers`; returns its manifest digest.
    pub fn push(&self, repo: &str, tag: &str, layers: &[Blob]) -> Result<String, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        runtime.block_on(async {
            let pusher = palisade_oci_fixtures::Pusher::new(&self.host, None)
                .map_err(|e| format!("pusher: {e}"))?;
            pusher
                .image(repo, tag, layers, "linux", "amd64")
                .await
                .map(|p| p.digest)
                .map_err(|e| format!("pushing {repo}:{tag} to {}: {e}", self.host))
        })
    }
}
