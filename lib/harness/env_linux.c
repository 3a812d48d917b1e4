/* Environment capture on Linux: uname, /proc and /sys. */
#include "config.h"
#include "env_internal.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* key: the file's contents, when it can be read. */
static void kv_file(struct pl_json *j, const char *key, const char *path)
{
	char buf[256];
	if (pl_read_file(path, buf, sizeof(buf)) == 0)
		pl_json_kv_str(j, key, buf);
}

/* key: the whole file, however long: the kernel command line is up to COMMAND_LINE_SIZE (2048 on
 * x86 and arm64, 4096 and more elsewhere), longer than kv_file's buffer. Trailing newline removed. */
static void kv_file_whole(struct pl_json *j, const char *key, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	while (buf) {
		len += fread(buf + len, 1, cap - 1 - len, f);
		if (len < cap - 1 || feof(f) || ferror(f) || cap >= ((size_t)1 << 20))
			break;
		char *more = realloc(buf, cap * 2);
		if (!more) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = more;
		cap *= 2;
	}
	bool ok = buf && !ferror(f);
	fclose(f);
	if (ok) {
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
			len--;
		buf[len] = 0;
		pl_json_kv_str(j, key, buf);
	}
	free(buf);
}

/* key: the bracketed choice of a sysfs selector such as "always [madvise] never". */
static void kv_choice(struct pl_json *j, const char *key, const char *path)
{
	char raw[256];
	if (pl_read_file(path, raw, sizeof(raw)) != 0)
		return;
	char *l = strchr(raw, '['), *r = l ? strchr(l, ']') : NULL;
	if (l && r) {
		*r = 0;
		pl_json_kv_str(j, key, l + 1);
	}
}

/* The value after "key :" in the first matching line of /proc/cpuinfo. */
static int cpuinfo_field(const char *key, char *out, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return errno;
	char line[4096];
	int e = ENOENT;
	size_t klen = strlen(key);
	while (e && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, key, klen) != 0 || !colon || strspn(line + klen, " \t") != (size_t)(colon - line - (long)klen))
			continue;
		snprintf(out, len, "%s", colon + 1 + strspn(colon + 1, " "));
		out[strcspn(out, "\n")] = 0;
		e = 0;
	}
	fclose(f);
	return e;
}

static void huge_page_sizes(struct pl_json *j)
{
	pl_json_key(j, "huge_page_sizes");
	pl_json_begin_array(j);
	DIR *d = opendir("/sys/kernel/mm/hugepages");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		unsigned long kb;
		if (sscanf(e->d_name, "hugepages-%lukB", &kb) == 1)
			pl_json_uint(j, (unsigned long long)kb * 1024);
	}
	if (d)
		closedir(d);
	pl_json_end_array(j);
}

static void memory_members(struct pl_json *j)
{
	huge_page_sizes(j);
	kv_choice(j, "thp_enabled", "/sys/kernel/mm/transparent_hugepage/enabled");
	kv_choice(j, "thp_defrag", "/sys/kernel/mm/transparent_hugepage/defrag");
	kv_file(j, "aslr", "/proc/sys/kernel/randomize_va_space");
	kv_file(j, "overcommit_memory", "/proc/sys/vm/overcommit_memory");
	char swaps[4096];
	if (pl_read_file("/proc/swaps", swaps, sizeof(swaps)) == 0)
		pl_json_kv_bool(j, "swap", strchr(swaps, '\n') != NULL);
	kv_file(j, "perf_event_paranoid", "/proc/sys/kernel/perf_event_paranoid");
	/* What makes a virtual machine's numbers move: freed blocks handed back to the
	 * host (and faulted in there again), and DAMON threads scanning memory. */
	kv_file(j, "page_reporting_order", "/sys/module/page_reporting/parameters/page_reporting_order");
	kv_file(j, "damon_kdamonds", "/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds");
	kv_file_whole(j, "kernel_cmdline", "/proc/cmdline");
}

static void cpu_members(struct pl_json *j)
{
	char buf[512];
	if (cpuinfo_field("model name", buf, sizeof(buf)) == 0 || cpuinfo_field("cpu model", buf, sizeof(buf)) == 0 ||
	    cpuinfo_field("uarch", buf, sizeof(buf)) == 0 || cpuinfo_field("cpu", buf, sizeof(buf)) == 0)
		pl_json_kv_str(j, "cpu_model", buf);
	kv_file(j, "cpu_governor", "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
#if !defined(__x86_64__) && !defined(__i386__)
	/* A binary of this architecture seeing an x86 CPU is running under qemu-user. */
	if (cpuinfo_field("vendor_id", buf, sizeof(buf)) == 0 && (strstr(buf, "Intel") || strstr(buf, "AMD")))
		pl_json_kv_str(j, "emulation", "qemu-user (x86 host CPU seen)");
#endif
}

void pl_env_os_members(struct pl_json *j)
{
	pl_env_posix_members(j);
	memory_members(j);
	cpu_members(j);
	kv_file(j, "hypervisor_type", "/sys/hypervisor/type");
	kv_file(j, "dmi_sys_vendor", "/sys/devices/virtual/dmi/id/sys_vendor");
	kv_file(j, "dmi_product", "/sys/devices/virtual/dmi/id/product_name");
}
