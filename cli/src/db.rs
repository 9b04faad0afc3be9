//! What `palisade scan --db` names, and loading it. Four forms: an http(s) base URL or a
//! database directory, both in OSV's export layout (`<ecosystem>/all.zip`, what the operator
//! reads); one export zip as downloaded from OSV; or a directory of OSV advisory `*.json`
//! files (an unzipped export). A look at the path tells them apart ([`classify`], pure given
//! what the look saw); anything else is refused before the image is pulled.
//!
//! Whatever `--db` is, the ecosystems with an updateinfo source (Amazon Linux's by default,
//! others by `--updateinfo ECOSYSTEM=URL|PATH`) are read from it through the store.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use palisade_scanner::inventory::language::Language;
use palisade_scanner::oci::RegistryClient;
use palisade_scanner::osv::local::{self, Format};
use palisade_scanner::osv::store::{Source, Store};
use palisade_scanner::osv::{Database, Ecosystem, Limits};

/// A `--db` argument, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbSource {
    /// A base URL serving `<ecosystem>/all.zip`.
    Url(String),
    /// A directory holding `<ecosystem>/all.zip`.
    Layout(PathBuf),
    /// One export zip; its advisories say which ecosystem.
    ExportZip(PathBuf),
    /// A directory of advisory `*.json` files, at any depth.
    JsonDir(PathBuf),
}

/// What a look at a path saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Nothing there, or not readable: the reason.
    Missing(String),
    /// A file, and whether it starts like a zip archive.
    File { zip: bool },
    /// A directory: whether some `<name>/all.zip` is in it, and whether some `*.json` is
    /// below it.
    Dir { layout: bool, json: bool },
    /// A device, socket or the like.
    Other,
}

/// Understand a `--db` argument: a URL by its scheme, a path by what `look` sees there.
pub fn classify(arg: &str, look: impl FnOnce(&Path) -> Seen) -> Result<DbSource, String> {
    if arg.starts_with("http://") || arg.starts_with("https://") {
        return Ok(DbSource::Url(arg.trim_end_matches('/').to_owned()));
    }
    let path = PathBuf::from(arg);
    let why = match look(&path) {
        Seen::File { zip: true } => return Ok(DbSource::ExportZip(path)),
        Seen::Dir { layout: true, .. } => return Ok(DbSource::Layout(path)),
        Seen::Dir { json: true, .. } => return Ok(DbSource::JsonDir(path)),
        Seen::Missing(reason) => reason,
        Seen::File { zip: false } => "a file that is not a zip archive".to_owned(),
        Seen::Dir { .. } => "a directory with no <ecosystem>/all.zip and no *.json file".to_owned(),
        Seen::Other => "neither a file nor a directory".to_owned(),
    };
    Err(format!(
        "--db {arg}: not a zip file, a directory of OSV JSON, a database directory or an \
         http(s) URL ({why})"
    ))
}

/// The zip archive signatures: a local file header, or the end record of an empty archive.
const ZIP_MAGIC: [&[u8; 4]; 2] = [b"PK\x03\x04", b"PK\x05\x06"];

/// Directories looked into when searching for a `*.json` file; an export has a handful.
const MAX_DIRS_SEARCHED: usize = 10_000;

/// Look at a path for [`classify`].
pub fn look(path: &Path) -> Seen {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Seen::Missing(e.to_string()),
    };
    if meta.is_file() {
        let mut head = [0u8; 4];
        let zip = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok_and(|()| ZIP_MAGIC.contains(&&head));
        return Seen::File { zip };
    }
    if !meta.is_dir() {
        return Seen::Other;
    }
    let layout = std::fs::read_dir(path).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join("all.zip").is_file())
    });
    Seen::Dir {
        layout,
        json: has_json(path),
    }
}

/// Whether some `*.json` file is below `dir` (not following links to directories).
fn has_json(dir: &Path) -> bool {
    let mut pending = vec![dir.to_path_buf()];
    let mut searched = 0;
    while let Some(d) = pending.pop() {
        searched += 1;
        if searched > MAX_DIRS_SEARCHED {
            return false;
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                return true;
            }
        }
    }
    false
}

/// Load the ecosystems an image needs. URLs and database directories go through the
/// store and its cache in `cache_dir`; a zip or a JSON directory is read in place, except
/// for the ecosystems with an updateinfo source (`updateinfo`: overrides of the built-in
/// ones), which always go through the store.
pub async fn load(
    source: &DbSource,
    updateinfo: &[(String, String)],
    ecosystems: &[Ecosystem],
    cache_dir: &Path,
    client: &RegistryClient,
) -> anyhow::Result<Database> {
    let store = |source: Source| {
        updateinfo.iter().fold(
            Store::new(source, cache_dir, client.http_client()),
            |store, (ecosystem, location)| store.with_updateinfo(ecosystem, location),
        )
    };
    let (path, format) = match source {
        DbSource::Url(url) => return load_each(&store(Source::Url(url.clone())), ecosystems).await,
        DbSource::Layout(dir) => {
            return load_each(&store(Source::Dir(dir.clone())), ecosystems).await;
        }
        DbSource::ExportZip(path) => (path.clone(), Format::ExportZip),
        DbSource::JsonDir(path) => (path.clone(), Format::JsonDir),
    };
    // The store's OSV source is never asked: only its updateinfo ecosystems are loaded.
    let feeds = store(Source::Dir(path.clone()));
    let (from_updateinfo, in_place): (Vec<Ecosystem>, Vec<Ecosystem>) = ecosystems
        .iter()
        .cloned()
        .partition(|e| feeds.updateinfo_location(&e.name).is_some());
    let mut db = tokio::task::spawn_blocking(move || {
        local::load(&path, format, &in_place, Limits::default())
    })
    .await
    .context("reading the vulnerability database stopped")??;
    db.merge(load_each(&feeds, &from_updateinfo).await?);
    Ok(db)
}

/// Load each ecosystem through the store. The OS's must load; a language ecosystem that
/// cannot is left out with a warning, and the report names its packages as not judged.
async fn load_each(store: &Store, ecosystems: &[Ecosystem]) -> anyhow::Result<Database> {
    let mut db = Database::new();
    for eco in ecosystems {
        match store.load(eco).await {
            Ok(loaded) => db.insert_loaded(&loaded),
            Err(e) if Language::from_osv_ecosystem(&eco.name).is_some() => {
                let e = anyhow::Error::from(e);
                eprintln!("warning: {e:#}; its packages are not judged");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_arguments() {
        let dir = |layout, json| Seen::Dir { layout, json };
        let table: &[(&str, Seen, Result<DbSource, &str>)] = &[
            (
                "https://osv-vulnerabilities.storage.googleapis.com/",
                Seen::Other,
                Ok(DbSource::Url(
                    "https://osv-vulnerabilities.storage.googleapis.com".into(),
                )),
            ),
            (
                "http://mirror:8080/osv",
                Seen::Other,
                Ok(DbSource::Url("http://mirror:8080/osv".into())),
            ),
            (
                "/db/all.zip",
                Seen::File { zip: true },
                Ok(DbSource::ExportZip("/db/all.zip".into())),
            ),
            ("/db", dir(true, false), Ok(DbSource::Layout("/db".into()))),
            ("/db", dir(true, true), Ok(DbSource::Layout("/db".into()))),
            (
                "/advisories",
                dir(false, true),
                Ok(DbSource::JsonDir("/advisories".into())),
            ),
            (
                "/db/advisory.json",
                Seen::File { zip: false },
                Err("(a file that is not a zip archive)"),
            ),
            (
                "/empty",
                dir(false, false),
                Err("(a directory with no <ecosystem>/all.zip and no *.json file)"),
            ),
            (
                "/nonexistent",
                Seen::Missing("No such file or directory (os error 2)".into()),
                Err("(No such file or directory (os error 2))"),
            ),
            (
                "/dev/null",
                Seen::Other,
                Err("(neither a file nor a directory)"),
            ),
            (
                "ftp://mirror/osv",
                Seen::Missing("No such file or directory (os error 2)".into()),
                Err("--db ftp://mirror/osv: not a zip file"),
            ),
        ];
        for (arg, seen, want) in table {
            let got = classify(arg, |_| seen.clone());
            match want {
                Ok(want) => assert_eq!(got.as_ref(), Ok(want), "{arg}"),
                Err(part) => {
                    let err = got.expect_err(arg);
                    assert!(
                        err.starts_with(&format!(
                            "--db {arg}: not a zip file, a directory of OSV JSON, a database \
                             directory or an http(s) URL"
                        )),
                        "{err}"
                    );
                    assert!(err.contains(part), "{arg}: {err}");
                }
            }
        }
    }

    #[test]
    fn looks_at_real_paths() {
        let root = tempfile::tempdir().expect("tempdir");
        let p = |s: &str| root.path().join(s);
        std::fs::create_dir_all(p("layout/Debian:12")).expect("dirs");
        std::fs::write(p("layout/Debian:12/all.zip"), b"PK\x05\x06").expect("zip");
        std::fs::create_dir_all(p("json/a/b")).expect("dirs");
        std::fs::write(p("json/a/b/CVE-1.json"), "{}").expect("json");
        std::fs::create_dir_all(p("empty/sub")).expect("dirs");
        std::fs::write(p("empty/sub/notes.txt"), "x").expect("txt");
        std::fs::write(p("export.zip"), b"PK\x03\x04rest").expect("zip");
        std::fs::write(p("text.zip"), b"not a zip").expect("txt");
        std::fs::write(p("short"), b"P").expect("short");
        let table: &[(&str, Seen)] = &[
            (
                "layout",
                Seen::Dir {
                    layout: true,
                    json: false,
                },
            ),
            (
                "json",
                Seen::Dir {
                    layout: false,
                    json: true,
                },
            ),
            (
                "empty",
                Seen::Dir {
                    layout: false,
                    json: false,
                },
            ),
            ("export.zip", Seen::File { zip: true }),
            ("layout/Debian:12/all.zip", Seen::File { zip: true }),
            ("text.zip", Seen::File { zip: false }),
            ("short", Seen::File { zip: false }),
        ];
        for (path, want) in table {
            assert_eq!(look(&p(path)), *want, "{path}");
        }
        assert!(matches!(look(&p("nothing")), Seen::Missing(_)));
    }
}
