/* mmap: anonymous zero-fill, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_NORESERVE,
 * MAP_POPULATE, and the errors allocators rely on. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pl_abi.h"

#define RW (PROT_READ | PROT_WRITE)
#define NOREPLACE PC_FB(PC_F_MAP_FIXED_NOREPLACE)

/* An address range of `pages` pages that was free a moment ago (reserved, then unmapped). */
static char *free_range(struct pc_ctx *ctx, size_t pages)
{
	size_t len = pages * pl_page_size();
	void *p;
	PC_SETUP(ctx, pl_reserve(len, 0, &p));
	PC_SETUP(ctx, pl_unmap(p, len));
	return p;
}

/* mmap and report errno, or 0 with *out set. */
static int try_mmap(void *hint, size_t len, int prot, int flags, int fd, off_t off, void **out)
{
	void *p = mmap(hint, len, prot, flags, fd, off);
	if (p == MAP_FAILED)
		return errno;
	*out = p;
	return 0;
}

PC_PROBE_KINDS(anon_zero_fill, "mmap.anon.zero_fill", PC_ANON_KINDS | PC_THP,
	       "fresh anonymous memory reads zero on every page")
{
	struct pc_map m;
	size_t len = 64 * pl_page_size();
	pc_map_or_skip(ctx, len, &m);
	bool zero = pc_all_bytes(m.addr, m.len, 0);
	pc_observe(ctx, "contents", "%s", zero ? "zero" : "nonzero");
	PC_CHECK(ctx, zero, "fresh anonymous memory is not zero-filled");
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(anon_partial_page_length, "mmap.anon.partial_page_length",
	 "a length that is not a page multiple maps whole pages: the rest of the last page is usable and zero")
{
	size_t ps = pl_page_size();
	char *r;
	PC_SETUP(ctx, pl_reserve(3 * ps, 0, (void **)&r));
	void *p;
	PC_SETUP(ctx, try_mmap(r, ps + 1, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0, &p));
	PC_CHECK(ctx, p == r, "MAP_FIXED returned %p, asked for %p", p, (void *)r);
	int tail = pc_access_faults(r + 2 * ps - 1, true, 7);
	int beyond = pc_access_faults(r + 2 * ps, false, 0);
	pc_observe(ctx, "last_page", "%s", tail ? "faults" : "usable");
	pc_observe(ctx, "page_after", "%s", beyond ? "faults" : "accessible");
	PC_CHECK(ctx, tail == 0, "the rest of the last page faults (signal %d)", tail);
	PC_CHECK(ctx, beyond != 0, "the page after the rounded length is accessible");
	PC_CHECK(ctx, pc_all_bytes(r + ps, ps - 1, 0), "the last page is not zero");
	PC_SETUP(ctx, pl_unmap(r, 3 * ps));
	pc_pass(ctx);
}

PC_PROBE_KINDS(fixed_replaces, "mmap.fixed.replaces", PC_ANON_KINDS | PC_FILE_KINDS,
	       "MAP_FIXED over part of a mapping replaces exactly those pages with fresh zero memory")
{
	size_t ps = pl_page_size();
	struct pc_map m;
	pc_map_or_skip(ctx, 4 * ps, &m);
	char *b = m.addr;
	pc_fill(b, ps, 1);
	pc_fill(b + ps, 2 * ps, 2);
	pc_fill(b + 3 * ps, ps, 3);
	void *p;
	PC_SETUP(ctx, try_mmap(b + ps, 2 * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0, &p));
	PC_CHECK(ctx, p == b + ps, "MAP_FIXED returned %p, asked for %p", p, (void *)(b + ps));
	const char *inside = pc_contents(b + ps, 2 * ps, 2);
	bool kept = pc_check_fill(b, ps, 1) && pc_check_fill(b + 3 * ps, ps, 3);
	pc_observe(ctx, "contents_after", "%s", inside);
	pc_observe(ctx, "neighbours", "%s", kept ? "kept" : "changed");
	PC_CHECK(ctx, strcmp(inside, "zero") == 0, "replaced pages read %s, expected zero", inside);
	PC_CHECK(ctx, kept, "a neighbouring page changed");
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(hint_not_fixed, "mmap.hint.existing_mapping_kept",
	 "a hint (no MAP_FIXED) at an existing mapping gives another address and leaves the mapping alone")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(2 * ps, (void **)&b));
	pc_fill(b, 2 * ps, 4);
	void *p;
	PC_SETUP(ctx, try_mmap(b, 2 * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &p));
	pc_observe(ctx, "address", "%s", p == b ? "same" : "other");
	PC_CHECK(ctx, p != b, "a hint replaced an existing mapping");
	PC_CHECK(ctx, pc_check_fill(b, 2 * ps, 4), "the existing mapping changed");
	PC_SETUP(ctx, pl_unmap(p, 2 * ps));
	PC_SETUP(ctx, pl_unmap(b, 2 * ps));
	pc_pass(ctx);
}

/* "eexist", "treated_as_hint" (flag ignored: old kernels) or "replaced". */
static const char *noreplace_outcome(void *want, void *got, int e)
{
	if (e == EEXIST)
		return "eexist";
	if (e)
		return pl_errno_name(e);
	return got == want ? "replaced" : "treated_as_hint";
}

/* MAP_FIXED_NOREPLACE over pages [off, off+len) of four, the first two of which are mapped. */
static void noreplace_over(struct pc_ctx *ctx, size_t off_pages, size_t len_pages)
{
	size_t ps = pl_page_size();
	char *b = free_range(ctx, 4);
	void *m, *got = NULL;
	PC_SETUP(ctx, try_mmap(b, 2 * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0, &m));
	pc_fill(b, 2 * ps, 5);
	char *want = b + off_pages * ps;
	int e = try_mmap(want, len_pages * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			 -1, 0, &got);
	const char *what = noreplace_outcome(want, got, e);
	pc_observe(ctx, "result", "%s", what);
	PC_CHECK(ctx, pc_check_fill(b, 2 * ps, 5), "the existing mapping changed (result %s)", what);
	PC_CHECK(ctx, e == EEXIST, "expected EEXIST, got %s", what);
	PC_SETUP(ctx, pl_unmap(b, 4 * ps));
	pc_pass(ctx);
}

PC_PROBE_NEEDS(fixed_noreplace_eexist, "mmap.fixed_noreplace.eexist_over_mapping", NOREPLACE,
	       "MAP_FIXED_NOREPLACE over an existing mapping fails with EEXIST and keeps it")
{
	noreplace_over(ctx, 0, 2);
}

PC_PROBE_NEEDS(fixed_noreplace_partial, "mmap.fixed_noreplace.eexist_partial_overlap", NOREPLACE,
	       "MAP_FIXED_NOREPLACE overlapping a mapping's last page and free pages fails with EEXIST")
{
	noreplace_over(ctx, 1, 2);
}

PC_PROBE_NEEDS(fixed_noreplace_free, "mmap.fixed_noreplace.free_range_exact", NOREPLACE,
	       "MAP_FIXED_NOREPLACE at a free address maps exactly there")
{
	size_t ps = pl_page_size();
	char *b = free_range(ctx, 2);
	void *got;
	int e = try_mmap(b, 2 * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0, &got);
	if (e)
		pc_fail_refused(ctx, "MAP_FIXED_NOREPLACE at a free address refused: %s", pc_strerror(e));
	pc_observe(ctx, "address", "%s", got == b ? "exact" : "other");
	PC_CHECK(ctx, got == b, "mapped at %p, asked for %p", got, (void *)b);
	PC_CHECK(ctx, pc_all_bytes(got, 2 * ps, 0), "the new mapping is not zero");
	PC_SETUP(ctx, pl_unmap(got, 2 * ps));
	pc_pass(ctx);
}

/* Physical memory plus swap, in bytes (swap only where the system reports it). */
static uint64_t memory_plus_swap(void)
{
	uint64_t swap = 0;
	long pages = sysconf(_SC_PHYS_PAGES);
	if (pl_swap_total(&swap) != 0)
		swap = 0;
	return (pages > 0 ? (uint64_t)pages * pl_page_size() : 0) + swap;
}

/* A reason the huge reservation cannot be tried here, or NULL. */
static const char *noreserve_obstacle(uint64_t len)
{
	struct rlimit rl;
	if (sizeof(void *) < 8 || len >= SIZE_MAX / 2)
		return "address space smaller than twice memory plus swap";
	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (uint64_t)rl.rlim_cur < len * 2) /* room for it and what is already mapped */
		return "RLIMIT_AS is below the reservation size";
	bool strict = false;
	if (pl_commit_strict(&strict) == 0 && strict)
		return "strict commit accounting (vm.overcommit_memory=2) ignores MAP_NORESERVE";
	return NULL;
}

/* Touch the first, middle and last page of a huge reservation: each reads zero and keeps a write. */
static bool touch_spread(char *p, size_t len)
{
	size_t ps = pl_page_size();
	size_t at[3] = {0, len / 2 / ps * ps, len - ps};
	for (int i = 0; i < 3; i++) {
		if (p[at[i]] != 0)
			return false;
		p[at[i] + 1] = (char)(i + 1);
		if (p[at[i] + 1] != (char)(i + 1))
			return false;
	}
	return true;
}

PC_PROBE(noreserve_huge, "mmap.noreserve.larger_than_memory",
	 "MAP_NORESERVE reserves twice memory+swap; touching a few pages works")
{
	if (MAP_NORESERVE & PL_ABSENT_FLAG) /* nothing to ask the system: Linux ignores a flag it does not know */
		pc_skip_unsupported(ctx, "this system's headers do not define MAP_NORESERVE");
	uint64_t len = 2 * memory_plus_swap();
	len = (len + pl_page_size() - 1) / pl_page_size() * pl_page_size();
	const char *why = noreserve_obstacle(len);
	if (why)
		pc_skip_prerequisite(ctx, "%s", why);
	pc_measure(ctx, "reservation_gib", "%.1f", (double)len / (1 << 30));
	void *p;
	int e = try_mmap(NULL, (size_t)len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &p);
	pc_observe(ctx, "with_noreserve", "%s", e ? pl_errno_name(e) : "mapped");
	PC_CHECK(ctx, e == 0, "MAP_NORESERVE of %.1f GiB refused: %s", (double)len / (1 << 30),
		 pc_strerror(e));
	PC_CHECK(ctx, touch_spread(p, (size_t)len), "a touched page did not read zero or keep a write");
	PC_SETUP(ctx, pl_unmap(p, (size_t)len));
	e = try_mmap(NULL, (size_t)len, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &p);
	pc_observe(ctx, "without_noreserve", "%s", e ? pl_errno_name(e) : "mapped");
	if (e == 0)
		PC_SETUP(ctx, pl_unmap(p, (size_t)len));
	pc_pass(ctx);
}

/* Replace the probe's mapping with one of the same kind made with MAP_POPULATE. */
static void remap_populated(struct pc_ctx *ctx, struct pc_map *m)
{
	PC_SETUP(ctx, pl_unmap(m->addr, m->len));
	m->addr = NULL;
	int e = try_mmap(NULL, m->len, RW, m->flags | MAP_POPULATE, m->fd, 0, &m->addr);
	if (e == ENOMEM || e == EAGAIN) /* populating needs the memory now */
		pc_skip_prerequisite(ctx, "mmap(MAP_POPULATE) of %zu bytes: %s", m->len, pl_errno_name(e));
	if (e)
		pc_refusal(ctx, pc_fmt("mmap(MAP_POPULATE) of %s memory", pc_kind_name(m->kind)), e,
			   pc_unknown_map_type_errno());
}

PC_PROBE_KINDS_NEEDS(populate_resident, "mmap.populate.resident", PC_ANON_KINDS | PC_FILE_KINDS,
		     PC_FB(PC_F_MAP_POPULATE),
	       "MAP_POPULATE leaves every page resident before first touch, reading zero")
{
	struct pc_map m;
	size_t pages = 64, resident;
	pc_map_or_skip(ctx, pages * pl_page_size(), &m);
	remap_populated(ctx, &m);
	resident = pc_obs_resident_pages(ctx, m.addr, m.len);
	pc_measure(ctx, "resident_pages", "%zu/%zu", resident, pages);
	pc_observe(ctx, "all_resident", "%s", resident == pages ? "yes" : "no");
	PC_CHECK(ctx, resident == pages, "%zu of %zu pages resident after MAP_POPULATE", resident, pages);
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "populated pages are not zero");
	pc_unmap(&m);
	pc_pass(ctx);
}

/* One mmap call that must fail with EINVAL (POSIX lists each case). */
static void expect_einval(struct pc_ctx *ctx, void *hint, size_t len, int flags, int fd, off_t off)
{
	void *p = NULL;
	int e = try_mmap(hint, len, RW, flags, fd, off, &p);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none (mapped)");
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}

PC_PROBE(einval_len_zero, "mmap.einval.length_zero", "mmap of length 0 fails with EINVAL")
{
	expect_einval(ctx, NULL, 0, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

PC_PROBE(einval_fixed_unaligned, "mmap.einval.fixed_unaligned_addr",
	 "MAP_FIXED at an address that is not page-aligned fails with EINVAL")
{
	char *b = free_range(ctx, 2);
	expect_einval(ctx, b + 1, pl_page_size(), MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

PC_PROBE(einval_no_type, "mmap.einval.no_private_or_shared",
	 "flags with neither MAP_PRIVATE nor MAP_SHARED fail with EINVAL")
{
	expect_einval(ctx, NULL, pl_page_size(), MAP_ANONYMOUS, -1, 0);
}

PC_PROBE(einval_offset, "mmap.einval.unaligned_offset",
	 "a file offset that is not page-aligned fails with EINVAL")
{
	struct pc_map m;
	const char *why = NULL;
	int e = pc_map(ctx, PC_SHARED_FILE, 2 * pl_page_size(), &m, &why);
	if (e)
		pc_error(ctx, "backing file: %s", why ? why : pc_strerror(e));
	expect_einval(ctx, NULL, pl_page_size(), MAP_SHARED, m.fd, 1);
}
