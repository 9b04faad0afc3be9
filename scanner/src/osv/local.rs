//! OSV data as people download it, read where it lies: one export zip (the `all.zip` OSV
//! serves per ecosystem) or a directory of advisory JSON files (an unzipped export, flat or
//! in subdirectories). Neither says which ecosystem it holds; the advisories do, in
//! `affected[].package.ecosystem`.
//!
//! Unlike the [`Store`](super::Store)'s sources, these are not copied into a cache: they are
//! read in full on every load, with the same limits and the same all-or-nothing rule as an
//! export (a file that is not an OSV record fails the load). An ecosystem asked for that no
//! advisory names is left out of the database, so a scan reports that it has no data for it
//! rather than calling the image clean.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::index::{Builder, for_each_zip_record};
use super::schema::Vulnerability;
use super::{Database, Ecosystem, Limits};
use crate::Error;

/// The shape of a local source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One export zip of JSON advisories.
    ExportZip,
    /// A directory holding one advisory per `*.json` file, at any depth.
    JsonDir,
}

/// The ecosystems of `wanted` that some advisory names (itself, or its family without a
/// release). The others have no data in the source.
pub fn covered<'a>(wanted: &'a [Ecosystem], named: &BTreeSet<String>) -> Vec<&'a Ecosystem> {
    wanted
        .iter()
        .filter(|e| named.iter().any(|n| e.covers(n)))
        .collect()
}

/// Load the `wanted` ecosystems from a local source. Nothing wanted reads nothing. The
/// database's version names each ecosystem with the sha256 of the source's content (for a
/// directory: of its files' relative paths and contents, in path order).
pub fn load(
    path: &Path,
    format: Format,
    wanted: &[Ecosystem],
    limits: Limits,
) -> Result<Database, Error> {
    if wanted.is_empty() {
        return Ok(Database::new());
    }
    let mut builders: Vec<Builder> = wanted.iter().cloned().map(Builder::new).collect();
    let mut named = BTreeSet::new();
    let mut add = |vuln: &Vulnerability| {
        for a in &vuln.affected {
            if let Some(p) = &a.package
                && !named.contains(&p.ecosystem)
            {
                named.insert(p.ecosystem.clone());
            }
        }
        for b in &mut builders {
            b.add(vuln);
        }
    };
    let sha256 = match format {
        Format::ExportZip => read_zip(path, limits, &mut add)?,
        Format::JsonDir => read_json_dir(path, limits, &mut add)?,
    };
    let keep: Vec<String> = covered(wanted, &named)
        .into_iter()
        .map(|e| e.name.clone())
        .collect();
    let mut db = Database::new();
    for b in builders {
        let index = b.finish();
        if keep.contains(&index.ecosystem().name) {
            db.insert(Arc::new(index), sha256.clone());
        }
    }
    Ok(db)
}

/// Read an export zip, hashing it; the hex sha256 of the file.
fn read_zip(
    path: &Path,
    limits: Limits,
    add: &mut impl FnMut(&Vulnerability),
) -> Result<String, Error> {
    let name = path.display().to_string();
    let fail = |reason: String| Error::VulnDb {
        source_name: name.clone(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| fail(e.to_string()))?;
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    for_each_zip_record(std::io::BufReader::new(file), &name, limits, |_, v| add(v))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Read every `*.json` below `dir` (following links to files, not to directories), in path
/// order; the hex sha256 of their relative paths and contents.
fn read_json_dir(
    dir: &Path,
    limits: Limits,
    add: &mut impl FnMut(&Vulnerability),
) -> Result<String, Error> {
    let fail = |what: &Path, reason: String| Error::VulnDb {
        source_name: what.display().to_string(),
        reason,
    };
    let files = json_files(dir, limits.max_entries).map_err(|(p, r)| fail(&p, r))?;
    let mut hasher = Sha256::new();
    let mut buf = Vec::new();
    for (relative, path) in files {
        buf.clear();
        let file = std::fs::File::open(&path).map_err(|e| fail(&path, e.to_string()))?;
        // Never read more than the limit, whatever the file's size.
        file.take(limits.max_entry_bytes + 1)
            .read_to_end(&mut buf)
            .map_err(|e| fail(&path, e.to_string()))?;
        if buf.len() as u64 > limits.max_entry_bytes {
            return Err(fail(
                &path,
                format!(
                    "more than the {} bytes allowed for one advisory",
                    limits.max_entry_bytes
                ),
            ));
        }
        let vuln: Vulnerability = serde_json::from_slice(&buf)
            .map_err(|e| fail(&path, format!("not an OSV record: {e}")))?;
        hasher.update(relative.as_bytes());
        hasher.update([0]);
        hasher.update((buf.len() as u64).to_be_bytes());
        hasher.update(&buf);
        add(&vuln);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The `*.json` files below `dir` as (path relative to `dir`, full path), sorted; at most
/// `max` of them. The error names the path it concerns.
fn json_files(dir: &Path, max: usize) -> Result<Vec<(String, PathBuf)>, (PathBuf, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| (d.clone(), e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| (d.clone(), e.to_string()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| (path.clone(), e.to_string()))?;
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            let is_json = path.extension().is_some_and(|x| x == "json");
            // A link is followed to a file; a link to a directory could loop, so it is not.
            if !is_json || !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                continue;
            }
            if found.len() >= max {
                return Err((dir.to_path_buf(), format!("more than {max} advisory files")));
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            found.push((relative, path));
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn eco(name: &str) -> Ecosystem {
        Ecosystem::from_name(name).expect("ecosystem")
    }

    #[test]
    fn covered_ecosystems() {
        let wanted = [eco("Debian:12"), eco("Alpine:v3.20")];
        let table: &[(&[&str], &[&str])] = &[
            (&["Debian:12"], &["Debian:12"]),
            (
                &["Debian:11", "Debian:12", "Alpine:v3.20"],
                &["Debian:12", "Alpine:v3.20"],
            ),
            (&["Debian"], &["Debian:12"]),
            (&["Debian:11"], &[]),
            (&["Alpine:v3.2"], &[]),
            (&["PyPI", "npm"], &[]),
            (&[], &[]),
        ];
        for (named, want) in table {
            let named: BTreeSet<String> = named.iter().map(|s| s.to_string()).collect();
            let got: Vec<&str> = covered(&wanted, &named)
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            assert_eq!(got, *want, "{named:?}");
        }
    }

    fn advisory(id: &str, ecosystem: &str, package: &str, fixed: &str) -> String {
        serde_json::json!({
            "id": id,
            "affected": [{"package": {"ecosystem": ecosystem, "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
        })
        .to_string()
    }

    #[test]
    fn zip_and_json_directory_give_the_same_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [
            (
                "CVE-1.json",
                advisory("CVE-1", "Debian:12", "openssl", "3.0.13-1"),
            ),
            (
                "CVE-2.json",
                advisory("CVE-2", "Debian:11", "openssl", "1.1.1w-1"),
            ),
            (
                "CVE-3.json",
                advisory("CVE-3", "Debian:12", "zlib", "1:1.3-1"),
            ),
        ];
        let zip_path = dir.path().join("all.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("zip"));
        for (name, text) in &files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("entry");
            zip.write_all(text.as_bytes()).expect("write");
        }
        zip.finish().expect("finish");
        let json = dir.path().join("json");
        std::fs::create_dir_all(json.join("2024")).expect("dirs");
        for (i, (name, text)) in files.iter().enumerate() {
            let sub = if i == 0 {
                json.clone()
            } else {
                json.join("2024")
            };
            std::fs::write(sub.join(name), text).expect("write");
        }
        std::fs::write(json.join("README.md"), "not an advisory").expect("write");

        let wanted = [eco("Debian:12"), eco("Alpine:v3.20")];
        for (format, path) in [(Format::ExportZip, &zip_path), (Format::JsonDir, &json)] {
            let db = load(path, format, &wanted, Limits::default()).expect("load");
            assert_eq!(
                db.ecosystems().collect::<Vec<_>>(),
                ["Debian:12"],
                "{format:?}: Alpine is named by no advisory"
            );
            let index = db.get("Debian:12").expect("Debian:12");
            assert_eq!(index.advisory_count(), 2, "{format:?}");
            assert_eq!(index.affected("openssl").len(), 1, "{format:?}");
            assert!(db.version().starts_with("Debian:12@"), "{format:?}");
            let nothing = load(path, format, &[], Limits::default()).expect("nothing wanted");
            assert!(nothing.is_empty());
        }
    }

    #[test]
    fn a_file_that_is_not_an_advisory_fails_the_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a")).expect("dir");
        std::fs::write(
            dir.path().join("a/CVE-1.json"),
            advisory("CVE-1", "Debian:12", "p", "1"),
        )
        .expect("write");
        std::fs::write(dir.path().join("a/broken.json"), "{\"id\": 7}").expect("write");
        let err = load(
            dir.path(),
            Format::JsonDir,
            &[eco("Debian:12")],
            Limits::default(),
        )
        .expect_err("broken record")
        .to_string();
        assert!(err.contains("broken.json: not an OSV record"), "{err}");

        let limits = Limits {
            max_entry_bytes: 16,
            max_entries: 10,
            ..Limits::default()
        };
        std::fs::remove_file(dir.path().join("a/broken.json")).expect("rm");
        let err = load(dir.path(), Format::JsonDir, &[eco("Debian:12")], limits)
            .expect_err("too big")
            .to_string();
        assert!(err.contains("more than the 16 bytes allowed"), "{err}");

        let junk = dir.path().join("junk.zip");
        std::fs::write(&junk, "PK but not a zip").expect("write");
        let err = load(
            &junk,
            Format::ExportZip,
            &[eco("Debian:12")],
            Limits::default(),
        )
        .expect_err("not a zip")
        .to_string();
        assert!(err.contains("not a readable zip archive"), "{err}");
    }
}
