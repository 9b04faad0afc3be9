//! The kernel's records, decoded from the bytes the ring buffer (or a test) hands over. The
//! layout is `src/bpf/records.h`; the offsets here follow it field by field, and a record
//! that is shorter than its kind needs is an error, never a guess.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::DecodeError;

pub const COMM_LEN: usize = 16;
pub const CGROUP_LEN: usize = 96;
pub const PATH_LEN: usize = 512;
pub const NAME_LEN: usize = 256;
pub const ARGS_LEN: usize = 1024;

pub const HEADER_LEN: usize = 40 + 4 * 8 + COMM_LEN + 2 * CGROUP_LEN;
pub const EXEC_LEN: usize = HEADER_LEN + 16 + NAME_LEN + PATH_LEN + ARGS_LEN;
pub const OPEN_LEN: usize = HEADER_LEN + 8 + PATH_LEN + NAME_LEN;
pub const CONNECT_LEN: usize = HEADER_LEN + 8 + 16;
pub const PTRACE_LEN: usize = HEADER_LEN + 16;
pub const MEMFD_LEN: usize = HEADER_LEN + 8 + NAME_LEN;
pub const SOCKET_LEN: usize = HEADER_LEN + 16;
pub const PATHS_LEN: usize = HEADER_LEN + 3 * PATH_LEN;
pub const DUP_LEN: usize = HEADER_LEN + 8 + 16;

/// Record kinds, as `enum record_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Kind {
    Exec = 1,
    Fork = 2,
    Exit = 3,
    Open = 4,
    Connect = 5,
    Ptrace = 6,
    Memfd = 7,
    Module = 8,
    Socket = 9,
    Unlink = 10,
    Rename = 11,
    Link = 12,
    Symlink = 13,
    Dup = 14,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::Exec,
        Kind::Fork,
        Kind::Exit,
        Kind::Open,
        Kind::Connect,
        Kind::Ptrace,
        Kind::Memfd,
        Kind::Module,
        Kind::Socket,
        Kind::Unlink,
        Kind::Rename,
        Kind::Link,
        Kind::Symlink,
        Kind::Dup,
    ];

    pub fn from_u32(n: u32) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u32 == n)
    }

    /// The label metrics and logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Fork => "fork",
            Kind::Exit => "exit",
            Kind::Open => "open",
            Kind::Connect => "connect",
            Kind::Ptrace => "ptrace",
            Kind::Memfd => "memfd",
            Kind::Module => "module",
            Kind::Socket => "socket",
            Kind::Unlink => "unlink",
            Kind::Rename => "rename",
            Kind::Link => "link",
            Kind::Symlink => "symlink",
            Kind::Dup => "dup",
        }
    }

    /// The record's size in bytes.
    pub fn size(self) -> usize {
        match self {
            Kind::Exec => EXEC_LEN,
            Kind::Fork | Kind::Exit | Kind::Module => HEADER_LEN,
            Kind::Open => OPEN_LEN,
            Kind::Connect => CONNECT_LEN,
            Kind::Ptrace => PTRACE_LEN,
            Kind::Memfd => MEMFD_LEN,
            Kind::Socket => SOCKET_LEN,
            Kind::Unlink | Kind::Rename | Kind::Link | Kind::Symlink => PATHS_LEN,
            Kind::Dup => DUP_LEN,
        }
    }
}

/// What every record carries about the task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Nanoseconds since boot (CLOCK_BOOTTIME).
    pub time_ns: u64,
    /// The thread group's start, nanoseconds since boot.
    pub start_ns: u64,
    pub cap_effective: u64,
    pub ret: i64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub vpid: u32,
    pub uid: u32,
    pub tty: u32,
    pub mnt_ns: u32,
    pub parent_mnt_ns: u32,
    pub comm: String,
    /// Leaf cgroup name in the unified (v2) hierarchy; empty when the task sits at its root.
    pub cgroup: String,
    /// Leaf cgroup name in the v1 memory hierarchy; empty when there is none.
    pub cgroup_v1: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Exec {
        header: Header,
        /// The executable's inode change time, nanoseconds since the epoch.
        exe_ctime_ns: u64,
        from_memfd: bool,
        /// The path as passed to execve.
        filename: String,
        /// The executable's resolved path.
        exe: String,
        /// argv, argv[0] included.
        argv: Vec<String>,
    },
    Fork(Header),
    Exit(Header),
    Open {
        header: Header,
        flags: u32,
        path: String,
        raw: String,
    },
    Connect {
        header: Header,
        address: IpAddr,
        port: u16,
        protocol: u8,
    },
    Ptrace {
        header: Header,
        request: u64,
        target: u32,
    },
    Memfd {
        header: Header,
        name: String,
    },
    ModuleLoad(Header),
    Socket {
        header: Header,
        family: u16,
        kind: u16,
        protocol: u16,
    },
    /// unlink, rename, link and symlink: paths as passed, and the directory relative paths
    /// start from.
    Paths {
        kind: Kind,
        header: Header,
        first: String,
        second: String,
        base: String,
    },
    Dup {
        header: Header,
        new_fd: u32,
        peer: Option<(IpAddr, u16)>,
    },
}

impl Record {
    pub fn header(&self) -> &Header {
        match self {
            Record::Exec { header, .. }
            | Record::Fork(header)
            | Record::Exit(header)
            | Record::Open { header, .. }
            | Record::Connect { header, .. }
            | Record::Ptrace { header, .. }
            | Record::Memfd { header, .. }
            | Record::ModuleLoad(header)
            | Record::Socket { header, .. }
            | Record::Paths { header, .. }
            | Record::Dup { header, .. } => header,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Record::Exec { .. } => Kind::Exec,
            Record::Fork(_) => Kind::Fork,
            Record::Exit(_) => Kind::Exit,
            Record::Open { .. } => Kind::Open,
            Record::Connect { .. } => Kind::Connect,
            Record::Ptrace { .. } => Kind::Ptrace,
            Record::Memfd { .. } => Kind::Memfd,
            Record::ModuleLoad(_) => Kind::Module,
            Record::Socket { .. } => Kind::Socket,
            Record::Paths { kind, .. } => *kind,
            Record::Dup { .. } => Kind::Dup,
        }
    }
}

/// Reads fixed-width fields in order.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        // Callers check the record's length against its kind first.
        let field = &self.bytes[self.at..self.at + n];
        self.at += n;
        field
    }

    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_ne_bytes([b[0], b[1]])
    }

    fn u32(&mut self) -> u32 {
        let b = self.take(4);
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    }

    fn u64(&mut self) -> u64 {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8));
        u64::from_ne_bytes(a)
    }

    fn i64(&mut self) -> i64 {
        self.u64() as i64
    }

    /// A NUL-terminated string in a fixed field; bytes that are not UTF-8 are replaced, as
    /// file names may hold any bytes.
    fn string(&mut self, n: usize) -> String {
        c_string(self.take(n))
    }

    fn addr(&mut self, family: u16) -> Option<IpAddr> {
        let b = self.take(16);
        match family {
            2 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            10 => {
                let mut a = [0; 16];
                a.copy_from_slice(b);
                Some(IpAddr::V6(Ipv6Addr::from(a)))
            }
            _ => None,
        }
    }
}

fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// argv as the kernel lays it out: NUL-separated, the last one NUL-terminated (or cut).
pub fn split_args(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Decodes one record.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    if bytes.len() < 8 {
        return Err(DecodeError::Short {
            kind: "header",
            need: HEADER_LEN,
            got: bytes.len(),
        });
    }
    let raw_kind = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let kind = Kind::from_u32(raw_kind).ok_or(DecodeError::UnknownKind(raw_kind))?;
    if bytes.len() < kind.size() {
        return Err(DecodeError::Short {
            kind: kind.as_str(),
            need: kind.size(),
            got: bytes.len(),
        });
    }
    let mut f = Fields { bytes, at: 8 };
    let header = Header {
        time_ns: f.u64(),
        start_ns: f.u64(),
        cap_effective: f.u64(),
        ret: f.i64(),
        pid: f.u32(),
        tid: f.u32(),
        ppid: f.u32(),
        vpid: f.u32(),
        uid: f.u32(),
        tty: f.u32(),
        mnt_ns: f.u32(),
        parent_mnt_ns: f.u32(),
        comm: f.string(COMM_LEN),
        cgroup: f.string(CGROUP_LEN),
        cgroup_v1: f.string(CGROUP_LEN),
    };
    Ok(match kind {
        Kind::Exec => {
            let exe_ctime_ns = f.u64();
            let flags = f.u32();
            let args_len = (f.u32() as usize).min(ARGS_LEN);
            let filename = f.string(NAME_LEN);
            let exe = f.string(PATH_LEN);
            let argv = split_args(&f.take(ARGS_LEN)[..args_len]);
            Record::Exec {
                header,
                exe_ctime_ns,
                from_memfd: flags & 1 != 0,
                filename,
                exe,
                argv,
            }
        }
        Kind::Fork => Record::Fork(header),
        Kind::Exit => Record::Exit(header),
        Kind::Module => Record::ModuleLoad(header),
        Kind::Open => {
            let flags = f.u32();
            f.u32();
            Record::Open {
                header,
                flags,
                path: f.string(PATH_LEN),
                raw: f.string(NAME_LEN),
            }
        }
        Kind::Connect => {
            let family = f.u16();
            let port = f.u16();
            let protocol = f.u32() as u8;
            let address = f.addr(family).ok_or(DecodeError::Family(family))?;
            Record::Connect {
                header,
                address,
                port,
                protocol,
            }
        }
        Kind::Ptrace => Record::Ptrace {
            header,
            request: f.u64(),
            target: f.u32(),
        },
        Kind::Memfd => {
            f.u32();
            f.u32();
            Record::Memfd {
                header,
                name: f.string(NAME_LEN),
            }
        }
        Kind::Socket => Record::Socket {
            header,
            family: f.u32() as u16,
            kind: f.u32() as u16,
            protocol: f.u32() as u16,
        },
        Kind::Unlink | Kind::Rename | Kind::Link | Kind::Symlink => Record::Paths {
            kind,
            header,
            first: f.string(PATH_LEN),
            second: f.string(PATH_LEN),
            base: f.string(PATH_LEN),
        },
        Kind::Dup => {
            let new_fd = f.u32();
            let family = f.u16();
            let port = f.u16();
            let peer = f.addr(family).map(|a| (a, port));
            Record::Dup {
                header,
                new_fd,
                peer,
            }
        }
    })
}

/// Builders of raw records for tests, laid out as the kernel writes them.
#[cfg(test)]
pub mod build {
    use super::*;

    pub struct Raw(pub Vec<u8>);

    impl Raw {
        pub fn new(kind: Kind, h: &Header) -> Raw {
            let mut b = Vec::with_capacity(kind.size());
            b.extend((kind as u32).to_ne_bytes());
            b.extend((kind.size() as u32).to_ne_bytes());
            for v in [h.time_ns, h.start_ns, h.cap_effective, h.ret as u64] {
                b.extend(v.to_ne_bytes());
            }
            for v in [
                h.pid,
                h.tid,
                h.ppid,
                h.vpid,
                h.uid,
                h.tty,
                h.mnt_ns,
                h.parent_mnt_ns,
            ] {
                b.extend(v.to_ne_bytes());
            }
            let mut raw = Raw(b);
            raw.string(&h.comm, COMM_LEN);
            raw.string(&h.cgroup, CGROUP_LEN);
            raw.string(&h.cgroup_v1, CGROUP_LEN);
            raw
        }

        pub fn string(&mut self, s: &str, n: usize) -> &mut Raw {
            let mut field = vec![0u8; n];
            let len = s.len().min(n - 1);
            field[..len].copy_from_slice(&s.as_bytes()[..len]);
            self.0.extend(field);
            self
        }

        pub fn bytes(&mut self, b: &[u8]) -> &mut Raw {
            self.0.extend(b);
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::Raw;
    use super::*;

    fn header() -> Header {
        Header {
            time_ns: 5_000_000_000,
            start_ns: 4_000_000_000,
            cap_effective: 0xa80425fb,
            ret: 3,
            pid: 4242,
            tid: 4242,
            ppid: 4200,
            vpid: 7,
            uid: 0,
            tty: (136 << 20) | 1,
            mnt_ns: 4026532300,
            parent_mnt_ns: 4026531841,
            comm: "cat".into(),
            cgroup: String::new(),
            cgroup_v1: format!("cri-containerd-{}.scope", "ab".repeat(32)),
        }
    }

    /// The sizes here are the C structs' sizes (records.h); a change on one side only
    /// breaks this.
    #[test]
    fn sizes_follow_the_c_layout() {
        assert_eq!(HEADER_LEN, 280);
        assert_eq!(EXEC_LEN, 2088);
        assert_eq!(OPEN_LEN, 1056);
        assert_eq!(CONNECT_LEN, 304);
        assert_eq!(PTRACE_LEN, 296);
        assert_eq!(MEMFD_LEN, 544);
        assert_eq!(SOCKET_LEN, 296);
        assert_eq!(PATHS_LEN, 1816);
        assert_eq!(DUP_LEN, 304);
    }

    #[test]
    fn an_exec_record_decodes_with_its_arguments() {
        let mut raw = Raw::new(Kind::Exec, &header());
        let args = b"sh\0-c\0id\0";
        raw.bytes(&1_700_000_000_000_000_000u64.to_ne_bytes())
            .bytes(&1u32.to_ne_bytes())
            .bytes(&(args.len() as u32).to_ne_bytes())
            .string("/bin/sh", NAME_LEN)
            .string("/usr/bin/dash", PATH_LEN);
        let mut field = vec![0u8; ARGS_LEN];
        field[..args.len()].copy_from_slice(args);
        raw.bytes(&field);
        let record = decode(&raw.0).expect("decodes");
        assert_eq!(
            record,
            Record::Exec {
                header: header(),
                exe_ctime_ns: 1_700_000_000_000_000_000,
                from_memfd: true,
                filename: "/bin/sh".into(),
                exe: "/usr/bin/dash".into(),
                argv: vec!["sh".into(), "-c".into(), "id".into()],
            }
        );
    }

    #[test]
    fn connect_and_dup_records_carry_addresses() {
        let mut raw = Raw::new(Kind::Connect, &header());
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        raw.bytes(&2u16.to_ne_bytes())
            .bytes(&443u16.to_ne_bytes())
            .bytes(&6u32.to_ne_bytes())
            .bytes(&addr);
        match decode(&raw.0).expect("decodes") {
            Record::Connect {
                address,
                port,
                protocol,
                ..
            } => {
                assert_eq!(address, "10.0.0.1".parse::<IpAddr>().expect("an address"));
                assert_eq!((port, protocol), (443, 6));
            }
            other => panic!("not a connect: {other:?}"),
        }

        let mut raw = Raw::new(Kind::Dup, &header());
        let v6: Ipv6Addr = "fd00::5".parse().expect("an address");
        raw.bytes(&1u32.to_ne_bytes())
            .bytes(&10u16.to_ne_bytes())
            .bytes(&4444u16.to_ne_bytes())
            .bytes(&v6.octets());
        match decode(&raw.0).expect("decodes") {
            Record::Dup { new_fd, peer, .. } => {
                assert_eq!(new_fd, 1);
                assert_eq!(peer, Some((IpAddr::V6(v6), 4444)));
            }
            other => panic!("not a dup: {other:?}"),
        }
    }

    #[test]
    fn bad_records_are_errors_not_guesses() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![1, 0, 0], "shorter than a header"),
            (
                {
                    let mut b = Raw::new(Kind::Exec, &header()).0;
                    b.truncate(HEADER_LEN + 10);
                    b
                },
                "exec record shorter than an exec",
            ),
            (
                {
                    let mut b = Raw::new(Kind::Fork, &header()).0;
                    b[0] = 99;
                    b
                },
                "unknown kind",
            ),
            (
                {
                    let mut raw = Raw::new(Kind::Connect, &header());
                    raw.bytes(&1u16.to_ne_bytes())
                        .bytes(&0u16.to_ne_bytes())
                        .bytes(&0u32.to_ne_bytes())
                        .bytes(&[0; 16]);
                    raw.0
                },
                "connect of a non-inet family",
            ),
        ];
        for (bytes, what) in cases {
            assert!(decode(&bytes).is_err(), "{what} decoded");
        }
    }

    #[test]
    fn arguments_split_on_nul() {
        let cases: [(&[u8], &[&str]); 4] = [
            (b"", &[]),
            (b"ls\0", &["ls"]),
            (b"nc\0-e\0/bin/sh\0", &["nc", "-e", "/bin/sh"]),
            (b"cut\0of", &["cut", "of"]),
        ];
        for (bytes, want) in cases {
            assert_eq!(split_args(bytes), want, "{bytes:?}");
        }
    }
}
