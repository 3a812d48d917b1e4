/* mremap (Linux): growing in place, moving with MREMAP_MAYMOVE, MREMAP_FIXED,
 * MREMAP_DONTUNMAP, shrinking, and the EINVAL/ENOMEM cases. Contents must
 * survive every move. Systems without the Linux form skip: their mremap (if any) differs. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define RW (PROT_READ | PROT_WRITE)
#define MREMAP_F PC_FB(PC_F_MREMAP)
#define FIXED_F (PC_FB(PC_F_MREMAP) | PC_FB(PC_F_MREMAP_FIXED))

/* A fresh anonymous mapping of `prot` at exactly addr, over our own reservation. */
static void map_at(struct pc_ctx *ctx, char *addr, size_t len, int prot)
{
	void *p = mmap(addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		pc_error(ctx, "mapping at %p: %s", (void *)addr, pc_strerror(errno));
}

/* Make sure the page after [p, p+len) is mapped, so growth must move. True
 * when that is proven: the block landed there, or MAP_FIXED_NOREPLACE said
 * EEXIST. Without MAP_FIXED_NOREPLACE a hint that lands elsewhere suggests the
 * page is taken (Linux honours a free hint), which nothing promises. */
static bool block_after(struct pc_ctx *ctx, char *p, size_t len)
{
	size_t ps = pl_page_size();
	int noreplace = pc_feature_present(PC_F_MAP_FIXED_NOREPLACE) ? MAP_FIXED_NOREPLACE : 0;
	void *q = mmap(p + len, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | noreplace, -1, 0);
	if (q == MAP_FAILED && errno != EEXIST)
		pc_error(ctx, "blocking the page after the mapping: %s", pc_strerror(errno));
	if (q != MAP_FAILED && q != p + len)
		PC_SETUP(ctx, pl_unmap(q, ps));
	return q == p + len || (q == MAP_FAILED && noreplace);
}

/* An inaccessible reservation of `pages` pages to map into with MAP_FIXED. */
static char *reserve_range(struct pc_ctx *ctx, size_t pages)
{
	void *p;
	PC_SETUP(ctx, pl_reserve(pages * pl_page_size(), 0, &p));
	return p;
}

PC_PROBE_NEEDS(grow_in_place, "mremap.grow.in_place", MREMAP_F,
	 "growing into free address space keeps the address and the contents; the new part reads zero")
{
	size_t ps = pl_page_size();
	char *b = reserve_range(ctx, 4);
	map_at(ctx, b, 2 * ps, RW);
	PC_SETUP(ctx, pl_unmap(b + 2 * ps, 2 * ps));
	pc_fill(b, 2 * ps, 1);
	void *p;
	int e = pc_mremap(b, 2 * ps, 4 * ps, 0, NULL, &p);
	PC_CHECK(ctx, e == 0, "growing into free space failed: %s", pc_strerror(e));
	pc_observe(ctx, "moved", "%s", p == b ? "no" : "yes");
	PC_CHECK(ctx, p == b, "mremap without MREMAP_MAYMOVE moved the mapping");
	PC_CHECK(ctx, pc_check_fill(b, 2 * ps, 1), "contents lost while growing");
	PC_CHECK(ctx, pc_all_bytes(b + 2 * ps, 2 * ps, 0), "the grown part is not zero");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(grow_blocked, "mremap.grow.enomem_without_maymove", MREMAP_F,
	 "growing into a mapped page without MREMAP_MAYMOVE fails with ENOMEM and changes nothing")
{
	size_t ps = pl_page_size();
	char *b = reserve_range(ctx, 2);
	map_at(ctx, b, ps, RW); /* the second page stays reserved (PROT_NONE): the obstacle */
	pc_fill(b, ps, 2);
	void *p;
	int e = pc_mremap(b, ps, 2 * ps, 0, NULL, &p);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == ENOMEM, "expected ENOMEM, got %s", e ? pc_strerror(e) : "success");
	PC_CHECK(ctx, pc_check_fill(b, ps, 2), "the mapping changed");
	PC_CHECK(ctx, pc_access_faults(b + ps, false, 0) > 0, "the blocking PROT_NONE page became accessible");
	pc_pass(ctx);
}

/* What the grown part of a moved mapping gives: "zero", "SIGBUS" (past the end of the object) ... */
static const char *grown_part(char *p, size_t len)
{
	int sig = pc_access_faults(p, false, 0);
	if (sig == SIGBUS)
		return "SIGBUS";
	if (sig)
		return "SIGSEGV";
	return pc_all_bytes(p, len, 0) ? "zero" : "nonzero";
}

PC_PROBE_KINDS_NEEDS(maymove_grow, "mremap.maymove.grow_moves", PC_ANON_KINDS | PC_FILE_KINDS | PC_THP,
	       MREMAP_F,
	       "growing with MREMAP_MAYMOVE when the next page is taken moves the mapping with its contents")
{
	struct pc_map m;
	pc_map_or_skip(ctx, 2 * pl_page_size(), &m);
	pc_fill(m.addr, m.len, 3);
	bool blocked = block_after(ctx, m.addr, m.len);
	void *p;
	int e = pc_mremap(m.addr, m.len, 2 * m.len, MREMAP_MAYMOVE, NULL, &p);
	PC_CHECK(ctx, e == 0, "mremap with MREMAP_MAYMOVE failed: %s", pc_strerror(e));
	pc_observe(ctx, "moved", "%s", p == m.addr ? "no" : "yes");
	if (blocked)
		PC_CHECK(ctx, p != m.addr, "grew in place over a mapped page");
	else
		PC_BEHAVIOUR(ctx, p != m.addr, "expected a move (the hint for the next page was not honoured, "
			     "taken as the page being in use), saw growth in place");
	PC_CHECK(ctx, pc_check_fill(p, m.len, 3), "contents lost in the move");
	PC_CHECK(ctx, pc_access_faults(m.addr, false, 0) > 0, "the old address is still mapped");
	const char *tail = grown_part((char *)p + m.len, m.len);
	pc_observe(ctx, "grown_part", "%s", tail);
	bool private_anon = pc_kind_private_anon(m.kind);
	/* Shared and file objects keep their size: past the end is SIGBUS or zero. */
	PC_CHECK(ctx, strcmp(tail, "zero") == 0 || (!private_anon && strcmp(tail, "SIGBUS") == 0),
		 "grown part of %s memory: %s", pc_kind_name(m.kind), tail);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(shrink, "mremap.shrink.in_place", MREMAP_F,
	 "shrinking keeps the address and the contents of what remains; the cut-off pages fault")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(4 * ps, (void **)&b));
	pc_fill(b, 2 * ps, 4);
	void *p;
	int e = pc_mremap(b, 4 * ps, 2 * ps, 0, NULL, &p);
	PC_CHECK(ctx, e == 0, "shrinking failed: %s", pc_strerror(e));
	PC_CHECK(ctx, p == b, "shrinking moved the mapping");
	PC_CHECK(ctx, pc_check_fill(b, 2 * ps, 4), "contents lost while shrinking");
	int sig = pc_access_faults(b + 2 * ps, false, 0);
	pc_observe(ctx, "cut_pages", "%s", sig ? "fault" : "accessible");
	PC_CHECK(ctx, sig > 0, "a page cut off by shrinking is still accessible");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(fixed_target, "mremap.fixed.moves_to_target", FIXED_F,
	 "MREMAP_FIXED moves the pages to the target, replacing what was there; the source faults")
{
	size_t ps = pl_page_size();
	char *src, *dst;
	PC_SETUP(ctx, pl_map_anon(2 * ps, (void **)&src));
	PC_SETUP(ctx, pl_map_anon(2 * ps, (void **)&dst));
	pc_fill(src, 2 * ps, 5);
	pc_fill(dst, 2 * ps, 6);
	void *p;
	int e = pc_mremap(src, 2 * ps, 2 * ps, MREMAP_MAYMOVE | MREMAP_FIXED, dst, &p);
	PC_CHECK(ctx, e == 0, "MREMAP_FIXED failed: %s", pc_strerror(e));
	pc_observe(ctx, "address", "%s", p == dst ? "target" : "other");
	PC_CHECK(ctx, p == dst, "moved to %p, asked for %p", p, (void *)dst);
	const char *at_target = pc_contents(dst, 2 * ps, 5);
	pc_observe(ctx, "target_contents", "%s", at_target);
	PC_CHECK(ctx, strcmp(at_target, "old") == 0, "target holds %s, expected the moved contents", at_target);
	PC_CHECK(ctx, pc_access_faults(src, false, 0) > 0, "the source is still mapped");
	pc_pass(ctx);
}

/* One mremap call on a fresh 2-page mapping that must fail with EINVAL. */
static void expect_einval(struct pc_ctx *ctx, size_t off, int flags, size_t target_off)
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(4 * ps, (void **)&b));
	pc_fill(b, 2 * ps, 7);
	void *p;
	int e = pc_mremap(b + off, 2 * ps, 2 * ps, flags, b + target_off, &p);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	int sig = pc_access_faults(b, false, 0) | pc_access_faults(b + 2 * ps - 1, false, 0);
	pc_observe(ctx, "source_after", "%s", sig ? "unmapped" : "mapped");
	PC_CHECK(ctx, sig == 0, "a refused mremap unmapped the source mapping");
	PC_CHECK(ctx, pc_check_fill(b, 2 * ps, 7), "the mapping changed after a refused mremap");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(einval_overlap, "mremap.fixed.einval_overlapping_target", FIXED_F,
	 "MREMAP_FIXED to a target that overlaps the source fails with EINVAL")
{
	expect_einval(ctx, 0, MREMAP_MAYMOVE | MREMAP_FIXED, pl_page_size());
}

PC_PROBE_NEEDS(einval_fixed_alone, "mremap.fixed.einval_without_maymove", FIXED_F,
	 "MREMAP_FIXED without MREMAP_MAYMOVE fails with EINVAL")
{
	expect_einval(ctx, 0, MREMAP_FIXED, 2 * pl_page_size());
}

PC_PROBE_NEEDS(einval_unaligned, "mremap.einval.unaligned_addr", MREMAP_F,
	 "mremap of an address that is not page-aligned fails with EINVAL")
{
	expect_einval(ctx, 1, MREMAP_MAYMOVE, 0);
}

/* What the old range must read after MREMAP_DONTUNMAP: private anonymous memory
 * is demand-zero; a private file mapping re-reads the file (zeros here); a
 * shared mapping still shows the shared object, which holds the data. */
static const char *dontunmap_expected(enum pc_kind kind)
{
	return pc_kind_shared(kind) ? "old" : "zero";
}

/* What mremap answers for a flag no system defines, on a scratch page of its own. */
static int unknown_flag_errno(struct pc_ctx *ctx)
{
	size_t ps = pl_page_size();
	void *p, *q = NULL;
	PC_SETUP(ctx, pl_map_anon(ps, &p));
	int e = pc_mremap(p, ps, ps, MREMAP_MAYMOVE | 0x40000000, NULL, &q);
	PC_SETUP(ctx, pl_unmap(e ? p : q, ps));
	return e;
}

PC_PROBE_KINDS_NEEDS(dontunmap, "mremap.dontunmap.old_range", PC_ANON_KINDS | PC_FILE_KINDS | PC_THP,
	       MREMAP_F | PC_FB(PC_F_MREMAP_DONTUNMAP),
	       "MREMAP_DONTUNMAP moves the pages and leaves the old range mapped (demand-zero for private anon)")
{
	struct pc_map m;
	pc_map_or_skip(ctx, 4 * pl_page_size(), &m);
	pc_fill(m.addr, m.len, 8);
	void *p;
	int e = pc_mremap(m.addr, m.len, m.len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL, &p);
	/* EINVAL, as for an unknown flag, before 5.7, and for other than private anonymous memory before 5.13. */
	if (e)
		pc_refusal(ctx, pc_fmt("mremap(MREMAP_DONTUNMAP) of %s memory", pc_kind_name(m.kind)), e,
			   unknown_flag_errno(ctx));
	const char *moved = pc_contents(p, m.len, 8);
	int sig = pc_access_faults(m.addr, false, 0);
	const char *old = sig ? "faults" : pc_contents(m.addr, m.len, 8);
	pc_observe(ctx, "new_range", "%s", moved);
	pc_observe(ctx, "old_range", "%s", old);
	PC_CHECK(ctx, strcmp(moved, "old") == 0, "the new range holds %s, expected the old contents", moved);
	PC_CHECK(ctx, strcmp(old, dontunmap_expected(m.kind)) == 0, "the old range reads %s, expected %s",
		 old, dontunmap_expected(m.kind));
	pc_pass(ctx);
}
