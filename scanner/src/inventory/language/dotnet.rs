//! .NET: the `*.deps.json` file the SDK writes beside each application, listing the NuGet
//! packages it was built with under `libraries` as `"Name/Version": {"type": "package"}`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Language, LanguagePackage, unreadable};

/// Whether `path` is an application's dependency manifest.
pub fn is_deps_json(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|file| file.len() > ".deps.json".len() && file.ends_with(".deps.json"))
}

#[derive(Deserialize)]
struct Deps {
    #[serde(default)]
    libraries: BTreeMap<String, Library>,
}

#[derive(Deserialize)]
struct Library {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The NuGet packages the manifest lists (the application's own projects are not
/// packages, and are left out).
pub fn read(path: &str, bytes: &[u8]) -> Result<Vec<LanguagePackage>, crate::Error> {
    let deps: Deps = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(path, format!("not a .deps.json: {e}")))?;
    Ok(deps
        .libraries
        .iter()
        .filter(|(_, lib)| lib.kind.as_deref() == Some("package"))
        .filter_map(|(key, _)| key.split_once('/'))
        .filter(|(name, version)| !name.is_empty() && !version.is_empty())
        .map(|(name, version)| LanguagePackage::new(Language::DotNet, name, version, path))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_not_projects() {
        let path = "app/MyApp.deps.json";
        assert!(is_deps_json(path));
        assert!(!is_deps_json("app/.deps.json"));
        assert!(!is_deps_json("app/MyApp.runtimeconfig.json"));

        let got = read(
            path,
            br#"{
              "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0"},
              "targets": {".NETCoreApp,Version=v8.0": {}},
              "libraries": {
                "MyApp/1.0.0": {"type": "project", "serviceable": false},
                "Newtonsoft.Json/13.0.1": {"type": "package", "sha512": "sha512-x", "path": "newtonsoft.json/13.0.1"},
                "System.Text.Json/8.0.0-rc.1.23419.4": {"type": "package"},
                "Odd": {"type": "package"}
              }
            }"#,
        )
        .expect("reads");
        let got: Vec<(&str, &str)> = got
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Newtonsoft.Json", "13.0.1"),
                ("System.Text.Json", "8.0.0-rc.1.23419.4")
            ]
        );
        assert_eq!(read(path, b"{}").expect("reads"), []);
        assert!(read(path, b"3").is_err());
        assert!(read(path, b"{").is_err());
    }
}
