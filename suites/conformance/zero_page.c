/* The zero page: a read fault on untouched anonymous memory maps a shared
 * page of zeros where the system has one (no memory charged), and a later
 * write gives a private zeroed page. With THP, the huge zero page.
 * Contracts: untouched memory reads zero, and a written page is private.
 * No contract promises a zero page at all (a kernel may be booted without
 * one, and read faults then allocate): every zero-page expectation here is
 * Linux's usual behaviour, and a system without it differs. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pl_abi.h"

#define MARK_AT 7

static void read_each_page(const void *p, size_t len)
{
	for (size_t off = 0; off < len; off += pl_page_size())
		(void)((const volatile char *)p)[off];
}

/* The behaviour allocators count on (Linux's): a read fault on private anonymous memory maps the zero
 * page, and on THP memory the huge zero page when that is enabled. Shared and file memory: no expectation. */
static bool usual_zero_page(enum pc_kind kind)
{
	bool huge_zero = false;
	if (kind == PC_PRIVATE_ANON || kind == PC_MTHP)
		return true; /* a read fault maps the base zero page before any mTHP is allocated */
	return kind == PC_THP && pl_huge_zero_page_enabled(&huge_zero) == 0 && huge_zero;
}

PC_PROBE_KINDS(read_rss, "zero_page.read_fault.rss_unchanged", PC_PRIVATE_ANON | PC_THP,
	       "reading untouched anonymous memory does not raise RSS (zero page, not new memory)")
{
	struct pc_map m;
	size_t rss0, rss1, resident;
	pc_map_or_skip(ctx, pc_rss_window(), &m);
	rss0 = pc_obs_rss(ctx);
	read_each_page(m.addr, m.len);
	rss1 = pc_obs_rss(ctx);
	resident = pc_obs_resident_pages(ctx, m.addr, m.len);
	const char *rise = pc_rss_rise(rss0, rss1, m.len);
	pc_observe(ctx, "rss_after_read", "%s", rise);
	pc_measure(ctx, "resident_pages_after_read", "%zu of %zu", resident, m.len / pl_page_size());
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "untouched memory does not read zero");
	if (usual_zero_page(m.kind))
		PC_BEHAVIOUR(ctx, strcmp(rise, "unchanged") == 0, "expected RSS unchanged by read faults (they map the "
			     "shared zero page: Linux's usual behaviour), saw it %s (%zu of %zu pages resident)", rise,
			     resident, m.len / pl_page_size());
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS(read_maps, "zero_page.read_fault.maps_zero_page", PC_ALL_KINDS,
	       "a read fault on untouched memory maps the shared zero page (private anonymous)")
{
	struct pc_map m;
	pc_map_or_skip(ctx, pc_rss_window(), &m);
	const struct pl_cap *cap = &pl_caps()->op[PL_OP_ZERO_PAGE];
	read_each_page(m.addr, m.len);
	bool zp = pc_obs_zero_page(ctx, m.addr);
	pc_observe(ctx, "zero_page", "%s", zp ? "yes" : "no");
	pc_measure(ctx, "method", "%s", cap->via ? cap->via : "none");
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "untouched memory does not read zero");
	if (usual_zero_page(m.kind))
		PC_BEHAVIOUR(ctx, zp, "expected the read fault to map the shared zero page (Linux's usual behaviour), "
			     "saw a page of its own");
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS(write_private, "zero_page.write_after_read.private_zeroed", PC_PRIVATE_ANON | PC_THP,
	       "a write after a read fault gives a private page: zero except the written byte")
{
	struct pc_map m;
	size_t ps = pl_page_size(), rss0 = 0, rss1 = 0;
	bool zp = false;
	pc_map_or_skip(ctx, pc_rss_window(), &m);
	read_each_page(m.addr, m.len);
	bool known = pc_try_rss(ctx, &rss0);
	for (size_t off = 0; off < m.len; off += ps)
		((char *)m.addr)[off + MARK_AT] = 1;
	known = pc_try_rss(ctx, &rss1) && known;
	pc_observe(ctx, "rss_after_write", "%s", known ? pc_rss_rise(rss0, rss1, m.len) : "unobservable");
	bool z_known = pc_try_zero_page(ctx, m.addr, &zp);
	pc_observe(ctx, "zero_page_after_write", "%s", !z_known ? "unobservable" : zp ? "yes" : "no");
	/* Still mapping the zero page after a write would share one process's data with all. */
	PC_CHECK(ctx, !z_known || !zp, "the written page still maps the zero page");
	for (size_t off = 0; off < m.len; off += ps) {
		char *pg = (char *)m.addr + off;
		PC_CHECK(ctx, pg[MARK_AT] == 1, "the write to page %zu was lost", off / ps);
		pg[MARK_AT] = 0;
		PC_CHECK(ctx, pc_all_bytes(pg, ps, 0), "page %zu is not zero apart from the write", off / ps);
	}
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(huge_zero, "zero_page.huge_zero_page", PC_FB(PC_F_KIND_FIRST + __builtin_ctz(PC_THP)),
	       "a read fault on an untouched THP range maps the huge zero page (use_zero_page = 1)")
{
	struct pc_map m;
	bool on = false;
	pc_need_thp(ctx);
	if (pl_huge_zero_page_enabled(&on) != 0 || !on)
		pc_skip_prerequisite(ctx, "the huge zero page is disabled or unknown here (transparent_hugepage/use_zero_page)");
	pc_map_kind_or_skip(ctx, PC_THP, 1, &m);
	(void)*(volatile char *)m.addr;
	unsigned flags = pc_obs_page_flags(ctx, m.addr, PL_PF_ZERO | PL_PF_HUGE);
	bool zero = flags & PL_PF_ZERO, huge = flags & PL_PF_HUGE;
	pc_observe(ctx, "zero_page", "%s", zero ? "yes" : "no");
	pc_observe(ctx, "huge", "%s", huge ? "yes" : "no");
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "untouched THP memory does not read zero");
	PC_BEHAVIOUR(ctx, zero && huge, "expected the read fault to map the huge zero page (Linux's usual behaviour "
		     "with use_zero_page on), saw %s", zero ? "the base zero page" : huge ? "a huge page of its own"
							       : "a base page of its own");
	pc_unmap(&m);
	pc_pass(ctx);
}
