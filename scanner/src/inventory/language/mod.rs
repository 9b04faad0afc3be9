//! Packages of the language ecosystems, read from the metadata their package managers
//! install beside the code: `package.json` in `node_modules`, Python's `METADATA`, RubyGems'
//! installed gemspecs, Composer's `installed.json`, .NET's `*.deps.json`, Maven's
//! `pom.properties`. Each parser is a pure function of a file's path and bytes; the path is
//! kept on every package so that a finding names the file it came from.

use serde::{Deserialize, Serialize};

use crate::version::Scheme;

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
    /// The OSV ecosystem its advisories are filed under.
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

    /// How its versions compare, where this scanner knows: Composer's own order is not
    /// implemented yet.
    pub fn scheme(self) -> Option<Scheme> {
        match self {
            Language::Go | Language::Rust | Language::Npm => Some(Scheme::Semver),
            // NuGet versions are SemVer with an optional fourth number, which the lenient
            // SemVer order compares as such.
            Language::DotNet => Some(Scheme::Semver),
            Language::Python => Some(Scheme::Pep440),
            Language::Java => Some(Scheme::Maven),
            Language::Ruby => Some(Scheme::RubyGems),
            Language::Php => None,
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
