//! From an image reference to its inventory: resolve it, pick the platform, stream every
//! layer through the walker in order, and read the package databases. Results are cached
//! on disk by manifest digest, so a re-scan of a known image only re-matches.

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::TryStreamExt as _;
use palisade_imageref::ImageRef;
use serde::{Deserialize, Serialize};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::Error;
use crate::coverage::{Coverage, Gap, LanguageReach, OsPackages, Reach, assess};
use crate::inventory::language::{self, Language};
use crate::inventory::{self, Inventory};
use crate::layers::{Deriving, LayerWalker, Limits};
use crate::oci::{Platform, RegistryClient, manifest};
use crate::report::{Finding, Severity, SeverityCounts};

/// What the scanner learned about one image, before matching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInventory {
    /// The reference as given, normalized (`docker.io/library/nginx:1.25`).
    pub image: String,
    /// The digest the reference resolved to (an index's for multi-platform images).
    pub digest: String,
    /// The single-platform manifest read.
    pub manifest_digest: String,
    /// The platform chosen from an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The platform asked for, when the index had no manifest for it and `platform` (another
    /// variant of its architecture) was read in its place. Set per request: a cached entry's
    /// is replaced on every hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_requested: Option<String>,
    pub layers: usize,
    /// Bytes downloaded (compressed layer sizes).
    pub layer_bytes: u64,
    pub inventory: Inventory,
}

/// Inventory an image from its registry. `platform` picks the entry of an index.
pub async fn inventory_image(
    client: &RegistryClient,
    image: &ImageRef<'_>,
    platform: &Platform,
    limits: Limits,
) -> Result<ImageInventory, Error> {
    inventory_image_cached(client, image, platform, limits, None)
        .await
        .map(|(inv, _)| inv)
}

/// As [`inventory_image`], reading and filling `cache` by manifest digest: a known image costs
/// its manifest requests only. The flag says whether the cache answered.
pub async fn inventory_image_cached(
    client: &RegistryClient,
    image: &ImageRef<'_>,
    platform: &Platform,
    limits: Limits,
    cache: Option<&InventoryCache>,
) -> Result<(ImageInventory, bool), Error> {
    let resolved = client.image_manifest(image, platform).await?;
    let platform_requested = resolved
        .platform
        .as_ref()
        .filter(|chosen| manifest::is_substitute(platform, chosen))
        .map(|_| platform.to_string());
    if let Some(mut hit) = cache.and_then(|c| c.get(&resolved.manifest_digest)) {
        // The same content may be reached under another name, or for another platform.
        hit.image = image.to_string();
        hit.digest = resolved.digest;
        hit.platform_requested = platform_requested;
        return Ok((hit, true));
    }
    let mut walker = LayerWalker::new(inventory::wanted, limits).deriving(Deriving {
        wants: language::wants,
        derive: language::derive,
    });
    let mut layer_bytes = 0u64;
    for layer in &resolved.manifest.layers {
        check_layer_media_type(&layer.digest, &layer.media_type, !layer.urls.is_empty())?;
        let started = Instant::now();
        let response = client
            .blob(image.registry(), image.repository(), &layer.digest)
            .await?;
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        let reader = SyncIoBridge::new(StreamReader::new(stream));
        let digest = layer.digest.clone();
        let size = u64::try_from(layer.size).ok().filter(|s| *s > 0);
        // The tar reader is blocking; the walker moves into the blocking pool and back.
        let (back, stats) = tokio::task::spawn_blocking(move || {
            let stats = walker.apply(&digest, size, reader);
            (walker, stats)
        })
        .await
        .map_err(|e| Error::Layer {
            digest: layer.digest.clone(),
            reason: format!("layer reader stopped: {e}"),
        })?;
        walker = back;
        let stats = stats?;
        layer_bytes += stats.compressed_bytes;
        tracing::debug!(
            layer = %layer.digest,
            entries = stats.entries,
            bytes = stats.compressed_bytes,
            ms = started.elapsed().as_millis() as u64,
            "layer read"
        );
    }
    let files = walker.finish();
    let mut inventory = inventory::from_files(&files)?;
    inventory.add_derived(files.derived());
    let inv = ImageInventory {
        image: image.to_string(),
        digest: resolved.digest,
        manifest_digest: resolved.manifest_digest,
        platform: resolved.platform.map(|p| p.to_string()),
        platform_requested,
        layers: resolved.manifest.layers.len(),
        layer_bytes,
        inventory,
    };
    if let Some(c) = cache
        && let Err(e) = c.put(&inv)
    {
        // A cache that cannot be written costs speed, not correctness.
        tracing::warn!(error = %e, "inventory cache not written");
    }
    Ok((inv, false))
}

/// Match an inventory against a database and summarize: the output of a scan.
pub fn report(
    inv: &ImageInventory,
    db: &crate::osv::Database,
    duration: std::time::Duration,
) -> ScanReport {
    let os = inv.inventory.os.as_ref();
    let ecosystem = os.and_then(crate::osv::ecosystem_for).map(|e| e.name);
    let covered = os.is_some_and(|o| db.index_for(o).is_some());
    let os_packages = match (os, &ecosystem) {
        (None, _) => OsPackages::NotRecognised(inv.inventory.packages.len()),
        (Some(o), None) => OsPackages::NoData(format!(
            "no vulnerability data source is known for OS {:?} {}: its packages were not matched",
            o.id,
            o.version_id.as_deref().unwrap_or("")
        )),
        (Some(_), Some(e)) if !covered => OsPackages::NoData(format!(
            "the vulnerability database has no {e} data: its packages were not matched"
        )),
        (Some(_), Some(_)) => OsPackages::Judged(inv.inventory.packages.len()),
    };
    let languages: Vec<LanguageReach> = Language::ALL
        .into_iter()
        .filter_map(|l| {
            let packages = inv
                .inventory
                .language_packages
                .iter()
                .filter(|p| p.language == l)
                .count();
            (packages > 0).then(|| LanguageReach {
                ecosystem: l.osv_ecosystem().to_owned(),
                packages,
                judged: db.get(l.osv_ecosystem()).is_some(),
            })
        })
        .collect();
    let (coverage, gaps) = assess(&Reach {
        os: os_packages,
        languages: &languages,
        unreadable: &inv.inventory.unreadable,
        platform_substitute: inv
            .platform_requested
            .as_deref()
            .zip(inv.platform.as_deref()),
    });
    let findings = db.match_inventory(&inv.inventory);
    let summary = SeverityCounts::of(&findings);
    let fixable = SeverityCounts::of(findings.iter().filter(|f| f.fixable()));
    ScanReport {
        image: inv.image.clone(),
        digest: inv.digest.clone(),
        manifest_digest: inv.manifest_digest.clone(),
        platform: inv.platform.clone(),
        os: os.map(|o| {
            o.pretty_name.clone().unwrap_or_else(|| {
                format!("{} {}", o.id, o.version_id.as_deref().unwrap_or(""))
                    .trim()
                    .to_owned()
            })
        }),
        ecosystem: if covered { ecosystem } else { None },
        ecosystems: crate::osv::needed_ecosystems(&inv.inventory)
            .into_iter()
            .map(|e| e.name)
            .collect(),
        packages: inv.inventory.package_count(),
        summary,
        fixable,
        findings,
        notes: gaps.iter().map(|g| g.message.clone()).collect(),
        coverage,
        gaps,
        scanner_version: crate::SCANNER_VERSION.to_owned(),
        database_version: db.version(),
        scanned_at: jiff::Timestamp::now(),
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
    }
}

/// One image's scan result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    pub image: String,
    pub digest: String,
    pub manifest_digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// The OS's database ecosystem matched against; `None` when none could be (see `notes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
    /// Every ecosystem the image's packages belong to (the OS's first, then the languages'),
    /// whether the database had its data or not: what a re-scan would need.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecosystems: Vec<String>,
    /// Packages found, OS and language.
    pub packages: usize,
    pub summary: SeverityCounts,
    pub fixable: SeverityCounts,
    pub findings: Vec<Finding>,
    /// How much of the image was judged: zero findings mean a clean image only when `Full`.
    pub coverage: Coverage,
    /// What was not judged, and why; empty exactly when the coverage is `Full`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
    /// The gaps' messages alone, as reports before `gaps` carried them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub scanner_version: String,
    pub database_version: String,
    pub scanned_at: jiff::Timestamp,
    pub duration_ms: u64,
}

impl ScanReport {
    /// Findings at or above `threshold` (only those with a fix when `only_fixable`).
    pub fn failing(
        &self,
        threshold: Severity,
        only_fixable: bool,
    ) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| f.severity >= threshold && (!only_fixable || f.fixable()))
    }
}

/// Layers this scanner reads: tar, optionally gzip or zstd compressed. Encrypted layers and
/// foreign (Windows base) layers are refused by name rather than misread.
fn check_layer_media_type(digest: &str, media_type: &str, foreign: bool) -> Result<(), Error> {
    let refuse = |why: &str| {
        Err(Error::Layer {
            digest: digest.to_owned(),
            reason: format!("{why} (media type {media_type:?})"),
        })
    };
    if foreign || media_type.contains("foreign") || media_type.contains("nondistributable") {
        return refuse("foreign layers live outside the registry and are not scanned");
    }
    if media_type.ends_with("+encrypted") {
        return refuse("encrypted layers cannot be scanned");
    }
    if media_type.is_empty() || media_type.contains("tar") {
        return Ok(());
    }
    refuse("not a filesystem layer")
}

/// Inventories already taken, on disk, by manifest digest (content-addressed, so an entry
/// never goes stale; only the inventory format version invalidates it).
#[derive(Clone, Debug)]
pub struct InventoryCache {
    dir: PathBuf,
}

/// Bumped when the inventory changes in a way old cache entries do not have: 2 records the
/// unreadable parts of package databases, 3 the databases in formats not read (older
/// entries would claim none), 4 the language packages, 5 the packages of Berkeley DB and
/// ndb rpm databases (older entries list none and call the database unreadable).
const CACHE_FORMAT: u32 = 5;

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    format: u32,
    scanner: String,
    inventory: ImageInventory,
}

impl InventoryCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        InventoryCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, manifest_digest: &str) -> Option<PathBuf> {
        manifest::is_sha256_digest(manifest_digest).then(|| {
            self.dir
                .join(format!("{}.json", manifest_digest.replace(':', "-")))
        })
    }

    /// A cached inventory, if present and readable; a damaged entry counts as absent.
    pub fn get(&self, manifest_digest: &str) -> Option<ImageInventory> {
        let path = self.path(manifest_digest)?;
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<CacheEntry>(&bytes) {
            Ok(e) if e.format == CACHE_FORMAT && e.scanner == crate::SCANNER_VERSION => {
                Some(e.inventory)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring a damaged inventory cache entry");
                None
            }
        }
    }

    /// Store an inventory (write to a temporary file, then rename: readers never see half).
    pub fn put(&self, inv: &ImageInventory) -> Result<(), Error> {
        let Some(path) = self.path(&inv.manifest_digest) else {
            return Ok(());
        };
        let io = |what: &str, source| Error::Io {
            what: format!("{what} {}", self.dir.display()),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io("creating", e))?;
        let entry = CacheEntry {
            format: CACHE_FORMAT,
            scanner: crate::SCANNER_VERSION.to_owned(),
            inventory: inv.clone(),
        };
        let bytes = serde_json::to_vec(&entry)
            .map_err(|e| io("encoding an entry for", std::io::Error::other(e)))?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| io("writing in", e))?;
        std::io::Write::write_all(&mut tmp, &bytes).map_err(|e| io("writing in", e))?;
        tmp.persist(&path).map_err(|e| io("writing in", e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        let ok = [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "",
        ];
        for m in ok {
            assert!(check_layer_media_type("sha256:x", m, false).is_ok(), "{m}");
        }
        let refused = [
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                "foreign",
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                "foreign",
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                "encrypted",
            ),
            ("application/vnd.cncf.helm.chart.content.v1.tar+gzip", ""),
            ("application/vnd.in-toto+json", "not a filesystem layer"),
        ];
        for (m, why) in refused {
            if m.contains("helm") {
                // A tar by name: read as a layer and simply yields no packages.
                continue;
            }
            let err = check_layer_media_type("sha256:x", m, false)
                .expect_err(m)
                .to_string();
            assert!(err.contains(why), "{m}: {err}");
        }
    }

    #[test]
    fn cache_round_trip_and_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = InventoryCache::new(dir.path().join("inv"));
        let digest = format!("sha256:{}", "ab".repeat(32));
        let inv = ImageInventory {
            image: "docker.io/library/x:1".into(),
            digest: digest.clone(),
            manifest_digest: digest.clone(),
            platform: None,
            platform_requested: None,
            layers: 1,
            layer_bytes: 10,
            inventory: Inventory::default(),
        };
        assert_eq!(cache.get(&digest), None);
        cache.put(&inv).expect("put");
        assert_eq!(cache.get(&digest), Some(inv));
        std::fs::write(
            dir.path()
                .join("inv")
                .join(format!("{}.json", digest.replace(':', "-"))),
            b"{trunc",
        )
        .expect("damage");
        assert_eq!(cache.get(&digest), None, "a damaged entry is a miss");
        assert_eq!(
            cache.get("sha256:../../etc/passwd"),
            None,
            "only real digests name files"
        );
    }

    fn image(inventory: Inventory, platform: Option<(&str, &str)>) -> ImageInventory {
        let digest = format!("sha256:{}", "cd".repeat(32));
        ImageInventory {
            image: "registry.example/app:1".into(),
            digest: digest.clone(),
            manifest_digest: digest,
            platform: platform.map(|(_, scanned)| scanned.to_owned()),
            platform_requested: platform.map(|(asked, _)| asked.to_owned()),
            layers: 1,
            layer_bytes: 1,
            inventory,
        }
    }

    #[test]
    fn reports_say_how_much_was_judged() {
        use crate::coverage::GapReason as G;
        use crate::inventory::{OsRelease, Package, PackageKind, Unreadable};
        use crate::osv::{Database, Ecosystem, Index};

        let alpine = OsRelease {
            id: "alpine".into(),
            version_id: Some("3.20.3".into()),
            ..OsRelease::default()
        };
        let musl = Package {
            kind: PackageKind::Apk,
            name: "musl".into(),
            version: "1.2.5-r0".into(),
            source_name: Some("musl".into()),
            source_version: None,
            arch: None,
            location: "lib/apk/db/installed".into(),
        };
        let judged = Inventory {
            os: Some(alpine.clone()),
            packages: vec![musl.clone()],
            ..Inventory::default()
        };
        let partly = Inventory {
            unreadable: vec![Unreadable {
                path: "lib/apk/db/installed".into(),
                reason: "1 unreadable record(s) skipped (first: record 2 has no P: (name) line)"
                    .into(),
            }],
            ..judged.clone()
        };
        let unknown_os = Inventory {
            os: Some(OsRelease {
                id: "gentoo".into(),
                ..OsRelease::default()
            }),
            ..judged.clone()
        };
        let mut db = Database::new();
        let eco = Ecosystem::from_name("Alpine:v3.20").expect("ecosystem");
        db.insert(
            std::sync::Arc::new(Index::from_records(eco, [])),
            "ef".repeat(32),
        );
        let empty = Database::new();
        let table: &[(&str, ImageInventory, &Database, Coverage, &[G])] = &[
            (
                "judged",
                image(judged.clone(), None),
                &db,
                Coverage::Full,
                &[],
            ),
            (
                "no OS",
                image(Inventory::default(), None),
                &db,
                Coverage::None,
                &[G::NoOsRecognised],
            ),
            (
                "no source for the OS",
                image(unknown_os, None),
                &db,
                Coverage::None,
                &[G::NoVulnerabilityData],
            ),
            (
                "the database lacks the ecosystem",
                image(judged.clone(), None),
                &empty,
                Coverage::None,
                &[G::NoVulnerabilityData],
            ),
            (
                "a database read in part",
                image(partly, None),
                &db,
                Coverage::Partial,
                &[G::UnreadablePackageDatabase],
            ),
            (
                "another variant",
                image(judged, Some(("linux/arm/v6", "linux/arm/v7"))),
                &db,
                Coverage::Partial,
                &[G::ArchitectureNotScanned],
            ),
        ];
        for (what, inv, db, coverage, reasons) in table {
            let r = report(inv, db, std::time::Duration::ZERO);
            assert_eq!(r.coverage, *coverage, "{what}");
            let got: Vec<G> = r.gaps.iter().map(|g| g.reason).collect();
            assert_eq!(got, *reasons, "{what}");
            let messages: Vec<&str> = r.gaps.iter().map(|g| g.message.as_str()).collect();
            assert_eq!(r.notes, messages, "{what}: notes are the gaps' messages");
            assert_eq!(
                r.ecosystem.is_some(),
                *what == "judged" || r.coverage == Coverage::Partial,
                "{what}"
            );
        }
        let r = report(&image(Inventory::default(), None), &db, Default::default());
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["coverage"], "None");
        assert_eq!(json["gaps"][0]["reason"], "NoOsRecognised");
        assert_eq!(
            json["gaps"][0]["message"],
            "no OS recognised: no /etc/os-release, so OS packages cannot be matched to advisories"
        );
    }

    #[test]
    fn language_packages_are_judged_in_their_ecosystems_and_named_by_file() {
        use crate::inventory::language::LanguagePackage;
        use crate::osv::schema::Vulnerability;
        use crate::osv::{Database, Ecosystem, Index};

        let pkg = |language, name: &str, version: &str, location: &str| LanguagePackage {
            language,
            name: name.into(),
            version: version.into(),
            location: location.into(),
        };
        // A scratch image: one Go binary, and a Python tool whose project name is spelled
        // differently from its advisory's.
        let inventory = Inventory {
            language_packages: vec![
                pkg(Language::Go, "golang.org/x/net", "v0.17.0", "app"),
                pkg(Language::Go, "stdlib", "1.21.3", "app"),
                pkg(
                    Language::Python,
                    "pyyaml",
                    "5.3",
                    "usr/lib/python3/dist-packages/PyYAML-5.3.dist-info/METADATA",
                ),
                pkg(
                    Language::Npm,
                    "lodash",
                    "4.17.20",
                    "app/node_modules/lodash/package.json",
                ),
            ],
            ..Inventory::default()
        };
        let record = |json: &str| -> Vulnerability { serde_json::from_str(json).expect("fixture") };
        let go = [
            record(
                r#"{"id":"GO-2023-2102","aliases":["CVE-2023-39325"],"affected":[{"package":{"ecosystem":"Go","name":"golang.org/x/net"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.17.0"}]}]},{"package":{"ecosystem":"Go","name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.21.0"},{"fixed":"1.21.3"}]}]}]}"#,
            ),
            record(
                r#"{"id":"GO-2023-2185","affected":[{"package":{"ecosystem":"Go","name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.21.0"},{"fixed":"1.21.4"}]}]}]}"#,
            ),
        ];
        let pypi = [record(
            r#"{"id":"GHSA-8q59-q68h-6hv4","affected":[{"package":{"ecosystem":"PyPI","name":"PyYAML"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"5.4"}]}]}]}"#,
        )];
        let mut db = Database::new();
        for (name, records) in [("Go", &go[..]), ("PyPI", &pypi[..])] {
            let eco = Ecosystem::from_name(name).expect("ecosystem");
            db.insert(
                std::sync::Arc::new(Index::from_records(eco, records)),
                "ab".repeat(32),
            );
        }
        let r = report(&image(inventory, None), &db, std::time::Duration::ZERO);
        let got: Vec<_> = r
            .findings
            .iter()
            .map(|f| {
                (
                    f.id.as_str(),
                    f.ecosystem.as_deref(),
                    f.package.as_str(),
                    f.fixed_version.as_deref(),
                    f.location.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "GHSA-8q59-q68h-6hv4",
                    Some("PyPI"),
                    "pyyaml",
                    Some("5.4"),
                    Some("usr/lib/python3/dist-packages/PyYAML-5.3.dist-info/METADATA")
                ),
                (
                    "GO-2023-2185",
                    Some("Go"),
                    "stdlib",
                    Some("1.21.4"),
                    Some("app")
                ),
            ],
            "x/net 0.17.0 and Go 1.21.3 are the fixed versions of GO-2023-2102"
        );
        assert_eq!(r.packages, 4);
        assert_eq!(r.ecosystems, ["Go", "npm", "PyPI"]);
        // No npm data: those packages are a gap; the judged Go and PyPI ones make it Partial,
        // and with no OS packages the missing os-release is no gap.
        assert_eq!(r.coverage, Coverage::Partial);
        let gaps: Vec<&str> = r.gaps.iter().map(|g| g.message.as_str()).collect();
        assert_eq!(
            gaps,
            ["the vulnerability database has no npm data: 1 npm package(s) were not matched"]
        );
    }
}
