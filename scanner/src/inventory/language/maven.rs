//! Java: the `META-INF/maven/GROUP/ARTIFACT/pom.properties` file Maven puts in every jar it
//! builds, read from inside the jar (the archive walk is the caller's).

use super::{Language, LanguagePackage, text, unreadable};

/// Whether `entry` (a path inside a jar) is a Maven artifact's properties.
pub fn is_pom_properties(entry: &str) -> bool {
    entry.starts_with("META-INF/maven/") && entry.ends_with("/pom.properties")
}

/// The artifact, named `groupId:artifactId` as Maven advisories name it. `location` is
/// where it was found (`app/lib/log4j-core-2.14.1.jar!META-INF/maven/…/pom.properties`).
pub fn read(location: &str, bytes: &[u8]) -> Result<LanguagePackage, crate::Error> {
    let text = text(location, bytes)?;
    let (mut group, mut artifact, mut version) = (None, None, None);
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with(['#', '!']) {
            continue;
        }
        // key=value or key: value, as java.util.Properties reads them.
        let Some(split) = line.find(['=', ':']) else {
            continue;
        };
        let (key, value) = (line[..split].trim(), line[split + 1..].trim());
        match key {
            "groupId" => group = Some(value),
            "artifactId" => artifact = Some(value),
            "version" => version = Some(value),
            _ => {}
        }
    }
    match (group, artifact, version) {
        (Some(g), Some(a), Some(v)) if !g.is_empty() && !a.is_empty() && !v.is_empty() => Ok(
            LanguagePackage::new(Language::Java, &format!("{g}:{a}"), v, location),
        ),
        _ => Err(unreadable(location, "no groupId, artifactId and version")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_artifact_version() {
        assert!(is_pom_properties(
            "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties"
        ));
        assert!(!is_pom_properties("META-INF/maven/x/y/pom.xml"));
        assert!(!is_pom_properties("BOOT-INF/lib/x/pom.properties"));

        let at = "app/log4j-core-2.14.1.jar!META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties";
        let p = read(
            at,
            b"#Created by Apache Maven 3.6.3\r\nversion=2.14.1\r\ngroupId=org.apache.logging.log4j\r\nartifactId=log4j-core\r\n",
        )
        .expect("reads");
        assert_eq!(p.language, Language::Java);
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("org.apache.logging.log4j:log4j-core", "2.14.1")
        );
        assert_eq!(p.location, at);

        let p = read(
            at,
            b"! comment\ngroupId : com.example\nartifactId: lib\nversion = 1.0-SNAPSHOT\n",
        )
        .expect("reads");
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("com.example:lib", "1.0-SNAPSHOT")
        );

        assert!(read(at, b"groupId=a\nartifactId=b\n").is_err());
        assert!(read(at, b"groupId=\nartifactId=b\nversion=1\n").is_err());
    }
}
