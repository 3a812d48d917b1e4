/* The "context" object of the benchmark JSON: Google Benchmark's fields
 * (date, host, CPUs, caches, load: bench_machine_<family>.c) plus pagelab's
 * environment, counters, topology and pinning. Both back-ends write it with
 * this code. */
#include "config.h"
#include "bench_impl.h"
#include "pagelab/counters.h"
#include "pagelab/env.h"
#include "pagelab/topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void date_member(struct pl_json *j)
{
	char buf[64] = "";
	time_t now = time(NULL);
	struct tm tm;
	if (localtime_r(&now, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S%z", &tm) > 0) {
		/* ISO 8601 wants +00:00, strftime gives +0000. */
		size_t n = strlen(buf);
		if (n > 2 && n + 1 < sizeof(buf)) {
			memmove(buf + n - 1, buf + n - 2, 3);
			buf[n - 2] = ':';
		}
	}
	pl_json_kv_str(j, "date", buf);
}

static void gbench_members(struct pl_json *j)
{
	date_member(j);
	pb_machine_members(j);
	/* Optimised code is what timings need; assertions (NDEBUG) are beside the point. */
#if defined(__OPTIMIZE__) || defined(NDEBUG)
	pl_json_kv_str(j, "library_build_type", "release");
#else
	pl_json_kv_str(j, "library_build_type", "debug");
#endif
}

void pb_context_members(struct pl_json *j, const char *backend_name)
{
	gbench_members(j);
	pl_env_json_members(j);
	pl_json_kv_str(j, "backend", backend_name);
	pl_json_kv_str(j, "profile", pb_opts.profile == PB_QUICK ? "quick" : "full");
	pl_json_kv_bool(j, "random_interleaving", pb_opts.random_interleaving);
	pl_counters_json_members(j);
	pl_topo_json_members(j);
}
