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

static int refill(const struct pool_op *op, void *pool, size_t plen, bool first)
{
	int e = !first && op->after ? op->after(pool, plen) : 0;
	return e ? e : op->prepare(pool, plen);
}

static int iterate(pb_state *s, const struct pool_op *op, unsigned char *pool, size_t plen, size_t len)
{
	size_t n = plen / len, k = n;
	bool first = true;
	while (pb_keep_running(s)) {
		if (k == n) {
			pb_pause_timing(s);
			int e = refill(op, pool, plen, first);
			pb_resume_timing(s);
			if (e)
				return e;
			first = false;
			k = 0;
		}
		double t0 = pb_seconds();
		int e = op->timed(pool + k++ * len, len);
		double t1 = pb_seconds();
		if (e)
			return e;
		pb_set_iteration_time(s, t1 - t0);
	}
	return op->after && !first ? op->after(pool, plen) : 0;
}

void pool_run(pb_state *s, const struct pool_op *op)
{
	size_t len = (size_t)pb_arg(s, 0);
	size_t plen = len < (size_t)POOL_BYTES ? (size_t)POOL_BYTES / len * len : len;
	void *pool;
	int e = pl_map_anon(plen, &pool);
	if (e) {
		pb_skip_errno(s, "mapping the pool", e);
		return;
	}
	e = iterate(s, op, pool, plen, len);
	int e2 = pl_unmap(pool, plen);
	if (e || e2) {
		pb_skip_errno(s, op->label, e ? e : e2);
		return;
	}
	pb_per_page(s, len / pl_page_size());
}
