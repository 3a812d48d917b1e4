/* The page layer on FreeBSD (14, built against its own headers): MADV_FREE
 * for release; MAP_GUARD entries for reservations, decommitted pages and
 * guards (an entry with no object behind it: no memory, no swap charge, any
 * access SIGSEGV); MAP_ALIGNED(n) for aligned reservations and
 * MAP_ALIGNED_SUPER so large ones can be promoted to superpages; minherit for
 * what a forked child gets; mincore for residency and superpages; sysctl
 * (kern.proc.pid, kern.proc.vmmap) for RSS and the mapping list. Every native
 * claim is checked by behaviour at start (lib/platform/verify.c): these were
 * compiled against FreeBSD's headers, never run here. */
#include "pl_internal.h"
#include "pl_abi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/sysctl.h>
#include <sys/user.h>
#include <unistd.h>

/* MAP_GUARD reservations: decided at start, and off again if the kernel refuses or does not honour them. */
static bool use_guard_map = true;
static size_t superpage;

/* The superpage size (hw.pagesizes[1]) when the pmap promotes to superpages, else 0. */
static size_t superpage_size(void)
{
	size_t sizes[4] = {0};
	int enabled = 0;
	size_t len = sizeof(enabled);
	int n = getpagesizes(sizes, 4);
	if (n < 2)
		return 0;
	if (sysctlbyname("vm.pmap.pg_ps_enabled", &enabled, &len, NULL, 0) != 0 || len != sizeof(enabled))
		enabled = 1; /* arm64 has no such knob: superpages are always on */
	return enabled ? sizes[1] : 0;
}

/* log2 of a power of two. */
static int log2_of(size_t v)
{
	int n = 0;
	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* A MAP_GUARD entry over [p, p+len) (MAP_FIXED replaces what was there), or a new one when p is NULL. */
static int guard_map(void *p, size_t len, int extra, void **out)
{
	void *q = mmap(p, len, PROT_NONE, MAP_GUARD | extra | (p ? MAP_FIXED : 0), -1, 0);
	if (q == MAP_FAILED)
		return errno;
	if (p && q != p)
		return EFAULT;
	if (out)
		*out = q;
	return 0;
}

static int native_guard(void *p, size_t len) { return guard_map(p, len, 0, NULL); }
static int native_unguard(void *p, size_t len) { return pl_posix_remap_fresh(p, len, PL_PROT_RW); }
static int native_free(void *p, size_t len) { return pl_posix_madvise(p, len, MADV_FREE); }

int pl_reserve(size_t len, size_t align, void **out)
{
	int e = pl_reserve_args(len, &align);
	if (e)
		return e;
	if (!use_guard_map)
		return pl_posix_reserve(len, align, out);
	/* MAP_ALIGNED(n) places the entry itself; a large unaligned one is aligned for superpages. */
	int extra = align > pl_page_size() ? MAP_ALIGNED(log2_of(align))
		    : superpage && len >= superpage ? MAP_ALIGNED_SUPER : 0;
	e = guard_map(NULL, len, extra, out);
	return e == EINVAL ? pl_posix_reserve(len, align, out) : e; /* before 11.2: no MAP_GUARD */
}

/* A guard entry has no object that mprotect could open up (it skips guard entries and
 * returns 0): committing maps fresh demand-zero memory over the range, as the contract's
 * "reserved or decommitted pages" allows. */
int pl_commit(void *p, size_t len)
{
	size_t ps = pl_page_size();
	if ((uintptr_t)p % ps || len % ps)
		return EINVAL;
	return use_guard_map ? pl_posix_remap_fresh(p, len, PL_PROT_RW) : pl_posix_commit(p, len);
}

/* The pages' memory goes with the object it belonged to; the guard entry charges nothing. */
int pl_decommit(void *p, size_t len)
{
	size_t ps = pl_page_size();
	if ((uintptr_t)p % ps || len % ps)
		return EINVAL;
	return use_guard_map ? guard_map(p, len, 0, NULL) : pl_posix_decommit(p, len);
}

/* Does the kernel make MAP_GUARD entries at all (FreeBSD 11.2 and later)? */
static bool guard_accepted(void)
{
	void *q;
	if (guard_map(NULL, pl_page_size(), 0, &q) != 0)
		return false;
	return munmap(q, pl_page_size()) == 0;
}

static void fill_guard_caps(struct pl_caps *c)
{
	bool accepted = guard_accepted();
	enum pl_verdict v = accepted ? pl_check_faults(native_guard, native_unguard) : PL_NOT_CHECKED;
	use_guard_map = accepted && v != PL_NOT_HONOURED;
	pl_cap_verdict(c, PL_OP_GUARD, v,
		       "mmap(MAP_GUARD|MAP_FIXED) returned success and the page stayed accessible (or a fresh mapping "
		       "over it did not restore it)");
	c->op[PL_OP_UNGUARD].verified = c->op[PL_OP_GUARD].verified;
	if (!use_guard_map) {
		pl_cap_set(c, PL_OP_GUARD, PL_EMULATED, "mprotect(PROT_NONE)",
			   accepted ? "MAP_GUARD not honoured" : "MAP_GUARD refused (before FreeBSD 11.2)");
		pl_cap_set(c, PL_OP_UNGUARD, PL_EMULATED, "mmap(MAP_FIXED)", NULL);
		return;
	}
	pl_cap_set(c, PL_OP_GUARD, PL_NATIVE, "mmap(MAP_GUARD|MAP_FIXED)", NULL);
	pl_cap_set(c, PL_OP_UNGUARD, PL_NATIVE, "mmap(MAP_FIXED|MAP_ANON)", "a fresh mapping replaces the guard entry");
	pl_cap_set(c, PL_OP_RESERVE, PL_NATIVE, "mmap(MAP_GUARD|MAP_ALIGNED(n))", NULL);
	pl_cap_set(c, PL_OP_COMMIT, PL_NATIVE, "mmap(MAP_FIXED|MAP_ANON)", "mprotect skips guard entries");
	pl_cap_set(c, PL_OP_DECOMMIT, PL_NATIVE, "mmap(MAP_GUARD|MAP_FIXED)", NULL);
}

void pl_os_fill_caps(struct pl_caps *c)
{
	c->platform = "freebsd";
	superpage = superpage_size();
	c->huge_page_size = superpage;
	fill_guard_caps(c);
	/* posix.c checked decommit with the verbs as they were before the guard check decided: again, as they are now. */
	pl_cap_verdict(c, PL_OP_DECOMMIT, pl_check_faults(pl_decommit, pl_commit),
		       "decommit returned success and the pages stayed accessible (or commit did not restore them)");
	pl_cap_set(c, PL_OP_RELEASE, PL_NATIVE, "madvise(MADV_FREE)", NULL);
	pl_cap_verdict(c, PL_OP_RELEASE, pl_check_old_or_zero(native_free),
		       "madvise(MADV_FREE) returned 0 and a page read neither its old bytes nor zero");
	pl_cap_set(c, PL_OP_RELEASE_ZERO, PL_EMULATED, "mmap(MAP_FIXED)",
		   "FreeBSD's MADV_DONTNEED and MADV_FREE keep or drop pages at will: map fresh memory over the range");
	pl_cap_set(c, PL_OP_REUSABLE, PL_EMULATED, "madvise(MADV_FREE)", "no MADV_FREE_REUSABLE: release stands in");
	pl_cap_set(c, PL_OP_REUSE, PL_EMULATED, "none", "a write cancels MADV_FREE, so reuse needs no call");
	pl_cap_set(c, PL_OP_POPULATE, PL_EMULATED, "touch each page",
		   "MAP_PREFAULT_READ works at mmap time only, and only for read");
	pl_cap_set(c, PL_OP_ZERO_PAGE, PL_UNAVAILABLE, NULL, "FreeBSD shows no process the physical page behind an address");
	pl_cap_set(c, PL_OP_RSS, PL_NATIVE, "sysctl(kern.proc.pid) ki_rssize", NULL);
	pl_cap_set(c, PL_OP_MAP_PATTERN, PL_EMULATED, "memset", "no reference-page mapping: the pattern is written up front");
}

int pl_release(void *p, size_t len)
{
	/* FreeBSD accepts MADV_FREE on any mapping and drops only pages of anonymous objects:
	 * the rest keep their bytes, which honours old-or-zero. */
	return pl_posix_madvise(p, len, MADV_FREE);
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
	(void)pl_caps();
	return use_guard_map ? native_guard(p, len) : pl_protect(p, len, PL_PROT_NONE);
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

int pl_inherit(void *p, size_t len, enum pl_inherit how)
{
	static const int flag[] = {
		[PL_INHERIT_COPY] = INHERIT_COPY, [PL_INHERIT_SHARE] = INHERIT_SHARE,
		[PL_INHERIT_NONE] = INHERIT_NONE, [PL_INHERIT_ZERO] = INHERIT_ZERO,
	};
	if ((unsigned)how >= sizeof(flag) / sizeof(flag[0]))
		return EINVAL;
	return minherit(p, len, flag[how]) == 0 ? 0 : errno;
}

/* ---- observations: sysctl and mincore ---- */

int pl_rss(size_t *bytes)
{
	struct kinfo_proc kp;
	size_t len = sizeof(kp);
	int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)getpid()};
	if (sysctl(mib, 4, &kp, &len, NULL, 0) != 0)
		return errno;
	if (len != sizeof(kp) || kp.ki_structsize != (int)sizeof(kp))
		return ENOTSUP; /* a kernel whose kinfo_proc this build does not know */
	*bytes = (size_t)kp.ki_rssize * pl_page_size();
	return 0;
}

/* mincore's superpage index of each page of [p, p+len): nonzero where a superpage backs it. */
static int superpage_pages(const void *p, size_t len, size_t *pages)
{
	size_t ps = pl_page_size(), n = (len + ps - 1) / ps;
	char *vec = malloc(n ? n : 1);
	if (!vec)
		return ENOMEM;
	int e = mincore(p, len, vec) == 0 ? 0 : errno;
	*pages = 0;
	for (size_t i = 0; e == 0 && i < n; i++)
		*pages += (vec[i] & MINCORE_SUPER) != 0;
	free(vec);
	return e;
}

int pl_footprint(size_t *bytes)
{
	(void)bytes;
	return ENOTSUP; /* FreeBSD keeps no per-process figure beyond RSS and the swap it uses */
}

int pl_huge_bytes(const void *p, size_t len, size_t *bytes)
{
	size_t pages = 0;
	int e = superpage_pages(p, len, &pages);
	if (e == 0)
		*bytes = pages * pl_page_size();
	return e;
}

int pl_page_flags(const void *p, unsigned *flags, unsigned *known)
{
	char v = 0;
	const char *page = (const char *)p - ((uintptr_t)p & (pl_page_size() - 1)); /* derived from p: keeps provenance */
	if (mincore(page, pl_page_size(), &v) != 0)
		return errno;
	*known = PL_PF_PRESENT | PL_PF_HUGE;
	*flags = ((v & MINCORE_INCORE) ? PL_PF_PRESENT : 0) | ((v & MINCORE_SUPER) ? PL_PF_HUGE : 0);
	return 0;
}

/* The kernel's map entries of this process (kern.proc.vmmap): a malloc'd buffer of packed records. */
static int vm_entries(char **buf, size_t *len)
{
	int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_VMMAP, (int)getpid()};
	for (int tries = 0; tries < 4; tries++) { /* the map may grow between the two calls */
		*len = 0;
		if (sysctl(mib, 4, NULL, len, NULL, 0) != 0)
			return errno;
		*len += *len / 4 + 4096;
		*buf = malloc(*len);
		if (!*buf)
			return ENOMEM;
		if (sysctl(mib, 4, *buf, len, NULL, 0) == 0)
			return 0;
		int e = errno;
		free(*buf);
		if (e != ENOMEM)
			return e;
	}
	return EAGAIN;
}

int pl_mapping_count(const void *p, size_t len, size_t *count)
{
	char *buf;
	size_t size;
	int e = vm_entries(&buf, &size);
	if (e)
		return e;
	uint64_t lo = (uint64_t)(uintptr_t)p, hi = lo + len;
	*count = 0;
	for (size_t off = 0; off + sizeof(int) <= size;) {
		const struct kinfo_vmentry *kve = (const struct kinfo_vmentry *)(const void *)(buf + off);
		if (kve->kve_structsize <= 0)
			break; /* never loop without progress */
		if (kve->kve_start < hi && kve->kve_end > lo)
			++*count;
		off += (size_t)kve->kve_structsize;
	}
	free(buf);
	return 0;
}

int pl_swap_total(uint64_t *bytes)
{
	uint64_t v = 0;
	size_t len = sizeof(v);
	if (sysctlbyname("vm.swap_total", &v, &len, NULL, 0) != 0)
		return errno;
	if (len != sizeof(v))
		return ENOTSUP;
	*bytes = v;
	return 0;
}

const char *pl_huge_unavailable(void)
{
	return "FreeBSD promotes superpages by itself (reservations, vm.pmap.pg_ps_enabled): there is no "
	       "transparent-huge-page advice to ask for one";
}

int pl_folio_bytes(const void *p, size_t *bytes)
{
	(void)p; (void)bytes;
	return ENOTSUP;
}

int pl_force_write(void *p, unsigned char byte)
{
	(void)p; (void)byte;
	return ENOTSUP; /* ptrace(PT_WRITE_D) needs a tracer: not from inside the process */
}

int pl_memlimit_create(size_t bytes, struct pl_memlimit **out, const char **why)
{
	(void)bytes; (void)out;
	*why = "FreeBSD's rctl limits need privileges and a kernel option (RACCT): not made here";
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
