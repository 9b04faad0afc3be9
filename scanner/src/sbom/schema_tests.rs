//! The documents against the official schemas (scanner/tests/schemas/): a varied inventory
//! validates, and a document broken on purpose does not, so these tests can fail.

use serde_json::Value;

use super::tests::{at, varied};
use super::{Subject, cyclonedx, spdx};
use crate::inventory::Inventory;
use crate::scan::ImageInventory;
use palisade_oci_fixtures::sbom::{Validator, cyclonedx_1_5, spdx_2_3, violations};

fn cyclonedx_json(image: &ImageInventory) -> Value {
    serde_json::to_value(cyclonedx::bom(&Subject::of(image), at())).expect("json")
}

fn spdx_json(image: &ImageInventory) -> Value {
    serde_json::to_value(spdx::document(&Subject::of(image), at())).expect("json")
}

/// The varied image, and the same image with nothing found (no OS, no packages, no platform).
fn images() -> [(&'static str, ImageInventory); 2] {
    let empty = ImageInventory {
        platform: None,
        inventory: Inventory::default(),
        ..varied()
    };
    [("varied", varied()), ("empty", empty)]
}

#[test]
fn cyclonedx_validates() {
    let schema = cyclonedx_1_5().expect("CycloneDX 1.5 schema");
    for (what, image) in images() {
        let doc = cyclonedx_json(&image);
        assert_eq!(
            violations(&schema, &doc),
            Vec::<String>::new(),
            "{what}: {doc:#}"
        );
    }
}

#[test]
fn spdx_validates() {
    let schema = spdx_2_3().expect("SPDX 2.3 schema");
    for (what, image) in images() {
        let doc = spdx_json(&image);
        assert_eq!(
            violations(&schema, &doc),
            Vec::<String>::new(),
            "{what}: {doc:#}"
        );
    }
}

/// A case of a broken document: what is broken, the schema, the valid document, and how to
/// break it.
type Breakage<'a> = (&'static str, &'a Validator, Value, fn(&mut Value));

#[test]
fn broken_documents_fail() {
    let cdx = cyclonedx_1_5().expect("CycloneDX 1.5 schema");
    let spdx = spdx_2_3().expect("SPDX 2.3 schema");
    let image = varied();
    // Each breaks one rule of its schema: an unknown component type, a serial number that is
    // no UUID URN, a timestamp that is no date-time (a format check), a licence id that is not
    // SPDX's (checked by the referenced spdx.schema.json, so it proves the reference resolves),
    // a missing spdxVersion, a reference category SPDX does not know.
    let table: [Breakage<'_>; 6] = [
        ("component type", &cdx, cyclonedx_json(&image), |d| {
            d["components"][1]["type"] = "package".into()
        }),
        ("serial number", &cdx, cyclonedx_json(&image), |d| {
            d["serialNumber"] = "1234".into()
        }),
        ("timestamp", &cdx, cyclonedx_json(&image), |d| {
            d["metadata"]["timestamp"] = "yesterday".into()
        }),
        ("licence id", &cdx, cyclonedx_json(&image), |d| {
            d["components"][1]["licenses"] =
                serde_json::json!([{"license": {"id": "Not-A-Licence-1.0"}}])
        }),
        ("spdxVersion", &spdx, spdx_json(&image), |d| {
            if let Some(o) = d.as_object_mut() {
                o.remove("spdxVersion");
            }
        }),
        ("reference category", &spdx, spdx_json(&image), |d| {
            d["packages"][2]["externalRefs"][0]["referenceCategory"] = "PACKAGE_MANAGER".into()
        }),
    ];
    for (what, schema, mut doc, break_it) in table {
        assert!(violations(schema, &doc).is_empty(), "{what}: valid before");
        break_it(&mut doc);
        let errors = violations(schema, &doc);
        assert!(!errors.is_empty(), "{what}: the broken document validated");
    }
}
