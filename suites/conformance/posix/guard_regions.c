/* Guard regions (MADV_GUARD_INSTALL / MADV_GUARD_REMOVE, Linux 6.13; file
 * mappings 6.15) through everything else that can happen to a range: gaps and
 * several mappings, process_madvise, munmap, mprotect splits and merges,
 * mlock, mremap moves, growth and shrinking, fork with and without
 * MADV_WIPEONFORK, MADV_FREE, populate, reclaim advice, userfaultfd, file
 * truncation and hole punching, seals, read-only files, private mappings of a
 * shared file, and MADV_COLLAPSE. A guard page faults with SIGSEGV on any
 * access (the si_code is recorded: Linux reports SEGV_MAPERR on x86-64);
 * what a guard may not do is vanish, spread, or eat data. Kinds: private
 * anonymous memory, shared memory (memfd) and a file on disk. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "duet.h"
#include "pl_abi.h"

#define PAGES 10
#define GUARD_KINDS (PC_PRIVATE_ANON | PC_SHARED_FILE | PC_SHARED_DISK)
#define SEED 29
#define GUARD PC_FB(PC_F_MADV_GUARD)
#define UNKNOWN_ADVICE 0x7a31 /* an advice no system defines */

static size_t ps;

/* The first guard fault's name, recorded once. */
static bool recorded;

/* Does every access to the page fault with SIGSEGV (a guard), or does none (accessible)? The write
 * stores the byte already there, so checking changes no data. */
static bool page_guarded(struct pc_ctx *ctx, char *p)
{
	struct pl_fault r = pc_access(p, false, 0);
	struct pl_fault w = pc_access(p, true, r.kind == PL_FAULT_NONE ? *(volatile unsigned char *)p : 0);
	if (!recorded && r.kind != PL_FAULT_NONE) {
		pc_observe(ctx, "guard_fault", "%s", r.name);
		recorded = true;
	}
	if (r.kind != PL_FAULT_NONE && (r.sig != SIGSEGV || w.sig != SIGSEGV))
		pc_fail(ctx, "a guard page faulted with %s / %s, not SIGSEGV", r.name, w.name);
	PC_CHECK(ctx, (r.kind == PL_FAULT_NONE) == (w.kind == PL_FAULT_NONE),
		 "a page faults on %s only", r.kind == PL_FAULT_NONE ? "writes" : "reads");
	return r.kind != PL_FAULT_NONE;
}

/* Pages [from, to) of base are guarded (want=true) or accessible. */
static void expect_pages(struct pc_ctx *ctx, char *base, size_t from, size_t to, bool want, const char *when)
{
	for (size_t i = from; i < to; i++)
		PC_CHECK(ctx, page_guarded(ctx, base + i * ps) == want, "%s: page %zu is %s", when, i,
			 want ? "accessible, expected a guard" : "guarded, expected accessible");
}

/* Only the even pages of [base, base + n pages) are guarded. */
static void expect_even_guarded(struct pc_ctx *ctx, char *base, size_t n, const char *when)
{
	for (size_t i = 0; i < n; i++)
		expect_pages(ctx, base, i, i + 1, i % 2 == 0, when);
}

static int guard(char *p, size_t len)
{
	return pc_madvise(p, len, MADV_GUARD_INSTALL);
}

static int unguard(char *p, size_t len)
{
	return pc_madvise(p, len, MADV_GUARD_REMOVE);
}

/* The probe's kind, `pages` long, filled; the first guard goes through pc_advise (unsupported is a skip). */
static char *guard_setup(struct pc_ctx *ctx, size_t pages, struct pc_map *m)
{
	ps = pl_page_size();
	pc_need_advice(ctx, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL");
	pc_map_or_skip(ctx, pages * ps, m);
	pc_advise(ctx, m->addr, ps, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL");
	PC_SETUP(ctx, unguard(m->addr, ps));
	pc_fill(m->addr, m->len, SEED);
	return m->addr;
}

/* Page i of base holds what pc_fill(base, ..., SEED) put there. */
static bool page_as_filled(const char *base, int i)
{
	static char *filled;
	static size_t filled_len;
	size_t need = (size_t)(i + 1) * ps;
	if (filled_len < need) {
		free(filled);
		filled = malloc(need);
		if (!filled)
			return false;
		filled_len = need;
		pc_fill(filled, need, SEED);
	}
	return memcmp(base + (size_t)i * ps, filled + (size_t)i * ps, ps) == 0;
}

static void guard_every_even(struct pc_ctx *ctx, char *base, size_t n)
{
	for (size_t i = 0; i < n; i += 2)
		PC_SETUP(ctx, guard(base + i * ps, ps));
}

/* Map at exactly addr: the kind's own object (at the same file offset) or anonymous memory. */
static void map_piece(struct pc_ctx *ctx, const struct pc_map *m, char *addr, size_t len, int prot)
{
	off_t off = m->fd >= 0 ? (off_t)(addr - (char *)m->addr) : 0;
	void *p = mmap(addr, len, prot, m->flags | MAP_FIXED, m->fd, off);
	if (p != addr)
		pc_error(ctx, "mapping a piece at %p: %s", (void *)addr, pc_strerror(errno));
}

static int expect_errno(struct pc_ctx *ctx, const char *what, int got, int want)
{
	pc_observe(ctx, what, "%s", got ? pl_errno_name(got) : "none");
	PC_CHECK(ctx, got == want, "%s: expected %s, got %s", what, want ? pl_errno_name(want) : "success",
		 got ? pc_strerror(got) : "success");
	return got;
}

PC_PROBE_KINDS_NEEDS(multi_vma, "guard.multi_vma.gaps_enomem", GUARD_KINDS, GUARD,
	       "guarding a range with gaps guards every mapping in it and reports ENOMEM; without gaps, 0")
{
	struct pc_map m;
	char *b = guard_setup(ctx, 100, &m);
	PC_SETUP(ctx, pl_unmap(b + 10 * ps, 40 * ps));
	PC_SETUP(ctx, pl_unmap(b + 55 * ps, 25 * ps));
	expect_errno(ctx, "install_over_gaps", guard(b, 100 * ps), ENOMEM);
	expect_pages(ctx, b, 0, 10, true, "after guarding over gaps");
	expect_pages(ctx, b, 50, 55, true, "after guarding over gaps");
	expect_pages(ctx, b, 80, 100, true, "after guarding over gaps");
	expect_errno(ctx, "remove_over_gaps", unguard(b, 100 * ps), ENOMEM);
	expect_pages(ctx, b, 80, 100, false, "after removing over gaps");
	map_piece(ctx, &m, b + 10 * ps, 40 * ps, PROT_READ | PROT_WRITE | PROT_EXEC);
	map_piece(ctx, &m, b + 55 * ps, 25 * ps, PROT_READ | PROT_WRITE | PROT_EXEC);
	expect_errno(ctx, "install_over_five_mappings", guard(b, 100 * ps), 0);
	expect_pages(ctx, b, 0, 100, true, "after guarding five mappings");
	expect_errno(ctx, "remove_over_five_mappings", unguard(b, 100 * ps), 0);
	expect_pages(ctx, b, 0, 100, false, "after removing over five mappings");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(process_madvise_batch, "guard.process_madvise.batched", GUARD_KINDS,
	       GUARD | PC_FB(PC_F_PROCESS_MADVISE),
	       "process_madvise guards the first and last page of three mappings in one call, and removes them")
{
	struct pc_map m;
	char *b = guard_setup(ctx, 30, &m);
	struct pc_iovec v[6] = {{b, ps}, {b + 9 * ps, ps}, {b + 10 * ps, ps}, {b + 14 * ps, ps}, {b + 20 * ps, ps},
				{b + 29 * ps, ps}};
	size_t n;
	PC_SETUP(ctx, pl_protect(b + 10 * ps, 5 * ps, PL_PROT_READ)); /* three mappings */
	PC_SETUP(ctx, pl_protect(b + 10 * ps, 5 * ps, PL_PROT_RW));
	int e = pc_process_madvise_self(v, 6, MADV_GUARD_INSTALL, &n);
	if (e) {
		struct pc_iovec unknown = {b + ps, ps};
		size_t ignored;
		pc_refusal(ctx, "process_madvise(MADV_GUARD_INSTALL)", e,
			   pc_process_madvise_self(&unknown, 1, UNKNOWN_ADVICE, &ignored));
	}
	pc_observe(ctx, "bytes_advised", "%s", n == 6 * ps ? "all" : "part");
	PC_CHECK(ctx, n == 6 * ps, "process_madvise advised %zu bytes of %zu", n, 6 * ps);
	for (int i = 0; i < 6; i++)
		expect_pages(ctx, v[i].base, 0, 1, true, "after process_madvise");
	expect_pages(ctx, b, 1, 9, false, "after process_madvise");
	e = pc_process_madvise_self(v, 6, MADV_GUARD_REMOVE, &n);
	PC_CHECK(ctx, e == 0 && n == 6 * ps, "removing through process_madvise: %s, advised %zu bytes",
		 e ? pl_errno_name(e) : "accepted", n);
	expect_pages(ctx, b, 0, 30, false, "after removing through process_madvise");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(munmap_clears, "guard.munmap.leaves_no_marker", GUARD_KINDS, GUARD,
	       "unmapping guard pages and mapping over them again gives ordinary pages")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	PC_SETUP(ctx, guard(b, ps));
	PC_SETUP(ctx, guard(b + 9 * ps, ps));
	PC_SETUP(ctx, pl_unmap(b, ps));
	PC_SETUP(ctx, pl_unmap(b + 9 * ps, ps));
	map_piece(ctx, &m, b, ps, PROT_READ | PROT_WRITE);
	map_piece(ctx, &m, b + 9 * ps, ps, PROT_READ | PROT_WRITE);
	expect_pages(ctx, b, 0, 1, false, "after munmap and a new mapping");
	expect_pages(ctx, b, 9, 10, false, "after munmap and a new mapping");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(mprotect_keeps, "guard.mprotect.markers_kept", GUARD_KINDS, GUARD,
	       "making guarded pages read-only keeps the guard; guarding again is fine; removal makes them readable")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	PC_SETUP(ctx, guard(b + 5 * ps, 2 * ps));
	PC_SETUP(ctx, pl_protect(b + 5 * ps, 2 * ps, PL_PROT_READ));
	for (int i = 5; i < 7; i++)
		PC_CHECK(ctx, pc_access_faults(b + i * ps, false, 0) == SIGSEGV, "page %d readable after mprotect", i);
	expect_errno(ctx, "guard_again", guard(b + 5 * ps, 2 * ps), 0);
	PC_SETUP(ctx, unguard(b, PAGES * ps));
	for (int i = 0; i < PAGES; i++)
		PC_CHECK(ctx, pc_access_faults(b + i * ps, false, 0) == 0, "page %d unreadable after removal", i);
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(split_merge, "guard.split_merge.markers_follow", GUARD_KINDS, GUARD,
	       "guards survive splitting a mapping by munmap and by mprotect, and merging it back")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	PC_SETUP(ctx, guard(b, PAGES * ps));
	for (int i = 2; i < PAGES; i += 3)
		PC_SETUP(ctx, pl_unmap(b + i * ps, ps));
	for (int i = 0; i < PAGES; i++)
		if (i % 3 != 2)
			expect_pages(ctx, b, i, i + 1, true, "after splitting by munmap");
	for (int i = 2; i < PAGES; i += 3)
		map_piece(ctx, &m, b + i * ps, ps, PROT_READ | PROT_WRITE);
	for (int i = 0; i < PAGES; i++)
		expect_pages(ctx, b, i, i + 1, i % 3 != 2, "after mapping the holes again");
	PC_SETUP(ctx, guard(b, PAGES * ps));
	PC_SETUP(ctx, pl_protect(b, 3 * ps, PL_PROT_READ));
	PC_SETUP(ctx, pl_protect(b + 7 * ps, 3 * ps, PL_PROT_READ));
	PC_SETUP(ctx, pl_protect(b, PAGES * ps, PL_PROT_RW));
	expect_pages(ctx, b, 0, PAGES, true, "after splitting by mprotect and merging again");
	PC_SETUP(ctx, pl_protect(b, 3 * ps, PL_PROT_READ));
	PC_SETUP(ctx, unguard(b, PAGES * ps));
	PC_SETUP(ctx, pl_protect(b, PAGES * ps, PL_PROT_RW));
	expect_pages(ctx, b, 0, PAGES, false, "after removal across split mappings");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(dontneed_keeps, "guard.dontneed.markers_and_data", GUARD_KINDS,
	       GUARD | PC_FB(PC_F_MADV_DONTNEED),
	       "MADV_DONTNEED keeps guards; unguarded pages read zero (private) or the object's data (shared)")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	guard_every_even(ctx, b, PAGES);
	PC_SETUP(ctx, pc_madvise(b, PAGES * ps, MADV_DONTNEED));
	expect_even_guarded(ctx, b, PAGES, "after MADV_DONTNEED");
	bool shared = pc_kind_shared(m.kind);
	for (int i = 1; i < PAGES; i += 2) {
		bool ok = shared ? page_as_filled(b, i) : pc_all_bytes(b + i * ps + 1, ps - 1, 0);
		PC_CHECK(ctx, ok, "page %d after MADV_DONTNEED: expected %s", i, shared ? "the object's data" : "zero");
	}
	pc_observe(ctx, "unguarded_after", "%s", shared ? "object data" : "zero");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(mlock_refuses, "guard.mlock.install_einval", GUARD_KINDS, GUARD | PC_FB(PC_F_MLOCK),
	       "guarding mlocked pages fails with EINVAL; removing guards from mlocked pages is allowed")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	pc_lock_or_skip(ctx, b, PAGES * ps);
	expect_errno(ctx, "install_on_mlocked", guard(b, PAGES * ps), EINVAL);
	PC_SETUP(ctx, munlock(b, PAGES * ps) == 0 ? 0 : errno);
	PC_SETUP(ctx, guard(b, 5 * ps));
	expect_pages(ctx, b, 0, 5, true, "after guarding the unlocked half");
	PC_SETUP(ctx, mlock(b + 5 * ps, 5 * ps) == 0 ? 0 : errno);
	expect_errno(ctx, "remove_over_mlocked", unguard(b, PAGES * ps), 0);
	expect_pages(ctx, b, 0, PAGES, false, "after removing guards next to locked pages");
	pc_pass(ctx);
}

/* A move or resize the probe needs (its form is a declared feature): a refusal is the contract's. */
static char *remap(struct pc_ctx *ctx, char *old, size_t old_len, size_t new_len, int flags, char *to)
{
	void *p;
	int e = pc_mremap(old, old_len, new_len, flags, to, &p);
	if (e)
		pc_fail_refused(ctx, "mremap of %zu bytes to %zu (flags %#x) with guard pages: %s", old_len, new_len,
				(unsigned)flags, pc_strerror(e));
	return p;
}

PC_PROBE_KINDS_NEEDS(mremap_move, "guard.mremap.move_keeps_markers", GUARD_KINDS,
	       GUARD | PC_FB(PC_F_MREMAP) | PC_FB(PC_F_MREMAP_FIXED),
	       "moving a mapping with mremap carries its guard pages with it")
{
	struct pc_map m;
	char *b = guard_setup(ctx, 5, &m), *to;
	PC_SETUP(ctx, guard(b, ps));
	PC_SETUP(ctx, guard(b + 4 * ps, ps));
	PC_SETUP(ctx, pl_reserve(5 * ps, 0, (void **)&to));
	b = remap(ctx, b, 5 * ps, 5 * ps, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	expect_pages(ctx, b, 0, 1, true, "after the move");
	expect_pages(ctx, b, 1, 4, false, "after the move");
	expect_pages(ctx, b, 4, 5, true, "after the move");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(mremap_expand, "guard.mremap.expand_keeps_markers", PC_PRIVATE_ANON,
	       GUARD | PC_FB(PC_F_MREMAP) | PC_FB(PC_F_MREMAP_FIXED),
	       "growing a mapping in place and by moving keeps its guards where they were")
{
	struct pc_map m;
	char *b = guard_setup(ctx, 10, &m), *to;
	PC_SETUP(ctx, pl_unmap(b + 5 * ps, 5 * ps));
	PC_SETUP(ctx, guard(b, ps));
	PC_SETUP(ctx, guard(b + 4 * ps, ps));
	b = remap(ctx, b, 5 * ps, 10 * ps, 0, NULL);
	expect_pages(ctx, b, 0, 1, true, "after growing in place");
	expect_pages(ctx, b, 4, 5, true, "after growing in place");
	PC_SETUP(ctx, pl_reserve(20 * ps, 0, (void **)&to));
	b = remap(ctx, b, 10 * ps, 20 * ps, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	expect_pages(ctx, b, 0, 1, true, "after growing by moving");
	expect_pages(ctx, b, 4, 5, true, "after growing by moving");
	expect_pages(ctx, b, 5, 20, false, "after growing by moving");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(mremap_shrink, "guard.mremap.shrink_drops_cut_markers", PC_PRIVATE_ANON,
	       GUARD | PC_FB(PC_F_MREMAP),
	       "shrinking a mapping drops the guards cut off; growing it back does not bring them back")
{
	struct pc_map m;
	char *b = guard_setup(ctx, 5, &m);
	PC_SETUP(ctx, guard(b, ps));
	PC_SETUP(ctx, guard(b + 4 * ps, ps));
	b = remap(ctx, b, 5 * ps, 3 * ps, MREMAP_MAYMOVE, NULL);
	expect_pages(ctx, b, 0, 1, true, "after shrinking");
	expect_pages(ctx, b, 1, 3, false, "after shrinking");
	void *grown;
	if (pc_mremap(b, 3 * ps, 5 * ps, 0, NULL, &grown) != 0)
		pc_skip_prerequisite(ctx, "the pages after the shrunk mapping were taken meanwhile");
	expect_pages(ctx, b, 0, 1, true, "after growing back");
	expect_pages(ctx, b, 1, 5, false, "after growing back");
	pc_pass(ctx);
}

/* In a child: check what it sees, then run `then` on the range; returns the child's status. */
static int in_child(struct pc_ctx *ctx, char *b, void (*look)(struct pc_ctx *, char *))
{
	struct duet d;
	PC_SETUP(ctx, duet_fork(&d));
	if (d.pid == 0) {
		look(ctx, b);
		_exit(0);
	}
	return duet_end(&d);
}

/* Child: guards on the first half as inherited, then removes them all. */
static void child_sees_inherited(struct pc_ctx *ctx, char *b)
{
	for (size_t i = 0; i < PAGES; i++)
		if (page_guarded(ctx, b + i * ps) != (i < 5))
			_exit(1);
	_exit(unguard(b, PAGES * ps) == 0 ? 0 : 2);
}

PC_PROBE_KINDS_NEEDS(fork_private, "guard.fork.child_removal_stays_in_child", GUARD_KINDS,
	       GUARD | PC_FB(PC_F_FORK),
	       "a child inherits guards; removing them in the child leaves the parent's in place")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	PC_SETUP(ctx, guard(b, 5 * ps));
	int st = in_child(ctx, b, child_sees_inherited);
	pc_observe(ctx, "child", "%s", st == 0 ? "inherited, removed" : "other");
	PC_CHECK(ctx, st == 0, "the child did not see the inherited guards or could not remove them (status %d)", st);
	expect_pages(ctx, b, 0, 5, true, "in the parent after the child removed its guards");
	expect_pages(ctx, b, 5, PAGES, false, "in the parent");
	pc_pass(ctx);
}

/* Child: sees the data, guards and unguards everything, then must read zero (its copies dropped). */
static void child_guard_cycle(struct pc_ctx *ctx, char *b)
{
	(void)ctx;
	if (!pc_check_fill(b, PAGES * ps, SEED) || guard(b, PAGES * ps) || unguard(b, PAGES * ps))
		_exit(1);
	_exit(pc_all_bytes(b, PAGES * ps, 0) ? 0 : 3);
}

/* Child: MADV_WIPEONFORK dropped the parent's guards with the pages. */
static void child_no_guards(struct pc_ctx *ctx, char *b)
{
	for (size_t i = 0; i < PAGES; i++)
		if (page_guarded(ctx, b + i * ps))
			_exit(1);
	_exit(0);
}

PC_PROBE_NEEDS(fork_cow_cycle, "guard.fork.child_guard_cycle_reads_zero", GUARD | PC_FB(PC_F_FORK),
	 "a child that guards and unguards inherited private memory reads zero there; the parent keeps its data")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	int st = in_child(ctx, b, child_guard_cycle);
	pc_observe(ctx, "child_after_cycle", "%s", st == 0 ? "zero" : st == 3 ? "not zero" : "failed");
	PC_CHECK(ctx, st == 0, "the child's guard install and removal did not leave it zero pages (status %d)", st);
	PC_CHECK(ctx, pc_check_fill(b, PAGES * ps, SEED), "the parent's data changed");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(wipeonfork, "guard.wipeonfork.child_gets_no_guards",
	 GUARD | PC_FB(PC_F_FORK) | PC_FB(PC_F_MADV_WIPEONFORK),
	 "with MADV_WIPEONFORK a child gets the range without the parent's guards; the parent keeps them")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	pc_advise(ctx, b, PAGES * ps, MADV_WIPEONFORK, "MADV_WIPEONFORK");
	PC_SETUP(ctx, guard(b, 5 * ps));
	int st = in_child(ctx, b, child_no_guards);
	pc_observe(ctx, "child_guards", "%s", st == 0 ? "none" : "some");
	PC_CHECK(ctx, st == 0, "the child of a MADV_WIPEONFORK range still has guards");
	expect_pages(ctx, b, 0, 5, true, "in the parent after fork");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(lazyfree, "guard.free.markers_kept", GUARD | PC_FB(PC_F_MADV_FREE),
	 "MADV_FREE over guarded private memory keeps every guard")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	PC_SETUP(ctx, guard(b, PAGES * ps));
	pc_advise(ctx, b, PAGES * ps, MADV_FREE, "MADV_FREE");
	expect_pages(ctx, b, 0, PAGES, true, "after MADV_FREE");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(populate_efault, "guard.populate.efault", GUARD_KINDS,
	       GUARD | PC_FB(PC_F_MADV_POPULATE_READ) | PC_FB(PC_F_MADV_POPULATE_WRITE),
	       "MADV_POPULATE_READ and _WRITE over guard pages fail with EFAULT")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	pc_need_advice(ctx, MADV_POPULATE_READ, "MADV_POPULATE_READ");
	PC_SETUP(ctx, guard(b, PAGES * ps));
	expect_errno(ctx, "populate_read", pc_madvise(b, PAGES * ps, MADV_POPULATE_READ), EFAULT);
	expect_errno(ctx, "populate_write", pc_madvise(b, PAGES * ps, MADV_POPULATE_WRITE), EFAULT);
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(cold_pageout, "guard.cold_pageout.markers_kept", GUARD_KINDS,
	       GUARD | PC_FB(PC_F_MADV_COLD) | PC_FB(PC_F_MADV_PAGEOUT),
	       "MADV_COLD and MADV_PAGEOUT over guard pages keep them")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	PC_SETUP(ctx, guard(b, PAGES * ps));
	pc_advise(ctx, b, PAGES * ps, MADV_COLD, "MADV_COLD");
	expect_pages(ctx, b, 0, PAGES, true, "after MADV_COLD");
	pc_advise(ctx, b, PAGES * ps, MADV_PAGEOUT, "MADV_PAGEOUT");
	expect_pages(ctx, b, 0, PAGES, true, "after MADV_PAGEOUT");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(supplier_untouched, "guard.supplied_range.no_supply", PC_PRIVATE_ANON | PC_SHARED_FILE,
	       GUARD | PC_FB(PC_F_USERFAULTFD) | PC_FB(PC_F_MADV_DONTNEED),
	       "guard pages in a range the process supplies itself (userfaultfd) fault without asking the supplier")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	PC_SETUP(ctx, pc_madvise(b, PAGES * ps, MADV_DONTNEED)); /* pages missing again: the supplier's job */
	struct pl_supplier *s;
	struct pl_supply_stats st;
	int e = pl_supply_start(b, PAGES * ps, PL_SUPPLY_COPY, 1, &s);
	if (e == ENOTSUP || e == EPERM || e == EINVAL)
		pc_skip_unsupported(ctx, "this process cannot supply %s pages itself here (%s)", pc_kind_name(m.kind),
				    pl_errno_name(e));
	PC_SETUP(ctx, e);
	PC_SETUP(ctx, guard(b, PAGES * ps));
	expect_pages(ctx, b, 0, PAGES, true, "in a supplied range");
	PC_SETUP(ctx, pl_supply_stats(s, &st));
	pc_measure(ctx, "supplied", "%llu", (unsigned long long)st.faults);
	PC_CHECK(ctx, st.faults == 0, "touching guard pages asked the supplier for %llu pages",
		 (unsigned long long)st.faults);
	PC_SETUP(ctx, pl_supply_stop(s));
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(sequential_pageout, "guard.file.sequential_pageout", PC_SHARED_FILE | PC_SHARED_DISK,
	       GUARD | PC_FB(PC_F_MADV_PAGEOUT),
	       "read-ahead (MADV_SEQUENTIAL) and page-out do not fill guards; unguarded data survives and removal restores all")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	pc_advise(ctx, b, PAGES * ps, MADV_SEQUENTIAL, "MADV_SEQUENTIAL");
	guard_every_even(ctx, b, PAGES);
	PC_SETUP(ctx, pc_madvise(b, PAGES * ps, MADV_PAGEOUT));
	expect_even_guarded(ctx, b, PAGES, "after page-out");
	PC_SETUP(ctx, unguard(b, PAGES * ps));
	PC_CHECK(ctx, pc_check_fill(b, PAGES * ps, SEED), "data lost around guards after page-out");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(private_of_shared, "guard.file.private_and_shared_views", PC_SHARED_FILE | PC_SHARED_DISK,
	       GUARD,
	       "guards in a shared and a private mapping of one file are independent; removal restores each view")
{
	struct pc_map m;
	char *sh = guard_setup(ctx, PAGES, &m);
	char *pv = mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, m.fd, 0);
	if (pv == MAP_FAILED)
		pc_error(ctx, "private mapping of the file: %s", pc_strerror(errno));
	/* The private view gets bytes of its own (page i: seed SEED + 1 + i), unlike the file's, so a
	 * view that reads the wrong pages shows. */
	for (int i = 0; i < PAGES; i++) {
		pc_fill(pv + i * ps, ps, SEED + 1 + (unsigned)i);
		if (memcmp(pv + i * ps, sh + i * ps, ps) == 0)
			pc_error(ctx, "the private bytes of page %d equal the file's: the probe cannot tell them apart", i);
	}
	PC_CHECK(ctx, pc_check_fill(sh, PAGES * ps, SEED), "a write to the private view reached the file");
	guard_every_even(ctx, sh, PAGES);
	expect_pages(ctx, pv, 0, PAGES, false, "the private view while the shared view is guarded");
	for (int i = 1; i < PAGES; i += 2)
		PC_SETUP(ctx, guard(pv + i * ps, ps));
	PC_SETUP(ctx, unguard(sh, PAGES * ps));
	expect_pages(ctx, sh, 0, PAGES, false, "the shared view after removal");
	for (int i = 0; i < PAGES; i++)
		expect_pages(ctx, pv, i, i + 1, i % 2 == 1, "the private view keeps its own guards");
	PC_SETUP(ctx, unguard(pv, PAGES * ps));
	PC_CHECK(ctx, pc_check_fill(sh, PAGES * ps, SEED), "the shared view lost the file's data");
	/* Installing a guard zaps the pages there as MADV_DONTNEED does, and madvise(2) says a private file page
	 * dropped that way is filled again from the file. */
	for (int i = 0; i < PAGES; i++) {
		if (i % 2 == 1)
			PC_CHECK(ctx, memcmp(pv + i * ps, sh + i * ps, ps) == 0,
				 "private page %d, guarded and unguarded, does not read the file", i);
		else
			PC_CHECK(ctx, pc_check_fill(pv + i * ps, ps, SEED + 1 + (unsigned)i),
				 "private page %d, never guarded there, lost its own bytes", i);
	}
	pc_observe(ctx, "private_view_after_removal", "own bytes where unguarded, file where guarded");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(readonly_file, "guard.file.readonly_descriptor", GUARD,
	 "guards work in a read-only shared mapping of a file opened read-only, and removal shows the file again")
{
	struct pc_map m;
	char path[4200];
	pc_map_kind_or_skip(ctx, PC_SHARED_DISK, PAGES * pl_page_size(), &m);
	ps = pl_page_size();
	pc_fill(m.addr, m.len, SEED);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", m.fd);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pc_skip_unsupported(ctx, "cannot reopen the file read-only through /proc/self/fd");
	char *b = mmap(NULL, m.len, PROT_READ, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED)
		pc_error(ctx, "read-only mapping: %s", pc_strerror(errno));
	pc_advise(ctx, b, ps, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL");
	guard_every_even(ctx, b, PAGES);
	for (int i = 0; i < PAGES; i++)
		PC_CHECK(ctx, (pc_access_faults(b + i * ps, false, 0) != 0) == (i % 2 == 0), "page %d wrongly guarded", i);
	PC_SETUP(ctx, unguard(b, PAGES * ps));
	PC_CHECK(ctx, pc_check_fill(b, PAGES * ps, SEED), "the file reads differently after guard removal");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(fault_around, "guard.file.fault_around", PC_SHARED_FILE | PC_SHARED_DISK,
	       GUARD | PC_FB(PC_F_MADV_PAGEOUT),
	       "faulting in neighbours of guard pages (fault-around maps several pages at once) leaves the guards")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	PC_SETUP(ctx, pc_madvise(b, PAGES * ps, MADV_PAGEOUT));
	PC_SETUP(ctx, pl_unmap(b, PAGES * ps));
	b = mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
	if (b == MAP_FAILED)
		pc_error(ctx, "mapping the file again: %s", pc_strerror(errno));
	guard_every_even(ctx, b, PAGES);
	for (int i = 1; i < PAGES; i += 2)
		(void)((volatile char *)b)[i * ps];
	for (int i = 0; i < PAGES; i++)
		PC_CHECK(ctx, (pc_access_faults(b + i * ps, false, 0) != 0) == (i % 2 == 0), "page %d wrongly guarded", i);
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(truncation, "guard.file.truncation_keeps_markers", PC_SHARED_FILE | PC_SHARED_DISK,
	       GUARD,
	       "truncating the file (to the mapping's size, to half and back) keeps every guard")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	guard_every_even(ctx, b, PAGES);
	PC_SETUP(ctx, ftruncate(m.fd, (off_t)(5 * ps)) == 0 ? 0 : errno);
	PC_SETUP(ctx, ftruncate(m.fd, (off_t)(PAGES * ps)) == 0 ? 0 : errno);
	expect_even_guarded(ctx, b, PAGES, "after truncating to half and back");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(hole_punch, "guard.file.hole_punch", PC_SHARED_FILE | PC_SHARED_DISK,
	       GUARD | PC_FB(PC_F_MADV_REMOVE),
	       "MADV_REMOVE over guard pages keeps them; after removal the punched pages read zero, the rest kept")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	PC_SETUP(ctx, guard(b + 3 * ps, 4 * ps));
	int e = pc_madvise(b + 3 * ps, 4 * ps, MADV_REMOVE);
	if (e)
		pc_refusal(ctx, "madvise(MADV_REMOVE) over guard pages", e, pc_unknown_advice_errno(b, ps));
	expect_pages(ctx, b, 3, 7, true, "after MADV_REMOVE");
	PC_SETUP(ctx, unguard(b, PAGES * ps));
	PC_CHECK(ctx, pc_check_fill(b, 3 * ps, SEED), "data before the hole changed");
	PC_CHECK(ctx, pc_all_bytes(b + 3 * ps, 4 * ps, 0), "the punched hole does not read zero");
	for (int i = 7; i < PAGES; i++)
		PC_CHECK(ctx, page_as_filled(b, i), "page %d after the hole lost its data", i);
	pc_observe(ctx, "hole_after_removal", "zero");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(memfd_write_seal, "guard.file.write_sealed_memfd", GUARD | PC_FB(PC_F_MEMFD_SEALS),
	 "guards work in a read-only mapping of a write-sealed memfd, and the seal still refuses writes after removal")
{
	int fd;
	ps = pl_page_size();
	pc_need_advice(ctx, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL");
	PC_SETUP(ctx, pc_memfd("pagelab-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING, &fd));
	PC_SETUP(ctx, ftruncate(fd, (off_t)(PAGES * ps)) == 0 ? 0 : errno);
	char *w = mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (w == MAP_FAILED)
		pc_error(ctx, "mapping the memfd: %s", pc_strerror(errno));
	pc_fill(w, PAGES * ps, SEED);
	PC_SETUP(ctx, pl_unmap(w, PAGES * ps));
	/* fcntl(2): F_SEAL_WRITE is refused (EBUSY) only while a shared writable mapping exists. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) != 0)
		pc_fail_refused(ctx, "F_SEAL_WRITE on a memfd with no writable mapping: %s", pc_strerror(errno));
	/* fcntl(2): the seal refuses new shared *writable* mappings; a read-only one is allowed. */
	char *b = mmap(NULL, PAGES * ps, PROT_READ, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED)
		pc_fail_refused(ctx, "a read-only shared mapping of a write-sealed memfd: %s", pc_strerror(errno));
	pc_advise(ctx, b, ps, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL");
	guard_every_even(ctx, b, PAGES);
	for (int i = 0; i < PAGES; i++)
		PC_CHECK(ctx, (pc_access_faults(b + i * ps, false, 0) != 0) == (i % 2 == 0), "page %d wrongly guarded", i);
	PC_SETUP(ctx, unguard(b, PAGES * ps));
	PC_CHECK(ctx, pc_check_fill(b, PAGES * ps, SEED), "the sealed data reads differently after removal");
	PC_CHECK(ctx, pc_access_faults(b, true, 1) != 0, "a write to the sealed read-only mapping succeeded");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(readonly_anon, "guard.readonly_anon.zero_page", PC_PRIVATE_ANON | PC_SHARED_ANON, GUARD,
	       "guards work in read-only anonymous memory; after removal every page reads zero")
{
	struct pc_map m;
	ps = pl_page_size();
	pc_need_advice(ctx, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL");
	pc_map_or_skip(ctx, PAGES * ps, &m);
	char *b = m.addr;
	PC_SETUP(ctx, pl_protect(b, m.len, PL_PROT_READ));
	pc_advise(ctx, b, ps, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL");
	guard_every_even(ctx, b, PAGES);
	for (int i = 0; i < PAGES; i++)
		PC_CHECK(ctx, (pc_access_faults(b + i * ps, false, 0) != 0) == (i % 2 == 0), "page %d wrongly guarded", i);
	PC_SETUP(ctx, unguard(b, PAGES * ps));
	PC_CHECK(ctx, pc_all_bytes(b, PAGES * ps, 0), "read-only anonymous memory does not read zero after removal");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(page_flags, "guard.page_flags.every_other_page", GUARD_KINDS, GUARD,
	       "the page flags report exactly the guarded pages as guards (PAGEMAP_SCAN PAGE_IS_GUARD)")
{
	struct pc_map m;
	char *b = guard_setup(ctx, PAGES, &m);
	for (int i = 0; i < PAGES; i++)
		PC_CHECK(ctx, !(pc_obs_page_flags(ctx, b + i * ps, PL_PF_GUARD) & PL_PF_GUARD), "page %d flagged early", i);
	guard_every_even(ctx, b, PAGES);
	for (int i = 0; i < PAGES; i++) {
		bool flagged = pc_obs_page_flags(ctx, b + i * ps, PL_PF_GUARD) & PL_PF_GUARD;
		PC_CHECK(ctx, flagged == (i % 2 == 0), "page %d %s", i, flagged ? "flagged, not guarded" : "guarded, not flagged");
	}
	pc_observe(ctx, "flags_match_guards", "yes");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(collapse_refused, "guard.collapse.refused_markers_kept", PC_PRIVATE_ANON | PC_SHARED_FILE,
	       GUARD | PC_FB(PC_F_MADV_COLLAPSE) | PC_FB(PC_F_MADV_HUGEPAGE) | PC_FB(PC_F_MADV_POPULATE_READ),
	       "MADV_COLLAPSE of a huge-page range holding guard pages fails, and the guards stay")
{
	size_t huge = pl_caps()->huge_page_size;
	pc_need_thp(ctx);
	pc_need_advice(ctx, MADV_COLLAPSE, "MADV_COLLAPSE");
	ps = pl_page_size();
	struct pc_map m;
	pc_map_or_skip(ctx, 2 * huge, &m);
	char *b = m.addr;
	size_t n = m.len / ps;
	pc_advise(ctx, b, m.len, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");
	pc_advise(ctx, b, m.len, MADV_POPULATE_READ, "MADV_POPULATE_READ");
	pc_advise(ctx, b, ps, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL");
	guard_every_even(ctx, b, n);
	pc_advise(ctx, b, m.len, MADV_HUGEPAGE, "MADV_HUGEPAGE");
	int e = pc_madvise(b, m.len, MADV_COLLAPSE);
	pc_observe(ctx, "collapse", "%s", e ? pl_errno_name(e) : "succeeded");
	for (size_t i = 0; i < n; i += 2)
		PC_CHECK(ctx, pc_access_faults(b + i * ps, false, 0) != 0, "guard page %zu gone after MADV_COLLAPSE", i);
	/* No contract says collapse must fail there (the guards staying is what matters): Linux refuses. */
	PC_BEHAVIOUR(ctx, e != 0, "expected MADV_COLLAPSE over guard pages refused, saw it succeed");
	pc_pass(ctx);
}
