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

#include "pl_abi.h"

#define MREMAP_QUICK PB_ARGS(PB_PAGE, PB_MIB(2), PB_MIB(256))
#define UNALIGNED_QUICK PB_ARGS(PB_MIB(2), PB_MIB(256))
#define UNALIGNED_FULL PB_ARGS(PB_MIB(2), PB_MIB(32), PB_MIB(256), PB_GIB(1))

/* mremap(2): ENOSYS where this build's C library has none (the benchmark then skips with that answer). */
static int remap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr, void **out)
{
#ifdef HAVE_MREMAP
	void *q = mremap(old, old_len, new_len, flags, new_addr);
	*out = q;
	return q == MAP_FAILED ? errno : 0;
#else
	(void)old; (void)old_len; (void)new_len; (void)flags; (void)new_addr;
	*out = NULL;
	return ENOSYS;
#endif
}

/* Is mremap there at all? A same-size call without flags changes nothing (ENOSYS where there is none). */
static int remap_same(void *p, size_t len)
{
	void *q;
	return remap(p, len, len, 0, NULL, &q);
}

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
	void *q;
	double t0 = pb_seconds();
	int e = remap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst, &q);
	*t = pb_seconds() - t0;
	if (e)
		return e;
	/* NOREPLACE: never clobber whatever another thread mapped into the hole. */
	void *h = mmap(src, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (h == MAP_FAILED)
		return errno;
	return h == src ? 0 : EEXIST;
}

static void run_move(pb_state *s, size_t dst_off)
{
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	void *a, *b;
	int e = setup_move(len, dst_off, &a, &b);
	if (e) {
		pb_skip_errno(s, "reserve/commit/populate", e);
		return;
	}
	if ((e = remap_same(a, len)) != 0) {
		(void)pl_unmap(a, len);
		(void)pl_unmap(b, len);
		pb_skip_errno(s, "mremap", e);
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
	run_move(s, pl_page_size());
}

/* Grow [*p, len) to 2*len (timed), then shrink it back in place: the tail
 * was never touched, so the resident pages stay and need no set-up again. */
static int grow_once(void **p, size_t len, double *t, bool *moved)
{
	void *q, *back;
	double t0 = pb_seconds();
	int e = remap(*p, len, 2 * len, MREMAP_MAYMOVE, NULL, &q);
	*t = pb_seconds() - t0;
	if (e)
		return e;
	*moved = q != *p;
	*p = q;
	if ((e = remap(q, 2 * len, len, 0, NULL, &back)) != 0)
		return e;
	return back == q ? 0 : EFAULT;
}

PB_BENCH(bm_mremap_grow, "mremap/grow",
	 "mremap(MREMAP_MAYMOVE) of a resident private anonymous range to twice its size (shrinking back untimed)",
	 .args = PB_SIZES_FULL, .quick_args = MREMAP_QUICK, .manual_time = true)
{
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	double moved = 0;
	void *p;
	int e = pl_map_anon(len, &p);
	if (!e && (e = pl_populate(p, len, true)) != 0)
		(void)pl_unmap(p, len);
	if (!e && (e = remap_same(p, len)) != 0)
		(void)pl_unmap(p, len);
	if (e) {
		pb_skip_errno(s, "mmap/populate/mremap", e);
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
}
