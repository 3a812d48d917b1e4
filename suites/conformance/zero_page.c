/* The zero page: a read fault on untouched anonymous memory maps a shared
 * page of zeros where the system has one (no memory charged), and a later
 * write gives a private zeroed page. With THP, the huge zero page. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include "linux_abi.h"
#endif

#define LEN_PAGES 4096 /* RSS windows big enough that other faults in the window are noise */
#define MARK_AT 7

static void read_each_page(const void *p, size_t len)
{
	for (size_t off = 0; off < len; off += pl_page_size())
		(void)((const volatile char *)p)[off];
}

/* Linux maps the zero page on read faults of private anonymous memory; for
 * THP only when transparent_hugepage/use_zero_page is 1. Elsewhere: observe. */
static bool expect_zero_page(enum pc_kind kind)
{
#ifdef __linux__
	char buf[16];
	if (kind == PC_PRIVATE_ANON)
		return true;
	return kind == PC_THP &&
	       pl_read_file("/sys/kernel/mm/transparent_hugepage/use_zero_page", buf, sizeof(buf)) == 0 &&
	       buf[0] == '1';
#else
	(void)kind;
	return false;
#endif
}

static const char *rise_label(size_t before, size_t after, size_t len)
{
	size_t rise = after > before ? after - before : 0;
	return rise >= len / 4 * 3 ? "raised" : rise < len / 4 ? "unchanged" : "partly raised";
}

PC_PROBE_KINDS(read_rss, "zero_page.read_fault.rss_unchanged", PC_PRIVATE_ANON | PC_THP,
	       "reading untouched anonymous memory does not raise RSS (zero page, not new memory)")
{
	struct pc_map m;
	size_t rss0, rss1, resident;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	if (pl_rss(&rss0) != 0)
		pc_skip(ctx, "no RSS measure on this system");
	read_each_page(m.addr, m.len);
	PC_SETUP(ctx, pl_rss(&rss1));
	PC_SETUP(ctx, pl_resident_pages(m.addr, m.len, &resident));
	const char *rise = rise_label(rss0, rss1, m.len);
	pc_observe(ctx, "rss_after_read", "%s", rise);
	pc_observe(ctx, "resident_pages_after_read", "%zu of %zu", resident, m.len / pl_page_size());
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "untouched memory does not read zero");
	if (expect_zero_page(m.kind))
		PC_CHECK(ctx, strcmp(rise, "unchanged") == 0, "RSS after read faults: %s (expected unchanged)", rise);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS(read_maps, "zero_page.read_fault.maps_zero_page", PC_ALL_KINDS,
	       "a read fault on untouched memory maps the shared zero page (private anonymous)")
{
	struct pc_map m;
	bool zp;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	/* Fill the capability set first: the page layer picks its zero-page method then. */
	const struct pl_cap *cap = &pl_caps()->op[PL_OP_ZERO_PAGE];
	read_each_page(m.addr, m.len);
	int e = pl_is_zero_page(m.addr, &zp);
	if (e == ENOTSUP || e == ENOSYS)
		pc_skip(ctx, "cannot tell which page is mapped: %s (%s)", pl_errno_name(e), cap->how ? cap->how : "no method");
	PC_SETUP(ctx, e);
	pc_observe(ctx, "zero_page", "%s", zp ? "yes" : "no");
	pc_observe(ctx, "method", "%s", cap->via ? cap->via : "none");
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "untouched memory does not read zero");
	if (expect_zero_page(m.kind))
		PC_CHECK(ctx, zp, "read fault did not map the zero page");
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS(write_private, "zero_page.write_after_read.private_zeroed", PC_PRIVATE_ANON | PC_THP,
	       "a write after a read fault gives a private page: zero except the written byte")
{
	struct pc_map m;
	size_t ps = pl_page_size(), rss0 = 0, rss1 = 0;
	bool zp = false;
	pc_map_or_skip(ctx, LEN_PAGES * ps, &m);
	read_each_page(m.addr, m.len);
	bool known = pl_rss(&rss0) == 0;
	for (size_t off = 0; off < m.len; off += ps)
		((char *)m.addr)[off + MARK_AT] = 1;
	known = pl_rss(&rss1) == 0 && known;
	pc_observe(ctx, "rss_after_write", "%s", known ? rise_label(rss0, rss1, m.len) : "unknown");
	(void)pl_caps(); /* the page layer picks its zero-page method when the set is filled */
	int e = pl_is_zero_page(m.addr, &zp);
	pc_observe(ctx, "zero_page_after_write", "%s", e ? "unknown" : zp ? "yes" : "no");
	/* Still mapping the zero page after a write would share one process's data with all. */
	PC_CHECK(ctx, e != 0 || !zp, "the written page still maps the zero page");
	for (size_t off = 0; off < m.len; off += ps) {
		char *pg = (char *)m.addr + off;
		PC_CHECK(ctx, pg[MARK_AT] == 1, "the write to page %zu was lost", off / ps);
		pg[MARK_AT] = 0;
		PC_CHECK(ctx, pc_all_bytes(pg, ps, 0), "page %zu is not zero apart from the write", off / ps);
	}
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(huge_zero, "zero_page.huge_zero_page",
	 "a read fault on an untouched THP range maps the huge zero page (use_zero_page = 1)")
{
#ifdef __linux__
	struct pc_map m;
	const char *why;
	uint64_t cat;
	if (pc_map(ctx, PC_THP, 1, &m, &why) != 0)
		pc_skip(ctx, "%s", why ? why : "cannot map a THP range");
	if (!expect_zero_page(PC_THP))
		pc_skip(ctx, "huge zero page disabled (transparent_hugepage/use_zero_page is not 1)");
	(void)*(volatile char *)m.addr;
	int e = pl_linux_page_categories(m.addr, &cat);
	if (e == ENOTSUP)
		pc_skip(ctx, "this page layer cannot read page categories (no PAGEMAP_SCAN)");
	if (e == ENOTTY || e == EINVAL)
		pc_skip(ctx, "PAGEMAP_SCAN: %s (before 6.7)", pl_errno_name(e));
	PC_SETUP(ctx, e);
	bool zero = cat & PL_PAGE_IS_PFNZERO, huge = cat & PL_PAGE_IS_HUGE;
	pc_observe(ctx, "zero_page", "%s", zero ? "yes" : "no");
	pc_observe(ctx, "huge", "%s", huge ? "yes" : "no");
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "untouched THP memory does not read zero");
	PC_CHECK(ctx, zero && huge, "read fault mapped %s%s page", huge ? "a huge " : "a small ", zero ? "zero" : "non-zero");
	pc_unmap(&m);
	pc_pass(ctx);
#else
	pc_skip(ctx, "huge zero page detection needs Linux PAGEMAP_SCAN");
#endif
}
