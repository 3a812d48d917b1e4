/* The page layer on Linux: madvise for the release verbs, with every optional
 * advice probed on the running kernel (headers can name advice the kernel
 * refuses, and the reverse) and every native claim checked by behaviour at
 * start (an emulator may return 0 and do nothing). Observation calls are in
 * linux_observe.c, pattern mappings in linux_pattern.c. */
#include "pl_internal.h"
#include "linux_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Which native calls the verbs use: accepted by the kernel and seen to work. */
static bool use_free, use_dontneed = true, use_guard, use_populate;

/* The use_* flags are filled by the capability probe: run it before any verb reads them. */
static void need_caps(void)
{
	(void)pl_caps();
}

static bool kernel_accepts(int advice)
{
	return pl_posix_probe_advice(advice) == 0;
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
	if (pl_linux_read("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", buf, sizeof(buf)) != 0)
		return 0;
	return (size_t)strtoull(buf, NULL, 10);
}

/* The native calls alone, for the start-up checks (the verbs may fall back). */
static int native_free(void *p, size_t len) { return pl_posix_madvise(p, len, MADV_FREE); }
static int native_dontneed(void *p, size_t len) { return pl_posix_madvise(p, len, MADV_DONTNEED); }
static int native_guard(void *p, size_t len) { return pl_posix_madvise(p, len, MADV_GUARD_INSTALL); }
static int native_unguard(void *p, size_t len) { return pl_posix_madvise(p, len, MADV_GUARD_REMOVE); }
static int native_populate(void *p, size_t len) { return pl_posix_madvise(p, len, MADV_POPULATE_WRITE); }

/* Check a claimed native call; false when it returned success without honouring it. */
static bool honoured(struct pl_caps *c, enum pl_op op, enum pl_verdict v, const char *claimed)
{
	pl_cap_verdict(c, op, v, claimed);
	return v != PL_NOT_HONOURED;
}

static void fill_release_caps(struct pl_caps *c)
{
	use_free = kernel_accepts(MADV_FREE) &&
		   honoured(c, PL_OP_RELEASE, pl_check_old_or_zero(native_free),
			    "madvise(MADV_FREE) returned 0 and a page read neither its old bytes nor zero");
	use_dontneed = honoured(c, PL_OP_RELEASE_ZERO, pl_check_reads_zero(native_dontneed),
				"madvise(MADV_DONTNEED) returned 0 and the pages kept their bytes");
	if (use_free)
		pl_cap_set(c, PL_OP_RELEASE, PL_NATIVE, "madvise(MADV_FREE)", NULL);
	else
		pl_cap_set(c, PL_OP_RELEASE, PL_EMULATED, "madvise(MADV_DONTNEED)", "MADV_FREE refused or not honoured");
	if (use_dontneed)
		pl_cap_set(c, PL_OP_RELEASE_ZERO, PL_NATIVE, "madvise(MADV_DONTNEED)",
			   "memset fallback when madvise fails (e.g. mlocked)");
	else
		pl_cap_set(c, PL_OP_RELEASE_ZERO, PL_EMULATED, "memset", "MADV_DONTNEED not honoured: the bytes are cleared");
	pl_cap_set(c, PL_OP_REUSABLE, PL_EMULATED, use_free ? "madvise(MADV_FREE)" : "madvise(MADV_DONTNEED)",
		   "no MADV_FREE_REUSABLE on Linux: lazily freed pages stand in for reusable ones");
	pl_cap_set(c, PL_OP_REUSE, PL_EMULATED, "none", "a write cancels MADV_FREE, so reuse needs no call");
}

static void fill_guard_caps(struct pl_caps *c)
{
	use_guard = kernel_accepts(MADV_GUARD_INSTALL) &&
		    honoured(c, PL_OP_GUARD, pl_check_faults(native_guard, native_unguard),
			     "madvise(MADV_GUARD_INSTALL) returned 0 and the page stayed accessible (or MADV_GUARD_REMOVE did not restore it)");
	c->op[PL_OP_UNGUARD].verified = c->op[PL_OP_GUARD].verified;
	if (use_guard) {
		pl_cap_set(c, PL_OP_GUARD, PL_NATIVE, "madvise(MADV_GUARD_INSTALL)", NULL);
		pl_cap_set(c, PL_OP_UNGUARD, PL_NATIVE, "madvise(MADV_GUARD_REMOVE)", NULL);
	} else {
		pl_cap_set(c, PL_OP_GUARD, PL_EMULATED, "mprotect(PROT_NONE)", "MADV_GUARD_INSTALL refused (before 6.13) or not honoured");
		pl_cap_set(c, PL_OP_UNGUARD, PL_EMULATED, "mprotect + madvise(MADV_DONTNEED)", NULL);
	}
}

void pl_os_fill_caps(struct pl_caps *c)
{
	c->platform = "linux";
	c->huge_page_size = thp_size();
	pl_linux_probe_pagemap_scan();
	fill_release_caps(c);
	fill_guard_caps(c);
	use_populate = kernel_accepts(MADV_POPULATE_READ) && kernel_accepts(MADV_POPULATE_WRITE) &&
		       honoured(c, PL_OP_POPULATE, pl_check_resident(native_populate),
				"madvise(MADV_POPULATE_WRITE) returned 0 and the pages stayed absent");
	if (use_populate)
		pl_cap_set(c, PL_OP_POPULATE, PL_NATIVE, "madvise(MADV_POPULATE_READ/WRITE)", NULL);
	else
		pl_cap_set(c, PL_OP_POPULATE, PL_EMULATED, "touch each page", "MADV_POPULATE_* refused (before 5.14) or not honoured");
	if (!pl_linux_pagemap_is_ours())
		pl_cap_set(c, PL_OP_ZERO_PAGE, PL_UNAVAILABLE, NULL,
			   "/proc/self/pagemap does not describe this process (an emulator's own view?)");
	else if (pl_linux_have_pagemap_scan())
		pl_cap_set(c, PL_OP_ZERO_PAGE, PL_NATIVE, "ioctl(PAGEMAP_SCAN, PAGE_IS_PFNZERO)", NULL);
	else
		pl_cap_set(c, PL_OP_ZERO_PAGE, PL_EMULATED, "/proc/self/pagemap PFN", "needs CAP_SYS_ADMIN to see PFNs");
	pl_cap_set(c, PL_OP_RSS, PL_NATIVE, "/proc/self/statm", NULL);
	if (uffd_available())
		pl_cap_set(c, PL_OP_MAP_PATTERN, PL_EMULATED, "userfaultfd(UFFDIO_COPY)",
			   "no reference-page mapping in Linux: missing-page faults are filled from a pattern page");
	else
		pl_cap_set(c, PL_OP_MAP_PATTERN, PL_EMULATED, "memset", "userfaultfd unavailable: the pattern is written up front");
}

/* Reserve, commit and decommit: mmap and mprotect (posix.c); MAP_NORESERVE and a fresh PROT_NONE
 * mapping drop the commit charge on Linux. */
int pl_reserve(size_t len, size_t align, void **out)
{
	return pl_posix_reserve(len, align, out);
}

int pl_commit(void *p, size_t len)
{
	return pl_posix_commit(p, len);
}

int pl_decommit(void *p, size_t len)
{
	return pl_posix_decommit(p, len);
}

int pl_release(void *p, size_t len)
{
	need_caps();
	int e = EINVAL;
	if (use_free)
		e = pl_posix_madvise(p, len, MADV_FREE);
	/* MADV_FREE is refused on shared and file mappings: DONTNEED keeps their contents (old). */
	if (e == EINVAL && use_dontneed)
		e = pl_posix_madvise(p, len, MADV_DONTNEED);
	return e == EINVAL && !use_dontneed ? 0 : e; /* keeping the bytes honours old-or-zero */
}

int pl_release_zero(void *p, size_t len)
{
	size_t ps = pl_page_size();
	if ((uintptr_t)p % ps || len % ps)
		return EINVAL; /* checked first: the memset below must not paper over a bad range */
	need_caps();
	int e = use_dontneed ? pl_posix_madvise(p, len, MADV_DONTNEED) : EINVAL;
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
	if (use_guard) {
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
	if (use_guard) {
		int e = pl_posix_madvise(p, len, MADV_GUARD_REMOVE);
		if (e != 0 && e != EINVAL)
			return e;
	}
	int e = pl_protect(p, len, PL_PROT_RW);
	if (e)
		return e;
	return pl_release_zero(p, len); /* has the memset fallback for locked memory */
}

/* madvise's fork advice; Linux has no per-range sharing of private memory with a child. */
int pl_inherit(void *p, size_t len, enum pl_inherit how)
{
	int e;
	switch (how) {
	case PL_INHERIT_COPY:
		e = pl_posix_madvise(p, len, MADV_DOFORK);
		return e ? e : pl_posix_madvise(p, len, MADV_KEEPONFORK);
	case PL_INHERIT_NONE: return pl_posix_madvise(p, len, MADV_DONTFORK);
	case PL_INHERIT_ZERO: return pl_posix_madvise(p, len, MADV_WIPEONFORK);
	case PL_INHERIT_SHARE: return ENOTSUP;
	default: return EINVAL;
	}
}

int pl_populate(void *p, size_t len, bool write)
{
	need_caps();
	if (use_populate)
		return pl_posix_madvise(p, len, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
	pl_touch_pages(p, len, write);
	return 0;
}
