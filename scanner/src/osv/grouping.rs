//! One finding per vulnerability and package, however many advisories name it.
//!
//! Databases publish the same vulnerability under several ids that point at each other:
//! Debian's `DSA-5532-1` lists `CVE-2023-5363` and Debian also has `DEBIAN-CVE-2023-5363`
//! for it; PyPI has `PYSEC-…` and `GHSA-…` records with each other as aliases. Shown as they
//! come, one vulnerability is two or three lines to triage. Findings of one package (same
//! installed version, ecosystem and file) whose ids or aliases meet are grouped, transitively,
//! into one.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::Scheme;
use crate::report::Finding;

/// Group `findings` that share an id or alias within one package. The group keeps the id of
/// its advisory proper (a `DSA-`, `GHSA-`, … over an id that only wraps a CVE), every other
/// id as an alias (CVE ids first), the worst severity, and the fixed version only when every
/// member has one: then the highest, the version that clears them all. Order is kept: each
/// group stands where its first member stood.
pub fn group_by_alias(scheme: Scheme, findings: Vec<Finding>) -> Vec<Finding> {
    let n = findings.len();
    let mut parent: Vec<usize> = (0..n).collect();
    // (package identity, id) → first finding seen with that id or alias.
    let mut first: HashMap<Key<'_>, usize> = HashMap::new();
    for (i, f) in findings.iter().enumerate() {
        let who = (
            f.package.as_str(),
            f.installed_version.as_str(),
            f.ecosystem.as_deref(),
            f.location.as_deref(),
        );
        for id in std::iter::once(&f.id).chain(&f.aliases) {
            let key = (who.0, who.1, who.2, who.3, id.as_str());
            match first.get(&key) {
                Some(&j) => union(&mut parent, i, j),
                None => {
                    first.insert(key, i);
                }
            }
        }
    }
    let mut groups: Vec<Vec<Finding>> = Vec::new();
    let mut group_of_root: HashMap<usize, usize> = HashMap::new();
    for (i, f) in findings.into_iter().enumerate() {
        let root = find(&mut parent, i);
        let g = *group_of_root.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(f);
    }
    groups
        .into_iter()
        .filter_map(|g| merge(scheme, g))
        .collect()
}

/// Package, installed version, ecosystem, file, and one id of a finding.
type Key<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, &'a str);

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        // The smaller index stays root, so a group's order follows its first member.
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi] = lo;
    }
}

/// Ids that only restate a CVE under a database's prefix rank after the advisories proper.
fn id_rank(id: &str) -> u8 {
    if id.starts_with("DEBIAN-CVE-") || id.starts_with("UBUNTU-CVE-") {
        2
    } else if id.starts_with("CVE-") {
        1
    } else {
        0
    }
}

fn merge(scheme: Scheme, mut group: Vec<Finding>) -> Option<Finding> {
    if group.len() == 1 {
        return group.pop();
    }
    let lead = (0..group.len()).min_by(|&a, &b| {
        id_rank(&group[a].id)
            .cmp(&id_rank(&group[b].id))
            .then_with(|| group[a].id.cmp(&group[b].id))
    })?;
    let mut ids: Vec<String> = Vec::new();
    let mut severity = group[lead].severity;
    let mut fixed: Option<Option<String>> = None;
    let mut summary = group[lead].summary.clone();
    for f in &group {
        for id in std::iter::once(&f.id).chain(&f.aliases) {
            if *id != group[lead].id && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        severity = severity.max(f.severity);
        if summary.is_none() {
            summary = f.summary.clone();
        }
        fixed = Some(match (fixed, &f.fixed_version) {
            (None, v) => v.clone(),
            (Some(None), _) | (Some(Some(_)), None) => None,
            (Some(Some(a)), Some(b)) => match scheme.compare(&a, b) {
                Ordering::Less => Some(b.clone()),
                _ => Some(a),
            },
        });
    }
    // CVE ids first, as a single advisory's aliases are; then by id, whatever the order met.
    ids.sort_by(|a, b| (!a.starts_with("CVE-"), a).cmp(&(!b.starts_with("CVE-"), b)));
    let mut out = group.swap_remove(lead);
    out.aliases = ids;
    out.severity = severity;
    out.fixed_version = fixed.flatten();
    out.summary = summary;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;

    fn finding(id: &str, aliases: &[&str], fixed: Option<&str>, sev: Severity) -> Finding {
        Finding {
            id: id.to_owned(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            package: "openssl".to_owned(),
            installed_version: "3.0.9-1".to_owned(),
            fixed_version: fixed.map(str::to_owned),
            severity: sev,
            summary: None,
            ecosystem: None,
            location: None,
        }
    }

    fn ids(fs: &[Finding]) -> Vec<(String, Vec<String>, Option<String>, Severity)> {
        fs.iter()
            .map(|f| {
                (
                    f.id.clone(),
                    f.aliases.clone(),
                    f.fixed_version.clone(),
                    f.severity,
                )
            })
            .collect()
    }

    #[test]
    fn grouping_table() {
        use Severity::*;
        type Row = (
            &'static str,
            Vec<Finding>,
            Vec<(
                &'static str,
                Vec<&'static str>,
                Option<&'static str>,
                Severity,
            )>,
        );
        let table: Vec<Row> = vec![
            (
                "a DSA and the DEBIAN-CVE of each CVE it fixes are one finding, named by the DSA",
                vec![
                    finding(
                        "DEBIAN-CVE-2023-1",
                        &["CVE-2023-1"],
                        Some("3.0.11-1"),
                        Medium,
                    ),
                    finding(
                        "DSA-5532-1",
                        &["CVE-2023-1", "CVE-2023-2"],
                        Some("3.0.11-1"),
                        High,
                    ),
                    finding("DEBIAN-CVE-2023-2", &["CVE-2023-2"], Some("3.0.11-1"), Low),
                ],
                vec![(
                    "DSA-5532-1",
                    vec![
                        "CVE-2023-1",
                        "CVE-2023-2",
                        "DEBIAN-CVE-2023-1",
                        "DEBIAN-CVE-2023-2",
                    ],
                    Some("3.0.11-1"),
                    High,
                )],
            ),
            (
                "the fix that clears the group is the highest; one without a fix leaves none",
                vec![
                    finding("PYSEC-1", &["GHSA-a", "CVE-9"], Some("2.10"), Low),
                    finding("GHSA-a", &["PYSEC-1"], Some("2.9"), Low),
                    finding("DSA-1", &["CVE-7"], None, Low),
                    finding("DEBIAN-CVE-7", &["CVE-7"], Some("1"), Critical),
                ],
                vec![
                    ("GHSA-a", vec!["CVE-9", "PYSEC-1"], Some("2.10"), Low),
                    ("DSA-1", vec!["CVE-7", "DEBIAN-CVE-7"], None, Critical),
                ],
            ),
            (
                "advisories that share no id stay apart, in their order",
                vec![
                    finding("DSA-2", &["CVE-2"], Some("2"), Low),
                    finding("DSA-1", &["CVE-1"], Some("1"), High),
                ],
                vec![
                    ("DSA-2", vec!["CVE-2"], Some("2"), Low),
                    ("DSA-1", vec!["CVE-1"], Some("1"), High),
                ],
            ),
            (
                "a chain links transitively: A–B through CVE-1, B–C through CVE-2",
                vec![
                    finding("A", &["CVE-1"], Some("1"), Low),
                    finding("C", &["CVE-2"], Some("1"), Low),
                    finding("B", &["CVE-1", "CVE-2"], Some("1"), Low),
                ],
                vec![("A", vec!["CVE-1", "CVE-2", "B", "C"], Some("1"), Low)],
            ),
        ];
        for (what, input, want) in table {
            let got = group_by_alias(Scheme::Dpkg, input);
            let want: Vec<_> = want
                .into_iter()
                .map(|(id, al, fx, sev)| {
                    (
                        id.to_owned(),
                        al.into_iter().map(str::to_owned).collect::<Vec<_>>(),
                        fx.map(str::to_owned),
                        sev,
                    )
                })
                .collect();
            assert_eq!(ids(&got), want, "{what}");
        }
    }

    #[test]
    fn other_packages_and_files_are_never_grouped() {
        let a = finding("DSA-1", &["CVE-1"], Some("1"), Severity::Low);
        let mut b = finding("DEBIAN-CVE-1", &["CVE-1"], Some("1"), Severity::Low);
        b.package = "libssl3".to_owned();
        let mut c = a.clone();
        c.ecosystem = Some("npm".to_owned());
        c.location = Some("app/node_modules/x/package.json".to_owned());
        let mut d = c.clone();
        d.location = Some("other/node_modules/x/package.json".to_owned());
        let got = group_by_alias(Scheme::Dpkg, vec![a, b, c, d]);
        assert_eq!(got.len(), 4);
    }
}
