//! PHP: the packages Composer installed, in `vendor/composer/installed.json` (Composer 1
//! writes an array of packages, Composer 2 an object with a `packages` array).

use serde::Deserialize;

use super::{Language, LanguagePackage, unreadable};

/// Whether `path` is Composer's record of installed packages.
pub fn is_installed_json(path: &str) -> bool {
    path == "vendor/composer/installed.json" || path.ends_with("/vendor/composer/installed.json")
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Installed {
    V2 { packages: Vec<Entry> },
    V1(Vec<Entry>),
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    version: String,
}

/// Every package the file lists.
pub fn read(path: &str, bytes: &[u8]) -> Result<Vec<LanguagePackage>, crate::Error> {
    let installed: Installed = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(path, format!("not Composer's installed.json: {e}")))?;
    let entries = match installed {
        Installed::V2 { packages } | Installed::V1(packages) => packages,
    };
    Ok(entries
        .iter()
        .filter(|e| !e.name.trim().is_empty() && !e.version.trim().is_empty())
        .map(|e| LanguagePackage::new(Language::Php, &e.name, &e.version, path))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composer_1_and_2() {
        let path = "var/www/vendor/composer/installed.json";
        assert!(is_installed_json(path));
        assert!(is_installed_json("vendor/composer/installed.json"));
        assert!(!is_installed_json("var/www/vendor/composer/installed.php"));
        assert!(!is_installed_json(
            "var/www/myvendor/composer/installed.json.orig"
        ));

        let v2 = br#"{"packages": [
            {"name": "monolog/monolog", "version": "3.5.0", "version_normalized": "3.5.0.0"},
            {"name": "symfony/console", "version": "v6.4.1", "type": "library"}
        ], "dev": true}"#;
        let v1 = br#"[{"name": "monolog/monolog", "version": "3.5.0"}, {"name": "symfony/console", "version": "v6.4.1"}]"#;
        for bytes in [&v2[..], &v1[..]] {
            let got: Vec<(String, String)> = read(path, bytes)
                .expect("reads")
                .into_iter()
                .map(|p| {
                    assert_eq!(p.language, Language::Php);
                    assert_eq!(p.location, path);
                    (p.name, p.version)
                })
                .collect();
            assert_eq!(
                got,
                [
                    ("monolog/monolog".to_string(), "3.5.0".to_string()),
                    ("symfony/console".into(), "v6.4.1".into())
                ]
            );
        }
        assert!(read(path, br#"{"packages": {}}"#).is_err());
        assert!(read(path, br#"[{"name": "a"}]"#).is_err());
    }
}
