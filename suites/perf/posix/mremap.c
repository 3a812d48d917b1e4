/* mremap: the cost per page of moving a resident private anonymous range to
 * another address, and of growing it to twice its size (in place when the
 * address space after it is free, else moved; the "moved" counter says which). */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#ifdef __linux__
#include "pl_abi.h"
#endif

#define MREMAP_QUICK PB_ARGS(PB_KIB(4), PB_MIB(2), PB_MIB(256))

#if defined(HAVE_MREMAP) && defined(MREMAP_FIXED) && defined(MAP_FIXED_NOREPLACE)
/* A resident range at *src and an inaccessible placeholder of the same size at *dst. */
static int setup_move(size_t len, void **src, void **dst)
{
	int e = pl_map_anon(len, src);
	if (e)
		return e;
	if ((e = pl_populate(*src, len, true)) == 0 && (e = pl_reserve(len, 0, dst)) == 0)
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

PB_BENCH(bm_mremap_move, "mremap/move",
	 "mremap(MREMAP_FIXED) of a resident private anonymous range to another address",
	 .args = PB_SIZES_FULL, .quick_args = MREMAP_QUICK, .manual_time = true)
{
#if defined(HAVE_MREMAP) && defined(MREMAP_FIXED) && defined(MAP_FIXED_NOREPLACE)
	size_t len = (size_t)pb_arg(s, 0);
	void *a, *b;
	int e = setup_move(len, &a, &b);
	if (e) {
		pb_skip_errno(s, "mmap/populate", e);
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
	pb_skip(s, "mremap with MREMAP_FIXED: not on this system");
#endif
}

#if defined(HAVE_MREMAP) && defined(MREMAP_MAYMOVE)
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
#if defined(HAVE_MREMAP) && defined(MREMAP_MAYMOVE)
	size_t len = (size_t)pb_arg(s, 0);
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
