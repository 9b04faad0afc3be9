//! Whether an installed version is affected, by the OSV evaluation rules.
//!
//! A version is affected by an entry when it equals one of its `versions[]` or lies in one of
//! its ranges. A range's events are sorted by version in the ecosystem's order (`introduced:
//! "0"` before everything, `limit: "*"` after) and walked: `introduced ≤ v` makes it
//! affected, `fixed ≤ v` or `last_affected < v` unaffected again; so the affected versions
//! are `[introduced, fixed)` and `[introduced, last_affected]`, several intervals in one
//! range allowed. When a range has `limit` events, only versions below one of them can be
//! affected. The fixed version reported is the first `fixed` event above the installed
//! version in the range that matched.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::Scheme;
use super::index::{AffectedEntry, Event, Index};
use crate::inventory::Inventory;
use crate::inventory::language::LanguagePackage;
use crate::report::Finding;

/// Whether `version` is affected by `entry`: `None` if not, else the fixed version (if any)
/// of the range that matched.
pub fn affects(scheme: Scheme, entry: &AffectedEntry, version: &str) -> Option<Option<String>> {
    let mut hit_without_fix = false;
    for range in entry.ranges.iter() {
        match in_range(scheme, range, version) {
            Some(Some(fixed)) => return Some(Some(fixed.to_owned())),
            Some(None) => hit_without_fix = true,
            None => {}
        }
    }
    if hit_without_fix {
        return Some(None);
    }
    let listed = entry
        .versions
        .iter()
        .any(|v| &**v == version || scheme.compare(v, version) == Ordering::Equal);
    listed.then_some(None)
}

fn event_version(e: &Event) -> &str {
    match e {
        Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
    }
}

/// A stable sort that never panics, whatever `cmp` answers: Maven's version order is not
/// transitive on every input (see [`crate::version::maven`]), and the standard library's
/// sorts may panic on such an order. A range holds a handful of events.
fn insertion_sort<T>(items: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && cmp(&items[j - 1], &items[j]) == Ordering::Greater {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Compare two events by version; at equal versions `introduced` sorts first, so that an
/// empty interval stays empty.
fn cmp_events(scheme: Scheme, a: &Event, b: &Event) -> Ordering {
    let key = |e: &Event| match e {
        Event::Introduced(v) if &**v == "0" => (0u8, 0u8),
        Event::Limit(v) if v.contains('*') => (2, 0),
        Event::Introduced(_) => (1, 0),
        Event::LastAffected(_) => (1, 1),
        Event::Fixed(_) => (1, 2),
        Event::Limit(_) => (1, 3),
    };
    let (ka, kb) = (key(a), key(b));
    if ka.0 != 1 || kb.0 != 1 {
        return ka.0.cmp(&kb.0);
    }
    scheme
        .compare(event_version(a), event_version(b))
        .then(ka.1.cmp(&kb.1))
}

/// `None` if `v` is outside the range, else the fixed version that ends its interval.
fn in_range<'a>(scheme: Scheme, events: &'a [Event], v: &str) -> Option<Option<&'a str>> {
    let lt = |a: &str, b: &str| scheme.compare(a, b) == Ordering::Less;
    let mut limits = events.iter().filter_map(|e| match e {
        Event::Limit(l) => Some(&**l),
        _ => None,
    });
    let mut has_limit = false;
    let below_a_limit = limits.any(|l| {
        has_limit = true;
        l.contains('*') || lt(v, l)
    });
    if has_limit && !below_a_limit {
        return None;
    }
    let mut sorted: Vec<&Event> = events
        .iter()
        .filter(|e| !matches!(e, Event::Limit(_)))
        .collect();
    insertion_sort(&mut sorted, |a, b| cmp_events(scheme, a, b));
    let mut affected = false;
    let mut next = sorted.len();
    for (i, e) in sorted.iter().enumerate() {
        match e {
            Event::Introduced(x) => {
                if &**x == "0" || !lt(v, x) {
                    affected = true;
                } else {
                    next = next.min(i);
                }
            }
            Event::Fixed(x) => {
                if !lt(v, x) {
                    affected = false;
                } else {
                    next = next.min(i);
                }
            }
            Event::LastAffected(x) => {
                if lt(x, v) {
                    affected = false;
                } else {
                    next = next.min(i);
                }
            }
            Event::Limit(_) => {}
        }
    }
    if !affected {
        return None;
    }
    let fixed = sorted[next..].iter().find_map(|e| match e {
        Event::Fixed(f) => Some(&**f),
        _ => None,
    });
    Some(fixed)
}

/// The findings of an inventory against one ecosystem's index: one per (vulnerability, binary
/// package), advisories that name each other grouped ([`super::grouping`]), sorted worst severity first, then by id, then by package.
pub fn match_index(index: &Index, inventory: &Inventory) -> Vec<Finding> {
    let scheme = index.ecosystem().scheme;
    let mut findings: Vec<Finding> = Vec::new();
    // (advisory, package index in the inventory) → position in `findings`
    let mut seen: HashMap<(u32, usize), usize> = HashMap::new();
    for (p, pkg) in inventory.packages.iter().enumerate() {
        for (name, version) in super::ecosystem::advisory_keys(index.ecosystem(), pkg) {
            for entry in index.affected(name) {
                let Some(fixed) = affects(scheme, entry, version) else {
                    continue;
                };
                let Some(adv) = index.advisory(entry.advisory) else {
                    continue;
                };
                if let Some(&at) = seen.get(&(entry.advisory, p)) {
                    // The same advisory through another entry or name: keep the worst
                    // severity and a known fix.
                    let f = &mut findings[at];
                    f.severity = f.severity.max(entry.severity);
                    if f.fixed_version.is_none() {
                        f.fixed_version = fixed;
                    }
                    continue;
                }
                seen.insert((entry.advisory, p), findings.len());
                findings.push(Finding {
                    id: adv.id.to_string(),
                    aliases: adv.aliases.iter().map(|a| a.to_string()).collect(),
                    package: pkg.name.clone(),
                    installed_version: pkg.version.clone(),
                    fixed_version: fixed,
                    severity: entry.severity,
                    summary: adv.summary.as_deref().map(str::to_owned),
                    ecosystem: None,
                    location: None,
                });
            }
        }
    }
    let mut findings = super::grouping::group_by_alias(scheme, findings);
    sort_findings(&mut findings);
    findings
}

/// The findings of language packages against their ecosystem's index: one per (advisory,
/// package and file), each naming the ecosystem and the file. Not sorted.
pub fn match_language<'a>(
    index: &Index,
    packages: impl IntoIterator<Item = &'a LanguagePackage>,
) -> Vec<Finding> {
    let scheme = index.ecosystem().scheme;
    let mut findings: Vec<Finding> = Vec::new();
    for pkg in packages {
        // (advisory) → position in `findings`, for this package only.
        let mut seen: HashMap<u32, usize> = HashMap::new();
        for entry in index.affected(&pkg.name) {
            let Some(fixed) = affects(scheme, entry, &pkg.version) else {
                continue;
            };
            let Some(adv) = index.advisory(entry.advisory) else {
                continue;
            };
            if let Some(&at) = seen.get(&entry.advisory) {
                let f: &mut Finding = &mut findings[at];
                f.severity = f.severity.max(entry.severity);
                if f.fixed_version.is_none() {
                    f.fixed_version = fixed;
                }
                continue;
            }
            seen.insert(entry.advisory, findings.len());
            findings.push(Finding {
                id: adv.id.to_string(),
                aliases: adv.aliases.iter().map(|a| a.to_string()).collect(),
                package: pkg.name.clone(),
                installed_version: pkg.version.clone(),
                fixed_version: fixed,
                severity: entry.severity,
                summary: adv.summary.as_deref().map(str::to_owned),
                ecosystem: Some(index.ecosystem().name.clone()),
                location: Some(pkg.location.clone()),
            });
        }
    }
    super::grouping::group_by_alias(scheme, findings)
}

/// Worst severity first, then id, then package, then installed version, then file.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.installed_version.cmp(&b.installed_version))
            .then_with(|| a.location.cmp(&b.location))
    });
}

#[cfg(test)]
mod sort_tests {
    use super::*;

    #[test]
    fn insertion_sort_is_stable_and_survives_an_intransitive_order() {
        let mut v = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')];
        insertion_sort(&mut v, |a, b| a.0.cmp(&b.0));
        assert_eq!(v, [(1, 'b'), (1, 'e'), (2, 'd'), (3, 'a'), (3, 'c')]);

        // Rock, paper, scissors, many times over: no panic, every item kept.
        let mut cycle: Vec<u8> = (0..300).map(|i| (i % 3) as u8).collect();
        insertion_sort(&mut cycle, |a, b| match (a, b) {
            _ if a == b => Ordering::Equal,
            (0, 1) | (1, 2) | (2, 0) => Ordering::Less,
            _ => Ordering::Greater,
        });
        assert_eq!(cycle.len(), 300);
        assert_eq!(cycle.iter().filter(|&&x| x == 0).count(), 100);
    }
}
