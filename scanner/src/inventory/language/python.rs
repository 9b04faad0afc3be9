//! Python: the core metadata pip and setuptools install beside each distribution, in
//! `site-packages` or `dist-packages`: `NAME-VER.dist-info/METADATA` (wheels) and
//! `NAME-VER.egg-info/PKG-INFO`, or an `.egg-info` file, (eggs and `setup.py install`).

use super::{Language, LanguagePackage, text, unreadable};

/// Whether `path` is a distribution's metadata file in a package directory.
pub fn is_metadata(path: &str) -> bool {
    let in_packages = path.contains("/site-packages/") || path.contains("/dist-packages/");
    in_packages
        && (path.ends_with(".dist-info/METADATA")
            || path.ends_with(".egg-info/PKG-INFO")
            || path.ends_with(".egg-info"))
}

/// The distribution the metadata describes: its `Name` (normalised as PEP 503 says, which
/// is how advisories and indexes compare names) and `Version` headers.
pub fn read(path: &str, bytes: &[u8]) -> Result<LanguagePackage, crate::Error> {
    let text = text(path, bytes)?;
    let (mut name, mut version) = (None, None);
    // The headers end at the first empty line; the description follows.
    for line in text.lines().take_while(|l| !l.trim().is_empty()) {
        // Continuation lines start with white space and belong to a header neither field is.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "name" if name.is_none() => name = Some(value.trim()),
            "version" if version.is_none() => version = Some(value.trim()),
            _ => {}
        }
    }
    match (name, version) {
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => Ok(LanguagePackage::new(
            Language::Python,
            &normalize(n),
            v,
            path,
        )),
        _ => Err(unreadable(path, "no Name and Version headers")),
    }
}

/// PEP 503: lower case, every run of `-`, `_` and `.` one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_files_in_package_directories() {
        for (path, want) in [
            (
                "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA",
                true,
            ),
            (
                "usr/local/lib/python3.11/site-packages/urllib3-2.0.7.dist-info/METADATA",
                true,
            ),
            (
                "opt/venv/lib/python3.12/site-packages/six-1.16.0-py3.12.egg-info/PKG-INFO",
                true,
            ),
            ("usr/lib/python3/dist-packages/foo-1.0.egg-info", true),
            (
                "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/RECORD",
                false,
            ),
            ("src/requests.dist-info/METADATA", false),
            ("usr/lib/python3/dist-packages/foo.py", false),
        ] {
            assert_eq!(is_metadata(path), want, "{path}");
        }
    }

    #[test]
    fn name_and_version_headers() {
        let path = "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA";
        let p = read(
            path,
            b"Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\nSummary: A very fast\n  and expressive template engine.\nRequires-Dist: MarkupSafe (>=2.0)\n\nName: not-a-header\nVersion: 0\n",
        )
        .expect("reads");
        assert_eq!(p.language, Language::Python);
        assert_eq!((p.name.as_str(), p.version.as_str()), ("jinja2", "3.1.2"));
        assert_eq!(p.location, path);

        // CRLF, odd header case, and a continuation line that looks like a header.
        let p = read(path, b"metadata-version: 1.0\r\nname: zope.interface\r\nDescription: x\r\n Version: 9\r\nversion: 6.0\r\n").expect("reads");
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("zope-interface", "6.0")
        );

        for bad in [
            &b"Metadata-Version: 2.1\nName: x\n"[..],
            b"Version: 1\n",
            b"",
            b"\n\nName: x\nVersion: 1\n",
            b"\xff",
        ] {
            let err = read(path, bad).expect_err("refused");
            assert!(err.to_string().starts_with(path), "{err}");
        }
    }

    #[test]
    fn pep_503_names() {
        for (name, want) in [
            ("Django", "django"),
            ("zope.interface", "zope-interface"),
            ("typing_extensions", "typing-extensions"),
            ("Foo__Bar--.baz", "foo-bar-baz"),
            ("ruamel.yaml.clib", "ruamel-yaml-clib"),
            ("-leading", "leading"),
        ] {
            assert_eq!(normalize(name), want, "{name}");
        }
    }
}
