//! Registry credentials (the `kubernetes.io/dockerconfigjson` format) and the
//! `WWW-Authenticate` challenges of the distribution token protocol. Pure parsing.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;

/// A username and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Logins by registry host, as `.dockerconfigjson` holds them.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    by_host: HashMap<String, Login>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl Credentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a login for a registry host (`registry.example.com:5000`).
    pub fn insert(&mut self, host: &str, login: Login) {
        self.by_host.insert(normalize_host(host), login);
    }

    /// Merge the logins of a `.dockerconfigjson` document; later documents win per host.
    /// `what` names the document in errors (`secret palisade/regcred`).
    pub fn add_docker_config(&mut self, what: &str, json: &[u8]) -> Result<(), String> {
        let config: DockerConfig = serde_json::from_slice(json)
            .map_err(|e| format!("{what}: not a .dockerconfigjson document: {e}"))?;
        for (key, entry) in config.auths {
            let login = match (entry.username, entry.password, entry.auth) {
                (Some(username), Some(password), _) => Login { username, password },
                (_, _, Some(auth)) => decode_auth(&auth).ok_or_else(|| {
                    format!("{what}: auths[{key:?}].auth is not base64 of user:password")
                })?,
                _ => {
                    return Err(format!(
                        "{what}: auths[{key:?}] has neither auth nor username and password"
                    ));
                }
            };
            self.by_host.insert(normalize_host(&key), login);
        }
        Ok(())
    }

    /// The login for a registry host, if any.
    pub fn for_host(&self, host: &str) -> Option<&Login> {
        self.by_host.get(&normalize_host(host))
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}

fn decode_auth(auth: &str) -> Option<Login> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Login {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// `https://index.docker.io/v1/`, `registry-1.docker.io` and `docker.io` are one registry;
/// keys may carry a scheme and a path.
fn normalize_host(key: &str) -> String {
    let key = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => host,
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` header value (`Bearer realm="…",service="…",scope="…"`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k="v", k2=v2` with quoted strings that may contain commas and escaped quotes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_owned();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        out.push((key, value));
    }
    out
}

/// The token endpoint's answer: registries use `token`, OAuth2-style ones `access_token`.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/nginx:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm="http://127.0.0.1:1/t""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm="r",scope="repository:a:pull,push""#),
            Some(Challenge::Bearer {
                realm: "r".into(),
                service: None,
                scope: Some("repository:a:pull,push".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=\"x\""),
            None,
            "a bearer challenge needs a realm"
        );
    }

    #[test]
    fn docker_config() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"Registry.Example.com:5000":{{"username":"bob","password":"pw"}}}}}}"#
        );
        let mut c = Credentials::new();
        c.add_docker_config("secret ns/regcred", json.as_bytes())
            .expect("valid");
        let docker = c.for_host("docker.io").expect("docker hub login");
        assert_eq!(
            (docker.username.as_str(), docker.password.as_str()),
            ("alice", "s3cr:et")
        );
        assert_eq!(
            c.for_host("registry.example.com:5000")
                .map(|l| l.username.as_str()),
            Some("bob")
        );
        assert!(
            c.for_host("registry.example.com").is_none(),
            "the port is part of the host"
        );
        assert!(
            !format!("{docker:?}").contains("s3cr"),
            "passwords are redacted"
        );

        let err = c
            .add_docker_config("secret ns/bad", br#"{"auths":{"x":{"auth":"!!!"}}}"#)
            .expect_err("bad");
        assert!(
            err.contains("secret ns/bad") && err.contains("base64"),
            "{err}"
        );
        let err = c
            .add_docker_config("secret ns/bad", b"[1,2]")
            .expect_err("bad");
        assert!(err.contains("not a .dockerconfigjson"), "{err}");
        let err = c
            .add_docker_config("secret ns/bad", br#"{"auths":{"x":{}}}"#)
            .expect_err("bad");
        assert!(err.contains("neither auth nor username"), "{err}");
    }
}
