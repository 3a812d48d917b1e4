/* Copy-on-write after fork() under the page layouts allocators create and the
 * pins the kernel takes on user memory. Each case runs on every layout: a base
 * page, a PMD-mapped THP, a THP mapped by page-table entries, the single
 * page left of a THP, half a THP moved away by mremap, a THP shared with a
 * child for one page only, the same with mTHP, hugetlb pages, and the
 * swapped-out forms of those (swap needed). A broken copy-on-write shows as
 * one process reading the other's write; a pin broken by copy-on-write shows
 * as the pin no longer seeing the memory it pins (the Dirty COW /
 * CVE-2020-29374 class: a read-only pin in a child must not see the parent's
 * later writes). */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "duet.h"
#include "pl_abi.h"

#define SEED 21
#define NEW_BYTE 0xff

enum source { SRC_BASE, SRC_THP, SRC_MTHP, SRC_HUGETLB_PMD, SRC_HUGETLB_PUD };
enum shape { SH_WHOLE, SH_PTE, SH_SINGLE_PTE, SH_PARTIAL_MREMAP, SH_PARTIAL_SHARED };

struct layout {
	const char *name;
	enum source src;
	enum shape shape;
	bool swapped;
};

static const struct layout layouts[] = {
	{"base", SRC_BASE, SH_WHOLE, false},
	{"base_swapped", SRC_BASE, SH_WHOLE, true},
	{"thp", SRC_THP, SH_WHOLE, false},
	{"thp_swapped", SRC_THP, SH_WHOLE, true},
	{"thp_pte", SRC_THP, SH_PTE, false},
	{"thp_pte_swapped", SRC_THP, SH_PTE, true},
	{"thp_single_pte", SRC_THP, SH_SINGLE_PTE, false},
	{"thp_single_pte_swapped", SRC_THP, SH_SINGLE_PTE, true},
	{"thp_partial_mremap", SRC_THP, SH_PARTIAL_MREMAP, false},
	{"thp_partial_shared", SRC_THP, SH_PARTIAL_SHARED, false},
	{"mthp", SRC_MTHP, SH_WHOLE, false},
	{"mthp_swapped", SRC_MTHP, SH_WHOLE, true},
	{"mthp_single_pte", SRC_MTHP, SH_SINGLE_PTE, false},
	{"mthp_single_pte_swapped", SRC_MTHP, SH_SINGLE_PTE, true},
	{"mthp_partial_mremap", SRC_MTHP, SH_PARTIAL_MREMAP, false},
	{"mthp_partial_shared", SRC_MTHP, SH_PARTIAL_SHARED, false},
	{"hugetlb_pmd", SRC_HUGETLB_PMD, SH_WHOLE, false},
	{"hugetlb_pud", SRC_HUGETLB_PUD, SH_WHOLE, false},
};
#define NLAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

enum case_kind { C_COW, C_VMSPLICE_CHILD, C_VMSPLICE_BEFORE_FORK, C_VMSPLICE_AFTER_FORK, C_PIN_RO, C_PIN_FORK };

struct cow_case {
	const char *id, *summary;
	enum case_kind kind;
	bool mprotect; /* read-only then read-write before the write: mprotect must not map the page writable */
};

/* What leaks (or is lost) if copy-on-write breaks, in each summary. */
static const struct cow_case cases[] = {
	{"cow.fork.parent_write_stays_private", "a parent's write after fork never shows in the child", C_COW, false},
	{"cow.fork.parent_write_stays_private_mprotect",
	 "the same when the parent made the range read-only and read-write again first", C_COW, true},
	{"cow.vmsplice_in_child.pipe_keeps_old",
	 "pages a child handed to a pipe (vmsplice) and unmapped keep the old data when the parent writes", C_VMSPLICE_CHILD,
	 false},
	{"cow.vmsplice_in_child.pipe_keeps_old_mprotect",
	 "the same when the parent made the range read-only and read-write before writing", C_VMSPLICE_CHILD, true},
	{"cow.vmsplice_before_fork.pipe_keeps_old",
	 "pages the parent handed to a pipe before fork keep the old data when the child writes", C_VMSPLICE_BEFORE_FORK,
	 false},
	{"cow.vmsplice_after_fork.pipe_keeps_old",
	 "pages the parent handed to a pipe after fork keep the old data when the child writes", C_VMSPLICE_AFTER_FORK,
	 false},
	{"cow.longterm_pin.sees_write_after_mprotect",
	 "a long-term writable pin (io_uring fixed buffer) sees a write made after read-only/read-write mprotect", C_PIN_RO,
	 false},
	{"cow.longterm_pin.sees_write_after_fork",
	 "a long-term writable pin sees the parent's write after fork: the pinned page is not shared with the child",
	 C_PIN_FORK, false},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

struct region {
	char *mem;
	size_t size;
	bool hugetlb;
};

/* Child exit statuses; a child whose pin was refused says how: not implemented, a limit, or refused. */
enum { ST_KEPT, ST_LEAKED, ST_SETUP_FAILED, ST_PIN_ABSENT, ST_PIN_LIMIT, ST_PIN_REFUSED };

static void need_huge_now(struct pc_ctx *ctx, const struct region *r, enum source src)
{
	size_t bytes = 0;
	if (src == SRC_THP) {
		bytes = pc_obs_huge_bytes(ctx, r->mem, r->size);
	} else if (pl_folio_bytes(r->mem, &bytes) != 0) {
		pc_skip_unobservable(ctx, PC_CH_HUGE_BACKING, "the block behind a page cannot be seen here");
	}
	pc_measure(ctx, "huge_bytes_after_fill", "%zu", bytes);
	if (bytes < r->size)
		pc_skip_prerequisite(ctx, "no huge page of %zu KiB backed the filled range now (%zu KiB did)",
				     r->size / 1024, bytes / 1024);
}

static void map_source(struct pc_ctx *ctx, enum source src, struct region *r)
{
	static const enum pc_kind kinds[] = {PC_PRIVATE_ANON, PC_THP, PC_MTHP, PC_HUGETLB_PMD, PC_HUGETLB_PUD};
	struct pc_map m;
	pc_map_kind_or_skip(ctx, kinds[src], pl_page_size(), &m);
	r->mem = m.addr;
	r->size = m.len;
	r->hugetlb = src == SRC_HUGETLB_PMD || src == SRC_HUGETLB_PUD;
	if (src == SRC_BASE)
		(void)pc_madvise(r->mem, r->size, MADV_NOHUGEPAGE); /* refused only where there is no THP */
	pc_fill(r->mem, r->size, SEED);
	if (src == SRC_THP || src == SRC_MTHP)
		need_huge_now(ctx, r, src);
}

/* Map one page of the huge page read-only and back: the huge page is then mapped by page-table entries. */
static void map_by_ptes(struct pc_ctx *ctx, struct region *r)
{
	size_t ps = pl_page_size();
	PC_SETUP(ctx, pl_protect(r->mem + ps, ps, PL_PROT_READ));
	PC_SETUP(ctx, pl_protect(r->mem + ps, ps, PL_PROT_RW));
}

static void move_half_away(struct pc_ctx *ctx, struct region *r)
{
	size_t half = r->size / 2;
	void *dst, *moved;
	PC_SETUP(ctx, pl_reserve(half, 0, &dst));
	PC_SETUP(ctx, pc_mremap(r->mem + half, half, half, MREMAP_MAYMOVE | MREMAP_FIXED, dst, &moved));
	if (moved != dst)
		pc_error(ctx, "mremap(MREMAP_FIXED) of half the huge page moved it to %p, not %p", moved, dst);
	r->size = half;
}

/* A child that shares only the first page of the huge page, then exits. */
static void share_first_page_once(struct pc_ctx *ctx, struct region *r)
{
	size_t ps = pl_page_size();
	pc_advise(ctx, r->mem + ps, r->size - ps, MADV_DONTFORK, "MADV_DONTFORK");
	struct duet d;
	PC_SETUP(ctx, duet_fork(&d));
	if (d.pid == 0)
		_exit(0);
	if (duet_end(&d) != 0)
		pc_error(ctx, "the child sharing one page did not end cleanly");
	pc_advise(ctx, r->mem + ps, r->size - ps, MADV_DOFORK, "MADV_DOFORK");
}

static void swap_out(struct pc_ctx *ctx, struct region *r)
{
	if (!pc_swap_available())
		pc_skip_prerequisite(ctx, "needs swap to page anonymous memory out: none configured (a kernel target's "
				     "guest has it)");
	pc_advise(ctx, r->mem, r->size, MADV_PAGEOUT, "MADV_PAGEOUT");
	for (size_t off = 0; off < r->size; off += pl_page_size())
		if (!(pc_obs_page_flags(ctx, r->mem + off, PL_PF_SWAPPED) & PL_PF_SWAPPED))
			pc_skip_prerequisite(ctx, "MADV_PAGEOUT left page %zu in memory: nothing to test swapped",
					     off / pl_page_size());
}

static void prepare(struct pc_ctx *ctx, const struct layout *l, struct region *r)
{
	size_t ps = pl_page_size();
	map_source(ctx, l->src, r);
	if (l->shape == SH_PTE || l->shape == SH_SINGLE_PTE)
		map_by_ptes(ctx, r);
	if (l->shape == SH_SINGLE_PTE) {
		pc_advise(ctx, r->mem + ps, r->size - ps, MADV_DONTNEED, "MADV_DONTNEED");
		r->size = ps;
	}
	if (l->shape == SH_PARTIAL_MREMAP)
		move_half_away(ctx, r);
	if (l->shape == SH_PARTIAL_SHARED)
		share_first_page_once(ctx, r);
	if (l->swapped)
		swap_out(ctx, r);
	pc_measure(ctx, "bytes", "%zu", r->size);
}

static char *snapshot(const struct region *r)
{
	char *copy = malloc(r->size);
	if (copy)
		memcpy(copy, r->mem, r->size);
	return copy;
}

static void mprotect_round_trip(struct pc_ctx *ctx, const struct region *r)
{
	PC_SETUP(ctx, pl_protect(r->mem, r->size, PL_PROT_READ));
	PC_SETUP(ctx, pl_protect(r->mem, r->size, PL_PROT_RW));
}

/* The child's side of C_COW and C_VMSPLICE_CHILD: keep the old view, wait for the parent's write, compare. */
static PC_NORETURN void child_compares(const struct duet *d, struct region *r, bool pin)
{
	char *old = snapshot(r), *seen = malloc(r->size);
	struct pl_pin *p = NULL;
	size_t got = r->size;
	if (!old || !seen)
		_exit(ST_SETUP_FAILED);
	if (pin) {
		int e = pl_pin_start(r->mem, r->size, PL_PIN_PIPE, &p);
		if (e)
			_exit(e == ENOTSUP || e == ENOSYS ? ST_PIN_ABSENT : e == ENOMEM || e == EPERM ? ST_PIN_LIMIT
											: ST_PIN_REFUSED);
		if (pl_unmap(r->mem, r->size) != 0)
			_exit(ST_SETUP_FAILED); /* the pipe now holds the only reference */
	}
	if (duet_tell(d) != 0 || duet_wait(d) != 0)
		_exit(ST_SETUP_FAILED);
	if (pin && pl_pin_read(p, seen, r->size, &got) != 0)
		_exit(ST_SETUP_FAILED);
	_exit(memcmp(old, pin ? seen : r->mem, got) == 0 ? ST_KEPT : ST_LEAKED);
}

/* Fork; the child keeps (or pins) the old view; the parent writes; the child's status. */
static int parent_writes(struct pc_ctx *ctx, const struct cow_case *c, struct region *r)
{
	struct duet d;
	PC_SETUP(ctx, duet_fork(&d));
	if (d.pid == 0)
		child_compares(&d, r, c->kind == C_VMSPLICE_CHILD);
	if (duet_wait(&d) != 0)
		return duet_end(&d);
	if (c->mprotect)
		mprotect_round_trip(ctx, r);
	memset(r->mem, NEW_BYTE, r->size);
	PC_SETUP(ctx, duet_tell(&d));
	return duet_end(&d);
}

/* A pin the case's subject needs was refused with e: not implemented is unsupported, a limit is the
 * environment's; any other refusal, where the feature probe pinned a page, is the system's. */
static PC_NORETURN void pin_refused(struct pc_ctx *ctx, const struct region *r, enum pl_pin_kind kind, int e)
{
	const char *how = kind == PL_PIN_PIPE ? "vmsplice" : "io_uring fixed buffers";
	if (e == ENOTSUP || e == ENOSYS)
		pc_skip_unsupported(ctx, "this system cannot pin memory that way (%s): %s", how, pl_errno_name(e));
	if (e == ENOMEM || e == EPERM)
		pc_skip_prerequisite(ctx, "pinning %zu bytes refused (%s): RLIMIT_MEMLOCK too small?", r->size,
				     pl_errno_name(e));
	pc_fail_refused(ctx, "pinning %zu bytes (%s) refused: %s, while one page could be pinned", r->size, how,
			e > 0 ? pc_strerror(e) : "refused in the child");
}

static struct pl_pin *pin_or_skip(struct pc_ctx *ctx, struct region *r, enum pl_pin_kind kind)
{
	struct pl_pin *p;
	int e = pl_pin_start(r->mem, r->size, kind, &p);
	if (e)
		pin_refused(ctx, r, kind, e);
	return p;
}

/* The parent pins (before or after fork), unmaps; the child writes; does the pin still hold the old data? */
static int child_writes(struct pc_ctx *ctx, const struct cow_case *c, struct region *r)
{
	char *old = snapshot(r), *seen = malloc(r->size);
	struct pl_pin *p = NULL;
	struct duet d;
	size_t got = 0;
	if (!old || !seen)
		pc_error(ctx, "malloc of %zu bytes failed", r->size);
	if (c->kind == C_VMSPLICE_BEFORE_FORK)
		p = pin_or_skip(ctx, r, PL_PIN_PIPE);
	PC_SETUP(ctx, duet_fork(&d));
	if (d.pid == 0) {
		if (duet_tell(&d) != 0 || duet_wait(&d) != 0)
			_exit(ST_SETUP_FAILED);
		memset(r->mem, NEW_BYTE, r->size);
		_exit(ST_KEPT);
	}
	if (c->kind == C_VMSPLICE_AFTER_FORK)
		p = pin_or_skip(ctx, r, PL_PIN_PIPE);
	PC_SETUP(ctx, duet_wait(&d));
	PC_SETUP(ctx, pl_unmap(r->mem, r->size));
	PC_SETUP(ctx, duet_tell(&d));
	if (duet_end(&d) != ST_KEPT)
		pc_error(ctx, "the writing child did not end cleanly");
	PC_SETUP(ctx, pl_pin_read(p, seen, r->size, &got));
	pc_measure(ctx, "bytes_through_pin", "%zu", got);
	return memcmp(old, seen, got) == 0 ? ST_KEPT : ST_LEAKED;
}

/* The parent writes while a long-term pin holds the range; true when the pin sees the write. */
static bool pin_sees_write(struct pc_ctx *ctx, const struct cow_case *c, struct region *r)
{
	struct pl_pin *p = pin_or_skip(ctx, r, PL_PIN_LONGTERM);
	char *seen = malloc(r->size);
	struct duet d = {.pid = 0};
	size_t got = 0;
	if (!seen)
		pc_error(ctx, "malloc of %zu bytes failed", r->size);
	if (c->kind == C_PIN_FORK) {
		PC_SETUP(ctx, duet_fork(&d));
		if (d.pid == 0)
			_exit(duet_tell(&d) != 0 || duet_wait(&d) != 0 ? ST_SETUP_FAILED : ST_KEPT);
		PC_SETUP(ctx, duet_wait(&d));
	} else {
		PC_SETUP(ctx, pl_protect(r->mem, r->size, PL_PROT_READ));
		(void)pl_clear_soft_dirty(); /* soft-dirty tracking stops mprotect from mapping the page writable again */
		PC_SETUP(ctx, pl_protect(r->mem, r->size, PL_PROT_RW));
	}
	memset(r->mem, NEW_BYTE, r->size);
	PC_SETUP(ctx, pl_pin_read(p, seen, r->size, &got));
	if (d.pid > 0 && (duet_tell(&d) != 0 || duet_end(&d) != ST_KEPT))
		pc_error(ctx, "the child did not end cleanly");
	return got == r->size && memcmp(seen, r->mem, got) == 0;
}

static void judge_leak(struct pc_ctx *ctx, const struct cow_case *c, const struct region *r, int st)
{
	/* The child's pin was refused: judged as pin_or_skip judges the parent's (the errno stays in the child). */
	if (st == ST_PIN_ABSENT || st == ST_PIN_LIMIT || st == ST_PIN_REFUSED)
		pin_refused(ctx, r, PL_PIN_PIPE, st == ST_PIN_ABSENT ? ENOTSUP : st == ST_PIN_LIMIT ? ENOMEM : -1);
	if (st != ST_KEPT && st != ST_LEAKED)
		pc_error(ctx, "the child could not run its part (status %d)", st);
	pc_observe(ctx, "leak", "%s", st == ST_LEAKED ? "yes" : "no");
	/* Linux's own mm selftests expect this (cow.c): harder to fix on hugetlb and rarely used there. */
	if (st == ST_LEAKED && r->hugetlb && c->kind != C_COW)
		pc_xfail(ctx, "the other process's write showed through a vmsplice pin of hugetlb memory (a known Linux "
			 "limitation, expected by its mm selftests)");
	PC_CHECK(ctx, st == ST_KEPT, "copy-on-write broken: the other process's write showed through (%s)", c->id);
}

static void run_cow(struct pc_ctx *ctx);
static struct pc_probe probes[NCASES * NLAYOUTS];
static char ids[NCASES * NLAYOUTS][96];

/* What a case on a layout needs: fork, its kind of pin, its kind of memory, and the calls that shape it
 * (mremap, MADV_DONTFORK, MADV_DONTNEED) or swap it out (MADV_PAGEOUT). */
static uint64_t case_needs(const struct cow_case *c, const struct layout *l)
{
	static const enum pc_kind kinds[] = {PC_PRIVATE_ANON, PC_THP, PC_MTHP, PC_HUGETLB_PMD, PC_HUGETLB_PUD};
	uint64_t needs = PC_FB(PC_F_FORK) | PC_FB(pc_kind_feature(kinds[l->src]));
	if (c->kind == C_VMSPLICE_CHILD || c->kind == C_VMSPLICE_BEFORE_FORK || c->kind == C_VMSPLICE_AFTER_FORK)
		needs |= PC_FB(PC_F_PIN_VMSPLICE);
	if (c->kind == C_PIN_RO || c->kind == C_PIN_FORK)
		needs |= PC_FB(PC_F_PIN_IO_URING);
	if (l->shape == SH_PARTIAL_MREMAP)
		needs |= PC_FB(PC_F_MREMAP) | PC_FB(PC_F_MREMAP_FIXED);
	if (l->shape == SH_PARTIAL_SHARED)
		needs |= PC_FB(PC_F_MADV_DONTFORK);
	if (l->shape == SH_SINGLE_PTE)
		needs |= PC_FB(PC_F_MADV_DONTNEED);
	if (l->swapped)
		needs |= PC_FB(PC_F_MADV_PAGEOUT);
	return needs;
}

__attribute__((constructor)) static void register_cow(void)
{
	for (size_t i = 0; i < NCASES; i++)
		for (size_t j = 0; j < NLAYOUTS; j++) {
			size_t k = i * NLAYOUTS + j;
			snprintf(ids[k], sizeof(ids[k]), "%s/%s", cases[i].id, layouts[j].name);
			probes[k] = (struct pc_probe){.id = ids[k], .summary = cases[i].summary, .fn = run_cow,
						      .needs = case_needs(&cases[i], &layouts[j])};
			pc_register(&probes[k]);
		}
}

static void run_cow(struct pc_ctx *ctx)
{
	size_t k = 0;
	while (k < NCASES * NLAYOUTS && strcmp(ids[k], pc_id(ctx)) != 0)
		k++;
	if (k == NCASES * NLAYOUTS)
		pc_error(ctx, "no copy-on-write case is named %s", pc_id(ctx));
	const struct cow_case *c = &cases[k / NLAYOUTS];
	struct region r;
	prepare(ctx, &layouts[k % NLAYOUTS], &r);
	if (c->kind == C_PIN_RO || c->kind == C_PIN_FORK) {
		bool sees = pin_sees_write(ctx, c, &r);
		pc_observe(ctx, "pin_sees_write", "%s", sees ? "yes" : "no");
		PC_CHECK(ctx, sees, "the long-term pin no longer sees the memory it pins (%s)", c->id);
		pc_pass(ctx);
	}
	int st = c->kind == C_COW || c->kind == C_VMSPLICE_CHILD ? parent_writes(ctx, c, &r) : child_writes(ctx, c, &r);
	judge_leak(ctx, c, &r, st);
	pc_pass(ctx);
}
