//! A process as /proc describes it, turned into the same kernel record the eBPF sensor would
//! have written. Used for processes that were running before the agent started, and by the
//! fallback sensor, which learns only pids from the kernel. The parsers are pure; `read`
//! does the file I/O.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::sensor::record::{Header, Record};

/// Fields of /proc/<pid>/stat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    pub tty: u32,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Parses /proc/<pid>/stat. The command name may hold spaces and parentheses, so it is the
/// text between the first `(` and the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // After the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    // cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    Some(Stat {
        comm,
        ppid: rest.get(1)?.parse().ok()?,
        tty: rest.get(4)?.parse::<i64>().ok()? as u32,
        start_ticks: rest.get(19)?.parse().ok()?,
    })
}

/// Fields of /proc/<pid>/status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub uid: u32,
    pub cap_effective: u64,
    /// The pid in the process's own namespace (the last NSpid entry).
    pub vpid: u32,
}

pub fn parse_status(text: &str) -> Option<Status> {
    let mut status = Status::default();
    let mut seen = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Uid" => {
                status.uid = value.split_whitespace().next()?.parse().ok()?;
                seen += 1;
            }
            "CapEff" => {
                status.cap_effective = u64::from_str_radix(value, 16).ok()?;
                seen += 1;
            }
            "NSpid" => {
                status.vpid = value.split_whitespace().last()?.parse().ok()?;
                seen += 1;
            }
            _ => {}
        }
    }
    (seen == 3).then_some(status)
}

/// The leaf names of the process's cgroups in /proc/<pid>/cgroup: the unified hierarchy's
/// (`0::/…`) and the v1 memory hierarchy's (`N:memory:/…`).
pub fn parse_cgroup(text: &str) -> (String, String) {
    let leaf = |path: &str| path.rsplit('/').next().unwrap_or_default().to_string();
    let mut unified = String::new();
    let mut memory = String::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            unified = leaf(path);
        } else if controllers.split(',').any(|c| c == "memory") {
            memory = leaf(path);
        }
    }
    (unified, memory)
}

/// The inode number in a namespace link's text, `mnt:[4026531840]`.
pub fn parse_ns_link(text: &str) -> Option<u32> {
    text.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// Where /proc is, and how to turn its clock ticks into nanoseconds.
#[derive(Clone, Debug)]
pub struct ProcFs {
    pub root: PathBuf,
    pub ticks_per_second: u64,
}

impl ProcFs {
    pub fn new(root: impl Into<PathBuf>) -> ProcFs {
        ProcFs {
            root: root.into(),
            ticks_per_second: rustix::param::clock_ticks_per_second().max(1),
        }
    }

    fn path(&self, pid: u32, file: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(file)
    }

    /// The mount namespace of `pid`.
    pub fn mnt_ns(&self, pid: u32) -> Option<u32> {
        let link = std::fs::read_link(self.path(pid, "ns/mnt")).ok()?;
        parse_ns_link(&link.to_string_lossy())
    }

    /// The record an exec of `pid` would have produced, read from /proc now; `None` when the
    /// process is gone or unreadable. `time_ns` is the boot-clock time to stamp.
    pub fn exec_record(&self, pid: u32, time_ns: u64) -> Option<Record> {
        let header = self.header(pid, time_ns)?;
        let exe_path = self.path(pid, "exe");
        let exe = std::fs::read_link(&exe_path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let exe_ctime_ns = std::fs::metadata(&exe_path)
            .map(|m| (m.ctime() as u64).saturating_mul(1_000_000_000) + m.ctime_nsec() as u64)
            .unwrap_or(0);
        let cmdline = std::fs::read(self.path(pid, "cmdline")).unwrap_or_default();
        let from_memfd = exe.starts_with("/memfd:");
        Some(Record::Exec {
            header,
            exe_ctime_ns,
            from_memfd,
            filename: exe.clone(),
            exe,
            argv: crate::sensor::record::split_args(&cmdline),
        })
    }

    /// The header of a record about `pid`.
    pub fn header(&self, pid: u32, time_ns: u64) -> Option<Header> {
        let stat = parse_stat(&read(&self.path(pid, "stat"))?)?;
        let status = parse_status(&read(&self.path(pid, "status"))?)?;
        let (cgroup, cgroup_v1) = parse_cgroup(&read(&self.path(pid, "cgroup"))?);
        Some(Header {
            time_ns,
            start_ns: stat.start_ticks.saturating_mul(1_000_000_000) / self.ticks_per_second,
            cap_effective: status.cap_effective,
            ret: 0,
            pid,
            tid: pid,
            ppid: stat.ppid,
            vpid: status.vpid,
            uid: status.uid,
            tty: stat.tty,
            mnt_ns: self.mnt_ns(pid)?,
            parent_mnt_ns: self.mnt_ns(stat.ppid).unwrap_or(0),
            comm: stat.comm,
            cgroup,
            cgroup_v1,
        })
    }

    /// Every process id in /proc.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_dir(&self.root)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let s = parse_stat("4242 (my (odd) name) S 4200 4242 4242 34817 4242 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 10000 200")
            .expect("parses");
        assert_eq!(
            s,
            Stat {
                comm: "my (odd) name".into(),
                ppid: 4200,
                tty: 34817,
                start_ticks: 987654,
            }
        );
        for bad in ["", "4242 cat S 1", "4242 (cat) S", "4242 (cat) S x 1 1 0"] {
            assert_eq!(parse_stat(bad), None, "{bad}");
        }
    }

    #[test]
    fn status_files() {
        let text = "Name:\tsh\nUmask:\t0022\nNSpid:\t31337\t12\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t00000000a80425fb\n";
        assert_eq!(
            parse_status(text),
            Some(Status {
                uid: 1000,
                cap_effective: 0xa80425fb,
                vpid: 12,
            })
        );
        assert_eq!(
            parse_status("Name:\tsh\nUid:\t0\t0\t0\t0\n"),
            None,
            "fields missing"
        );
    }

    #[test]
    fn cgroup_files_of_v1_v2_and_hybrid_hosts() {
        let id = "ab".repeat(32);
        let v1 = format!(
            "12:pids:/kubepods/besteffort/pod1/{id}\n4:memory:/kubepods/besteffort/pod1/{id}\n1:name=systemd:/kubepods/besteffort/pod1/{id}\n"
        );
        assert_eq!(parse_cgroup(&v1), (String::new(), id.clone()));
        let v2 = format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{id}.scope\n");
        assert_eq!(
            parse_cgroup(&v2),
            (format!("cri-containerd-{id}.scope"), String::new())
        );
        let hybrid = format!("5:memory,foo:/docker/{id}\n0::/system.slice/containerd.service\n");
        assert_eq!(parse_cgroup(&hybrid), ("containerd.service".into(), id));
        assert_eq!(parse_cgroup("garbage\n"), (String::new(), String::new()));
    }

    #[test]
    fn namespace_links() {
        assert_eq!(parse_ns_link("mnt:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link("mnt:4026531840"), None);
        assert_eq!(parse_ns_link("mnt:[x]"), None);
    }

    #[test]
    fn this_process_reads_back_from_proc() {
        let proc = ProcFs::new("/proc");
        let me = std::process::id();
        match proc.exec_record(me, 1) {
            Some(Record::Exec {
                header, exe, argv, ..
            }) => {
                assert_eq!(header.pid, me);
                assert_eq!(header.ppid, std::os::unix::process::parent_id());
                assert!(exe.contains("palisade_agent"), "{exe}");
                assert!(!argv.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert!(proc.pids().contains(&me));
        assert_eq!(proc.exec_record(u32::MAX, 1), None);
    }
}
