//! Go: the build information the Go toolchain embeds in every binary it links: the
//! toolchain's version (the standard library's advisories depend on it), the main module,
//! and every dependency module with its version and replacement.
//!
//! It lives in the `.go.buildinfo` section (or, where sections are stripped, 16-byte
//! aligned in a writable segment) behind the magic `\xff Go buildinf:`. Since Go 1.18 the
//! two strings (version, module information) follow the 32-byte header inline, each
//! prefixed by its length as a varint; before, the header held pointers to Go string
//! headers, which are read here through the program's segments.

use object::read::{Object, ObjectSection, ObjectSegment};

use super::{Language, LanguagePackage, unreadable};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
/// No real module list comes near this; a larger claimed length is a damaged binary.
const MAX_STRING: u64 = 16 * 1024 * 1024;

/// What a Go binary says about how it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.21.5`.
    pub go_version: String,
    /// The main package's import path.
    pub path: Option<String>,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub version: String,
    pub replace: Option<Box<Module>>,
}

/// The build information of an ELF binary; `None` when it is no Go binary (or one built
/// without build information).
pub fn read_elf(path: &str, data: &[u8]) -> Result<Option<BuildInfo>, crate::Error> {
    let file = object::File::parse(data).map_err(|e| unreadable(path, format!("not ELF: {e}")))?;
    let Some(header) = find_header(&file) else {
        return Ok(None);
    };
    let ptr_size = usize::from(header[14]);
    let flags = header[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let rest = &header[HEADER_LEN..];
        let (version, used) = varint_string(rest).ok_or_else(|| bad(path, "version"))?;
        let (modinfo, _) = varint_string(&rest[used..]).ok_or_else(|| bad(path, "module list"))?;
        (version.to_vec(), modinfo.to_vec())
    } else {
        // Go before 1.18: two pointers to string headers {data, len}.
        if ptr_size != 4 && ptr_size != 8 {
            return Err(bad(path, "pointer size"));
        }
        let big_endian = flags & 1 != 0;
        let word = |bytes: &[u8]| read_word(bytes, ptr_size, big_endian);
        let at = |addr: u64, len: u64| segment_bytes(&file, addr, len);
        let string = |header_addr: u64| -> Option<Vec<u8>> {
            let h = at(header_addr, 2 * ptr_size as u64)?;
            let (ptr, len) = (word(&h[..ptr_size])?, word(&h[ptr_size..])?);
            if len > MAX_STRING {
                return None;
            }
            at(ptr, len).map(<[u8]>::to_vec)
        };
        let p1 = word(header.get(16..16 + ptr_size).unwrap_or_default());
        let p2 = word(
            header
                .get(16 + ptr_size..16 + 2 * ptr_size)
                .unwrap_or_default(),
        );
        (
            p1.and_then(string).ok_or_else(|| bad(path, "version"))?,
            p2.and_then(string)
                .ok_or_else(|| bad(path, "module list"))?,
        )
    };
    let go_version = String::from_utf8_lossy(&version).into_owned();
    let mut info = parse_modinfo(&String::from_utf8_lossy(strip_sentinels(&modinfo)));
    info.go_version = go_version;
    Ok(Some(info))
}

fn bad(path: &str, what: &str) -> crate::Error {
    unreadable(path, format!("damaged Go build information ({what})"))
}

/// The buildinfo header and what follows it to the end of its section or segment.
fn find_header<'d>(file: &object::File<'d>) -> Option<&'d [u8]> {
    if let Some(section) = file.section_by_name(".go.buildinfo")
        && let Ok(data) = section.data()
        && data.starts_with(MAGIC)
        && data.len() >= HEADER_LEN
    {
        return Some(data);
    }
    // Stripped of section headers: Go looks in the first writable, not executable, loaded
    // segment (the data segment) at 16-byte alignment. Read-only data is not searched: any
    // program may hold the magic as a constant.
    let data_segment = file.segments().find(|segment| {
        matches!(segment.flags(), object::SegmentFlags::Elf { p_flags }
            if p_flags & object::elf::PF_W != 0 && p_flags & object::elf::PF_X == 0)
    });
    data_segment.and_then(|segment| {
        let data = segment.data().ok()?;
        (0..data.len().saturating_sub(HEADER_LEN - 1))
            .step_by(16)
            .find(|&at| data[at..].starts_with(MAGIC))
            .map(|at| &data[at..])
    })
}

fn segment_bytes<'d>(file: &object::File<'d>, address: u64, len: u64) -> Option<&'d [u8]> {
    file.segments()
        .find_map(|s| s.data_range(address, len).ok().flatten())
}

fn read_word(bytes: &[u8], size: usize, big_endian: bool) -> Option<u64> {
    let b = bytes.get(..size)?;
    Some(match (size, big_endian) {
        (4, false) => u64::from(u32::from_le_bytes(b.try_into().ok()?)),
        (4, true) => u64::from(u32::from_be_bytes(b.try_into().ok()?)),
        (8, false) => u64::from_le_bytes(b.try_into().ok()?),
        (8, true) => u64::from_be_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// A string prefixed by its length as an unsigned varint, and the bytes it took.
fn varint_string(data: &[u8]) -> Option<(&[u8], usize)> {
    let mut len: u64 = 0;
    for (i, &b) in data.iter().enumerate().take(10) {
        len |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if len > MAX_STRING {
                return None;
            }
            let start = i + 1;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            return Some((data.get(start..end)?, end));
        }
    }
    None
}

/// The module list is framed by 16 bytes on each side, so that it can be found in memory.
fn strip_sentinels(modinfo: &[u8]) -> &[u8] {
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    }
}

/// The module list as `go version -m` prints it: `path`, `mod`, `dep` and `=>` lines,
/// tab-separated.
pub fn parse_modinfo(text: &str) -> BuildInfo {
    let mut info = BuildInfo::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let module = || Module {
            path: fields.get(1).copied().unwrap_or_default().to_owned(),
            version: fields.get(2).copied().unwrap_or_default().to_owned(),
            replace: None,
        };
        match fields.first().copied() {
            Some("path") => info.path = fields.get(1).map(|p| (*p).to_owned()),
            Some("mod") => info.main = Some(module()),
            Some("dep") => info.deps.push(module()),
            Some("=>") => {
                let target = info.deps.last_mut().or(info.main.as_mut());
                if let Some(replaced) = target {
                    replaced.replace = Some(Box::new(module()));
                }
            }
            _ => {}
        }
    }
    info
}

impl BuildInfo {
    /// The packages advisories are written against: the standard library (`stdlib` at the
    /// toolchain's version), the main module when it has a version, and every dependency
    /// as it was built (a replacement by another module counts as that module; one by a
    /// local directory, which has no version, keeps the original).
    pub fn packages(&self, location: &str) -> Vec<LanguagePackage> {
        let mut out = Vec::new();
        if let Some(version) = stdlib_version(&self.go_version) {
            out.push(LanguagePackage::new(
                Language::Go,
                "stdlib",
                &version,
                location,
            ));
        }
        let mut add = |m: &Module| {
            let built = match &m.replace {
                Some(r) if !r.version.is_empty() => r,
                _ => m,
            };
            if !built.path.is_empty() && !built.version.is_empty() && built.version != "(devel)" {
                out.push(LanguagePackage::new(
                    Language::Go,
                    &built.path,
                    &built.version,
                    location,
                ));
            }
        };
        if let Some(main) = &self.main {
            add(main);
        }
        self.deps.iter().for_each(add);
        out
    }
}

/// The toolchain's version as a SemVer, as OSV's Go advisories give the standard
/// library's: `go1.21.5` → `1.21.5`, `go1.20` → `1.20.0`, `go1.21rc2` → `1.21.0-rc.2`.
/// `None` for development builds.
pub fn stdlib_version(go_version: &str) -> Option<String> {
    let v = go_version.split_whitespace().next()?.strip_prefix("go")?;
    let (release, pre) = match v.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&v[..i], Some(&v[i..])),
        None => (v, None),
    };
    let numbers: Vec<&str> = release.split('.').collect();
    if numbers.is_empty()
        || numbers.len() > 3
        || numbers
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut semver = (0..3)
        .map(|i| numbers.get(i).copied().unwrap_or("0"))
        .collect::<Vec<_>>()
        .join(".");
    if let Some(pre) = pre {
        let digits = pre.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        let word = &pre[..pre.len() - digits.len()];
        if word.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        semver.push('-');
        semver.push_str(word);
        if !digits.is_empty() {
            semver.push('.');
            semver.push_str(digits);
        }
    }
    Some(semver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_lists() {
        let info = parse_modinfo(
            "path\texample.com/cmd/app\n\
             mod\texample.com\tv1.4.0\th1:abc=\n\
             dep\tgolang.org/x/net\tv0.17.0\th1:def=\n\
             dep\tgithub.com/old/lib\tv1.0.0\n\
             =>\tgithub.com/fork/lib\tv1.0.1-fix\th1:ghi=\n\
             dep\tgithub.com/local/lib\tv0.0.0-00010101000000-000000000000\n\
             =>\t../lib\t\n\
             build\tGOARCH=amd64\n",
        );
        assert_eq!(info.path.as_deref(), Some("example.com/cmd/app"));
        let got: Vec<(String, String)> = BuildInfo {
            go_version: "go1.21.5".into(),
            ..info
        }
        .packages("app/bin/app")
        .into_iter()
        .map(|p| {
            assert_eq!(p.location, "app/bin/app");
            assert_eq!(p.language, Language::Go);
            (p.name, p.version)
        })
        .collect();
        let want = [
            ("stdlib", "1.21.5"),
            ("example.com", "v1.4.0"),
            ("golang.org/x/net", "v0.17.0"),
            ("github.com/fork/lib", "v1.0.1-fix"),
            ("github.com/local/lib", "v0.0.0-00010101000000-000000000000"),
        ];
        assert_eq!(got, want.map(|(n, v)| (n.to_string(), v.to_string())));

        // A main module built from its own checkout has no version.
        let info = parse_modinfo("mod\texample.com\t(devel)\t\n");
        assert_eq!(info.packages("x").len(), 0);
    }

    #[test]
    fn toolchain_versions() {
        for (go, want) in [
            ("go1.21.5", Some("1.21.5")),
            ("go1.20", Some("1.20.0")),
            ("go1.21rc2", Some("1.21.0-rc.2")),
            ("go1.9beta1", Some("1.9.0-beta.1")),
            ("go1.22.0 X:nocoverageredesign", Some("1.22.0")),
            ("devel go1.22-abc123 Mon Jan 1", None),
            ("go", None),
            ("go1..2", None),
            ("1.21.5", None),
        ] {
            assert_eq!(stdlib_version(go).as_deref(), want, "{go}");
        }
    }

    #[test]
    fn varints_and_sentinels() {
        assert_eq!(varint_string(b"\x03abcde"), Some((&b"abc"[..], 4)));
        assert_eq!(varint_string(b"\x05abc"), None);
        assert_eq!(varint_string(b"\x80"), None);
        assert_eq!(
            varint_string(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            None
        );
        let mut framed = vec![0u8; 16];
        framed.extend_from_slice(b"path\tx\n");
        framed.extend_from_slice(&[1u8; 16]);
        assert_eq!(strip_sentinels(&framed), b"path\tx\n");
        assert_eq!(strip_sentinels(b"path\tx\n"), b"path\tx\n");
    }

    /// Debian's Go binaries (installed by hack/scan-tools.sh for the tests): built in GOPATH
    /// mode, so only the toolchain and the main package's path are recorded.
    #[test]
    fn a_real_go_binary() {
        let path = "/usr/bin/docker-registry";
        let data = std::fs::read(path).unwrap_or_else(|e| {
            panic!("{path}: {e} (the Debian package docker-registry, from hack/scan-tools.sh)")
        });
        let info = read_elf(path, &data).expect("reads").expect("a Go binary");
        assert!(info.go_version.starts_with("go1."), "{info:?}");
        assert_eq!(
            info.path.as_deref(),
            Some("github.com/docker/distribution/cmd/registry")
        );
        let packages = info.packages(path);
        assert_eq!(packages.len(), 1, "{packages:?}");
        assert_eq!(packages[0].name, "stdlib");
        assert_eq!(
            Some(packages[0].version.clone()),
            stdlib_version(&info.go_version)
        );

        // Without section headers, the magic is found in the data segment.
        let mut headless = data.clone();
        headless[0x28..0x30].fill(0); // e_shoff
        headless[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
        let found = read_elf(path, &headless).expect("reads").expect("still Go");
        assert_eq!(found, info);

        // Not Go: this test's own binary; not ELF at all.
        let me = std::fs::read(std::env::current_exe().expect("own path")).expect("own binary");
        assert_eq!(read_elf("self", &me).expect("reads"), None);
        assert!(read_elf("x", b"#!/bin/sh\n").is_err());
        // Cut short: an error or nothing, never a panic.
        for len in [64, 4096, data.len() / 2] {
            let _ = read_elf(path, &data[..len]);
        }
    }
}
