/* The pool behind suites/perf/pool.h: small ranges come from a pool of at
 * least POOL_BYTES prepared in one go, so that pausing the timer (and the
 * counters) once serves many iterations; each call is timed on its own. */
#include "config.h"
#include "pool.h"

#include "pagelab/env.h"
#include "pagelab/platform.h"

#define POOL_BYTES PB_MIB(4)

int pool_fresh(void *p, size_t len)
{
	int e = pl_release_zero(p, len);
	if (!e)
		pb_touch_pages(p, len);
	return e;
}

size_t pool_bytes(size_t len)
{
	return len < (size_t)POOL_BYTES ? (size_t)POOL_BYTES / len * len : len;
}

int pool_iterate(pb_state *s, unsigned char *pool, size_t plen, size_t len,
		 int (*refill)(const void *ctx, void *pool, size_t plen, bool first),
		 int (*timed)(const void *ctx, void *p, size_t len), const void *ctx)
{
	size_t n = plen / len, k = n;
	bool first = true;
	while (pb_keep_running(s)) {
		if (k == n) {
			pb_pause_timing(s);
			int e = refill(ctx, pool, plen, first);
			pb_resume_timing(s);
			if (e)
				return e;
			first = false;
			k = 0;
		}
		double t0 = pb_seconds();
		int e = timed(ctx, pool + k++ * len, len);
		double t1 = pb_seconds();
		if (e)
			return e;
		pb_set_iteration_time(s, t1 - t0);
	}
	return 0;
}

static int op_refill(const void *ctx, void *pool, size_t plen, bool first)
{
	const struct pool_op *op = ctx;
	int e = !first && op->after ? op->after(pool, plen) : 0;
	return e ? e : op->prepare(pool, plen);
}

static int op_timed(const void *ctx, void *p, size_t len)
{
	return ((const struct pool_op *)ctx)->timed(p, len);
}

void pool_run(pb_state *s, const struct pool_op *op)
{
	size_t len = (size_t)pb_arg(s, 0);
	size_t plen = pool_bytes(len);
	void *pool;
	int e = pl_map_anon(plen, &pool);
	if (e) {
		pb_skip_errno(s, "mapping the pool", e);
		return;
	}
	e = pool_iterate(s, pool, plen, len, op_refill, op_timed, op);
	/* The pages the last calls met go through the pair's second half, as every refill does. */
	if (!e && op->after && pb_iterations(s) > 0)
		e = op->after(pool, plen);
	int e2 = pl_unmap(pool, plen);
	if (e || e2) {
		pb_skip_errno(s, op->label, e ? e : e2);
		return;
	}
	pb_per_page(s, len / pl_page_size());
}
