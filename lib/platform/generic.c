/* The page layer for any other POSIX system (a new OS, a port): only what
 * POSIX and the common BSD madvise values promise. Every verb a system can
 * do better belongs in that system's own file. Building this on Linux
 * (make PLATFORM=generic) tests the fallback paths on purpose. */
#include "pl_internal.h"
#include "pl_abi.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

void pl_os_fill_caps(struct pl_caps *c)
{
	c->platform = "generic";
	c->huge_page_size = 0;
#if defined(HAVE_MADV_FREE)
	pl_cap_set(c, PL_OP_RELEASE, PL_NATIVE, "madvise(MADV_FREE)", NULL);
	pl_cap_verdict(c, PL_OP_RELEASE, pl_check_old_or_zero(pl_release),
		       "madvise(MADV_FREE) returned 0 and a page read neither its old bytes nor zero");
#elif defined(HAVE_MADV_DONTNEED)
	pl_cap_set(c, PL_OP_RELEASE, PL_EMULATED, "madvise(MADV_DONTNEED)", "no MADV_FREE");
#else
	pl_cap_set(c, PL_OP_RELEASE, PL_EMULATED, "none", "no madvise: pages stay resident (contents old)");
#endif
	pl_cap_set(c, PL_OP_RELEASE_ZERO, PL_EMULATED, "mmap(MAP_FIXED)", "POSIX promises no zeroing madvise: map fresh memory over the range");
	pl_cap_set(c, PL_OP_REUSABLE, PL_EMULATED, c->op[PL_OP_RELEASE].via, "no MADV_FREE_REUSABLE: release stands in");
	pl_cap_set(c, PL_OP_REUSE, PL_EMULATED, "none", "nothing to undo after release");
	pl_cap_set(c, PL_OP_GUARD, PL_EMULATED, "mprotect(PROT_NONE)", "no guard-marker advice");
	pl_cap_set(c, PL_OP_UNGUARD, PL_EMULATED, "mmap(MAP_FIXED)", NULL);
	pl_cap_set(c, PL_OP_POPULATE, PL_EMULATED, "touch each page", "no populate advice");
	pl_cap_set(c, PL_OP_ZERO_PAGE, PL_UNAVAILABLE, NULL, "no portable way to see physical pages");
	pl_cap_set(c, PL_OP_RSS, PL_UNAVAILABLE, NULL, "POSIX getrusage has only the peak RSS");
	pl_cap_set(c, PL_OP_MAP_PATTERN, PL_EMULATED, "memset", "no reference-page mapping: the pattern is written up front");
}

/* Reserve, commit and decommit: mmap and mprotect as every POSIX system has them (posix.c). */
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
#if defined(HAVE_MADV_FREE)
	int e = pl_posix_madvise(p, len, MADV_FREE);
#ifdef HAVE_MADV_DONTNEED
	/* Systems refuse MADV_FREE on shared and file mappings: DONTNEED keeps their contents. */
	if (e == EINVAL)
		e = pl_posix_madvise(p, len, MADV_DONTNEED);
#endif
	return e;
#elif defined(HAVE_MADV_DONTNEED)
	return pl_posix_madvise(p, len, MADV_DONTNEED);
#else
	(void)p; (void)len;
	return 0;
#endif
}

int pl_release_zero(void *p, size_t len)
{
	size_t ps = pl_page_size();
	if ((uintptr_t)p % ps || len % ps)
		return EINVAL; /* mmap would round the length up and zero bytes the caller kept */
	return pl_posix_remap_fresh(p, len, PL_PROT_RW);
}

int pl_reusable(void *p, size_t len)
{
	return pl_release(p, len);
}

int pl_reuse(void *p, size_t len)
{
	(void)p; (void)len;
	return 0;
}

int pl_guard(void *p, size_t len)
{
	return pl_protect(p, len, PL_PROT_NONE);
}

int pl_unguard(void *p, size_t len)
{
	return pl_posix_remap_fresh(p, len, PL_PROT_RW);
}

int pl_populate(void *p, size_t len, bool write)
{
	pl_touch_pages(p, len, write);
	return 0;
}

/* POSIX has no call that changes what fork hands a child. */
int pl_inherit(void *p, size_t len, enum pl_inherit how)
{
	(void)p; (void)len; (void)how;
	return ENOTSUP;
}

/* No portable way to see physical pages, counters or the kernel's records:
 * every observation a port cannot make answers ENOTSUP (the rest in none.c). */
int pl_rss(size_t *bytes)
{
	(void)bytes;
	return ENOTSUP;
}

int pl_footprint(size_t *bytes)
{
	(void)bytes;
	return ENOTSUP;
}

int pl_huge_bytes(const void *p, size_t len, size_t *bytes)
{
	(void)p; (void)len; (void)bytes;
	return ENOTSUP;
}

int pl_page_flags(const void *p, unsigned *flags, unsigned *known)
{
	(void)p; (void)flags; (void)known;
	return ENOTSUP;
}

int pl_mapping_count(const void *p, size_t len, size_t *count)
{
	(void)p; (void)len; (void)count;
	return ENOTSUP;
}

int pl_swap_total(uint64_t *bytes)
{
	(void)bytes;
	return ENOTSUP;
}

const char *pl_huge_unavailable(void)
{
	return "no transparent huge pages in the generic page layer";
}

int pl_folio_bytes(const void *p, size_t *bytes)
{
	(void)p; (void)bytes;
	return ENOTSUP;
}

int pl_force_write(void *p, unsigned char byte)
{
	(void)p; (void)byte;
	return ENOTSUP;
}

int pl_memlimit_create(size_t bytes, struct pl_memlimit **out, const char **why)
{
	(void)bytes; (void)out;
	*why = "no memory-limited process groups in the generic page layer";
	return ENOTSUP;
}

int pl_map_pattern(size_t len, unsigned char byte, enum pl_pattern_mode mode, void **out,
		   enum pl_pattern_mode *used)
{
	return pl_map_pattern_memset_only(len, byte, mode, out, used);
}

int pl_unmap_pattern(void *p, size_t len)
{
	return pl_unmap(p, len);
}
