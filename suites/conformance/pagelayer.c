/* The page layer's own contract (include/pagelab/platform.h), checked on
 * this system, fallbacks included: release_zero must read zero even where
 * madvise is refused (forced by mlock), guard/unguard, decommit/commit,
 * populate, reserve alignment, pattern mappings, residency and RSS. Each
 * probe records which implementation the capability set reports. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define LEN_PAGES 64
#define SEED 21

static void observe_cap(struct pc_ctx *ctx, enum pl_op op)
{
	const struct pl_cap *c = &pl_caps()->op[op];
	pc_observe(ctx, "implementation", "%s: %s", pl_impl_name(c->impl), c->via ? c->via : c->how ? c->how : "?");
	if (c->impl == PL_UNAVAILABLE)
		pc_skip(ctx, "%s unavailable: %s", pl_op_name(op), c->how ? c->how : "no reason given");
}

static void *map_filled(struct pc_ctx *ctx, size_t len)
{
	void *p;
	PC_SETUP(ctx, pl_map_anon(len, &p));
	pc_fill(p, len, SEED);
	return p;
}

PC_PROBE_KINDS(release_zero, "pagelayer.release_zero.reads_zero", PC_PRIVATE_ANON | PC_THP,
	       "pl_release_zero: private anonymous memory reads zero afterwards")
{
	struct pc_map m;
	observe_cap(ctx, PL_OP_RELEASE_ZERO);
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	PC_CHECK(ctx, pl_release_zero(m.addr, m.len) == 0, "pl_release_zero failed");
	const char *got = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, strcmp(got, "zero") == 0, "contents after pl_release_zero: %s", got);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(release_zero_locked, "pagelayer.release_zero.fallback_mlocked",
	 "pl_release_zero reads zero on mlocked memory, where madvise(MADV_DONTNEED) is refused")
{
	size_t len = 16 * pl_page_size();
	char *p = map_filled(ctx, len);
	observe_cap(ctx, PL_OP_RELEASE_ZERO);
	if (mlock(p, len) != 0)
		pc_skip(ctx, "mlock refused (%s; RLIMIT_MEMLOCK?): cannot force the fallback", pl_errno_name(errno));
	int e;
#ifdef MADV_DONTNEED
	e = pc_madvise(p, len, MADV_DONTNEED);
	pc_observe(ctx, "madvise_dontneed_on_locked", "%s", e ? pl_errno_name(e) : "accepted");
	pc_observe(ctx, "fallback_exercised", "%s", e ? "yes" : "no (madvise accepted locked memory)");
	pc_fill(p, len, SEED);
#endif
	e = pl_release_zero(p, len);
	PC_CHECK(ctx, e == 0, "pl_release_zero on locked memory returned %s", pc_strerror(e));
	const char *got = pc_contents(p, len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, strcmp(got, "zero") == 0, "contents after pl_release_zero: %s", got);
	PC_SETUP(ctx, munlock(p, len) == 0 ? 0 : errno);
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

/* Per page: its old bytes or all zero. */
static bool pages_old_or_zero(const char *p, const char *old, size_t len)
{
	size_t ps = pl_page_size();
	for (size_t off = 0; off < len; off += ps)
		if (memcmp(p + off, old + off, ps) != 0 && !pc_all_bytes(p + off, ps, 0))
			return false;
	return true;
}

PC_PROBE_KINDS(release_any, "pagelayer.release.old_or_zero", PC_ALL_KINDS,
	       "pl_release: every page reads its old bytes or zero and stays accessible")
{
	struct pc_map m;
	observe_cap(ctx, PL_OP_RELEASE);
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	char *old = malloc(m.len);
	if (!old)
		pc_error(ctx, "malloc of %zu bytes failed", m.len);
	pc_fill(m.addr, m.len, SEED);
	memcpy(old, m.addr, m.len);
	int e = pl_release(m.addr, m.len);
	PC_CHECK(ctx, e == 0, "pl_release on %s memory returned %s", pc_kind_name(m.kind), pc_strerror(e));
	pc_observe(ctx, "contents_after", "%s", pc_contents(m.addr, m.len, SEED));
	PC_CHECK(ctx, pages_old_or_zero(m.addr, old, m.len), "a page reads neither old bytes nor zero");
	free(old);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(decommit_commit, "pagelayer.decommit.faults_then_commit_zero",
	 "pl_decommit makes pages fault and gives their memory back; pl_commit makes them read zero")
{
	size_t len = LEN_PAGES * pl_page_size(), rss0, rss1;
	void *p;
	observe_cap(ctx, PL_OP_DECOMMIT);
	PC_SETUP(ctx, pl_reserve(len, 0, &p));
	PC_CHECK(ctx, pl_commit(p, len) == 0, "pl_commit of reserved memory failed");
	pc_fill(p, len, SEED);
	PC_SETUP(ctx, pl_rss(&rss0));
	PC_CHECK(ctx, pl_decommit(p, len) == 0, "pl_decommit failed");
	PC_SETUP(ctx, pl_rss(&rss1));
	size_t drop = rss0 > rss1 ? rss0 - rss1 : 0;
	pc_observe(ctx, "rss_after_decommit", "%s", drop >= len / 4 * 3 ? "dropped" : "not dropped");
	int sig = pc_access_faults(p, false, 0);
	pc_observe(ctx, "access_after_decommit", "%s", sig == SIGSEGV ? "SIGSEGV" : sig ? "other signal" : "allowed");
	PC_CHECK(ctx, sig != 0, "decommitted memory is still readable");
	PC_CHECK(ctx, drop >= len / 4 * 3, "RSS fell by only %zu of %zu bytes", drop, len);
	PC_CHECK(ctx, pl_commit(p, len) == 0, "pl_commit after decommit failed");
	PC_CHECK(ctx, pc_all_bytes(p, len, 0), "recommitted memory does not read zero");
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

/* Guard two middle pages of filled memory; check faults, then unguard and check zero. */
static void guard_cycle(struct pc_ctx *ctx, char *p, size_t len)
{
	size_t ps = pl_page_size();
	char *g = p + 2 * ps;
	char *copy = malloc(len);
	if (!copy)
		pc_error(ctx, "malloc of %zu bytes failed", len);
	memcpy(copy, p, len);
	int e = pl_guard(g, 2 * ps);
	PC_CHECK(ctx, e == 0, "pl_guard returned %s", pc_strerror(e));
	int r = pc_access_faults(g, false, 0), w = pc_access_faults(g + ps, true, 1);
	pc_observe(ctx, "guard_access", "%s", r && w ? "faults" : "allowed");
	PC_CHECK(ctx, r != 0 && w != 0, "guarded page accessible (read %d, write %d)", r, w);
	e = pl_unguard(g, 2 * ps);
	PC_CHECK(ctx, e == 0, "pl_unguard returned %s", pc_strerror(e));
	PC_CHECK(ctx, pc_access_faults(g, true, 0) == 0, "unguarded page still faults");
	PC_CHECK(ctx, pc_all_bytes(g, 2 * ps, 0), "unguarded pages do not read zero");
	PC_CHECK(ctx, memcmp(p, copy, 2 * ps) == 0 && memcmp(g + 2 * ps, copy + 4 * ps, len - 4 * ps) == 0,
		 "pages around the guard changed");
	free(copy);
}

PC_PROBE(guard_unguard, "pagelayer.guard.faults_unguard_zero",
	 "pl_guard pages fault on read and write; after pl_unguard they read zero; neighbours kept")
{
	size_t len = 8 * pl_page_size();
	char *p = map_filled(ctx, len);
	observe_cap(ctx, PL_OP_GUARD);
	guard_cycle(ctx, p, len);
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

PC_PROBE(guard_locked, "pagelayer.guard.fallback_mlocked",
	 "pl_guard / pl_unguard keep their promise on mlocked memory, where guard markers are refused")
{
	size_t len = 8 * pl_page_size();
	char *p = map_filled(ctx, len);
	observe_cap(ctx, PL_OP_GUARD);
	if (mlock(p, len) != 0)
		pc_skip(ctx, "mlock refused (%s; RLIMIT_MEMLOCK?): cannot force the fallback", pl_errno_name(errno));
	guard_cycle(ctx, p, len);
	PC_SETUP(ctx, munlock(p, len) == 0 ? 0 : errno);
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}
