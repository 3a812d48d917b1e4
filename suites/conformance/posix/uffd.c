/* Pages the process supplies itself (userfaultfd, Linux) where they meet
 * release and zero fill: a missing page answered with the zero page reads
 * zero; pages dropped by MADV_DONTNEED or MADV_REMOVE are missing again (the
 * supplier is told of the removal, and asked again on the next touch, never
 * handing back the old data or zeros behind its back); with the SIGBUS
 * feature a missing page raises SIGBUS until one is placed. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "pl_abi.h"

#define PAGES 16
#define UFFD PC_FB(PC_F_USERFAULTFD)
#define UFFD_KINDS (PC_PRIVATE_ANON | PC_SHARED_ANON | PC_SHARED_FILE)

static struct pl_supplier *supply_or_skip(struct pc_ctx *ctx, struct pc_map *m, enum pl_supply_mode mode,
					   unsigned char byte)
{
	struct pl_supplier *s;
	int e = pl_supply_start(m->addr, m->len, mode, byte, &s);
	if (e == ENOTSUP || e == EPERM || e == EINVAL)
		pc_skip_unsupported(ctx, "this process cannot supply %s pages itself here (userfaultfd: %s)",
				    pc_kind_name(m->kind), pl_errno_name(e));
	PC_SETUP(ctx, e);
	return s;
}

static struct pl_supply_stats stats(struct pc_ctx *ctx, struct pl_supplier *s)
{
	struct pl_supply_stats st;
	PC_SETUP(ctx, pl_supply_stats(s, &st));
	return st;
}

/* The supplier's thread counts a removal just after taking it, which is what lets madvise return: a moment's wait. */
static struct pl_supply_stats removal_seen(struct pc_ctx *ctx, struct pl_supplier *s)
{
	struct pl_supply_stats st = stats(ctx, s);
	struct timespec tick = {0, 1000 * 1000};
	for (int i = 0; i < 1000 && st.removals == 0; i++) {
		nanosleep(&tick, NULL);
		st = stats(ctx, s);
	}
	return st;
}

static void read_each_page(const char *p, size_t len)
{
	for (size_t off = 0; off < len; off += pl_page_size())
		(void)((const volatile char *)p)[off];
}

PC_PROBE_KINDS_NEEDS(zero_page, "uffd.zero_page.reads_zero", UFFD_KINDS, UFFD,
	       "missing pages answered with the zero page read zero, one answer per page")
{
	struct pc_map m;
	pc_map_or_skip(ctx, PAGES * pl_page_size(), &m);
	struct pl_supplier *s = supply_or_skip(ctx, &m, PL_SUPPLY_ZERO_PAGE, 0);
	read_each_page(m.addr, m.len);
	struct pl_supply_stats st = stats(ctx, s);
	bool zero = pc_all_bytes(m.addr, m.len, 0), zp = false;
	pc_observe(ctx, "contents", "%s", zero ? "zero" : "not zero");
	if (pc_kind_private_anon(m.kind) && pc_try_zero_page(ctx, m.addr, &zp))
		pc_observe(ctx, "maps_zero_page", "%s", zp ? "yes" : "no");
	pc_measure(ctx, "answers", "%llu for %d pages", (unsigned long long)st.faults, PAGES);
	PC_CHECK(ctx, zero, "pages supplied as the zero page do not read zero");
	PC_CHECK(ctx, st.faults == PAGES, "%llu answers for %d missing pages", (unsigned long long)st.faults, PAGES);
	PC_SETUP(ctx, pl_supply_stop(s));
	pc_pass(ctx);
}

/* Supply, write, drop with `advice`: the supplier hears of the removal and fills the pages again. */
static void dropped_then_supplied(struct pc_ctx *ctx, int advice, const char *name)
{
	struct pc_map m;
	pc_map_or_skip(ctx, PAGES * pl_page_size(), &m);
	struct pl_supplier *s = supply_or_skip(ctx, &m, PL_SUPPLY_COPY, 'S');
	read_each_page(m.addr, m.len);
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 'S'), "supplied pages do not read the supplier's byte");
	memset(m.addr, 'W', m.len);
	int e = pc_madvise(m.addr, m.len, advice);
	if (e)
		pc_refusal(ctx, pc_fmt("madvise(%s) of %s memory", name, pc_kind_name(m.kind)), e,
			   pc_unknown_advice_errno(m.addr, m.len));
	struct pl_supply_stats before = removal_seen(ctx, s);
	read_each_page(m.addr, m.len);
	struct pl_supply_stats after = stats(ctx, s);
	bool supplied = pc_all_bytes(m.addr, m.len, 'S');
	const char *c = supplied ? "supplied again" : pc_all_bytes(m.addr, m.len, 'W') ? "old"
		      : pc_all_bytes(m.addr, m.len, 0) ? "zero" : "mixed";
	pc_observe(ctx, "contents_after", "%s", c);
	pc_observe(ctx, "removal_told", "%s", before.removals ? "yes" : "no");
	pc_measure(ctx, "answers_after_drop", "%llu", (unsigned long long)(after.faults - before.faults));
	PC_CHECK(ctx, supplied, "after %s the pages read %s, not the supplier's", name, c);
	PC_CHECK(ctx, before.removals > 0, "the supplier was not told of %s", name);
	PC_CHECK(ctx, after.faults - before.faults == PAGES, "%llu answers after %s for %d pages",
		 (unsigned long long)(after.faults - before.faults), name, PAGES);
	PC_SETUP(ctx, pl_supply_stop(s));
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(after_dontneed, "uffd.dontneed.missing_again", PC_PRIVATE_ANON,
	       UFFD | PC_FB(PC_F_MADV_DONTNEED),
	       "pages dropped by MADV_DONTNEED are missing again: the supplier is told, then asked for each")
{
	dropped_then_supplied(ctx, MADV_DONTNEED, "MADV_DONTNEED");
}

PC_PROBE_KINDS_NEEDS(after_remove, "uffd.remove.missing_again", PC_SHARED_ANON | PC_SHARED_FILE,
	       UFFD | PC_FB(PC_F_MADV_REMOVE),
	       "shared pages freed by MADV_REMOVE are missing again: the supplier is told, then asked for each")
{
	dropped_then_supplied(ctx, MADV_REMOVE, "MADV_REMOVE");
}

PC_PROBE_KINDS_NEEDS(sigbus, "uffd.sigbus.missing_page_faults", UFFD_KINDS, UFFD,
	       "with the SIGBUS feature a missing page raises SIGBUS (code observed) until a page is placed there")
{
	struct pc_map m;
	pc_map_or_skip(ctx, PAGES * pl_page_size(), &m);
	struct pl_supplier *s = supply_or_skip(ctx, &m, PL_SUPPLY_SIGBUS, 0);
	pc_expect_fault(ctx, "missing_page", m.addr, false, PL_FAULT_BUS);
	PC_SETUP(ctx, pl_supply_place(s, m.addr, 'P'));
	pc_expect_access(ctx, "placed_page", m.addr, false, 0);
	PC_CHECK(ctx, pc_all_bytes(m.addr, pl_page_size(), 'P'), "the placed page does not read its byte");
	PC_SETUP(ctx, pl_supply_stop(s));
	pc_pass(ctx);
}
