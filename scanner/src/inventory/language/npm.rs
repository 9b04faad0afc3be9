//! npm: each installed package's `package.json` under a `node_modules` directory.

use serde::Deserialize;

use super::{Language, LanguagePackage, unreadable};

/// Whether `path` is an installed package's manifest: `…/node_modules/NAME/package.json`
/// or `…/node_modules/@SCOPE/NAME/package.json` (a project's own `package.json`, and the
/// ones deeper inside a package, name no installed package).
pub fn is_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let mut parts = dir.rsplit('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some("node_modules"), _) => !name.starts_with('@') && !name.is_empty(),
        (Some(name), Some(scope), Some("node_modules")) => {
            scope.starts_with('@') && scope.len() > 1 && !name.is_empty()
        }
        _ => false,
    }
}

#[derive(Deserialize)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
}

/// The package a manifest describes; none when it lacks a name or a version (npm itself
/// would not have installed it from a registry).
pub fn read(path: &str, bytes: &[u8]) -> Result<Option<LanguagePackage>, crate::Error> {
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(path, format!("not package.json: {e}")))?;
    Ok(match (manifest.name, manifest.version) {
        (Some(name), Some(version)) if !name.trim().is_empty() && !version.trim().is_empty() => {
            Some(LanguagePackage::new(Language::Npm, &name, &version, path))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_manifests_only() {
        for (path, want) in [
            ("usr/lib/node_modules/npm/package.json", true),
            ("app/node_modules/lodash/package.json", true),
            ("app/node_modules/@babel/core/package.json", true),
            ("app/node_modules/a/node_modules/b/package.json", true),
            ("app/package.json", false),
            ("app/node_modules/lodash/fp/package.json", false),
            ("app/node_modules/@babel/package.json", false),
            ("app/node_modules/@/x/package.json", false),
            ("node_modules/package.json", false),
            ("app/node_modules/lodash/package.json.bak", false),
        ] {
            assert_eq!(is_manifest(path), want, "{path}");
        }
    }

    #[test]
    fn name_and_version() {
        let p = read(
            "app/node_modules/@babel/core/package.json",
            br#"{"name": "@babel/core", "version": "7.23.2", "dependencies": {"x": "^1"}}"#,
        )
        .expect("reads")
        .expect("a package");
        assert_eq!(p.language, Language::Npm);
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("@babel/core", "7.23.2")
        );
        assert_eq!(p.location, "app/node_modules/@babel/core/package.json");

        assert_eq!(
            read("x/package.json", br#"{"name": "a"}"#).expect("reads"),
            None
        );
        assert_eq!(
            read("x/package.json", br#"{"version": "1.0.0"}"#).expect("reads"),
            None
        );
        assert_eq!(
            read("x/package.json", br#"{"name": "", "version": "1"}"#).expect("reads"),
            None
        );
        // A version that is not a string is not a manifest npm wrote.
        let err = read("x/package.json", br#"{"name": "a", "version": 1}"#).expect_err("refused");
        assert!(err.to_string().starts_with("x/package.json: "), "{err}");
        assert!(read("x/package.json", b"{").is_err());
        assert!(read("x/package.json", b"\xff\xfe").is_err());
    }
}
