/* pagelab-init: PID 1 of the guest a kernel or uml target boots. It mounts the
 * pseudo file systems, runs the plan the host wrote to /plan part by part,
 * sends everything back over the console, and powers the machine off. It
 * knows nothing of the suite's command lines: the plan carries them.
 *
 * /plan, one directive a line:
 *   part NAME        start a new part
 *   arg WORD         the next word of its command line (the first is the program)
 *   out NAME PATH    its stdout goes to PATH, sent back as NAME
 *   err NAME PATH    its stderr, likewise
 *   send NAME PATH   a file it writes, sent back as NAME
 *   run              run the part
 * and, before the parts, setting up the guest (it is ours: privileged set-up costs nothing):
 *   write PATH VALUE    write VALUE to a file (a sysctl or sysfs setting)
 *   module FILE ARGS    load a kernel module from FILE with parameters ARGS
 *   swap DEVICE         make DEVICE a swap area and turn it on
 *   mount TYPE DIR      mount a pseudo file system (cgroup2 ...)
 * Console lines, each "=== pagelab-KIND ...":
 *   alive MODE; begin PART; out PART LINE (its stdout, live); file NAME, then
 *   base64 lines, then end NAME SIZE CRC32; missing NAME ERRNO; status PART CODE
 *   (negative: killed by that signal); warning WHAT ERRNO; done.
 * With pagelab.mode=alive on the kernel command line it only says alive. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODULE_INIT_COMPRESSED_FILE 4 /* include/uapi/linux/module.h, Linux 5.17 */

#define MARK "=== pagelab-"
#define MAX_ARGS 64
#define MAX_FILES 8

struct file_ref {
	char *name, *path;
};

struct part {
	char *name;
	char *argv[MAX_ARGS + 1];
	int argc;
	struct file_ref out, err, send[MAX_FILES];
	int nsend;
};

static void say(const char *kind, const char *what, long num)
{
	printf(MARK "%s %s %ld\n", kind, what, num);
	fflush(stdout);
}

static void mount_or_say(const char *src, const char *dst, const char *type)
{
	if (mkdir(dst, 0755) != 0 && errno != EEXIST)
		say("warning mkdir", dst, errno);
	if (mount(src, dst, type, 0, NULL) != 0 && errno != EBUSY)
		say("warning mount", dst, errno);
}

/* "alive" when the kernel command line says pagelab.mode=alive, else "run". */
static const char *boot_mode(void)
{
	char cmdline[4096];
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		return "run";
	ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	cmdline[n > 0 ? n : 0] = 0;
	return strstr(cmdline, "pagelab.mode=alive") ? "alive" : "run";
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc >> 1 ^ (0xEDB88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

static void base64_line(const unsigned char *in, size_t n)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[80];
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
		line[o++] = b64[v >> 18 & 63];
		line[o++] = b64[v >> 12 & 63];
		line[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		line[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	line[o] = 0;
	puts(line);
}

static void send_file(const struct file_ref *f)
{
	FILE *in = fopen(f->path, "rb");
	if (!in) {
		say("missing", f->name, errno);
		return;
	}
	printf(MARK "file %s\n", f->name);
	unsigned char buf[57];
	size_t n, size = 0;
	uint32_t crc = 0;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		base64_line(buf, n);
		crc = crc32_update(crc, buf, n);
		size += n;
	}
	fclose(in);
	printf(MARK "end %s %zu %lu\n", f->name, size, (unsigned long)crc);
	fflush(stdout);
}

/* Copy the child's stdout to the part's file and, line by line, to the console. */
static void relay(int from, FILE *to, const char *part)
{
	char buf[4096], line[1024];
	size_t len = 0;
	ssize_t n;
	while ((n = read(from, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			say("warning read", part, errno);
			break;
		}
		if (to && fwrite(buf, 1, (size_t)n, to) != (size_t)n)
			say("warning write", part, errno);
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n' && len < sizeof(line) - 1) {
				line[len++] = buf[i];
				continue;
			}
			printf(MARK "out %s %.*s\n", part, (int)len, line);
			len = 0;
		}
		fflush(stdout);
	}
	if (len)
		printf(MARK "out %s %.*s\n", part, (int)len, line);
	fflush(stdout);
}

static void child(const struct part *p, int out_fd)
{
	int err = p->err.path ? open(p->err.path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
	if (dup2(out_fd, 1) < 0 || (err >= 0 && dup2(err, 2) < 0))
		_exit(127);
	execv(p->argv[0], p->argv);
	fprintf(stderr, "pagelab-init: cannot execute %s: %s\n", p->argv[0], strerror(errno));
	_exit(127);
}

/* Run one part: its exit status, or minus the signal that killed it. */
static long run_part(const struct part *p)
{
	int fds[2];
	if (pipe(fds) != 0) {
		say("warning pipe", p->name, errno);
		return 127;
	}
	FILE *out = p->out.path ? fopen(p->out.path, "wb") : NULL;
	pid_t pid = fork();
	if (pid < 0) {
		say("warning fork", p->name, errno);
		close(fds[0]);
		close(fds[1]);
		if (out)
			fclose(out);
		return 127;
	}
	if (pid == 0)
		child(p, fds[1]);
	close(fds[1]);
	relay(fds[0], out, p->name);
	close(fds[0]);
	if (out && fclose(out) != 0)
		say("warning close", p->name, errno);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 127;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static void finish_part(struct part *p)
{
	say("begin", p->name, 0);
	p->argv[p->argc] = NULL;
	long code = p->argc ? run_part(p) : 127;
	for (int i = 0; i < p->nsend; i++)
		send_file(&p->send[i]);
	if (p->out.name)
		send_file(&p->out);
	if (p->err.name)
		send_file(&p->err);
	say("status", p->name, code);
}

static void setup_write(char *rest)
{
	char *value = strchr(rest, ' ');
	if (!value) {
		say("warning write", rest, EINVAL);
		return;
	}
	*value++ = 0;
	int fd = open(rest, O_WRONLY);
	if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		say("warning write", rest, errno);
	if (fd >= 0)
		close(fd);
}

/* Compressed modules (.ko.xz, .ko.zst) are unpacked by the kernel itself. */
static void setup_module(char *rest)
{
	char *args = strchr(rest, ' ');
	if (args)
		*args++ = 0;
	int fd = open(rest, O_RDONLY);
	int flags = strstr(rest, ".ko.") ? MODULE_INIT_COMPRESSED_FILE : 0;
	if (fd < 0 || syscall(SYS_finit_module, fd, args ? args : "", flags) != 0)
		say("warning module", rest, errno);
	if (fd >= 0)
		close(fd);
}

/* A swap header (mkswap's: version 1, the last page, no bad pages, the signature at the end of the first page), then swapon. */
static void setup_swap(char *dev)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t size = 0;
	unsigned char *page = calloc(1, (size_t)ps);
	int fd = open(dev, O_RDWR);
	if (!page || fd < 0 || ioctl(fd, BLKGETSIZE64, &size) != 0 || size < 2 * (uint64_t)ps) {
		say("warning swap", dev, fd < 0 || !page ? errno : EINVAL);
		goto out;
	}
	uint32_t header[3] = {1, (uint32_t)(size / (uint64_t)ps - 1), 0};
	memcpy(page + 1024, header, sizeof(header));
	memcpy(page + ps - 10, "SWAPSPACE2", 10);
	if (pwrite(fd, page, (size_t)ps, 0) != ps || fsync(fd) != 0 || swapon(dev, 0) != 0)
		say("warning swap", dev, errno);
out:
	if (fd >= 0)
		close(fd);
	free(page);
}

static void setup_mount(char *rest)
{
	char *dir = strchr(rest, ' ');
	if (!dir) {
		say("warning mount", rest, EINVAL);
		return;
	}
	*dir++ = 0;
	mount_or_say(rest, dir, rest);
}

/* A set-up directive before the parts; 0 when line was one. */
static int setup_directive(const char *cmd, char *rest)
{
	static const struct {
		const char *name;
		void (*fn)(char *rest);
	} setups[] = {{"write", setup_write}, {"module", setup_module}, {"swap", setup_swap}, {"mount", setup_mount}};
	for (size_t i = 0; i < sizeof(setups) / sizeof(setups[0]); i++)
		if (strcmp(cmd, setups[i].name) == 0) {
			setups[i].fn(rest);
			return 0;
		}
	return -1;
}

/* NAME PATH after a directive, both copied. */
static int file_ref(char *rest, struct file_ref *f)
{
	char *sp = strchr(rest, ' ');
	if (!sp)
		return -1;
	*sp = 0;
	f->name = strdup(rest);
	f->path = strdup(sp + 1);
	return f->name && f->path ? 0 : -1;
}

static int directive(struct part *p, char *line)
{
	char *rest = strchr(line, ' ');
	rest = rest ? (*rest = 0, rest + 1) : line + strlen(line);
	if (strcmp(line, "part") == 0) {
		memset(p, 0, sizeof(*p));
		return (p->name = strdup(rest)) ? 0 : -1;
	}
	if (strcmp(line, "arg") == 0 && p->argc < MAX_ARGS)
		return (p->argv[p->argc++] = strdup(rest)) ? 0 : -1;
	if (strcmp(line, "out") == 0)
		return file_ref(rest, &p->out);
	if (strcmp(line, "err") == 0)
		return file_ref(rest, &p->err);
	if (strcmp(line, "send") == 0 && p->nsend < MAX_FILES)
		return file_ref(rest, &p->send[p->nsend++]);
	if (strcmp(line, "run") == 0 && p->name) {
		finish_part(p);
		return 0;
	}
	return setup_directive(line, rest);
}

static void run_plan(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		say("warning plan", path, errno);
		return;
	}
	struct part p = {0};
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = 0;
		if (line[0] && line[0] != '#' && directive(&p, line) != 0)
			say("warning directive", line, 0);
	}
	free(line);
	fclose(f);
}

int main(void)
{
	mount_or_say("proc", "/proc", "proc");
	mount_or_say("sysfs", "/sys", "sysfs");
	mount_or_say("devtmpfs", "/dev", "devtmpfs");
	mount_or_say("tmpfs", "/tmp", "tmpfs");
	setenv("TMPDIR", "/tmp", 1);
	setenv("PATH", "/:/bin", 1);
	const char *mode = boot_mode();
	say("alive", mode, 0);
	if (strcmp(mode, "run") == 0)
		run_plan("/plan");
	say("done", "all", 0);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
