/* The page layer on Linux: madvise for the release verbs, PAGEMAP_SCAN and
 * /proc/self/pagemap for the zero page, /proc/self/statm for RSS. Every
 * optional advice is probed on the running kernel, since headers can name
 * advice the kernel refuses (EINVAL) and vice versa. */
#include "pl_internal.h"
#include "linux_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pagelab/env.h"

static bool have_free, have_guard, have_populate, have_pagemap_scan;
/* PAGEMAP_SCAN category bits this kernel accepts: PAGE_IS_GUARD only since 6.14,
 * and earlier kernels refuse unknown bits with EINVAL (decided by probe_pagemap_scan). */
static uint64_t scan_categories = (PL_PAGE_IS_GUARD << 1) - 1;

/* The have_* flags are filled by the capability probe: run it before any verb uses them. */
static void need_caps(void)
{
	(void)pl_caps();
}

static bool kernel_accepts(int advice)
{
	return pl_posix_probe_advice(advice) == 0;
}

int pl_linux_pagemap_entry(const void *p, uint64_t *entry)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	off_t off = (off_t)((uintptr_t)p / pl_page_size()) * (off_t)sizeof(uint64_t);
	ssize_t n = pread(fd, entry, sizeof(*entry), off);
	int e = n == (ssize_t)sizeof(*entry) ? 0 : (n < 0 ? errno : EIO);
	close(fd);
	return e;
}

/* One PAGEMAP_SCAN of the page at p, asking for the category bits in mask. */
static int scan_page(const void *p, uint64_t mask, uint64_t *categories)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)(pl_page_size() - 1);
	struct pl_page_region region = {0};
	struct pl_pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = start,
		.end = start + pl_page_size(),
		.vec = (uintptr_t)&region,
		.vec_len = 1,
		.return_mask = mask,
	};
	int n = ioctl(fd, PL_PAGEMAP_SCAN, &arg);
	int e = n < 0 ? errno : 0;
	close(fd);
	if (e)
		return e;
	*categories = n == 1 ? region.categories : 0;
	return 0;
}

int pl_linux_page_categories(const void *p, uint64_t *categories)
{
	need_caps();
	return scan_page(p, scan_categories, categories);
}

uint64_t pl_linux_scan_categories(void)
{
	return scan_categories;
}

/* Does PAGEMAP_SCAN work, and with PAGE_IS_GUARD? Decided once, while the capability set is filled. */
static bool probe_pagemap_scan(void)
{
	void *p = NULL;
	if (pl_posix_scratch_page(&p) != 0)
		return false;
	uint64_t cat;
	bool ok = scan_page(p, scan_categories, &cat) == 0;
	if (!ok) {
		scan_categories = PL_PAGE_IS_GUARD - 1;
		ok = scan_page(p, scan_categories, &cat) == 0;
	}
	pl_unmap(p, pl_page_size());
	return ok;
}

/* userfaultfd for user-mode faults needs no privilege (Linux 5.11+); probe the kernel. */
static bool uffd_available(void)
{
#if !defined(SYS_userfaultfd) || !defined(HAVE_LINUX_USERFAULTFD_H)
	return false; /* linux_pattern.c is built without userfaultfd then */
#else
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | PL_UFFD_USER_MODE_ONLY);
	if (fd < 0)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	close(fd);
	return true;
#endif
}

static size_t thp_size(void)
{
	char buf[64];
	if (pl_read_file("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", buf, sizeof(buf)) != 0)
		return 0;
	return (size_t)strtoull(buf, NULL, 10);
}

void pl_os_fill_caps(struct pl_caps *c)
{
	c->platform = "linux";
	c->huge_page_size = thp_size();
	have_free = kernel_accepts(MADV_FREE);
	have_guard = kernel_accepts(MADV_GUARD_INSTALL);
	have_populate = kernel_accepts(MADV_POPULATE_READ) && kernel_accepts(MADV_POPULATE_WRITE);
	have_pagemap_scan = probe_pagemap_scan();

	if (have_free)
		pl_cap_set(c, PL_OP_RELEASE, PL_NATIVE, "madvise(MADV_FREE)", NULL);
	else
		pl_cap_set(c, PL_OP_RELEASE, PL_EMULATED, "madvise(MADV_DONTNEED)", "kernel refuses MADV_FREE (before 4.5)");
	pl_cap_set(c, PL_OP_RELEASE_ZERO, PL_NATIVE, "madvise(MADV_DONTNEED)", "memset fallback when madvise fails (e.g. mlocked)");
	pl_cap_set(c, PL_OP_REUSABLE, PL_EMULATED, have_free ? "madvise(MADV_FREE)" : "madvise(MADV_DONTNEED)",
		   "no MADV_FREE_REUSABLE on Linux: lazily freed pages stand in for reusable ones");
	pl_cap_set(c, PL_OP_REUSE, PL_EMULATED, "none", "a write cancels MADV_FREE, so reuse needs no call");
	if (have_guard) {
		pl_cap_set(c, PL_OP_GUARD, PL_NATIVE, "madvise(MADV_GUARD_INSTALL)", NULL);
		pl_cap_set(c, PL_OP_UNGUARD, PL_NATIVE, "madvise(MADV_GUARD_REMOVE)", NULL);
	} else {
		pl_cap_set(c, PL_OP_GUARD, PL_EMULATED, "mprotect(PROT_NONE)", "kernel refuses MADV_GUARD_INSTALL (before 6.13)");
		pl_cap_set(c, PL_OP_UNGUARD, PL_EMULATED, "mprotect + madvise(MADV_DONTNEED)", NULL);
	}
	if (have_populate)
		pl_cap_set(c, PL_OP_POPULATE, PL_NATIVE, "madvise(MADV_POPULATE_READ/WRITE)", NULL);
	else
		pl_cap_set(c, PL_OP_POPULATE, PL_EMULATED, "touch each page", "kernel refuses MADV_POPULATE_* (before 5.14)");
	if (have_pagemap_scan)
		pl_cap_set(c, PL_OP_ZERO_PAGE, PL_NATIVE, "ioctl(PAGEMAP_SCAN, PAGE_IS_PFNZERO)", NULL);
	else
		pl_cap_set(c, PL_OP_ZERO_PAGE, PL_EMULATED, "/proc/self/pagemap PFN", "needs CAP_SYS_ADMIN to see PFNs");
	pl_cap_set(c, PL_OP_RSS, PL_NATIVE, "/proc/self/statm", NULL);
	if (uffd_available())
		pl_cap_set(c, PL_OP_MAP_PATTERN, PL_EMULATED, "userfaultfd(UFFDIO_COPY)",
			   "no reference-page mapping in Linux: missing-page faults are filled from a pattern page");
	else
		pl_cap_set(c, PL_OP_MAP_PATTERN, PL_EMULATED, "memset",
#ifdef HAVE_LINUX_USERFAULTFD_H
			   "userfaultfd refused by this kernel: the pattern is written up front");
#else
			   "built without <linux/userfaultfd.h>: the pattern is written up front");
#endif
}

int pl_release(void *p, size_t len)
{
	need_caps();
	int e = EINVAL;
	if (have_free)
		e = pl_posix_madvise(p, len, MADV_FREE);
	/* MADV_FREE is refused on shared and file mappings: DONTNEED keeps their contents (old). */
	if (e == EINVAL)
		e = pl_posix_madvise(p, len, MADV_DONTNEED);
	return e;
}

int pl_release_zero(void *p, size_t len)
{
	size_t ps = pl_page_size();
	if ((uintptr_t)p % ps || len % ps)
		return EINVAL; /* checked first: the memset below must not paper over a bad range */
	int e = pl_posix_madvise(p, len, MADV_DONTNEED);
	/* Locked or special mappings refuse DONTNEED: keep the reads-zero promise by hand. */
	if (e == EINVAL || e == EPERM || e == EAGAIN) {
		memset(p, 0, len);
		e = 0;
	}
	return e;
}

int pl_reusable(void *p, size_t len)
{
	return pl_release(p, len);
}

int pl_reuse(void *p, size_t len)
{
	(void)p;
	(void)len;
	return 0;
}

int pl_guard(void *p, size_t len)
{
	need_caps();
	if (have_guard) {
		int e = pl_posix_madvise(p, len, MADV_GUARD_INSTALL);
		if (e != EINVAL)
			return e;
	}
	/* Mappings that refuse guard markers (e.g. mlocked) get PROT_NONE instead. */
	return pl_protect(p, len, PL_PROT_NONE);
}

int pl_unguard(void *p, size_t len)
{
	need_caps();
	if (have_guard) {
		int e = pl_posix_madvise(p, len, MADV_GUARD_REMOVE);
		if (e != 0 && e != EINVAL)
			return e;
	}
	int e = pl_protect(p, len, PL_PROT_RW);
	if (e)
		return e;
	return pl_release_zero(p, len); /* has the memset fallback for locked memory */
}

int pl_populate(void *p, size_t len, bool write)
{
	need_caps();
	if (have_populate)
		return pl_posix_madvise(p, len, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
	pl_posix_touch(p, len, write);
	return 0;
}

static size_t c_huge(void)
{
	return pl_caps()->huge_page_size;
}

/* The first PFN of the huge zero page (a read fault on THP memory maps it), or 0. */
static uint64_t huge_zero_pfn(void)
{
	size_t huge = c_huge();
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

int pl_is_zero_page(const void *p, bool *is_zero)
{
	need_caps();
	uint64_t cat;
	if (have_pagemap_scan) {
		int e = pl_linux_page_categories(p, &cat);
		if (e)
			return e;
		*is_zero = (cat & PL_PAGE_IS_PFNZERO) != 0;
		return 0;
	}
	/* Without PAGEMAP_SCAN: compare PFNs with pages known to map the zero pages. */
	uint64_t mine, ref;
	void *z;
	int e = pl_linux_pagemap_entry(p, &mine);
	if (e)
		return e;
	if ((e = pl_posix_scratch_page(&z)) != 0)
		return e;
	(void)*(volatile char *)z;
	e = pl_linux_pagemap_entry(z, &ref);
	int u = pl_unmap(z, pl_page_size());
	if (e || u)
		return e ? e : u;
	if ((ref & PL_PM_PFN_MASK) == 0)
		return ENOTSUP; /* PFNs read as 0 without CAP_SYS_ADMIN */
	uint64_t pfn = mine & PL_PM_PFN_MASK, huge = huge_zero_pfn();
	size_t in_huge = c_huge() ? ((uintptr_t)p % c_huge()) / pl_page_size() : 0;
	*is_zero = (mine & PL_PM_PRESENT) &&
		   (pfn == (ref & PL_PM_PFN_MASK) || (huge && pfn - in_huge == huge));
	return 0;
}

int pl_rss(size_t *bytes)
{
	char buf[256];
	int e = pl_read_file("/proc/self/statm", buf, sizeof(buf));
	if (e)
		return e;
	unsigned long size, resident;
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return EIO;
	*bytes = (size_t)resident * pl_page_size();
	return 0;
}
