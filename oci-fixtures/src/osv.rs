//! OSV database exports as the scanner reads them: `<dir>/<ecosystem>/all.zip`, one JSON
//! advisory per file.

use std::io::Write as _;
use std::path::Path;

use crate::{FixtureError, io};

/// Write `<dir>/<ecosystem>/all.zip` holding `advisories` (each needs an `id`).
pub fn write_export(
    dir: &Path,
    ecosystem: &str,
    advisories: &[serde_json::Value],
) -> Result<(), FixtureError> {
    let eco = dir.join(ecosystem);
    std::fs::create_dir_all(&eco).map_err(io(eco.display().to_string()))?;
    let path = eco.join("all.zip");
    let what = path.display().to_string();
    let file = std::fs::File::create(&path).map_err(io(what.clone()))?;
    let zip_error = |e: zip::result::ZipError| FixtureError::Setup(format!("{what}: {e}"));
    let mut zip = zip::ZipWriter::new(file);
    for a in advisories {
        let id = a["id"].as_str().unwrap_or("advisory");
        zip.start_file(
            format!("{id}.json"),
            zip::write::SimpleFileOptions::default(),
        )
        .map_err(zip_error)?;
        zip.write_all(a.to_string().as_bytes())
            .map_err(io(what.clone()))?;
    }
    zip.finish().map_err(zip_error)?;
    Ok(())
}
