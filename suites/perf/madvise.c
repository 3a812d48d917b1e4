/* madvise: per advice this system supports, the cost per page of the call on
 * resident memory (madvise/<advice>), of re-touching the range afterwards
 * (<advice>_retouch), and of both together (<advice>_cycle). Pairs whose
 * second half must run before the memory is usable again (guard
 * install/remove, reusable/reuse) also time that half alone. Private
 * anonymous memory with THP off; set-up is paused (timer and counters). */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#ifdef __linux__
#include <sys/sysinfo.h>
#include "linux_abi.h"
#endif

enum prep {
	PREP_RESIDENT, /* every page written before the call */
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
	MODE_CALL,    /* time the advice */
	MODE_UNDO,    /* time the undo half of a pair */
	MODE_RETOUCH, /* time writing every page after advice (+ undo) */
	MODE_CYCLE,   /* time advice (+ undo) + writing every page */
};

static int advise(const struct advice *a, void *p, size_t len)
{
	if (a->fn)
		return a->fn(p, len);
	return madvise(p, len, a->number) == 0 ? 0 : errno;
}

/* Fault the range in (populate where the kernel can, which is faster), then write every page. */
static int make_resident(void *p, size_t len)
{
#ifdef __linux__
	if (madvise(p, len, MADV_POPULATE_WRITE) != 0 && errno != EINVAL)
		return errno;
#endif
	pb_touch_pages(p, len);
	return 0;
}

static int prepare(const struct advice *a, void *p, size_t len)
{
	int e = make_resident(p, len);
	if (!e && a->prep == PREP_RELEASED)
		e = pl_release_zero(p, len);
	return e;
}

/* Why this advice cannot be measured here, or NULL. */
static const char *unavailable(const struct advice *a, char *buf, size_t n)
{
#ifdef __linux__
	struct sysinfo si;
	if (a->needs_swap && (sysinfo(&si) != 0 || si.totalswap == 0))
		return "no swap: anonymous pages cannot be paged out";
#endif
	if (!a->fn && a->number < 0) {
		snprintf(buf, n, "%s: not in this system's headers", a->label);
		return buf;
	}
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

/* The untimed part, done for a whole pool of ranges at once: after the
 * first fill, undo what the timed calls left, then prepare every range. */
static int refill(const struct advice *a, enum mode m, void *pool, size_t plen, bool first)
{
	int e = !first && m == MODE_CALL && a->undo ? a->undo(pool, plen) : 0;
	if (!e)
		e = prepare(a, pool, plen);
	if (!e && (m == MODE_UNDO || m == MODE_RETOUCH))
		e = advise(a, pool, plen);
	if (!e && m == MODE_RETOUCH && a->undo)
		e = a->undo(pool, plen);
	return e;
}

static int timed(const struct advice *a, enum mode m, void *p, size_t len)
{
	int e = 0;
	if (m == MODE_CALL || m == MODE_CYCLE)
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
#ifdef MADV_NOHUGEPAGE
	/* Base pages only, so that per-page counts mean 4 KiB pages. */
	if (!e && madvise(*p, len, MADV_NOHUGEPAGE) != 0 && errno != EINVAL) {
		e = errno;
		(void)pl_unmap(*p, len);
	}
#endif
	return e;
}

/* Small ranges come from a pool prepared in one go, so that pausing the
 * timer (and the counters) once serves many iterations. */
#define POOL_BYTES PB_MIB(4)

static int iterate(pb_state *s, const struct advice *a, enum mode m, unsigned char *pool, size_t plen, size_t len)
{
	size_t n = plen / len, k = n;
	bool first = true;
	while (pb_keep_running(s)) {
		if (k == n) {
			pb_pause_timing(s);
			int e = refill(a, m, pool, plen, first);
			pb_resume_timing(s);
			if (e)
				return e;
			first = false;
			k = 0;
		}
		double t0 = pb_seconds();
		int e = timed(a, m, pool + k++ * len, len);
		double t1 = pb_seconds();
		if (e)
			return e;
		pb_set_iteration_time(s, t1 - t0);
	}
	return 0;
}

static void run(pb_state *s, const struct advice *a, enum mode m)
{
	char why[160];
	size_t len = (size_t)pb_arg(s, 0);
	size_t plen = len < (size_t)POOL_BYTES ? (size_t)POOL_BYTES / len * len : len;
	const char *no = unavailable(a, why, sizeof(why));
	/* Timing a verb that makes no system call would time only the clock. */
	if (!no && m == MODE_UNDO && a->undo_op >= 0 && strcmp(pl_caps()->op[a->undo_op].via, "none") == 0) {
		snprintf(why, sizeof(why), "%s: no system call on this system (%s)", pl_op_name((enum pl_op)a->undo_op),
			 pl_caps()->op[a->undo_op].how ? pl_caps()->op[a->undo_op].how : "emulated");
		no = why;
	}
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
	e = iterate(s, a, m, pool, plen, len);
	int e2 = pl_unmap(pool, plen);
	if (e || e2) {
		pb_skip_errno(s, a->label, e ? e : e2);
		return;
	}
	size_t pages = len / pl_page_size();
	pb_set_items_processed(s, pb_iterations(s) * (int64_t)pages);
	pb_counter(s, "pages", (double)pages, PB_COUNTER_TOTAL);
}

static int page_layer_reusable(void *p, size_t len) { return pl_reusable(p, len); }
static int page_layer_reuse(void *p, size_t len) { return pl_reuse(p, len); }
static int page_layer_guard(void *p, size_t len) { return pl_guard(p, len); }
static int page_layer_unguard(void *p, size_t len) { return pl_unguard(p, len); }

#ifndef MADV_DONTNEED
#define MADV_DONTNEED -1
#endif
#ifndef MADV_FREE
#define MADV_FREE -1
#endif
#ifndef MADV_COLD
#define MADV_COLD -1
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT -1
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ -1
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE -1
#endif
#ifndef MADV_WILLNEED
#define MADV_WILLNEED -1
#endif

static const struct advice adv_dontneed = {"MADV_DONTNEED", MADV_DONTNEED, NULL, NULL, PREP_RESIDENT, false, -1, -1};
static const struct advice adv_free = {"MADV_FREE", MADV_FREE, NULL, NULL, PREP_RESIDENT, false, -1, -1};
static const struct advice adv_cold = {"MADV_COLD", MADV_COLD, NULL, NULL, PREP_RESIDENT, false, -1, -1};
static const struct advice adv_pageout = {"MADV_PAGEOUT", MADV_PAGEOUT, NULL, NULL, PREP_RESIDENT, true, -1, -1};
static const struct advice adv_populate_read = {"MADV_POPULATE_READ", MADV_POPULATE_READ, NULL, NULL, PREP_RELEASED, false, -1, -1};
static const struct advice adv_populate_write = {"MADV_POPULATE_WRITE", MADV_POPULATE_WRITE, NULL, NULL, PREP_RELEASED, false, -1, -1};
static const struct advice adv_willneed = {"MADV_WILLNEED", MADV_WILLNEED, NULL, NULL, PREP_RESIDENT, false, -1, -1};
static const struct advice adv_guard = {"pl_guard", -1, page_layer_guard, page_layer_unguard, PREP_RESIDENT, false, PL_OP_GUARD, PL_OP_UNGUARD};
static const struct advice adv_reusable = {"pl_reusable", -1, page_layer_reusable, page_layer_reuse, PREP_RESIDENT, false, PL_OP_REUSABLE, PL_OP_REUSE};

/* The three release kinds the reports compare get the whole sweep in both profiles. */
#define MAIN_FULL PB_SIZES_FULL
#define MAIN_QUICK PB_ARGS(PB_KIB(4), PB_MIB(2), PB_MIB(256))
#define OTHER_FULL PB_ARGS(PB_KIB(4), PB_KIB(64), PB_MIB(2), PB_MIB(32), PB_MIB(256))
#define OTHER_QUICK PB_ARGS(PB_KIB(4), PB_MIB(2))
#define MADV_MIN_TIME 0.02

#define MADV_BENCH(id, nm, adv, mode, set, whatstr)                                     \
	PB_BENCH(bm_madv_##id, "madvise/" nm, whatstr, .args = set##_FULL, .quick_args = set##_QUICK,          \
		 .manual_time = true, .min_time = MADV_MIN_TIME, .max_iterations = 200)           \
	{                                                                                       \
		run(s, &adv, mode);                                                             \
	}

/* One advice: the call, the re-touch after it, and the two together. */
#define MADV_TRIO(id, nm, adv, set, callwhat)                                           \
	MADV_BENCH(id, nm, adv, MODE_CALL, set, callwhat)                                \
	MADV_BENCH(id##_retouch, nm "_retouch", adv, MODE_RETOUCH, set,                  \
		   "write one byte to each page of a range right after this advice")              \
	MADV_BENCH(id##_cycle, nm "_cycle", adv, MODE_CYCLE, set,                        \
		   "this advice on a resident range, then write one byte to each page")

MADV_TRIO(dontneed, "dontneed", adv_dontneed, MAIN, "madvise(MADV_DONTNEED) of a resident range")
MADV_TRIO(free, "free", adv_free, MAIN, "madvise(MADV_FREE) of a resident, written range")
MADV_TRIO(cold, "cold", adv_cold, MAIN, "madvise(MADV_COLD) of a resident range")
MADV_TRIO(pageout, "pageout", adv_pageout, OTHER, "madvise(MADV_PAGEOUT) of a resident range")
MADV_TRIO(populate_read, "populate_read", adv_populate_read, OTHER,
	  "madvise(MADV_POPULATE_READ) of a range released with MADV_DONTNEED")
MADV_TRIO(populate_write, "populate_write", adv_populate_write, OTHER,
	  "madvise(MADV_POPULATE_WRITE) of a range released with MADV_DONTNEED")
MADV_TRIO(willneed, "willneed", adv_willneed, OTHER, "madvise(MADV_WILLNEED) of a resident range")
MADV_TRIO(guard, "guard_install", adv_guard, OTHER,
	  "pl_guard (MADV_GUARD_INSTALL or its equivalent) of a resident range; removal untimed")
MADV_BENCH(guard_remove, "guard_remove", adv_guard, MODE_UNDO, OTHER,
	   "pl_unguard (MADV_GUARD_REMOVE or its equivalent) of a guarded range")
MADV_TRIO(reusable, "reusable", adv_reusable, OTHER,
	  "pl_reusable (MADV_FREE_REUSABLE or its emulation) of a resident range; pl_reuse untimed")
MADV_BENCH(reuse, "reuse", adv_reusable, MODE_UNDO, OTHER,
	   "pl_reuse (MADV_FREE_REUSE or its emulation) of a range made reusable")
