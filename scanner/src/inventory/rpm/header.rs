//! The rpm header blob, the one record every rpm database format stores per package: a
//! big-endian index of (tag, type, offset, count) entries and the data they point into.
//! Only the few tags the inventory needs are read, each offset checked against the blob.

use crate::inventory::{Package, PackageKind};

/// The tags of an rpm header this inventory reads.
const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own limits (`hdrchk`): at most 64 Ki entries and 256 MiB of data per header.
const MAX_ENTRIES: u32 = 0xffff;
const MAX_DATA: u32 = 0x0fff_ffff;

/// What the inventory needs from one rpm header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<u32>,
    pub arch: Option<String>,
    /// `openssl-3.0.7-24.el9.src.rpm`.
    pub source_rpm: Option<String>,
}

impl Header {
    /// The package, or `None` for the `gpg-pubkey` pseudo packages rpm keeps imported keys in.
    pub(super) fn into_package(self, path: &str) -> Option<Package> {
        if self.name == "gpg-pubkey" {
            return None;
        }
        let version = self.evr();
        let (source_name, source_version) =
            match self.source_rpm.as_deref().and_then(split_source_rpm) {
                Some((name, version)) => (Some(name), Some(version)),
                None => (None, None),
            };
        Some(Package {
            kind: PackageKind::Rpm,
            name: self.name,
            version,
            source_name,
            source_version,
            arch: self.arch,
            location: path.to_string(),
        })
    }

    /// `[epoch:]version-release`, as rpm's `%{EVR}` prints it.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) => format!("{epoch}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }
}

/// `openssl-3.0.7-24.el9.src.rpm` → (`openssl`, `3.0.7-24.el9`). The source rpm's name
/// carries no epoch.
pub fn split_source_rpm(file: &str) -> Option<(String, String)> {
    let nvr = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let (name_version, _release) = nvr.rsplit_once('-')?;
    let (name, _version) = name_version.rsplit_once('-')?;
    if name.is_empty() {
        return None;
    }
    let version_release = nvr.get(name.len() + 1..)?;
    Some((name.to_string(), version_release.to_string()))
}

/// Parse an rpm header blob as the database stores it: big-endian entry count and data
/// length, 16-byte entries (tag, type, offset, count), then the data store.
pub fn parse_header(blob: &[u8]) -> Result<Header, String> {
    let be32 = |at: usize| -> Option<u32> {
        let bytes = blob.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes(<[u8; 4]>::try_from(bytes).ok()?))
    };
    let entries = be32(0).ok_or("shorter than a header preamble")?;
    let data_len = be32(4).ok_or("shorter than a header preamble")?;
    if entries == 0 || entries > MAX_ENTRIES {
        return Err(format!(
            "has {entries} entries (at most {MAX_ENTRIES} allowed)"
        ));
    }
    if data_len > MAX_DATA {
        return Err(format!(
            "declares {data_len} bytes of data (at most {MAX_DATA} allowed)"
        ));
    }
    // Both factors are bounded above, so this cannot overflow even on 32-bit targets.
    let index_len = entries as usize * 16;
    let data_start = 8 + index_len;
    let data_end = data_start + data_len as usize;
    let data = blob.get(data_start..data_end).ok_or_else(|| {
        format!(
            "is {} bytes but its {entries} entries and {data_len} bytes of data need {data_end}",
            blob.len()
        )
    })?;

    let find = |tag: u32| -> Option<(u32, usize, u32)> {
        (0..index_len / 16).find_map(|i| {
            let at = 8 + i * 16;
            (be32(at)? == tag).then_some(())?;
            Some((be32(at + 4)?, be32(at + 8)? as usize, be32(at + 12)?))
        })
    };
    let string = |tag: u32, tag_name: &str| -> Result<Option<String>, String> {
        let Some((kind, offset, count)) = find(tag) else {
            return Ok(None);
        };
        if kind != TYPE_STRING && kind != TYPE_I18NSTRING {
            return Err(format!("{tag_name} has type {kind}, not a string"));
        }
        if count == 0 {
            return Err(format!("{tag_name} has no value"));
        }
        let rest = data.get(offset..).ok_or_else(|| {
            format!("{tag_name} points outside the header data ({offset} > {data_len})")
        })?;
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| format!("{tag_name} is not terminated"))?;
        let bytes = rest.get(..end).unwrap_or_default();
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    };
    let required = |tag: u32, tag_name: &str| -> Result<String, String> {
        string(tag, tag_name)?.ok_or_else(|| format!("has no {tag_name} tag"))
    };
    let epoch = match find(TAG_EPOCH) {
        None => None,
        Some((TYPE_INT32, offset, count)) if count >= 1 => {
            let bytes = data.get(offset..offset.saturating_add(4)).ok_or_else(|| {
                format!("EPOCH points outside the header data ({offset} > {data_len})")
            })?;
            Some(u32::from_be_bytes(
                <[u8; 4]>::try_from(bytes).map_err(|_| "EPOCH is truncated")?,
            ))
        }
        Some((kind, _, count)) => {
            return Err(format!(
                "EPOCH has type {kind} and count {count}, not one int32"
            ));
        }
    };
    Ok(Header {
        name: required(TAG_NAME, "NAME")?,
        version: required(TAG_VERSION, "VERSION")?,
        release: required(TAG_RELEASE, "RELEASE")?,
        epoch,
        arch: string(TAG_ARCH, "ARCH")?,
        source_rpm: string(TAG_SOURCERPM, "SOURCERPM")?,
    })
}

/// Header blobs built in tests, laid out as rpm lays them out.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// A header blob from (tag, type, count, data) entries, laid out as rpm does.
    pub fn header(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, count, bytes) in entries {
            if *kind == TYPE_INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            for word in [*tag, *kind, data.len() as u32, *count] {
                index.extend_from_slice(&word.to_be_bytes());
            }
            data.extend_from_slice(bytes);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    pub fn s(tag: u32, value: &str) -> (u32, u32, u32, Vec<u8>) {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        (tag, TYPE_STRING, 1, bytes)
    }

    pub fn package(
        name: &str,
        version: &str,
        release: &str,
        epoch: Option<u32>,
        srpm: &str,
    ) -> Vec<u8> {
        let mut entries = vec![
            s(TAG_NAME, name),
            s(TAG_VERSION, version),
            s(TAG_RELEASE, release),
            s(TAG_ARCH, "x86_64"),
            s(TAG_SOURCERPM, srpm),
        ];
        if let Some(epoch) = epoch {
            entries.push((TAG_EPOCH, TYPE_INT32, 1, epoch.to_be_bytes().to_vec()));
        }
        header(&entries)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{header, package, s};
    use super::*;

    #[test]
    fn header_fields_and_evr() {
        let blob = package(
            "openssl-libs",
            "3.0.7",
            "24.el9",
            Some(1),
            "openssl-3.0.7-24.el9.src.rpm",
        );
        let h = parse_header(&blob).expect("header");
        assert_eq!(h.name, "openssl-libs");
        assert_eq!(h.evr(), "1:3.0.7-24.el9");
        assert_eq!(h.arch.as_deref(), Some("x86_64"));
        let p = h.into_package("var/lib/rpm/rpmdb.sqlite").expect("package");
        assert_eq!(p.source_name.as_deref(), Some("openssl"));
        assert_eq!(p.source_version.as_deref(), Some("3.0.7-24.el9"));
        assert_eq!(p.kind, PackageKind::Rpm);

        let h = parse_header(&package(
            "bash",
            "5.1.8",
            "9.el9",
            None,
            "bash-5.1.8-9.el9.src.rpm",
        ))
        .expect("header");
        assert_eq!(h.evr(), "5.1.8-9.el9");
        // An i18n string (SUMMARY-like) type is accepted for string tags.
        let blob = header(&[
            (TAG_NAME, TYPE_I18NSTRING, 1, b"x\0".to_vec()),
            s(TAG_VERSION, "1"),
            s(TAG_RELEASE, "1"),
        ]);
        assert_eq!(parse_header(&blob).expect("header").name, "x");
    }

    #[test]
    fn source_rpm_names() {
        let table: &[(&str, Option<(&str, &str)>)] = &[
            (
                "openssl-3.0.7-24.el9.src.rpm",
                Some(("openssl", "3.0.7-24.el9")),
            ),
            (
                "python3.11-3.11.7-1.el9.src.rpm",
                Some(("python3.11", "3.11.7-1.el9")),
            ),
            (
                "glibc-2.34-100.el9_4.2.src.rpm",
                Some(("glibc", "2.34-100.el9_4.2")),
            ),
            (
                "kernel-rt-5.14.0-1.nosrc.rpm",
                Some(("kernel-rt", "5.14.0-1")),
            ),
            ("noversion.src.rpm", None),
            ("-1-2.src.rpm", None),
            ("openssl-3.0.7-24.el9.rpm", None),
            ("", None),
        ];
        for (file, want) in table {
            let got = split_source_rpm(file);
            let want = want.map(|(n, v)| (n.to_string(), v.to_string()));
            assert_eq!(got, want, "{file}");
        }
    }

    #[test]
    fn hostile_headers_are_errors() {
        let good = package("a", "1", "1", Some(2), "a-1-1.src.rpm");
        let mut huge_count = good.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut huge_data = good.clone();
        huge_data[4..8].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
        let mut bad_offset = good.clone();
        // NAME's offset (first entry, bytes 16..20) far past the data.
        bad_offset[16..20].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        let mut unterminated = header(&[(TAG_NAME, TYPE_STRING, 1, b"abc".to_vec())]);
        unterminated.truncate(unterminated.len());
        let wrong_type = header(&[(TAG_NAME, TYPE_INT32, 1, vec![0, 0, 0, 1])]);
        let bad_epoch = header(&[
            s(TAG_NAME, "a"),
            s(TAG_VERSION, "1"),
            s(TAG_RELEASE, "1"),
            (TAG_EPOCH, TYPE_STRING, 1, b"1\0".to_vec()),
        ]);
        let cases: &[(&str, Vec<u8>, &str)] = &[
            ("empty", vec![], "shorter than a header preamble"),
            (
                "preamble only",
                vec![0, 0, 0, 1],
                "shorter than a header preamble",
            ),
            ("no entries", vec![0; 8], "has 0 entries"),
            ("huge count", huge_count, "entries (at most 65535"),
            ("huge data", huge_data, "bytes of data (at most"),
            ("truncated", good[..good.len() - 3].to_vec(), "need"),
            ("offset", bad_offset, "NAME points outside the header data"),
            ("unterminated", unterminated, "NAME is not terminated"),
            ("wrong type", wrong_type, "NAME has type 4"),
            (
                "no version",
                header(&[s(TAG_NAME, "a")]),
                "has no VERSION tag",
            ),
            ("bad epoch", bad_epoch, "EPOCH has type 6"),
        ];
        for (what, blob, want) in cases {
            let err = parse_header(blob).expect_err(what);
            assert!(err.contains(want), "{what}: {err}");
        }
    }
}
