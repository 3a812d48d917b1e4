/* pattern: the cost per page and the RSS of getting memory that reads as a
 * byte pattern: anonymous memory (reads zero; the baseline), the pattern
 * written up front with memset, and the page layer's map-with-pattern served
 * natively or by userfaultfd. Accessed densely (every page read) or
 * sparsely (one page in 16). One iteration maps, reads, and (untimed)
 * checks what was read and unmaps; "rss_bytes" is the RSS growth it caused. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PATTERN_BYTE 0xa5
#define SPARSE_STRIDE 16
#define PATTERN_SIZES PB_ARGS(PB_MIB(2), PB_MIB(64), PB_MIB(256))
#define PATTERN_QUICK PB_ARGS(PB_MIB(16))

enum source { SRC_ZERO = -1 }; /* otherwise an enum pl_pattern_mode */

static int get_memory(int src, size_t len, void **p)
{
	if (src == SRC_ZERO)
		return pl_map_anon(len, p);
	enum pl_pattern_mode used;
	int e = pl_map_pattern(len, PATTERN_BYTE, (enum pl_pattern_mode)src, p, &used);
	/* A full userfaultfd (kernel-mode faults too) serves a uffd request the same way. */
	if (!e && used == PL_PATTERN_UFFD_FULL)
		used = PL_PATTERN_UFFD;
	if (!e && used != (enum pl_pattern_mode)src) {
		(void)pl_unmap_pattern(*p, len);
		e = ENOTSUP;
	}
	return e;
}

static int put_memory(int src, void *p, size_t len)
{
	return src == SRC_ZERO ? pl_unmap(p, len) : pl_unmap_pattern(p, len);
}

/* Read one byte every stride bytes; count the bytes that differ from want. */
static size_t read_check(const void *p, size_t len, size_t stride, unsigned char want)
{
	const volatile unsigned char *c = p;
	size_t bad = 0;
	for (size_t off = 0; off < len; off += stride)
		bad += c[off] != want;
	return bad;
}

/* One iteration: *t is the time to map and read; *rss the RSS growth, when
 * RSS can be read here (*have_rss; the time counts either way). */
static int once(int src, size_t len, size_t stride, double *t, double *rss, bool *have_rss)
{
	size_t r0 = 0, r1 = 0;
	*have_rss = pl_rss(&r0) == 0;
	void *p;
	unsigned char want = src == SRC_ZERO ? 0 : PATTERN_BYTE;
	double t0 = pb_seconds();
	int e = get_memory(src, len, &p);
	if (e)
		return e;
	size_t bad = read_check(p, len, stride, want);
	*t = pb_seconds() - t0;
	*have_rss = *have_rss && pl_rss(&r1) == 0;
	e = put_memory(src, p, len);
	if (e)
		return e;
	*rss = (double)r1 - (double)r0;
	return bad ? EIO : 0;
}

static void run(pb_state *s, int src, size_t stride_pages)
{
	size_t len = pb_arg_bytes(s), page = pl_page_size();
	if (!len)
		return;
	double rss = 0;
	bool have_rss = true;
	int e = 0;
	while (pb_keep_running(s)) {
		double t, r = 0;
		bool got_rss = false;
		e = once(src, len, stride_pages * page, &t, &r, &got_rss);
		if (e)
			break;
		have_rss = have_rss && got_rss;
		rss += r;
		pb_set_iteration_time(s, t);
	}
	if (e == EIO) {
		pb_skip(s, "memory did not read as the pattern (or zero for anonymous)");
		return;
	}
	if (e == ENOTSUP && src == PL_PATTERN_NATIVE) {
		pb_skip(s, "native pattern pages: ENOTSUP, this kernel has no reference-page mapping");
		return;
	}
	if (e) {
		pb_skip_errno(s, src == SRC_ZERO ? "mmap" : pl_pattern_mode_name((enum pl_pattern_mode)src), e);
		return;
	}
	size_t pages = len / page;
	pb_set_items_processed(s, pb_iterations(s) * (int64_t)pages);
	pb_counter(s, "pages", (double)pages, PB_COUNTER_TOTAL);
	pb_counter(s, "pages_read", (double)((pages + stride_pages - 1) / stride_pages), PB_COUNTER_TOTAL);
	if (have_rss)
		pb_counter(s, "rss_bytes", rss, PB_COUNTER_AVG_ITER);
}

#define PATTERN_PAIR(id, nm, src, whatstr)                                                       \
	PB_BENCH(bm_pattern_##id##_dense, "pattern/" nm "_dense", whatstr "; read every page",    \
		 .args = PATTERN_SIZES, .quick_args = PATTERN_QUICK, .manual_time = true)         \
	{                                                                                       \
		run(s, src, 1);                                                                 \
	}                                                                                       \
	PB_BENCH(bm_pattern_##id##_sparse, "pattern/" nm "_sparse", whatstr "; read one page in 16", \
		 .args = PATTERN_SIZES, .quick_args = PATTERN_QUICK, .manual_time = true)         \
	{                                                                                       \
		run(s, src, SPARSE_STRIDE);                                                     \
	}

PATTERN_PAIR(zero, "anon_zero", SRC_ZERO, "map private anonymous memory (reads zero: the baseline)")
PATTERN_PAIR(memset, "memset", PL_PATTERN_MEMSET, "map anonymous memory and memset the pattern over all of it")
PATTERN_PAIR(native, "native", PL_PATTERN_NATIVE, "map with the kernel's reference-page pattern mapping")
PATTERN_PAIR(uffd, "uffd", PL_PATTERN_UFFD, "map with the pattern served page by page by userfaultfd")
