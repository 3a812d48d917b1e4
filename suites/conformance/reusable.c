/* Darwin's MADV_FREE_REUSABLE / MADV_FREE_REUSE pair: pages handed back as
 * reusable stay mapped; after reuse each page reads its old bytes or zero,
 * and writes after reuse are kept. Native where the running system knows
 * the pair; elsewhere the page layer's emulation (pl_reusable / pl_reuse) is
 * held to the same contract and the result says it was emulated. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pl_abi.h"

#define LEN_PAGES 64
#define SEED 17
#define SEED_NEW 18

/* Darwin's native pair where the running system knows it: asked on an empty range, where a known advice is
 * accepted and an unknown one refused (as pc_need_advice asks); elsewhere the page layer's emulation. */
static bool native_pair(void)
{
	return pc_unknown_advice_errno(NULL, 0) != 0 && pc_madvise(NULL, 0, MADV_FREE_REUSABLE) == 0 &&
	       pc_madvise(NULL, 0, MADV_FREE_REUSE) == 0;
}

/* Darwin's pair keeps reusable pages accessible; the page layer's contract does not promise it
 * (Windows' offered pages fault until reclaimed). */
static bool access_must_stay_legal(void)
{
	return native_pair();
}

static int make_reusable(void *p, size_t len)
{
	return native_pair() ? pc_madvise(p, len, MADV_FREE_REUSABLE) : pl_reusable(p, len);
}

static int reuse(void *p, size_t len)
{
	return native_pair() ? pc_madvise(p, len, MADV_FREE_REUSE) : pl_reuse(p, len);
}

static void observe_impl(struct pc_ctx *ctx)
{
	const struct pl_cap *c = &pl_caps()->op[PL_OP_REUSABLE];
	if (native_pair()) {
		pc_measure(ctx, "implementation", "native: madvise(MADV_FREE_REUSABLE/MADV_FREE_REUSE)");
		return;
	}
	if (c->impl == PL_UNAVAILABLE)
		pc_skip_unsupported(ctx, "no reusable/reuse on this system: %s", c->how ? c->how : "page layer lacks it");
	pc_measure(ctx, "implementation", "%s: %s", pl_impl_name(c->impl), c->via ? c->via : "?");
}

/* Hand the range back as reusable, then reuse it; refusals per kind are skips. */
static void reusable_then_reuse(struct pc_ctx *ctx, void *p, size_t len)
{
	observe_impl(ctx);
	int e = make_reusable(p, len);
	if (e == EINVAL && pc_kind(ctx) != PC_PRIVATE_ANON)
		pc_skip_unsupported(ctx, "reusable refused on %s mappings (EINVAL)", pc_kind_name(pc_kind(ctx)));
	PC_CHECK(ctx, e == 0, "reusable returned %s", pc_strerror(e));
	e = reuse(p, len);
	PC_CHECK(ctx, e == 0, "reuse returned %s", pc_strerror(e));
}

PC_PROBE_KINDS(reuse_contents, "reusable.contents_after_reuse", PC_ALL_KINDS,
	       "after reusable then reuse each page reads its old bytes or zero, also after reclaim")
{
	struct pc_map m;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	char *old = malloc(m.len);
	if (!old)
		pc_error(ctx, "malloc of %zu bytes failed", m.len);
	pc_fill(m.addr, m.len, SEED);
	memcpy(old, m.addr, m.len);
	reusable_then_reuse(ctx, m.addr, m.len);
	pc_observe(ctx, "contents_after_reuse", "%s", pc_contents(m.addr, m.len, SEED));
	PC_CHECK(ctx, pc_pages_old_or_zero(m.addr, old, m.len), "a page reads neither old bytes nor zero");
	bool forced = pc_force_reclaim(m.addr, m.len);
	pc_observe(ctx, "contents_after_pageout", "%s", forced ? pc_contents(m.addr, m.len, SEED) : "not forced");
	PC_CHECK(ctx, pc_pages_old_or_zero(m.addr, old, m.len), "after reclaim a page reads neither old bytes nor zero");
	free(old);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS(reuse_write, "reusable.write_after_reuse_kept", PC_PRIVATE_ANON | PC_THP,
	       "data written after reuse survives forced reclaim (reuse ends the reusable state)")
{
	struct pc_map m;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	reusable_then_reuse(ctx, m.addr, m.len);
	pc_fill(m.addr, m.len, SEED_NEW);
	bool forced = pc_force_reclaim(m.addr, m.len);
	pc_observe(ctx, "reclaim_forced", "%s", forced ? pc_reclaim_name() : "no");
	const char *got = pc_contents(m.addr, m.len, SEED_NEW);
	pc_observe(ctx, "contents_after", "%s", got);
	/* Losing data written after reuse means the range was still treated as reusable. */
	PC_CHECK(ctx, strcmp(got, "old") == 0, "data written after reuse: expected kept, observed %s", got);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(reusable_rss, "reusable.rss_after_reusable",
	 "reusable pages stay mapped (Darwin's pair: access is legal, no fault); RSS before and after reclaim, "
	 "and the footprint where the system keeps one (Darwin's phys_footprint), observed")
{
	struct pc_map m;
	size_t filled, after, after_reclaim;
	size_t fp_filled = 0, fp_after = 0;
	pc_map_or_skip(ctx, pc_rss_window(), &m);
	pc_fill(m.addr, m.len, SEED);
	filled = pc_obs_rss(ctx);
	bool footprint = pl_footprint(&fp_filled) == 0;
	observe_impl(ctx);
	PC_SETUP(ctx, make_reusable(m.addr, m.len));
	after = pc_obs_rss(ctx);
	/* Darwin's point of the pair: reusable pages leave the footprint at once, though still resident. */
	if (footprint && pl_footprint(&fp_after) == 0)
		pc_observe(ctx, "footprint_after", "%s", pc_rss_change(fp_filled, fp_after, m.len));
	bool forced = pc_force_reclaim(m.addr, m.len);
	after_reclaim = pc_obs_rss(ctx);
	pc_observe(ctx, "rss_after", "%s", pc_rss_change(filled, after, m.len));
	pc_observe(ctx, "rss_after_pageout", "%s", forced ? pc_rss_change(filled, after_reclaim, m.len) : "not forced");
	struct pl_fault f = pc_access(m.addr, false, 0);
	pc_observe(ctx, "access_while_reusable", "%s", f.name);
	PC_CHECK(ctx, f.kind == PL_FAULT_NONE || !access_must_stay_legal(), "reading a reusable page faulted (%s)", f.name);
	PC_SETUP(ctx, reuse(m.addr, m.len));
	pc_unmap(&m);
	pc_pass(ctx);
}
