//! Reading manifests from files, directories and standard input.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use palisade_policy::Document;

/// A document and where it came from.
pub struct Sourced {
    pub source: String,
    pub document: Document,
}

/// A file or document that could not be read, with its place.
pub struct InputError {
    pub source: String,
    pub message: String,
}

/// Read every document under `paths`. Errors are collected per file so one bad file does not
/// hide the verdicts of the others.
pub fn read_all(paths: &[PathBuf], recursive: bool) -> (Vec<Sourced>, Vec<InputError>) {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let files = match expand(path, recursive) {
            Ok(files) => files,
            Err(message) => {
                errors.push(InputError {
                    source: path.display().to_string(),
                    message,
                });
                continue;
            }
        };
        for file in files {
            let source = file.display().to_string();
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).map(|_| s)
            } else {
                std::fs::read_to_string(&file)
            };
            let text = match text {
                Ok(t) => t,
                Err(e) => {
                    errors.push(InputError {
                        source,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            match palisade_policy::parse_documents(&text) {
                Ok(list) => docs.extend(list.into_iter().map(|document| Sourced {
                    source: source.clone(),
                    document,
                })),
                Err(e) => errors.push(InputError {
                    source,
                    message: e.to_string(),
                }),
            }
        }
    }
    (docs, errors)
}

fn expand(path: &Path, recursive: bool) -> Result<Vec<PathBuf>, String> {
    if path.as_os_str() == "-" {
        return Ok(vec![path.to_owned()]);
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| format!("cannot list directory: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive {
                out.extend(expand(&p, recursive)?);
            }
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(p);
        }
    }
    Ok(out)
}
