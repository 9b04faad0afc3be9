//! Container image references as the Docker/OCI distribution reference grammar defines them,
//! normalized the way container runtimes resolve them: `nginx` is
//! `docker.io/library/nginx:latest`.

use std::borrow::Cow;
use std::fmt;

/// The registry of references that name none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const OFFICIAL_NAMESPACE: &str = "library/";

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference {0:?} has an invalid registry host")]
    Registry(String),
    #[error(
        "image reference {0:?} has an invalid repository name (lowercase letters, digits and . _ - separators only)"
    )]
    Repository(String),
    #[error("image reference {0:?} has an invalid tag (at most 128 of A-Z a-z 0-9 _ . -)")]
    Tag(String),
    #[error("image reference {0:?} has an invalid digest (expected algorithm:hex, e.g. sha256:…)")]
    Digest(String),
    #[error("image reference {0:?} is longer than 255 characters before its tag")]
    TooLong(String),
}

/// A parsed, normalized image reference borrowing from the input where it can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef<'a> {
    registry: &'a str,
    repository: Cow<'a, str>,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    /// Parse and normalize a reference as written in a pod spec.
    pub fn parse(input: &'a str) -> Result<Self, Error> {
        if input.is_empty() {
            return Err(Error::Empty);
        }
        let bad = || input.to_owned();
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                if !valid_digest(digest) {
                    return Err(Error::Digest(bad()));
                }
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(Error::Tag(bad()));
        }
        if name.len() > 255 {
            return Err(Error::TooLong(bad()));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                if !valid_host(first) {
                    return Err(Error::Registry(bad()));
                }
                (first, path)
            }
            _ => (DEFAULT_REGISTRY, name),
        };
        if !valid_path(path) {
            return Err(Error::Repository(bad()));
        }
        let registry = if registry == LEGACY_DEFAULT_REGISTRY {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            Cow::Owned(format!("{OFFICIAL_NAMESPACE}{path}"))
        } else {
            Cow::Borrowed(path)
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Registry host, with port if any (`docker.io`, `registry.example.com:5000`).
    pub fn registry(&self) -> &str {
        self.registry
    }

    /// Repository path within the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag as written, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag
    }

    /// The digest as written (`sha256:…`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest
    }

    /// The tag a runtime pulls: as written, or `latest` when neither tag nor digest is given.
    pub fn effective_tag(&self) -> Option<&str> {
        match (self.tag, self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    /// Whether the reference floats on `latest`: tagged `latest` or untagged, and not pinned
    /// by digest.
    pub fn is_latest(&self) -> bool {
        self.digest.is_none() && self.effective_tag() == Some("latest")
    }

    /// Whether an allowlist entry admits this image's registry. An entry is a host
    /// (`registry.example.com`, `host:5000`) that must equal the registry exactly, or a host
    /// with a path prefix ending in `/` (`ghcr.io/my-org/`) that the repository must start
    /// with. `myregistry.io` never matches `myregistry.io.evil.com`.
    pub fn registry_matches(&self, entry: &str) -> bool {
        let (host, prefix) = match entry.split_once('/') {
            Some((host, prefix)) => (host, prefix),
            None => (entry, ""),
        };
        let host = if host.eq_ignore_ascii_case(LEGACY_DEFAULT_REGISTRY) {
            DEFAULT_REGISTRY
        } else {
            host
        };
        if !host.eq_ignore_ascii_case(self.registry) {
            return false;
        }
        if prefix.is_empty() {
            return true;
        }
        // A prefix is a whole number of path components: `my-org/` never admits `my-org-evil/x`.
        let prefix = if prefix.ends_with('/') {
            Cow::Borrowed(prefix)
        } else {
            Cow::Owned(format!("{prefix}/"))
        };
        self.repository.starts_with(prefix.as_ref())
    }
}

impl fmt::Display for ImageRef<'_> {
    /// The fully qualified form: `docker.io/library/nginx:latest`,
    /// `ghcr.io/org/app@sha256:…`, `host:5000/app:1.2@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = self.effective_tag() {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    // An IPv6 literal in brackets, or dot-separated labels of letters, digits and '-'.
    if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Path components: `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

fn valid_digest(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let algo_ok = !algo.is_empty()
        && algo.as_bytes()[0].is_ascii_alphabetic()
        && algo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.'));
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let sha256_ok = algo != "sha256"
        || (hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    algo_ok && hex_ok && sha256_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes() {
        let with_digest = format!("nginx@{D}");
        let tag_and_digest = format!("ghcr.io/org/app:1.2@{D}");
        let table: Vec<(&str, String)> = vec![
            ("nginx", "docker.io/library/nginx:latest".into()),
            ("nginx:1.19", "docker.io/library/nginx:1.19".into()),
            ("library/nginx", "docker.io/library/nginx:latest".into()),
            ("docker.io/nginx", "docker.io/library/nginx:latest".into()),
            (
                "index.docker.io/library/nginx:1",
                "docker.io/library/nginx:1".into(),
            ),
            ("bitnami/redis:7", "docker.io/bitnami/redis:7".into()),
            ("localhost/app", "localhost/app:latest".into()),
            ("localhost:5000/app:dev", "localhost:5000/app:dev".into()),
            (
                "registry.example.com:5000/team/app",
                "registry.example.com:5000/team/app:latest".into(),
            ),
            ("[::1]:5000/app:v1", "[::1]:5000/app:v1".into()),
            (&with_digest, format!("docker.io/library/nginx@{D}")),
            (&tag_and_digest, format!("ghcr.io/org/app:1.2@{D}")),
            (
                "public.ecr.aws/eks-distro/kubernetes/pause:3.9",
                "public.ecr.aws/eks-distro/kubernetes/pause:3.9".into(),
            ),
            (
                "a__b/c--d/e.f_g:T_1.0-x",
                "docker.io/a__b/c--d/e.f_g:T_1.0-x".into(),
            ),
        ];
        for (input, want) in table {
            let got = ImageRef::parse(input).map(|r| r.to_string());
            assert_eq!(got.as_deref(), Ok(want.as_str()), "{input}");
        }
    }

    #[test]
    fn rejects_malformed() {
        let table = [
            ("", Error::Empty),
            ("NGINX", Error::Repository("NGINX".into())),
            ("nginx:", Error::Tag("nginx:".into())),
            ("nginx:-bad", Error::Tag("nginx:-bad".into())),
            ("nginx@sha256:abc", Error::Digest("nginx@sha256:abc".into())),
            ("nginx@md5", Error::Digest("nginx@md5".into())),
            ("host:port/app", Error::Registry("host:port/app".into())),
            ("-bad.io/app", Error::Registry("-bad.io/app".into())),
            ("ex.io/a//b", Error::Repository("ex.io/a//b".into())),
            ("ex.io/a..b", Error::Repository("ex.io/a..b".into())),
            ("ex.io/", Error::Repository("ex.io/".into())),
        ];
        for (input, want) in table {
            assert_eq!(ImageRef::parse(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn latest_detection() {
        let pinned = format!("nginx:latest@{D}");
        let table = [
            ("nginx", true),
            ("nginx:latest", true),
            ("nginx:1.25", false),
            (pinned.as_str(), false),
            ("localhost:5000/app", true),
        ];
        for (input, want) in table {
            assert_eq!(
                ImageRef::parse(input).map(|r| r.is_latest()),
                Ok(want),
                "{input}"
            );
        }
    }

    #[test]
    fn registry_allowlist_matches_whole_hosts_and_path_prefixes() {
        let table = [
            ("myregistry.io/app:1", "myregistry.io", true),
            ("myregistry.io.evil.com/app:1", "myregistry.io", false),
            ("evil.com/myregistry.io/app", "myregistry.io", false),
            ("myregistry.io:5000/app", "myregistry.io", false),
            ("myregistry.io:5000/app", "myregistry.io:5000", true),
            ("nginx", "docker.io", true),
            ("nginx", "index.docker.io", true),
            ("nginx", "docker.io/library/", true),
            ("bitnami/redis", "docker.io/library/", false),
            ("ghcr.io/my-org/app:1", "ghcr.io/my-org/", true),
            ("ghcr.io/my-org/team/app:1", "ghcr.io/my-org/", true),
            ("ghcr.io/my-org-evil/app:1", "ghcr.io/my-org/", false),
            ("ghcr.io/my-org-evil/app:1", "ghcr.io/my-org", false),
            ("GHCR.io/my-org/app", "ghcr.io/my-org/", true),
        ];
        for (image, entry, want) in table {
            let r = ImageRef::parse(image).expect(image);
            assert_eq!(r.registry_matches(entry), want, "{image} vs {entry}");
        }
    }
}
