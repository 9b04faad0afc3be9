//! `updateinfo.xml` → [`Advisory`] values, read as a stream of XML events.
//!
//! The document is never held whole: one `<update>` at a time is built and handed to the
//! caller. Bounds ([`Limits`]): the uncompressed document (`max_document_bytes`), each
//! `<update>` and anything between them (`max_entry_bytes`, which also bounds any single
//! text or tag, so one huge element cannot grow the read buffer), and the number of
//! `<update>` entries (`max_entries`). A document that breaks one, is not well-formed, ends
//! early, or is not updateinfo (another root element, an update without `<id>`, a package
//! without name, version or release) is an error for the whole document: a database
//! missing some advisories would under-report without saying so.
//!
//! Tolerated, as the format's writers differ: elements the scanner does not use
//! (`<rights>`, `<release>`, `<filename>`, `<sum>`, …), namespace prefixes, attributes in
//! any order, text split by comments, CDATA or entity references.

use std::io::BufRead;

use quick_xml::events::{BytesRef, BytesStart, Event};

use super::{Advisory, Kind, Package, Reference};
use crate::Error;
use crate::osv::Limits;

/// Deepest element nesting accepted (updateinfo needs 6: updates/update/pkglist/collection/
/// package/filename).
const MAX_DEPTH: usize = 32;

/// Parse a document from `input` (uncompressed), handing each `<update>` to `each` in
/// document order; the number of updates read. `source_name` names the document in errors.
pub fn for_each_advisory<R: BufRead>(
    input: R,
    source_name: &str,
    limits: Limits,
    mut each: impl FnMut(Advisory),
) -> Result<usize, Error> {
    let fail = |reason: String| Error::VulnDb {
        source_name: source_name.to_owned(),
        reason,
    };
    let mut reader = quick_xml::Reader::from_reader(Bounded::new(input, limits));
    let mut buf = Vec::new();
    // Local names of the open elements, root first.
    let mut open: Vec<String> = Vec::new();
    let mut current: Option<Advisory> = None;
    let mut text = String::new();
    let mut count = 0usize;
    let mut saw_root = false;
    loop {
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            Err(e) => {
                // The bound is enforced by the reader below quick-xml: say which one.
                if let Some(reason) = reader.get_ref().exceeded.take() {
                    return Err(fail(reason));
                }
                return Err(Error::VulnDbXml {
                    source_name: source_name.to_owned(),
                    position: reader.error_position(),
                    source: e,
                });
            }
        };
        match event {
            Event::Start(e) if open.is_empty() => {
                root(&e, saw_root, source_name)?;
                saw_root = true;
                open.push("updates".to_owned());
                reader.get_mut().window = 0;
            }
            Event::Empty(e) if open.is_empty() => {
                root(&e, saw_root, source_name)?;
                saw_root = true;
                reader.get_mut().window = 0;
            }
            Event::Start(e) => {
                let name = local(&e).to_owned();
                if open.len() >= MAX_DEPTH {
                    return Err(fail(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                start(&e, &open, &mut current, source_name, &mut count, limits)?;
                if current.is_some() {
                    // One update is bounded as a whole from its start tag on.
                    text.clear();
                } else {
                    reader.get_mut().window = 0;
                }
                open.push(name);
            }
            Event::Empty(e) => {
                start(&e, &open, &mut current, source_name, &mut count, limits)?;
                if local(&e) == "update"
                    && let Some(adv) = current.take()
                {
                    each(finish(adv, source_name)?);
                }
                if current.is_none() {
                    reader.get_mut().window = 0;
                }
            }
            Event::End(_) => {
                let Some(name) = open.pop() else {
                    return Err(fail("an end tag without a start tag".to_owned()));
                };
                if let Some(adv) = current.as_mut() {
                    end_field(adv, &name, &open, &mut text);
                }
                if name == "update"
                    && open.len() == 1
                    && let Some(adv) = current.take()
                {
                    each(finish(adv, source_name)?);
                    reader.get_mut().window = 0;
                }
            }
            Event::Text(t) => {
                if capturing(&current, &open) {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if capturing(&current, &open) {
                    text.push_str(&t.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                if capturing(&current, &open) {
                    push_reference(&mut text, &r);
                }
            }
            Event::Eof => {
                if let Some(name) = open.last() {
                    let inside = match &current {
                        Some(adv) if !adv.id.is_empty() => format!(" (in {})", adv.id),
                        _ => String::new(),
                    };
                    return Err(fail(format!(
                        "truncated: the document ends inside <{name}>{inside}"
                    )));
                }
                if !saw_root {
                    return Err(fail(
                        "not an updateinfo document: no <updates> element".to_owned(),
                    ));
                }
                return Ok(count);
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {
                if current.is_none() {
                    reader.get_mut().window = 0;
                }
            }
        }
    }
}

/// The root element must be the one `<updates>`.
fn root(e: &BytesStart<'_>, saw_root: bool, source_name: &str) -> Result<(), Error> {
    let reason = if saw_root {
        "an element after the root <updates>".to_owned()
    } else if local(e) != "updates" {
        format!(
            "not an updateinfo document: its root element is <{}>, not <updates>",
            local(e)
        )
    } else {
        return Ok(());
    };
    Err(Error::VulnDb {
        source_name: source_name.to_owned(),
        reason,
    })
}

fn local<'a>(e: &'a BytesStart<'_>) -> &'a str {
    let name = e.name();
    let full: &str = name.0;
    full.rsplit(':').next().unwrap_or(full)
}

/// The fields whose text is kept: direct children of `<update>`.
const TEXT_FIELDS: [&str; 4] = ["id", "title", "severity", "description"];

fn capturing(current: &Option<Advisory>, open: &[String]) -> bool {
    current.is_some()
        && open.len() == 3
        && open
            .last()
            .is_some_and(|n| TEXT_FIELDS.contains(&n.as_str()))
}

/// `&amp;` and the other predefined entities, and character references; any other entity
/// (updateinfo declares none) is kept as written.
fn push_reference(text: &mut String, r: &BytesRef<'_>) {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        text.push(c);
        return;
    }
    let name: &str = r;
    match quick_xml::escape::resolve_predefined_entity(name) {
        Some(s) => text.push_str(s),
        None => {
            text.push('&');
            text.push_str(name);
            text.push(';');
        }
    }
}

/// Handle a start (or empty) tag at the depth `open` describes.
fn start(
    e: &BytesStart<'_>,
    open: &[String],
    current: &mut Option<Advisory>,
    source_name: &str,
    count: &mut usize,
    limits: Limits,
) -> Result<(), Error> {
    let fail = |reason: String| Error::VulnDb {
        source_name: source_name.to_owned(),
        reason,
    };
    let name = local(e);
    let parent = open.last().map(String::as_str);
    match (name, parent) {
        ("update", Some("updates")) if open.len() == 1 => {
            *count += 1;
            if *count > limits.max_entries {
                return Err(fail(format!(
                    "more than the {} updates allowed",
                    limits.max_entries
                )));
            }
            let attrs = attributes(e, source_name)?;
            let kind = attrs
                .iter()
                .find(|(k, _)| k == "type")
                .map_or(Kind::Unknown, |(_, v)| Kind::from_word(v));
            *current = Some(Advisory {
                kind,
                ..Advisory::default()
            });
        }
        _ => {
            let Some(adv) = current.as_mut() else {
                return Ok(());
            };
            match (name, parent) {
                ("issued", Some("update")) | ("updated", Some("update")) => {
                    let date = attributes(e, source_name)?
                        .into_iter()
                        .find(|(k, _)| k == "date")
                        .map(|(_, v)| v.trim().to_owned())
                        .filter(|v| !v.is_empty());
                    if name == "issued" {
                        adv.issued = date;
                    } else {
                        adv.updated = date;
                    }
                }
                ("reference", Some("references")) => {
                    let mut r = Reference::default();
                    for (k, v) in attributes(e, source_name)? {
                        match k.as_str() {
                            "type" => r.kind = v,
                            "id" => r.id = v,
                            "href" => r.href = v,
                            "title" => r.title = v,
                            _ => {}
                        }
                    }
                    adv.references.push(r);
                }
                ("package", Some("collection")) => {
                    let mut p = Package::default();
                    for (k, v) in attributes(e, source_name)? {
                        match k.as_str() {
                            "name" => p.name = v,
                            "epoch" => p.epoch = Some(v).filter(|v| !v.trim().is_empty()),
                            "version" => p.version = v,
                            "release" => p.release = v,
                            "arch" => p.arch = v,
                            _ => {}
                        }
                    }
                    for (field, value) in [
                        ("name", &p.name),
                        ("version", &p.version),
                        ("release", &p.release),
                    ] {
                        if value.trim().is_empty() {
                            let id = if adv.id.is_empty() { "?" } else { &adv.id };
                            return Err(fail(format!("update {id}: a package without {field}")));
                        }
                    }
                    adv.packages.push(p);
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A start tag's attributes as (local name, value), entities resolved.
fn attributes(e: &BytesStart<'_>, source_name: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| Error::VulnDb {
            source_name: source_name.to_owned(),
            reason: format!("a malformed attribute in <{}>: {err}", local(e)),
        })?;
        let key: &str = attr.key.0;
        let key = key.rsplit(':').next().unwrap_or(key).to_owned();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|err| Error::VulnDb {
                source_name: source_name.to_owned(),
                reason: format!("attribute {key} of <{}>: {err}", local(e)),
            })?;
        out.push((key, value.into_owned()));
    }
    Ok(out)
}

/// Store the text gathered for a field that just closed.
fn end_field(adv: &mut Advisory, name: &str, open: &[String], text: &mut String) {
    // `open` no longer holds `name`: a direct child of <update> leaves [updates, update].
    if open.len() != 2 || open.last().is_none_or(|p| p != "update") {
        return;
    }
    let value = std::mem::take(text);
    let value = value.trim();
    match name {
        "id" => adv.id = value.to_owned(),
        "title" => adv.title = Some(value.to_owned()).filter(|v| !v.is_empty()),
        "severity" => adv.severity = Some(value.to_owned()).filter(|v| !v.is_empty()),
        "description" => adv.description = Some(value.to_owned()).filter(|v| !v.is_empty()),
        _ => {}
    }
}

fn finish(adv: Advisory, source_name: &str) -> Result<Advisory, Error> {
    if adv.id.is_empty() {
        return Err(Error::VulnDb {
            source_name: source_name.to_owned(),
            reason: "an update without an <id>".to_owned(),
        });
    }
    Ok(adv)
}

/// The input below quick-xml, counting what it consumes: the whole document against
/// `max_document_bytes`, and a window (reset by the parser between updates) against
/// `max_entry_bytes`. Past either it fails the read and says why in `exceeded`.
struct Bounded<R> {
    inner: R,
    total: u64,
    window: u64,
    limits: Limits,
    exceeded: std::cell::Cell<Option<String>>,
}

impl<R> Bounded<R> {
    fn new(inner: R, limits: Limits) -> Self {
        Bounded {
            inner,
            total: 0,
            window: 0,
            limits,
            exceeded: std::cell::Cell::new(None),
        }
    }

    fn check(&self) -> std::io::Result<()> {
        let reason = if self.total > self.limits.max_document_bytes {
            format!(
                "more than the {} bytes allowed for the uncompressed document",
                self.limits.max_document_bytes
            )
        } else if self.window > self.limits.max_entry_bytes {
            format!(
                "an update (or an element between updates) of more than the {} bytes allowed",
                self.limits.max_entry_bytes
            )
        } else {
            return Ok(());
        };
        let error = std::io::Error::other(reason.clone());
        self.exceeded.set(Some(reason));
        Err(error)
    }
}

impl<R: BufRead> std::io::Read for Bounded<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Bounded<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.total = self.total.saturating_add(amount as u64);
        self.window = self.window.saturating_add(amount as u64);
        self.inner.consume(amount);
    }
}
