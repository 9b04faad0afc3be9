use std::fmt;
use std::str::FromStr;

/// A Pod Security Standards level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bad level or version string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown level {0:?}: expected privileged, baseline or restricted")]
    Level(String),
    #[error("bad version {0:?}: expected latest or v1.N (for example v1.30)")]
    Version(String),
}

impl FromStr for Level {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(ParseError::Level(s.to_owned())),
        }
    }
}

/// The Kubernetes minor version whose Pod Security Standards apply. Checks that changed over
/// time are evaluated as they stood at this version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// Kubernetes `v1.N`.
    V1(u16),
    /// The newest semantics this crate knows.
    Latest,
}

impl Version {
    /// The newest minor version with checks that this crate implements.
    pub const NEWEST_KNOWN_MINOR: u16 = 37;

    /// The effective minor version: `Latest`, and anything newer than known, mean the newest.
    pub fn minor(self) -> u16 {
        match self {
            Version::V1(n) => n.min(Self::NEWEST_KNOWN_MINOR),
            Version::Latest => Self::NEWEST_KNOWN_MINOR,
        }
    }

    /// Whether this version includes a change made in `v1.N`.
    pub fn at_least(self, n: u16) -> bool {
        self.minor() >= n
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::V1(n) => write!(f, "v1.{n}"),
            Version::Latest => f.write_str("latest"),
        }
    }
}

impl FromStr for Version {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let minor = s
            .strip_prefix("v1.")
            .filter(|m| !m.is_empty() && (m == &"0" || !m.starts_with('0')))
            .and_then(|m| m.parse::<u16>().ok())
            .ok_or_else(|| ParseError::Version(s.to_owned()))?;
        Ok(Version::V1(minor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        let table: &[(&str, Option<Version>)] = &[
            ("latest", Some(Version::Latest)),
            ("v1.0", Some(Version::V1(0))),
            ("v1.37", Some(Version::V1(37))),
            ("v1.99", Some(Version::V1(99))),
            ("v1.05", None),
            ("v1.", None),
            ("1.30", None),
            ("v2.0", None),
            ("Latest", None),
            ("v1.-1", None),
        ];
        for (input, want) in table {
            assert_eq!(input.parse::<Version>().ok(), *want, "{input}");
        }
    }

    #[test]
    fn newer_than_known_is_latest() {
        assert_eq!(Version::V1(99).minor(), Version::Latest.minor());
        assert!(Version::V1(25).at_least(25));
        assert!(!Version::V1(24).at_least(25));
    }

    #[test]
    fn parses_levels() {
        assert_eq!("restricted".parse::<Level>(), Ok(Level::Restricted));
        assert!("Restricted".parse::<Level>().is_err());
    }
}
