//! Applying an image's layers in order to learn the final content of the few files the
//! inventory reads, without unpacking anything to disk.
//!
//! Each layer is a tar stream (plain, gzip or zstd, told apart by magic bytes since media
//! types are not always honest) read once, front to back. Only files the inventory wants are
//! kept in memory, capped in size; symbolic links are kept as metadata so lookups can follow
//! them; whiteouts (`.wh.name`) and opaque directories (`.wh..wh..opq`) remove what lower
//! layers put there. The compressed stream is hashed on the way through and must match the
//! layer's digest and size. Files a caller only needs to know exist can be kept as empty
//! files, never read ([`LayerWalker::noting`]).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::inventory::language::LanguagePackage;
use crate::inventory::{FileSource, Unreadable};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Linux gives up on a path after 40 symbolic links; so does lookup here.
const MAX_SYMLINK_HOPS: usize = 40;

/// Bounds on what one image may make the walker do.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest wanted file kept in memory (a package database).
    pub max_file_bytes: u64,
    /// Most uncompressed bytes read from one layer (decompression bombs).
    pub max_layer_bytes: u64,
    /// Most symbolic links remembered across all layers.
    pub max_symlinks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 256 << 20,
            max_layer_bytes: 32 << 30,
            max_symlinks: 1 << 20,
        }
    }
}

/// What one layer held, for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    pub kept_files: u64,
}

/// What the walker learnt from a file it read as the layer streamed past, without keeping
/// it: the language packages a jar or a binary holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Derived {
    pub packages: Vec<LanguagePackage>,
    /// What the file should have told and could not (damaged, over a limit).
    pub unreadable: Vec<Unreadable>,
}

impl Derived {
    fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.unreadable.is_empty()
    }
}

/// Which files are read for what they hold, and how. Each is read whole (up to
/// [`Limits::max_file_bytes`]), handed to `derive`, and dropped: only the result is kept,
/// so memory holds one such file at a time.
#[derive(Clone, Copy)]
pub struct Deriving {
    /// Whether a regular file is read: by its path, and whether an execute bit is set.
    pub wants: fn(&str, bool) -> bool,
    /// What the file at the path holds, from its whole content.
    pub derive: fn(&str, &[u8]) -> Derived,
}

#[derive(Clone, Debug)]
enum Node {
    File(Arc<Vec<u8>>),
    Derived(Arc<Derived>),
    Symlink(String),
    /// A directory, or a file the inventory does not want: present, content not kept.
    Other {
        dir: bool,
    },
}

/// The merged view of the wanted files after some layers.
#[derive(Clone, Debug, Default)]
pub struct Filesystem {
    files: BTreeMap<String, Arc<Vec<u8>>>,
    symlinks: BTreeMap<String, String>,
    derived: BTreeMap<String, Arc<Derived>>,
}

impl Filesystem {
    /// The path a lookup ends at after following symbolic links in every component, or
    /// `None` for a loop (more than 40 links).
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = components(path).rev().map(str::to_owned).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(c);
            let here = resolved.join("/");
            if let Some(target) = self.symlinks.get(&here) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return None;
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(components(target).rev().map(str::to_owned));
            }
        }
        Some(resolved.join("/"))
    }

    /// Paths of the files kept, without following links.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn symlink_count(&self) -> usize {
        self.symlinks.len()
    }

    /// What was learnt from the files still present in the final filesystem, by path.
    pub fn derived(&self) -> impl Iterator<Item = (&str, &Derived)> {
        self.derived.iter().map(|(p, d)| (p.as_str(), d.as_ref()))
    }

    /// Remove `path` and everything below it.
    fn remove_tree(&mut self, path: &str) {
        self.files.remove(path);
        self.symlinks.remove(path);
        self.derived.remove(path);
        self.remove_below(path);
    }

    /// Remove everything below `dir`, keeping `dir` itself.
    fn remove_below(&mut self, dir: &str) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        drop_under(&mut self.files, &prefix);
        drop_under(&mut self.symlinks, &prefix);
        drop_under(&mut self.derived, &prefix);
    }
}

/// Remove the keys of `map` that start with `prefix`.
fn drop_under<V>(map: &mut BTreeMap<String, V>, prefix: &str) {
    let below: Vec<String> = map
        .range(prefix.to_owned()..)
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(prefix))
        .cloned()
        .collect();
    for k in below {
        map.remove(&k);
    }
}

impl FileSource for Filesystem {
    fn get(&self, path: &str) -> Option<&[u8]> {
        let real = self.resolve(path)?;
        self.files.get(&real).map(|f| f.as_slice())
    }

    fn list_dir(&self, dir: &str) -> Vec<&str> {
        let Some(real) = self.resolve(dir) else {
            return Vec::new();
        };
        let prefix = if real.is_empty() {
            String::new()
        } else {
            format!("{real}/")
        };
        self.files
            .range(prefix.clone()..)
            .map(|(k, _)| k.as_str())
            .take_while(|k| k.starts_with(&prefix))
            .filter(|k| !k[prefix.len()..].contains('/'))
            .collect()
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// Applies layers, lowest first.
pub struct LayerWalker {
    fs: Filesystem,
    wanted: fn(&str) -> bool,
    noted: fn(&str) -> bool,
    deriving: Option<Deriving>,
    limits: Limits,
}

impl LayerWalker {
    /// `wanted` selects the paths (no leading `/`) whose content is kept.
    pub fn new(wanted: fn(&str) -> bool, limits: Limits) -> Self {
        LayerWalker {
            fs: Filesystem::default(),
            wanted,
            noted: |_| false,
            deriving: None,
            limits,
        }
    }

    /// Also read the files `deriving` selects for what they hold (see [`Deriving`]).
    pub fn deriving(mut self, deriving: Deriving) -> Self {
        self.deriving = Some(deriving);
        self
    }

    /// Also keep the files `noted` selects, without their content: each stands as an empty
    /// file, so a lookup tells that it exists (after whiteouts and links) and nothing more.
    /// No size limit applies, since nothing is read.
    pub fn noting(mut self, noted: fn(&str) -> bool) -> Self {
        self.noted = noted;
        self
    }

    /// Read one layer blob to its end and apply it. `digest` and `size` are the descriptor's:
    /// the bytes read must match both. On error the walker is left as it was before.
    pub fn apply(
        &mut self,
        digest: &str,
        size: Option<u64>,
        blob: impl Read,
    ) -> Result<LayerStats, Error> {
        let fail = |reason: String| Error::Layer {
            digest: digest.to_owned(),
            reason,
        };
        let hashed = Arc::new(Mutex::new((Sha256::new(), 0u64)));
        let mut raw = BufReader::with_capacity(
            256 << 10,
            HashingReader {
                inner: blob,
                state: hashed.clone(),
            },
        );
        let head = raw
            .fill_buf()
            .map_err(|e| fail(format!("reading: {e}")))?
            .get(..4)
            .map(|h| [h[0], h[1], h[2], h[3]]);
        let mut changes = LayerChanges::default();
        let mut stats = LayerStats::default();
        let raw = match head {
            Some([0x1f, 0x8b, _, _]) => {
                let dec = flate2::bufread::MultiGzDecoder::new(raw);
                let dec = self.read_tar(dec, &mut changes, &mut stats).map_err(fail)?;
                dec.into_inner()
            }
            Some([0x28, 0xb5, 0x2f, 0xfd]) => {
                let dec = zstd::stream::read::Decoder::with_buffer(raw)
                    .map_err(|e| fail(format!("zstd: {e}")))?;
                let dec = self.read_tar(dec, &mut changes, &mut stats).map_err(fail)?;
                dec.finish()
            }
            _ => self.read_tar(raw, &mut changes, &mut stats).map_err(fail)?,
        };
        // Whatever follows the tar's end (padding, a compression trailer) is part of the blob
        // and of its digest.
        let mut raw = raw;
        io::copy(&mut raw, &mut io::sink()).map_err(|e| fail(format!("reading: {e}")))?;
        let (hasher, read) = {
            let mut guard = hashed.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *guard, (Sha256::new(), 0))
        };
        let got = format!("sha256:{}", hex::encode(hasher.finalize()));
        if let Some(size) = size
            && size != read
        {
            return Err(fail(format!("{read} bytes read, the manifest says {size}")));
        }
        if digest.starts_with("sha256:") && got != digest {
            return Err(fail(format!(
                "content does not match its digest (got {got})"
            )));
        }
        stats.compressed_bytes = read;
        self.commit(changes).map_err(fail)?;
        Ok(stats)
    }

    /// The merged files after the layers applied so far.
    pub fn finish(self) -> Filesystem {
        self.fs
    }

    fn read_tar<R: Read>(
        &self,
        reader: R,
        changes: &mut LayerChanges,
        stats: &mut LayerStats,
    ) -> Result<R, String> {
        let limit = self.limits.max_layer_bytes;
        let mut archive = tar::Archive::new(CountingReader {
            inner: reader,
            read: 0,
            limit,
        });
        let entries = archive
            .entries()
            .map_err(|e| format!("not a tar stream: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("entry {}: {e}", stats.entries + 1))?;
            stats.entries += 1;
            let raw_path = entry
                .path()
                .map_err(|e| format!("entry {}: unreadable path: {e}", stats.entries))?
                .to_string_lossy()
                .into_owned();
            let Some(path) = normalize(&raw_path)? else {
                continue;
            };
            let name = path.rsplit('/').next().unwrap_or(&path);
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            if name == OPAQUE_MARKER {
                changes.opaque.push(parent.to_owned());
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                // `.wh..wh.*` names other than the opaque marker are AUFS bookkeeping.
                if !hidden.starts_with(WHITEOUT_PREFIX) {
                    changes.whiteouts.push(join(parent, hidden));
                }
                continue;
            }
            let kind = entry.header().entry_type();
            let node = if kind.is_symlink() {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("{path}: unreadable link target: {e}"))?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if changes.symlinks + self.fs.symlinks.len() >= self.limits.max_symlinks {
                    return Err(format!(
                        "more than {} symbolic links: not scanned",
                        self.limits.max_symlinks
                    ));
                }
                changes.symlinks += 1;
                Node::Symlink(target)
            } else if kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("{path}: unreadable link target: {e}"))?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = normalize(&target)?.unwrap_or_default();
                // A hard link names an earlier entry of the same layer, or a file below.
                let linked = changes
                    .nodes
                    .iter()
                    .rev()
                    .find(|(p, _)| *p == target)
                    .map(|(_, n)| n.clone())
                    .or_else(|| self.fs.files.get(&target).cloned().map(Node::File))
                    .or_else(|| self.fs.derived.get(&target).cloned().map(Node::Derived));
                match linked {
                    Some(Node::File(c)) if (self.wanted)(&path) => Node::File(c),
                    // The same file under another name: what it holds is found there too.
                    Some(Node::Derived(d)) => Node::Derived(Arc::new(rename(&d, &target, &path))),
                    _ if (self.noted)(&path) => Node::File(Arc::default()),
                    _ => Node::Other { dir: false },
                }
            } else if kind.is_dir() {
                Node::Other { dir: true }
            } else if (kind.is_file() || kind == tar::EntryType::Continuous) && (self.wanted)(&path)
            {
                let size = entry.header().size().map_err(|e| format!("{path}: {e}"))?;
                if size > self.limits.max_file_bytes {
                    return Err(format!(
                        "{path} is {size} bytes, over the {} byte limit for package databases",
                        self.limits.max_file_bytes
                    ));
                }
                let mut content = Vec::with_capacity(size as usize);
                (&mut entry)
                    .take(self.limits.max_file_bytes + 1)
                    .read_to_end(&mut content)
                    .map_err(|e| format!("{path}: {e}"))?;
                stats.kept_files += 1;
                Node::File(Arc::new(content))
            } else if (kind.is_file() || kind == tar::EntryType::Continuous) && (self.noted)(&path)
            {
                Node::File(Arc::default())
            } else if (kind.is_file() || kind == tar::EntryType::Continuous)
                && let Some(d) = self.deriving
                && (d.wants)(&path, entry.header().mode().is_ok_and(|m| m & 0o111 != 0))
            {
                let size = entry.header().size().map_err(|e| format!("{path}: {e}"))?;
                let derived = if size > self.limits.max_file_bytes {
                    Derived {
                        packages: Vec::new(),
                        unreadable: vec![Unreadable {
                            path: path.clone(),
                            reason: format!(
                                "{size} bytes, over the {} byte limit: not read",
                                self.limits.max_file_bytes
                            ),
                        }],
                    }
                } else {
                    let mut content = Vec::with_capacity(size as usize);
                    (&mut entry)
                        .take(self.limits.max_file_bytes + 1)
                        .read_to_end(&mut content)
                        .map_err(|e| format!("{path}: {e}"))?;
                    (d.derive)(&path, &content)
                };
                if derived.is_empty() {
                    Node::Other { dir: false }
                } else {
                    stats.kept_files += 1;
                    Node::Derived(Arc::new(derived))
                }
            } else {
                Node::Other { dir: false }
            };
            changes.nodes.push((path, node));
        }
        let counting = archive.into_inner();
        stats.uncompressed_bytes = counting.read;
        Ok(counting.inner)
    }

    fn commit(&mut self, changes: LayerChanges) -> Result<(), String> {
        // What this layer hides or replaces in lower layers goes first; then its own entries.
        for w in &changes.whiteouts {
            self.fs.remove_tree(w);
        }
        for d in &changes.opaque {
            self.fs.remove_below(d);
        }
        for (path, node) in &changes.nodes {
            match node {
                Node::Other { dir: true } => {
                    // A directory replaces a lower file or link of the same name, not its
                    // lower contents.
                    self.fs.files.remove(path);
                    self.fs.symlinks.remove(path);
                }
                _ => self.fs.remove_tree(path),
            }
        }
        for (path, node) in changes.nodes {
            match node {
                Node::File(c) => {
                    self.fs.files.insert(path, c);
                }
                Node::Symlink(t) => {
                    self.fs.symlinks.insert(path, t);
                }
                Node::Derived(d) => {
                    self.fs.derived.insert(path, d);
                }
                Node::Other { .. } => {}
            }
        }
        Ok(())
    }
}

/// What a hard link's target held, found under the link's own name.
fn rename(d: &Derived, from: &str, to: &str) -> Derived {
    let moved = |location: &str| match location.strip_prefix(from) {
        Some(rest) => format!("{to}{rest}"),
        None => location.to_owned(),
    };
    Derived {
        packages: d
            .packages
            .iter()
            .map(|p| LanguagePackage {
                location: moved(&p.location),
                ..p.clone()
            })
            .collect(),
        unreadable: d
            .unreadable
            .iter()
            .map(|u| Unreadable {
                path: moved(&u.path),
                reason: u.reason.clone(),
            })
            .collect(),
    }
}

#[derive(Default)]
struct LayerChanges {
    whiteouts: Vec<String>,
    opaque: Vec<String>,
    nodes: Vec<(String, Node)>,
    symlinks: usize,
}

/// A tar path relative to the root (`./etc/x` and `/etc/x` are `etc/x`); `None` for the root
/// itself. A path that climbs out with `..` is hostile: real layers never hold one.
fn normalize(path: &str) -> Result<Option<String>, String> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "entry {path:?} climbs out of the image root with '..'"
                ));
            }
            c => out.push(c),
        }
    }
    Ok((!out.is_empty()).then(|| out.join("/")))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

struct HashingReader<R> {
    inner: R,
    state: Arc<Mutex<(Sha256, u64)>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0.update(&buf[..n]);
        state.1 += n as u64;
        Ok(n)
    }
}

struct CountingReader<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(format!(
                "layer expands past {} bytes: not scanned",
                self.limit
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(p: &str) -> bool {
        p.starts_with("etc/")
            || p.starts_with("var/lib/dpkg/")
            || p.starts_with("usr/lib/os-release")
    }

    enum E<'a> {
        File(&'a str, &'a str),
        Dir(&'a str),
        Link(&'a str, &'a str),
        Hard(&'a str, &'a str),
        /// A file with raw content and a mode.
        Raw(&'a str, &'a [u8], u32),
    }

    fn tar_of(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match e {
                E::File(p, c) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(c.len() as u64);
                    b.append_data(&mut h, p, c.as_bytes()).expect("append");
                }
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, p, io::empty()).expect("append");
                }
                E::Link(p, t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, p, t).expect("append");
                }
                E::Hard(p, t) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, p, t).expect("append");
                }
                E::Raw(p, c, mode) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(c.len() as u64);
                    b.append_data(&mut h, p, *c).expect("append");
                }
            }
        }
        b.into_inner().expect("tar")
    }

    fn digest(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(b)))
    }

    fn apply(w: &mut LayerWalker, blob: &[u8]) -> Result<LayerStats, Error> {
        w.apply(&digest(blob), Some(blob.len() as u64), blob)
    }

    fn walker() -> LayerWalker {
        LayerWalker::new(wanted, Limits::default())
    }

    #[test]
    fn layers_override_and_whiteouts_delete() {
        let mut w = walker();
        apply(
            &mut w,
            &tar_of(&[
                E::Dir("etc/"),
                E::File("etc/os-release", "ID=debian\n"),
                E::File("./etc/hostname", "a"),
                E::File("var/lib/dpkg/status", "one"),
                E::File("var/lib/dpkg/status.d/a", "a"),
                E::File("var/lib/dpkg/status.d/b", "b"),
                E::File("bin/sh", "not kept"),
            ]),
        )
        .expect("layer 1");
        apply(
            &mut w,
            &tar_of(&[
                E::File("var/lib/dpkg/status", "two"),
                E::File("etc/.wh.hostname", ""),
                E::File("var/lib/dpkg/status.d/.wh..wh..opq", ""),
                E::File("var/lib/dpkg/status.d/c", "c"),
            ]),
        )
        .expect("layer 2");
        let fs = w.finish();
        assert_eq!(fs.get("var/lib/dpkg/status"), Some(&b"two"[..]));
        assert_eq!(fs.get("etc/hostname"), None, "whited out");
        assert_eq!(fs.get("etc/os-release"), Some(&b"ID=debian\n"[..]));
        assert_eq!(
            fs.list_dir("var/lib/dpkg/status.d"),
            vec!["var/lib/dpkg/status.d/c"],
            "opaque directory hides a and b"
        );
        assert_eq!(fs.get("bin/sh"), None, "unwanted files are not kept");
    }

    #[test]
    fn whiteouts_do_not_touch_their_own_layer() {
        let mut w = walker();
        apply(&mut w, &tar_of(&[E::File("etc/a", "lower")])).expect("layer 1");
        // In one layer, order does not matter: the new file survives its layer's whiteout.
        apply(
            &mut w,
            &tar_of(&[E::File("etc/a", "upper"), E::File("etc/.wh.a", "")]),
        )
        .expect("layer 2");
        assert_eq!(w.finish().get("etc/a"), Some(&b"upper"[..]));
    }

    #[test]
    fn whiting_out_a_directory_removes_its_tree() {
        let mut w = walker();
        apply(
            &mut w,
            &tar_of(&[
                E::File("var/lib/dpkg/status", "s"),
                E::File("var/lib/dpkg/status.d/x", "x"),
            ]),
        )
        .expect("1");
        apply(&mut w, &tar_of(&[E::File("var/lib/.wh.dpkg", "")])).expect("2");
        let fs = w.finish();
        assert_eq!(fs.paths().count(), 0);
    }

    #[test]
    fn symlinks_resolve_and_loops_end() {
        let mut w = walker();
        apply(
            &mut w,
            &tar_of(&[
                E::File("usr/lib/os-release", "ID=alpine\n"),
                E::Link("etc/os-release", "../usr/lib/os-release"),
                E::Link("etc/abs", "/usr/lib/os-release"),
                E::Link("etc/loop1", "loop2"),
                E::Link("etc/loop2", "loop1"),
                E::Link("etc/self", "self"),
                E::Link("etc/escape", "../../../../../../usr/lib/os-release"),
            ]),
        )
        .expect("layer");
        let fs = w.finish();
        assert_eq!(fs.get("etc/os-release"), Some(&b"ID=alpine\n"[..]));
        assert_eq!(fs.get("etc/abs"), Some(&b"ID=alpine\n"[..]));
        assert_eq!(fs.get("etc/loop1"), None);
        assert_eq!(fs.resolve("etc/loop1"), None, "a loop ends after 40 links");
        assert_eq!(fs.get("etc/self"), None);
        assert_eq!(
            fs.get("etc/escape"),
            Some(&b"ID=alpine\n"[..]),
            "'..' stops at the root, as in a chroot"
        );
    }

    #[test]
    fn directory_symlinks_are_followed() {
        let mut w = walker();
        apply(
            &mut w,
            &tar_of(&[
                E::Link("var/lib/dpkg", "../../etc/dpkgdb"),
                E::File("etc/dpkgdb/status", "s"),
            ]),
        )
        .expect("layer");
        let fs = w.finish();
        assert_eq!(fs.get("var/lib/dpkg/status"), Some(&b"s"[..]));
        assert_eq!(fs.list_dir("var/lib/dpkg"), vec!["etc/dpkgdb/status"]);
    }

    #[test]
    fn hard_links_carry_content() {
        let mut w = walker();
        apply(
            &mut w,
            &tar_of(&[
                E::File("etc/os-release", "ID=x\n"),
                E::Hard("usr/lib/os-release", "etc/os-release"),
            ]),
        )
        .expect("layer");
        assert_eq!(w.finish().get("usr/lib/os-release"), Some(&b"ID=x\n"[..]));
    }

    #[test]
    fn compressed_layers() {
        let plain = tar_of(&[E::File("etc/os-release", "ID=debian\n")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &plain).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let zst = zstd::encode_all(&plain[..], 3).expect("zstd");
        for blob in [gz, zst] {
            let mut w = walker();
            let stats = apply(&mut w, &blob).expect("layer");
            assert_eq!(stats.compressed_bytes, blob.len() as u64);
            assert_eq!(stats.kept_files, 1);
            assert_eq!(w.finish().get("etc/os-release"), Some(&b"ID=debian\n"[..]));
        }
    }

    #[test]
    fn hostile_and_broken_layers_fail_clearly_and_change_nothing() {
        let good = tar_of(&[E::File("etc/os-release", "ID=debian\n")]);
        let mut w = walker();
        apply(&mut w, &good).expect("good layer");

        // The tar crate refuses to write '..' paths; write the header bytes by hand.
        let mut evil = tar::Header::new_gnu();
        evil.as_gnu_mut().expect("gnu").name[..19].copy_from_slice(b"../../etc/os-releas");
        evil.set_size(4);
        evil.set_entry_type(tar::EntryType::Regular);
        evil.set_cksum();
        let mut traversal = evil.as_bytes().to_vec();
        traversal.extend_from_slice(&[b'x'; 4]);
        traversal.resize(traversal.len() + 508 + 1024, 0);
        let err = apply(&mut w, &traversal).expect_err("path traversal");
        assert!(err.to_string().contains("climbs out"), "{err}");

        let err = w
            .apply("sha256:00", None, &good[..])
            .expect_err("wrong digest");
        assert!(
            err.to_string().contains("does not match its digest"),
            "{err}"
        );
        let err = w
            .apply(&digest(&good), Some(1), &good[..])
            .expect_err("wrong size");
        assert!(err.to_string().contains("the manifest says 1"), "{err}");

        let truncated = &good[..700];
        let err = apply(&mut w, truncated).expect_err("truncated");
        assert!(err.to_string().starts_with("layer sha256:"), "{err}");

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &good).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let err = apply(&mut w, &gz[..gz.len() / 2]).expect_err("truncated gzip");
        assert!(err.to_string().starts_with("layer sha256:"), "{err}");

        let big = "x".repeat(2048);
        let mut small = LayerWalker::new(
            wanted,
            Limits {
                max_file_bytes: 1024,
                ..Limits::default()
            },
        );
        let err = apply(&mut small, &tar_of(&[E::File("var/lib/dpkg/status", &big)]))
            .expect_err("huge file");
        assert!(
            err.to_string().contains("over the 1024 byte limit"),
            "{err}"
        );

        let mut tiny = LayerWalker::new(
            wanted,
            Limits {
                max_layer_bytes: 4096,
                ..Limits::default()
            },
        );
        let err =
            apply(&mut tiny, &tar_of(&[E::File("bin/big", &"y".repeat(8192))])).expect_err("bomb");
        assert!(err.to_string().contains("expands past 4096 bytes"), "{err}");

        // Nothing from the failed layers leaked in.
        let fs = w.finish();
        assert_eq!(fs.paths().collect::<Vec<_>>(), vec!["etc/os-release"]);
        assert_eq!(fs.get("etc/os-release"), Some(&b"ID=debian\n"[..]));
    }

    #[test]
    fn noted_files_are_kept_empty() {
        fn noted(p: &str) -> bool {
            p.ends_with("/Packages")
        }
        let mut w = LayerWalker::new(wanted, Limits::default()).noting(noted);
        let big = "db".repeat(4096);
        apply(
            &mut w,
            &tar_of(&[
                E::File("var/lib/rpm/Packages", &big),
                E::File("usr/lib/sysimage/rpm/Packages", &big),
                E::Hard("opt/rpm/Packages", "var/lib/rpm/Packages"),
                E::File("var/lib/rpm/Other", &big),
            ]),
        )
        .expect("layer 1");
        apply(
            &mut w,
            &tar_of(&[E::File("usr/lib/sysimage/rpm/.wh.Packages", "")]),
        )
        .expect("layer 2");
        let fs = w.finish();
        assert_eq!(
            fs.get("var/lib/rpm/Packages"),
            Some(&b""[..]),
            "present, not read"
        );
        assert_eq!(
            fs.get("opt/rpm/Packages"),
            Some(&b""[..]),
            "a hard link too"
        );
        assert_eq!(fs.get("usr/lib/sysimage/rpm/Packages"), None, "whited out");
        assert_eq!(
            fs.get("var/lib/rpm/Other"),
            None,
            "neither wanted nor noted"
        );
    }

    #[test]
    fn junk_is_not_a_layer() {
        let mut w = walker();
        let junk: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(apply(&mut w, &junk).is_err());
        let mut w = walker();
        // An empty blob is an empty tar stream: legal, nothing in it.
        let stats = apply(&mut w, b"").expect("empty layer");
        assert_eq!(stats.entries, 0);
    }

    fn derived_names(fs: &Filesystem) -> Vec<(String, Vec<String>, usize)> {
        fs.derived()
            .map(|(path, d)| {
                (
                    path.to_owned(),
                    d.packages
                        .iter()
                        .map(|p| format!("{}@{} in {}", p.name, p.version, p.location))
                        .collect(),
                    d.unreadable.len(),
                )
            })
            .collect()
    }

    #[test]
    fn language_packages_are_read_as_layers_stream_and_follow_whiteouts() {
        let registry = std::fs::read("/usr/bin/docker-registry")
            .expect("/usr/bin/docker-registry (hack/scan-tools.sh installs it)");
        let go = crate::inventory::language::go::stdlib_version(
            &crate::inventory::language::go::read_elf("x", &registry)
                .expect("reads")
                .expect("Go")
                .go_version,
        )
        .expect("a release toolchain");
        let deriving = Deriving {
            wants: crate::inventory::language::wants,
            derive: crate::inventory::language::derive,
        };
        let mut w = walker().deriving(deriving);
        let manifest = br#"{"name": "lodash", "version": "4.17.20"}"#;
        apply(
            &mut w,
            &tar_of(&[
                E::Raw("app/node_modules/lodash/package.json", manifest, 0o644),
                E::Raw(
                    "app/node_modules/left-pad/package.json",
                    br#"{"name": "left-pad", "version": "1.3.0"}"#,
                    0o644,
                ),
                E::Raw("usr/bin/registry", &registry, 0o755),
                E::Raw("usr/bin/script", b"#!/bin/sh\necho hi\n", 0o755),
                E::Raw("usr/share/not-exec", &registry[..4096], 0o644),
                E::Raw("app/broken.jar", b"not a zip", 0o644),
            ]),
        )
        .expect("layer 1");
        apply(
            &mut w,
            &tar_of(&[
                E::File("app/node_modules/.wh.lodash", ""),
                E::Hard("usr/local/bin/registry", "usr/bin/registry"),
            ]),
        )
        .expect("layer 2");
        apply(
            &mut w,
            &tar_of(&[E::Raw("usr/bin/registry", b"#!/bin/sh\nexec true\n", 0o755)]),
        )
        .expect("layer 3");
        let fs = w.finish();
        assert_eq!(
            derived_names(&fs),
            [
                ("app/broken.jar".to_string(), vec![], 1),
                (
                    "app/node_modules/left-pad/package.json".into(),
                    vec!["left-pad@1.3.0 in app/node_modules/left-pad/package.json".into()],
                    0
                ),
                (
                    "usr/local/bin/registry".into(),
                    vec![format!("stdlib@{go} in usr/local/bin/registry")],
                    0
                ),
            ]
        );
    }

    #[test]
    fn files_over_the_limit_are_named_not_read() {
        let mut w = LayerWalker::new(
            wanted,
            Limits {
                max_file_bytes: 100,
                ..Limits::default()
            },
        )
        .deriving(Deriving {
            wants: crate::inventory::language::wants,
            derive: crate::inventory::language::derive,
        });
        apply(
            &mut w,
            &tar_of(&[E::Raw("opt/big.jar", &[0u8; 101], 0o644)]),
        )
        .expect("applies");
        let fs = w.finish();
        let (path, d) = fs.derived().next().expect("one");
        assert_eq!(path, "opt/big.jar");
        assert!(
            d.unreadable[0].reason.contains("over the 100 byte limit"),
            "{d:?}"
        );
    }
}
