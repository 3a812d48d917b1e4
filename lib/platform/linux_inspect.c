/* The page layer's deeper observations on Linux: soft-dirty bits
 * (/proc/self/clear_refs, pagemap), the folio behind a page (pagemap PFN and
 * /proc/kpageflags, both root-only), the mTHP sizes and hugetlb pools (sysfs),
 * and page merging (/sys/kernel/mm/ksm, /proc/self/ksm_merging_pages, and
 * /proc/PID/ksm_stat or smaps of a child stopped by ptrace right after exec). */
#include "pl_internal.h"
#include "linux_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* include/uapi/linux/kernel-page-flags.h */
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define THP_DIR "/sys/kernel/mm/transparent_hugepage"
#define HUGETLB_DIR "/sys/kernel/mm/hugepages"
#define MAX_FOLIO_PAGES (1u << 18) /* 1 GiB of 4 KiB pages: the largest folio walked */

/* Without CONFIG_MEM_SOFT_DIRTY the pagemap bit stays clear even on a page just written. */
bool pl_linux_soft_dirty_tracked(void)
{
	static int tracked = -1;
	void *p;
	uint64_t entry = 0;
	if (tracked >= 0)
		return tracked;
	if (pl_posix_scratch_page(&p) != 0)
		return false;
	*(volatile char *)p = 1;
	tracked = pl_linux_pagemap_entry(p, &entry) == 0 && (entry & PL_PM_SOFT_DIRTY);
	(void)pl_unmap(p, pl_page_size());
	return tracked;
}

int pl_clear_soft_dirty(void)
{
	if (!pl_linux_soft_dirty_tracked())
		return ENOTSUP;
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? ENOTSUP : errno;
	int e = write(fd, "4", 1) == 1 ? 0 : errno; /* 4: clear the soft-dirty bits (proc(5)) */
	if (close(fd) != 0 && e == 0)
		e = errno;
	return e;
}

/* The kpageflags words of count PFNs from pfn on. */
static int page_flag_words(int fd, uint64_t pfn, uint64_t *words, size_t count)
{
	ssize_t want = (ssize_t)(count * sizeof(*words));
	ssize_t n = pread(fd, words, (size_t)want, (off_t)(pfn * sizeof(*words)));
	return n == want ? 0 : n < 0 ? errno : EIO;
}

static bool flag(uint64_t word, int bit)
{
	return (word >> bit) & 1;
}

/* Walk back from pfn to the head of its compound page, then count the tail pages after it. */
static int compound_pages(int fd, uint64_t pfn, size_t *pages)
{
	uint64_t w;
	size_t back = 0;
	int e;
	while ((e = page_flag_words(fd, pfn - back, &w, 1)) == 0 && flag(w, KPF_COMPOUND_TAIL)) {
		if (++back >= MAX_FOLIO_PAGES || back > pfn)
			return ERANGE;
	}
	if (e)
		return e;
	if (!flag(w, KPF_COMPOUND_HEAD)) {
		*pages = 1;
		return 0;
	}
	uint64_t head = pfn - back, chunk[512];
	size_t n = 1;
	for (bool more = true; more && n < MAX_FOLIO_PAGES;) {
		if ((e = page_flag_words(fd, head + n, chunk, 512)) != 0)
			return e;
		for (size_t i = 0; i < 512 && (more = flag(chunk[i], KPF_COMPOUND_TAIL)); i++)
			n++;
	}
	*pages = n;
	return 0;
}

int pl_folio_bytes(const void *p, size_t *bytes)
{
	uint64_t entry;
	int e = pl_linux_pagemap_entry(p, &entry);
	if (e)
		return e;
	if (!(entry & PL_PM_PRESENT))
		return ENOENT; /* nothing there to measure */
	uint64_t pfn = entry & PL_PM_PFN_MASK;
	if (pfn == 0)
		return EPERM; /* PFNs read as 0 without CAP_SYS_ADMIN */
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? ENOTSUP : errno;
	size_t pages = 0;
	e = compound_pages(fd, pfn, &pages);
	close(fd);
	if (e == 0)
		*bytes = pages * pl_page_size();
	return e;
}

/* The bracketed word of a sysfs selector ("always [madvise] never"), or "" when unreadable. */
static void selected(const char *path, char *buf, size_t size)
{
	char raw[256];
	buf[0] = 0;
	if (pl_linux_read(path, raw, sizeof(raw)) != 0)
		return;
	char *l = strchr(raw, '['), *r = l ? strchr(l, ']') : NULL;
	if (l && r)
		snprintf(buf, size, "%.*s", (int)(r - l - 1), l + 1);
}

/* Does an mTHP size directory ("hugepages-64kB") give huge pages to memory advised MADV_HUGEPAGE? */
static bool mthp_enabled(const char *name, const char *top)
{
	char path[512], choice[32];
	snprintf(path, sizeof(path), THP_DIR "/%s/enabled", name);
	selected(path, choice, sizeof(choice));
	if (strcmp(choice, "inherit") == 0)
		return strcmp(top, "never") != 0 && top[0];
	return strcmp(choice, "always") == 0 || strcmp(choice, "madvise") == 0;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* Sizes (bytes) named by "<prefix><N>kB" entries of dir that keep(name) accepts, sorted. */
static int sizes_in(const char *dir, const char *prefix, bool (*keep)(const char *name, const char *arg),
		    const char *arg, size_t *sizes, size_t max, size_t *count)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? ENOTSUP : errno;
	struct dirent *ent;
	size_t n = 0, seen = 0, plen = strlen(prefix);
	while ((ent = readdir(d)) != NULL) {
		unsigned long kb;
		if (strncmp(ent->d_name, prefix, plen) != 0 || sscanf(ent->d_name + plen, "%lukB", &kb) != 1)
			continue;
		seen++;
		if (n < max && keep(ent->d_name, arg))
			sizes[n++] = (size_t)kb * 1024;
	}
	closedir(d);
	qsort(sizes, n, sizeof(*sizes), cmp_size);
	*count = n;
	return seen ? 0 : ENOTSUP;
}

static bool keep_mthp(const char *name, const char *top)
{
	unsigned long kb = strtoul(name + strlen("hugepages-"), NULL, 10);
	return (size_t)kb * 1024 < pl_caps()->huge_page_size && mthp_enabled(name, top);
}

int pl_mthp_sizes(size_t *sizes, size_t max, size_t *count)
{
	char top[32];
	selected(THP_DIR "/enabled", top, sizeof(top));
	/* Kernels before 6.8 have no per-size directories: no mTHP at all. */
	return sizes_in(THP_DIR, "hugepages-", keep_mthp, top, sizes, max, count);
}

static bool keep_any(const char *name, const char *arg)
{
	(void)name; (void)arg;
	return true;
}

int pl_hugetlb_sizes(size_t *sizes, size_t max, size_t *count)
{
	return sizes_in(HUGETLB_DIR, "hugepages-", keep_any, NULL, sizes, max, count);
}

int pl_hugetlb_free(size_t size, size_t *pages)
{
	char path[256], buf[64];
	snprintf(path, sizeof(path), HUGETLB_DIR "/hugepages-%zukB/free_hugepages", size / 1024);
	int e = pl_linux_read(path, buf, sizeof(buf));
	if (e)
		return e == ENOENT ? ENOTSUP : e;
	*pages = (size_t)strtoull(buf, NULL, 10);
	return 0;
}

static int read_number(const char *path, unsigned long long *v)
{
	char buf[64];
	int e = pl_linux_read(path, buf, sizeof(buf));
	if (e)
		return e == ENOENT ? ENOTSUP : e;
	*v = strtoull(buf, NULL, 10);
	return 0;
}

int pl_merge_running(bool *on)
{
	unsigned long long run;
	int e = read_number("/sys/kernel/mm/ksm/run", &run);
	if (e == 0)
		*on = run == 1;
	return e;
}

int pl_merge_into_zero_page(bool *on)
{
	unsigned long long v;
	int e = read_number("/sys/kernel/mm/ksm/use_zero_pages", &v); /* Linux 4.5 */
	if (e == 0)
		*on = v != 0;
	return e;
}

int pl_merge_settle(int timeout_ms)
{
	unsigned long long start, now;
	int e = read_number("/sys/kernel/mm/ksm/full_scans", &start);
	struct timespec tick = {0, 10 * 1000 * 1000};
	for (int waited = 0; e == 0; waited += 10) {
		if ((e = read_number("/sys/kernel/mm/ksm/full_scans", &now)) != 0 || now >= start + 2)
			return e;
		if (waited >= timeout_ms)
			return ETIMEDOUT;
		nanosleep(&tick, NULL);
	}
	return e;
}

int pl_mapping_limit(size_t *count)
{
	unsigned long long n;
	int e = read_number("/proc/sys/vm/max_map_count", &n);
	if (e == 0)
		*count = (size_t)n;
	return e;
}

int pl_merged_pages(size_t *pages)
{
	unsigned long long n;
	int e = read_number("/proc/self/ksm_merging_pages", &n); /* Linux 5.19 */
	if (e == 0)
		*pages = (size_t)n;
	return e;
}

/* Whether any mapping of process `pid` is marked mergeable ("mg" in smaps VmFlags). */
static int any_mergeable_mapping(pid_t pid, bool *any)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? ENOTSUP : errno;
	bool seen = false;
	*any = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmFlags:", 8) != 0)
			continue;
		seen = true;
		if (strstr(line, " mg") != NULL)
			*any = true;
	}
	fclose(f);
	return seen ? 0 : ENOTSUP;
}

/* A child traced from its start executes this program and stops before its first instruction. Its ksm_stat
 * tells the setting (ksm_merge_any, Linux 6.14); before that, the mappings exec made are marked mergeable when
 * the setting is on. */
int pl_merge_after_exec(bool *on)
{
	int st;
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0)
			execl("/proc/self/exe", "pagelab-exec-stop", "--help", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return errno;
	if (!WIFSTOPPED(st)) /* no tracing or no exec here */
		return ENOTSUP;
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/ksm_stat", (int)pid);
	int e = pl_linux_read(path, buf, sizeof(buf));
	const char *line = e == 0 ? strstr(buf, "ksm_merge_any: ") : NULL;
	if (line != NULL)
		*on = strncmp(line + strlen("ksm_merge_any: "), "yes", 3) == 0;
	else
		e = any_mergeable_mapping(pid, on);
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return e == ENOENT ? ENOTSUP : e;
}
