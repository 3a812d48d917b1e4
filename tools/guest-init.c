/* pagelab-init: PID 1 of the initramfs that `pagelab kernels` boots under
 * QEMU. Mounts the pseudo file systems, runs the conformance suite and the
 * perf suite as the kernel command line asks (pagelab.profile=quick|full,
 * pagelab.parts=conform,perf, pagelab.filter=GLOB, pagelab.bench_filter=RE),
 * then sends every result file to the console between markers, base64
 * encoded, and powers the machine off. The host decodes the markers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARK "=== pagelab"

static char cmdline[4096];

static void say(const char *fmt, const char *a, long b)
{
	printf(MARK "-%s %s %ld\n", fmt, a, b);
	fflush(stdout);
}

static void mount_or_say(const char *src, const char *dst, const char *type)
{
	if (mkdir(dst, 0755) != 0 && errno != EEXIST)
		say("warning mkdir", dst, errno);
	if (mount(src, dst, type, 0, NULL) != 0)
		say("warning mount", dst, errno);
}

/* The value of key=VALUE on the kernel command line, or def. */
static const char *param(const char *key, const char *def)
{
	static char val[8][512];
	static int slot;
	size_t n = strlen(key);
	for (char *p = cmdline; (p = strstr(p, key)) != NULL; p += n) {
		if ((p == cmdline || p[-1] == ' ') && p[n] == '=') {
			char *v = val[slot++ % 8];
			size_t len = strcspn(p + n + 1, " \n");
			snprintf(v, sizeof(val[0]), "%.*s", (int)len, p + n + 1);
			return v;
		}
	}
	return def;
}

/* Run argv with stdout to out_path (NULL: the console); returns the exit status. */
static int run(char *const argv[], const char *out_path)
{
	pid_t pid = fork();
	if (pid < 0)
		return 127;
	if (pid == 0) {
		if (out_path) {
			int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || dup2(fd, 1) < 0)
				_exit(127);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 127;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void send_file(const char *name, const char *path)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	FILE *f = fopen(path, "rb");
	if (!f) {
		say("missing", name, errno);
		return;
	}
	say("file", name, 0);
	unsigned char in[57];
	size_t n;
	while ((n = fread(in, 1, sizeof(in), f)) > 0) {
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
	fclose(f);
	say("end", name, 0);
}

static void read_cmdline(void)
{
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
		cmdline[n > 0 ? n : 0] = 0;
		close(fd);
	}
}

int main(void)
{
	mount_or_say("proc", "/proc", "proc");
	mount_or_say("sysfs", "/sys", "sysfs");
	mount_or_say("devtmpfs", "/dev", "devtmpfs");
	mount_or_say("tmpfs", "/tmp", "tmpfs");
	read_cmdline();
	setenv("TMPDIR", "/tmp", 1);
	setenv("PATH", "/:/bin", 1);
	say("alive", param("pagelab.mode", "run"), 0);
	const char *parts = param("pagelab.parts", "conform,perf");
	if (strcmp(param("pagelab.mode", "run"), "run") == 0) {
		if (strstr(parts, "conform")) {
			char *argv[] = {"/pagelab-conform", "-j", "2", "--json", "/tmp/conformance.json", "-f",
					(char *)param("pagelab.filter", "*"), NULL};
			say("status", "conform", run(argv, "/tmp/conformance.tap"));
			send_file("conformance.json", "/tmp/conformance.json");
			send_file("conformance.tap", "/tmp/conformance.tap");
		}
		if (strstr(parts, "perf")) {
			char prof[64], filt[600];
			snprintf(prof, sizeof(prof), "--profile=%s", param("pagelab.profile", "quick"));
			snprintf(filt, sizeof(filt), "--benchmark_filter=%s", param("pagelab.bench_filter", "."));
			char *argv[] = {"/pagelab-bench", prof, filt, "--benchmark_out=/tmp/perf.json",
					"--benchmark_out_format=json", NULL};
			say("status", "perf", run(argv, NULL));
			send_file("perf.json", "/tmp/perf.json");
		}
	}
	say("done", "all", 0);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
