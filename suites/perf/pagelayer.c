/* pagelayer: the per-page cost of the page layer's verbs on every system,
 * under the same names, so that one system's primitive stands beside
 * another's in a comparison (release: MADV_FREE or MEM_RESET; release_zero:
 * MADV_DONTNEED or decommit and commit; reusable: MADV_FREE_REUSABLE, its
 * emulation, or OfferVirtualMemory; guard: a guard marker, a guard entry or
 * PROT_NONE). Each call meets freshly faulted, written
 * pages; the label names the system call behind the verb. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/platform.h"

#include <stdio.h>

#include "pool.h"

#define VERB_FULL PB_ARGS(PB_PAGE, PB_KIB(64), PB_MIB(2), PB_MIB(32))
#define VERB_QUICK PB_ARGS(PB_PAGE, PB_MIB(2))

static int release(void *p, size_t len) { return pl_release(p, len); }
static int release_zero(void *p, size_t len) { return pl_release_zero(p, len); }
static int decommit(void *p, size_t len) { return pl_decommit(p, len); }
static int commit(void *p, size_t len) { return pl_commit(p, len); }
static int reusable(void *p, size_t len) { return pl_reusable(p, len); }
static int reuse(void *p, size_t len) { return pl_reuse(p, len); }
static int guard(void *p, size_t len) { return pl_guard(p, len); }
static int unguard(void *p, size_t len) { return pl_unguard(p, len); }
static int dropped(void *p, size_t len) { return pl_release_zero(p, len); }
static int touch(void *p, size_t len)
{
	pb_touch_pages(p, len);
	return 0;
}

/* label: how the label names the verb's system call ("%s" for the call itself). */
static void run_verb(pb_state *s, enum pl_op op, const struct pool_op *pool_op, const char *label)
{
	const struct pl_cap *c = &pl_caps()->op[op];
	char buf[128];
	if (c->impl == PL_UNAVAILABLE) {
		pb_skip(s, c->how ? c->how : "unavailable on this system");
		return;
	}
	snprintf(buf, sizeof(buf), label, c->via);
	pb_set_label(s, buf);
	pool_run(s, pool_op);
}

#define VERB_BENCH(fn, name, whatstr)                                                                 \
	PB_BENCH(fn, "pagelayer/" name, whatstr, .args = VERB_FULL, .quick_args = VERB_QUICK, .manual_time = true, \
		 .min_time = POOL_MIN_TIME, .max_iterations = POOL_MAX_ITERATIONS)

VERB_BENCH(bm_pl_release, "release", "pl_release (MADV_FREE, MEM_RESET ...) of freshly faulted, written pages")
{
	static const struct pool_op op = {"pl_release", pool_fresh, release, NULL};
	run_verb(s, PL_OP_RELEASE, &op, "%s");
}

VERB_BENCH(bm_pl_release_zero, "release_zero",
	   "pl_release_zero (MADV_DONTNEED, decommit and commit ...) of freshly faulted, written pages")
{
	static const struct pool_op op = {"pl_release_zero", pool_fresh, release_zero, NULL};
	run_verb(s, PL_OP_RELEASE_ZERO, &op, "%s");
}

VERB_BENCH(bm_pl_decommit, "decommit", "pl_decommit of freshly faulted, written pages; pl_commit untimed")
{
	static const struct pool_op op = {"pl_decommit", pool_fresh, decommit, commit};
	run_verb(s, PL_OP_DECOMMIT, &op, "%s");
}

VERB_BENCH(bm_pl_reusable, "reusable",
	   "pl_reusable (MADV_FREE_REUSABLE, OfferVirtualMemory or an emulation) of freshly faulted, written pages; pl_reuse untimed")
{
	static const struct pool_op op = {"pl_reusable", pool_fresh, reusable, reuse};
	run_verb(s, PL_OP_REUSABLE, &op, "%s");
}

VERB_BENCH(bm_pl_guard, "guard",
	   "pl_guard (MADV_GUARD_INSTALL, FreeBSD's MAP_GUARD entries, PAGE_NOACCESS or mprotect) of freshly faulted, "
	   "written pages; pl_unguard untimed")
{
	static const struct pool_op op = {"pl_guard", pool_fresh, guard, unguard};
	run_verb(s, PL_OP_GUARD, &op, "%s");
}

VERB_BENCH(bm_pl_first_touch, "first_touch",
	   "a write to each page of memory whose pages were given back with pl_release_zero: one demand-zero fault a page")
{
	static const struct pool_op op = {"first touch", dropped, touch, NULL};
	run_verb(s, PL_OP_RELEASE_ZERO, &op, "fault after %s");
}
