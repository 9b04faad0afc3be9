//! Each ImageScanReport's files in the scan cache's `reports/` folder: its full findings
//! (`<name>.json`) and the inventory they were judged from (`<name>_inventory.json`), from
//! which the admin port renders the SBOM in either format on request. One stored inventory
//! instead of two documents keeps the disk per report to what the scan read, and a format
//! added later needs no re-scan.
//!
//! Both are written whole or not at all (a temporary file, then a rename), and both go
//! when their report is no longer in the cluster ([`ReportFiles::sweep`]). `_` is not in
//! the alphabet of Kubernetes names, so no report's findings can be another's inventory.

use std::io;
use std::path::{Path, PathBuf};

use palisade_scanner::scan::{ImageInventory, ScanReport};
use serde::{Deserialize, Serialize};

/// The suffix of a report's findings file.
const FINDINGS: &str = ".json";
/// The suffix of a report's inventory file.
const INVENTORY: &str = "_inventory.json";
/// The version of [`StoredInventory`]'s layout; a file of another one is not read.
const STORED_FORMAT: u32 = 1;

/// The inventory behind a report, as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredInventory {
    pub format: u32,
    /// The scan's time, which the documents give as theirs: the same scan always renders
    /// the same bytes.
    pub scanned_at: jiff::Timestamp,
    pub image: ImageInventory,
}

impl StoredInventory {
    pub fn new(scanned_at: jiff::Timestamp, image: ImageInventory) -> StoredInventory {
        StoredInventory {
            format: STORED_FORMAT,
            scanned_at,
            image,
        }
    }
}

/// Why a report's inventory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a stored inventory", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} has layout version {found}, not {STORED_FORMAT}", path.display())]
    Format { path: PathBuf, found: u32 },
}

/// Kubernetes object names (RFC 1123 subdomains as the API server checks them: lowercase
/// letters, digits, `-` and `.`, each dot-separated part alphanumeric at both ends, at most
/// 253 characters), which is every report name and never a path: no `/`, no `..`, no
/// leading `.`.
pub fn is_report_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name
            .split('.')
            .all(|part| part.starts_with(alnum) && part.ends_with(alnum))
}

/// The report whose file `file` (a name in the folder) is: its findings, its inventory,
/// or a temporary file left by an interrupted write of either. `None` for anything else.
fn owner_of(file: &str) -> Option<&str> {
    let file = match file.strip_prefix('.') {
        Some(rest) => rest.strip_suffix(".tmp")?,
        None => file,
    };
    let name = file
        .strip_suffix(INVENTORY)
        .or_else(|| file.strip_suffix(FINDINGS))?;
    is_report_name(name).then_some(name)
}

/// The `reports/` folder of the scan cache.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    dir: PathBuf,
}

impl ReportFiles {
    pub fn new(dir: impl Into<PathBuf>) -> ReportFiles {
        ReportFiles { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<name>.json`: the full findings.
    pub fn findings(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{FINDINGS}"))
    }

    /// `<dir>/<name>_inventory.json`: the [`StoredInventory`].
    pub fn inventory(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{INVENTORY}"))
    }

    /// Write report `name`'s findings and inventory, each replacing the previous one whole.
    pub async fn write(
        &self,
        name: &str,
        report: &ScanReport,
        inventory: &StoredInventory,
    ) -> io::Result<()> {
        let findings = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
        let inventory = serde_json::to_vec(inventory).map_err(io::Error::other)?;
        tokio::fs::create_dir_all(&self.dir).await?;
        replace(&self.inventory(name), &inventory).await?;
        replace(&self.findings(name), &findings).await
    }

    /// Report `name`'s stored inventory; `Ok(None)` when it has none (not scanned here, or
    /// scanned before inventories were kept).
    pub async fn read_inventory(
        &self,
        name: &str,
    ) -> Result<Option<StoredInventory>, InventoryError> {
        let path = self.inventory(name);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(InventoryError::Read { path, source }),
        };
        let stored: StoredInventory =
            serde_json::from_slice(&bytes).map_err(|source| InventoryError::Parse {
                path: path.clone(),
                source,
            })?;
        if stored.format != STORED_FORMAT {
            return Err(InventoryError::Format {
                path,
                found: stored.format,
            });
        }
        Ok(Some(stored))
    }

    /// Remove the files of every report that `keep` does not name; returns the reports
    /// whose files went. Files of other names are left alone.
    pub async fn sweep(&self, keep: impl Fn(&str) -> bool) -> io::Result<Vec<String>> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut removed = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let file = entry.file_name();
            let Some(owner) = file.to_str().and_then(owner_of) else {
                continue;
            };
            if keep(owner) {
                continue;
            }
            match tokio::fs::remove_file(entry.path()).await {
                Ok(()) => {}
                // Gone already: another sweep or the write's own rename.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if !removed.iter().any(|r| r == owner) {
                removed.push(owner.to_owned());
            }
        }
        removed.sort();
        Ok(removed)
    }
}

/// Write `bytes` to `path` through `.<file>.tmp` beside it and a rename, so that a reader
/// sees the old file or the new one, never a part.
async fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| io::Error::other(format!("{} has no file name", path.display())))?;
    let tmp = path.with_file_name(format!(".{file}.tmp"));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use palisade_scanner::inventory::Inventory;

    use super::*;

    const NAME: &str = "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image() -> ImageInventory {
        let digest = format!("sha256:{}", "ab".repeat(32));
        ImageInventory {
            image: "registry.example/app:1".into(),
            digest: digest.clone(),
            manifest_digest: digest,
            platform: None,
            platform_requested: None,
            layers: 1,
            layer_bytes: 10,
            inventory: Inventory::default(),
        }
    }

    fn report(db: &str) -> ScanReport {
        serde_json::from_value(serde_json::json!({
            "image": "registry.example/app:1",
            "digest": format!("sha256:{}", "ab".repeat(32)),
            "manifestDigest": format!("sha256:{}", "ab".repeat(32)),
            "packages": 0,
            "summary": {"critical": 0, "high": 0, "medium": 0, "low": 0, "unknown": 0},
            "fixable": {"critical": 0, "high": 0, "medium": 0, "low": 0, "unknown": 0},
            "findings": [],
            "coverage": "Full",
            "scannerVersion": "palisade-scanner/test",
            "databaseVersion": db,
            "scannedAt": "2024-05-01T12:00:00Z",
            "durationMs": 1,
        }))
        .expect("a scan report")
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn report_names_are_kubernetes_names_and_never_paths() {
        for ok in [
            NAME,
            &format!("{NAME}-linux-arm64"),
            "a",
            "my.report-1",
            &"a".repeat(253),
        ] {
            assert!(is_report_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "a..b",
            ".hidden",
            "-a",
            "a-",
            "A",
            "a_inventory",
            "a b",
            "a%2f",
            "a\\b",
            &"a".repeat(254),
            "a.",
        ] {
            assert!(!is_report_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn files_are_owned_by_their_report() {
        for (file, owner) in [
            (format!("{NAME}.json"), Some(NAME)),
            (format!("{NAME}_inventory.json"), Some(NAME)),
            (format!(".{NAME}.json.tmp"), Some(NAME)),
            (format!(".{NAME}_inventory.json.tmp"), Some(NAME)),
            ("my.report.json".into(), Some("my.report")),
            ("my.report_inventory.json".into(), Some("my.report")),
            ("notes.txt".into(), None),
            (".json".into(), None),
            ("_inventory.json".into(), None),
            (format!(".{NAME}.json"), None),
            ("Upper.json".into(), None),
        ] {
            assert_eq!(owner_of(&file), owner, "{file}");
        }
    }

    #[tokio::test]
    async fn writes_replace_each_file_whole_and_sweeps_remove_them_with_the_report() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = ReportFiles::new(dir.path().join("reports"));
        let stored = StoredInventory::new("2024-05-01T12:00:00Z".parse().expect("time"), image());
        files
            .write(NAME, &report("old"), &stored)
            .await
            .expect("first write");
        assert_eq!(
            names_in(files.dir()),
            [format!("{NAME}.json"), format!("{NAME}_inventory.json")],
            "both files, no temporary one left"
        );
        // A reader that opened the old findings keeps reading them whole: the new ones
        // arrive by rename (a new file), not by rewriting the old one in place.
        let mut old = std::fs::File::open(files.findings(NAME)).expect("open");
        files
            .write(NAME, &report("new"), &stored)
            .await
            .expect("second write");
        let mut text = String::new();
        old.read_to_string(&mut text).expect("read");
        let old: ScanReport = serde_json::from_str(&text).expect("the old report, whole");
        assert_eq!(old.database_version, "old");
        let new: ScanReport =
            serde_json::from_slice(&std::fs::read(files.findings(NAME)).expect("read"))
                .expect("the new report");
        assert_eq!(new.database_version, "new");
        assert_eq!(
            files.read_inventory(NAME).await.expect("readable"),
            Some(stored.clone())
        );
        assert_eq!(files.read_inventory("other").await.expect("absent"), None);

        // Another report, a temporary file of a third (an interrupted write), and a file
        // that is no report's.
        files
            .write("other", &report("x"), &stored)
            .await
            .expect("other");
        std::fs::write(files.dir().join(".gone.json.tmp"), b"{").expect("tmp");
        std::fs::write(files.dir().join("README"), b"not a report").expect("readme");
        let removed = files.sweep(|n| n == NAME).await.expect("sweep");
        assert_eq!(removed, ["gone", "other"]);
        assert_eq!(
            names_in(files.dir()),
            [
                "README".to_owned(),
                format!("{NAME}.json"),
                format!("{NAME}_inventory.json")
            ]
        );
        let removed = files.sweep(|_| false).await.expect("sweep all");
        assert_eq!(removed, [NAME]);
        assert_eq!(names_in(files.dir()), ["README"]);
        let missing = ReportFiles::new(dir.path().join("never-written"));
        assert!(
            missing
                .sweep(|_| false)
                .await
                .expect("no folder")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_damaged_or_foreign_inventory_is_an_error_not_an_absence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = ReportFiles::new(dir.path());
        std::fs::write(files.inventory("a"), b"{").expect("write");
        assert!(matches!(
            files.read_inventory("a").await,
            Err(InventoryError::Parse { .. })
        ));
        let mut future = serde_json::to_value(StoredInventory::new(
            "2024-05-01T12:00:00Z".parse().expect("time"),
            image(),
        ))
        .expect("json");
        future["format"] = 99.into();
        std::fs::write(files.inventory("b"), future.to_string()).expect("write");
        assert!(matches!(
            files.read_inventory("b").await,
            Err(InventoryError::Format { found: 99, .. })
        ));
    }
}
