//! Alpine's package database, `lib/apk/db/installed`: records separated by blank lines, each
//! line `X:value` with a one-letter key (`P` name, `V` version, `A` arch, `o` origin).
//!
//! Same policy as dpkg: a record without `P` or `V`, or with a line that is not `X:value`, is
//! skipped with a warning and recorded as unreadable; a file of which no record could be read
//! is an error.

use super::{FileSource, Package, PackageKind, Parsed};
use crate::Error;

/// apk's database of installed packages.
pub const INSTALLED: &str = "lib/apk/db/installed";

/// The packages of the image's apk database, if it has one.
pub fn read(files: &dyn FileSource) -> Result<Parsed, Error> {
    match files.get(INSTALLED) {
        Some(content) => parse_installed(INSTALLED, content),
        None => Ok(Parsed::default()),
    }
}

/// Parse an apk `installed` database; `path` names it in packages and errors.
pub fn parse_installed(path: &str, content: &[u8]) -> Result<Parsed, Error> {
    let text = String::from_utf8_lossy(content);
    let mut packages = Vec::new();
    let mut problems = 0usize;
    let mut first_problem: Option<String> = None;
    let mut record: Vec<(char, &str)> = Vec::new();
    let mut bad_line: Option<usize> = None;
    let mut number = 0usize;
    // A trailing empty line closes the last record even when the file lacks a final newline.
    for (index, line) in text.lines().chain(std::iter::once("")).enumerate() {
        let line = line.trim_end_matches('\r');
        if !line.trim().is_empty() {
            let mut chars = line.chars();
            match (chars.next(), chars.next()) {
                (Some(key), Some(':')) if key.is_ascii_alphanumeric() => {
                    record.push((key, chars.as_str()))
                }
                _ => {
                    bad_line.get_or_insert(index + 1);
                }
            }
            continue;
        }
        if record.is_empty() && bad_line.is_none() {
            continue;
        }
        number += 1;
        match package_of(path, &record, bad_line) {
            Ok(package) => packages.push(package),
            Err(reason) => {
                let reason = format!("record {number} {reason}");
                tracing::warn!(path, %reason, "skipping a malformed apk record");
                problems += 1;
                first_problem.get_or_insert(reason);
            }
        }
        record.clear();
        bad_line = None;
    }
    match first_problem {
        Some(reason) if packages.is_empty() => Err(Error::PackageDb {
            path: path.to_string(),
            reason: format!(
                "no readable package record ({problems} malformed; first: {reason}); \
                 is this an apk installed database?"
            ),
        }),
        first => Ok(Parsed::with_skipped(
            path,
            packages,
            problems,
            "record(s)",
            first,
        )),
    }
}

fn package_of(
    path: &str,
    record: &[(char, &str)],
    bad_line: Option<usize>,
) -> Result<Package, String> {
    let field = |key: char| {
        record
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let name = field('P');
    let who = name.map(|n| format!("({n}) ")).unwrap_or_default();
    if let Some(line) = bad_line {
        return Err(format!(
            "{who}has a line that is not `X:value` (line {line})"
        ));
    }
    let name = name.ok_or("has no P: (name) line")?;
    let version = field('V').ok_or_else(|| format!("{who}has no V: (version) line"))?;
    Ok(Package {
        kind: PackageKind::Apk,
        name: name.to_string(),
        version: version.to_string(),
        // The origin is the aport (source package) Alpine's advisories are written against.
        source_name: Some(field('o').unwrap_or(name).to_string()),
        source_version: None,
        arch: field('A').map(str::to_string),
        location: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPINE_3_20: &str = "\
C:Q1Bg3rZ0Zq6t3OiNxo9+U8ETzfjBQ=
P:busybox
V:1.36.1-r29
A:x86_64
S:509640
I:930816
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1717444474
c:ab0da3ef8a6e1b2ed04f9fcd1d7ba1e8b5d53cf8
D:so:libc.musl-x86_64.so.1
p:cmd:busybox=1.36.1-r29
r:busybox-initscripts
F:bin
R:busybox
a:0:0:755
Z:Q1fT8Sc7WJwdqNA5Yu7WJYEGmwIHo=

C:Q1Y5cmpxGcA2cXaH6yBfTSfKh1i+g=
P:musl
V:1.2.5-r0
A:x86_64
S:411323
I:662528
T:the musl c library (libc) implementation
o:musl
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755

C:Q1tCwUAnSUqEnTmUHZ0ac5fETg9I8=
P:libcrypto3
V:3.3.2-r0
A:x86_64
o:openssl
D:so:libc.musl-x86_64.so.1
F:usr
F:usr/lib
R:libcrypto.so.3";

    #[test]
    fn alpine_3_20_without_final_newline() {
        let parsed = parse_installed(INSTALLED, ALPINE_3_20.as_bytes()).expect("must parse");
        assert!(parsed.unreadable.is_empty());
        let packages = parsed.packages;
        let got: Vec<_> = packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.source_name.as_deref(),
                    p.arch.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("busybox", "1.36.1-r29", Some("busybox"), Some("x86_64")),
                ("musl", "1.2.5-r0", Some("musl"), Some("x86_64")),
                ("libcrypto3", "3.3.2-r0", Some("openssl"), Some("x86_64")),
            ]
        );
        assert!(
            packages
                .iter()
                .all(|p| p.kind == PackageKind::Apk && p.location == INSTALLED)
        );
    }

    #[test]
    fn extra_blank_lines_and_missing_origin() {
        let packages = parse_installed(INSTALLED, b"\n\nP:a\nV:1-r0\n\n\n\nP:b\nV:2-r1\n\n")
            .expect("must parse")
            .packages;
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[1].source_name.as_deref(), Some("b"));
        assert_eq!(packages[1].arch, None);
    }

    #[test]
    fn malformed_records_are_skipped_and_recorded() {
        let content = format!("P:nover\nA:x86_64\n\nP:junk\nV:1\nnot a field\n\n{ALPINE_3_20}");
        let parsed = parse_installed(INSTALLED, content.as_bytes()).expect("must parse");
        assert_eq!(parsed.packages.len(), 3);
        assert_eq!(
            parsed.unreadable,
            [crate::inventory::Unreadable {
                path: INSTALLED.into(),
                reason: "2 unreadable record(s) skipped (first: record 1 (nover) has no V: \
                         (version) line)"
                    .into(),
            }]
        );
    }

    #[test]
    fn junk_is_an_error() {
        let err = parse_installed(INSTALLED, b"\x7fELF\x02\x01\x01\x00\x00\x00binary")
            .expect_err("must fail");
        let text = err.to_string();
        assert!(
            text.starts_with("lib/apk/db/installed: no readable package record"),
            "{text}"
        );
        let err = parse_installed(INSTALLED, b"P:musl\nA:x86_64\n").expect_err("must fail");
        assert!(
            err.to_string()
                .contains("record 1 (musl) has no V: (version) line"),
            "{err}"
        );
        assert_eq!(
            parse_installed(INSTALLED, b"").expect("must parse"),
            Parsed::default()
        );
    }
}
