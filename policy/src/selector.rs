//! Label selectors with Kubernetes semantics, validated once when a policy is compiled.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::error::Problem;

/// A validated label selector. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Selector {
    /// Validate a selector; `field` names it in problems.
    pub(crate) fn compile(
        selector: &LabelSelector,
        field: &str,
        problems: &mut Vec<Problem>,
    ) -> Selector {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            let at = format!("{field}.matchLabels[{key}]");
            check_key(key, &at, problems);
            check_value(value, &at, problems);
            requirements.push(Requirement::In(key.clone(), vec![value.clone()]));
        }
        for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
            let at = format!("{field}.matchExpressions[{i}]");
            check_key(&expr.key, &format!("{at}.key"), problems);
            let values = expr.values.clone().unwrap_or_default();
            for v in &values {
                check_value(v, &format!("{at}.values"), problems);
            }
            let req = match expr.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    problems.push(Problem::new(
                        format!("{at}.values"),
                        format!("operator {} needs at least one value", expr.operator),
                    ));
                    continue;
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    problems.push(Problem::new(
                        format!("{at}.values"),
                        format!("operator {} takes no values", expr.operator),
                    ));
                    continue;
                }
                "In" => Requirement::In(expr.key.clone(), values),
                "NotIn" => Requirement::NotIn(expr.key.clone(), values),
                "Exists" => Requirement::Exists(expr.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(expr.key.clone()),
                other => {
                    problems.push(Problem::new(
                        format!("{at}.operator"),
                        format!(
                            "unknown operator {other:?}: expected In, NotIn, Exists or DoesNotExist"
                        ),
                    ));
                    continue;
                }
            };
            requirements.push(req);
        }
        Selector { requirements }
    }

    /// Whether labels (looked up by `get`) satisfy every requirement.
    pub(crate) fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| vs.iter().all(|x| x != v)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }

    pub(crate) fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.matches_with(|k| labels.and_then(|l| l.get(k)).map(String::as_str))
    }
}

/// `[prefix/]name`: prefix a DNS subdomain, name at most 63 of `[A-Za-z0-9-_.]`, alphanumeric
/// at both ends.
fn check_key(key: &str, field: &str, problems: &mut Vec<Problem>) {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        problems.push(Problem::new(
            field,
            format!("label key {key:?} has an invalid prefix: it must be a DNS subdomain"),
        ));
    }
    if !is_label_name(name) {
        problems.push(Problem::new(
            field,
            format!(
                "label key {key:?} is invalid: the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric"
            ),
        ));
    }
}

fn check_value(value: &str, field: &str, problems: &mut Vec<Problem>) {
    if !value.is_empty() && !is_label_name(value) {
        problems.push(Problem::new(
            field,
            format!(
                "label value {value:?} is invalid: at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric"
            ),
        ));
    }
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn matches_like_kubernetes() {
        let prod = labels(&[("env", "prod"), ("team", "a")]);
        let dev = labels(&[("env", "dev")]);
        let none = labels(&[]);
        let table: Vec<(LabelSelector, [bool; 3])> = vec![
            (LabelSelector::default(), [true, true, true]),
            (
                LabelSelector {
                    match_labels: Some(labels(&[("env", "prod")])),
                    ..Default::default()
                },
                [true, false, false],
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![expr("env", "NotIn", &["prod"])]),
                    ..Default::default()
                },
                [false, true, true],
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![expr("team", "Exists", &[])]),
                    ..Default::default()
                },
                [true, false, false],
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![expr("team", "DoesNotExist", &[])]),
                    ..Default::default()
                },
                [false, true, true],
            ),
            (
                LabelSelector {
                    match_labels: Some(labels(&[("env", "prod")])),
                    match_expressions: Some(vec![expr("team", "In", &["b", "c"])]),
                },
                [false, false, false],
            ),
        ];
        for (sel, want) in table {
            let mut problems = Vec::new();
            let s = Selector::compile(&sel, "sel", &mut problems);
            assert!(problems.is_empty(), "{problems:?}");
            let got = [
                s.matches(Some(&prod)),
                s.matches(Some(&dev)),
                s.matches(Some(&none)),
            ];
            assert_eq!(got, want, "{sel:?}");
        }
    }

    #[test]
    fn rejects_bad_selectors() {
        let table = vec![
            (
                expr("env", "Equals", &["x"]),
                "spec.match.namespaceSelector.matchExpressions[0].operator",
            ),
            (
                expr("env", "In", &[]),
                "spec.match.namespaceSelector.matchExpressions[0].values",
            ),
            (
                expr("env", "Exists", &["x"]),
                "spec.match.namespaceSelector.matchExpressions[0].values",
            ),
            (
                expr("-env", "Exists", &[]),
                "spec.match.namespaceSelector.matchExpressions[0].key",
            ),
            (
                expr("Bad_Prefix/env", "Exists", &[]),
                "spec.match.namespaceSelector.matchExpressions[0].key",
            ),
            (
                expr("env", "In", &["has space"]),
                "spec.match.namespaceSelector.matchExpressions[0].values",
            ),
        ];
        for (e, field) in table {
            let sel = LabelSelector {
                match_expressions: Some(vec![e.clone()]),
                ..Default::default()
            };
            let mut problems = Vec::new();
            Selector::compile(&sel, "spec.match.namespaceSelector", &mut problems);
            assert_eq!(problems.len(), 1, "{e:?}: {problems:?}");
            assert_eq!(problems[0].field, field);
        }
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_label("team-a"));
        assert!(!is_dns_label("Team-a"));
        assert!(!is_dns_label("-a"));
        assert!(is_dns_subdomain("palisade.dev"));
        assert!(!is_dns_subdomain("palisade..dev"));
    }
}
