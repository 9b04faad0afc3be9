/* The kernel types the sensor reads, declared with only the fields it uses.
 *
 * Every struct is marked preserve_access_index, so libbpf relocates each field access
 * against the running kernel's BTF (CO-RE): the layouts below need not match any kernel,
 * only the names do. This keeps the program independent of one kernel's full vmlinux.h and
 * lets the same source build for x86_64 and arm64. Types whose fields were renamed across
 * kernel versions have a ___flavour twin; the code picks one with bpf_core_field_exists.
 */
#ifndef PALISADE_KERNEL_H
#define PALISADE_KERNEL_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s64 s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LPM_TRIE = 11,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_F_NO_PREALLOC = 1,
};

/* bpf_ringbuf_submit flags and bpf_ringbuf_query's question (uapi linux/bpf.h). */
enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};
enum {
	BPF_RB_AVAIL_DATA = 0,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
	long orig_ax;
	long ip, cs, flags, sp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	u64 regs[31];
	u64 sp;
	u64 pc;
	u64 pstate;
	u64 orig_x0;
	__s32 syscallno;
};
#else
#error "the sensor is built for x86 or arm64: pass -D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64"
#endif

struct qstr {
	union {
		struct {
			u32 hash;
			u32 len;
		};
		u64 hash_len;
	};
	const unsigned char *name;
};

struct timespec64 {
	s64 tv_sec;
	long tv_nsec;
};

struct super_block {
	unsigned long s_magic;
};

struct inode {
	unsigned short i_mode;
	struct super_block *i_sb;
	unsigned long i_ino;
	/* 6.11 and later */
	s64 i_ctime_sec;
	u32 i_ctime_nsec;
};

/* 6.6 to 6.10 */
struct inode___v66 {
	struct timespec64 __i_ctime;
};

/* before 6.6 */
struct inode___v510 {
	struct timespec64 i_ctime;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
};

struct vfsmount {
	struct dentry *mnt_root;
	struct super_block *mnt_sb;
};

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_flags;
	void *private_data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct fs_struct {
	struct path root;
	struct path pwd;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
	struct file *exe_file;
};

struct tty_driver {
	int major;
	int minor_start;
};

struct tty_struct {
	struct tty_driver *driver;
	int index;
};

struct signal_struct {
	struct tty_struct *tty;
};

/* Before 6.3 the set was two 32-bit words; on little-endian machines the same eight bytes
 * read as one u64 either way. */
typedef struct {
	u64 val;
} kernel_cap_t;

typedef struct {
	u32 val;
} kuid_t;

struct cred {
	kuid_t uid;
	kernel_cap_t cap_effective;
};

struct kernfs_node {
	/* 6.15 renamed parent to __parent */
	struct kernfs_node *__parent;
	const char *name;
};

struct kernfs_node___v510 {
	struct kernfs_node *parent;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

struct css_set {
	struct cgroup_subsys_state *subsys[16];
	struct cgroup *dfl_cgrp;
};

enum cgroup_subsys_id {
	memory_cgrp_id = 4,
};

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
};

struct pid_namespace {
	unsigned int level;
};

struct upid {
	int nr;
	struct pid_namespace *ns;
};

struct pid {
	unsigned int level;
	struct upid numbers[1];
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
};

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	char comm[16];
	struct css_set *cgroups;
	struct nsproxy *nsproxy;
	struct fs_struct *fs;
	struct files_struct *files;
	struct mm_struct *mm;
	const struct cred *cred;
	struct signal_struct *signal;
	struct pid *thread_pid;
	u64 start_boottime;
};

struct linux_binprm {
	struct file *file;
	const char *filename;
};

struct in6_addr {
	union {
		u8 u6_addr8[16];
		__be32 u6_addr32[4];
	} in6_u;
};

struct sock_common {
	__be32 skc_daddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
};

struct sock {
	struct sock_common __sk_common;
};

struct socket {
	short type;
	struct sock *sk;
};

#pragma clang attribute pop

#endif
