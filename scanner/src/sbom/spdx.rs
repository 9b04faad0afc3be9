//! SPDX 2.3 (JSON): the document DESCRIBES the image's package, which CONTAINS its OS and
//! one package per inventory package, each with its purl as a PACKAGE-MANAGER reference and
//! the file it was read from as its `sourceInfo`. Nothing is claimed that was not read:
//! download locations and licences are NOASSERTION or left out, and no files are analysed.

use serde::Serialize;

use super::{Subject, TOOL_NAME, TOOL_VERSION, seconds, uuid_from};

pub const SPDX_VERSION: &str = "SPDX-2.3";
const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";
const IMAGE_ID: &str = "SPDXRef-Image";
const OS_ID: &str = "SPDXRef-OperatingSystem";
const NOASSERTION: &str = "NOASSERTION";
/// Where document namespaces live; a namespace is a unique URI, not a page to fetch.
const NAMESPACE_BASE: &str = "https://palisade.dev/spdxdocs";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub spdx_version: &'static str,
    /// SPDX documents themselves are always CC0-1.0.
    pub data_license: &'static str,
    #[serde(rename = "SPDXID")]
    pub spdx_id: &'static str,
    pub name: String,
    /// Derived from the image's digests: the same image always gets the same namespace.
    pub document_namespace: String,
    pub creation_info: CreationInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub packages: Vec<Package>,
    pub relationships: Vec<Relationship>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreationInfo {
    pub created: String,
    pub creators: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_info: Option<String>,
    pub download_location: &'static str,
    /// No file list is given, so no verification code is owed.
    pub files_analyzed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_package_purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_refs: Vec<ExternalRef>,
}

impl Package {
    fn new(spdx_id: String, name: &str, version: Option<&str>) -> Package {
        Package {
            spdx_id,
            name: name.to_owned(),
            version_info: version.filter(|v| !v.is_empty()).map(str::to_owned),
            download_location: NOASSERTION,
            files_analyzed: false,
            source_info: None,
            primary_package_purpose: None,
            description: None,
            comment: None,
            external_refs: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRef {
    pub reference_category: &'static str,
    pub reference_type: &'static str,
    pub reference_locator: String,
}

fn purl_ref(purl: String) -> ExternalRef {
    ExternalRef {
        reference_category: "PACKAGE-MANAGER",
        reference_type: "purl",
        reference_locator: purl,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    pub spdx_element_id: String,
    pub relationship_type: &'static str,
    pub related_spdx_element: String,
}

fn relationship(from: &str, kind: &'static str, to: &str) -> Relationship {
    Relationship {
        spdx_element_id: from.to_owned(),
        relationship_type: kind,
        related_spdx_element: to.to_owned(),
    }
}

/// The SPDX document of an image, created at `now`.
pub fn document(subject: &Subject<'_>, now: jiff::Timestamp) -> Document {
    let mut image = Package::new(IMAGE_ID.to_owned(), subject.reference, Some(subject.digest));
    image.primary_package_purpose = Some("CONTAINER");
    image.external_refs.push(purl_ref(subject.image_purl()));
    image.comment = Some(match subject.platform {
        Some(p) => format!("platform {p}, manifest {}", subject.manifest_digest),
        None => format!("manifest {}", subject.manifest_digest),
    });

    let mut packages = vec![image];
    let mut relationships = vec![relationship(DOCUMENT_ID, "DESCRIBES", IMAGE_ID)];
    if let Some(os) = subject.os() {
        let mut p = Package::new(OS_ID.to_owned(), &os.id, os.version_id.as_deref());
        p.primary_package_purpose = Some("OPERATING_SYSTEM");
        p.description = Some(Subject::os_description(os));
        packages.push(p);
        relationships.push(relationship(IMAGE_ID, "CONTAINS", OS_ID));
    }
    for e in subject.entries() {
        let id = format!("SPDXRef-Package-{}-{}", id_safe(e.kind), e.id);
        let mut p = Package::new(id.clone(), e.name, Some(e.version));
        p.source_info = Some(format!("{} package read from {}", e.kind, e.location));
        p.primary_package_purpose = Some("LIBRARY");
        p.external_refs.push(purl_ref(e.purl));
        packages.push(p);
        relationships.push(relationship(IMAGE_ID, "CONTAINS", &id));
    }

    let unreadable = subject.unreadable();
    Document {
        spdx_version: SPDX_VERSION,
        data_license: "CC0-1.0",
        spdx_id: DOCUMENT_ID,
        name: subject.reference.to_owned(),
        document_namespace: format!(
            "{NAMESPACE_BASE}/{}-{}",
            id_safe(subject.reference),
            uuid_from(&["spdx", subject.digest, subject.manifest_digest])
        ),
        creation_info: CreationInfo {
            created: seconds(now),
            creators: vec![format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")],
        },
        // Packages in databases that could not be read are missing: say where.
        comment: (!unreadable.is_empty()).then(|| {
            format!(
                "Incomplete: some package databases were not fully read: {}",
                unreadable.join("; ")
            )
        }),
        packages,
        relationships,
    }
}

/// Letters, digits, `.` and `-` only, as SPDX identifiers (and tidy URIs) allow.
fn id_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::tests::{at, varied};

    #[test]
    fn image_and_packages() {
        let image = varied();
        let doc = document(&Subject::of(&image), at());
        let json = serde_json::to_value(&doc).expect("json");
        assert_eq!(json["spdxVersion"], "SPDX-2.3");
        assert_eq!(json["SPDXID"], "SPDXRef-DOCUMENT");
        assert_eq!(json["creationInfo"]["created"], "2024-05-01T12:00:00Z");
        assert_eq!(json["relationships"][0]["relationshipType"], "DESCRIBES");
        assert_eq!(
            json["relationships"][0]["relatedSpdxElement"],
            "SPDXRef-Image"
        );
        assert!(
            json["comment"]
                .as_str()
                .is_some_and(|c| c.contains("lib/apk/db/installed")),
            "{json}"
        );
        let packages = json["packages"].as_array().expect("packages");
        assert_eq!(packages.len(), 2 + image.inventory.package_count());
        assert_eq!(packages[0]["primaryPackagePurpose"], "CONTAINER");
        let rpm = packages
            .iter()
            .find(|p| p["name"] == "openssl-libs")
            .expect("rpm");
        assert_eq!(rpm["versionInfo"], "1:3.0.7-27.el9");
        assert_eq!(rpm["downloadLocation"], "NOASSERTION");
        assert_eq!(
            rpm["sourceInfo"],
            "rpm package read from var/lib/rpm/rpmdb.sqlite"
        );
        assert_eq!(
            rpm["externalRefs"][0]["referenceLocator"],
            "pkg:rpm/debian/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=debian-12&epoch=1"
        );
        assert_eq!(
            rpm["externalRefs"][0]["referenceCategory"],
            "PACKAGE-MANAGER"
        );
        let unversioned = packages
            .iter()
            .find(|p| p["name"] == "local-thing")
            .expect("unversioned");
        assert_eq!(unversioned.get("versionInfo"), None);
        // Every package but the image is contained in it.
        let contained = json["relationships"]
            .as_array()
            .expect("relationships")
            .iter()
            .filter(|r| r["relationshipType"] == "CONTAINS")
            .count();
        assert_eq!(contained, packages.len() - 1);
    }

    #[test]
    fn namespace_follows_the_image() {
        let image = varied();
        let a = document(&Subject::of(&image), at());
        let b = document(
            &Subject::of(&image),
            "2025-01-01T00:00:00Z".parse().expect("ts"),
        );
        assert_eq!(a.document_namespace, b.document_namespace);
        assert!(
            a.document_namespace
                .starts_with("https://palisade.dev/spdxdocs/registry.example-team-app-1.0-"),
            "{}",
            a.document_namespace
        );
        let mut other = image.clone();
        other.digest = format!("sha256:{}", "01".repeat(32));
        assert_ne!(
            document(&Subject::of(&other), at()).document_namespace,
            a.document_namespace
        );
    }
}
