//! Finding an updateinfo document, and reading it whatever its compression. Pure: the
//! store does the fetching.
//!
//! A configured location (an http(s) URL or a file path) is one of:
//! - the document itself: a name ending in `updateinfo.xml` or any `.gz`, `.zst`, `.xz` or
//!   `.bz2` name (`…-updateinfo.xml.gz`);
//! - a `mirror.list` (or `mirrorlist`): one repository base per line, the first that works
//!   is used;
//! - a repository: its base, or its `repodata/repomd.xml`, which names the document
//!   (`<data type="updateinfo"><location href="repodata/…-updateinfo.xml.gz"/>`).

use std::io::{BufRead, BufReader, Read};

use quick_xml::events::Event;

use crate::Error;

/// Largest `mirror.list` or `repomd.xml` read (both are a few KiB).
pub const MAX_INDEX_BYTES: u64 = 1 << 20;

/// What a configured location names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Document,
    MirrorList,
    Repository,
}

/// What `location` names, by its last path segment.
pub fn shape(location: &str) -> Shape {
    let path = location.split(['?', '#']).next().unwrap_or(location);
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    let last = last.to_ascii_lowercase();
    if last == "mirror.list" || last == "mirrorlist" {
        Shape::MirrorList
    } else if last == "repomd.xml" || path.ends_with('/') {
        Shape::Repository
    } else if last.ends_with("updateinfo.xml")
        || [".gz", ".zst", ".xz", ".bz2"]
            .iter()
            .any(|ext| last.ends_with(ext))
    {
        Shape::Document
    } else {
        Shape::Repository
    }
}

/// Whether a location is fetched over HTTP rather than read from the file system.
pub fn is_url(location: &str) -> bool {
    location.starts_with("http://") || location.starts_with("https://")
}

/// The `repomd.xml` of a repository location (its base, or the file itself).
pub fn repomd_location(repository: &str) -> String {
    if repository
        .trim_end_matches('/')
        .ends_with("repodata/repomd.xml")
    {
        return repository.trim_end_matches('/').to_owned();
    }
    format!("{}/repodata/repomd.xml", repository.trim_end_matches('/'))
}

/// The repository bases a `mirror.list` names, in order: its non-empty lines that are not
/// comments.
pub fn mirrors(list: &str) -> Vec<&str> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Where the updateinfo document of the repository whose `repomd.xml` is at `repomd` is,
/// from that file's content.
pub fn updateinfo_location(repomd: &str, content: &[u8]) -> Result<String, Error> {
    let href = updateinfo_href(content).map_err(|reason| Error::VulnDb {
        source_name: repomd.to_owned(),
        reason,
    })?;
    // The href is relative to the repository base, the folder above repodata/.
    let base = repomd
        .strip_suffix("repodata/repomd.xml")
        .unwrap_or(repomd)
        .trim_end_matches('/');
    join(base, &href).map_err(|reason| Error::VulnDb {
        source_name: repomd.to_owned(),
        reason,
    })
}

/// The `href` of `<data type="updateinfo"><location href=…/>` in a `repomd.xml`.
fn updateinfo_href(content: &[u8]) -> Result<String, String> {
    let mut reader = quick_xml::Reader::from_reader(content);
    let mut buf = Vec::new();
    let mut in_updateinfo = false;
    loop {
        buf.clear();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name();
                let local = name.0.rsplit(':').next().unwrap_or(name.0);
                let attr = |key: &str| {
                    e.attributes().flatten().find_map(|a| {
                        let k: &str = a.key.0;
                        (k == key).then(|| {
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .map(|v| v.into_owned())
                                .unwrap_or_default()
                        })
                    })
                };
                match local {
                    "data" => in_updateinfo = attr("type").as_deref() == Some("updateinfo"),
                    "location" if in_updateinfo => {
                        return attr("href")
                            .filter(|h| !h.trim().is_empty())
                            .map(|h| h.trim().to_owned())
                            .ok_or_else(|| "the updateinfo <location> has no href".to_owned());
                    }
                    _ => {}
                }
            }
            Event::End(e) if e.name().0.rsplit(':').next() == Some("data") => {
                in_updateinfo = false;
            }
            Event::Eof => {
                return Err("the repository publishes no updateinfo (no <data type=\"updateinfo\"> in repomd.xml)".to_owned());
            }
            _ => {}
        }
    }
}

/// `href` under `base`: an absolute URL as is (for a URL base), else appended. A path that
/// climbs out of the base (`..`) is refused: the index must not point a file-system source
/// at files outside its repository.
pub fn join(base: &str, href: &str) -> Result<String, String> {
    if is_url(href) {
        return if is_url(base) {
            Ok(href.to_owned())
        } else {
            Err(format!("{href}: a URL in a repository on disk"))
        };
    }
    if href.starts_with('/') || href.split(['/', '\\']).any(|s| s == "..") {
        return Err(format!("{href}: outside the repository"));
    }
    Ok(format!("{}/{href}", base.trim_end_matches('/')))
}

/// A reader of the uncompressed document: gzip and zstd are recognised by their first
/// bytes, anything else is read as it is. xz and bzip2 have no decoder here and are named
/// in the error.
pub fn decompress<'a>(
    input: impl Read + 'a,
    source_name: &str,
) -> Result<Box<dyn BufRead + 'a>, Error> {
    let mut input = BufReader::with_capacity(1 << 16, input);
    let fail = |reason: String| Error::VulnDb {
        source_name: source_name.to_owned(),
        reason,
    };
    let head = input
        .fill_buf()
        .map_err(|e| fail(format!("reading: {e}")))?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(input)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(input)
            .map_err(|e| fail(format!("zstd: {e}")))?;
        Box::new(BufReader::new(decoder))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(fail(
            "xz-compressed, which this scanner does not read: name the repository or its .xml.gz"
                .to_owned(),
        ));
    } else if head.starts_with(b"BZh") {
        return Err(fail(
            "bzip2-compressed, which this scanner does not read: name the repository or its .xml.gz".to_owned(),
        ));
    } else {
        Box::new(input)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_locations() {
        let table = [
            (
                "https://cdn.amazonlinux.com/2/core/latest/x86_64/mirror.list",
                Shape::MirrorList,
            ),
            ("/mnt/al2023/mirrorlist", Shape::MirrorList),
            (
                "https://cdn.amazonlinux.com/2/core/2.0/x86_64/6b0225ccc542f3834c95733dcf321ab9f1e77e6ca6817469771a8af7c49efe6c/",
                Shape::Repository,
            ),
            ("/mnt/repo", Shape::Repository),
            ("/mnt/repo/repodata/repomd.xml", Shape::Repository),
            (
                "https://mirror.example/repodata/4d1b…-updateinfo.xml.gz",
                Shape::Document,
            ),
            ("/data/updateinfo.xml", Shape::Document),
            ("/data/updateinfo.xml.zst", Shape::Document),
            ("/data/al2-updateinfo.xml.xz?x=1", Shape::Document),
        ];
        for (location, want) in table {
            assert_eq!(shape(location), want, "{location}");
        }
    }

    #[test]
    fn mirror_lists_and_repomd() {
        let list =
            "# AL2\n\nhttps://cdn.amazonlinux.com/2/core/2.0/x86_64/abc\r\nhttps://b.example/x\n";
        assert_eq!(
            mirrors(list),
            [
                "https://cdn.amazonlinux.com/2/core/2.0/x86_64/abc",
                "https://b.example/x"
            ]
        );
        assert_eq!(
            repomd_location("https://m.example/repo/"),
            "https://m.example/repo/repodata/repomd.xml"
        );
        assert_eq!(
            repomd_location("/r/repodata/repomd.xml"),
            "/r/repodata/repomd.xml"
        );

        let repomd = br#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1722902542</revision>
  <data type="primary">
    <checksum type="sha256">aa</checksum>
    <location href="repodata/aa-primary.sqlite.gz"/>
  </data>
  <data type="updateinfo_zck">
    <location href="repodata/bb-updateinfo.xml.zck"/>
  </data>
  <data type="updateinfo">
    <checksum type="sha256">cc</checksum>
    <location href="repodata/cc-updateinfo.xml.gz"/>
    <timestamp>1722902539</timestamp>
  </data>
</repomd>"#;
        assert_eq!(
            updateinfo_location("https://m.example/repo/repodata/repomd.xml", repomd)
                .expect("found"),
            "https://m.example/repo/repodata/cc-updateinfo.xml.gz"
        );
        assert_eq!(
            updateinfo_location("/r/repodata/repomd.xml", repomd).expect("found"),
            "/r/repodata/cc-updateinfo.xml.gz"
        );
        let none = br#"<repomd><data type="primary"><location href="p.xml.gz"/></data></repomd>"#;
        let err = updateinfo_location("/r/repodata/repomd.xml", none)
            .expect_err("no updateinfo")
            .to_string();
        assert!(err.contains("publishes no updateinfo"), "{err}");
        let climbing = br#"<repomd><data type="updateinfo"><location href="../../etc/shadow"/></data></repomd>"#;
        let err = updateinfo_location("/r/repodata/repomd.xml", climbing)
            .expect_err("outside")
            .to_string();
        assert!(err.contains("outside the repository"), "{err}");
        let err = updateinfo_location("/r/repodata/repomd.xml", b"<repomd><data")
            .expect_err("truncated")
            .to_string();
        assert!(err.contains("repomd.xml"), "{err}");
    }
}
