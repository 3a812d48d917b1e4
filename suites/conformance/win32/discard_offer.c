/* Windows 8.1's ways of handing memory back without decommitting it.
 * DiscardVirtualMemory: the contents are undefined afterwards (what is seen
 * is recorded) and the pages stay committed and accessible.
 * OfferVirtualMemory / ReclaimVirtualMemory, the counterpart of Darwin's
 * MADV_FREE_REUSABLE / REUSE: offered pages are inaccessible; Reclaim says
 * ERROR_SUCCESS when they are intact and ERROR_BUSY when they were discarded
 * (contents then undefined). The oracles are those functions' documentation. */
#include "config.h"
#include "probe_win32.h"

#include <string.h>

#define PAGES 16
#define SEED 47
#define SINCE "Windows 8.1"

PC_PROBE(discard, "discardvirtualmemory.contents_after",
	 "DiscardVirtualMemory succeeds on committed memory, which stays accessible; its contents (undefined) are recorded")
{
	pl_discard_fn discard_fn = (pl_discard_fn)(void *)pw_export_or_skip(ctx, "DiscardVirtualMemory", SINCE);
	size_t len = PAGES * pl_page_size();
	char *p = pw_commit(ctx, len);
	pc_fill(p, len, SEED);
	DWORD r = discard_fn(p, len);
	pc_observe(ctx, "answer", "%s", pl_win_error_name(r));
	PC_CHECK(ctx, r == ERROR_SUCCESS, "DiscardVirtualMemory of committed memory returned %s", pl_win_error_name(r));
	pc_expect_access(ctx, "access_after", p, false, 0);
	pc_observe(ctx, "contents_after", "%s", pc_contents(p, len, SEED));
	pc_fill(p, len, SEED + 1);
	PC_CHECK(ctx, pc_check_fill(p, len, SEED + 1), "a write after the discard was not kept");
	pw_release(ctx, p);
	pc_pass(ctx);
}

struct offer_calls {
	pl_offer_fn offer;
	pl_reclaim_fn reclaim;
};

static struct offer_calls offer_calls(struct pc_ctx *ctx)
{
	struct offer_calls c;
	c.offer = (pl_offer_fn)(void *)pw_export_or_skip(ctx, "OfferVirtualMemory", SINCE);
	c.reclaim = (pl_reclaim_fn)(void *)pw_export_or_skip(ctx, "ReclaimVirtualMemory", SINCE);
	return c;
}

static void offer(struct pc_ctx *ctx, const struct offer_calls *c, void *p, size_t len)
{
	DWORD r = c->offer(p, len, PL_VM_OFFER_PRIORITY_VERY_LOW);
	if (r != ERROR_SUCCESS)
		pc_fail_refused(ctx, "OfferVirtualMemory of committed private memory returned %s", pl_win_error_name(r));
}

PC_PROBE(offer_reclaim, "offervirtualmemory.reclaim.intact_or_busy",
	 "offered then reclaimed: ERROR_SUCCESS and every byte intact, or ERROR_BUSY (discarded; contents recorded)")
{
	struct offer_calls c = offer_calls(ctx);
	size_t len = PAGES * pl_page_size();
	char *p = pw_commit(ctx, len);
	pc_fill(p, len, SEED);
	offer(ctx, &c, p, len);
	DWORD r = c.reclaim(p, len);
	const char *got = pc_contents(p, len, SEED);
	pc_observe(ctx, "reclaim", "%s", pl_win_error_name(r));
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, r == ERROR_SUCCESS || r == ERROR_BUSY, "ReclaimVirtualMemory returned %s", pl_win_error_name(r));
	if (r == ERROR_SUCCESS)
		PC_CHECK(ctx, strcmp(got, "old") == 0, "ReclaimVirtualMemory said intact and the memory reads %s", got);
	pc_expect_access(ctx, "access_after_reclaim", p, true, 1);
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(offered_faults, "offervirtualmemory.offered.inaccessible",
	 "offered pages are inaccessible until reclaimed: a read faults")
{
	struct offer_calls c = offer_calls(ctx);
	size_t len = PAGES * pl_page_size();
	char *p = pw_commit(ctx, len);
	pc_fill(p, len, SEED);
	offer(ctx, &c, p, len);
	struct pl_fault f = pc_access(p, false, 0);
	pc_observe(ctx, "read_while_offered", "%s", f.name);
	DWORD r = c.reclaim(p, len);
	PC_CHECK(ctx, f.kind != PL_FAULT_NONE, "reading an offered page did not fault");
	PC_CHECK(ctx, r == ERROR_SUCCESS || r == ERROR_BUSY, "ReclaimVirtualMemory returned %s", pl_win_error_name(r));
	pw_release(ctx, p);
	pc_pass(ctx);
}
