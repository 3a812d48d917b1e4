/* The page layer's observation calls on Linux: mincore (posix.c) for
 * residency, PAGEMAP_SCAN (6.7) or /proc/self/pagemap for page flags and the
 * zero page, /proc/self/{statm,status,stat,maps,smaps} for the rest. Each
 * answers ENOTSUP when the kernel hides what it needs. */
#include "pl_internal.h"
#include "linux_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

/* include/uapi/linux/magic.h; musl's headers lack them. */
#define PL_TMPFS_MAGIC 0x01021994
#define PL_RAMFS_MAGIC 0x858458f6

static bool have_pagemap_scan;
/* PAGEMAP_SCAN category bits this kernel accepts: PAGE_IS_GUARD only since 6.14,
 * and earlier kernels refuse unknown bits with EINVAL. */
static uint64_t scan_categories = (PL_PAGE_IS_GUARD << 1) - 1;

int pl_linux_read(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t n = 0;
	while (n < size - 1) {
		ssize_t got = read(fd, buf + n, size - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			int e = got < 0 ? errno : 0;
			if (e) {
				close(fd);
				return e;
			}
			break;
		}
		n += (size_t)got;
	}
	if (close(fd) != 0)
		return errno;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

/* A /proc or /sys file that older kernels (or sandboxes) may lack: ENOTSUP then, not ENOENT. */
static int read_kernel_file(const char *path, char *buf, size_t size)
{
	int e = pl_linux_read(path, buf, size);
	return e == ENOENT ? ENOTSUP : e;
}

/* Does /proc/self/pagemap describe this process's own memory? Under qemu-user
 * for a 32-bit guest it describes the emulator's, at other addresses. */
static bool pagemap_is_ours = true;

static int pagemap_entry(const void *p, uint64_t *entry);

int pl_linux_pagemap_entry(const void *p, uint64_t *entry)
{
	(void)pl_caps();
	return pagemap_is_ours ? pagemap_entry(p, entry) : ENOTSUP;
}

/* /proc/self/pagemap open for reading; 0 or errno (ENOTSUP where the kernel has none). */
static int open_pagemap(int *fd)
{
	*fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	return errno == ENOENT ? ENOTSUP : errno;
}

/* The pagemap entries of the n pages from p on. */
static int pagemap_entries(const void *p, size_t n, uint64_t *entries)
{
	int fd, e = open_pagemap(&fd);
	if (e)
		return e;
	off_t off = (off_t)((uintptr_t)p / pl_page_size()) * (off_t)sizeof(uint64_t);
	ssize_t got = pread(fd, entries, n * sizeof(uint64_t), off);
	e = got == (ssize_t)(n * sizeof(uint64_t)) ? 0 : (got < 0 ? errno : EIO);
	close(fd);
	return e;
}

static int pagemap_entry(const void *p, uint64_t *entry)
{
	return pagemap_entries(p, 1, entry);
}

/* PAGEMAP_SCAN of [start, end) for pages with any of mask; adds their count to *pages. */
static int scan_range(uintptr_t start, uintptr_t end, uint64_t mask, size_t *pages)
{
	int fd, e = open_pagemap(&fd);
	struct pl_page_region regions[32];
	if (e)
		return e;
	while (start < end && e == 0) {
		struct pl_pm_scan_arg arg = {
			.size = sizeof(arg), .start = start, .end = end,
			.vec = (uintptr_t)regions, .vec_len = 32,
			.category_anyof_mask = mask, .return_mask = mask,
		};
		int n = ioctl(fd, PL_PAGEMAP_SCAN, &arg);
		if (n < 0) {
			e = errno;
			break;
		}
		for (int i = 0; i < n; i++)
			*pages += (size_t)((regions[i].end - regions[i].start) / pl_page_size());
		if (arg.walk_end <= start)
			break; /* no progress: never loop without a bound */
		start = (uintptr_t)arg.walk_end;
	}
	close(fd);
	return e;
}

int pl_linux_scan_count(const void *p, size_t len, uint64_t mask, size_t *pages)
{
	uintptr_t ps = pl_page_size(), start = (uintptr_t)p & ~(ps - 1);
	*pages = 0;
	return scan_range(start, ((uintptr_t)p + len + ps - 1) & ~(ps - 1), mask, pages);
}

/* The categories of one page: a scan with every category as return mask, none required. */
static int page_categories(const void *p, uint64_t *categories)
{
	int fd, e = open_pagemap(&fd);
	if (e)
		return e;
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)(pl_page_size() - 1);
	struct pl_page_region region = {0};
	struct pl_pm_scan_arg arg = {
		.size = sizeof(arg), .start = start, .end = start + pl_page_size(),
		.vec = (uintptr_t)&region, .vec_len = 1, .return_mask = scan_categories,
	};
	int n = ioctl(fd, PL_PAGEMAP_SCAN, &arg);
	e = n < 0 ? errno : 0;
	close(fd);
	if (e == 0)
		*categories = n == 1 ? region.categories : 0;
	return e;
}

/* Written pages and never-touched ones must read present and absent. Sixteen
 * of each: under qemu-user a big-endian guest reads the host's little-endian
 * entries, where "present" is one bit of a frame number, so one written page
 * read as present by chance half the time and the channel was trusted. */
#define TOUCH_CHECK_PAGES 16
static bool pagemap_tells_touch(void)
{
	size_t ps = pl_page_size();
	uint64_t e[2 * TOUCH_CHECK_PAGES];
	char *p;
	if (pl_map_anon(2 * TOUCH_CHECK_PAGES * ps, (void **)&p) != 0)
		return true; /* cannot check: trust it, the channel probe will still look */
	for (int i = 0; i < TOUCH_CHECK_PAGES; i++)
		p[(size_t)i * ps] = 1;
	bool ok = true; /* a pagemap that cannot be read is left to the channel probes */
	if (pagemap_entries(p, 2 * TOUCH_CHECK_PAGES, e) == 0)
		for (int i = 0; i < 2 * TOUCH_CHECK_PAGES; i++)
			if (((e[i] & PL_PM_PRESENT) != 0) != (i < TOUCH_CHECK_PAGES))
				ok = false;
	(void)pl_unmap(p, 2 * TOUCH_CHECK_PAGES * ps);
	return ok;
}

void pl_linux_probe_pagemap_scan(void)
{
	void *p = NULL;
	uint64_t cat;
	pagemap_is_ours = pagemap_tells_touch();
	if (!pagemap_is_ours || pl_posix_scratch_page(&p) != 0)
		return;
	have_pagemap_scan = page_categories(p, &cat) == 0;
	if (!have_pagemap_scan) {
		scan_categories = PL_PAGE_IS_GUARD - 1;
		have_pagemap_scan = page_categories(p, &cat) == 0;
	}
	(void)pl_unmap(p, pl_page_size());
}

bool pl_linux_pagemap_is_ours(void)
{
	return pagemap_is_ours;
}

bool pl_linux_have_pagemap_scan(void)
{
	return have_pagemap_scan; /* no pl_caps() here: the capability probe itself asks */
}

/* The categories PAGEMAP_SCAN takes, once the capability probe has decided (0: no PAGEMAP_SCAN). */
uint64_t pl_linux_scan_categories(void)
{
	(void)pl_caps();
	return have_pagemap_scan ? scan_categories : 0;
}

/* The first PFN of the huge zero page (a read fault on THP memory maps it), or 0. */
static uint64_t huge_zero_pfn(void)
{
	size_t huge = pl_caps()->huge_page_size;
	void *r = NULL;
	uint64_t entry = 0;
	if (!huge || pl_reserve(huge, huge, &r) != 0)
		return 0;
	if (pl_commit(r, huge) == 0 && pl_posix_madvise(r, huge, MADV_HUGEPAGE) == 0) {
		(void)*(volatile char *)r;
		if (pl_linux_pagemap_entry(r, &entry) != 0 || !(entry & PL_PM_PRESENT))
			entry = 0;
	}
	(void)pl_unmap(r, huge);
	return entry & PL_PM_PFN_MASK;
}

/* Zero pages come in colours on some architectures (s390 up to 128, MIPS 8:
 * ZERO_PAGE(vaddr) depends on the address, arch/s390/mm/init.c
 * setup_zero_pages), so one reference page is not enough: read-fault a run
 * of pages as long as the largest colouring and collect their PFNs. */
#define ZERO_COLOURS 128

/* The PFNs of the (small) zero page at every colour, from a fresh read-faulted run; 0 or errno. */
static int zero_pfns(uint64_t pfns[ZERO_COLOURS])
{
	size_t ps = pl_page_size(), len = ZERO_COLOURS * ps;
	uint64_t entries[ZERO_COLOURS];
	char *z;
	int e = pl_map_anon(len, (void **)&z);
	if (e)
		return e;
	(void)pl_posix_madvise(z, len, MADV_NOHUGEPAGE); /* small zero pages, not the huge one */
	for (size_t i = 0; i < ZERO_COLOURS; i++)
		(void)*(volatile char *)(z + i * ps);
	e = pagemap_entries(z, ZERO_COLOURS, entries);
	int u = pl_unmap(z, len);
	for (size_t i = 0; e == 0 && i < ZERO_COLOURS; i++)
		pfns[i] = entries[i] & PL_PM_PFN_MASK;
	return e ? e : u;
}

/* Without PAGEMAP_SCAN: compare PFNs with pages known to map the zero pages. */
static int zero_page_by_pfn(const void *p, bool *is_zero)
{
	uint64_t mine, pfns[ZERO_COLOURS];
	int e = pl_linux_pagemap_entry(p, &mine);
	if (e == 0)
		e = zero_pfns(pfns);
	if (e)
		return e;
	if (pfns[0] == 0)
		return ENOTSUP; /* PFNs read as 0 without CAP_SYS_ADMIN */
	size_t huge_size = pl_caps()->huge_page_size;
	uint64_t pfn = mine & PL_PM_PFN_MASK, huge = huge_zero_pfn();
	size_t in_huge = huge_size ? ((uintptr_t)p % huge_size) / pl_page_size() : 0;
	bool zero = huge && pfn - in_huge == huge;
	for (size_t i = 0; i < ZERO_COLOURS && !zero; i++)
		zero = pfn == pfns[i];
	*is_zero = (mine & PL_PM_PRESENT) && zero;
	return 0;
}

int pl_is_zero_page(const void *p, bool *is_zero)
{
	uint64_t cat;
	if (!pl_linux_scan_categories())
		return zero_page_by_pfn(p, is_zero);
	int e = page_categories(p, &cat);
	if (e == 0)
		*is_zero = (cat & PL_PAGE_IS_PFNZERO) != 0;
	return e;
}

int pl_page_flags(const void *p, unsigned *flags, unsigned *known)
{
	uint64_t entry, cat = 0, have = pl_linux_scan_categories();
	int e = pl_linux_pagemap_entry(p, &entry);
	if (e)
		return e;
	if (have && (e = page_categories(p, &cat)) != 0)
		return e;
	static const struct { uint64_t scan; unsigned flag; } map[] = {
		{PL_PAGE_IS_PFNZERO, PL_PF_ZERO}, {PL_PAGE_IS_HUGE, PL_PF_HUGE},
		{PL_PAGE_IS_GUARD, PL_PF_GUARD}, {PL_PAGE_IS_WRITTEN, PL_PF_WRITTEN},
	};
	*known = PL_PF_PRESENT | PL_PF_SWAPPED | PL_PF_FILE | PL_PF_EXCLUSIVE |
		 (pl_linux_soft_dirty_tracked() ? PL_PF_SOFT_DIRTY : 0);
	*flags = ((entry & PL_PM_PRESENT) ? PL_PF_PRESENT : 0) | ((entry & PL_PM_SWAPPED) ? PL_PF_SWAPPED : 0) |
		 ((entry & PL_PM_FILE_OR_SHARED) ? PL_PF_FILE : 0) | ((entry & PL_PM_EXCLUSIVE) ? PL_PF_EXCLUSIVE : 0) |
		 ((entry & PL_PM_SOFT_DIRTY) ? PL_PF_SOFT_DIRTY : 0);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (!(have & map[i].scan))
			continue;
		*known |= map[i].flag;
		if (cat & map[i].scan)
			*flags |= map[i].flag;
	}
	return 0;
}

int pl_footprint(size_t *bytes)
{
	(void)bytes;
	return ENOTSUP; /* Linux charges memory to cgroups, not to a per-process footprint */
}

int pl_rss(size_t *bytes)
{
	char buf[256];
	unsigned long size, resident;
	int e = read_kernel_file("/proc/self/statm", buf, sizeof(buf));
	if (e)
		return e;
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return EIO;
	*bytes = (size_t)resident * pl_page_size();
	return 0;
}

/* Call fn for each mapping line of /proc/self/{maps,smaps}; fn sees its bounds and the line. */
static int each_maps_line(const char *path, void (*fn)(void *arg, uintptr_t lo, uintptr_t hi, const char *line),
			  void *arg)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? ENOTSUP : errno;
	char line[1024];
	uintptr_t lo = 0, hi = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		if (sscanf(line, "%llx-%llx ", &a, &b) == 2) {
			lo = (uintptr_t)a;
			hi = (uintptr_t)b;
		}
		fn(arg, lo, hi, line);
	}
	int e = ferror(f) ? EIO : 0;
	fclose(f);
	return e;
}

struct range_sum {
	uintptr_t lo, hi;
	size_t total;
};

static size_t overlap(uintptr_t a, uintptr_t b, uintptr_t lo, uintptr_t hi)
{
	uintptr_t s = a > lo ? a : lo, e = b < hi ? b : hi;
	return e > s ? (size_t)(e - s) : 0;
}

static void count_mapping(void *arg, uintptr_t lo, uintptr_t hi, const char *line)
{
	struct range_sum *r = arg;
	unsigned long long a, b;
	if (sscanf(line, "%llx-%llx ", &a, &b) == 2 && overlap(lo, hi, r->lo, r->hi))
		r->total++;
}

int pl_mapping_count(const void *p, size_t len, size_t *count)
{
	struct range_sum r = {(uintptr_t)p, (uintptr_t)p + len, 0};
	int e = each_maps_line("/proc/self/maps", count_mapping, &r);
	if (e == 0)
		*count = r.total;
	return e;
}

/* Huge-page bytes from smaps, clipped to the part of each mapping inside the range. */
static void sum_huge(void *arg, uintptr_t lo, uintptr_t hi, const char *line)
{
	struct range_sum *r = arg;
	unsigned long kb;
	size_t inside = overlap(lo, hi, r->lo, r->hi);
	if (!inside)
		return;
	if (sscanf(line, "AnonHugePages: %lu kB", &kb) == 1 || sscanf(line, "ShmemPmdMapped: %lu kB", &kb) == 1 ||
	    sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1) {
		size_t b = (size_t)kb * 1024;
		r->total += b < inside ? b : inside;
	}
}

int pl_huge_bytes(const void *p, size_t len, size_t *bytes)
{
	size_t pages = 0;
	if (pl_linux_scan_categories() & PL_PAGE_IS_HUGE) {
		int e = pl_linux_scan_count(p, len, PL_PAGE_IS_HUGE, &pages);
		if (e == 0) {
			*bytes = pages * pl_page_size();
			return 0;
		}
	}
	struct range_sum r = {(uintptr_t)p, (uintptr_t)p + len, 0};
	int e = each_maps_line("/proc/self/smaps", sum_huge, &r);
	if (e == 0)
		*bytes = r.total;
	return e;
}

/* The number after "key:" in /proc/self/status, in kB. */
static int status_kb(const char *key, size_t *kb)
{
	char buf[8192];
	int e = read_kernel_file("/proc/self/status", buf, sizeof(buf));
	if (e)
		return e;
	const char *at = strstr(buf, key);
	if (!at)
		return ENOTSUP;
	*kb = (size_t)strtoull(at + strlen(key), NULL, 10);
	return 0;
}

int pl_locked_bytes(size_t *bytes)
{
	size_t kb;
	int e = status_kb("VmLck:", &kb);
	if (e == 0)
		*bytes = kb * 1024;
	return e;
}

int pl_break_start(uintptr_t *addr)
{
	char buf[2048];
	int e = read_kernel_file("/proc/self/stat", buf, sizeof(buf));
	if (e)
		return e;
	/* Field 47 is start_brk (proc(5)); fields are counted after the ")" ending the name. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 47; field++)
		p = strchr(p + 1, ' ');
	unsigned long long v;
	if (!p || sscanf(p + 1, "%llu", &v) != 1)
		return ENOTSUP; /* kernels before 3.5 lack the memory-layout fields */
	*addr = (uintptr_t)v;
	return 0;
}

int pl_raw_break(void *want, void **now)
{
#ifdef SYS_brk
	*now = (void *)syscall(SYS_brk, want);
	return 0;
#else
	(void)want; (void)now;
	return ENOTSUP; /* an architecture without brk */
#endif
}

int pl_swap_total(uint64_t *bytes)
{
	char buf[8192];
	const char *at;
	int e = read_kernel_file("/proc/meminfo", buf, sizeof(buf));
	if (e)
		return e;
	if (!(at = strstr(buf, "SwapTotal:")))
		return ENOTSUP;
	*bytes = (uint64_t)strtoull(at + 10, NULL, 10) * 1024;
	return 0;
}

int pl_file_in_memory(int fd, bool *yes)
{
	struct statfs s;
	if (fstatfs(fd, &s) != 0)
		return errno;
	*yes = (unsigned long)s.f_type == PL_TMPFS_MAGIC || (unsigned long)s.f_type == PL_RAMFS_MAGIC;
	return 0;
}

int pl_commit_strict(bool *strict)
{
	char mode[16];
	int e = read_kernel_file("/proc/sys/vm/overcommit_memory", mode, sizeof(mode));
	if (e)
		return e;
	*strict = mode[0] == '2';
	return 0;
}

/* The bracketed choice in a sysfs selector such as "always [madvise] never". */
static int sysfs_choice(const char *path, char *buf, size_t size)
{
	char raw[256];
	int e = pl_linux_read(path, raw, sizeof(raw));
	if (e)
		return e;
	char *l = strchr(raw, '['), *r = l ? strchr(l, ']') : NULL;
	if (!l || !r)
		return EINVAL;
	snprintf(buf, size, "%.*s", (int)(r - l - 1), l + 1);
	return 0;
}

const char *pl_huge_unavailable(void)
{
	char choice[32];
	if (pl_caps()->huge_page_size == 0)
		return "no transparent huge pages on this system";
	if (sysfs_choice("/sys/kernel/mm/transparent_hugepage/enabled", choice, sizeof(choice)) != 0)
		return "THP settings unreadable (/sys/kernel/mm/transparent_hugepage/enabled)";
	if (strcmp(choice, "never") == 0)
		return "THP disabled (transparent_hugepage/enabled = never)";
	return NULL;
}

int pl_huge_zero_page_enabled(bool *on)
{
	char buf[16];
	int e = read_kernel_file("/sys/kernel/mm/transparent_hugepage/use_zero_page", buf, sizeof(buf));
	if (e)
		return e;
	*on = buf[0] == '1';
	return 0;
}

/* The "TLB:" line of /proc/interrupts (x86: shootdown IPIs per CPU); other
 * architectures have no such line and answer ENOTSUP. */
int pl_tlb_shootdowns(uint64_t *count)
{
	FILE *f = fopen("/proc/interrupts", "re");
	if (!f)
		return errno == ENOENT ? ENOTSUP : errno;
	char line[4096];
	int e = ENOTSUP;
	while (e == ENOTSUP && fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " "), *end;
		if (strncmp(p, "TLB:", 4) != 0)
			continue;
		*count = 0;
		for (p += 4;; p = end) {
			unsigned long long v = strtoull(p, &end, 10);
			if (end == p)
				break;
			*count += v;
		}
		e = 0;
	}
	if (ferror(f))
		e = EIO;
	fclose(f);
	return e;
}
