//! What the kernel programs let through: the record kinds some rule needs, and for opens,
//! connects and the like, the paths, ports, addresses and process names that can matter.
//! This is a pre-filter that only saves work; the rules decide.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::record::Kind;

/// The LPM trie's key width in bytes (KEY_LEN in sensor.bpf.c).
pub const KEY_LEN: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// System-call record kinds to send (exec, fork and exit are always sent: the process
    /// table needs them).
    pub kinds: BTreeSet<Kind>,
    /// Paths whose every descendant matters, e.g. `/etc/`.
    pub path_prefixes: BTreeSet<String>,
    /// Paths that matter themselves, e.g. `/etc/shadow`.
    pub exact_paths: BTreeSet<String>,
    /// File names that matter wherever they are, e.g. `release_agent` (at most 31 bytes).
    pub names: BTreeSet<String>,
    /// Remote ports whose connections matter.
    pub ports: BTreeSet<u16>,
    /// Remote addresses whose connections matter.
    pub addresses: BTreeSet<IpAddr>,
    /// Process names (as `comm`) whose every connection matters.
    pub comms: BTreeSet<String>,
}

impl Filters {
    /// The settings map's hook mask: bit n for record kind n.
    pub fn hook_bits(&self) -> u32 {
        self.kinds.iter().fold(0, |bits, k| bits | 1 << (*k as u32))
    }

    /// Every path entry with whether it is exact.
    pub fn paths(&self) -> impl Iterator<Item = (&str, bool)> {
        self.path_prefixes
            .iter()
            .map(|p| (p.as_str(), false))
            .chain(self.exact_paths.iter().map(|p| (p.as_str(), true)))
    }
}

/// The trie key for a path entry: `prefixlen` in bits, then the bytes. An exact path takes
/// its terminating NUL into the prefix, so it matches only itself; an entry longer than the
/// key is cut to a prefix, which lets more through, never less.
pub fn path_key(path: &str, exact: bool) -> [u8; 4 + KEY_LEN] {
    let bytes = path.as_bytes();
    let mut len = bytes.len().min(KEY_LEN);
    let mut key = [0u8; 4 + KEY_LEN];
    key[4..4 + len].copy_from_slice(&bytes[..len]);
    if exact && len < KEY_LEN {
        len += 1; // the NUL, already zero
    }
    key[..4].copy_from_slice(&((len * 8) as u32).to_ne_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixlen(key: &[u8]) -> u32 {
        u32::from_ne_bytes([key[0], key[1], key[2], key[3]])
    }

    #[test]
    fn trie_keys() {
        let k = path_key("/etc/", false);
        assert_eq!(prefixlen(&k), 40);
        assert_eq!(&k[4..9], b"/etc/");

        let k = path_key("/etc/shadow", true);
        assert_eq!(prefixlen(&k), 96, "eleven bytes and the NUL");
        assert_eq!(k[15], 0);

        let long = format!("/{}", "a".repeat(100));
        let k = path_key(&long, true);
        assert_eq!(prefixlen(&k), (KEY_LEN * 8) as u32, "cut to a prefix");
    }

    #[test]
    fn hook_bits_follow_the_record_kinds() {
        let f = Filters {
            kinds: [Kind::Open, Kind::Connect].into(),
            ..Filters::default()
        };
        assert_eq!(f.hook_bits(), 1 << 4 | 1 << 5);
        assert_eq!(Filters::default().hook_bits(), 0);
    }
}
