//! What the node sensor saw one process do, as plain data. The agent builds these from the
//! kernel's records (or, in the fallback, from the process connector and /proc); the runtime
//! rules judge them without any I/O.

use std::net::IpAddr;

/// One thing a container process did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeEvent {
    /// Nanoseconds since the Unix epoch at which the kernel saw it.
    pub time_ns: u64,
    /// The process that did it, as it was at that moment.
    pub process: Process,
    /// What it did.
    pub action: Action,
}

/// A process, captured when the event happened so that short-lived processes keep their
/// fields after they exit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    /// Thread-group id in the host's pid namespace.
    pub pid: u32,
    /// Thread-group id inside the container's pid namespace (1 for the entrypoint).
    pub vpid: u32,
    /// Parent's thread-group id in the host's pid namespace (0 when unknown).
    pub ppid: u32,
    /// Real user id, as seen in the container's user namespace.
    pub uid: u32,
    /// Executable's file name, as the kernel's `comm` (at most 15 bytes): Falco's `proc.name`.
    pub name: String,
    /// Absolute path of the executable: Falco's `proc.exepath`.
    pub exe: String,
    /// Arguments after argv[0], bounded by the sensor: Falco's `proc.args`.
    pub args: Vec<String>,
    /// Working directory, when the sensor could read it.
    pub cwd: Option<String>,
    /// Controlling terminal's device number; 0 when there is none (Falco's `proc.tty`).
    pub tty: u32,
    /// Parent's name (`proc.pname`); `None` when the parent is outside the container, as
    /// for an entrypoint or a process started by `kubectl exec`.
    pub parent_name: Option<String>,
    /// Names of the grandparent and further ancestors inside the container, nearest first
    /// (`proc.aname[2]`, `proc.aname[3]`, …), bounded by the sensor.
    pub ancestors: Vec<String>,
    /// The executable was written or changed after its container started, so it is not part
    /// of the image (Falco's `proc.is_exe_upper_layer`).
    pub exe_written_after_start: bool,
    /// The executable is an anonymous memory file (memfd), not a file on any filesystem.
    pub exe_from_memfd: bool,
    /// Effective capabilities, as the kernel's bit mask (bit n = capability n).
    pub cap_effective: u64,
    /// Nanoseconds since the Unix epoch at which this process was started (its exec).
    pub started_ns: u64,
    /// The container it runs in: the runtime's id (64 hex digits for containerd, CRI-O and
    /// Docker).
    pub container_id: String,
}

/// Linux capability numbers the rules look at.
pub mod cap {
    pub const DAC_OVERRIDE: u32 = 1;
    pub const SYS_MODULE: u32 = 16;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
}

impl Process {
    /// Whether the process holds capability `cap` (see [`cap`]) in its effective set.
    pub fn has_capability(&self, cap: u32) -> bool {
        cap < 64 && self.cap_effective & (1 << cap) != 0
    }
}

/// What a process did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// It was started by execve/execveat; the process fields describe the new program.
    Exec,
    /// It opened a file.
    Open(Open),
    /// It connected a socket to a remote address.
    Connect(Connect),
    /// It called ptrace.
    Ptrace {
        request: PtraceRequest,
        target_pid: u32,
    },
    /// It created an anonymous memory file.
    MemfdCreate { name: String },
    /// It loaded a kernel module (init_module or finit_module).
    ModuleLoad,
    /// It created a socket.
    Socket {
        family: u16,
        kind: u16,
        protocol: u16,
    },
    /// It removed a file or directory (unlink, unlinkat, rmdir).
    Unlink { path: String },
    /// It renamed a file.
    Rename { from: String, to: String },
    /// It created a link: `path` is the new name, `target` what it points at.
    Link {
        target: String,
        path: String,
        symbolic: bool,
    },
    /// It duplicated a descriptor onto another (dup2/dup3/dup with the lowest free number):
    /// `new_fd` is the number it now also has; `socket` is set when the duplicated
    /// descriptor is a network socket.
    Dup {
        new_fd: u32,
        socket: Option<SocketPeer>,
    },
}

/// An opened file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Open {
    /// The absolute path the kernel resolved (Falco's `fd.name`).
    pub path: String,
    /// The path as the process passed it (Falco's `fd.nameraw`), e.g. with `../`.
    pub raw_path: String,
    /// Opened for reading (O_RDONLY or O_RDWR).
    pub read: bool,
    /// Opened for writing (O_WRONLY or O_RDWR).
    pub write: bool,
    /// O_CREAT.
    pub create: bool,
    /// O_TRUNC.
    pub truncate: bool,
}

/// An outbound connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    pub address: IpAddr,
    pub port: u16,
    /// IPPROTO_TCP (6) or IPPROTO_UDP (17).
    pub protocol: u8,
}

/// The far end of a connected socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketPeer {
    pub address: IpAddr,
    pub port: u16,
}

/// The ptrace requests the rules tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtraceRequest {
    /// PTRACE_TRACEME: the caller asks to be traced, the usual anti-debugging trick.
    TraceMe,
    /// PTRACE_ATTACH or PTRACE_SEIZE: the caller attaches to another process.
    Attach,
    /// PTRACE_POKETEXT, PTRACE_POKEDATA or PTRACE_POKEUSER: the caller writes into another
    /// process.
    Poke,
    /// Any other request.
    Other(u32),
}

/// Socket families and types the rules look at.
pub mod socket {
    pub const AF_INET: u16 = 2;
    pub const AF_INET6: u16 = 10;
    pub const AF_PACKET: u16 = 17;
    pub const SOCK_STREAM: u16 = 1;
    pub const SOCK_DGRAM: u16 = 2;
    pub const SOCK_RAW: u16 = 3;
}
