//! The in-memory index of one ecosystem's advisories: package name → affected entries.
//!
//! Built from an OSV export zip (one JSON advisory per entry). Strings that repeat across
//! advisories (package names, versions, ids) are interned as `Arc<str>`, so a Debian
//! release's tens of thousands of advisories cost little more than their distinct strings.
//!
//! Tolerance: an archive is all or nothing. Anything that is not a zip, an entry that is not
//! JSON or not an OSV record (a field of the wrong type, no `id`), or an entry larger than
//! [`Limits::max_entry_bytes`] fails the whole load: a database missing some advisories
//! would silently under-report. Within a well-formed record, parts the scanner cannot use
//! (`GIT` ranges, events without a known key, affected entries of other ecosystems) are
//! skipped, as the schema allows.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek};
use std::sync::Arc;

use super::Ecosystem;
use super::schema::{self, Vulnerability};
use super::severity::severity_of;
use crate::Error;
use crate::report::Severity;

/// Bounds on what an export may contain (zip bombs, hostile mirrors).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest uncompressed size of one advisory file.
    pub max_entry_bytes: u64,
    /// Most files in one archive (for an `updateinfo.xml`: most `<update>` entries, each
    /// bounded by `max_entry_bytes`).
    pub max_entries: usize,
    /// Largest uncompressed size of a source that is one document (`updateinfo.xml`), so
    /// that a compression bomb stops early.
    pub max_document_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entry_bytes: 16 << 20,
            max_entries: 2_000_000,
            // RHEL's largest updateinfo.xml is a few hundred MiB; Amazon's are tens.
            max_document_bytes: 4 << 30,
        }
    }
}

/// One advisory's identity, shared by its affected entries.
#[derive(Clone, Debug)]
pub struct Advisory {
    pub id: Arc<str>,
    /// CVE ids first, then the others; without the advisory's own id.
    pub aliases: Box<[Arc<str>]>,
    /// The first line of the summary (or of the details when there is no summary).
    pub summary: Option<Box<str>>,
}

/// One event of a range, its version interned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Introduced(Arc<str>),
    Fixed(Arc<str>),
    LastAffected(Arc<str>),
    Limit(Arc<str>),
}

/// An affected entry of an advisory for one package.
#[derive(Clone, Debug)]
pub struct AffectedEntry {
    /// The advisory, for [`Index::advisory`].
    pub advisory: u32,
    pub severity: Severity,
    /// Each range is its events, in the order the record lists them.
    pub ranges: Box<[Box<[Event]>]>,
    pub versions: Box<[Arc<str>]>,
}

/// The advisories of one ecosystem, by package name.
#[derive(Debug)]
pub struct Index {
    ecosystem: Ecosystem,
    advisories: Vec<Advisory>,
    packages: HashMap<Arc<str>, Box<[AffectedEntry]>>,
    withdrawn: usize,
}

impl Index {
    /// Read an export archive. `source_name` names it in errors (a URL or a path).
    pub fn from_zip<R: Read + Seek>(
        ecosystem: Ecosystem,
        reader: R,
        source_name: &str,
        limits: Limits,
    ) -> Result<Index, Error> {
        let mut builder = Builder::new(ecosystem);
        for_each_zip_record(reader, source_name, limits, |_, vuln| builder.add(vuln))?;
        Ok(builder.finish())
    }

    /// Build from parsed records (tests, and callers that have them already).
    pub fn from_records<'a>(
        ecosystem: Ecosystem,
        records: impl IntoIterator<Item = &'a Vulnerability>,
    ) -> Index {
        let mut builder = Builder::new(ecosystem);
        for r in records {
            builder.add(r);
        }
        builder.finish()
    }

    pub fn ecosystem(&self) -> &Ecosystem {
        &self.ecosystem
    }

    /// Advisories that affect at least one package of this ecosystem.
    pub fn advisory_count(&self) -> usize {
        self.advisories.len()
    }

    /// Withdrawn advisories that were skipped.
    pub fn withdrawn_count(&self) -> usize {
        self.withdrawn
    }

    /// Packages with at least one advisory.
    pub fn package_count(&self) -> usize {
        self.packages.len()
    }

    pub fn advisory(&self, i: u32) -> Option<&Advisory> {
        self.advisories.get(i as usize)
    }

    /// The affected entries of a package (by the name its advisories use).
    pub fn affected(&self, package: &str) -> &[AffectedEntry] {
        let key = self.ecosystem.package_key(package);
        self.packages.get(&*key).map_or(&[], |v| v)
    }
}

/// Parse every advisory of an export archive, in archive order, and hand each to `each` with
/// its file name. All or nothing: the first file that is too big or not an OSV record is
/// the error (see the module's tolerance rules).
pub(crate) fn for_each_zip_record<R: Read + Seek>(
    reader: R,
    source_name: &str,
    limits: Limits,
    mut each: impl FnMut(&str, &Vulnerability),
) -> Result<(), Error> {
    let fail = |reason: String| Error::VulnDb {
        source_name: source_name.to_owned(),
        reason,
    };
    let mut zip = zip::ZipArchive::new(reader)
        .map_err(|e| fail(format!("not a readable zip archive: {e}")))?;
    if zip.len() > limits.max_entries {
        return Err(fail(format!(
            "{} files, more than the {} allowed",
            zip.len(),
            limits.max_entries
        )));
    }
    let mut buf = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| fail(format!("file #{i} of the archive: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        if entry.size() > limits.max_entry_bytes {
            return Err(fail(format!(
                "{name}: {} bytes uncompressed, more than the {} allowed for one advisory",
                entry.size(),
                limits.max_entry_bytes
            )));
        }
        buf.clear();
        // The declared size can lie: never read more than the limit, whatever it says.
        (&mut entry)
            .take(limits.max_entry_bytes + 1)
            .read_to_end(&mut buf)
            .map_err(|e| fail(format!("{name}: {e}")))?;
        if buf.len() as u64 > limits.max_entry_bytes {
            return Err(fail(format!(
                "{name}: more than the {} bytes allowed for one advisory",
                limits.max_entry_bytes
            )));
        }
        let vuln: Vulnerability = serde_json::from_slice(&buf)
            .map_err(|e| fail(format!("{name}: not an OSV record: {e}")))?;
        each(&name, &vuln);
    }
    Ok(())
}

/// Builds one ecosystem's [`Index`] from records added one at a time.
pub(crate) struct Builder {
    ecosystem: Ecosystem,
    strings: HashSet<Arc<str>>,
    advisories: Vec<Advisory>,
    packages: HashMap<Arc<str>, Vec<AffectedEntry>>,
    withdrawn: usize,
}

impl Builder {
    pub(crate) fn new(ecosystem: Ecosystem) -> Self {
        Builder {
            ecosystem,
            strings: HashSet::new(),
            advisories: Vec::new(),
            packages: HashMap::new(),
            withdrawn: 0,
        }
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(a.clone());
        a
    }

    fn applies(&self, ecosystem: &str) -> bool {
        self.ecosystem.covers(ecosystem)
    }

    pub(crate) fn add(&mut self, vuln: &Vulnerability) {
        if vuln.withdrawn.is_some() {
            self.withdrawn += 1;
            return;
        }
        let mut advisory: Option<u32> = None;
        for affected in &vuln.affected {
            let Some(pkg) = &affected.package else {
                continue;
            };
            if !self.applies(&pkg.ecosystem) || pkg.name.is_empty() {
                continue;
            }
            let ranges: Box<[Box<[Event]>]> = affected
                .ranges
                .iter()
                .filter(|r| r.kind != "GIT")
                .map(|r| self.events(r))
                .filter(|events| events.iter().any(|e| matches!(e, Event::Introduced(_))))
                .collect();
            let versions: Box<[Arc<str>]> =
                affected.versions.iter().map(|v| self.intern(v)).collect();
            if ranges.is_empty() && versions.is_empty() {
                continue;
            }
            let index = match advisory {
                Some(i) => i,
                None => {
                    let i = u32::try_from(self.advisories.len()).unwrap_or(u32::MAX);
                    let adv = self.advisory(vuln);
                    self.advisories.push(adv);
                    advisory = Some(i);
                    i
                }
            };
            let key = self.ecosystem.package_key(&pkg.name).into_owned();
            let name = self.intern(&key);
            self.packages.entry(name).or_default().push(AffectedEntry {
                advisory: index,
                severity: severity_of(vuln, affected),
                ranges,
                versions,
            });
        }
    }

    fn events(&mut self, range: &schema::Range) -> Box<[Event]> {
        range
            .events
            .iter()
            .filter_map(|e| {
                // The schema allows one key per event; an event with none or several is
                // malformed and ignored rather than guessed at.
                let set = [&e.introduced, &e.fixed, &e.last_affected, &e.limit]
                    .iter()
                    .filter(|v| v.is_some())
                    .count();
                if set != 1 {
                    return None;
                }
                Some(if let Some(v) = &e.introduced {
                    Event::Introduced(self.intern(v))
                } else if let Some(v) = &e.fixed {
                    Event::Fixed(self.intern(v))
                } else if let Some(v) = &e.last_affected {
                    Event::LastAffected(self.intern(v))
                } else {
                    Event::Limit(self.intern(e.limit.as_deref()?))
                })
            })
            .collect()
    }

    fn advisory(&mut self, vuln: &Vulnerability) -> Advisory {
        let mut aliases: Vec<&str> = Vec::new();
        let related_cves = vuln.related.iter().filter(|r| r.starts_with("CVE-"));
        for a in vuln
            .aliases
            .iter()
            .chain(&vuln.upstream)
            .chain(related_cves)
        {
            let a = a.trim();
            if !a.is_empty() && a != vuln.id && !aliases.contains(&a) {
                aliases.push(a);
            }
        }
        // CVE ids first: they are what people search for and write in ignore lists.
        aliases.sort_by_key(|a| !a.starts_with("CVE-"));
        let summary = vuln
            .summary
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .or(vuln.details.as_deref())
            .and_then(|s| s.lines().map(str::trim).find(|l| !l.is_empty()))
            .map(|l| Box::<str>::from(l.chars().take(240).collect::<String>()));
        Advisory {
            id: self.intern(&vuln.id),
            aliases: aliases.into_iter().map(|a| self.intern(a)).collect(),
            summary,
        }
    }

    pub(crate) fn finish(self) -> Index {
        Index {
            ecosystem: self.ecosystem,
            advisories: self.advisories,
            packages: self
                .packages
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
            withdrawn: self.withdrawn,
        }
    }
}
