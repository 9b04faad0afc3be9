//! RubyGems: the specification RubyGems writes for each installed gem,
//! `…/specifications/NAME-VERSION.gemspec` (also under `specifications/default/` for the
//! gems bundled with Ruby). It is Ruby code; the name and version are read from its
//! `s.name = "…"` and `s.version = "…"` assignments, or else from its `# stub:` line.

use super::{Language, LanguagePackage, text, unreadable};

/// Whether `path` is an installed gem's specification.
pub fn is_spec(path: &str) -> bool {
    let Some((dir, file)) = path.rsplit_once('/') else {
        return false;
    };
    file.ends_with(".gemspec")
        && (dir == "specifications"
            || dir.ends_with("/specifications")
            || dir.ends_with("/specifications/default"))
}

/// The gem a specification describes.
pub fn read(path: &str, bytes: &[u8]) -> Result<LanguagePackage, crate::Error> {
    let text = text(path, bytes)?;
    let (mut name, mut version, mut stub) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# stub:") {
            let mut words = rest.split_whitespace();
            if let (Some(n), Some(v)) = (words.next(), words.next()) {
                stub.get_or_insert((n, v));
            }
            continue;
        }
        if name.is_none() {
            name = assigned(line, "name");
        }
        if version.is_none() {
            version = assigned(line, "version");
        }
    }
    let found = match (name, version) {
        (Some(n), Some(v)) => Some((n, v)),
        _ => stub,
    };
    match found {
        Some((n, v)) if !n.is_empty() && !v.is_empty() => {
            Ok(LanguagePackage::new(Language::Ruby, n, v, path))
        }
        _ => Err(unreadable(path, "no name and version assignments")),
    }
}

/// The string assigned to `VAR.field` on `line` (`s.version = "1.2".freeze`,
/// `spec.version = Gem::Version.new('1.2')`), if the line is such an assignment.
fn assigned<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let dot = line.find('.')?;
    let var = &line[..dot];
    if var.is_empty() || !var.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return None;
    }
    let rest = line[dot + 1..].strip_prefix(field)?.trim_start();
    let rest = rest.strip_prefix('=')?;
    if rest.starts_with('=') {
        return None;
    }
    let start = rest.find(['"', '\''])?;
    let quote = rest[start..].chars().next()?;
    let value = &rest[start + 1..];
    let end = value.find(quote)?;
    Some(&value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_specifications_only() {
        for (path, want) in [
            (
                "usr/share/rubygems-integration/all/specifications/rake-13.0.6.gemspec",
                true,
            ),
            (
                "usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
                true,
            ),
            ("usr/local/bundle/specifications/rails-7.1.2.gemspec", true),
            ("app/rails.gemspec", false),
            ("usr/local/bundle/gems/rails-7.1.2/rails.gemspec", false),
            (
                "usr/local/bundle/specifications/rails-7.1.2.gemspec.bak",
                false,
            ),
            ("x/specifications/foo/default/a.gemspec", false),
        ] {
            assert_eq!(is_spec(path), want, "{path}");
        }
    }

    #[test]
    fn name_and_version() {
        let path = "usr/local/bundle/specifications/rack-3.0.8.gemspec";
        let p = read(
            path,
            br#"# -*- encoding: utf-8 -*-
# stub: rack 3.0.8 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "3.0.8"

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.metadata = { "version" => "9" } if s.respond_to? :metadata=
end
"#,
        )
        .expect("reads");
        assert_eq!(p.language, Language::Ruby);
        assert_eq!((p.name.as_str(), p.version.as_str()), ("rack", "3.0.8"));
        assert_eq!(p.location, path);

        // Debian's style, single quotes, Gem::Version.
        let p = read(path, b"Gem::Specification.new do |spec|\n  spec.name    = 'net-ssh'\n  spec.version = Gem::Version.new('7.0.1')\nend\n").expect("reads");
        assert_eq!((p.name.as_str(), p.version.as_str()), ("net-ssh", "7.0.1"));

        // Only the stub line.
        let p = read(path, b"# stub: minitest 5.16.3 ruby lib\n").expect("reads");
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("minitest", "5.16.3")
        );

        // A comparison is no assignment.
        assert!(read(path, b"if s.name == \"x\"\n").is_err());
        assert!(read(path, b"").is_err());
    }
}
