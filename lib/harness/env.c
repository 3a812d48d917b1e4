/* Environment capture: what every result file records about the machine it
 * came from. Shared by the conformance JSON ("env") and the benchmark JSON
 * ("context"). Anything unreadable is left out, never guessed. */
#include "config.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifdef HAVE_GNU_LIBC_VERSION_H
#include <gnu/libc-version.h>
#endif

int pl_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t n = read(fd, buf, size - 1);
	int e = n < 0 ? errno : 0;
	close(fd);
	if (e)
		return e;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

int pl_sysfs_choice(const char *path, char *buf, size_t size)
{
	char raw[256];
	int e = pl_read_file(path, raw, sizeof(raw));
	if (e)
		return e;
	char *l = strchr(raw, '['), *r = l ? strchr(l, ']') : NULL;
	if (!l || !r)
		return EINVAL;
	snprintf(buf, size, "%.*s", (int)(r - l - 1), l + 1);
	return 0;
}

const char *pl_thp_unavailable(void)
{
	char choice[32];
	if (pl_caps()->huge_page_size == 0)
		return "no transparent huge pages on this system";
	if (pl_sysfs_choice("/sys/kernel/mm/transparent_hugepage/enabled", choice, sizeof(choice)) != 0)
		return "THP settings unreadable (/sys/kernel/mm/transparent_hugepage/enabled)";
	if (strcmp(choice, "never") == 0)
		return "THP disabled (transparent_hugepage/enabled = never)";
	return NULL;
}

/* key: the file's contents, when it can be read. */
static void kv_file(struct pl_json *j, const char *key, const char *path)
{
	char buf[256];
	if (pl_read_file(path, buf, sizeof(buf)) == 0)
		pl_json_kv_str(j, key, buf);
}

static void kv_choice(struct pl_json *j, const char *key, const char *path)
{
	char buf[64];
	if (pl_sysfs_choice(path, buf, sizeof(buf)) == 0)
		pl_json_kv_str(j, key, buf);
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

static void toolchain_members(struct pl_json *j)
{
#if defined(__GLIBC__)
	pl_json_kv_str(j, "libc", "glibc");
#ifdef HAVE_GNU_LIBC_VERSION_H
	pl_json_kv_str(j, "libc_version", gnu_get_libc_version());
#endif
#elif defined(__linux__)
	pl_json_kv_str(j, "libc", "musl or other (no version interface)");
#endif
#if defined(__clang__)
	pl_json_kv_str(j, "compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
	pl_json_kv_str(j, "compiler", "gcc " __VERSION__);
#endif
#ifdef PL_BUILD_CFLAGS
	pl_json_kv_str(j, "compiler_flags", PL_BUILD_CFLAGS);
#endif
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
	pl_json_kv_uint(j, "page_size", pl_page_size());
	pl_json_kv_uint(j, "thp_pmd_size", pl_caps()->huge_page_size);
	huge_page_sizes(j);
	kv_choice(j, "thp_enabled", "/sys/kernel/mm/transparent_hugepage/enabled");
	kv_choice(j, "thp_defrag", "/sys/kernel/mm/transparent_hugepage/defrag");
	kv_file(j, "aslr", "/proc/sys/kernel/randomize_va_space");
	kv_file(j, "overcommit_memory", "/proc/sys/vm/overcommit_memory");
	char swaps[4096];
	if (pl_read_file("/proc/swaps", swaps, sizeof(swaps)) == 0)
		pl_json_kv_bool(j, "swap", strchr(swaps, '\n') != NULL);
	kv_file(j, "perf_event_paranoid", "/proc/sys/kernel/perf_event_paranoid");
}

#if defined(__x86_64__) || defined(__i386__)
/* The hypervisor's CPUID vendor ("KVMKVMKVM", "TCGTCGTCGTCG" for QEMU TCG ...). */
static int hypervisor_vendor(char *out, size_t len)
{
	unsigned a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	if (!(c & (1u << 31)))
		return ENOENT;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x40000000), "c"(0));
	char v[13];
	memcpy(v, &b, 4);
	memcpy(v + 4, &c, 4);
	memcpy(v + 8, &d, 4);
	v[12] = 0;
	snprintf(out, len, "%s", v);
	return 0;
}
#endif

static void virt_members(struct pl_json *j)
{
	char buf[128];
#if defined(__x86_64__) || defined(__i386__)
	if (hypervisor_vendor(buf, sizeof(buf)) == 0)
		pl_json_kv_str(j, "hypervisor", buf[0] ? buf : "present (no vendor)");
	else
		pl_json_kv_str(j, "hypervisor", "none detected");
	if (strstr(buf, "TCG"))
		pl_json_kv_str(j, "emulation", "qemu-tcg");
#else
	/* A binary of this architecture seeing an x86 CPU is running under qemu-user. */
	if (cpuinfo_field("vendor_id", buf, sizeof(buf)) == 0 &&
	    (strstr(buf, "Intel") || strstr(buf, "AMD")))
		pl_json_kv_str(j, "emulation", "qemu-user (x86 host CPU seen)");
#endif
	kv_file(j, "hypervisor_type", "/sys/hypervisor/type");
	kv_file(j, "dmi_sys_vendor", "/sys/devices/virtual/dmi/id/sys_vendor");
	kv_file(j, "dmi_product", "/sys/devices/virtual/dmi/id/product_name");
}

static void cpu_members(struct pl_json *j)
{
	char buf[512];
	if (cpuinfo_field("model name", buf, sizeof(buf)) == 0 || cpuinfo_field("cpu model", buf, sizeof(buf)) == 0 ||
	    cpuinfo_field("uarch", buf, sizeof(buf)) == 0)
		pl_json_kv_str(j, "cpu_model", buf);
	kv_file(j, "cpu_governor", "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n > 0)
		pl_json_kv_int(j, "online_cpus", n);
}

void pl_env_json_members(struct pl_json *j)
{
	struct utsname u;
	if (uname(&u) == 0) {
		pl_json_kv_str(j, "os", u.sysname);
		pl_json_kv_str(j, "kernel", u.release);
		pl_json_kv_str(j, "kernel_version", u.version);
		pl_json_kv_str(j, "arch", u.machine);
		pl_json_kv_str(j, "hostname", u.nodename);
	}
	pl_json_kv_str(j, "platform", pl_caps()->platform);
	toolchain_members(j);
	memory_members(j);
	cpu_members(j);
	virt_members(j);
}
