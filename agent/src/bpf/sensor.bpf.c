// SPDX-License-Identifier: GPL-2.0
/* Palisade's node sensor: what container processes do, filtered in the kernel to what
 * some runtime rule needs, written to one ring buffer.
 *
 * Only BTF raw tracepoints (tp_btf) are used: they need no tracefs and attach the same way
 * on every kernel from 5.8 with BTF, on x86_64 and arm64.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "records.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the agent before loading. */
const volatile u32 host_mnt_ns = 0; /* the host's mount namespace: not a container */
const volatile u32 agent_pid = 0;   /* the agent's own thread group */

struct settings {
	u32 hooks; /* HOOK_BIT(kind) for each system-call record wanted */
	u32 flags; /* SEND_TRAVERSAL */
};

/* Send every open whose path as passed contains "..", wherever it leads. */
#define SEND_TRAVERSAL 1u

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct settings);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* Sockets a container process accepted. A server that hands a connection to its child's
 * stdin and stdout (inetd style: busybox httpd, CGI) is not a reverse shell, which
 * connects out; the peer's address and the ports guard against a reused pointer. */
struct accepted_key {
	u64 sk;
	u32 ports; /* peer port << 16 | local port */
	u32 peer;  /* IPv4 peer, or the last 4 bytes of an IPv6 one */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct accepted_key);
	__type(value, u8);
} accepted SEC(".maps");

/* [0]: records lost because the ring buffer was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} dropped SEC(".maps");

/* Path prefixes some rule cares about, longest-prefix matched: an entry of n bytes matches
 * every path that starts with them; an entry that ends in its NUL matches that path only. */
#define KEY_LEN 64
struct path_key {
	u32 prefixlen; /* in bits */
	u8 data[KEY_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__type(key, struct path_key);
	__type(value, u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} watched_paths SEC(".maps");

/* File names (last component) some rule cares about wherever they are, e.g.
 * release_agent. */
struct name_key {
	char name[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct name_key);
	__type(value, u8);
} watched_names SEC(".maps");

/* Remote ports whose connections some rule cares about (host byte order). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, u16);
	__type(value, u8);
} watched_ports SEC(".maps");

/* Remote addresses (IPv4 in the first 4 bytes) whose connections some rule cares about. */
struct addr_key {
	u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct addr_key);
	__type(value, u8);
} watched_addrs SEC(".maps");

/* Process names whose every connection some rule cares about (e.g. ssh). */
struct comm_key {
	char comm[COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct comm_key);
	__type(value, u8);
} watched_comms SEC(".maps");

/* Room to build a path backwards, component by component. Half of it is the path's
 * maximum; the other half keeps every write inside the buffer for the verifier. */
#define HALF 4096
#define MAX_COMPONENTS 32
struct scratch {
	char buf[HALF * 2];
	struct path_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* System call numbers, per architecture. */
#if defined(__TARGET_ARCH_x86)
#define NR_open 2
#define NR_openat 257
#define NR_openat2 437
#define NR_connect 42
#define NR_ptrace 101
#define NR_memfd_create 319
#define NR_init_module 175
#define NR_finit_module 313
#define NR_socket 41
#define NR_unlink 87
#define NR_unlinkat 263
#define NR_rmdir 84
#define NR_rename 82
#define NR_renameat 264
#define NR_renameat2 316
#define NR_link 86
#define NR_linkat 265
#define NR_symlink 88
#define NR_symlinkat 266
#define NR_dup 32
#define NR_dup2 33
#define NR_dup3 292
#define NR_accept 43
#define NR_accept4 288
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#define ARG1(regs) BPF_CORE_READ(regs, di)
#define ARG2(regs) BPF_CORE_READ(regs, si)
#define ARG3(regs) BPF_CORE_READ(regs, dx)
#define ARG4(regs) BPF_CORE_READ(regs, r10)
#define ARG5(regs) BPF_CORE_READ(regs, r8)
#elif defined(__TARGET_ARCH_arm64)
/* arm64 has only the *at forms; -1 never matches a system call number. */
#define NR_open -1
#define NR_openat 56
#define NR_openat2 437
#define NR_connect 203
#define NR_ptrace 117
#define NR_memfd_create 279
#define NR_init_module 105
#define NR_finit_module 273
#define NR_socket 198
#define NR_unlink -1
#define NR_unlinkat 35
#define NR_rmdir -1
#define NR_rename -1
#define NR_renameat 38
#define NR_renameat2 276
#define NR_link -1
#define NR_linkat 37
#define NR_symlink -1
#define NR_symlinkat 36
#define NR_dup 23
#define NR_dup2 -1
#define NR_dup3 24
#define NR_accept 202
#define NR_accept4 242
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, syscallno)
/* x0 holds the return value at exit; the first argument is kept in orig_x0. */
#define ARG1(regs) BPF_CORE_READ(regs, orig_x0)
#define ARG2(regs) BPF_CORE_READ(regs, regs[1])
#define ARG3(regs) BPF_CORE_READ(regs, regs[2])
#define ARG4(regs) BPF_CORE_READ(regs, regs[3])
#define ARG5(regs) BPF_CORE_READ(regs, regs[4])
#endif

#define AT_FDCWD -100
#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define S_IFMT 00170000
#define S_IFSOCK 0140000

static __always_inline u32 task_mnt_ns(struct task_struct *t)
{
	return BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
}

/* A container process: in a mount namespace other than the host's, and not the agent.
 * Userspace then keeps only those whose cgroup names a container. */
static __always_inline bool is_container(struct task_struct *t, u32 tgid)
{
	u32 mnt = task_mnt_ns(t);
	return mnt != 0 && mnt != host_mnt_ns && tgid != agent_pid;
}

static __always_inline bool hook_on(u32 kind)
{
	u32 zero = 0;
	struct settings *c = bpf_map_lookup_elem(&settings, &zero);
	return c && (c->hooks & HOOK_BIT(kind));
}

static __always_inline bool flag_on(u32 flag)
{
	u32 zero = 0;
	struct settings *c = bpf_map_lookup_elem(&settings, &zero);
	return c && (c->flags & flag);
}

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	struct kernfs_node___v510 *old = (void *)kn;
	return BPF_CORE_READ(old, parent);
}

static __always_inline void cgroup_names(struct task_struct *t, struct header *h)
{
	struct css_set *cs = BPF_CORE_READ(t, cgroups);
	struct kernfs_node *kn = BPF_CORE_READ(cs, dfl_cgrp, kn);
	if (kn && kn_parent(kn))
		bpf_probe_read_kernel_str(h->cgroup, sizeof(h->cgroup), BPF_CORE_READ(kn, name));

	int id = 0;
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css = NULL;
	void *slots = (void *)cs + bpf_core_field_offset(struct css_set, subsys);
	bpf_probe_read_kernel(&css, sizeof(css), slots + (id & 15) * sizeof(void *));
	if (css) {
		kn = BPF_CORE_READ(css, cgroup, kn);
		if (kn && kn_parent(kn))
			bpf_probe_read_kernel_str(h->cgroup_v1, sizeof(h->cgroup_v1),
						  BPF_CORE_READ(kn, name));
	}
}

static __always_inline u32 task_vpid(struct task_struct *t)
{
	struct pid *p = BPF_CORE_READ(t, group_leader, thread_pid);
	if (!p)
		return 0;
	unsigned int level = BPF_CORE_READ(p, level);
	struct upid up = {};
	void *numbers = (void *)p + bpf_core_field_offset(struct pid, numbers);
	bpf_probe_read_kernel(&up, sizeof(up), numbers + (level & 31) * sizeof(struct upid));
	return up.nr;
}

static __always_inline u32 task_tty(struct task_struct *t)
{
	struct tty_struct *tty = BPF_CORE_READ(t, signal, tty);
	if (!tty)
		return 0;
	int major = BPF_CORE_READ(tty, driver, major);
	int minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
	return ((u32)major << 20) | ((u32)minor & 0xfffff);
}

static __always_inline void fill_header(struct header *h, u32 kind, u32 size,
					struct task_struct *t, s64 ret)
{
	h->kind = kind;
	h->size = size;
	h->time_ns = bpf_ktime_get_boot_ns();
	h->start_ns = BPF_CORE_READ(t, group_leader, start_boottime);
	BPF_CORE_READ_INTO(&h->cap_effective, t, cred, cap_effective);
	h->ret = ret;
	h->pid = BPF_CORE_READ(t, tgid);
	h->tid = BPF_CORE_READ(t, pid);
	h->ppid = BPF_CORE_READ(t, real_parent, tgid);
	h->vpid = task_vpid(t);
	h->uid = BPF_CORE_READ(t, cred, uid.val);
	h->tty = task_tty(t);
	h->mnt_ns = task_mnt_ns(t);
	h->parent_mnt_ns = BPF_CORE_READ(t, real_parent, nsproxy, mnt_ns, ns.inum);
	BPF_CORE_READ_STR_INTO(&h->comm, t, comm);
	h->cgroup[0] = 0;
	h->cgroup_v1[0] = 0;
	cgroup_names(t, h);
}

static __always_inline struct scratch *get_scratch(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&scratch_map, &zero);
}

/* Writes the absolute path of `p`, as the task whose root is `root` sees it, into the
 * scratch buffer, ending at HALF - 1; returns where it starts. Mount points are crossed
 * upwards until the root (the task's, or its namespace's). */
static __always_inline u32 build_path(struct scratch *s, struct path *p, struct path *root)
{
	struct dentry *dentry = BPF_CORE_READ(p, dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(p, mnt);
	struct dentry *root_dentry = BPF_CORE_READ(root, dentry);
	struct vfsmount *root_mnt = BPF_CORE_READ(root, mnt);
	struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	u32 off = HALF;
	bool wrote = false;

	for (int i = 0; i < MAX_COMPONENTS; i++) {
		if (dentry == root_dentry && vfsmnt == root_mnt)
			break;
		struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		if (dentry == mnt_root || dentry == parent) {
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (dentry != mnt_root || mnt_parent == mnt)
				break; /* the top of the filesystem tree */
			/* Up from this mount's root to where it is mounted. */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			vfsmnt = (void *)mnt + bpf_core_field_offset(struct mount, mnt);
			continue;
		}
		struct qstr name = BPF_CORE_READ(dentry, d_name);
		u32 len = (name.len + 1) & (HALF - 1);
		if (len > off)
			break;
		u32 at = off - len;
		long n = bpf_probe_read_kernel_str(&s->buf[at & (HALF - 1)], len, name.name);
		if (n > 1) {
			off = at;
			/* Replace the name's NUL with the separator that follows it. */
			s->buf[(off + n - 1) & (HALF * 2 - 1)] = '/';
			wrote = true;
		}
		dentry = parent;
	}
	if (!wrote) {
		off = HALF - 2;
		s->buf[HALF - 2] = '/';
		s->buf[HALF - 1] = 0;
		return off;
	}
	/* The leading slash, and the trailing separator becomes the end. */
	off = (off - 1) & (HALF - 1);
	s->buf[off] = '/';
	s->buf[HALF - 1] = 0;
	return off;
}

/* The path of `p` for the current task, into `out` (PATH_LEN bytes). */
static __always_inline void resolve_path(struct task_struct *t, struct path *p, char *out)
{
	struct scratch *s = get_scratch();
	if (!s)
		return;
	struct path root = {};
	BPF_CORE_READ_INTO(&root, t, fs, root);
	u32 off = build_path(s, p, &root);
	bpf_probe_read_kernel_str(out, PATH_LEN, &s->buf[off & (HALF - 1)]);
}

static __always_inline struct file *task_file(struct task_struct *t, u32 fd)
{
	struct file **fds = BPF_CORE_READ(t, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(t, files, fdt, max_fds);
	struct file *f = NULL;
	if (fd >= max)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* Whether a path (NUL-terminated within KEY_LEN, or longer) falls under a watched prefix. */
static __always_inline bool path_watched(struct scratch *s, const char *path)
{
	__builtin_memset(&s->key, 0, sizeof(s->key));
	s->key.prefixlen = KEY_LEN * 8;
	bpf_probe_read_kernel(s->key.data, KEY_LEN, path);
	return bpf_map_lookup_elem(&watched_paths, &s->key) != NULL;
}

static __always_inline bool name_watched(struct file *f)
{
	struct name_key k = {};
	const unsigned char *name = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	bpf_probe_read_kernel_str(k.name, sizeof(k.name), name);
	return bpf_map_lookup_elem(&watched_names, &k) != NULL;
}

static __always_inline bool has_dotdot(const char *raw, long len)
{
	for (int i = 0; i < NAME_LEN - 1; i++) {
		if (i + 1 >= len)
			break;
		if (raw[i & (NAME_LEN - 1)] == '.' && raw[(i + 1) & (NAME_LEN - 1)] == '.')
			return true;
	}
	return false;
}

static __always_inline void reserve_failed(void)
{
	u32 zero = 0;
	u64 *n = bpf_map_lookup_elem(&dropped, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* The reader drains the ring on a short timer and is woken only when a backlog builds up:
 * a wake-up per record costs the traced process a cross-CPU interrupt on every exec. */
#define WAKEUP_BACKLOG (1024 * 1024)

static __always_inline void submit(void *r)
{
	u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > WAKEUP_BACKLOG ?
			    BPF_RB_FORCE_WAKEUP :
			    BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(r, flags);
}

#define RESERVE(type)                                                          \
	({                                                                     \
		type *r_ = bpf_ringbuf_reserve(&events, sizeof(type), 0);     \
		if (!r_)                                                       \
			reserve_failed();                                      \
		r_;                                                            \
	})

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, u32 old_pid, struct linux_binprm *bprm)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	u32 tgid = BPF_CORE_READ(t, tgid);
	if (!is_container(t, tgid))
		return 0;
	struct exec_record *r = RESERVE(struct exec_record);
	if (!r)
		return 0;
	fill_header(&r->h, RECORD_EXEC, sizeof(*r), t, 0);

	bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), BPF_CORE_READ(bprm, filename));
	struct file *exe = BPF_CORE_READ(bprm, file);
	struct path exe_path = {};
	BPF_CORE_READ_INTO(&exe_path, exe, f_path);
	r->exe[0] = 0;
	resolve_path(t, &exe_path, r->exe);

	struct inode *ino = BPF_CORE_READ(exe, f_inode);
	if (bpf_core_field_exists(ino->i_ctime_sec)) {
		/* From 6.13 the top bit of the nanoseconds is a flag (I_CTIME_QUERIED). */
		r->exe_ctime_ns = BPF_CORE_READ(ino, i_ctime_sec) * 1000000000ull +
				  (BPF_CORE_READ(ino, i_ctime_nsec) & 0x3fffffff);
	} else {
		struct inode___v66 *i66 = (void *)ino;
		struct inode___v510 *i510 = (void *)ino;
		struct timespec64 ts = {};
		if (bpf_core_field_exists(i66->__i_ctime))
			BPF_CORE_READ_INTO(&ts, i66, __i_ctime);
		else
			BPF_CORE_READ_INTO(&ts, i510, i_ctime);
		r->exe_ctime_ns = ts.tv_sec * 1000000000ull + ts.tv_nsec;
	}

	/* A memfd's file is named "memfd:<name>" on the kernel's internal shm mount. */
	char prefix[7] = {};
	bpf_probe_read_kernel_str(prefix, sizeof(prefix), BPF_CORE_READ(exe, f_path.dentry, d_name.name));
	r->flags = (prefix[0] == 'm' && prefix[1] == 'e' && prefix[2] == 'm' && prefix[3] == 'f' &&
		    prefix[4] == 'd' && prefix[5] == ':') ? EXEC_FROM_MEMFD : 0;

	unsigned long start = BPF_CORE_READ(t, mm, arg_start);
	unsigned long end = BPF_CORE_READ(t, mm, arg_end);
	unsigned long len = end > start ? end - start : 0;
	if (len > ARGS_LEN - 1)
		len = ARGS_LEN - 1;
	r->args_len = 0;
	if (len && bpf_probe_read_user(r->args, len & (ARGS_LEN - 1), (void *)start) == 0)
		r->args_len = len;
	submit(r);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	/* New processes only, not threads. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (!is_container(child, BPF_CORE_READ(child, tgid)))
		return 0;
	struct header *r = RESERVE(struct header);
	if (!r)
		return 0;
	fill_header(r, RECORD_FORK, sizeof(*r), child, 0);
	submit(r);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	if (BPF_CORE_READ(t, pid) != BPF_CORE_READ(t, tgid))
		return 0;
	u32 tgid = BPF_CORE_READ(t, tgid);
	/* The namespaces may already be released here: then userspace drops what it does not
	 * know. */
	u32 mnt = task_mnt_ns(t);
	if (mnt == host_mnt_ns || tgid == agent_pid)
		return 0;
	struct header *r = RESERVE(struct header);
	if (!r)
		return 0;
	fill_header(r, RECORD_EXIT, sizeof(*r), t, 0);
	submit(r);
	return 0;
}

static __always_inline int handle_open(struct task_struct *t, struct pt_regs *regs, long nr,
				       long ret)
{
	if (ret < 0 || !hook_on(RECORD_OPEN))
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	const char *user_path;
	u32 flags;
	if (nr == NR_open) {
		user_path = (const char *)ARG1(regs);
		flags = ARG2(regs);
	} else if (nr == NR_openat) {
		user_path = (const char *)ARG2(regs);
		flags = ARG3(regs);
	} else {
		user_path = (const char *)ARG2(regs);
		u64 how_flags = 0;
		bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)ARG3(regs));
		flags = how_flags;
	}
	/* The raw path goes into the scratch buffer's second half first: cheap checks decide
	 * whether the path is worth resolving. */
	char *raw = &s->buf[HALF];
	long raw_len = bpf_probe_read_user_str(raw, NAME_LEN, user_path);
	if (raw_len <= 0)
		return 0;
	struct file *f = task_file(t, ret);
	if (!f)
		return 0;
	bool absolute = raw[0] == '/';
	bool traversal = has_dotdot(raw, raw_len);
	if (absolute && !traversal && !path_watched(s, raw) && !name_watched(f))
		return 0;

	struct open_record *r = RESERVE(struct open_record);
	if (!r)
		return 0;
	/* Copied out before resolving, which reuses the scratch buffer. */
	bpf_probe_read_kernel_str(r->raw, sizeof(r->raw), raw);
	struct path fpath = {};
	BPF_CORE_READ_INTO(&fpath, f, f_path);
	r->path[0] = 0;
	resolve_path(t, &fpath, r->path);
	if ((!absolute || traversal) && !(traversal && flag_on(SEND_TRAVERSAL)) &&
	    !path_watched(s, r->path) && !name_watched(f)) {
		bpf_ringbuf_discard(r, 0);
		return 0;
	}
	fill_header(&r->h, RECORD_OPEN, sizeof(*r), t, ret);
	r->flags = flags;
	submit(r);
	return 0;
}

static __always_inline int handle_connect(struct task_struct *t, struct pt_regs *regs, long ret)
{
	/* -EINPROGRESS: a non-blocking connect under way. */
	if ((ret < 0 && ret != -115) || !hook_on(RECORD_CONNECT))
		return 0;
	struct {
		u16 family;
		u16 port; /* network order */
		u8 v4[4];
		u32 flowinfo;
		u8 v6[16];
	} sa = {};
	bpf_probe_read_user(&sa, sizeof(sa), (void *)ARG2(regs));
	if (sa.family != AF_INET && sa.family != AF_INET6)
		return 0;
	struct addr_key a = {};
	if (sa.family == AF_INET)
		__builtin_memcpy(a.addr, sa.v4, 4);
	else
		__builtin_memcpy(a.addr, sa.v6, 16);
	u16 port = __builtin_bswap16(sa.port);
	struct comm_key c = {};
	bpf_get_current_comm(c.comm, sizeof(c.comm));
	if (!bpf_map_lookup_elem(&watched_ports, &port) && !bpf_map_lookup_elem(&watched_addrs, &a) &&
	    !bpf_map_lookup_elem(&watched_comms, &c))
		return 0;
	struct connect_record *r = RESERVE(struct connect_record);
	if (!r)
		return 0;
	fill_header(&r->h, RECORD_CONNECT, sizeof(*r), t, ret);
	r->family = sa.family;
	r->port = port;
	r->protocol = 0;
	struct file *f = task_file(t, ARG1(regs));
	if (f) {
		struct socket *sock = BPF_CORE_READ(f, private_data);
		short type = BPF_CORE_READ(sock, type);
		r->protocol = type == 1 ? 6 : type == 2 ? 17 : 0;
	}
	__builtin_memcpy(r->addr, a.addr, 16);
	submit(r);
	return 0;
}

/* The directory a relative path starts from: the descriptor's, or the working directory. */
static __always_inline void base_dir(struct task_struct *t, long dirfd, char *out)
{
	struct path p = {};
	if (dirfd == AT_FDCWD) {
		BPF_CORE_READ_INTO(&p, t, fs, pwd);
	} else {
		struct file *f = task_file(t, dirfd);
		if (!f)
			return;
		BPF_CORE_READ_INTO(&p, f, f_path);
	}
	resolve_path(t, &p, out);
}

static __always_inline int handle_paths(struct task_struct *t, struct pt_regs *regs, long nr,
					long ret)
{
	u32 kind;
	long dirfd = AT_FDCWD;
	const char *first, *second = NULL;
	if (nr == NR_unlink || nr == NR_rmdir) {
		kind = RECORD_UNLINK;
		first = (const char *)ARG1(regs);
	} else if (nr == NR_unlinkat) {
		kind = RECORD_UNLINK;
		dirfd = (int)ARG1(regs);
		first = (const char *)ARG2(regs);
	} else if (nr == NR_rename || nr == NR_link) {
		kind = nr == NR_rename ? RECORD_RENAME : RECORD_LINK;
		first = (const char *)ARG1(regs);
		second = (const char *)ARG2(regs);
	} else if (nr == NR_renameat || nr == NR_renameat2 || nr == NR_linkat) {
		/* Both paths are taken relative to the first directory descriptor; a second,
		 * different one is rare enough to leave to the absolute-path case. */
		kind = nr == NR_linkat ? RECORD_LINK : RECORD_RENAME;
		dirfd = (int)ARG1(regs);
		first = (const char *)ARG2(regs);
		second = (const char *)ARG4(regs);
	} else if (nr == NR_symlink) {
		kind = RECORD_SYMLINK;
		first = (const char *)ARG1(regs);
		second = (const char *)ARG2(regs);
	} else {
		kind = RECORD_SYMLINK;
		first = (const char *)ARG1(regs);
		dirfd = (int)ARG2(regs);
		second = (const char *)ARG3(regs);
	}
	if (ret != 0 || !hook_on(kind))
		return 0;
	struct paths_record *r = RESERVE(struct paths_record);
	if (!r)
		return 0;
	fill_header(&r->h, kind, sizeof(*r), t, ret);
	r->first[0] = 0;
	r->second[0] = 0;
	r->base[0] = 0;
	bpf_probe_read_user_str(r->first, sizeof(r->first), first);
	if (second)
		bpf_probe_read_user_str(r->second, sizeof(r->second), second);
	if (r->first[0] != '/' || (second && r->second[0] != '/'))
		base_dir(t, dirfd, r->base);
	submit(r);
	return 0;
}

static __always_inline struct accepted_key accepted_key(struct sock *sk)
{
	struct accepted_key k = {};
	k.sk = (u64)sk;
	k.ports = ((u32)BPF_CORE_READ(sk, __sk_common.skc_dport) << 16) |
		  BPF_CORE_READ(sk, __sk_common.skc_num);
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET)
		k.peer = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	else
		BPF_CORE_READ_INTO(&k.peer, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32[3]);
	return k;
}

static __always_inline int handle_accept(struct task_struct *t, long ret)
{
	/* Only the rule that reads duplicates onto stdio needs to know. */
	if (ret < 0 || !hook_on(RECORD_DUP))
		return 0;
	struct file *f = task_file(t, ret);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	/* Unix sockets never reach the rule; they would only crowd the map. */
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	struct accepted_key k = accepted_key(sk);
	u8 one = 1;
	bpf_map_update_elem(&accepted, &k, &one, BPF_ANY);
	return 0;
}

static __always_inline int handle_dup(struct task_struct *t, struct pt_regs *regs, long ret)
{
	/* Only duplicates onto stdin, stdout or stderr matter. */
	if (ret < 0 || ret > 2 || !hook_on(RECORD_DUP))
		return 0;
	struct file *f = task_file(t, ret);
	if (!f)
		return 0;
	unsigned short mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	struct accepted_key k = accepted_key(sk);
	if (bpf_map_lookup_elem(&accepted, &k))
		return 0;
	struct dup_record *r = RESERVE(struct dup_record);
	if (!r)
		return 0;
	fill_header(&r->h, RECORD_DUP, sizeof(*r), t, ret);
	r->new_fd = ret;
	r->family = family;
	r->port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__builtin_memset(r->addr, 0, sizeof(r->addr));
	if (family == AF_INET) {
		u32 v4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(r->addr, &v4, 4);
	} else {
		BPF_CORE_READ_INTO(&r->addr, sk, __sk_common.skc_v6_daddr);
	}
	submit(r);
	return 0;
}

/* Not a record: an accepted socket is only remembered (see handle_accept). */
#define KIND_ACCEPT 0x100

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = SYSCALL_NR(regs);
	u32 kind;
	/* The cheapest test first: most system calls are none of these. */
	if (nr == NR_openat || nr == NR_open || nr == NR_openat2)
		kind = RECORD_OPEN;
	else if (nr == NR_connect)
		kind = RECORD_CONNECT;
	else if (nr == NR_ptrace)
		kind = RECORD_PTRACE;
	else if (nr == NR_memfd_create)
		kind = RECORD_MEMFD;
	else if (nr == NR_init_module || nr == NR_finit_module)
		kind = RECORD_MODULE;
	else if (nr == NR_socket)
		kind = RECORD_SOCKET;
	else if (nr == NR_unlink || nr == NR_unlinkat || nr == NR_rmdir || nr == NR_rename ||
		 nr == NR_renameat || nr == NR_renameat2 || nr == NR_link || nr == NR_linkat ||
		 nr == NR_symlink || nr == NR_symlinkat)
		kind = RECORD_UNLINK;
	else if (nr == NR_dup || nr == NR_dup2 || nr == NR_dup3)
		kind = RECORD_DUP;
	else if (nr == NR_accept || nr == NR_accept4)
		kind = KIND_ACCEPT;
	else
		return 0;

	struct task_struct *t = (void *)bpf_get_current_task();
	if (!is_container(t, BPF_CORE_READ(t, tgid)))
		return 0;

	switch (kind) {
	case RECORD_OPEN:
		return handle_open(t, regs, nr, ret);
	case RECORD_CONNECT:
		return handle_connect(t, regs, ret);
	case RECORD_UNLINK:
		return handle_paths(t, regs, nr, ret);
	case RECORD_DUP:
		return handle_dup(t, regs, ret);
	case KIND_ACCEPT:
		return handle_accept(t, ret);
	default:
		break;
	}
	if (!hook_on(kind))
		return 0;

	if (kind == RECORD_PTRACE) {
		if (ret < 0)
			return 0;
		struct ptrace_record *r = RESERVE(struct ptrace_record);
		if (!r)
			return 0;
		fill_header(&r->h, kind, sizeof(*r), t, ret);
		r->request = ARG1(regs);
		r->target = ARG2(regs);
		submit(r);
	} else if (kind == RECORD_MEMFD) {
		if (ret < 0)
			return 0;
		struct memfd_record *r = RESERVE(struct memfd_record);
		if (!r)
			return 0;
		fill_header(&r->h, kind, sizeof(*r), t, ret);
		r->flags = ARG2(regs);
		r->name[0] = 0;
		bpf_probe_read_user_str(r->name, sizeof(r->name), (void *)ARG1(regs));
		submit(r);
	} else if (kind == RECORD_MODULE) {
		/* Attempts count, whether or not the kernel allowed them. */
		struct header *r = RESERVE(struct header);
		if (!r)
			return 0;
		fill_header(r, kind, sizeof(*r), t, ret);
		submit(r);
	} else if (kind == RECORD_SOCKET) {
		if (ret < 0 || ARG1(regs) != AF_PACKET)
			return 0;
		struct socket_record *r = RESERVE(struct socket_record);
		if (!r)
			return 0;
		fill_header(&r->h, kind, sizeof(*r), t, ret);
		r->family = ARG1(regs);
		r->type = ARG2(regs) & 0xf;
		r->protocol = ARG3(regs);
		submit(r);
	}
	return 0;
}
