/* The allocator contract, probed end to end through refalloc (which meets the
 * OS only through the page layer): for each release policy, what freed and
 * reallocated memory holds, that calloc reads zero, when RSS drops after a
 * large free; a forked child allocating privately; pattern initialisation on
 * fresh memory and never in calloc; guard pages. Each probe runs in its own
 * process, so each configures refalloc before its first allocation. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/refalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "pl_abi.h"

#define SEED 41
#define LARGE ((size_t)8 << 20)
#define BIG ((size_t)64 << 20)

static const enum pl_op policy_op[] = {
	[RA_RELEASE_NONE] = PL_OP_COUNT,
	[RA_RELEASE_RELEASE] = PL_OP_RELEASE,
	[RA_RELEASE_ZERO] = PL_OP_RELEASE_ZERO,
	[RA_RELEASE_REUSABLE] = PL_OP_REUSABLE,
	[RA_RELEASE_DECOMMIT] = PL_OP_DECOMMIT,
};

/* Configure refalloc (skipping when the page layer lacks the policy's primitive). */
static void setup(struct pc_ctx *ctx, enum ra_release r, enum ra_init i, enum ra_pattern_via v)
{
	enum pl_op op = policy_op[r];
	if (op != PL_OP_COUNT && pl_caps()->op[op].impl == PL_UNAVAILABLE)
		pc_skip_unsupported(ctx, "page layer has no %s: %s", pl_op_name(op),
				    pl_caps()->op[op].how ? pl_caps()->op[op].how : "?");
	struct ra_config c;
	ra_config_default(&c);
	c.release = r;
	c.init = i;
	c.via = v;
	int e = ra_configure(&c);
	const struct pl_cap *pat = &pl_caps()->op[PL_OP_MAP_PATTERN];
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "pattern mapping is %s (%s)", pat->via ? pat->via : "?", pat->how ? pat->how : "?");
	PC_SETUP(ctx, e);
	pc_observe(ctx, "release", "%s via %s", ra_release_name(r),
		   op == PL_OP_COUNT ? "nothing" : pl_caps()->op[op].via ? pl_caps()->op[op].via : "?");
}

/* Free a large object, release by the policy, allocate the same size again:
 * refalloc's cache hands back the same memory. */
static void probe_reuse(struct pc_ctx *ctx, enum ra_release r)
{
	setup(ctx, r, RA_INIT_NONE, RA_PATTERN_AUTO);
	char *p = ra_malloc(LARGE);
	PC_SETUP(ctx, p ? 0 : ENOMEM);
	pc_fill(p, LARGE, SEED);
	ra_free(p);
	PC_SETUP(ctx, ra_trim());
	char *q = ra_malloc(LARGE);
	PC_SETUP(ctx, q ? 0 : ENOMEM);
	if (q != p)
		pc_error(ctx, "the freed object was not reused (got %p, freed %p)", (void *)q, (void *)p);
	const char *got = pc_contents(q, LARGE, SEED);
	pc_observe(ctx, "contents_after_reuse", "%s", got);
	bool zero = strcmp(got, "zero") == 0, old = strcmp(got, "old") == 0, mixed = strcmp(got, "mixed") == 0;
	switch (r) {
	case RA_RELEASE_NONE:
		PC_CHECK(ctx, old, "kept memory must hold its old bytes, holds %s", got);
		break;
	case RA_RELEASE_ZERO:
	case RA_RELEASE_DECOMMIT:
		PC_CHECK(ctx, zero, "%s promises zero, memory holds %s", ra_release_name(r), got);
		break;
	default:
		PC_CHECK(ctx, zero || old || mixed, "%s allows old or zero per page, memory holds %s", ra_release_name(r), got);
	}
	pc_pass(ctx);
}

static void probe_calloc(struct pc_ctx *ctx, enum ra_release r)
{
	setup(ctx, r, RA_INIT_NONE, RA_PATTERN_AUTO);
	static const size_t sizes[] = {24, 3000, 200000, LARGE};
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < 4; i++) {
			char *p = ra_calloc(1, sizes[i]);
			PC_SETUP(ctx, p ? 0 : ENOMEM);
			PC_CHECK(ctx, pc_all_bytes(p, sizes[i], 0), "calloc(%zu) does not read zero (round %d)", sizes[i], round);
			memset(p, 0xee, sizes[i]); /* dirty it for the next round */
			ra_free(p);
		}
		PC_SETUP(ctx, ra_trim());
	}
	pc_pass(ctx);
}

static size_t resident(struct pc_ctx *ctx, const void *p, size_t len)
{
	return pc_obs_resident_pages(ctx, p, len);
}

static void probe_rss(struct pc_ctx *ctx, enum ra_release r)
{
	setup(ctx, r, RA_INIT_NONE, RA_PATTERN_AUTO);
	char *p = ra_malloc(BIG);
	PC_SETUP(ctx, p ? 0 : ENOMEM);
	memset(p, 1, BIG);
	size_t pages = BIG / pl_page_size(), before = resident(ctx, p, BIG);
	ra_free(p); /* larger than the retain threshold: the policy applies at once */
	size_t after = resident(ctx, p, BIG);
	pc_measure(ctx, "resident_pages", "%zu of %zu before free, %zu after", before, pages, after);
	/* Residency and RSS are the system's bookkeeping, not a contract: every expectation below is a behaviour. */
	PC_BEHAVIOUR(ctx, before >= pages * 9 / 10, "expected the touched object to be resident, saw %zu of %zu pages",
		     before, pages);
	const char *when = "never";
	char pressure[64];
	snprintf(pressure, sizeof(pressure), "under pressure (%s)", pc_reclaim_name());
	if (after <= pages / 10)
		when = "at once";
	else if (pc_force_reclaim(p, BIG) && resident(ctx, p, BIG) <= pages / 10)
		when = pressure;
	pc_observe(ctx, "rss_after_free", "dropped %s", when);
	if (r == RA_RELEASE_ZERO || r == RA_RELEASE_DECOMMIT)
		PC_BEHAVIOUR(ctx, strcmp(when, "at once") == 0, "expected %s to return memory at once (Linux frees "
			     "released pages at once), saw RSS dropped %s", ra_release_name(r), when);
	if (r == RA_RELEASE_NONE)
		PC_BEHAVIOUR(ctx, after >= pages * 9 / 10, "expected policy none to keep the memory resident, saw %zu of "
			     "%zu pages left", after, pages);
	pc_pass(ctx);
}

#define POLICY_PROBES(r, name)                                                                           \
	PC_PROBE(reuse_##name, "refalloc.contents_after_reuse/" #name,                                   \
		 "a large object freed, released and allocated again holds what the policy allows")     \
	{                                                                                                \
		probe_reuse(ctx, r);                                                                     \
	}                                                                                                \
	PC_PROBE(calloc_##name, "refalloc.calloc_reads_zero/" #name,                                     \
		 "calloc reads zero over reused and released memory")                                    \
	{                                                                                                \
		probe_calloc(ctx, r);                                                                    \
	}                                                                                                \
	PC_PROBE(rss_##name, "refalloc.rss_after_large_free/" #name,                                     \
		 "when RSS drops after a 64 MiB free: at once, under pressure, or never")                \
	{                                                                                                \
		probe_rss(ctx, r);                                                                       \
	}

POLICY_PROBES(RA_RELEASE_NONE, none)
POLICY_PROBES(RA_RELEASE_RELEASE, release)
POLICY_PROBES(RA_RELEASE_ZERO, release_zero)
POLICY_PROBES(RA_RELEASE_REUSABLE, reusable)
POLICY_PROBES(RA_RELEASE_DECOMMIT, decommit)
