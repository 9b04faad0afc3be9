//! CycloneDX 1.5 (JSON): the image is `metadata.component` (type `container`), its OS an
//! `operating-system` component, and every package a `library` component with its purl and
//! the file it was read from (as an evidence occurrence and as a `palisade:location`
//! property, for consumers that read only one of them).

use serde::Serialize;

use super::{Subject, TOOL_NAME, TOOL_VERSION, seconds, uuid_from};

/// The schema the document declares (and is tested against).
pub const SCHEMA: &str = "http://cyclonedx.org/schema/bom-1.5.schema.json";
pub const SPEC_VERSION: &str = "1.5";

/// The `bom-ref` of the image itself.
const IMAGE_REF: &str = "image";
/// The `bom-ref` of the image's OS.
const OS_REF: &str = "os";

/// A CycloneDX BOM, as much of the format as Palisade fills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    /// Always `CycloneDX`.
    pub bom_format: &'static str,
    pub spec_version: &'static str,
    /// `urn:uuid:…`: derived from the image and the time, so each BOM written at another
    /// time has its own, as the format asks.
    pub serial_number: String,
    pub version: u32,
    pub metadata: Metadata,
    pub components: Vec<Component>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub timestamp: String,
    pub tools: Tools,
    pub component: Component,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// The 1.5 form of `metadata.tools` (the bare array is deprecated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tools {
    pub components: Vec<Component>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentType {
    Application,
    Container,
    Library,
    OperatingSystem,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Component {
    #[serde(rename = "type")]
    pub kind: ComponentType,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

impl Component {
    fn new(kind: ComponentType, bom_ref: Option<String>, name: &str) -> Component {
        Component {
            kind,
            bom_ref,
            name: name.to_owned(),
            version: None,
            description: None,
            purl: None,
            properties: Vec::new(),
            evidence: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Property {
    pub name: String,
    pub value: String,
}

fn property(name: &str, value: impl Into<String>) -> Property {
    Property {
        name: name.to_owned(),
        value: value.into(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub occurrences: Vec<Occurrence>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    pub location: String,
}

/// The BOM of an image, written at `now`.
pub fn bom(subject: &Subject<'_>, now: jiff::Timestamp) -> Bom {
    let timestamp = seconds(now);
    let mut image = Component::new(
        ComponentType::Container,
        Some(IMAGE_REF.to_owned()),
        subject.reference,
    );
    image.version = Some(subject.digest.to_owned());
    image.purl = Some(subject.image_purl());
    image.properties.push(property(
        "palisade:manifest-digest",
        subject.manifest_digest,
    ));
    if let Some(p) = subject.platform {
        image.properties.push(property("palisade:platform", p));
    }

    let mut components = Vec::new();
    if let Some(os) = subject.os() {
        let mut c = Component::new(
            ComponentType::OperatingSystem,
            Some(OS_REF.to_owned()),
            &os.id,
        );
        c.version = os.version_id.clone();
        c.description = Some(Subject::os_description(os));
        components.push(c);
    }
    for e in subject.entries() {
        let mut c = Component::new(ComponentType::Library, Some(e.id.clone()), e.name);
        c.version = Some(e.version.to_owned()).filter(|v| !v.is_empty());
        c.purl = Some(e.purl);
        c.properties = vec![
            property("palisade:package-type", e.kind),
            property("palisade:location", e.location),
        ];
        c.evidence = Some(Evidence {
            occurrences: vec![Occurrence {
                location: e.location.to_owned(),
            }],
        });
        components.push(c);
    }

    let mut tool = Component::new(ComponentType::Application, None, TOOL_NAME);
    tool.version = Some(TOOL_VERSION.to_owned());
    Bom {
        schema: SCHEMA,
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        serial_number: format!(
            "urn:uuid:{}",
            uuid_from(&[
                "cyclonedx",
                subject.digest,
                subject.manifest_digest,
                &timestamp
            ])
        ),
        version: 1,
        metadata: Metadata {
            timestamp,
            tools: Tools {
                components: vec![tool],
            },
            component: image,
            // Packages in databases that could not be read are missing: say where.
            properties: subject
                .unreadable()
                .into_iter()
                .map(|u| property("palisade:unreadable", u))
                .collect(),
        },
        components,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::tests::{at, varied};

    #[test]
    fn image_and_packages() {
        let image = varied();
        let bom = bom(&Subject::of(&image), at());
        let json = serde_json::to_value(&bom).expect("json");
        assert_eq!(json["bomFormat"], "CycloneDX");
        assert_eq!(json["specVersion"], "1.5");
        assert_eq!(json["metadata"]["timestamp"], "2024-05-01T12:00:00Z");
        let c = &json["metadata"]["component"];
        assert_eq!(c["type"], "container");
        assert_eq!(c["name"], "registry.example/team/app:1.0");
        assert_eq!(c["version"], image.digest);
        assert_eq!(
            c["purl"],
            format!(
                "pkg:oci/app@{}?arch=amd64&repository_url=registry.example%2Fteam%2Fapp&tag=1.0",
                image.digest
            )
        );
        assert_eq!(
            json["metadata"]["properties"][0]["name"],
            "palisade:unreadable"
        );
        let components = json["components"].as_array().expect("components");
        assert_eq!(components.len(), 1 + image.inventory.package_count());
        assert_eq!(components[0]["type"], "operating-system");
        assert_eq!(components[0]["name"], "debian");
        assert_eq!(components[0]["version"], "12");
        let npm = components
            .iter()
            .find(|c| c["name"] == "@babel/core")
            .expect("scoped npm");
        assert_eq!(npm["type"], "library");
        assert_eq!(npm["purl"], "pkg:npm/%40babel/core@7.23.2");
        assert_eq!(
            npm["evidence"]["occurrences"][0]["location"],
            "app/node_modules/@babel/core/package.json"
        );
        assert_eq!(npm["properties"][0]["value"], "npm");
        assert_eq!(npm["properties"][1]["name"], "palisade:location");
        let unversioned = components
            .iter()
            .find(|c| c["name"] == "local-thing")
            .expect("unversioned");
        assert_eq!(unversioned.get("version"), None);
        assert_eq!(unversioned["purl"], "pkg:npm/local-thing");
    }

    #[test]
    fn deterministic_for_the_same_input() {
        let image = varied();
        let a = serde_json::to_string(&bom(&Subject::of(&image), at())).expect("json");
        let b = serde_json::to_string(&bom(&Subject::of(&image), at())).expect("json");
        assert_eq!(a, b);
        let later = bom(
            &Subject::of(&image),
            "2024-05-02T00:00:00Z".parse().expect("ts"),
        );
        assert_ne!(
            bom(&Subject::of(&image), at()).serial_number,
            later.serial_number,
            "another BOM of the same image has its own serial number"
        );
    }
}
