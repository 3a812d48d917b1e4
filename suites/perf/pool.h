/* Timing one page-level call on ranges taken in turn from a pool, with the
 * pool brought to the stated page state (untimed) whenever it runs out: the
 * per-page cost of a call from that state. Used by the page-layer benchmarks
 * and by each system's own primitives (suites/perf/<family>/). */
#ifndef PAGELAB_PERF_POOL_H
#define PAGELAB_PERF_POOL_H

#include <stddef.h>

#include "pagelab/bench.h"

struct pool_op {
	const char *label;                  /* for messages: "pl_release", "MEM_RESET_UNDO" */
	int (*prepare)(void *p, size_t len); /* untimed: the state the call is measured from */
	int (*timed)(void *p, size_t len);   /* the call measured */
	int (*after)(void *p, size_t len);   /* untimed, before the pages are prepared again (or NULL) */
};

/* Per-call benchmarks of one page take about a microsecond: a repetition needs
 * tens of thousands of calls to average over the hypervisor's and the
 * scheduler's interruptions (200-call repetitions of 4 KiB advice varied by
 * 10-27% between repetitions here; POOL_MIN_TIME at 20 ms, 11% for 2 MiB). The
 * cap only stops a runaway calibration; POOL_MIN_TIME sets the length. */
#define POOL_MAX_ITERATIONS 200000
#define POOL_MIN_TIME 0.05

/* Pages freshly faulted and written: dropped, then written one byte a page. */
int pool_fresh(void *p, size_t len);
/* Run benchmark s over ranges of pb_arg(s, 0) bytes; skips with the reason when a call fails.
 * The benchmark needs .manual_time = true. */
void pool_run(pb_state *s, const struct pool_op *op);

/* The machinery under pool_run, for benchmarks whose set-up depends on more
 * than one function (suites/perf/posix/madvise.c): */
/* Bytes of the pool for ranges of len bytes: at least POOL_BYTES, a whole number of ranges. */
size_t pool_bytes(size_t len);
/* The loop: times timed(ctx, range) on each len-byte range of the pool in turn,
 * calling refill(ctx, pool, plen, first) with the timer paused whenever the
 * pool runs out (first: the pool's first fill). 0, or the first error. */
int pool_iterate(pb_state *s, unsigned char *pool, size_t plen, size_t len,
		 int (*refill)(const void *ctx, void *pool, size_t plen, bool first),
		 int (*timed)(const void *ctx, void *p, size_t len), const void *ctx);

#endif
