/* The records the sensor writes to its ring buffer. The agent decodes them by these offsets
 * (agent/src/sensor/record.rs); a test there checks the sizes against this file, so change
 * both together. All fields are naturally aligned, so the layout has no hidden padding.
 */
#ifndef PALISADE_RECORDS_H
#define PALISADE_RECORDS_H

#define COMM_LEN 16
#define CGROUP_LEN 96
#define PATH_LEN 512
#define NAME_LEN 256
#define ARGS_LEN 1024

enum record_kind {
	RECORD_EXEC = 1,
	RECORD_FORK = 2,
	RECORD_EXIT = 3,
	RECORD_OPEN = 4,
	RECORD_CONNECT = 5,
	RECORD_PTRACE = 6,
	RECORD_MEMFD = 7,
	RECORD_MODULE = 8,
	RECORD_SOCKET = 9,
	RECORD_UNLINK = 10,
	RECORD_RENAME = 11,
	RECORD_LINK = 12,
	RECORD_SYMLINK = 13,
	RECORD_DUP = 14,
};

/* Hooks userspace can switch on and off (the settings map), one bit per record kind that
 * comes from a system call. */
#define HOOK_BIT(kind) (1u << (kind))

/* 280 bytes */
struct header {
	u32 kind;
	u32 size;
	u64 time_ns;       /* bpf_ktime_get_boot_ns() */
	u64 start_ns;      /* the thread group's start, since boot */
	u64 cap_effective; /* effective capabilities */
	s64 ret;           /* the system call's return value, where there is one */
	u32 pid;           /* thread-group id, host pid namespace */
	u32 tid;
	u32 ppid;          /* real parent's thread-group id */
	u32 vpid;          /* thread-group id in the task's own pid namespace */
	u32 uid;
	u32 tty;           /* controlling terminal's device number, 0 when none */
	u32 mnt_ns;        /* mount namespace inode number */
	u32 parent_mnt_ns; /* the real parent's */
	char comm[COMM_LEN];
	char cgroup[CGROUP_LEN];    /* leaf name in the unified hierarchy */
	char cgroup_v1[CGROUP_LEN]; /* leaf name in the v1 memory hierarchy */
};

#define EXEC_FROM_MEMFD 1u

struct exec_record {
	struct header h;
	u64 exe_ctime_ns; /* the executable's inode change time, ns since the epoch */
	u32 flags;        /* EXEC_FROM_MEMFD */
	u32 args_len;     /* bytes of args used: NUL-separated argv */
	char filename[NAME_LEN]; /* as passed to execve */
	char exe[PATH_LEN];      /* the executable's path, resolved */
	char args[ARGS_LEN];
};

struct open_record {
	struct header h;
	u32 flags; /* open(2) flags */
	u32 pad;
	char path[PATH_LEN]; /* resolved from the new descriptor */
	char raw[NAME_LEN];  /* as passed */
};

struct connect_record {
	struct header h;
	u16 family;
	u16 port; /* host byte order */
	u32 protocol;
	u8 addr[16]; /* IPv4 in the first 4 bytes */
};

struct ptrace_record {
	struct header h;
	u64 request;
	u32 target;
	u32 pad;
};

struct memfd_record {
	struct header h;
	u32 flags;
	u32 pad;
	char name[NAME_LEN];
};

struct socket_record {
	struct header h;
	u32 family;
	u32 type;
	u32 protocol;
	u32 pad;
};

/* unlink, rename, link, symlink: paths as passed, and the directory relative ones start
 * from (the working directory, or the directory descriptor's path). */
struct paths_record {
	struct header h;
	char first[PATH_LEN];  /* unlink: the path; rename/link: the old path; symlink: the target */
	char second[PATH_LEN]; /* rename/link/symlink: the new path */
	char base[PATH_LEN];   /* for relative paths */
};

struct dup_record {
	struct header h;
	u32 new_fd;
	u16 family; /* 0 when the duplicated descriptor is not an inet socket */
	u16 port;
	u8 addr[16];
};

/* The agent decodes by these sizes (agent/src/sensor/record.rs). */
_Static_assert(sizeof(struct header) == 280, "header layout");
_Static_assert(sizeof(struct exec_record) == 2088, "exec_record layout");
_Static_assert(sizeof(struct open_record) == 1056, "open_record layout");
_Static_assert(sizeof(struct connect_record) == 304, "connect_record layout");
_Static_assert(sizeof(struct ptrace_record) == 296, "ptrace_record layout");
_Static_assert(sizeof(struct memfd_record) == 544, "memfd_record layout");
_Static_assert(sizeof(struct socket_record) == 296, "socket_record layout");
_Static_assert(sizeof(struct paths_record) == 1816, "paths_record layout");
_Static_assert(sizeof(struct dup_record) == 304, "dup_record layout");

#endif
