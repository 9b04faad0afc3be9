//! The OS an image is built on: `os-release` (systemd's format), with the older
//! `alpine-release` and `debian_version` files as fallbacks for images without one.

use super::{FileSource, OsRelease};

/// Where os-release lives, in the order systemd reads them.
pub const OS_RELEASE_PATHS: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];
/// Alpine's release file, used only when no os-release exists.
pub const ALPINE_RELEASE: &str = "etc/alpine-release";
/// Debian's release file, used only when no os-release exists.
pub const DEBIAN_VERSION: &str = "etc/debian_version";

/// The image's OS, or `None` when none of the known files exist.
///
/// Never fails: a line os-release's format does not allow is skipped, as systemd does.
pub fn detect(files: &dyn FileSource) -> Option<OsRelease> {
    if let Some(content) = OS_RELEASE_PATHS.iter().find_map(|p| files.get(p)) {
        return Some(parse(content));
    }
    if let Some(content) = files.get(ALPINE_RELEASE) {
        let version = first_line(content);
        return Some(OsRelease {
            id: "alpine".into(),
            version_id: (!version.is_empty()).then_some(version),
            ..OsRelease::default()
        });
    }
    files.get(DEBIAN_VERSION).map(debian_version)
}

/// Parse os-release content: `KEY=value` lines, values quoted and escaped as in a shell.
pub fn parse(content: &[u8]) -> OsRelease {
    let text = String::from_utf8_lossy(content);
    let mut os = OsRelease::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if !valid_key(key) {
            continue;
        }
        // A backslash-newline inside double quotes continues the value on the next line.
        let mut raw = raw.trim_start().to_string();
        while unterminated(&raw) {
            match lines.next() {
                Some(next) => {
                    raw.push('\n');
                    raw.push_str(next);
                }
                None => break,
            }
        }
        let value = unquote(&raw);
        match key {
            "ID" => os.id = value,
            "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_string).collect(),
            "VERSION_ID" => os.version_id = non_empty(value),
            "VERSION_CODENAME" => os.version_codename = non_empty(value),
            "PRETTY_NAME" => os.pretty_name = non_empty(value),
            _ => {}
        }
    }
    if os.id.is_empty() {
        // The os-release specification's default when ID is not set.
        os.id = "linux".into();
    }
    os
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// Whether a value ends inside double quotes with a backslash: it continues on the next
/// line. Other unterminated quotes end at the line's end, so one broken line cannot swallow
/// the rest of the file.
fn unterminated(raw: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            // The guard consumes the escaped character; a backslash at the end continues.
            (Some('"'), '\\') if chars.next().is_none() => return true,
            (None, '\\') => {
                chars.next();
            }
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c.is_whitespace() => return false,
            _ => {}
        }
    }
    false
}

/// Remove shell quoting: `"…"` with `\"`, `\\`, `\$`, `` \` `` and line continuation, `'…'`
/// literally, and backslash escapes outside quotes. Unquoted whitespace ends the value.
fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut quote: Option<char> = None;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some('\'') => {
                if c == '\'' {
                    quote = None;
                } else {
                    out.push(c);
                }
            }
            Some(_) => match c {
                '"' => quote = None,
                '\\' => match chars.next() {
                    Some('\n') => {}
                    Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                },
                _ => out.push(c),
            },
            None => match c {
                '\'' | '"' => quote = Some(c),
                '\\' => {
                    if let Some(e) = chars.next()
                        && e != '\n'
                    {
                        out.push(e);
                    }
                }
                c if c.is_whitespace() => break,
                _ => out.push(c),
            },
        }
    }
    out
}

fn first_line(content: &[u8]) -> String {
    String::from_utf8_lossy(content)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `12.7` gives Debian 12 (os-release's `VERSION_ID` is the major release); a testing or
/// unstable image says `trixie/sid`, which gives a codename and no version.
fn debian_version(content: &[u8]) -> OsRelease {
    let line = first_line(content);
    let mut os = OsRelease {
        id: "debian".into(),
        ..OsRelease::default()
    };
    if line.starts_with(|c: char| c.is_ascii_digit()) {
        let major = line.split('.').next().unwrap_or_default();
        os.version_id = Some(major.to_string());
        os.pretty_name = Some(format!("Debian GNU/Linux {line}"));
    } else if let Some(codename) = line.split('/').next().filter(|c| !c.is_empty()) {
        os.version_codename = Some(codename.to_string());
    }
    os
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Files;

    const DEBIAN_12: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"#;

    const ROCKY_9: &str = "NAME=\"Rocky Linux\"\nVERSION=\"9.4 (Blue Onyx)\"\nID=\"rocky\"\n\
        ID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\n\
        PRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n";

    #[test]
    fn debian_12() {
        let os = parse(DEBIAN_12.as_bytes());
        assert_eq!(
            os,
            OsRelease {
                id: "debian".into(),
                id_like: vec![],
                version_id: Some("12".into()),
                version_codename: Some("bookworm".into()),
                pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
            }
        );
    }

    #[test]
    fn rocky_id_like() {
        let os = parse(ROCKY_9.as_bytes());
        assert_eq!(os.id, "rocky");
        assert_eq!(os.id_like, ["rhel", "centos", "fedora"]);
        assert_eq!(os.version_id.as_deref(), Some("9.4"));
    }

    #[test]
    fn quoting_table() {
        let cases: &[(&str, &str)] = &[
            ("PRETTY_NAME=plain", "plain"),
            ("PRETTY_NAME=\"double quoted\"", "double quoted"),
            ("PRETTY_NAME='single \"quoted\"'", "single \"quoted\""),
            (
                "PRETTY_NAME=\"say \\\"hi\\\" \\$HOME \\\\ \\`x\\`\"",
                "say \"hi\" $HOME \\ `x`",
            ),
            (
                "PRETTY_NAME=\"keeps \\n unknown escapes\"",
                "keeps \\n unknown escapes",
            ),
            ("PRETTY_NAME=un\\ quoted", "un quoted"),
            ("PRETTY_NAME=\"con\"'cat'", "concat"),
            ("PRETTY_NAME=\"two\\\nlines\"", "twolines"),
            ("  PRETTY_NAME=\"indented\"  ", "indented"),
            ("PRETTY_NAME=\"unterminated", "unterminated"),
        ];
        for (line, want) in cases {
            let os = parse(format!("# comment\n\n{line}\nID=x\n").as_bytes());
            assert_eq!(os.pretty_name.as_deref(), Some(*want), "{line:?}");
            assert_eq!(os.id, "x", "{line:?}");
        }
    }

    #[test]
    fn junk_lines_are_skipped_and_id_defaults_to_linux() {
        let os = parse(b"\xff\xfe garbage\nnot a key value\n1BAD=x\nVERSION_ID=\n");
        assert_eq!(os.id, "linux");
        assert_eq!(os.version_id, None);
    }

    #[test]
    fn lookup_order_and_fallbacks() {
        let mut files = Files::new();
        files.insert("usr/lib/os-release", "ID=fromusr\n");
        files.insert("etc/alpine-release", "3.20.3\n");
        assert_eq!(detect(&files).map(|o| o.id).as_deref(), Some("fromusr"));
        files.insert("etc/os-release", "ID=frometc\n");
        assert_eq!(detect(&files).map(|o| o.id).as_deref(), Some("frometc"));

        let mut files = Files::new();
        files.insert("etc/alpine-release", "3.20.3\n");
        let os = detect(&files).expect("alpine");
        assert_eq!(
            (os.id.as_str(), os.version_id.as_deref()),
            ("alpine", Some("3.20.3"))
        );

        let mut files = Files::new();
        files.insert("etc/debian_version", "12.7\n");
        let os = detect(&files).expect("debian");
        assert_eq!(
            (os.id.as_str(), os.version_id.as_deref()),
            ("debian", Some("12"))
        );

        let mut files = Files::new();
        files.insert("etc/debian_version", "trixie/sid\n");
        let os = detect(&files).expect("debian testing");
        assert_eq!(os.version_codename.as_deref(), Some("trixie"));
        assert_eq!(os.version_id, None);

        assert_eq!(detect(&Files::new()), None);
    }
}
