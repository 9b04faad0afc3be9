//! What the kernel programs let through: the record kinds some rule needs, and for opens,
//! connects and the like, the paths, ports, addresses and process names that can matter.
//! This is a pre-filter that only saves work; the rules decide.

use std::collections::BTreeSet;
use std::net::IpAddr;

use palisade_policy::runtime::{Hook, Interest, PathMatch, RuntimeRule};

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
    /// Send every open whose path as passed contains `..`, wherever it resolves to.
    pub traversal: bool,
}

/// `settings.flags` bits (sensor.bpf.c).
pub const SEND_TRAVERSAL: u32 = 1;

impl Filters {
    /// The settings map's hook mask: bit n for record kind n.
    pub fn hook_bits(&self) -> u32 {
        self.kinds.iter().fold(0, |bits, k| bits | 1 << (*k as u32))
    }

    /// The settings map's flags.
    pub fn flag_bits(&self) -> u32 {
        if self.traversal { SEND_TRAVERSAL } else { 0 }
    }

    /// Every path entry with whether it is exact.
    pub fn paths(&self) -> impl Iterator<Item = (&str, bool)> {
        self.path_prefixes
            .iter()
            .map(|p| (p.as_str(), false))
            .chain(self.exact_paths.iter().map(|p| (p.as_str(), true)))
    }
}

/// The record kinds a hook stands for.
fn kinds_of(hook: Hook) -> &'static [Kind] {
    match hook {
        Hook::Exec => &[],
        Hook::Open => &[Kind::Open],
        Hook::Connect => &[Kind::Connect],
        Hook::Ptrace => &[Kind::Ptrace],
        Hook::Memfd => &[Kind::Memfd],
        Hook::ModuleLoad => &[Kind::Module],
        Hook::Socket => &[Kind::Socket],
        Hook::Unlink => &[Kind::Unlink],
        Hook::Rename => &[Kind::Rename],
        Hook::Link => &[Kind::Link, Kind::Symlink],
        Hook::Dup => &[Kind::Dup],
    }
}

impl Filters {
    /// The kernel filters for what the applied `rules` need. The kernel's filters are
    /// coarser than the rules' patterns (no access modes; links, unlinks and renames, ptrace
    /// and module loads all sent), so they let through at least what the rules look at.
    pub fn from_interest(interest: &Interest, rules: &[RuntimeRule]) -> Filters {
        let mut f = Filters {
            kinds: interest
                .hooks
                .iter()
                .flat_map(|h| kinds_of(h).iter().copied())
                .collect(),
            traversal: interest.open_raw_traversal,
            ..Filters::default()
        };
        for p in &interest.open {
            match p.how {
                PathMatch::Exact => {
                    f.exact_paths.insert(p.text.to_string());
                }
                PathMatch::Prefix => {
                    f.path_prefixes.insert(p.text.to_string());
                }
                // The kernel matches file names: a suffix `/syslog` or `release_agent` is the
                // name `syslog` or `release_agent`.
                PathMatch::Suffix => {
                    f.names.insert(p.text.trim_start_matches('/').to_string());
                }
            }
        }
        f.ports.extend(interest.connect_ports.iter().copied());
        for endpoint in &interest.connect_endpoints {
            f.addresses.insert(endpoint.ip());
            f.ports.insert(endpoint.port());
        }
        // The SSH rule is about the ssh client whatever port it dials.
        if rules.contains(&RuntimeRule::SshNonStandardPort) {
            f.comms.insert("ssh".into());
        }
        f
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
    fn filters_from_what_the_rules_need() {
        let rules = RuntimeRule::ALL.to_vec();
        let cluster = palisade_policy::ClusterFacts {
            api_server: vec!["10.96.0.1:443".parse().expect("an address")],
        };
        let interest = Interest::of(rules.iter().copied(), &cluster);
        let f = Filters::from_interest(&interest, &rules);
        for k in [
            Kind::Open,
            Kind::Connect,
            Kind::Ptrace,
            Kind::Module,
            Kind::Socket,
            Kind::Unlink,
            Kind::Rename,
            Kind::Link,
            Kind::Symlink,
            Kind::Dup,
        ] {
            assert!(f.kinds.contains(&k), "{k:?}");
        }
        assert!(f.exact_paths.contains("/etc/shadow"));
        assert!(f.path_prefixes.contains("/var/log/"));
        assert!(f.names.contains("release_agent") && f.names.contains("syslog"));
        assert!(
            f.addresses
                .contains(&"10.96.0.1".parse::<IpAddr>().expect("an address"))
        );
        assert!(f.ports.contains(&443) && f.ports.contains(&3333));
        assert!(f.comms.contains("ssh"));
        assert!(f.traversal);
        assert!(
            !f.kinds.contains(&Kind::Memfd),
            "fileless execution is seen at exec"
        );

        let shell = [RuntimeRule::TerminalShell];
        let f = Filters::from_interest(&Interest::of(shell, &cluster), &shell);
        assert_eq!(
            f,
            Filters::default(),
            "exec rules need no filter: execs are always sent"
        );
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
