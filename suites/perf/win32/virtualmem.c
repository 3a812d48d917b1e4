/* Windows' own ways of handing pages back, beside the page layer's verbs
 * (suites/perf/pagelayer.c): the per-page cost of DiscardVirtualMemory,
 * OfferVirtualMemory and ReclaimVirtualMemory, MEM_RESET_UNDO, and a
 * PAGE_NOACCESS round trip, each from freshly faulted, written pages (or the
 * state its name says). A call this Windows lacks or refuses is skipped with
 * the reason. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"
#include "pl_abi.h"
#include "pl_win32.h"

#include <errno.h>

#include "../pool.h"

#define WIN_FULL PB_ARGS(PB_PAGE, PB_KIB(64), PB_MIB(2), PB_MIB(32))
#define WIN_QUICK PB_ARGS(PB_PAGE, PB_MIB(2))

static int mem_reset(void *p, size_t len)
{
	return VirtualAlloc(p, len, MEM_RESET, PAGE_NOACCESS) == p ? 0 : pl_win_last_errno();
}

static int mem_reset_undo(void *p, size_t len)
{
	return VirtualAlloc(p, len, MEM_RESET_UNDO, PAGE_NOACCESS) == p ? 0 : pl_win_last_errno();
}

static int fresh_then_reset(void *p, size_t len)
{
	int e = pool_fresh(p, len);
	return e ? e : mem_reset(p, len);
}

static int discard(void *p, size_t len)
{
	pl_discard_fn f = (pl_discard_fn)(void *)pl_win_export("DiscardVirtualMemory");
	return f ? pl_win_errno(f(p, len)) : ENOSYS;
}

static int offer(void *p, size_t len)
{
	pl_offer_fn f = (pl_offer_fn)(void *)pl_win_export("OfferVirtualMemory");
	return f ? pl_win_errno(f(p, len, PL_VM_OFFER_PRIORITY_VERY_LOW)) : ENOSYS;
}

/* ERROR_BUSY (the pages were discarded) is a reclaim that worked. */
static int reclaim(void *p, size_t len)
{
	pl_reclaim_fn f = (pl_reclaim_fn)(void *)pl_win_export("ReclaimVirtualMemory");
	DWORD r = f ? f(p, len) : ERROR_CALL_NOT_IMPLEMENTED;
	return r == ERROR_BUSY ? 0 : pl_win_errno(r);
}

static int fresh_then_offer(void *p, size_t len)
{
	int e = pool_fresh(p, len);
	return e ? e : offer(p, len);
}

static int noaccess_and_back(void *p, size_t len)
{
	DWORD old;
	if (!VirtualProtect(p, len, PAGE_NOACCESS, &old) || !VirtualProtect(p, len, PAGE_READWRITE, &old))
		return pl_win_last_errno();
	return 0;
}

/* Skip unless the call works on one fresh page: a missing export or a refusal says why. */
static void run_call(pb_state *s, const struct pool_op *op, const char *call)
{
	void *p;
	int e = pl_map_anon(pl_page_size(), &p);
	if (!e && (e = op->prepare(p, pl_page_size())) == 0 && (e = op->timed(p, pl_page_size())) == 0 && op->after)
		e = op->after(p, pl_page_size());
	if (!e)
		e = pl_unmap(p, pl_page_size());
	if (e) {
		pb_skip_errno(s, call, e);
		return;
	}
	pb_set_label(s, call);
	pool_run(s, op);
}

#define WIN_BENCH(fn, name, whatstr)                                                                   \
	PB_BENCH(fn, name, whatstr, .args = WIN_FULL, .quick_args = WIN_QUICK, .manual_time = true,       \
		 .min_time = POOL_MIN_TIME, .max_iterations = POOL_MAX_ITERATIONS)

WIN_BENCH(bm_discard, "discardvirtualmemory/discard", "DiscardVirtualMemory of freshly faulted, written pages")
{
	static const struct pool_op op = {"DiscardVirtualMemory", pool_fresh, discard, NULL};
	run_call(s, &op, "DiscardVirtualMemory");
}

WIN_BENCH(bm_offer, "offervirtualmemory/offer",
	  "OfferVirtualMemory (VmOfferPriorityVeryLow) of freshly faulted, written pages; ReclaimVirtualMemory untimed")
{
	static const struct pool_op op = {"OfferVirtualMemory", pool_fresh, offer, reclaim};
	run_call(s, &op, "OfferVirtualMemory");
}

WIN_BENCH(bm_reclaim, "offervirtualmemory/reclaim", "ReclaimVirtualMemory of freshly faulted pages offered once")
{
	static const struct pool_op op = {"ReclaimVirtualMemory", fresh_then_offer, reclaim, NULL};
	run_call(s, &op, "ReclaimVirtualMemory");
}

WIN_BENCH(bm_reset_undo, "virtualalloc/mem_reset_undo",
	  "VirtualAlloc(MEM_RESET_UNDO) of freshly faulted, written pages reset once with MEM_RESET")
{
	static const struct pool_op op = {"MEM_RESET_UNDO", fresh_then_reset, mem_reset_undo, NULL};
	run_call(s, &op, "VirtualAlloc(MEM_RESET_UNDO)");
}

WIN_BENCH(bm_noaccess, "virtualprotect/noaccess_and_back",
	  "VirtualProtect to PAGE_NOACCESS and back to PAGE_READWRITE of freshly faulted, written pages")
{
	static const struct pool_op op = {"VirtualProtect", pool_fresh, noaccess_and_back, NULL};
	run_call(s, &op, "VirtualProtect(PAGE_NOACCESS, PAGE_READWRITE)");
}
