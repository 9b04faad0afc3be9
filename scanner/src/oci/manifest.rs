//! Image manifests and indexes, Docker v2 and OCI: the parts a scanner reads, and platform
//! selection. Pure parsing; the client fetches the bytes.

use serde::Deserialize;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What the client asks for: every manifest form this scanner reads.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Foreign (non-distributable) layers name where they live instead of the registry.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// An image's platform, as indexes describe their entries.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux_amd64() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// Parse `os/arch[/variant]` (`linux/arm64/v8`).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().filter(|p| !p.is_empty()).map(str::to_owned);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant,
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A single-platform image manifest.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A multi-platform index (OCI) or manifest list (Docker).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// A parsed manifest document.
#[derive(Clone, Debug)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// Why manifest bytes are not a manifest this scanner reads.
#[derive(Debug, PartialEq, Eq)]
pub struct ManifestError(pub String);

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
}

/// Parse manifest bytes. The media type comes from the `Content-Type` header, else from the
/// document's own `mediaType`, else from its shape (an index has `manifests`, an image has
/// `layers`), as registries are inconsistent about both.
pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| ManifestError(format!("manifest is not JSON: {e}")))?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "text/plain");
    let media = header.or(probe.media_type.as_deref());
    let kind = match media {
        Some(OCI_INDEX | DOCKER_LIST) => Kind::Index,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => Kind::Image,
        Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED) => {
            return Err(ManifestError(
                "Docker schema 1 manifests are not supported (deprecated since 2017): re-push the image with a current client".into(),
            ));
        }
        _ if probe.schema_version == Some(1) => {
            return Err(ManifestError(
                "Docker schema 1 manifests are not supported (deprecated since 2017): re-push the image with a current client".into(),
            ));
        }
        _ if probe.manifests.is_some() => Kind::Index,
        _ if probe.layers.is_some() => Kind::Image,
        Some(other) => {
            return Err(ManifestError(format!(
                "unsupported manifest media type {other:?} (artifacts other than container images are not scanned)"
            )));
        }
        None => {
            return Err(ManifestError(
                "manifest has neither layers nor manifests".into(),
            ));
        }
    };
    match kind {
        Kind::Index => serde_json::from_slice(bytes)
            .map(Manifest::Index)
            .map_err(|e| ManifestError(format!("invalid image index: {e}"))),
        Kind::Image => serde_json::from_slice(bytes)
            .map(Manifest::Image)
            .map_err(|e| ManifestError(format!("invalid image manifest: {e}"))),
    }
}

enum Kind {
    Index,
    Image,
}

/// Pick an index entry for a platform: an exact match (variant included when the wanted
/// platform names one), else the same os/architecture with any variant. Attestation and
/// other `unknown/unknown` entries never match.
pub fn select_platform<'a>(index: &'a ImageIndex, want: &Platform) -> Option<&'a Descriptor> {
    let candidates = || {
        index
            .manifests
            .iter()
            .filter(|d| matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | ""))
    };
    let same_arch = |d: &&Descriptor| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == want.os && p.architecture == want.architecture)
    };
    if want.variant.is_some()
        && let Some(d) = candidates().filter(same_arch).find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.variant == want.variant)
        })
    {
        return Some(d);
    }
    candidates().find(same_arch)
}

/// Whether the entry [`select_platform`] chose stands in for the platform asked for: both name
/// a variant and they differ (`linux/arm/v7` for `linux/arm/v6`). An entry that names no
/// variant is taken to be the one asked for, as indexes often leave the variant out
/// (`linux/arm64` for `linux/arm64/v8`).
pub fn is_substitute(want: &Platform, chosen: &Platform) -> bool {
    chosen.os != want.os
        || chosen.architecture != want.architecture
        || matches!((&want.variant, &chosen.variant), (Some(w), Some(c)) if w != c)
}

/// Whether a string is a digest this client can verify (`sha256:` and 64 lowercase hex).
pub fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaa","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bbbb","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cccc","size":1,"platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:dddd","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#;

    fn index() -> ImageIndex {
        match parse(None, INDEX.as_bytes()) {
            Ok(Manifest::Index(i)) => i,
            other => panic!("not an index: {other:?}"),
        }
    }

    #[test]
    fn platform_selection() {
        let i = index();
        let pick = |p: &str| {
            select_platform(&i, &Platform::parse(p).expect("platform")).map(|d| d.digest.as_str())
        };
        assert_eq!(pick("linux/amd64"), Some("sha256:cccc"));
        assert_eq!(pick("linux/arm64"), Some("sha256:bbbb"));
        assert_eq!(pick("linux/arm64/v8"), Some("sha256:bbbb"));
        assert_eq!(pick("linux/arm/v7"), Some("sha256:aaaa"));
        assert_eq!(
            pick("linux/arm/v6"),
            Some("sha256:aaaa"),
            "variant falls back to the architecture"
        );
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("windows/amd64"), None);
    }

    #[test]
    fn substitutes() {
        let table: &[(&str, &str, bool)] = &[
            ("linux/amd64", "linux/amd64", false),
            ("linux/arm64", "linux/arm64/v8", false),
            ("linux/arm64/v8", "linux/arm64", false),
            ("linux/arm64/v8", "linux/arm64/v8", false),
            ("linux/arm/v6", "linux/arm/v7", true),
            ("linux/amd64/v3", "linux/amd64/v2", true),
            ("linux/amd64", "linux/arm64", true),
            ("linux/amd64", "windows/amd64", true),
        ];
        for (want, chosen, substitute) in table {
            let p = |s: &str| Platform::parse(s).expect("platform");
            assert_eq!(
                is_substitute(&p(want), &p(chosen)),
                *substitute,
                "{want} → {chosen}"
            );
        }
        // What select_platform picks for arm/v6 from the index is such a substitute.
        let i = index();
        let want = Platform::parse("linux/arm/v6").expect("platform");
        let chosen = select_platform(&i, &want)
            .and_then(|d| d.platform.clone())
            .expect("arm entry");
        assert!(is_substitute(&want, &chosen));
    }

    #[test]
    fn media_type_from_header_document_or_shape() {
        let image = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:c","size":2},"layers":[]}"#;
        assert!(matches!(
            parse(Some(DOCKER_MANIFEST), image.as_bytes()),
            Ok(Manifest::Image(_))
        ));
        assert!(matches!(
            parse(Some("application/json"), image.as_bytes()),
            Ok(Manifest::Image(_))
        ));
        assert!(matches!(
            parse(None, INDEX.as_bytes()),
            Ok(Manifest::Index(_))
        ));
        let schema1 = r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let err = parse(None, schema1.as_bytes()).expect_err("schema 1");
        assert!(err.0.contains("schema 1"), "{err}");
        let helm = r#"{"schemaVersion":2,"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip"}"#;
        assert!(
            parse(None, helm.as_bytes())
                .expect_err("artifact")
                .0
                .contains("unsupported manifest media type")
        );
        assert!(
            parse(None, b"\x00\x01garbage")
                .expect_err("junk")
                .0
                .contains("not JSON")
        );
        let missing_config = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
        assert!(
            parse(None, missing_config.as_bytes())
                .expect_err("no config")
                .0
                .contains("invalid image manifest")
        );
    }

    #[test]
    fn platform_strings() {
        assert_eq!(
            Platform::parse("linux/amd64"),
            Some(Platform::linux_amd64())
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8")
                .map(|p| p.to_string())
                .as_deref(),
            Some("linux/arm64/v8")
        );
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d"] {
            assert_eq!(Platform::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn digests() {
        assert!(is_sha256_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_sha256_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_sha256_digest("sha256:abc"));
        assert!(!is_sha256_digest(&format!("sha512:{}", "a".repeat(64))));
    }
}
