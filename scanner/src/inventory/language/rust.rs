//! Rust: the dependency list `cargo auditable` embeds in the binaries it builds, a
//! zlib-compressed JSON document in the `.dep-v0` section. Binaries built with plain
//! `cargo build` carry no such list, and give nothing.

use std::io::Read;

use object::read::{Object, ObjectSection};
use serde::Deserialize;

use super::{Language, LanguagePackage, unreadable};

const SECTION: &str = ".dep-v0";
/// The largest dependency list read once decompressed: thousands of crates take a few
/// hundred KiB; more is a damaged or hostile binary (a zip bomb, say).
const MAX_JSON: u64 = 8 * 1024 * 1024;

#[derive(Deserialize)]
struct AuditData {
    packages: Vec<Crate>,
}

#[derive(Deserialize)]
struct Crate {
    name: String,
    version: String,
    /// `crates.io`, `git`, `local`, `registry` or `other`.
    #[serde(default)]
    source: Option<String>,
    /// `build` for build-time dependencies, which are not in the binary.
    #[serde(default)]
    kind: Option<String>,
}

/// The crates.io packages compiled into an ELF binary, if it carries a dependency list.
pub fn read_elf(path: &str, data: &[u8]) -> Result<Vec<LanguagePackage>, crate::Error> {
    let file = object::File::parse(data).map_err(|e| unreadable(path, format!("not ELF: {e}")))?;
    let Some(section) = file.section_by_name(SECTION) else {
        return Ok(Vec::new());
    };
    let compressed = section
        .data()
        .map_err(|e| unreadable(path, format!("{SECTION}: {e}")))?;
    parse(path, compressed)
}

/// The packages of a compressed dependency list: those from crates.io (others have no
/// advisories there) that are built into the binary (not build-time only).
pub fn parse(path: &str, compressed: &[u8]) -> Result<Vec<LanguagePackage>, crate::Error> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| unreadable(path, format!("{SECTION}: not zlib: {e}")))?;
    if json.len() as u64 > MAX_JSON {
        return Err(unreadable(
            path,
            format!("{SECTION}: more than {MAX_JSON} bytes once decompressed"),
        ));
    }
    let audit: AuditData = serde_json::from_slice(&json)
        .map_err(|e| unreadable(path, format!("{SECTION}: not a dependency list: {e}")))?;
    Ok(audit
        .packages
        .iter()
        .filter(|c| c.source.as_deref().is_none_or(|s| s == "crates.io"))
        .filter(|c| c.kind.as_deref() != Some("build"))
        .map(|c| LanguagePackage::new(Language::Rust, &c.name, &c.version, path))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).expect("compress");
        e.finish().expect("compress")
    }

    #[test]
    fn crates_io_runtime_dependencies() {
        let list = zlib(
            br#"{"packages": [
                {"name": "app", "version": "0.1.0", "source": "local", "dependencies": [1, 2], "root": true},
                {"name": "serde", "version": "1.0.193", "source": "crates.io"},
                {"name": "cc", "version": "1.0.83", "source": "crates.io", "kind": "build"},
                {"name": "forked", "version": "0.3.0", "source": "git"},
                {"name": "regex", "version": "1.10.2", "source": "crates.io", "kind": "runtime"}
            ]}"#,
        );
        let got: Vec<(String, String)> = parse("usr/bin/app", &list)
            .expect("reads")
            .into_iter()
            .map(|p| {
                assert_eq!(p.language, Language::Rust);
                assert_eq!(p.location, "usr/bin/app");
                (p.name, p.version)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("serde".to_string(), "1.0.193".to_string()),
                ("regex".into(), "1.10.2".into())
            ]
        );
    }

    #[test]
    fn damaged_or_hostile_lists_are_refused() {
        assert!(parse("x", b"not zlib").is_err());
        assert!(parse("x", &zlib(b"{\"packages\": 3}")).is_err());
        // A bomb: 9 MiB of spaces, compressed to a few KiB.
        let bomb = zlib(&vec![b' '; 9 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let err = parse("usr/bin/x", &bomb).expect_err("refused");
        assert!(err.to_string().contains("once decompressed"), "{err}");
    }

    #[test]
    fn binaries_without_a_list_give_nothing() {
        let me = std::fs::read(std::env::current_exe().expect("own path")).expect("own binary");
        assert_eq!(read_elf("self", &me).expect("reads"), []);
        assert!(read_elf("x", b"\x7fELF").is_err());
    }
}
