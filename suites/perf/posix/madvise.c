/* madvise: per advice this system supports, the cost per page of the call,
 * measured from a stated page state, because the kernel's work depends on it:
 *   madvise/<advice>          the first advice of freshly faulted pages (what an
 *                             allocator meets when it releases memory it just used);
 *   madvise/<advice>_again    the same pages advised again after being rewritten
 *                             (steady-state cycling: e.g. already on the lazy-free
 *                             or inactive list), for advices whose cost depends on it;
 *   madvise/<advice>_retouch  writing every page right after the first advice;
 *   madvise/<advice>_cycle    advice then a write to every page, repeated on the
 *                             same pages (the steady state of release and reuse).
 * Pairs whose second half must run before the memory is usable again (guard
 * install/remove, reusable/reuse) also time that half alone. Private
 * anonymous memory with THP off; set-up is paused (timer and counters). */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include "../pool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "pl_abi.h"

enum prep {
	PREP_RESIDENT, /* every page freshly faulted and written before the call */
	PREP_RELEASED, /* written, then released: the call meets non-resident pages */
};

struct advice {
	const char *label;              /* for messages, e.g. "MADV_COLD" */
	int number;                     /* madvise advice, or -1 when fn is used */
	int (*fn)(void *p, size_t len); /* a page-layer verb instead of madvise */
	int (*undo)(void *p, size_t len); /* must follow before the memory is used again */
	enum prep prep;
	bool needs_swap;
	int op; /* the enum pl_op behind fn, for the label; -1 for madvise */
	int undo_op; /* the enum pl_op behind undo, or -1 */
};

enum mode {
	MODE_FIRST,   /* time the first advice of freshly faulted pages */
	MODE_AGAIN,   /* time the advice of pages advised before and rewritten since */
	MODE_UNDO,    /* time the undo half of a pair */
	MODE_RETOUCH, /* time writing every page after the first advice (+ undo) */
	MODE_CYCLE,   /* time advice (+ undo) + writing every page, over and over */
};

static int advise(const struct advice *a, void *p, size_t len)
{
	if (a->fn)
		return a->fn(p, len);
	return madvise(p, len, a->number) == 0 ? 0 : errno;
}

/* Fresh pages: drop whatever the range holds, fault it in again, write every page. */
static int make_fresh(void *p, size_t len)
{
	int e = pl_release_zero(p, len);
	if (!e)
		e = pl_populate(p, len, true);
	if (!e)
		pb_touch_pages(p, len);
	return e;
}

static int prepare(const struct advice *a, void *p, size_t len)
{
	int e = make_fresh(p, len);
	if (!e && a->prep == PREP_RELEASED)
		e = pl_release_zero(p, len);
	return e;
}

/* Why anonymous memory cannot be paged out here, or NULL. */
static const char *no_swap(void)
{
	uint64_t swap = 0;
	int e = pl_swap_total(&swap);
	if (e == ENOTSUP)
		return "whether there is swap is not observable here";
	if (e || swap == 0)
		return "no swap: anonymous pages cannot be paged out";
	return NULL;
}

/* Why this advice cannot be measured here, or NULL. */
static const char *unavailable(const struct advice *a, char *buf, size_t n)
{
	if (a->needs_swap && no_swap())
		return no_swap();
	void *p;
	int e = pl_map_anon(pl_page_size(), &p);
	if (!e) {
		e = prepare(a, p, pl_page_size());
		if (!e)
			e = advise(a, p, pl_page_size());
		if (!e && a->undo)
			e = a->undo(p, pl_page_size());
		int e2 = pl_unmap(p, pl_page_size());
		e = e ? e : e2;
	}
	if (!e)
		return NULL;
	snprintf(buf, n, "%s: %s from this system", a->label, pl_errno_name(e));
	return buf;
}

/* One advice and, where the pair needs it, the undo that makes the memory usable. */
static int advise_and_undo(const struct advice *a, void *p, size_t len)
{
	int e = advise(a, p, len);
	return !e && a->undo ? a->undo(p, len) : e;
}

/* An advice measured in a mode: what pool_iterate hands refill and timed. */
struct pass {
	const struct advice *a;
	enum mode m;
};

/* The untimed part, done for a whole pool of ranges at once: bring every
 * range to the state the mode measures from. first: the pool's first fill. */
static int refill(const void *ctx, void *pool, size_t plen, bool first)
{
	const struct advice *a = ((const struct pass *)ctx)->a;
	enum mode m = ((const struct pass *)ctx)->m;
	int e = 0;
	if (m == MODE_CYCLE && !first)
		return 0; /* the last cycle left every range in the steady state */
	if (!first && a->undo && (m == MODE_FIRST || m == MODE_AGAIN))
		e = a->undo(pool, plen); /* the timed call left the pair half done */
	if (m == MODE_AGAIN && !first) {
		if (!e)
			pb_touch_pages(pool, plen); /* advised by the timed call, now rewritten */
		return e;
	}
	if (!e)
		e = prepare(a, pool, plen);
	if (!e && (m == MODE_UNDO || m == MODE_RETOUCH))
		e = advise(a, pool, plen);
	if (!e && m == MODE_RETOUCH && a->undo)
		e = a->undo(pool, plen);
	if (!e && (m == MODE_AGAIN || m == MODE_CYCLE)) {
		e = advise_and_undo(a, pool, plen);
		if (!e)
			pb_touch_pages(pool, plen);
	}
	return e;
}

static int timed(const void *ctx, void *p, size_t len)
{
	const struct advice *a = ((const struct pass *)ctx)->a;
	enum mode m = ((const struct pass *)ctx)->m;
	int e = 0;
	if (m == MODE_FIRST || m == MODE_AGAIN || m == MODE_CYCLE)
		e = advise(a, p, len);
	if (!e && a->undo && (m == MODE_UNDO || m == MODE_CYCLE))
		e = a->undo(p, len);
	if (!e && (m == MODE_RETOUCH || m == MODE_CYCLE))
		pb_touch_pages(p, len);
	return e;
}

static int map_range(size_t len, void **p)
{
	int e = pl_map_anon(len, p);
	/* Base pages only, so that per-page counts mean base pages (EINVAL: no THP, or the advice unknown). */
	if (!e && madvise(*p, len, MADV_NOHUGEPAGE) != 0 && errno != EINVAL) {
		e = errno;
		(void)pl_unmap(*p, len);
	}
	return e;
}

/* Timing a verb that makes no system call would time only the clock. */
static const char *undo_is_no_call(const struct advice *a, enum mode m, char *buf, size_t n)
{
	if (m != MODE_UNDO || a->undo_op < 0 || strcmp(pl_caps()->op[a->undo_op].via, "none") != 0)
		return NULL;
	const struct pl_cap *c = &pl_caps()->op[a->undo_op];
	snprintf(buf, n, "%s: no system call on this system (%s)", pl_op_name((enum pl_op)a->undo_op),
		 c->how ? c->how : "emulated");
	return buf;
}

static void run(pb_state *s, const struct advice *a, enum mode m)
{
	char why[160];
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	size_t plen = pool_bytes(len); /* small ranges: a pool prepared in one go, one pause for many calls */
	const char *no = unavailable(a, why, sizeof(why));
	if (!no)
		no = undo_is_no_call(a, m, why, sizeof(why));
	if (no) {
		pb_skip(s, no);
		return;
	}
	void *pool;
	int e = map_range(plen, &pool);
	if (e) {
		pb_skip_errno(s, "mmap", e);
		return;
	}
	if (a->op >= 0)
		pb_set_label(s, pl_caps()->op[a->op].via);
	const struct pass x = {a, m};
	e = pool_iterate(s, pool, plen, len, refill, timed, &x);
	int e2 = pl_unmap(pool, plen);
	if (e || e2) {
		pb_skip_errno(s, a->label, e ? e : e2);
		return;
	}
	pb_per_page(s, len / pl_page_size());
}

static int page_layer_reusable(void *p, size_t len) { return pl_reusable(p, len); }
static int page_layer_reuse(void *p, size_t len) { return pl_reuse(p, len); }
static int page_layer_guard(void *p, size_t len) { return pl_guard(p, len); }
static int page_layer_unguard(void *p, size_t len) { return pl_unguard(p, len); }

static const struct advice adv_dontneed = {"MADV_DONTNEED", MADV_DONTNEED, NULL, NULL, PREP_RESIDENT, false, -1, -1};
static const struct advice adv_free = {"MADV_FREE", MADV_FREE, NULL, NULL, PREP_RESIDENT, false, -1, -1};
static const struct advice adv_cold = {"MADV_COLD", MADV_COLD, NULL, NULL, PREP_RESIDENT, false, -1, -1};
static const struct advice adv_pageout = {"MADV_PAGEOUT", MADV_PAGEOUT, NULL, NULL, PREP_RESIDENT, true, -1, -1};
static const struct advice adv_populate_read = {"MADV_POPULATE_READ", MADV_POPULATE_READ, NULL, NULL, PREP_RELEASED, false, -1, -1};
static const struct advice adv_populate_write = {"MADV_POPULATE_WRITE", MADV_POPULATE_WRITE, NULL, NULL, PREP_RELEASED, false, -1, -1};
static const struct advice adv_willneed = {"MADV_WILLNEED", MADV_WILLNEED, NULL, NULL, PREP_RESIDENT, false, -1, -1};
static const struct advice adv_guard = {"pl_guard", -1, page_layer_guard, page_layer_unguard, PREP_RESIDENT, false, PL_OP_GUARD, PL_OP_UNGUARD};
static const struct advice adv_reusable = {"pl_reusable", -1, page_layer_reusable, page_layer_reuse, PREP_RESIDENT, false, PL_OP_REUSABLE, PL_OP_REUSE};

/* The release kinds the reports compare get the whole sweep in both profiles;
 * the quick one has 2 MiB and 128 MiB for the first/again comparison. */
#define MAIN_FULL PB_SIZES_FULL
#define MAIN_QUICK PB_ARGS(PB_PAGE, PB_MIB(2), PB_MIB(128))
#define OTHER_FULL PB_ARGS(PB_PAGE, PB_KIB(64), PB_MIB(2), PB_MIB(32), PB_MIB(256))
#define OTHER_QUICK PB_ARGS(PB_PAGE, PB_MIB(2))
/* Re-touch and cycle of a single page time one store or fault per iteration
 * (100 ns to a few us), close to the clock's own cost: the quick profile
 * measures them on ranges of many pages only. */
#define MAIN_TOUCH_QUICK PB_ARGS(PB_MIB(2), PB_MIB(128))
#define OTHER_TOUCH_QUICK PB_ARGS(PB_MIB(2))

#define MADV_BENCH_SIZES(id, nm, adv, mode, full, quick, whatstr)                              \
	PB_BENCH(bm_madv_##id, "madvise/" nm, whatstr, .args = full, .quick_args = quick,            \
		 .manual_time = true, .min_time = POOL_MIN_TIME, .max_iterations = POOL_MAX_ITERATIONS)           \
	{                                                                                       \
		run(s, &adv, mode);                                                             \
	}
#define MADV_BENCH(id, nm, adv, mode, set, whatstr) \
	MADV_BENCH_SIZES(id, nm, adv, mode, set##_FULL, set##_QUICK, whatstr)

/* One advice: the first call, the re-touch after it, and the steady-state
 * cycle; from is the state the first call meets. */
#define MADV_TRIO(id, nm, adv, set, callwhat, from)                                                 \
	MADV_BENCH(id, nm, adv, MODE_FIRST, set, callwhat)                                           \
	MADV_BENCH_SIZES(id##_retouch, nm "_retouch", adv, MODE_RETOUCH, set##_FULL, set##_TOUCH_QUICK, \
			 "write one byte to each page right after the first " nm " advice (and the pair's undo, " \
			 "if any) of " from)                                                           \
	MADV_BENCH_SIZES(id##_cycle, nm "_cycle", adv, MODE_CYCLE, set##_FULL, set##_TOUCH_QUICK,        \
			 nm " advice (and the pair's undo, if any) then a write to each page, repeated on the " \
			 "same pages (steady state)")

/* An advice whose cost depends on the pages' state: also the call again. */
#define MADV_STATEFUL(id, nm, adv, set, callwhat, againwhat)                  \
	MADV_TRIO(id, nm, adv, set, callwhat, FRESH)                          \
	MADV_BENCH(id##_again, nm "_again", adv, MODE_AGAIN, set, againwhat)

#define FRESH "freshly faulted, written pages"
#define RELEASED "a range released with MADV_DONTNEED"

MADV_TRIO(dontneed, "dontneed", adv_dontneed, MAIN,
	  "madvise(MADV_DONTNEED) of " FRESH " (a refault makes pages fresh again, so no _again)", FRESH)
MADV_STATEFUL(free, "free", adv_free, MAIN,
	      "madvise(MADV_FREE) of " FRESH ": the first advice, which moves them to the lazy-free list",
	      "madvise(MADV_FREE) of pages freed before and rewritten since: already lazy-free, no list move")
MADV_STATEFUL(cold, "cold", adv_cold, MAIN,
	      "madvise(MADV_COLD) of " FRESH ": the first advice, which deactivates them",
	      "madvise(MADV_COLD) of pages made cold before and rewritten since: already inactive")
MADV_STATEFUL(pageout, "pageout", adv_pageout, MAIN,
	      "madvise(MADV_PAGEOUT) of " FRESH ": the first advice, which writes them to swap",
	      "madvise(MADV_PAGEOUT) of pages paged out before and rewritten since (swapped in by the rewrite)")
MADV_TRIO(populate_read, "populate_read", adv_populate_read, OTHER,
	  "madvise(MADV_POPULATE_READ) of " RELEASED " (maps the zero page)", RELEASED)
MADV_TRIO(populate_write, "populate_write", adv_populate_write, OTHER,
	  "madvise(MADV_POPULATE_WRITE) of " RELEASED " (allocates every page)", RELEASED)
MADV_TRIO(willneed, "willneed", adv_willneed, OTHER,
	  "madvise(MADV_WILLNEED) of " FRESH " (nothing to read ahead)", FRESH)
MADV_TRIO(guard, "guard_install", adv_guard, OTHER,
	  "pl_guard (MADV_GUARD_INSTALL or its equivalent) of " FRESH "; removal untimed", FRESH)
MADV_BENCH(guard_remove, "guard_remove", adv_guard, MODE_UNDO, OTHER,
	   "pl_unguard (MADV_GUARD_REMOVE or its equivalent) of a range guarded once after being faulted")
MADV_STATEFUL(reusable, "reusable", adv_reusable, OTHER,
	      "pl_reusable (MADV_FREE_REUSABLE or its emulation) of " FRESH "; pl_reuse untimed",
	      "pl_reusable of pages made reusable before, reused and rewritten since; pl_reuse untimed")
MADV_BENCH(reuse, "reuse", adv_reusable, MODE_UNDO, OTHER,
	   "pl_reuse (MADV_FREE_REUSE or its emulation) of freshly faulted pages made reusable once")
