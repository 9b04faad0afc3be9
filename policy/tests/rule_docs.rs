//! `docs/rules/` has one page per rule id, in the shape developers rely on, with every
//! compliance reference the rule carries; its README links them all, and no page outlives
//! its rule.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use palisade_policy::{RuleId, compliance_refs};

/// The sections of every page, in order, after the `# <id>` title.
const SECTIONS: [&str; 4] = [
    "## What it checks",
    "## Why",
    "## How to fix",
    "## How to except",
];

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/rules")
}

fn rules() -> impl Iterator<Item = RuleId> {
    RuleId::ALL
        .iter()
        .chain(RuleId::SCAN)
        .chain(RuleId::RUNTIME)
        .copied()
}

/// Every id a page may be written for.
fn known_ids() -> BTreeSet<&'static str> {
    rules().map(RuleId::as_str).collect()
}

/// The page of `id`, or why it cannot be read.
fn page(id: &str) -> Result<String, String> {
    let path = docs_dir().join(format!("{id}.md"));
    fs::read_to_string(&path).map_err(|e| format!("rule {id}: cannot read {}: {e}", path.display()))
}

/// Fail with every problem found, one per line.
fn assert_none(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The Markdown headings of a page, outside fenced code blocks (where `# ` is a comment).
fn headings(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced && line.starts_with('#') {
            out.push(line.trim_end());
        }
    }
    out
}

fn check_shape(id: &str, text: &str, problems: &mut Vec<String>) {
    let title = format!("# {id}");
    if text.lines().next().map(str::trim_end) != Some(title.as_str()) {
        problems.push(format!("docs/rules/{id}.md must start with {title:?}"));
    }
    let mut want = vec![title.as_str()];
    want.extend(SECTIONS);
    let got = headings(text);
    if got != want {
        problems.push(format!(
            "docs/rules/{id}.md must have exactly the headings {want:?}, in this order; it has {got:?}"
        ));
    }
    let summary = text.lines().skip(1).find(|l| !l.trim().is_empty());
    if summary.is_none_or(|l| l.starts_with('#')) {
        problems.push(format!(
            "docs/rules/{id}.md needs a one-sentence summary under its title"
        ));
    }
}

#[test]
fn every_rule_has_a_page_with_the_four_sections() {
    let mut problems = Vec::new();
    for id in known_ids() {
        let path = docs_dir().join(format!("{id}.md"));
        let required = rules().any(|r| r.as_str() == id);
        if !required && !path.exists() {
            continue;
        }
        match page(id) {
            Ok(text) => check_shape(id, &text, &mut problems),
            Err(e) => problems.push(e),
        }
    }
    assert_none(problems);
}

#[test]
fn every_page_lists_the_compliance_references_of_its_rule() {
    let mut problems = Vec::new();
    for rule in rules() {
        let id = rule.as_str();
        let text = match page(id) {
            Ok(text) => text,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let Some(why) = text
            .split_once("\n## Why\n")
            .and_then(|(_, rest)| rest.split_once("\n## How to fix\n"))
            .map(|(why, _)| why)
        else {
            problems.push(format!(
                "docs/rules/{id}.md has no \"## Why\" section followed by \"## How to fix\""
            ));
            continue;
        };
        let refs = compliance_refs(rule);
        for r in refs {
            let line = format!("- {} {}: {}", r.framework.as_str(), r.id, r.title);
            if !why.lines().any(|l| l.trim_end() == line) {
                problems.push(format!("docs/rules/{id}.md: \"## Why\" must list {line:?}"));
            }
        }
        if refs.is_empty() && !why.contains("no compliance reference") {
            problems.push(format!(
                "docs/rules/{id}.md: say that the rule has no compliance reference"
            ));
        }
    }
    assert_none(problems);
}

#[test]
fn the_index_links_every_page() {
    let index = fs::read_to_string(docs_dir().join("README.md")).expect("docs/rules/README.md");
    let mut problems = Vec::new();
    for id in known_ids() {
        let required = rules().any(|r| r.as_str() == id);
        if !required && !docs_dir().join(format!("{id}.md")).exists() {
            continue;
        }
        let link = format!("[`{id}`]({id}.md)");
        if !index.contains(&link) {
            problems.push(format!(
                "docs/rules/README.md must link {id}'s page as {link}"
            ));
        }
    }
    assert_none(problems);
}

#[test]
fn no_page_outlives_its_rule() {
    let known = known_ids();
    let mut problems = Vec::new();
    for entry in fs::read_dir(docs_dir()).expect("docs/rules") {
        let name = entry.expect("a directory entry").file_name();
        let name = name.to_string_lossy();
        if name == "README.md" {
            continue;
        }
        match name.strip_suffix(".md") {
            Some(id) if known.contains(id) => {}
            Some(id) => problems.push(format!(
                "docs/rules/{name} documents {id:?}, which is not a rule id (renamed or removed?)"
            )),
            None => problems.push(format!(
                "docs/rules/{name}: only rule pages (<rule id>.md) and README.md belong here"
            )),
        }
    }
    assert_none(problems);
}
