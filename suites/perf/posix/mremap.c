/* mremap: the cost per page of moving a resident private anonymous range to
 * another address, and of growing it to twice its size (in place when the
 * address space after it is free, else moved; the "moved" counter says which).
 * A move costs what the page tables allow: with both ends aligned to what
 * one page table covers (a PMD on Linux) whole tables move; with one end a
 * base page past such an alignment, every entry moves. The two are separate
 * benchmarks, each with its alignment fixed (a range mapped anywhere would
 * land on either, and the sample would be bimodal). */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#define MREMAP_QUICK PB_ARGS(PB_PAGE, PB_MIB(2), PB_MIB(256))
#define UNALIGNED_QUICK PB_ARGS(PB_MIB(2), PB_MIB(256))
#define UNALIGNED_FULL PB_ARGS(PB_MIB(2), PB_MIB(32), PB_MIB(256), PB_GIB(1))

#if defined(HAVE_MREMAP) && defined(HAVE_MREMAP_FIXED) && defined(HAVE_MAP_FIXED_NOREPLACE)
/* What one page table covers: the PMD-sized huge page where there is one, else
 * a page of pointer-sized entries (the usual radix level width). */
static size_t table_span(void)
{
	size_t huge = pl_caps()->huge_page_size, ps = pl_page_size();
	return huge ? huge : ps * (ps / sizeof(void *));
}

/* An inaccessible placeholder of exactly len bytes, off bytes past page-table alignment. */
static int placeholder(size_t len, size_t off, void **out)
{
	size_t span = table_span();
	void *base;
	if (off == 0)
		return pl_reserve(len, span, out);
	int e = pl_reserve(len + span, span, &base);
	if (e)
		return e;
	char *p = (char *)base + off;
	if ((e = pl_unmap(base, off)) != 0 || (e = pl_unmap(p + len, span - off)) != 0) {
		(void)pl_unmap(base, len + span); /* munmap skips what is already gone */
		return e;
	}
	*out = p;
	return 0;
}

/* A resident range at *src, aligned to what one page table covers, and an
 * inaccessible placeholder of the same size at *dst, dst_off bytes past that
 * alignment: 0, whole page tables can move; a base page, every entry moves. */
static int setup_move(size_t len, size_t dst_off, void **src, void **dst)
{
	int e = pl_reserve(len, table_span(), src);
	if (e)
		return e;
	if ((e = pl_commit(*src, len)) == 0 && (e = pl_populate(*src, len, true)) == 0 &&
	    (e = placeholder(len, dst_off, dst)) == 0)
		return 0;
	(void)pl_unmap(*src, len);
	return e;
}

/* Move src onto dst (replacing the placeholder), then fill the hole left at src. */
static int move_once(size_t len, void *src, void *dst, double *t)
{
	double t0 = pb_seconds();
	void *q = mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	*t = pb_seconds() - t0;
	if (q == MAP_FAILED)
		return errno;
	/* NOREPLACE: never clobber whatever another thread mapped into the hole. */
	void *h = mmap(src, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (h == MAP_FAILED)
		return errno;
	return h == src ? 0 : EEXIST;
}
#endif

static void run_move(pb_state *s, size_t dst_off)
{
#if defined(HAVE_MREMAP) && defined(HAVE_MREMAP_FIXED) && defined(HAVE_MAP_FIXED_NOREPLACE)
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	void *a, *b;
	int e = setup_move(len, dst_off, &a, &b);
	if (e) {
		pb_skip_errno(s, "reserve/commit/populate", e);
		return;
	}
	while (pb_keep_running(s)) {
		double t;
		if ((e = move_once(len, a, b, &t)) != 0)
			break;
		void *x = a;
		a = b;
		b = x;
		pb_set_iteration_time(s, t);
	}
	int e2 = pl_unmap(a, len), e3 = pl_unmap(b, len);
	if (e || e2 || e3)
		pb_skip_errno(s, "mremap/mmap/munmap", e ? e : e2 ? e2 : e3);
	else
		pb_per_page(s, len / pl_page_size());
#else
	(void)dst_off;
	pb_skip(s, "mremap with MREMAP_FIXED and MAP_FIXED_NOREPLACE: not on this system");
#endif
}

PB_BENCH(bm_mremap_move, "mremap/move",
	 "mremap(MREMAP_FIXED) of a resident private anonymous range to another address; both ends aligned to "
	 "what one page table covers, so whole tables move",
	 .args = PB_SIZES_FULL, .quick_args = MREMAP_QUICK, .manual_time = true)
{
	run_move(s, 0);
}

PB_BENCH(bm_mremap_move_unaligned, "mremap/move_unaligned",
	 "mremap(MREMAP_FIXED) of a resident private anonymous range to and fro between an address aligned to what "
	 "one page table covers and one a base page past such an alignment, so every entry moves",
	 .args = UNALIGNED_FULL, .quick_args = UNALIGNED_QUICK, .manual_time = true)
{
#if defined(HAVE_MREMAP) && defined(HAVE_MREMAP_FIXED) && defined(HAVE_MAP_FIXED_NOREPLACE)
	run_move(s, pl_page_size());
#else
	run_move(s, 0);
#endif
}

#if defined(HAVE_MREMAP) && defined(HAVE_MREMAP_MAYMOVE)
/* Grow [*p, len) to 2*len (timed), then shrink it back in place: the tail
 * was never touched, so the resident pages stay and need no set-up again. */
static int grow_once(void **p, size_t len, double *t, bool *moved)
{
	double t0 = pb_seconds();
	void *q = mremap(*p, len, 2 * len, MREMAP_MAYMOVE);
	*t = pb_seconds() - t0;
	if (q == MAP_FAILED)
		return errno;
	*moved = q != *p;
	*p = q;
	return mremap(q, 2 * len, len, 0) == q ? 0 : errno;
}
#endif

PB_BENCH(bm_mremap_grow, "mremap/grow",
	 "mremap(MREMAP_MAYMOVE) of a resident private anonymous range to twice its size (shrinking back untimed)",
	 .args = PB_SIZES_FULL, .quick_args = MREMAP_QUICK, .manual_time = true)
{
#if defined(HAVE_MREMAP) && defined(HAVE_MREMAP_MAYMOVE)
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	double moved = 0;
	void *p;
	int e = pl_map_anon(len, &p);
	if (!e && (e = pl_populate(p, len, true)) != 0)
		(void)pl_unmap(p, len);
	if (e) {
		pb_skip_errno(s, "mmap/populate", e);
		return;
	}
	while (pb_keep_running(s)) {
		double t;
		bool m = false;
		if ((e = grow_once(&p, len, &t, &m)) != 0)
			break;
		moved += m;
		pb_set_iteration_time(s, t);
	}
	int e2 = pl_unmap(p, len);
	if (e || e2) {
		pb_skip_errno(s, "mremap/munmap", e ? e : e2);
		return;
	}
	pb_per_page(s, len / pl_page_size());
	pb_counter(s, "moved", moved, PB_COUNTER_AVG_ITER);
#else
	pb_skip(s, "mremap: not on this system");
#endif
}
