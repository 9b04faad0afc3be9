//! Table tests of the runtime rules: for each rule, events it must match and near misses it
//! must not (mostly the cases Falco's exceptions exist for).

mod rules;

use std::net::IpAddr;

use super::event::*;
use super::facts::{ClusterFacts, PodFacts};

/// An event with its pod and cluster, built up case by case.
#[derive(Clone, Debug)]
pub(super) struct Case {
    pub(super) event: RuntimeEvent,
    pub(super) pod: PodFacts,
    pub(super) cluster: ClusterFacts,
}

/// Seconds since the epoch at which test events happen.
pub(super) const NOW_S: u64 = 1_780_000_000;

pub(super) fn pod() -> PodFacts {
    PodFacts {
        namespace: "shop".into(),
        pod_name: "web-1".into(),
        labels: [("app".to_owned(), "web".to_owned())].into(),
        namespace_labels: Default::default(),
        service_account: "default".into(),
        container_name: "app".into(),
        image: "docker.io/library/nginx:1.25".into(),
        privileged: false,
    }
}

pub(super) fn cluster() -> ClusterFacts {
    ClusterFacts {
        api_server: vec![
            "10.96.0.1:443".parse().expect("address"),
            "192.168.1.10:6443".parse().expect("address"),
        ],
    }
}

fn case(name: &str, action: Action) -> Case {
    Case {
        event: RuntimeEvent {
            time_ns: NOW_S * 1_000_000_000,
            process: Process {
                pid: 4100,
                vpid: 42,
                ppid: 4000,
                uid: 1000,
                name: name.into(),
                exe: format!("/usr/bin/{name}"),
                parent_name: Some("node".into()),
                // Started a minute before the event.
                started_ns: (NOW_S - 60) * 1_000_000_000,
                container_id: "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100"
                    .into(),
                ..Process::default()
            },
            action,
        },
        pod: pod(),
        cluster: cluster(),
    }
}

/// `name` executed with `args`.
pub(super) fn exec(name: &str, args: &[&str]) -> Case {
    case(name, Action::Exec).args(args)
}

/// `name` opening `path`; `flags` has `r`, `w`, `c` (create), `t` (truncate).
pub(super) fn open(name: &str, path: &str, flags: &str) -> Case {
    case(
        name,
        Action::Open(Open {
            path: path.into(),
            raw_path: path.into(),
            read: flags.contains('r'),
            write: flags.contains('w'),
            create: flags.contains('c'),
            truncate: flags.contains('t'),
        }),
    )
}

/// `name` connecting to `address:port` over TCP.
pub(super) fn connect(name: &str, address: &str, port: u16) -> Case {
    case(
        name,
        Action::Connect(Connect {
            address: address.parse::<IpAddr>().expect("address"),
            port,
            protocol: 6,
        }),
    )
}

/// `name` doing `action`.
pub(super) fn act(name: &str, action: Action) -> Case {
    case(name, action)
}

impl Case {
    pub(super) fn args(mut self, args: &[&str]) -> Case {
        self.event.process.args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    pub(super) fn exe(mut self, exe: &str) -> Case {
        self.event.process.exe = exe.into();
        self
    }

    pub(super) fn parent(mut self, parent: Option<&str>) -> Case {
        self.event.process.parent_name = parent.map(str::to_owned);
        self
    }

    pub(super) fn ancestors(mut self, ancestors: &[&str]) -> Case {
        self.event.process.ancestors = ancestors.iter().map(|a| a.to_string()).collect();
        self
    }

    pub(super) fn tty(mut self, tty: u32) -> Case {
        self.event.process.tty = tty;
        self
    }

    pub(super) fn cwd(mut self, cwd: &str) -> Case {
        self.event.process.cwd = Some(cwd.into());
        self
    }

    pub(super) fn uid(mut self, uid: u32) -> Case {
        self.event.process.uid = uid;
        self
    }

    pub(super) fn caps(mut self, caps: &[u32]) -> Case {
        self.event.process.cap_effective = caps.iter().fold(0, |m, c| m | 1 << c);
        self
    }

    pub(super) fn written_after_start(mut self) -> Case {
        self.event.process.exe_written_after_start = true;
        self
    }

    pub(super) fn memfd_exe(mut self) -> Case {
        self.event.process.exe_from_memfd = true;
        self
    }

    /// The process started `s` seconds before the event.
    pub(super) fn age(mut self, s: u64) -> Case {
        self.event.process.started_ns = self.event.time_ns - s * 1_000_000_000;
        self
    }

    pub(super) fn raw_path(mut self, raw: &str) -> Case {
        if let Action::Open(o) = &mut self.event.action {
            o.raw_path = raw.into();
        }
        self
    }

    pub(super) fn protocol(mut self, protocol: u8) -> Case {
        if let Action::Connect(c) = &mut self.event.action {
            c.protocol = protocol;
        }
        self
    }

    pub(super) fn image(mut self, image: &str) -> Case {
        self.pod.image = image.into();
        self
    }

    pub(super) fn namespace(mut self, ns: &str) -> Case {
        self.pod.namespace = ns.into();
        self
    }

    pub(super) fn privileged(mut self) -> Case {
        self.pod.privileged = true;
        self
    }
}
