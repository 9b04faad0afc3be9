//! The eBPF sensor on this machine's kernel: real programs, loaded and attached, watching
//! real processes. A process started in a new mount namespace (`unshare -m`) counts as a
//! container process, since the sensor is told that this test's own namespace is the
//! host's; every behaviour below is performed by such a process and must arrive as the
//! record the rules need, with the fields they read.
//!
//! Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN for unshare) and python3.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use palisade_agent::sensor::ebpf::{EbpfSensor, LoadOptions};
use palisade_agent::sensor::filters::Filters;
use palisade_agent::sensor::record::{Kind, Record, decode};

struct Harness {
    records: Arc<Mutex<Vec<Record>>>,
    own_mnt_ns: u32,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Harness {
    fn start(filters: Filters) -> Harness {
        let own_mnt_ns = std::fs::metadata("/proc/self/ns/mnt")
            .expect("this process's mount namespace")
            .ino() as u32;
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let records = records.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let sensor = match EbpfSensor::load(LoadOptions {
                    host_mnt_ns: own_mnt_ns,
                    agent_pid: std::process::id(),
                }) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return;
                    }
                };
                if let Err(e) = sensor.set_filters(&filters) {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                sensor
                    .run(
                        |bytes| {
                            let record = decode(bytes).expect("every record decodes");
                            records.lock().expect("records lock").push(record);
                        },
                        &stop,
                        |_| Ok(()),
                    )
                    .expect("the sensor runs");
            })
        };
        ready_rx
            .recv()
            .expect("the sensor thread answers")
            .unwrap_or_else(|e| panic!("the sensor did not load: {e}"));
        Harness {
            records,
            own_mnt_ns,
            stop,
            thread: Some(thread),
        }
    }

    /// Runs `args` in a new mount namespace; returns its pid (unshare execs in place).
    fn contained(&self, args: &[&str]) -> u32 {
        let mut child = Command::new("unshare")
            .arg("-m")
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("unshare runs");
        let pid = child.id();
        let status = child.wait().expect("the child ends");
        assert!(
            status.success() || args.contains(&"--may-fail"),
            "{args:?}: {status}"
        );
        pid
    }

    /// The first record within 5 s that `pick` accepts.
    fn wait_for<T>(&self, what: &str, pick: impl Fn(&Record) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(found) = self
                .records
                .lock()
                .expect("records lock")
                .iter()
                .find_map(&pick)
            {
                return found;
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = self
                    .records
                    .lock()
                    .expect("records lock")
                    .iter()
                    .rev()
                    .take(20)
                    .map(|r| format!("{:?} {}", r.kind(), r.header().comm))
                    .collect();
                panic!("no {what} within 5 s; last records: {seen:#?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn none_from(&self, pid: u32) -> bool {
        !self
            .records
            .lock()
            .expect("records lock")
            .iter()
            .any(|r| r.header().pid == pid)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn python(code: &str) -> Vec<String> {
    vec!["python3".into(), "-c".into(), code.into()]
}

fn run(h: &Harness, args: &[String]) -> u32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    h.contained(&args)
}

#[test]
fn the_sensor_reports_what_contained_processes_do() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    thread::spawn(move || for _ in listener.incoming() {});
    let dir = tempfile_dir();

    let h = Harness::start(Filters {
        kinds: Kind::ALL.into_iter().collect(),
        path_prefixes: ["/etc/sh".to_string()].into(),
        exact_paths: ["/etc/passwd".to_string()].into(),
        names: ["release_agent".to_string()].into(),
        ports: [port].into(),
        addresses: [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))].into(),
        comms: Default::default(),
        traversal: true,
    });

    // exec: arguments, the resolved executable, the namespace
    let pid = h.contained(&["/bin/sh", "-c", "exit 0"]);
    let (argv, exe, mnt) = h.wait_for("exec of sh", |r| match r {
        Record::Exec {
            header, argv, exe, ..
        } if header.pid == pid => Some((argv.clone(), exe.clone(), header.mnt_ns)),
        _ => None,
    });
    assert_eq!(argv, ["/bin/sh", "-c", "exit 0"]);
    assert!(exe.starts_with('/') && exe.ends_with("sh"), "{exe}");
    assert_ne!(mnt, h.own_mnt_ns);

    // open of a watched file, by absolute path, through ../ and relative to the cwd
    let pid = h.contained(&["cat", "/etc/passwd"]);
    h.wait_for("open /etc/passwd", |r| match r {
        Record::Open {
            header, path, raw, ..
        } if header.pid == pid && path == "/etc/passwd" => {
            assert_eq!(raw, "/etc/passwd");
            Some(())
        }
        _ => None,
    });
    let pid = h.contained(&["cat", "/tmp/../etc/passwd"]);
    h.wait_for("open through ../", |r| match r {
        Record::Open {
            header, path, raw, ..
        } if header.pid == pid => {
            (path == "/etc/passwd" && raw == "/tmp/../etc/passwd").then_some(())
        }
        _ => None,
    });
    // with the traversal flag, any open through ../ is sent, watched or not
    let pid = h.contained(&["cat", "/tmp/../etc/hostname"]);
    h.wait_for("open through ../ of an unwatched file", |r| match r {
        Record::Open { header, path, .. } if header.pid == pid => {
            (path == "/etc/hostname").then_some(())
        }
        _ => None,
    });
    let pid = h.contained(&["sh", "-c", "cd /etc && exec cat passwd >/dev/null"]);
    h.wait_for("relative open", |r| match r {
        Record::Open {
            header, path, raw, ..
        } if header.pid == pid => (path == "/etc/passwd" && raw == "passwd").then_some(()),
        _ => None,
    });
    // a prefix entry covers its descendants; unwatched paths stay in the kernel
    let pid = h.contained(&["cat", "/etc/shells", "/etc/hostname"]);
    h.wait_for("open under a watched prefix", |r| match r {
        Record::Open { header, path, .. } if header.pid == pid => {
            (path == "/etc/shells").then_some(())
        }
        _ => None,
    });
    thread::sleep(Duration::from_millis(300));
    assert!(
        !h.records
            .lock()
            .expect("records lock")
            .iter()
            .any(|r| matches!(r,
            Record::Open { header, path, .. } if header.pid == pid && path == "/etc/hostname")),
        "/etc/hostname is not watched"
    );

    // a host process is never reported
    let status = Command::new("cat")
        .arg("/etc/passwd")
        .output()
        .expect("cat runs");
    assert!(status.status.success());
    let host_pid = {
        let mut c = Command::new("cat")
            .arg("/etc/passwd")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("cat");
        let pid = c.id();
        c.wait().expect("cat ends");
        pid
    };
    thread::sleep(Duration::from_millis(300));
    assert!(h.none_from(host_pid), "a host process was reported");

    // connect to a watched port, and the socket dup'ed onto stdout
    let code = format!(
        "import socket, os\ns = socket.create_connection(('127.0.0.1', {port}))\nos.dup2(s.fileno(), 1)"
    );
    let pid = run(&h, &python(&code));
    h.wait_for("connect", |r| match r {
        Record::Connect {
            header,
            address,
            port: p,
            protocol,
        } if header.pid == pid => {
            assert_eq!(*address, IpAddr::V4(Ipv4Addr::LOCALHOST));
            assert_eq!((*p, *protocol), (port, 6));
            Some(())
        }
        _ => None,
    });
    h.wait_for("dup onto stdout", |r| match r {
        Record::Dup {
            header,
            new_fd,
            peer,
        } if header.pid == pid => {
            assert_eq!(*new_fd, 1);
            assert_eq!(*peer, Some((IpAddr::V4(Ipv4Addr::LOCALHOST), port)));
            Some(())
        }
        _ => None,
    });

    // an accepted socket dup'ed onto stdout is a server's (inetd style) and not reported;
    // the connected end, dup'ed onto stderr afterwards by the same process, is
    let code = "import socket, os\nl = socket.socket()\nl.bind(('127.0.0.1', 0))\nl.listen(1)\nc = socket.create_connection(l.getsockname())\na, _ = l.accept()\nos.dup2(a.fileno(), 1)\nos.dup2(c.fileno(), 2)";
    let pid = run(&h, &python(code));
    h.wait_for("the connected end dup'ed onto stderr", |r| match r {
        Record::Dup { header, new_fd, .. } if header.pid == pid => (*new_fd == 2).then_some(()),
        _ => None,
    });
    let accepted: Vec<u32> = h
        .records
        .lock()
        .expect("records lock")
        .iter()
        .filter_map(|r| match r {
            Record::Dup { header, new_fd, .. } if header.pid == pid => Some(*new_fd),
            _ => None,
        })
        .collect();
    assert_eq!(accepted, [2], "only the connected socket's dup is reported");

    // an exec from a memfd, and from /dev/shm
    let code = "import os\nfd = os.memfd_create('payload')\nos.write(fd, open('/bin/true', 'rb').read())\nos.execv(f'/proc/self/fd/{fd}', ['payload'])";
    let pid = run(&h, &python(code));
    h.wait_for("memfd_create", |r| match r {
        Record::Memfd { header, name } if header.pid == pid => (name == "payload").then_some(()),
        _ => None,
    });
    h.wait_for("exec from a memfd", |r| match r {
        Record::Exec {
            header, from_memfd, ..
        } if header.pid == pid => from_memfd.then_some(()),
        _ => None,
    });
    let shm = format!("/dev/shm/palisade-sensor-{}", std::process::id());
    std::fs::copy("/bin/true", &shm).expect("a binary in /dev/shm");
    let pid = h.contained(&[&shm]);
    let _ = std::fs::remove_file(&shm);
    h.wait_for("exec from /dev/shm", |r| match r {
        Record::Exec {
            header,
            exe,
            exe_ctime_ns,
            from_memfd,
            ..
        } if header.pid == pid => {
            assert_eq!(exe, &shm);
            assert!(!from_memfd);
            // written a moment ago, so its inode changed after this test began
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos() as u64;
            assert!(
                now - exe_ctime_ns < 60_000_000_000,
                "ctime {exe_ctime_ns} vs now {now}"
            );
            Some(())
        }
        _ => None,
    });

    // links, renames and removals, with the directory relative paths start from
    let d = dir.display().to_string();
    let script =
        format!("cd {d} && ln -s /etc/passwd sym && touch a && ln a hard && mv a b && rm b");
    let pid = h.contained(&["sh", "-c", &script]);
    let _ = pid;
    h.wait_for("symlink", |r| match r {
        Record::Paths {
            kind: Kind::Symlink,
            first,
            second,
            base,
            ..
        } if second == "sym" => {
            assert_eq!(first, "/etc/passwd");
            assert_eq!(base, &d);
            Some(())
        }
        _ => None,
    });
    h.wait_for("hard link", |r| match r {
        Record::Paths {
            kind: Kind::Link,
            first,
            second,
            base,
            ..
        } if base == &d => (first == "a" && second == "hard").then_some(()),
        _ => None,
    });
    h.wait_for("rename", |r| match r {
        Record::Paths {
            kind: Kind::Rename,
            first,
            second,
            base,
            ..
        } if base == &d => (first == "a" && second == "b").then_some(()),
        _ => None,
    });
    h.wait_for("unlink", |r| match r {
        Record::Paths {
            kind: Kind::Unlink,
            first,
            base,
            ..
        } if base == &d => (first == "b").then_some(()),
        _ => None,
    });

    // ptrace, a packet socket, a module load attempt
    let code = "import ctypes, socket\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.ptrace(0, 0, 0, 0)\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW)\nlibc.syscall(313, -1, b'', 0)";
    let pid = run(&h, &python(code));
    h.wait_for("ptrace(TRACEME)", |r| match r {
        Record::Ptrace {
            header, request, ..
        } if header.pid == pid => (*request == 0).then_some(()),
        _ => None,
    });
    h.wait_for("packet socket", |r| match r {
        Record::Socket { header, family, .. } if header.pid == pid => (*family == 17).then_some(()),
        _ => None,
    });
    h.wait_for("finit_module", |r| match r {
        Record::ModuleLoad(header) if header.pid == pid => (header.ret < 0).then_some(()),
        _ => None,
    });

    // fork and exit keep the process table right
    h.wait_for("exit", |r| match r {
        Record::Exit(header) if header.pid == pid => Some(()),
        _ => None,
    });
}

/// A directory of this test's own under /tmp.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = Path::new("/tmp").join(format!("palisade-sensor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
