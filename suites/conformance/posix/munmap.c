/* munmap: access after unmapping faults, partial unmaps split a mapping, and
 * the cases allocators meet: holes, never-mapped ranges, unaligned arguments. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>

/* munmap and report errno. */
static int try_munmap(void *p, size_t len)
{
	return munmap(p, len) == 0 ? 0 : errno;
}

PC_PROBE_KINDS(access_faults, "munmap.access_faults", PC_ANON_KINDS | PC_FILE_KINDS | PC_THP,
	       "reading or writing an unmapped range faults")
{
	struct pc_map m;
	pc_map_or_skip(ctx, 4 * pl_page_size(), &m);
	char *b = m.addr;
	pc_fill(b, m.len, 1);
	PC_SETUP(ctx, try_munmap(b, m.len));
	/* Nothing is mapped there any more: SIGSEGV with SEGV_MAPERR (POSIX). */
	pc_expect_fault(ctx, "read_fault", b, false, PL_FAULT_UNMAPPED);
	pc_expect_fault(ctx, "write_fault", b + m.len - 1, true, PL_FAULT_UNMAPPED);
	pc_pass(ctx);
}

PC_PROBE(partial_middle, "munmap.partial.middle_page",
	 "unmapping the middle page leaves both neighbours mapped with their contents")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&b));
	pc_fill(b, ps, 1);
	pc_fill(b + 2 * ps, ps, 3);
	PC_SETUP(ctx, try_munmap(b + ps, ps));
	int mid = pc_access_faults(b + ps, false, 0);
	pc_observe(ctx, "middle", "%s", mid ? "faults" : "accessible");
	PC_CHECK(ctx, mid > 0, "the unmapped middle page is still accessible");
	PC_CHECK(ctx, pc_check_fill(b, ps, 1) && pc_check_fill(b + 2 * ps, ps, 3),
		 "a neighbour lost its contents");
	PC_CHECK(ctx, pc_access_faults(b + 2 * ps, true, 9) == 0, "the last page is no longer writable");
	PC_SETUP(ctx, try_munmap(b, 3 * ps));
	pc_pass(ctx);
}

PC_PROBE(length_rounds_up, "munmap.partial.length_rounds_up",
	 "munmap removes every page that contains part of the range (POSIX), no more")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&b));
	pc_fill(b + 2 * ps, ps, 3);
	int e = try_munmap(b, ps + 1);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == 0, "munmap of a length that is not a page multiple failed: %s", pc_strerror(e));
	int second = pc_access_faults(b + ps, false, 0);
	pc_observe(ctx, "page_with_last_byte", "%s", second ? "unmapped" : "still_mapped");
	PC_CHECK(ctx, second > 0, "the page holding the range's last byte is still mapped");
	PC_CHECK(ctx, pc_check_fill(b + 2 * ps, ps, 3), "the page after the range changed");
	PC_SETUP(ctx, try_munmap(b + 2 * ps, ps));
	pc_pass(ctx);
}

PC_PROBE(over_hole, "munmap.hole.succeeds",
	 "munmap over a range with a hole in it succeeds and unmaps the rest")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&b));
	PC_SETUP(ctx, try_munmap(b + ps, ps));
	int e = try_munmap(b, 3 * ps);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == 0, "munmap over a hole failed: %s", pc_strerror(e));
	PC_CHECK(ctx, pc_access_faults(b, false, 0) > 0, "the first page is still mapped");
	PC_CHECK(ctx, pc_access_faults(b + 2 * ps, false, 0) > 0, "the last page is still mapped");
	pc_pass(ctx);
}

PC_PROBE(never_mapped, "munmap.unmapped_range.succeeds",
	 "munmap of a range with no mapping in it succeeds (POSIX: no effect)")
{
	size_t ps = pl_page_size();
	void *b;
	PC_SETUP(ctx, pl_reserve(4 * ps, 0, &b));
	PC_SETUP(ctx, try_munmap(b, 4 * ps));
	int e = try_munmap(b, 4 * ps);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == 0, "munmap of an empty range failed: %s", pc_strerror(e));
	pc_pass(ctx);
}

/* One munmap call that must fail with EINVAL and leave the mapping in place. */
static void expect_einval(struct pc_ctx *ctx, size_t addr_off, size_t len)
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(2 * ps, (void **)&b));
	pc_fill(b, 2 * ps, 2);
	int e = try_munmap(b + addr_off, len);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	PC_CHECK(ctx, pc_check_fill(b, 2 * ps, 2), "the mapping changed after a refused munmap");
	PC_SETUP(ctx, try_munmap(b, 2 * ps));
	pc_pass(ctx);
}

/* POSIX lets munmap at an address inside a page fail with EINVAL or remove the
 * whole pages the range touches; either is accepted and recorded. */
PC_PROBE(unaligned, "munmap.unaligned_addr",
	 "munmap at an address inside a page: EINVAL (mapping kept) or the touched pages removed (observed)")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&b));
	pc_fill(b, 3 * ps, 2);
	int e = try_munmap(b + 1, ps);
	bool gone = pc_access_faults(b, false, 0) > 0 && pc_access_faults(b + ps, false, 0) > 0;
	pc_observe(ctx, "result", "%s", e == EINVAL ? "einval" : e ? pl_errno_name(e) : "rounded_to_pages");
	PC_CHECK(ctx, e == 0 || e == EINVAL, "expected EINVAL or success, got %s", pc_strerror(e));
	PC_CHECK(ctx, e != EINVAL || pc_check_fill(b, 3 * ps, 2), "a refused munmap changed the mapping");
	PC_CHECK(ctx, e != 0 || gone, "munmap succeeded but a page it covers is still mapped");
	PC_CHECK(ctx, pc_access_faults(b + 2 * ps, false, 0) == 0, "the page after the range was unmapped");
	pc_pass(ctx);
}

PC_PROBE(einval_len_zero, "munmap.einval.length_zero", "munmap of length 0 fails with EINVAL")
{
	expect_einval(ctx, 0, 0);
}
