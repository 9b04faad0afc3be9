//! The processes of this node's containers, as the kernel's exec, fork and exit records
//! describe them, and the [`RuntimeEvent`]s the rules judge, built from a record and what
//! the table knows of the process and its ancestors.
//!
//! Memory is bounded by design: the table holds at most `capacity` processes and forgets
//! the least recently seen one when full (a process whose exit was never seen, or one idle
//! for long). A forgotten process is still judged: its event carries what its own record
//! says (name, ids), and only the fields the table kept (executable, arguments, parent's
//! name) are missing.

use hashlink::LruCache;
use palisade_policy::runtime::event::{
    Action, Connect, Open, Process, PtraceRequest, RuntimeEvent, SocketPeer,
};

use crate::container;
use crate::sensor::record::{Header, Kind, Record};

/// How many ancestors an event names, nearest first (the parent is named apart).
pub const MAX_ANCESTORS: usize = 4;

/// What the table keeps of a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub ppid: u32,
    pub mnt_ns: u32,
    pub name: String,
    pub exe: String,
    /// Arguments after argv[0].
    pub args: Vec<String>,
    pub exe_ctime_ns: u64,
    pub exe_from_memfd: bool,
    pub container_id: Option<String>,
}

pub struct ProcessTable {
    entries: LruCache<u32, Entry>,
    capacity: usize,
    /// Count a process outside the host's mount namespace as in a container even when its
    /// cgroup names none (`--standalone`): its "container" is `mntns:<inode>`.
    namespaces_as_containers: bool,
}

/// Converts the kernel's boot-time clock to wall-clock time: `realtime - boottime`,
/// sampled by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootClock {
    pub boot_to_epoch_ns: u64,
}

impl BootClock {
    pub fn epoch_ns(self, boot_ns: u64) -> u64 {
        boot_ns.saturating_add(self.boot_to_epoch_ns)
    }
}

impl ProcessTable {
    pub fn new(capacity: usize) -> ProcessTable {
        ProcessTable {
            entries: LruCache::new(capacity.max(1)),
            capacity: capacity.max(1),
            namespaces_as_containers: false,
        }
    }

    /// See [`ProcessTable::namespaces_as_containers`].
    pub fn with_namespaces_as_containers(mut self, on: bool) -> ProcessTable {
        self.namespaces_as_containers = on;
        self
    }

    fn container_of(&self, h: &Header) -> Option<String> {
        container::id_from_cgroups(&h.cgroup, &h.cgroup_v1)
            .map(str::to_owned)
            .or_else(|| {
                (self.namespaces_as_containers && h.mnt_ns != 0)
                    .then(|| format!("mntns:{}", h.mnt_ns))
            })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn get(&self, pid: u32) -> Option<&Entry> {
        self.entries.peek(&pid)
    }

    /// Learns from a record: exec replaces the program, fork copies the parent, exit
    /// forgets. Other records refresh the process's place in the table.
    pub fn observe(&mut self, record: &Record) {
        let h = record.header();
        match record {
            Record::Exec {
                exe,
                argv,
                exe_ctime_ns,
                from_memfd,
                ..
            } => {
                let entry = Entry {
                    ppid: h.ppid,
                    mnt_ns: h.mnt_ns,
                    name: h.comm.clone(),
                    exe: exe.clone(),
                    args: argv.iter().skip(1).cloned().collect(),
                    exe_ctime_ns: *exe_ctime_ns,
                    exe_from_memfd: *from_memfd,
                    container_id: self.container_of(h),
                };
                self.entries.insert(h.pid, entry);
            }
            Record::Fork(h) => {
                let mut entry = self.entries.get(&h.ppid).cloned().unwrap_or_else(|| Entry {
                    name: h.comm.clone(),
                    ..Entry::default()
                });
                entry.ppid = h.ppid;
                entry.mnt_ns = h.mnt_ns;
                entry.container_id = self.container_of(h);
                self.entries.insert(h.pid, entry);
            }
            Record::Exit(h) => {
                self.entries.remove(&h.pid);
            }
            _ => {
                self.entries.get(&h.pid);
            }
        }
    }

    /// Puts a process learnt elsewhere (from /proc, for processes older than the agent).
    pub fn insert(&mut self, pid: u32, entry: Entry) {
        self.entries.insert(pid, entry);
    }

    /// The event the rules judge, or `None` for records that are bookkeeping only (fork,
    /// exit) or that come from no container.
    ///
    /// `container_started_ns` is when the process's container started (wall clock), which
    /// tells a binary written after the start from one in the image.
    pub fn event(
        &self,
        record: &Record,
        clock: BootClock,
        container_started_ns: impl Fn(&str) -> Option<u64>,
    ) -> Option<RuntimeEvent> {
        let h = record.header();
        let container_id = self.container_of(h)?;
        let action = action(record)?;
        let entry = self.entries.peek(&h.pid);
        let (parent_name, ancestors) = self.lineage(h);
        let exe_ctime_ns = match record {
            Record::Exec { exe_ctime_ns, .. } => *exe_ctime_ns,
            _ => entry.map_or(0, |e| e.exe_ctime_ns),
        };
        let exe_written_after_start = container_started_ns(&container_id)
            .is_some_and(|started| written_after_start(exe_ctime_ns, started));
        let process = Process {
            pid: h.pid,
            vpid: h.vpid,
            ppid: h.ppid,
            uid: h.uid,
            name: h.comm.clone(),
            exe: entry.map(|e| e.exe.clone()).unwrap_or_default(),
            args: entry.map(|e| e.args.clone()).unwrap_or_default(),
            cwd: None,
            tty: h.tty,
            parent_name,
            ancestors,
            exe_written_after_start,
            exe_from_memfd: entry.is_some_and(|e| e.exe_from_memfd),
            cap_effective: h.cap_effective,
            started_ns: clock.epoch_ns(h.start_ns),
            container_id,
        };
        Some(RuntimeEvent {
            time_ns: clock.epoch_ns(h.time_ns),
            process,
            action,
        })
    }

    /// The parent's name and the further ancestors' names, as long as they are in the same
    /// container (mount namespace): a process started by `kubectl exec` or an entrypoint has
    /// none.
    fn lineage(&self, h: &Header) -> (Option<String>, Vec<String>) {
        if h.parent_mnt_ns != h.mnt_ns {
            return (None, Vec::new());
        }
        let Some(parent) = self.entries.peek(&h.ppid) else {
            return (None, Vec::new());
        };
        let mut ancestors = Vec::new();
        let mut next = parent.ppid;
        while ancestors.len() < MAX_ANCESTORS {
            match self.entries.peek(&next) {
                Some(a) if a.mnt_ns == h.mnt_ns && next != 0 => {
                    ancestors.push(a.name.clone());
                    next = a.ppid;
                }
                _ => break,
            }
        }
        (Some(parent.name.clone()), ancestors)
    }
}

/// Whether an executable whose inode changed at `exe_ctime_ns` was written after its
/// container started at `started_ns`. A pod's `startedAt` is whole seconds, truncated, and
/// an image pulled just before the start has its files unpacked in that same second: only
/// a change from the next second on counts.
pub fn written_after_start(exe_ctime_ns: u64, started_ns: u64) -> bool {
    const STATUS_RESOLUTION_NS: u64 = 1_000_000_000;
    exe_ctime_ns != 0 && exe_ctime_ns >= started_ns.saturating_add(STATUS_RESOLUTION_NS)
}

/// Joins a path the process passed with the directory it is relative to.
pub fn absolute(path: &str, base: &str) -> String {
    if path.starts_with('/') || base.is_empty() {
        return path.to_string();
    }
    format!("{}/{}", base.trim_end_matches('/'), path)
}

const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;

fn action(record: &Record) -> Option<Action> {
    Some(match record {
        Record::Exec { .. } => Action::Exec,
        Record::Fork(_) | Record::Exit(_) => return None,
        Record::Open {
            flags, path, raw, ..
        } => {
            let mode = flags & O_ACCMODE;
            Action::Open(Open {
                path: path.clone(),
                raw_path: raw.clone(),
                read: mode != O_WRONLY,
                write: mode == O_WRONLY || mode == O_RDWR,
                create: flags & O_CREAT != 0,
                truncate: flags & O_TRUNC != 0,
            })
        }
        Record::Connect {
            address,
            port,
            protocol,
            ..
        } => Action::Connect(Connect {
            address: *address,
            port: *port,
            protocol: *protocol,
        }),
        Record::Ptrace {
            request, target, ..
        } => Action::Ptrace {
            request: match request {
                0 => PtraceRequest::TraceMe,
                16 | 0x4206 => PtraceRequest::Attach,
                4..=6 => PtraceRequest::Poke,
                other => PtraceRequest::Other(*other as u32),
            },
            target_pid: *target,
        },
        Record::Memfd { name, .. } => Action::MemfdCreate { name: name.clone() },
        Record::ModuleLoad(_) => Action::ModuleLoad,
        Record::Socket {
            family,
            kind,
            protocol,
            ..
        } => Action::Socket {
            family: *family,
            kind: *kind,
            protocol: *protocol,
        },
        Record::Paths {
            kind,
            first,
            second,
            base,
            ..
        } => match kind {
            Kind::Unlink => Action::Unlink {
                path: absolute(first, base),
            },
            Kind::Rename => Action::Rename {
                from: absolute(first, base),
                to: absolute(second, base),
            },
            Kind::Link => Action::Link {
                target: absolute(first, base),
                path: absolute(second, base),
                symbolic: false,
            },
            // A symlink's target is stored as written; only the new name is resolved.
            _ => Action::Link {
                target: first.clone(),
                path: absolute(second, base),
                symbolic: true,
            },
        },
        Record::Dup { new_fd, peer, .. } => Action::Dup {
            new_fd: *new_fd,
            socket: peer.map(|(address, port)| SocketPeer { address, port }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executable_counts_as_written_after_start_from_the_second_after_it() {
        let started = 1_796_457_600_000_000_000;
        for (ctime, after) in [
            (0, false),
            (started - 5_000_000_000, false),
            // Unpacked in the second startedAt was truncated to.
            (started + 400_000_000, false),
            (started + 999_999_999, false),
            (started + 1_000_000_000, true),
            (started + 60_000_000_000, true),
        ] {
            assert_eq!(written_after_start(ctime, started), after, "{ctime}");
        }
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const CONTAINER_NS: u32 = 4026532500;
    const HOST_NS: u32 = 4026531840;

    fn header(pid: u32, ppid: u32, comm: &str) -> Header {
        Header {
            time_ns: 10_000,
            start_ns: 9_000,
            pid,
            tid: pid,
            ppid,
            vpid: pid - 1000,
            mnt_ns: CONTAINER_NS,
            parent_mnt_ns: CONTAINER_NS,
            comm: comm.into(),
            cgroup_v1: format!("cri-containerd-{ID}.scope"),
            ..Header::default()
        }
    }

    fn exec(h: Header, exe: &str, argv: &[&str], ctime: u64) -> Record {
        Record::Exec {
            header: h,
            exe_ctime_ns: ctime,
            from_memfd: false,
            filename: exe.into(),
            exe: exe.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn clock() -> BootClock {
        BootClock {
            boot_to_epoch_ns: 1_000_000,
        }
    }

    #[test]
    fn an_exec_event_names_the_program_its_parent_and_ancestors() {
        let mut t = ProcessTable::new(16);
        let mut entry = header(1001, 900, "nginx");
        entry.parent_mnt_ns = HOST_NS;
        t.observe(&exec(
            entry,
            "/usr/sbin/nginx",
            &["nginx", "-g", "daemon off;"],
            1,
        ));
        t.observe(&Record::Fork(header(1002, 1001, "nginx")));
        t.observe(&exec(
            header(1003, 1002, "sh"),
            "/bin/sh",
            &["sh", "-c", "id"],
            1,
        ));
        let shell = exec(header(1004, 1003, "bash"), "/bin/bash", &["bash", "-i"], 1);
        t.observe(&shell);

        let e = t.event(&shell, clock(), |_| Some(5)).expect("an event");
        assert_eq!(e.action, Action::Exec);
        assert_eq!(e.time_ns, 1_010_000);
        assert_eq!(e.process.exe, "/bin/bash");
        assert_eq!(e.process.args, ["-i"]);
        assert_eq!(e.process.parent_name.as_deref(), Some("sh"));
        // the forked nginx worker, then the master; the master's parent is outside
        assert_eq!(e.process.ancestors, ["nginx", "nginx"]);
        assert_eq!(e.process.container_id, ID);
        assert!(!e.process.exe_written_after_start);
    }

    #[test]
    fn a_process_from_outside_the_container_has_no_parent_name() {
        let mut t = ProcessTable::new(16);
        let mut h = header(1001, 900, "bash");
        h.parent_mnt_ns = HOST_NS; // started by kubectl exec through the runtime
        let r = exec(h, "/bin/bash", &["bash"], 1);
        t.observe(&r);
        let e = t.event(&r, clock(), |_| None).expect("an event");
        assert_eq!(e.process.parent_name, None);
        assert!(e.process.ancestors.is_empty());
    }

    #[test]
    fn a_binary_changed_after_the_container_started_is_not_from_the_image() {
        let mut t = ProcessTable::new(16);
        // ctimes and the start in ns: /tmp/x written 2 s after the (whole-second) start
        let r = exec(header(1001, 900, "x"), "/tmp/x", &["/tmp/x"], 3_000_000_000);
        t.observe(&r);
        let started = |id: &str| (id == ID).then_some(1_000_000_000);
        assert!(
            t.event(&r, clock(), started)
                .expect("an event")
                .process
                .exe_written_after_start
        );
        // unpacked in the start's own second: from the image
        let r = exec(header(1002, 900, "ls"), "/bin/ls", &["ls"], 1_500_000_000);
        t.observe(&r);
        assert!(
            !t.event(&r, clock(), started)
                .expect("an event")
                .process
                .exe_written_after_start
        );
        // with no start time known, nothing is claimed
        assert!(
            !t.event(&r, clock(), |_| None)
                .expect("an event")
                .process
                .exe_written_after_start
        );
    }

    #[test]
    fn later_events_carry_the_program_their_exec_recorded() {
        let mut t = ProcessTable::new(16);
        t.observe(&exec(
            header(1001, 900, "cat"),
            "/bin/cat",
            &["cat", "/etc/shadow"],
            1,
        ));
        let open = Record::Open {
            header: header(1001, 900, "cat"),
            flags: 0,
            path: "/etc/shadow".into(),
            raw: "/etc/shadow".into(),
        };
        let e = t.event(&open, clock(), |_| None).expect("an event");
        assert_eq!(e.process.exe, "/bin/cat");
        assert_eq!(e.process.args, ["/etc/shadow"]);
        assert_eq!(
            e.action,
            Action::Open(Open {
                path: "/etc/shadow".into(),
                raw_path: "/etc/shadow".into(),
                read: true,
                ..Open::default()
            })
        );
    }

    #[test]
    fn records_from_no_container_and_bookkeeping_make_no_event() {
        let t = ProcessTable::new(4);
        let mut h = header(1001, 900, "sshd");
        h.cgroup_v1 = "ssh.service".into();
        assert!(
            t.event(&exec(h, "/usr/sbin/sshd", &["sshd"], 1), clock(), |_| None)
                .is_none()
        );
        assert!(
            t.event(&Record::Fork(header(1001, 900, "sh")), clock(), |_| None)
                .is_none()
        );
        assert!(
            t.event(&Record::Exit(header(1001, 900, "sh")), clock(), |_| None)
                .is_none()
        );
    }

    #[test]
    fn the_table_is_bounded_and_exits_are_forgotten() {
        let mut t = ProcessTable::new(3);
        for pid in 1001..1010 {
            t.observe(&exec(
                header(pid, 900, "sleep"),
                "/bin/sleep",
                &["sleep"],
                1,
            ));
        }
        assert_eq!(t.len(), 3);
        assert!(t.get(1009).is_some() && t.get(1001).is_none());
        t.observe(&Record::Exit(header(1009, 900, "sleep")));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn open_flags_and_paths() {
        let cases = [
            (0o0, (true, false, false, false)),
            (0o1 | 0o1000, (false, true, false, true)),
            (0o2 | 0o100, (true, true, true, false)),
        ];
        for (flags, (read, write, create, truncate)) in cases {
            let r = Record::Open {
                header: header(1001, 900, "x"),
                flags,
                path: "/p".into(),
                raw: "/p".into(),
            };
            match action(&r) {
                Some(Action::Open(o)) => {
                    assert_eq!(
                        (o.read, o.write, o.create, o.truncate),
                        (read, write, create, truncate),
                        "{flags:o}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(absolute("b", "/tmp/d"), "/tmp/d/b");
        assert_eq!(absolute("/etc/x", "/tmp"), "/etc/x");
        assert_eq!(absolute("b", "/"), "/b");
        assert_eq!(absolute("b", ""), "b");
    }
}
