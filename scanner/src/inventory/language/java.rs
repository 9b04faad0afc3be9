//! Java: jar, war and ear archives, and the archives nested in them (a Spring Boot jar's
//! `BOOT-INF/lib/*.jar`, a war's `WEB-INF/lib/*.jar`). Each Maven artifact is named by the
//! `META-INF/maven/GROUP/ARTIFACT/pom.properties` its archive holds.
//!
//! Archives come from images, so they are read as hostile: the number of entries, the size
//! of each file read, the bytes decompressed in all and the depth of nesting are bounded,
//! and whatever crosses a bound is refused with the archive's path and the entry's, not
//! read. A damaged nested archive does not hide the rest of its parent.

use std::io::{Cursor, Read};

use super::{LanguagePackage, maven};
use crate::inventory::Unreadable;

/// Bounds on what one top-level archive may make the scanner read.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Entries of one archive.
    pub max_entries: usize,
    /// One `pom.properties`.
    pub max_properties_bytes: u64,
    /// One nested archive, decompressed into memory.
    pub max_nested_bytes: u64,
    /// Everything decompressed from one top-level archive and all it nests.
    pub max_total_bytes: u64,
    /// Archives within archives (a jar in a war is depth 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: 100_000,
            max_properties_bytes: 64 * 1024,
            max_nested_bytes: 128 * 1024 * 1024,
            max_total_bytes: 512 * 1024 * 1024,
            max_depth: 4,
        }
    }
}

/// What an archive (and the archives in it) held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Archive {
    pub packages: Vec<LanguagePackage>,
    /// Archives or entries that could not be read, named `outer.jar!inner.jar!entry`.
    pub unreadable: Vec<Unreadable>,
}

/// Whether `path` names a Java archive.
pub fn is_archive(path: &str) -> bool {
    let lower = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    [".jar", ".war", ".ear", ".jpi", ".hpi"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

/// The Maven artifacts in the archive at `path` (in an image layer), whose bytes are `data`.
pub fn read(path: &str, data: &[u8], limits: Limits) -> Archive {
    let mut out = Archive::default();
    let mut budget = limits.max_total_bytes;
    walk(path, data, 0, limits, &mut budget, &mut out);
    out
}

fn walk(at: &str, data: &[u8], depth: usize, limits: Limits, budget: &mut u64, out: &mut Archive) {
    let fail = |out: &mut Archive, path: String, reason: String| {
        out.unreadable.push(Unreadable { path, reason });
    };
    let mut zip = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(zip) => zip,
        Err(e) => {
            return fail(
                out,
                at.to_owned(),
                format!("not a readable zip archive: {e}"),
            );
        }
    };
    if zip.len() > limits.max_entries {
        return fail(
            out,
            at.to_owned(),
            format!(
                "{} entries, more than the {} allowed",
                zip.len(),
                limits.max_entries
            ),
        );
    }
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(entry) => entry,
            Err(e) => {
                fail(out, format!("{at}!#{i}"), format!("unreadable entry: {e}"));
                continue;
            }
        };
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().unwrap_or_default().into_owned();
        let nested = is_archive(&name);
        if !nested && !maven::is_pom_properties(&name) {
            continue;
        }
        let location = format!("{at}!{name}");
        if nested && depth >= limits.max_depth {
            fail(
                out,
                location,
                format!("nested more than {} archives deep", limits.max_depth),
            );
            continue;
        }
        let limit = if nested {
            limits.max_nested_bytes
        } else {
            limits.max_properties_bytes
        }
        .min(*budget);
        // The declared size can lie: read at most one byte past the limit, whatever it says.
        let mut bytes = Vec::new();
        if let Err(e) = (&mut entry).take(limit + 1).read_to_end(&mut bytes) {
            fail(out, location, format!("cannot decompress: {e}"));
            continue;
        }
        *budget = budget.saturating_sub(bytes.len() as u64);
        if bytes.len() as u64 > limit {
            fail(
                out,
                location,
                format!("more than {limit} bytes decompressed (the limit left for this archive)"),
            );
            continue;
        }
        if nested {
            walk(&location, &bytes, depth + 1, limits, budget, out);
        } else {
            match maven::read(&location, &bytes) {
                Ok(package) => out.packages.push(package),
                Err(e) => fail(out, location, e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::inventory::language::Language;

    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            w.start_file(*name, opts).expect("entry");
            w.write_all(bytes).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    fn pom(group: &str, artifact: &str, version: &str) -> Vec<u8> {
        format!("groupId={group}\nartifactId={artifact}\nversion={version}\n").into_bytes()
    }

    fn names(a: &Archive) -> Vec<(String, String, String)> {
        a.packages
            .iter()
            .map(|p| {
                assert_eq!(p.language, Language::Java);
                (p.name.clone(), p.version.clone(), p.location.clone())
            })
            .collect()
    }

    #[test]
    fn archives_by_name() {
        for (path, want) in [
            ("app/lib/log4j-core-2.14.1.jar", true),
            ("opt/app.WAR", true),
            ("opt/app.ear", true),
            ("opt/.jar", false),
            ("opt/app.jar.sha1", false),
            ("opt/jar", false),
        ] {
            assert_eq!(is_archive(path), want, "{path}");
        }
    }

    #[test]
    fn nested_archives_and_their_artifacts() {
        let log4j = jar(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
            (
                "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
                &pom("org.apache.logging.log4j", "log4j-core", "2.14.1"),
            ),
            (
                "org/apache/logging/log4j/core/Logger.class",
                b"\xca\xfe\xba\xbe",
            ),
        ]);
        let boot = jar(&[
            (
                "META-INF/maven/com.example/app/pom.properties",
                &pom("com.example", "app", "1.0.0"),
            ),
            ("BOOT-INF/lib/log4j-core-2.14.1.jar", &log4j),
            ("BOOT-INF/lib/broken.jar", b"not a zip"),
        ]);
        let war = jar(&[("WEB-INF/lib/app.jar", &boot)]);
        let got = read("opt/app.war", &war, Limits::default());
        assert_eq!(
            names(&got),
            [
                (
                    "com.example:app".to_string(),
                    "1.0.0".to_string(),
                    "opt/app.war!WEB-INF/lib/app.jar!META-INF/maven/com.example/app/pom.properties"
                        .to_string()
                ),
                (
                    "org.apache.logging.log4j:log4j-core".into(),
                    "2.14.1".into(),
                    "opt/app.war!WEB-INF/lib/app.jar!BOOT-INF/lib/log4j-core-2.14.1.jar!META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties".into()
                ),
            ]
        );
        // The damaged jar is named, and did not hide its neighbours.
        assert_eq!(got.unreadable.len(), 1, "{:?}", got.unreadable);
        assert_eq!(
            got.unreadable[0].path,
            "opt/app.war!WEB-INF/lib/app.jar!BOOT-INF/lib/broken.jar"
        );
    }

    #[test]
    fn bounds_refuse_bombs_and_depth() {
        // A properties file of 1 MiB of zeros: a few KiB compressed, refused decompressed.
        let bomb = jar(&[(
            "META-INF/maven/g/a/pom.properties",
            &vec![b'0'; 1024 * 1024],
        )]);
        assert!(bomb.len() < 16 * 1024);
        let got = read("x.jar", &bomb, Limits::default());
        assert!(got.packages.is_empty());
        assert_eq!(
            got.unreadable[0].path,
            "x.jar!META-INF/maven/g/a/pom.properties"
        );
        assert!(
            got.unreadable[0].reason.contains("more than 65536 bytes"),
            "{:?}",
            got.unreadable
        );

        // Jars nested five deep: the fifth is refused, what is above it is read.
        let mut inner = jar(&[(
            "META-INF/maven/g/deep/pom.properties",
            &pom("g", "deep", "1"),
        )]);
        for level in (1..=5).rev() {
            inner = jar(&[
                (
                    &format!("META-INF/maven/g/l{level}/pom.properties"),
                    &pom("g", &format!("l{level}"), "1"),
                ),
                ("lib/inner.jar", &inner),
            ]);
        }
        let got = read("top.jar", &inner, Limits::default());
        let found: Vec<String> = got.packages.iter().map(|p| p.name.clone()).collect();
        assert_eq!(found, ["g:l1", "g:l2", "g:l3", "g:l4", "g:l5"]);
        assert_eq!(got.unreadable.len(), 1);
        assert!(
            got.unreadable[0].reason.contains("nested more than 4"),
            "{:?}",
            got.unreadable
        );

        // The budget of the whole archive.
        let big = jar(&[(
            "lib/a.jar",
            &jar(&[("META-INF/maven/g/a/pom.properties", &vec![b'1'; 2000])]),
        )]);
        let small = Limits {
            max_total_bytes: 1000,
            ..Limits::default()
        };
        let got = read("b.jar", &big, small);
        assert!(
            got.unreadable[0].reason.contains("limit left"),
            "{:?}",
            got.unreadable
        );

        // Too many entries.
        let many: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("f{i}"), Vec::new())).collect();
        let many: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let got = read(
            "m.jar",
            &jar(&many),
            Limits {
                max_entries: 10,
                ..Limits::default()
            },
        );
        assert!(
            got.unreadable[0].reason.contains("20 entries"),
            "{:?}",
            got.unreadable
        );
        assert!(
            read("n.jar", b"PK\x03\x04 truncated", Limits::default())
                .unreadable
                .len()
                == 1
        );
    }
}
