//! Packages of the language ecosystems, read from the metadata their package managers
//! install beside the code: `package.json` in `node_modules`, Python's `METADATA`, RubyGems'
//! installed gemspecs, Composer's `installed.json`, .NET's `*.deps.json`, Maven's
//! `pom.properties`. Each parser is a pure function of a file's path and bytes; the path is
//! kept on every package so that a finding names the file it came from.

use serde::{Deserialize, Serialize};

use crate::inventory::Unreadable;
use crate::layers::Derived;

pub mod dotnet;
pub mod go;
pub mod java;
pub mod maven;
pub mod npm;
pub mod php;
pub mod python;
pub mod ruby;
pub mod rust;

/// A language ecosystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Language {
    Go,
    Rust,
    Npm,
    Python,
    Java,
    Ruby,
    Php,
    DotNet,
}

impl Language {
    pub const ALL: [Language; 8] = [
        Language::Go,
        Language::Rust,
        Language::Npm,
        Language::Python,
        Language::Java,
        Language::Ruby,
        Language::Php,
        Language::DotNet,
    ];

    /// The language whose OSV ecosystem is `name`, if any.
    pub fn from_osv_ecosystem(name: &str) -> Option<Language> {
        Language::ALL
            .into_iter()
            .find(|l| l.osv_ecosystem() == name)
    }

    /// The OSV ecosystem its advisories are filed under; its version order is that
    /// ecosystem's (`osv::Ecosystem::from_name`).
    pub fn osv_ecosystem(self) -> &'static str {
        match self {
            Language::Go => "Go",
            Language::Rust => "crates.io",
            Language::Npm => "npm",
            Language::Python => "PyPI",
            Language::Java => "Maven",
            Language::Ruby => "RubyGems",
            Language::Php => "Packagist",
            Language::DotNet => "NuGet",
        }
    }
}

/// One package of a language ecosystem, as its metadata names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LanguagePackage {
    pub language: Language,
    /// As the ecosystem's advisories name it: `lodash`, `@babel/core`, `requests` (PyPI
    /// names normalised as PEP 503 says), `org.apache.logging.log4j:log4j-core`.
    pub name: String,
    pub version: String,
    /// The file it was read from (`usr/lib/node_modules/npm/package.json`).
    pub location: String,
}

impl LanguagePackage {
    fn new(language: Language, name: &str, version: &str, location: &str) -> LanguagePackage {
        LanguagePackage {
            language,
            name: name.trim().to_owned(),
            version: version.trim().to_owned(),
            location: location.to_owned(),
        }
    }
}

/// Whether the layer walker reads a file for language packages: the metadata files by
/// their paths, Java archives by their names, and every executable (a Go or Rust binary
/// has no telling name).
pub fn wants(path: &str, executable: bool) -> bool {
    executable
        || java::is_archive(path)
        || npm::is_manifest(path)
        || python::is_metadata(path)
        || ruby::is_spec(path)
        || php::is_installed_json(path)
        || dotnet::is_deps_json(path)
}

/// The language packages in the file at `path`, from its whole content.
pub fn derive(path: &str, content: &[u8]) -> Derived {
    let mut out = Derived::default();
    let mut take = |result: Result<Vec<LanguagePackage>, crate::Error>| match result {
        Ok(packages) => out.packages.extend(packages),
        Err(e) => out.unreadable.push(Unreadable {
            path: path.to_owned(),
            reason: match e {
                crate::Error::PackageDb { reason, .. } => reason,
                other => other.to_string(),
            },
        }),
    };
    if content.starts_with(b"\x7fELF") {
        take(
            go::read_elf(path, content)
                .map(|info| info.map(|i| i.packages(path)).unwrap_or_default()),
        );
        take(rust::read_elf(path, content));
    } else if java::is_archive(path) {
        let archive = java::read(path, content, java::Limits::default());
        out.packages.extend(archive.packages);
        out.unreadable.extend(archive.unreadable);
    } else if npm::is_manifest(path) {
        take(npm::read(path, content).map(|p| p.into_iter().collect()));
    } else if python::is_metadata(path) {
        take(python::read(path, content).map(|p| vec![p]));
    } else if ruby::is_spec(path) {
        take(ruby::read(path, content).map(|p| vec![p]));
    } else if php::is_installed_json(path) {
        take(php::read(path, content));
    } else if dotnet::is_deps_json(path) {
        take(dotnet::read(path, content));
    }
    out
}

/// The error for a metadata file that cannot be read.
fn unreadable(path: &str, reason: impl std::fmt::Display) -> crate::Error {
    crate::Error::PackageDb {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The file's text, or an error naming it.
fn text<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, crate::Error> {
    std::str::from_utf8(bytes).map_err(|e| unreadable(path, format!("not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// No metadata, however damaged, makes a parser panic: it reads or refuses.
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = npm::read("p", &bytes);
            let _ = python::read("p", &bytes);
            let _ = ruby::read("p", &bytes);
            let _ = php::read("p", &bytes);
            let _ = dotnet::read("p", &bytes);
            let _ = maven::read("p", &bytes);
            let _ = rust::parse("p", &bytes);
            let _ = go::read_elf("p", &bytes);
            let _ = java::read("p", &bytes, java::Limits::default());
        }

        /// Text-like input reaches deeper into the text parsers.
        #[test]
        fn text_parsers_never_panic(text in "[ -~\n\t\"'=:.{}\\[\\]]{0,300}") {
            let bytes = text.as_bytes();
            let _ = npm::read("p", bytes);
            let _ = python::read("p", bytes);
            let _ = ruby::read("p", bytes);
            let _ = php::read("p", bytes);
            let _ = dotnet::read("p", bytes);
            let _ = maven::read("p", bytes);
            let _ = go::parse_modinfo(&text);
            let _ = go::stdlib_version(&text);
        }
    }

    #[test]
    fn every_language_has_its_osv_ecosystem() {
        let names: Vec<&str> = Language::ALL.iter().map(|l| l.osv_ecosystem()).collect();
        for l in Language::ALL {
            assert_eq!(Language::from_osv_ecosystem(l.osv_ecosystem()), Some(l));
        }
        assert_eq!(Language::from_osv_ecosystem("Debian:12"), None);
        assert_eq!(
            names,
            [
                "Go",
                "crates.io",
                "npm",
                "PyPI",
                "Maven",
                "RubyGems",
                "Packagist",
                "NuGet"
            ]
        );
    }
}
