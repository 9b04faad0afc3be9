//! dpkg's database: `var/lib/dpkg/status`, and the `var/lib/dpkg/status.d/` files distroless
//! images carry instead (one file per package, usually without a `Status` field).
//!
//! Malformed stanzas (no `Package` or `Version`, a line that is neither `Field: value` nor a
//! continuation) are skipped with a warning and recorded as unreadable, so one damaged entry
//! does not hide the others and the scan still says something was missed. A file with
//! stanzas of which none could be read is an error: it is probably not a dpkg database at all.

use super::{FileSource, Package, PackageKind, Parsed};
use crate::Error;

/// dpkg's status file.
pub const STATUS: &str = "var/lib/dpkg/status";
/// The directory distroless images keep one status file per package in.
pub const STATUS_D: &str = "var/lib/dpkg/status.d";

/// Whether a path is a package file of `status.d` (not its `.md5sums` companions).
pub fn is_status_d_entry(path: &str) -> bool {
    path.strip_prefix(STATUS_D)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/') && !name.ends_with(".md5sums"))
}

/// The packages of the status file and of every `status.d` entry the image has.
pub fn read(files: &dyn FileSource) -> Result<Parsed, Error> {
    let mut parsed = Parsed::default();
    if let Some(content) = files.get(STATUS) {
        parsed.extend(parse_status(STATUS, content)?);
    }
    for path in files.list_dir(STATUS_D) {
        if !is_status_d_entry(path) {
            continue;
        }
        if let Some(content) = files.get(path) {
            parsed.extend(parse_status(path, content)?);
        }
    }
    Ok(parsed)
}

/// Parse one dpkg status file (or `status.d` entry); `path` names it in packages and errors.
///
/// Lists what `dpkg-query -W` lists except packages whose files are gone: status
/// `not-installed` and `config-files` are left out (only configuration files remain, so
/// nothing of theirs can be exploited), while `half-installed`, `unpacked`, `half-configured`,
/// `triggers-awaited`, `triggers-pending` and `installed` are kept because their files are on
/// disk. A stanza without `Status` (the norm in `status.d`) counts as installed.
pub fn parse_status(path: &str, content: &[u8]) -> Result<Parsed, Error> {
    let text = String::from_utf8_lossy(content);
    let mut packages = Vec::new();
    let mut first_problem: Option<String> = None;
    let mut problems = 0usize;
    for (index, stanza) in stanzas(&text).enumerate() {
        let number = index + 1;
        match package_of(path, &stanza) {
            Ok(Some(package)) => packages.push(package),
            Ok(None) => {}
            Err(reason) => {
                let reason = format!("stanza {number} {reason}");
                tracing::warn!(path, %reason, "skipping a malformed dpkg stanza");
                problems += 1;
                first_problem.get_or_insert(reason);
            }
        }
    }
    match first_problem {
        Some(reason) if packages.is_empty() => Err(Error::PackageDb {
            path: path.to_string(),
            reason: format!(
                "no readable package stanza ({problems} malformed; first: {reason}); \
                 is this a dpkg status file?"
            ),
        }),
        first => Ok(Parsed::with_skipped(
            path,
            packages,
            problems,
            "stanza(s)",
            first,
        )),
    }
}

/// A stanza: its fields in order, or why its lines are not fields.
type Stanza<'a> = Result<Vec<(&'a str, &'a str)>, String>;

/// Split into stanzas at blank lines. Continuation lines (starting with space or tab) belong
/// to the field before them; the fields read here are single-line, so they are dropped.
fn stanzas(text: &str) -> impl Iterator<Item = Stanza<'_>> {
    let mut lines = text.lines().enumerate().peekable();
    std::iter::from_fn(move || {
        while lines.peek().is_some_and(|(_, l)| l.trim().is_empty()) {
            lines.next();
        }
        lines.peek()?;
        let mut fields = Vec::new();
        let mut bad: Option<String> = None;
        while let Some((number, line)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
            if line.starts_with([' ', '\t']) {
                if fields.is_empty() && bad.is_none() {
                    bad = Some(format!(
                        "(line {}) starts with a continuation line",
                        number + 1
                    ));
                }
                continue;
            }
            match line.split_once(':') {
                Some((name, value)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                    fields.push((name, value.trim()));
                }
                _ => {
                    bad.get_or_insert_with(|| {
                        format!(
                            "(line {}) has a line that is not `Field: value`",
                            number + 1
                        )
                    });
                }
            }
        }
        Some(match bad {
            Some(reason) => Err(reason),
            None => Ok(fields),
        })
    })
}

/// The package a stanza describes, `None` when it is not installed, or why it is unusable.
fn package_of(path: &str, stanza: &Stanza<'_>) -> Result<Option<Package>, String> {
    let fields = stanza.as_ref().map_err(String::clone)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    };
    let name = field("Package");
    if let Some(status) = field("Status") {
        // `want flag status`, e.g. `install ok installed` or `deinstall ok config-files`.
        match status.split_whitespace().nth(2) {
            Some("not-installed" | "config-files") => return Ok(None),
            Some(_) => {}
            None => {
                let who = name.map(|n| format!("({n}) ")).unwrap_or_default();
                return Err(format!(
                    "{who}has a Status field without a state: {status:?}"
                ));
            }
        }
    }
    let name = name.ok_or("has no Package field")?;
    let version = field("Version").ok_or_else(|| format!("({name}) has no Version field"))?;
    let (source_name, source_version) = match field("Source") {
        // `Source: openssl (3.0.11-1~deb12u2)` when the source version differs.
        Some(source) => match source.split_once('(') {
            Some((sname, rest)) => {
                let sversion = rest.trim_end().strip_suffix(')').ok_or_else(|| {
                    format!("({name}) has a Source field with an unclosed version: {source:?}")
                })?;
                (sname.trim().to_string(), sversion.trim().to_string())
            }
            None => (source.to_string(), version.to_string()),
        },
        None => (name.to_string(), version.to_string()),
    };
    Ok(Some(Package {
        kind: PackageKind::Dpkg,
        name: name.to_string(),
        version: version.to_string(),
        source_name: Some(source_name),
        source_version: Some(source_version),
        arch: field("Architecture").map(str::to_string),
        location: path.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Files;

    const DEBIAN_12: &str = "\
Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6164
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 .
 Internet.
Homepage: https://www.openssl.org/

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Conffiles:
 /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab
Description: GNU C Library: Shared libraries

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Description: GCC support library

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data

Package: ifupdown
Status: deinstall ok config-files
Architecture: amd64
Version: 0.8.41
Conffiles:
 /etc/default/networking 1a4d4a0cfd6c5ee8e5bc1a1c0fa2e3d4

Package: old-thing
Status: purge ok not-installed
Architecture: amd64

Package: libfoo1
Status: install reinstreq half-configured
Architecture: i386
Source: foo (1.0-2)
Version: 1:1.0-2+b1
";

    fn by_name<'a>(packages: &'a [Package], name: &str) -> &'a Package {
        packages.iter().find(|p| p.name == name).expect(name)
    }

    #[test]
    fn debian_12_status() {
        let parsed = parse_status(STATUS, DEBIAN_12.as_bytes()).expect("must parse");
        assert!(parsed.unreadable.is_empty());
        let packages = parsed.packages;
        let names: Vec<_> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["libssl3", "libc6", "libgcc-s1", "tzdata", "libfoo1"]
        );
        let table: &[(&str, &str, &str, &str, &str)] = &[
            (
                "libssl3",
                "3.0.11-1~deb12u2",
                "openssl",
                "3.0.11-1~deb12u2",
                "amd64",
            ),
            (
                "libc6",
                "2.36-9+deb12u4",
                "glibc",
                "2.36-9+deb12u4",
                "amd64",
            ),
            ("libgcc-s1", "12.2.0-14", "gcc-12", "12.2.0-14", "amd64"),
            (
                "tzdata",
                "2024a-0+deb12u1",
                "tzdata",
                "2024a-0+deb12u1",
                "all",
            ),
            ("libfoo1", "1:1.0-2+b1", "foo", "1.0-2", "i386"),
        ];
        for (name, version, source, source_version, arch) in table {
            let p = by_name(&packages, name);
            assert_eq!(p.kind, PackageKind::Dpkg);
            assert_eq!(p.version, *version, "{name}");
            assert_eq!(p.source_name.as_deref(), Some(*source), "{name}");
            assert_eq!(p.source_version.as_deref(), Some(*source_version), "{name}");
            assert_eq!(p.arch.as_deref(), Some(*arch), "{name}");
            assert_eq!(p.location, STATUS);
        }
    }

    #[test]
    fn malformed_stanzas_are_skipped_and_recorded() {
        let content = format!(
            "Package: broken\nStatus: install ok installed\n\n\
             Package: garbled\nthis line has no colon\nVersion: 1\n\n{DEBIAN_12}"
        );
        let parsed = parse_status(STATUS, content.as_bytes()).expect("must parse");
        assert_eq!(parsed.packages.len(), 5);
        assert_eq!(
            parsed.unreadable,
            [crate::inventory::Unreadable {
                path: STATUS.into(),
                reason: "2 unreadable stanza(s) skipped (first: stanza 1 (broken) has no \
                         Version field)"
                    .into(),
            }]
        );
    }

    #[test]
    fn junk_is_an_error_that_names_the_problem() {
        let err = parse_status(STATUS, b"\x00\x01\x02 binary\xff\xfe\nmore junk\n")
            .expect_err("must fail");
        let text = err.to_string();
        assert!(text.starts_with("var/lib/dpkg/status: "), "{text}");
        assert!(text.contains("stanza 1"), "{text}");
        let err = parse_status(STATUS, b"Package: a\nStatus: install ok installed\n")
            .expect_err("must fail");
        assert!(
            err.to_string()
                .contains("stanza 1 (a) has no Version field"),
            "{err}"
        );
    }

    #[test]
    fn empty_database_is_empty() {
        assert_eq!(
            parse_status(STATUS, b"").expect("must parse"),
            Parsed::default()
        );
        assert_eq!(
            parse_status(STATUS, b"\n\n  \n").expect("must parse"),
            Parsed::default()
        );
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let packages = parse_status(STATUS, b"Package: a\r\nVersion: 1.0\r\nArchitecture: all")
            .expect("must parse")
            .packages;
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].version, "1.0");
        assert_eq!(packages[0].arch.as_deref(), Some("all"));
    }

    #[test]
    fn distroless_status_d() {
        let mut files = Files::new();
        files.insert(
            "var/lib/dpkg/status.d/libssl3",
            "Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nSource: openssl\n",
        );
        files.insert(
            "var/lib/dpkg/status.d/libssl3.md5sums",
            "d41d8cd98f00b204  usr/lib/x\n",
        );
        files.insert(
            "var/lib/dpkg/status.d/base",
            "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n\n\
             Package: netbase\nVersion: 6.4\nArchitecture: all\n",
        );
        let packages = read(&files).expect("must parse").packages;
        let names: Vec<_> = packages
            .iter()
            .map(|p| (p.name.as_str(), p.location.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("base-files", "var/lib/dpkg/status.d/base"),
                ("netbase", "var/lib/dpkg/status.d/base"),
                ("libssl3", "var/lib/dpkg/status.d/libssl3"),
            ]
        );
        assert!(is_status_d_entry("var/lib/dpkg/status.d/libc6"));
        assert!(!is_status_d_entry("var/lib/dpkg/status.d/libc6.md5sums"));
        assert!(!is_status_d_entry("var/lib/dpkg/status.d/"));
        assert!(!is_status_d_entry("var/lib/dpkg/status.d/sub/x"));
        assert!(!is_status_d_entry("var/lib/dpkg/status.dx"));
    }
}
