/* mprotect: the cost per page of toggling protection (read-only and back) on
 * resident private anonymous memory: on part of a mapping, which splits the
 * mapping into three and merges it back, and on the whole mapping. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>

#define MPROTECT_QUICK PB_ARGS(PB_PAGE, PB_MIB(2), PB_MIB(256))

/* Read-only then read-write again: one iteration. */
static int toggle(void *p, size_t len)
{
	if (mprotect(p, len, PROT_READ) != 0)
		return errno;
	return mprotect(p, len, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
}

/* Map maplen resident bytes, toggle [offset, offset+len) each iteration. */
static void run(pb_state *s, size_t maplen, size_t offset, size_t len)
{
	unsigned char *p;
	int e = pl_map_anon(maplen, (void **)&p);
	if (e) {
		pb_skip_errno(s, "mmap", e);
		return;
	}
	e = pl_populate(p, maplen, true);
	if (!e) {
		pb_touch_pages(p, maplen);
		while (pb_keep_running(s))
			if ((e = toggle(p + offset, len)) != 0)
				break;
	}
	int e2 = pl_unmap(p, maplen);
	if (e || e2) {
		pb_skip_errno(s, "populate/mprotect/munmap", e ? e : e2);
		return;
	}
	size_t pages = len / pl_page_size();
	pb_set_items_processed(s, pb_iterations(s) * (int64_t)pages);
	pb_counter(s, "pages", (double)pages, PB_COUNTER_TOTAL);
}

PB_BENCH(bm_mprotect_split, "mprotect/split_merge",
	 "mprotect read-only then read-write of the argument's bytes in the middle of a resident, written mapping "
	 "one page larger on each side (splits it in three, merges it back)",
	 .args = PB_SIZES_FULL, .quick_args = MPROTECT_QUICK)
{
	size_t len = pb_arg_bytes(s), page = pl_page_size();
	if (!len)
		return;
	run(s, len + 2 * page, page, len);
}

PB_BENCH(bm_mprotect_whole, "mprotect/whole", "mprotect read-only then read-write of a whole resident, written mapping",
	 .args = PB_SIZES_FULL, .quick_args = MPROTECT_QUICK)
{
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	run(s, len, 0, len);
}
