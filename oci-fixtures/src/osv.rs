//! OSV database exports as the scanner reads them: `<dir>/<ecosystem>/all.zip`, one JSON
//! advisory per file, or the same advisories unzipped into a directory.

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

/// Write `advisories` as `<id>.json` files below `dir`, as an unzipped export spread over
/// subdirectories: the first at the top, the others in `<dir>/<n>/`, one per file.
pub fn write_json_dir(dir: &Path, advisories: &[serde_json::Value]) -> Result<(), FixtureError> {
    for (i, a) in advisories.iter().enumerate() {
        let id = a["id"].as_str().unwrap_or("advisory");
        let sub = if i == 0 {
            dir.to_path_buf()
        } else {
            dir.join(i.to_string())
        };
        std::fs::create_dir_all(&sub).map_err(io(sub.display().to_string()))?;
        let path = sub.join(format!("{id}.json"));
        std::fs::write(&path, a.to_string()).map_err(io(path.display().to_string()))?;
    }
    Ok(())
}

/// A zip archive (a jar, a war) holding `entries` (path, content), deflated.
pub fn zip_archive(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, FixtureError> {
    let zip_error = |e: zip::result::ZipError| FixtureError::Setup(format!("zip archive: {e}"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, content) in entries {
        zip.start_file(
            *path,
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated),
        )
        .map_err(zip_error)?;
        zip.write_all(content)
            .map_err(|e| FixtureError::Setup(format!("zip archive: {e}")))?;
    }
    Ok(zip.finish().map_err(zip_error)?.into_inner())
}
