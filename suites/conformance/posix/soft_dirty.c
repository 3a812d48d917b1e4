/* Written-since tracking (soft-dirty bits, Linux with CONFIG_MEM_SOFT_DIRTY):
 * clearing makes every page clean, a write makes its page dirty again, a new
 * mapping starts dirty (also at an address used before), mprotect neither
 * sets nor loses the record, and of the populate advice only
 * MADV_POPULATE_WRITE counts as a write. On base pages, THP and files. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "pl_abi.h"

#define ROUNDS 100
#define SOFT_DIRTY PC_FB(PC_F_SOFT_DIRTY)

static bool dirty(struct pc_ctx *ctx, const void *p)
{
	return pc_obs_page_flags(ctx, p, PL_PF_SOFT_DIRTY) & PL_PF_SOFT_DIRTY;
}

static void clear_or_skip(struct pc_ctx *ctx)
{
	int e = pl_clear_soft_dirty();
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "this system keeps no written-since bits (soft-dirty: CONFIG_MEM_SOFT_DIRTY)");
	PC_SETUP(ctx, e);
}

/* Clear, check clean, write, check dirty: ROUNDS times on the page at p. */
static void write_cycles(struct pc_ctx *ctx, char *p)
{
	clear_or_skip(ctx);
	for (int i = 0; i < ROUNDS; i++) {
		PC_CHECK(ctx, !dirty(ctx, p), "round %d: the page is dirty right after clearing", i);
		p[0]++;
		PC_CHECK(ctx, dirty(ctx, p), "round %d: a written page is not dirty", i);
		clear_or_skip(ctx);
	}
	pc_observe(ctx, "rounds_tracked", "%d", ROUNDS);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(write_cycles_base, "soft_dirty.write_after_clear/base", SOFT_DIRTY,
	 "after clearing, a page reads clean until written, then dirty, round after round")
{
	char *p;
	PC_SETUP(ctx, pl_map_anon(pl_page_size(), (void **)&p));
	p[0] = 1;
	write_cycles(ctx, p);
}

PC_PROBE_NEEDS(write_cycles_thp, "soft_dirty.write_after_clear/thp", SOFT_DIRTY,
	 "the same on a huge page")
{
	struct pc_map m;
	pc_map_kind_or_skip(ctx, PC_THP, 1, &m);
	memset(m.addr, 1, m.len);
	if (pc_obs_huge_bytes(ctx, m.addr, m.len) < m.len)
		pc_skip_prerequisite(ctx, "no huge page backed the written range now");
	write_cycles(ctx, m.addr);
}

PC_PROBE_NEEDS(new_mapping, "soft_dirty.new_mapping_dirty", SOFT_DIRTY,
	 "a new mapping reads dirty, also when it reuses the address of one unmapped after clearing")
{
	size_t ps = pl_page_size();
	char *p, *q;
	clear_or_skip(ctx);
	PC_SETUP(ctx, pl_map_anon(ps, (void **)&p));
	PC_CHECK(ctx, dirty(ctx, p), "a new mapping reads clean");
	clear_or_skip(ctx);
	PC_SETUP(ctx, pl_unmap(p, ps));
	PC_SETUP(ctx, pl_map_anon(ps, (void **)&q));
	pc_observe(ctx, "address_reused", "%s", q == p ? "yes" : "no");
	PC_CHECK(ctx, dirty(ctx, q), "a new mapping after clearing reads clean");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(mprotect_keeps, "soft_dirty.mprotect", PC_PRIVATE_ANON | PC_SHARED_FILE | PC_SHARED_DISK,
	       SOFT_DIRTY,
	       "mprotect read-only and back neither dirties a cleared page nor hides a later write")
{
	struct pc_map m;
	clear_or_skip(ctx);
	pc_map_or_skip(ctx, pl_page_size(), &m);
	char *p = m.addr;
	p[0] = 1;
	PC_CHECK(ctx, dirty(ctx, p), "a written page reads clean");
	clear_or_skip(ctx);
	PC_CHECK(ctx, !dirty(ctx, p), "the page is dirty right after clearing");
	/* soft-dirty.rst promises a write sets the bit; a bit set without one is only imprecise. */
	PC_SETUP(ctx, pl_protect(p, m.len, PL_PROT_READ));
	PC_BEHAVIOUR(ctx, !dirty(ctx, p), "expected a cleared page to stay clean through mprotect read-only, saw it dirty");
	PC_SETUP(ctx, pl_protect(p, m.len, PL_PROT_RW));
	PC_BEHAVIOUR(ctx, !dirty(ctx, p), "expected a cleared page to stay clean through mprotect read-write, saw it dirty");
	p[0] = 2;
	PC_CHECK(ctx, dirty(ctx, p), "a write after mprotect is not tracked");
	pc_observe(ctx, "tracking_through_mprotect", "kept");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(populate, "soft_dirty.populate",
	 SOFT_DIRTY | PC_FB(PC_F_MADV_POPULATE_READ) | PC_FB(PC_F_MADV_POPULATE_WRITE),
	 "after clearing, MADV_POPULATE_READ leaves pages clean and MADV_POPULATE_WRITE makes them dirty")
{
	size_t len = 16 * pl_page_size();
	char *p;
	pc_need_advice(ctx, MADV_POPULATE_READ, "MADV_POPULATE_READ");
	PC_SETUP(ctx, pl_map_anon(len, (void **)&p));
	clear_or_skip(ctx);
	pc_advise(ctx, p, len, MADV_POPULATE_READ, "MADV_POPULATE_READ");
	for (size_t off = 0; off < len; off += pl_page_size())
		PC_BEHAVIOUR(ctx, !dirty(ctx, p + off), "expected MADV_POPULATE_READ to leave page %zu clean, saw it dirty",
			     off / pl_page_size());
	pc_advise(ctx, p, len, MADV_POPULATE_WRITE, "MADV_POPULATE_WRITE");
	for (size_t off = 0; off < len; off += pl_page_size())
		PC_CHECK(ctx, dirty(ctx, p + off), "MADV_POPULATE_WRITE left page %zu clean", off / pl_page_size());
	pc_observe(ctx, "read_then_write", "clean then dirty");
	pc_pass(ctx);
}
